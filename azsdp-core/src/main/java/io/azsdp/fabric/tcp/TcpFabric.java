package io.azsdp.fabric.tcp;

import io.azsdp.fabric.Endpoint;
import io.azsdp.fabric.Fabric;
import io.azsdp.fabric.FabricOptions;
import jdk.net.ExtendedSocketOptions;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.net.SocketOption;
import java.net.StandardSocketOptions;
import java.nio.channels.SocketChannel;
import java.util.Objects;

/**
 * The portable fabric: RC verbs emulated over the bootstrap TCP connection itself (one TCP connection per endpoint).
 * Memory is "registered" by bookkeeping only; one-sided operations are served by the peer's reader thread straight
 * from and into its registered direct buffers. Always available.
 */
public final class TcpFabric implements Fabric {
    public static final String NAME = "tcp";
    private static final Logger log = LoggerFactory.getLogger(TcpFabric.class);
    private static final int KEEPALIVE_PROBES = 3;

    public TcpFabric() {
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public String unavailableReason() {
        return null;
    }

    @Override
    public Endpoint connect(SocketChannel channel, FabricOptions options) throws IOException {
        return open(channel, options, Handshake.ROLE_CONNECT);
    }

    @Override
    public Endpoint accept(SocketChannel channel, FabricOptions options) throws IOException {
        return open(channel, options, Handshake.ROLE_ACCEPT);
    }

    /** On failure the channel is closed: its stream is mid-handshake and useless to anyone else. */
    private static Endpoint open(SocketChannel channel, FabricOptions options, byte role) throws IOException {
        Objects.requireNonNull(channel, "channel");
        Objects.requireNonNull(options, "options");
        try {
            if (!channel.isConnected()) {
                throw new IOException("tcp fabric needs a connected channel: " + channel);
            }
            if (!channel.isBlocking()) {
                channel.configureBlocking(true);
            }
            configure(channel, options);
            int peerMaxMessageSize = Handshake.exchange(channel, options, role);
            return new TcpEndpoint(channel, options, peerMaxMessageSize);
        } catch (IOException | RuntimeException e) {
            try {
                channel.close();
            } catch (IOException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
    }

    /**
     * TCP_NODELAY (each frame is a complete message), and keepalive so a silent dead peer is noticed within about
     * livenessTimeoutMs: idle for half of it, then {@value #KEEPALIVE_PROBES} probes spread over the other half.
     */
    private static void configure(SocketChannel channel, FabricOptions options) throws IOException {
        channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
        channel.setOption(StandardSocketOptions.SO_KEEPALIVE, true);
        int totalSec = Math.max(2, options.livenessTimeoutMs() / 1000);
        int idleSec = Math.max(1, totalSec / 2);
        int intervalSec = Math.max(1, (totalSec - idleSec) / KEEPALIVE_PROBES);
        setIfSupported(channel, ExtendedSocketOptions.TCP_KEEPIDLE, idleSec);
        setIfSupported(channel, ExtendedSocketOptions.TCP_KEEPINTERVAL, intervalSec);
        setIfSupported(channel, ExtendedSocketOptions.TCP_KEEPCOUNT, KEEPALIVE_PROBES);
    }

    private static void setIfSupported(SocketChannel channel, SocketOption<Integer> option, int value) {
        if (!channel.supportedOptions().contains(option)) {
            return;
        }
        try {
            channel.setOption(option, value);
        } catch (IOException | UnsupportedOperationException e) {
            log.debug("cannot set {}={}: {}", option.name(), value, e.toString());
        }
    }
}
