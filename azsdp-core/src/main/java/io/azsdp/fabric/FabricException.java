package io.azsdp.fabric;

import java.io.IOException;

/** An I/O failure that carries a {@link WcStatus} code. */
public class FabricException extends IOException {
    private final int status;

    public FabricException(int status, String message) {
        super(message);
        this.status = status;
    }

    public FabricException(int status, String message, Throwable cause) {
        super(message, cause);
        this.status = status;
    }

    public int status() {
        return status;
    }
}
