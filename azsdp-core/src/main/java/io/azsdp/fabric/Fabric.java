package io.azsdp.fabric;

import java.io.IOException;
import java.nio.channels.SocketChannel;

/**
 * A fabric provider: a verbs-like transport (shm, tcp, rdma). Providers are stateless factories; all per-connection
 * state lives in the {@link Endpoint}. Connections are bootstrapped over a TCP connection by {@link Bootstrap}
 * (the role rdma_cm plays for verbs): once the bootstrap preamble has been exchanged, the provider runs its own
 * handshake on the same channel and returns an endpoint that is connected but not yet started.
 */
public interface Fabric {

    /** Short, stable name used in configuration and on the wire ("shm", "tcp", "rdma"). */
    String name();

    /** Null when the provider can be used in this process, otherwise a human-readable reason. */
    String unavailableReason();

    /**
     * Client side of the provider handshake. The bootstrap preamble has already been exchanged on {@code channel};
     * the provider may keep the channel (tcp) or close it once its own transport is up (shm closes it).
     */
    Endpoint connect(SocketChannel channel, FabricOptions options) throws IOException;

    /** Server side of the provider handshake; see {@link #connect}. */
    Endpoint accept(SocketChannel channel, FabricOptions options) throws IOException;
}
