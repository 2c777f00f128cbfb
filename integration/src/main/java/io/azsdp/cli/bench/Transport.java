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
 * arrays) and mode {@code nio} ({@code SocketChannel}, direct buffers), both over TCP with TCP_NODELAY. A mode with
 * the suffix {@value #HEAP_SUFFIX} ({@code auto-heap}, {@code nio-heap}) is that mode with heap arrays at both ends
 * (see {@link Link#useHeap}).
 */
public record Transport(String fabric, String mode) {
    public static final String HEAP_SUFFIX = "-heap";
    public static final String JAVATCP = "javatcp";
    public static final List<String> FABRICS = List.of("shm", "tcp", JAVATCP);
    public static final List<String> SDP_MODES = List.of("bcopy", "zcopy", "azsdp", "auto");
    public static final List<String> JAVA_MODES = List.of("socket", "nio");

    /** Every fabric/mode pair of {@code fabrics} x {@code modes} that exists, in that order. */
    public static List<Transport> select(List<String> fabrics, List<String> modes) {
        List<Transport> out = new ArrayList<>();
        for (String f : fabrics) {
            for (String m : modes) {
                Transport t = new Transport(f, m);
                String b = t.baseMode();
                // socket-heap is no transport: Java's socket streams use heap arrays already
                if (f.equals(JAVATCP) ? JAVA_MODES.contains(b) && !m.equals("socket" + HEAP_SUFFIX)
                        : SDP_MODES.contains(b) || b.equals("azsdp-copy")) {
                    out.add(t);
                }
            }
        }
        return out;
    }

    public String label() {
        return fabric + "/" + mode;
    }

    /** Heap arrays at both ends. */
    public boolean heap() {
        return mode.endsWith(HEAP_SUFFIX);
    }

    /** The mode without {@value #HEAP_SUFFIX}. */
    public String baseMode() {
        return heap() ? mode.substring(0, mode.length() - HEAP_SUFFIX.length()) : mode;
    }

    /** Connects to the server's listener for this transport. */
    public Link open(Endpoints server) throws IOException {
        return connect(server).useHeap(heap());
    }

    private Link connect(Endpoints server) throws IOException {
        String m = baseMode();
        if (fabric.equals(JAVATCP)) {
            if (m.equals("nio")) {
                return Link.of(SocketChannel.open(new InetSocketAddress(server.host(), server.nio())));
            }
            Socket s = new Socket();
            s.connect(new InetSocketAddress(server.host(), server.javatcp()), 10_000);
            return Link.of(s);
        }
        boolean copy = m.equals("azsdp-copy");
        AzSdpSocket s = new AzSdpSocket(AzSdpConfig.global().with(AzSdpConfig.FABRIC, fabric)
                .with(AzSdpConfig.MODE, copy ? "azsdp" : m)
                .with(AzSdpConfig.PROTECTION, copy ? "copy" : "mprotect"));
        s.connect(new InetSocketAddress(server.host(), server.azsdp()), 10_000);
        return Link.of(s);
    }
}
