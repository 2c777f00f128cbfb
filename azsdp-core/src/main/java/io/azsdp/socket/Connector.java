package io.azsdp.socket;

import io.azsdp.config.AzSdpConfig;
import io.azsdp.fabric.Bootstrap;
import io.azsdp.fabric.Endpoint;
import io.azsdp.fabric.Fabric;
import io.azsdp.fabric.FabricOptions;
import io.azsdp.fabric.Fabrics;
import io.azsdp.metrics.AzSdpMetrics;
import io.azsdp.sdp.Hello;
import io.azsdp.sdp.SdpConnection;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.Arrays;

/** Establishes SDP connections: Hello/HelloAck over the bootstrap, then the engine on the chosen fabric. */
final class Connector {
    private Connector() {
    }

    /** What we announce on {@code fabric} (chosen before the Hello: its receive buffers may differ). */
    static Hello localHello(AzSdpConfig cfg, String fabric) {
        return new Hello(cfg.bcopyBuffers(fabric), cfg.intValue(AzSdpConfig.ZCOPY_MAX_ADVERTS),
                cfg.intValue(AzSdpConfig.BCOPY_BUFFER_SIZE));
    }

    static FabricOptions fabricOptions(AzSdpConfig cfg, String fabric) {
        int adverts = cfg.intValue(AzSdpConfig.ZCOPY_MAX_ADVERTS);
        return new FabricOptions(cfg.intValue(AzSdpConfig.BCOPY_BUFFER_SIZE), cfg.bcopyBuffers(fabric),
                16 + 2 * adverts, cfg.intValue(AzSdpConfig.CONNECT_TIMEOUT_MS),
                cfg.intValue(AzSdpConfig.LIVENESS_TIMEOUT_MS), cfg.intValue(AzSdpConfig.WAIT_SPIN_MICROS));
    }

    static SdpConnection connect(InetSocketAddress remote, InetSocketAddress localBind, AzSdpConfig cfg,
                                 int timeoutMs) throws IOException {
        if (remote.isUnresolved()) {
            throw new java.net.UnknownHostException(remote.getHostString());
        }
        Fabric fabric = Fabrics.choose(cfg.get(AzSdpConfig.FABRIC), remote.getAddress());
        Hello local = localHello(cfg, fabric.name());
        int timeout = timeoutMs > 0 ? timeoutMs : cfg.intValue(AzSdpConfig.CONNECT_TIMEOUT_MS);
        Bootstrap.Connected c = Bootstrap.connect(remote, localBind, fabric, local.encodeHello(),
                fabricOptions(cfg, fabric.name()), timeout);
        return start(c.endpoint(), cfg, local, () -> Hello.decodeHelloAck(c.peerPrivateData()));
    }

    /** Server side of one connection request; the channel is closed on failure. */
    static SdpConnection accept(Bootstrap.Incoming in, AzSdpConfig cfg) throws IOException {
        String name = in.fabricName();
        if (!Arrays.asList(cfg.get(AzSdpConfig.SERVER_FABRICS).split(",")).contains(name)) {
            in.reject("fabric '" + name + "' is not enabled on this server (" + AzSdpConfig.SERVER_FABRICS + "="
                    + cfg.get(AzSdpConfig.SERVER_FABRICS) + ")");
            throw new IOException("rejected a client asking for fabric '" + name + "': not enabled");
        }
        String why = Fabrics.unavailableReason(name);
        if (why != null) {
            in.reject("fabric '" + name + "' unavailable on the server: " + why);
            throw new IOException("rejected a client asking for fabric '" + name + "': " + why);
        }
        Hello peer;
        try {
            peer = Hello.decodeHello(in.privateData());
        } catch (IOException e) {
            in.reject(e.getMessage());
            throw e;
        }
        Hello local = localHello(cfg, name);
        Endpoint ep = in.accept(Fabrics.get(name), local.encodeHelloAck(), fabricOptions(cfg, name));
        return start(ep, cfg, local, () -> peer);
    }

    private interface PeerHello {
        Hello get() throws IOException;
    }

    private static SdpConnection start(Endpoint ep, AzSdpConfig cfg, Hello local, PeerHello peer)
            throws IOException {
        AzSdpMetrics.register();
        try {
            return new SdpConnection(ep, cfg, local, peer.get());
        } catch (Throwable e) {
            ep.abort(); // even on OutOfMemoryError: the endpoint must not outlive a failed setup
            ep.close(); // nor its memory for receives in place
            throw e;
        }
    }
}
