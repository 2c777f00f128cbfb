package io.azsdp.spark.protocol;

import java.io.IOException;

/** The block server did not accept this client (wrong application or secret). */
public final class RefusedException extends IOException {
    private static final long serialVersionUID = 1L;

    public RefusedException(String message) {
        super(message);
    }
}
