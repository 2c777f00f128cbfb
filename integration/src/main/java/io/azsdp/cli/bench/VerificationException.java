package io.azsdp.cli.bench;

import java.io.IOException;

/** The bytes that arrived are not the bytes that were sent. */
public final class VerificationException extends IOException {
    VerificationException(String message) {
        super(message);
    }
}
