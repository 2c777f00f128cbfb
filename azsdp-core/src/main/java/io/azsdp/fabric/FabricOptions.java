package io.azsdp.fabric;

/**
 * Sizes an endpoint needs before its first message: providers that pre-allocate transport memory (shm rings) size it
 * from these, exchanged during the provider handshake. Immutable.
 *
 * @param maxMessageSize    largest SEND payload the endpoint will receive (the SDP receive buffer size)
 * @param maxPostedRecvs    most receives the endpoint will have posted at once (the SDP credit count)
 * @param maxRegions        most memory regions registered at once
 * @param connectTimeoutMs  bound on the provider handshake
 * @param livenessTimeoutMs how long a silent or dead peer may go unnoticed before the endpoint fails
 * @param busyPollMicros    how long a thread in a blocking {@link Endpoint#poll} checks for incoming work without
 *                          blocking before it waits in the kernel, as SO_BUSY_POLL does for a socket; 0 blocks at once
 */
public record FabricOptions(int maxMessageSize, int maxPostedRecvs, int maxRegions, int connectTimeoutMs,
                            int livenessTimeoutMs, int busyPollMicros) {
    public FabricOptions {
        if (maxMessageSize <= 0 || maxPostedRecvs <= 0 || maxRegions <= 0 || connectTimeoutMs < 0
                || livenessTimeoutMs <= 0 || busyPollMicros < 0) {
            throw new IllegalArgumentException("invalid fabric options: " + this);
        }
    }

    /** Without busy polling. */
    public FabricOptions(int maxMessageSize, int maxPostedRecvs, int maxRegions, int connectTimeoutMs,
                         int livenessTimeoutMs) {
        this(maxMessageSize, maxPostedRecvs, maxRegions, connectTimeoutMs, livenessTimeoutMs, 0);
    }
}
