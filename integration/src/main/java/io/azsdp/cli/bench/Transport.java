package io.azsdp.cli.bench;

import io.azsdp.cli.Link;
import io.azsdp.config.AzSdpConfig;
import io.azsdp.socket.AzSdpSocket;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.List;

/**
 * A fabric and mode to measure. AZ-SDP fabrics {@code shm} and {@code tcp} with modes {@code bcopy}, {@code zcopy},
 * {@code azsdp} (asynchronous zero copy, page protection), {@code azsdp-copy} (asynchronous, staging copies) and
 * {@code auto}; the baselines are fabric {@code javatcp}: mode {@code socket} ({@code java.net.Socket} streams, heap
 * arrays) and mode {@code nio} ({@code SocketChannel}, direct buffers), both over TCP with TCP_NODELAY.
 */
public record Transport(String fabric, String mode) {
    public static final String JAVATCP = "javatcp";
    public static final List<String> FABRICS = List.of("shm", "tcp", JAVATCP);
    public static final List<String> SDP_MODES = List.of("bcopy", "zcopy", "azsdp", "auto");
    public static final List<String> JAVA_MODES = List.of("socket", "nio");

    /** Every fabric/mode pair of {@code fabrics} x {@code modes} that exists, in that order. */
    public static List<Transport> select(List<String> fabrics, List<String> modes) {
        List<Transport> out = new ArrayList<>();
        for (String f : fabrics) {
            for (String m : modes) {
                if (f.equals(JAVATCP) ? JAVA_MODES.contains(m) : SDP_MODES.contains(m) || m.equals("azsdp-copy")) {
                    out.add(new Transport(f, m));
                }
            }
        }
        return out;
    }

    public String label() {
        return fabric + "/" + mode;
    }

    /** Connects to the server's listener for this transport. */
    public Link open(Endpoints server) throws IOException {
        if (fabric.equals(JAVATCP)) {
            if (mode.equals("nio")) {
                return Link.of(SocketChannel.open(new InetSocketAddress(server.host(), server.nio())));
            }
            Socket s = new Socket();
            s.connect(new InetSocketAddress(server.host(), server.javatcp()), 10_000);
            return Link.of(s);
        }
        boolean copy = mode.equals("azsdp-copy");
        AzSdpSocket s = new AzSdpSocket(AzSdpConfig.global().with(AzSdpConfig.FABRIC, fabric)
                .with(AzSdpConfig.MODE, copy ? "azsdp" : mode)
                .with(AzSdpConfig.PROTECTION, copy ? "copy" : "mprotect"));
        s.connect(new InetSocketAddress(server.host(), server.azsdp()), 10_000);
        return Link.of(s);
    }
}
