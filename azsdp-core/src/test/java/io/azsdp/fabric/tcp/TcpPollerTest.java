package io.azsdp.fabric.tcp;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.azsdp.config.AzSdpConfig;
import io.azsdp.socket.AzSdpChannel;
import io.azsdp.socket.SocketPair;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Through the socket API on tcp: a writer that waits reads the peer's replies to it itself, in the kernel, as a
 * blocking socket would, instead of each one waking the endpoint's reader thread. Every byte is checksummed.
 */
@Timeout(60)
class TcpPollerTest {
    private static final int SIZE = 64 << 10;

    /**
     * A bcopy stream of 64 KiB messages to a reader slower than the writer: the writer runs out of credits again and
     * again, and the credit updates that release it are read by the writer, not handed to it by the reader thread
     * (which then stays napping rather than in its selector, woken by every update). Counted after a warm-up.
     */
    @Test
    void aStreamingWriterReadsItsCreditUpdatesItself() throws Exception {
        try (SocketPair pair = SocketPair.open("tcp", "bcopy")) {
            int warmUp = 100;
            int messages = 1100;
            long bytes = (long) messages * SIZE;
            CompletableFuture<Long> received = CompletableFuture.supplyAsync(() -> crcOf(pair.peer, bytes, true));
            byte[] msg = new byte[SIZE];
            CRC32C sent = new CRC32C();
            OutputStream out = pair.client.getOutputStream();
            TcpEndpoint ep = (TcpEndpoint) pair.client.connection().endpoint();
            long[] atWarmUp = null;
            for (int m = 0; m < messages; m++) {
                if (m == warmUp) {
                    atWarmUp = framesRead(ep);
                }
                msg[m % SIZE] ^= (byte) (m + 1); // every message differs
                sent.update(msg);
                out.write(msg);
            }
            assertEquals(sent.getValue(), received.get(30, TimeUnit.SECONDS), "CRC32C of the stream");
            assertMostlyPolled(ep, atWarmUp, 50);
        }
    }

