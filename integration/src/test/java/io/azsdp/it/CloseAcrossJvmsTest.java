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
 *       then end of stream. We read all but the last 640 KiB, wait for the peer to exit, then read the rest. The
 *       peer writes in bcopy here, so those bytes were only posted (not delivered) when its write returned;
 *   <li>abortive ({@code SO_LINGER 0} + close) while our reader is blocked: it gets an IOException whose message
 *       contains "reset", while the peer process is still alive (so it is the abort we see, not a death).
 * </ul>
 * {@code SO_TIMEOUT} is set, so a missing end of stream or reset fails as a SocketTimeoutException, never a hang.
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class CloseAcrossJvmsTest extends MultiJvmTestBase {
    /**
     * Bytes we leave unread until the peer has exited. Every bcopy message of them holds one of our 16 receive buffers,
     * i.e. one of the peer's credits, and it may only use 14 for data (2 are reserve): so the seed is chosen such that
     * they fit in 13 messages (at least 11 full ones), leaving room for the DisConn.
     */
    private static final int HOLD_BACK = 640 << 10;
    private static final int MAX_TAIL_MESSAGES = 13;
    private static final int BCOPY_PAYLOAD = 65536 - 16;

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
        long n;
        for (int attempt = 0; ; attempt++) {
            if (attempt == 10_000) {
                throw new IllegalStateException("no seed gives a tail of at most " + MAX_TAIL_MESSAGES + " messages");
            }
            Random r = new Random(seed);
            n = close == Close.ABORTIVE ? (1 << 20) + r.nextInt(1 << 20) : (4L << 20) + r.nextInt(4 << 20);
            // While we hold the tail unread, every message of it holds one of our buffers, i.e. one peer credit.
            if (close != Close.ORDERLY_THEN_EXIT || tailMessages(seed, n, HOLD_BACK) <= MAX_TAIL_MESSAGES) {
                break;
            }
            seed++;
        }
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
                    assertEquals("ConnectionWaits.awaitReadable", at, "where the reader waits before the abort");
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

    /** How many bcopy messages (default 64 KiB buffers) carry the last {@code tail} bytes of {@code n}. */
    static int tailMessages(long seed, long n, long tail) {
        Traffic.Segments seg = new Traffic.Segments(seed, Traffic.MAX_MESSAGE);
        long pos = 0;
        int count = 0;
        while (pos < n) {
            seg.next();
            long len = Math.min(seg.len, n - pos);
            for (long m = pos; m < pos + len; m += BCOPY_PAYLOAD) {
                if (Math.min(m + BCOPY_PAYLOAD, pos + len) > n - tail) {
                    count++;
                }
            }
            pos += len;
        }
        return count;
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
