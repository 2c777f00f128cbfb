package io.azsdp.fabric.shm;

import static io.azsdp.fabric.shm.ShmTestSupport.fill;
import static io.azsdp.fabric.shm.ShmTestSupport.mismatch;
import static io.azsdp.fabric.shm.ShmTestSupport.options;
import static io.azsdp.fabric.shm.ShmTestSupport.pair;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.azsdp.fabric.Endpoint;
import io.azsdp.fabric.MemoryRegion;
import io.azsdp.fabric.Opcode;
import io.azsdp.fabric.WcStatus;
import io.azsdp.fabric.shm.ShmTestSupport.Pair;
import io.azsdp.fabric.shm.ShmTestSupport.Recorder;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Receives in place: messages are read where they lie in the ring, and their space comes back when reposted. */
@Timeout(60)
class ShmInPlaceTest {

    /** A message delivered in place. */
    record Held(long wrId, int offset, int length, int seq) {
    }

    /** Records in-place deliveries and failed receives. */
    static final class InPlaceRecorder extends Recorder {
        final BlockingQueue<Held> held = new LinkedBlockingQueue<>();
        private int seq;

        @Override
        public void onRecvInPlace(long wrId, int offset, int byteLen) {
            held.add(new Held(wrId, offset, byteLen, seq++));
        }

        Held takeHeld() throws InterruptedException {
            Held h = held.poll(10, TimeUnit.SECONDS);
            assertNotNull(h, "no message within 10 s");
            return h;
        }
    }

    /** A message kept by the test: in place, or copied out when the endpoint got crowded. */
    static final class Kept {
        final Held held;
        ByteBuffer copy;

        Kept(Held held) {
            this.held = held;
        }
    }

    /**
     * Random sizes through a small ring, thousands of wrap-arounds; the receiver keeps a random number of messages
     * and hands them back in random order, copying them out and releasing them whenever the endpoint says it is
     * crowded. Every message is checked when it arrives and again just before it is handed back: space freed too
     * early would let the sender overwrite it, a crowding signal too late would overrun the ring (the sender honours
     * credits, one per posted receive). With {@code pollers}, two more threads deliver too.
     */
    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void messagesStayIntactUntilHandedBackInAnyOrder(boolean pollers) throws Exception {
        int max = 4096;
        int credits = 8;
        int count = pollers ? 100_000 : 30_000;
        try (Pair p = pair(options(max, credits, 4))) {
            Endpoint server = p.server();
            ByteBuffer view = server.receiveInPlace();
            assertNotNull(view);
            int[] lengths = ShmTestSupport.randomLengths(count, max, 500, 7);
            Semaphore permits = new Semaphore(credits);
            AtomicReference<Throwable> failure = new AtomicReference<>();
            CountDownLatch done = new CountDownLatch(1);
            List<Kept> kept = new ArrayList<>();
            int[] spills = new int[1];
            SplittableRandom order = new SplittableRandom(11);
            server.setHandler(new Recorder() {
                int seq;
                int keep = 1;

                @Override
                public void onRecvInPlace(long wrId, int offset, int byteLen) {
                    try {
                        assertEquals(lengths[seq], byteLen, "length of message " + seq);
                        assertEquals(-1, mismatch(view, offset, byteLen, seq), "content of message " + seq);
                        kept.add(new Kept(new Held(wrId, offset, byteLen, seq)));
                        if (++seq == count) {
                            done.countDown();
                        }
                        if (kept.size() < keep) {
                            return;
                        }
                        for (int n = 1 + order.nextInt(kept.size()); n > 0; n--) {
                            Kept k = kept.remove(order.nextInt(kept.size()));
                            Held h = k.held;
                            assertEquals(-1, k.copy != null ? mismatch(k.copy, 0, h.length(), h.seq())
                                    : mismatch(view, h.offset(), h.length(), h.seq()),
                                    "message " + h.seq() + " changed while held");
                            server.postRecv(h.wrId(), null, 0, max);
                            if (server.receivesCrowded()) {
                                spills[0]++;
                                for (Kept c : kept) {
                                    if (c.copy == null) {
                                        c.copy = ByteBuffer.allocate(c.held.length());
                                        c.copy.put(0, view, c.held.offset(), c.held.length());
                                        server.releaseReceived(c.held.wrId());
                                    }
                                }
                            }
                            permits.release();
                        }
                        keep = 1 + order.nextInt(credits);
                    } catch (Throwable t) {
                        failure.compareAndSet(null, t);
                        done.countDown();
                    }
                }

                @Override
                public void onCompletion(int opcode, long wrId, int byteLen, int status) {
                    failure.compareAndSet(null, new AssertionError(Opcode.name(opcode) + " " + WcStatus.name(status)));
                    done.countDown();
                }
            });
            for (int i = 0; i < credits; i++) {
                server.postRecv(i, null, 0, max);
            }
            server.start();
            p.client().setHandler(new Recorder());
            p.client().start();
            ShmTestSupport.sendPolled(p, lengths, permits, pollers ? 2 : 0, done, failure);
            assertNull(failure.get());
            assertTrue(spills[0] > 0, "never crowded: the test does not exercise the release of held messages");
        }
    }

