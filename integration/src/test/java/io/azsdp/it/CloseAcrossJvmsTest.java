package io.azsdp.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.azsdp.config.AzSdpConfig;
import io.azsdp.socket.AzSdpServerSocket;
import io.azsdp.socket.AzSdpSocket;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Closes across JVMs. Here the test JVM is the server and the peer the client (its {@code azsdp.fabric} picks the
 * fabric), the other way round from the other tests.
 * <ul>
 *   <li>orderly: the peer writes N bytes (random sizes and paths, mode auto) and closes; we read exactly N bytes with
 *       the right checksum, then end of stream on every read path, repeatedly;
 *   <li>orderly, then the peer process exits at once (as any TCP client may): every byte it wrote is still delivered,
 *       then end of stream. We read all but the last {@value #HOLD_BACK} bytes, wait for the peer to exit, then read
 *       the rest. The peer writes in bcopy here, so those bytes were only posted when its write returned;
 *   <li>abortive ({@code SO_LINGER 0} + close) while our reader is blocked: it gets an IOException whose message
 *       contains "reset", while the peer process is still alive (so it is the abort we see, not a death).
 * </ul>
 * {@code SO_TIMEOUT} is set, so a missing end of stream or reset fails as a SocketTimeoutException, never a hang.
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class CloseAcrossJvmsTest extends MultiJvmTestBase {
    private static final int HOLD_BACK = 256 << 10;

    enum Close {
        ORDERLY("close", "auto"),
        ORDERLY_THEN_EXIT("close-exit", "bcopy"),
        ABORTIVE("abort", "auto");

        final String op;
        final String peerMode;

        Close(String op, String peerMode) {
            this.op = op;
            this.peerMode = peerMode;
        }
    }

    static Stream<Arguments> cases() {
        Stream.Builder<Arguments> b = Stream.builder();
        for (String fabric : new String[] {"shm", "tcp"}) {
            for (Close c : Close.values()) {
                b.add(Arguments.of(fabric, c));
            }
        }
        return b.build();
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("cases")
    void closeAcrossJvms(String fabric, Close close) throws Exception {
        assumeFabric(fabric);
        String what = fabric + "/" + close;
        long seed = System.nanoTime();
        Random r = new Random(seed);
        long n = close == Close.ABORTIVE ? (1 << 20) + r.nextInt(1 << 20) : (4L << 20) + r.nextInt(4 << 20);
        try (AzSdpServerSocket server = new AzSdpServerSocket(config())) {
            server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            server.setSoTimeout(30_000);
            Peer peer = Peer.start("closer-" + fabric + "-" + close, peerProps(AzSdpConfig.FABRIC, fabric,
                    AzSdpConfig.MODE, close.peerMode), "connect", "port=" + server.getLocalPort(), "op=" + close.op,
                    "bytes=" + n, "seed=" + seed);
            AzSdpSocket s = track((AzSdpSocket) server.accept());
            assertEquals(fabric, s.fabricName(), "fabric of the accepted socket");
            assertEquals(fabric, peer.awaitFields("CONNECTED", Duration.ofSeconds(30)).get("fabric"), "peer's fabric");
            s.setSoTimeout(15_000);
            log("%s: peer %s writes %d bytes in %s mode, then closes; seed %d", what, peer, n, close.peerMode, seed);
            Traffic.Receiver rx = new Traffic.Receiver(s, seed, Traffic.MAX_MESSAGE, Traffic.MAX_MESSAGE);
            switch (close) {
                case ORDERLY -> {
                    Traffic.Result got = rx.receive(n, null);
                    assertEndOfStream(s);
                    checkPeerResult(peer, got, n);
                    peer.awaitLine("CLOSED", Duration.ofSeconds(10));
                }
                case ORDERLY_THEN_EXIT -> {
                    rx.receive(n - HOLD_BACK, null);
                    Map<String, String> sent = peer.awaitFields("RESULT", Duration.ofSeconds(15));
                    peer.awaitLine("CLOSED", Duration.ofSeconds(15));
                    int exit = peer.awaitExit(Duration.ofSeconds(15));
                    log("%s: peer exited (status %d) with %d bytes not read by us yet", what, exit, HOLD_BACK);
                    Traffic.Result got = rx.receive(HOLD_BACK, null);
                    assertEndOfStream(s);
                    assertEquals(n, Long.parseLong(sent.get("sentBytes")), "bytes the peer wrote");
                    assertEquals(Long.parseLong(sent.get("sentCrc")), got.crc(), "CRC32C of all " + n + " bytes");
                }
                case ABORTIVE -> {
                    Traffic.Result got = rx.receive(n, null);
                    checkPeerResult(peer, got, n);
                    Task<Integer> reader = start(what + "-blocked-reader", () -> s.getInputStream().read());
                    String at = awaitBlocked(what, reader, new AtomicLong(), peer);
                    assertEquals("SdpConnection.awaitReadable", at, "where the reader waits before the abort");
                    long t0 = System.nanoTime();
                    peer.command("GO");
                    awaitDone(what + ": reset", Duration.ofSeconds(20), List.of(reader), List.of(peer));
                    Throwable e = reader.failure();
                    assertNotNull(e, () -> "read after the peer's abort returned " + reader.result.join()
                            + " instead of failing");
                    log("%s: blocked reader released after %d ms by %s", what,
                            TimeUnit.NANOSECONDS.toMillis(reader.endNanos - t0), e);
                    assertReset(e);
                    peer.awaitLine("ABORTED", Duration.ofSeconds(10));
                    assertTrue(peer.isAlive(), "the peer must still be alive: the reset has to come from its abort");
                    try {
                        int b = s.getInputStream().read();
                        fail("read after a reset returned " + b);
                    } catch (IOException again) {
                        assertReset(again);
                    }
                }
            }
            peer.close();
        }
    }

    private static void assertReset(Throwable e) {
        if (!(e instanceof IOException) || e instanceof SocketTimeoutException) {
            fail("expected an IOException reporting a reset, got " + e, e);
        }
        String m = String.valueOf(e.getMessage());
        assertTrue(m.toLowerCase(Locale.ROOT).contains("reset"), () -> "message without 'reset': " + e);
    }

    /** -1 from every read path, twice. */
    private static void assertEndOfStream(AzSdpSocket s) throws IOException {
        for (int i = 0; i < 2; i++) {
            assertEquals(-1, s.getInputStream().read(), "InputStream.read() at end of stream");
            assertEquals(-1, s.getInputStream().read(new byte[100], 0, 100), "InputStream.read(byte[]) at end");
            assertEquals(-1, s.byteChannel().read(ByteBuffer.allocateDirect(65536)), "channel read (direct) at end");
            assertEquals(-1, s.byteChannel().read(ByteBuffer.allocate(10)), "channel read (heap) at end");
        }
    }

    private static void checkPeerResult(Peer peer, Traffic.Result got, long n) throws InterruptedException {
        Map<String, String> sent = peer.awaitFields("RESULT", Duration.ofSeconds(15));
        assertEquals(n, got.bytes(), "bytes we read");
        assertEquals(n, Long.parseLong(sent.get("sentBytes")), "bytes the peer wrote");
        assertEquals(Long.parseLong(sent.get("sentCrc")), got.crc(), "CRC32C of the " + n + " bytes");
    }
}
