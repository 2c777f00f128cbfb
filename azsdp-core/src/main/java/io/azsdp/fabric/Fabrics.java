package io.azsdp.fabric;

import io.azsdp.fabric.shm.ShmFabric;
import io.azsdp.fabric.tcp.TcpFabric;
import java.io.IOException;
import java.net.InetAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The fabric providers of this process, by name, and the per-connection choice of one. */
public final class Fabrics {
    private static final Logger LOG = LoggerFactory.getLogger(Fabrics.class);
    private static final Map<String, Fabric> PROVIDERS = Map.of("shm", new ShmFabric(), "tcp", new TcpFabric());
    private static volatile boolean shmFallbackLogged;

    private Fabrics() {
    }

    /** The provider named {@code name}; throws if unknown or unavailable here. */
    public static Fabric get(String name) throws IOException {
        Fabric f = PROVIDERS.get(name);
        if (f == null) {
            throw new IOException("fabric '" + name + "' is not available in this build (known: "
                    + PROVIDERS.keySet() + ")");
        }
        String why = f.unavailableReason();
        if (why != null) {
            throw new IOException("fabric '" + name + "' unavailable: " + why);
        }
        return f;
    }

    /** Null when {@code name} can be used here, else why not. */
    public static String unavailableReason(String name) {
        Fabric f = PROVIDERS.get(name);
        return f == null ? "not in this build" : f.unavailableReason();
    }

    /**
     * Picks the fabric for a connection to {@code remote}: the configured one, or for {@code auto} shm when the peer
     * is on this host and shm works here, tcp otherwise.
     */
    public static Fabric choose(String configured, InetAddress remote) throws IOException {
        if (!"auto".equals(configured)) {
            return get(configured);
        }
        if (isLocal(remote)) {
            String why = unavailableReason("shm");
            if (why == null) {
                return PROVIDERS.get("shm");
            }
            if (!shmFallbackLogged) {
                shmFallbackLogged = true;
                LOG.warn("AZ-SDP: shm fabric unavailable ({}); local connections use the tcp fabric", why);
            }
        }
        return get("tcp");
    }

    /** True when {@code addr} is an address of this host. */
    public static boolean isLocal(InetAddress addr) {
        if (addr.isLoopbackAddress() || addr.isAnyLocalAddress()) {
            return true;
        }
        try {
            return NetworkInterface.getByInetAddress(addr) != null;
        } catch (SocketException e) {
            return false;
        }
    }
}