    /**
     * What arrived before the peer closed stays readable after the disconnect and after a local abort, until the
     * local close; then the segment is unmapped.
     */
    @Test
    void messagesStayReadableUntilClose() throws Exception {
        int max = 8192;
        Pair p = pair(options(max, 4, 4));
        ByteBuffer view = p.server().receiveInPlace();
        for (int i = 0; i < 4; i++) {
            p.server().postRecv(i, null, 0, max);
        }
        InPlaceRecorder server = new InPlaceRecorder();
        p.start(new Recorder(), server);
        ByteBuffer txBuf = ByteBuffer.allocateDirect(max);
        MemoryRegion tx = p.client().register(txBuf);
        int[] lengths = {max, 1, 0, 5000};
        for (int i = 0; i < lengths.length; i++) {
            fill(txBuf, 0, lengths[i], i);
            p.client().postSend(i, tx, 0, lengths[i]);
        }
        List<Held> held = new ArrayList<>();
        for (int i = 0; i < lengths.length; i++) {
            held.add(server.takeHeld());
        }
        p.client().close();
        assertNull(server.awaitDisconnect(), "an orderly close");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (ShmTestSupport.mapped(p.client()) && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertFalse(ShmTestSupport.mapped(p.client()), "the client's mapping went");
        Thread.sleep(50); // the server's progress thread ends too
        assertTrue(ShmTestSupport.mapped(p.server()), "ours stays");
        assertIntact(view, held, lengths);
        p.server().abort();
        Thread.sleep(50);
        assertIntact(view, held, lengths);
        assertTrue(ShmTestSupport.mapped(p.server()));
        p.server().close();
        assertFalse(ShmTestSupport.mapped(p.server()));
    }

    private static void assertIntact(ByteBuffer view, List<Held> held, int[] lengths) {
        for (Held h : held) {
            assertEquals(lengths[h.seq()], h.length());
            assertEquals(-1, mismatch(view, h.offset(), h.length(), h.seq()), "message " + h.seq());
        }
    }

    /** A started pair whose server receives in place, receives 0 and 1 posted; the client sends pattern messages. */
    private static final class TwoReceives implements AutoCloseable {
        final Pair p;
        final ByteBuffer view;
        final InPlaceRecorder server = new InPlaceRecorder();
        private final ByteBuffer txBuf;
        private final MemoryRegion tx;

        TwoReceives(int max, int maxPostedRecvs) throws Exception {
            p = pair(options(max, maxPostedRecvs, 4));
            view = p.server().receiveInPlace();
            p.server().postRecv(0, null, 0, max);
            p.server().postRecv(1, null, 0, max);
            p.start(new Recorder(), server);
            txBuf = ByteBuffer.allocateDirect(max);
            tx = p.client().register(txBuf);
        }

        /** Sends message {@code seq} of {@code length} bytes and returns it as delivered, after checking it. */
        Held send(int length, int seq) throws Exception {
            fill(txBuf, 0, length, seq);
            p.client().postSend(seq, tx, 0, length);
            Held h = server.takeHeld();
            assertEquals(length, h.length());
            assertEquals(-1, mismatch(view, h.offset(), length, seq));
            return h;
        }

        @Override
        public void close() {
            p.close();
        }
    }

    /** A message held counts as a posted receive: posting new ids while holding is refused, reposting one is not. */
    @Test
    void heldMessagesCountAgainstThePostedReceives() throws Exception {
        int max = 1024;
        try (TwoReceives t = new TwoReceives(max, 2)) {
            Held first = t.send(100, 0);
            assertEquals(0, first.wrId());
            IOException e = assertThrows(IOException.class, () -> t.p.server().postRecv(2, null, 0, max));
            assertTrue(e.getMessage().contains("too many receives"), e.getMessage());
            assertEquals(-1, mismatch(t.view, first.offset(), 100, 0));
            t.p.server().postRecv(0, null, 0, max); // hands message 0 back and posts again
            assertEquals(1, t.send(200, 1).wrId());
        }
    }

    /**
     * A peer that writes a malformed record behind a message we hold breaks the connection with a clear error; what we
     * hold stays readable until close.
     */
    @Test
    void malformedRecordBehindAHeldMessageBreaksTheReceiver() throws Exception {
        try (TwoReceives t = new TwoReceives(1024, 4)) {
            Held held = t.send(500, 0);
            ShmSegment seg = ((ShmEndpoint) t.p.client()).segment(); // the client forges the server's inbound ring
            int r = ((ShmEndpoint) t.p.server()).side();
            int ctl = seg.layout.ctlOffset[r];
            int next = held.offset() + 504; // the record after it: 500 bytes padded to 8
            ShmSegment.LONG.setVolatile(seg.buf, seg.layout.dataOffset[r] + next, ShmRing.header(16, 7));
            ShmSegment.INT.getAndAdd(seg.buf, ctl + ShmSegment.CTL_DOORBELL, 1);
            io.azsdp.nativeio.NativeLib.futexWake(seg.base + ctl + ShmSegment.CTL_DOORBELL, 1);

            t.server.expect(Opcode.RECV, 1, 0, WcStatus.FLUSH_ERR);
            IOException e = t.server.awaitDisconnect();
            assertTrue(e != null && e.getMessage().startsWith("shm ring corrupted by the peer"), String.valueOf(e));
            assertEquals(-1, mismatch(t.view, held.offset(), 500, 0));
        }
    }

    @Test
    void misuseIsRefused() throws Exception {
        int max = 1024;
        try (Pair p = pair(options(max, 2, 4))) {
            p.server().receiveInPlace();
            MemoryRegion region = p.server().register(ByteBuffer.allocateDirect(max));
            assertThrows(IllegalArgumentException.class, () -> p.server().postRecv(0, region, 0, max));
            assertThrows(IllegalArgumentException.class, () -> p.server().postRecv(0, null, 8, max));
            p.start(new Recorder(), new InPlaceRecorder());
            assertThrows(IllegalStateException.class, () -> p.client().receiveInPlace());
        }
    }
}
