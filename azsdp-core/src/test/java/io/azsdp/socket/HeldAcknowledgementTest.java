package io.azsdp.socket;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.azsdp.config.AzSdpConfig;
import io.azsdp.sdp.SdpConnection;
import io.azsdp.sdp.TransferMode;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.util.Properties;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A reader that reads asynchronous adverts while more wait behind them holds their RdmaRdCompl and sends one for
 * several; the writer applies it to its adverts in order. It never holds one that a writer waits for: not when the
 * newest advert is synchronous, not when nothing more waits to be read. Both sides run in this JVM, so azsdp mode
 * sends heap writes from its staging ring, asynchronously, as it does wherever pages cannot be protected.
 */
@Timeout(120)
class HeldAcknowledgementTest {
    /** Large enough that the reader's next read takes each advert instead of staging it (DIRECT_ADVERT_MIN). */
    private static final int SIZE = 128 << 10;
    private static final Pattern QUEUED = Pattern.compile("adverts=\\d+/(\\d+)");

    @ParameterizedTest
    @ValueSource(strings = {"shm", "tcp"})
    void advertsReadBehindOthersAreAcknowledgedTogether(String fabric) throws Exception {
        int count = 6; // fewer than the 8 adverts outstanding allowed: every write returns at once
        try (SocketPair pair = SocketPair.open(config(fabric))) {
            ByteChannel in = pair.azPeer().byteChannel();
            ByteBuffer dst = startTakingAdverts(pair, in);
            SdpConnection reader = pair.azPeer().connection();
            SdpConnection writer = pair.client.connection();
            byte[][] sent = new byte[count][];
            OutputStream out = pair.client.getOutputStream();
            for (int i = 0; i < count; i++) {
                sent[i] = message(i);
                out.write(sent[i]);
            }
            if (fabric.equals("tcp")) { // on shm asynchronous SrcAvails wait in the ring for the reader's next poll
                awaitTrue(() -> queuedAdverts(reader) == count, () -> "adverts queued: " + reader);
            }
            long before = reader.stats().rdmaRdComplsSent();
            for (int i = 0; i < count; i++) {
                assertArrayEquals(sent[i], readMessage(in, dst), fabric + ": message " + i);
            }
            long acks = reader.stats().rdmaRdComplsSent() - before;
            assertTrue(acks >= 1 && acks <= count / 2,
                    () -> fabric + ": " + acks + " RdmaRdCompl for " + count + " adverts read behind others");
            pair.client.close(); // waits until the reader has acknowledged every advert
            assertEquals((long) count * SIZE, writer.stats().zcopyBytesSent(),
                    () -> fabric + ": bytes the writer saw acknowledged as read: " + writer.stats());
        }
    }

    /**
     * Two asynchronous adverts, then a synchronous one: its writer waits for every advert up to it, so reading the
     * two must acknowledge them at once (a writer interrupted there cancels only after its earlier adverts are done).
     */
    @ParameterizedTest
    @ValueSource(strings = {"shm", "tcp"})
    void advertsBeforeASynchronousOneAreNotHeld(String fabric) throws Exception {
        try (SocketPair pair = SocketPair.open(config(fabric))) {
            ByteChannel in = pair.azPeer().byteChannel();
            ByteBuffer dst = startTakingAdverts(pair, in);
            SdpConnection reader = pair.azPeer().connection();
            SdpConnection writer = pair.client.connection();
            OutputStream out = pair.client.getOutputStream();
            byte[][] sent = {message(0), message(1), message(2)};
            out.write(sent[0]);
            out.write(sent[1]);
            writer.setMode(TransferMode.ZCOPY);
            CompletableFuture<Void> sync = CompletableFuture.runAsync(() -> {
                try {
                    out.write(sent[2]);
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });
            awaitTrue(() -> queuedAdverts(reader) == 3, () -> "adverts queued: " + reader);
            assertArrayEquals(sent[0], readMessage(in, dst), fabric + ": message 0");
            assertArrayEquals(sent[1], readMessage(in, dst), fabric + ": message 1");
            awaitTrue(() -> writer.advertsOutstanding() == 1, () -> fabric
                    + ": the writer still waits for the adverts read before its synchronous one: " + writer);
            assertArrayEquals(sent[2], readMessage(in, dst), fabric + ": message 2");
            sync.get(30, TimeUnit.SECONDS);
            assertEquals(0, writer.advertsOutstanding());
        }
    }

    private static AzSdpConfig config(String fabric) {
        Properties p = new Properties();
        p.setProperty(AzSdpConfig.FABRIC, fabric);
        p.setProperty(AzSdpConfig.MODE, "azsdp");
        p.setProperty(AzSdpConfig.LIVENESS_TIMEOUT_MS, "2000");
        p.setProperty(AzSdpConfig.ZCOPY_THRESHOLD, Integer.toString(SIZE)); // on tcp too
        return AzSdpConfig.load(p);
    }

    /**
     * One small message read into a large direct buffer: the reader's next reads then take large and asynchronous
     * adverts straight into it, and they wait for those reads in its queue. Returns the buffer.
     */
    private static ByteBuffer startTakingAdverts(SocketPair pair, ByteChannel in) throws IOException {
        byte[] hello = {1, 2, 3};
        pair.client.getOutputStream().write(hello);
        ByteBuffer dst = ByteBuffer.allocateDirect(SIZE); // a read of all of it: a small one would not take adverts
        while (dst.position() < hello.length) {
            assertTrue(in.read(dst) > 0);
        }
        assertEquals(hello.length, dst.position());
        return dst;
    }

    private static byte[] message(int seed) {
        byte[] b = new byte[SIZE];
        new Random(seed).nextBytes(b);
        return b;
    }

    private static byte[] readMessage(ByteChannel in, ByteBuffer dst) throws IOException {
        dst.clear();
        while (dst.hasRemaining()) {
            if (in.read(dst) < 0) {
                throw new IOException("end of stream with " + dst.remaining() + " bytes to come");
            }
        }
        byte[] b = new byte[SIZE];
        dst.flip().get(b);
        return b;
    }

    /** Adverts in the reader's receive queue (from its description: a racy read, polled). */
    private static int queuedAdverts(SdpConnection c) {
        Matcher m = QUEUED.matcher(c.toString());
        return m.find() ? Integer.parseInt(m.group(1)) : -1;
    }

    private static void awaitTrue(BooleanSupplier condition, Supplier<String> what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!condition.getAsBoolean()) {
            assertTrue(System.nanoTime() < deadline, what);
            Thread.sleep(5);
        }
    }
}