    /**
     * Synchronous zero-copy writes of 64 KiB, back to back: each waits for the peer's READ and then its RdmaRdCompl.
     * The waiting writer serves the READ request and reads the completion in one wait; it used to return after the
     * request, and the completion then waited for the reader thread's nap. Counted after a warm-up.
     */
    @Test
    void aSynchronousZeroCopyWriterServesTheReadAndTakesItsCompletionInOneWait() throws Exception {
        try (SocketPair pair = SocketPair.open("tcp", "zcopy")) {
            int warmUp = 50;
            int messages = 350;
            AzSdpChannel out = pair.client.byteChannel();
            AzSdpChannel in = pair.azPeer().byteChannel();
            CompletableFuture<Void> reader = CompletableFuture.runAsync(() -> {
                ByteBuffer got = ByteBuffer.allocateDirect(SIZE);
                ByteBuffer want = ByteBuffer.allocateDirect(SIZE);
                try {
                    for (int m = 0; m < messages; m++) {
                        got.clear();
                        while (got.hasRemaining()) {
                            assertTrue(in.read(got) > 0, "end of stream in message " + m);
                        }
                        SocketPair.fill(want, m % 2);
                        assertEquals(want, got.flip(), "message " + m);
                    }
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            });
            ByteBuffer[] msgs = {ByteBuffer.allocateDirect(SIZE), ByteBuffer.allocateDirect(SIZE)};
            SocketPair.fill(msgs[0], 0);
            SocketPair.fill(msgs[1], 1);
            TcpEndpoint ep = (TcpEndpoint) pair.client.connection().endpoint();
            long[] atWarmUp = null;
            for (int m = 0; m < messages; m++) {
                if (m == warmUp) {
                    atWarmUp = framesRead(ep);
                }
                out.write(msgs[m % 2].rewind()); // back to back: a synchronous write may reuse its buffer at once
            }
            reader.get(30, TimeUnit.SECONDS);
            assertMostlyPolled(ep, atWarmUp, 2 * (messages - warmUp));
        }
    }

    /**
     * Ping-pong of 64-byte messages with a busy poll long enough for any reply: a reader waiting for the echo looks at
     * the socket without blocking until it comes, instead of sleeping in the kernel (whose wake-up on a virtual
     * machine with an idle vCPU took about 100 us of a 120 us round trip here). Every echo is compared.
     */
    @Test
    void aWaitingReaderBusyPollsTheSocketBeforeItSleeps() throws Exception {
        long[] waits = pingPong(10_000, 0);
        assertTrue(waits[0] >= PING_PONGS / 10, "only " + waits[0] + " waits ended in the busy poll");
        assertTrue(waits[1] * 10 < waits[0], waits[1] + " waits slept in the kernel, " + waits[0] + " busy-polled");
    }

    /**
     * The echo comes about 3x the configured busy poll late: after the first waits sleep, the window grows (up to 8x)
     * and covers the replies. With a fixed window every wait would sleep.
     */
    @Test
    void theBusyPollWindowGrowsToRepliesThatComeLaterThanConfigured() throws Exception {
        long[] waits = pingPong(200, 600);
        assertTrue(waits[1] * 2 < waits[0], waits[1] + " waits slept in the kernel, " + waits[0] + " busy-polled");
    }

    /**
     * Both directions at once on one connection, a reader and a writer thread at each end, every byte checksummed: a
     * thread that has to wait while the other thread of its end reads the socket (and so delivers this one's credit
     * updates or data too) watches for that thread's signal, spinning, instead of parking on its condition at once.
     */
    @Test
    void aWaiterWatchesForWhatTheOtherThreadOfItsConnectionReads() throws Exception {
        AzSdpConfig cfg = SocketPair.config("tcp", "bcopy").with(AzSdpConfig.WAIT_SPIN_MICROS, 10_000);
        try (SocketPair pair = SocketPair.open(cfg)) {
            int messages = 600;
            long bytes = (long) messages * SIZE;
            CompletableFuture<Long> clientGot = CompletableFuture.supplyAsync(() -> crcOf(pair.client, bytes, false));
            CompletableFuture<Long> peerGot = CompletableFuture.supplyAsync(() -> crcOf(pair.peer, bytes, false));
            CompletableFuture<Long> peerSent = CompletableFuture.supplyAsync(() -> writeAll(pair.peer, messages, 1));
            long clientSent = writeAll(pair.client, messages, 2);
            assertEquals(clientSent, peerGot.get(30, TimeUnit.SECONDS), "CRC32C client -> server");
            assertEquals(peerSent.get(30, TimeUnit.SECONDS), clientGot.get(30, TimeUnit.SECONDS),
                    "CRC32C server -> client");
            long caught = pair.client.connection().stats().signalsCaughtSpinning()
                    + pair.azPeer().connection().stats().signalsCaughtSpinning();
            assertTrue(caught >= 10, "only " + caught + " waits caught the other thread's signal spinning");
        }
    }

    /** Writes {@code messages} messages of {@link #SIZE} bytes, each different; their CRC32C. */
    private static long writeAll(Socket s, int messages, int seed) {
        byte[] msg = new byte[SIZE];
        Arrays.fill(msg, (byte) seed);
        CRC32C crc = new CRC32C();
        try {
            OutputStream out = s.getOutputStream();
            for (int m = 0; m < messages; m++) {
                msg[m % SIZE] ^= (byte) (m + seed);
                crc.update(msg);
                out.write(msg);
            }
        } catch (IOException e) {
            throw new RuntimeException(e);
        }
        return crc.getValue();
    }

    private static final int PING_PONGS = 2000;

    /**
     * 64-byte ping-pongs on tcp with {@code spinMicros} of busy poll, the echo {@code delayMicros} late (a spin), every
     * echo compared; returns the client's waits after a warm-up: {busy-polled, slept in the kernel}.
     */
    private static long[] pingPong(int spinMicros, int delayMicros) throws Exception {
        AzSdpConfig cfg = SocketPair.config("tcp", "bcopy").with(AzSdpConfig.WAIT_SPIN_MICROS, spinMicros);
        int warmUp = 200;
        int trips = warmUp + PING_PONGS;
        try (SocketPair pair = SocketPair.open(cfg)) {
            CompletableFuture<Void> echo = CompletableFuture.runAsync(() -> {
                byte[] b = new byte[64];
                try (InputStream in = pair.peer.getInputStream(); OutputStream out = pair.peer.getOutputStream()) {
                    for (int t = 0; t < trips; t++) {
                        readFully(in, b);
                        long until = System.nanoTime() + delayMicros * 1000L;
                        while (System.nanoTime() < until) {
                            Thread.onSpinWait();
                        }
                        out.write(b);
                    }
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            });
            TcpEndpoint ep = (TcpEndpoint) pair.client.connection().endpoint();
            InputStream in = pair.client.getInputStream();
            OutputStream out = pair.client.getOutputStream();
            byte[] msg = new byte[64];
            byte[] got = new byte[64];
            long[] before = null;
            for (int t = 0; t < trips; t++) {
                if (t == warmUp) {
                    before = ep.pollerWaits();
                }
                Arrays.fill(msg, (byte) t);
                msg[t % 64] = (byte) ~t;
                out.write(msg);
                readFully(in, got);
                assertArrayEquals(msg, got, "echo " + t);
            }
            echo.get(30, TimeUnit.SECONDS);
            long[] after = ep.pollerWaits();
            return new long[] {after[0] - before[0], after[1] - before[1]};
        }
    }

    private static void readFully(InputStream in, byte[] b) throws IOException {
        for (int off = 0; off < b.length; ) {
            int n = in.read(b, off, b.length - off);
            if (n < 0) {
                throw new EOFException("end of stream");
            }
            off += n;
        }
    }

    /** Frames the endpoint has read so far: by its reader thread, by pollers. */
    private static long[] framesRead(TcpEndpoint ep) {
        return new long[] {ep.framesReadByReaderThread(), ep.framesReadByPollers()};
    }

    /** Of the frames the endpoint read since {@code before}, at least {@code min}, the reader thread read under 1/4. */
    private static void assertMostlyPolled(TcpEndpoint ep, long[] before, long min) {
        long[] now = framesRead(ep);
        long byThread = now[0] - before[0];
        long total = byThread + now[1] - before[1];
        assertTrue(total >= min, "only " + total + " frames came back");
        assertTrue(byThread * 4 < total, "the reader thread read " + byThread + " of " + total + " frames");
    }

    /**
     * Reads exactly {@code bytes} bytes (without closing the stream: that would close the socket); their CRC32C. A
     * {@code slow} reader sleeps every 16 reads, so that the writer must wait for credits.
     */
    private static long crcOf(Socket s, long bytes, boolean slow) {
        CRC32C crc = new CRC32C();
        byte[] buf = new byte[SIZE];
        int reads = 0;
        try {
            InputStream in = s.getInputStream();
            for (long left = bytes; left > 0; ) {
                int n = in.read(buf, 0, (int) Math.min(buf.length, left));
                if (n < 0) {
                    throw new EOFException("end of stream with " + left + " bytes to go");
                }
                crc.update(buf, 0, n);
                left -= n;
                if (slow && ++reads % 16 == 0) {
                    Thread.sleep(1);
                }
            }
        } catch (Exception e) {
            throw new RuntimeException(e);
        }
        return crc.getValue();
    }
}
