package io.azsdp.socket;

import io.azsdp.config.AzSdpConfig;
import io.azsdp.fabric.Fabrics;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.util.Properties;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Assumptions;

/** For tests: a connected client and accepted peer on a fresh server, for one fabric and mode; closes all three. */
public final class SocketPair implements AutoCloseable {
    public final AzSdpServerSocket server;
    public final AzSdpSocket client;
    public final Socket peer;

    private SocketPair(AzSdpServerSocket server, AzSdpSocket client, Socket peer) {
        this.server = server;
        this.client = client;
        this.peer = peer;
    }

    public static SocketPair open(String fabric, String mode) throws Exception {
        return open(config(fabric, mode));
    }

    public static SocketPair open(AzSdpConfig cfg) throws Exception {
        assumeFabric(cfg.get(AzSdpConfig.FABRIC));
        AzSdpServerSocket server = new AzSdpServerSocket(cfg);
        server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
        CompletableFuture<Socket> accepted = acceptAsync(server);
        AzSdpSocket client = new AzSdpSocket(cfg);
        return new SocketPair(server, client, connect(client, server, accepted));
    }

    /** The accepted end as an AZ-SDP socket. */
    public AzSdpSocket azPeer() {
        return (AzSdpSocket) peer;
    }

    @Override
    public void close() throws IOException {
        try (server; client; peer) {
            // closes all three, in reverse order
        }
    }

    public static AzSdpConfig config(String fabric, String mode) {
        Properties p = new Properties();
        p.setProperty(AzSdpConfig.FABRIC, fabric);
        p.setProperty(AzSdpConfig.MODE, mode);
        p.setProperty(AzSdpConfig.LIVENESS_TIMEOUT_MS, "2000");
        return AzSdpConfig.load(p);
    }

    public static void assumeFabric(String fabric) {
        String why = Fabrics.unavailableReason(fabric);
        Assumptions.assumeTrue(why == null, () -> "fabric " + fabric + " unavailable: " + why);
    }

    public static CompletableFuture<Socket> acceptAsync(AzSdpServerSocket server) {
        return CompletableFuture.supplyAsync(() -> {
            try {
                return server.accept();
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        });
    }

    public static Socket connect(AzSdpSocket client, AzSdpServerSocket server, CompletableFuture<Socket> accepted)
            throws Exception {
        client.connect(server.getLocalSocketAddress(), 5000);
        return accepted.get(10, TimeUnit.SECONDS);
    }

    /** Fills all of {@code b} with the bytes of message {@code seed} and flips it, ready to write or compare. */
    public static void fill(ByteBuffer b, int seed) {
        b.clear();
        Random r = new Random(seed);
        while (b.hasRemaining()) {
            b.put((byte) r.nextInt());
        }
        b.flip();
    }

    /** Reads {@code bytes} from {@code in}, {@code chunk} at most per read; the CRC32C of them all. */
    public static long drainCrc(ByteChannel in, long bytes, int chunk) {
        ByteBuffer dst = ByteBuffer.allocateDirect(chunk);
        CRC32C crc = new CRC32C();
        try {
            for (long left = bytes; left > 0; ) {
                dst.clear().limit((int) Math.min(chunk, left));
                int n = in.read(dst);
                if (n < 0) {
                    throw new IOException("end of stream with " + left + " bytes to come");
                }
                crc.update(dst.flip());
                left -= n;
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return crc.getValue();
    }
}
