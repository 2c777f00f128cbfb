package io.azsdp.spark.protocol;

import java.io.IOException;

/** A peer sent a frame that breaks the block protocol; the connection cannot be trusted further. */
public final class ProtocolException extends IOException {
    private static final long serialVersionUID = 1L;

    public ProtocolException(String message) {
        super(message);
    }
}
