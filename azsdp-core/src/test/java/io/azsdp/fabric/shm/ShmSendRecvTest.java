package io.azsdp.fabric.shm;

import static io.azsdp.fabric.shm.ShmTestSupport.fill;
import static io.azsdp.fabric.shm.ShmTestSupport.mismatch;
import static io.azsdp.fabric.shm.ShmTestSupport.options;
import static io.azsdp.fabric.shm.ShmTestSupport.pair;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.azsdp.fabric.CompletionHandler;
import io.azsdp.fabric.Endpoint;
import io.azsdp.fabric.FabricException;
import io.azsdp.fabric.FabricOptions;
import io.azsdp.fabric.MemoryRegion;
import io.azsdp.fabric.Opcode;
import io.azsdp.fabric.WcStatus;
import io.azsdp.fabric.shm.ShmTestSupport.Pair;
import io.azsdp.fabric.shm.ShmTestSupport.Recorder;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Timeout;

@Timeout(60)
class ShmSendRecvTest {

    /**
     * Credit-controlled stream of random sizes (0..max) through a small ring: thousands of wrap-arounds, every byte
     * checked, order checked by content and wrId, receives reposted from the completion handler.
     */
    /**
     * With {@code pollers}, two more threads poll the server's ring throughout, as waiting application threads do: the
     * progress thread and they take turns as its consumer, and every message must still arrive once, in order, intact.
     */
    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void manyRandomMessagesInOrderWithWrapAround(boolean pollers) throws Exception {
        int max = 4096;
        int credits = 8;
        int count = pollers ? 200_000 : 30_000;
        try (Pair p = pair(options(max, credits, 4))) {
            ByteBuffer rxBuf = ByteBuffer.allocateDirect(credits * max);
            MemoryRegion rx = p.server().register(rxBuf);
            int[] lengths = ShmTestSupport.randomLengths(count, max, 1000, 42);
            Semaphore permits = new Semaphore(credits);
            AtomicReference<Throwable> failure = new AtomicReference<>();
            CountDownLatch done = new CountDownLatch(1);
            Endpoint server = p.server();
            server.setHandler(new CompletionHandler() {
                int seq;

                @Override
                public void onCompletion(int opcode, long wrId, int byteLen, int status) {
                    try {
                        assertEquals(Opcode.RECV, opcode);
                        assertEquals(WcStatus.SUCCESS, status, "status of message " + seq);
                        assertEquals(seq % credits, wrId, "receives complete in posting order");
                        assertEquals(lengths[seq], byteLen, "length of message " + seq);
                        int slot = (int) wrId;
                        assertEquals(-1, mismatch(rxBuf, slot * max, byteLen, seq), "content of message " + seq);
                        seq++;
                        if (seq == count) {
                            done.countDown();
                        }
                        server.postRecv(wrId, rx, slot * max, max);
                        permits.release();
                    } catch (Throwable t) {
                        failure.compareAndSet(null, t);
                        done.countDown();
                    }
                }

                @Override
                public void onDisconnect(IOException cause) {
                    failure.compareAndSet(null, new AssertionError("unexpected disconnect", cause));
                    done.countDown();
                }
            });
            for (int i = 0; i < credits; i++) {
                server.postRecv(i, rx, i * max, max);
            }
            server.start();
            long[] lastSend = {-1};
            p.client().setHandler(new Recorder() {
                @Override
                public void onCompletion(int opcode, long wrId, int byteLen, int status) {
                    if (opcode != Opcode.SEND || status != WcStatus.SUCCESS || wrId != lastSend[0] + 1
                            || byteLen != lengths[(int) wrId]) {
                        failure.compareAndSet(null, new AssertionError("bad send completion " + wrId));
                    }
                    lastSend[0] = wrId;
                }
            });
            p.client().start();
            ShmTestSupport.sendPolled(p, lengths, permits, pollers ? 2 : 0, done, failure);
            assertNull(failure.get());
            assertEquals(count - 1, lastSend[0]);
        }
    }

    /** Messages sent with no receive posted wait in the ring (infinite RNR retry) until receives come. */
    @Test
    void lateReceivesStillDeliver() throws Exception {
        int max = 1000;
        int credits = 6;
        try (Pair p = pair(options(max, credits, 4))) {
            Recorder server = new Recorder();
            p.start(new Recorder(), server);
            ByteBuffer txBuf = ByteBuffer.allocateDirect(max);
            MemoryRegion tx = p.client().register(txBuf);
            int[] lengths = {max, 0, 1, 7, 999, 513};
            for (int i = 0; i < credits; i++) {
                fill(txBuf, 0, lengths[i], i);
                p.client().postSend(i, tx, 0, lengths[i]);
            }
            Thread.sleep(200); // the progress thread is asleep by now, holding the messages
            assertTrue(server.completions.isEmpty());
            ByteBuffer rxBuf = ByteBuffer.allocateDirect(credits * max);
            MemoryRegion rx = p.server().register(rxBuf);
            for (int i = 0; i < credits; i++) {
                p.server().postRecv(100 + i, rx, i * max, max);
                server.expect(Opcode.RECV, 100 + i, lengths[i], WcStatus.SUCCESS);
                assertEquals(-1, mismatch(rxBuf, i * max, lengths[i], i));
                Thread.sleep(20);
            }
        }
    }

    /**
     * A gathered SEND is one message of head then body, both copied into the ring by the post: it completes at once,
     * and the sender rewrites the body before the receiver has even posted a receive.
     */
    @Test
    void gatheredSendsAreCopiedIntoTheRingByThePost() throws Exception {
        int max = 1000;
        int credits = 6;
        try (Pair p = pair(options(max, credits, 4))) {
            Recorder server = new Recorder();
            Recorder client = new Recorder();
            p.start(client, server);
            ByteBuffer headBuf = ByteBuffer.allocateDirect(16);
            ByteBuffer bodyBuf = ByteBuffer.allocateDirect(max);
            MemoryRegion head = p.client().register(headBuf);
            MemoryRegion body = p.client().register(bodyBuf);
            int[] bodies = {max - 16, 0, 1, 500, 984, 7};
            for (int i = 0; i < credits; i++) {
                fill(headBuf, 0, 16, i);
                fill(bodyBuf, 0, bodies[i], 100 + i);
                p.client().postSendGather(i, head, 0, 16, body, 0, bodies[i]);
                client.expect(Opcode.SEND, i, 16 + bodies[i], WcStatus.SUCCESS);
            }
            fill(bodyBuf, 0, max, 999);
            ByteBuffer rxBuf = ByteBuffer.allocateDirect(credits * max);
            MemoryRegion rx = p.server().register(rxBuf);
            for (int i = 0; i < credits; i++) {
                p.server().postRecv(100 + i, rx, i * max, max);
                server.expect(Opcode.RECV, 100 + i, 16 + bodies[i], WcStatus.SUCCESS);
                assertEquals(-1, mismatch(rxBuf, i * max, 16, i), "head of message " + i);
                assertEquals(-1, mismatch(rxBuf, i * max + 16, bodies[i], 100 + i), "body of message " + i);
            }
            assertThrows(FabricException.class, () -> p.client().postSendGather(9, head, 0, 16, body, 0, max),
                    "larger than the peer's maximum message");
        }
    }

    /** A sender that ignores credits gets an error instead of blocking; nothing already sent is lost. */
    @Test
    void overrunThrowsAndLosesNothing() throws Exception {
        int max = 512;
        int credits = 4;
        try (Pair p = pair(options(max, credits, 4))) {
            Recorder server = new Recorder();
            p.server().setHandler(server);
            p.server().start();
            p.client().setHandler(new Recorder());
            p.client().start();
            ByteBuffer txBuf = ByteBuffer.allocateDirect(max);
            MemoryRegion tx = p.client().register(txBuf);
            int sent = 0;
            IOException overrun = null;
            while (overrun == null && sent < 1000) {
                try {
                    fill(txBuf, 0, max, sent);
                    p.client().postSend(sent, tx, 0, max);
                    sent++;
                } catch (IOException e) {
                    overrun = e;
                }
            }
            assertTrue(overrun != null && overrun.getMessage().contains("overrun"), String.valueOf(overrun));
            assertTrue(sent >= credits, "sent " + sent);
            assertTrue(p.client().isOpen());
            ByteBuffer rxBuf = ByteBuffer.allocateDirect(max);
            MemoryRegion rx = p.server().register(rxBuf);
            for (int i = 0; i < sent; i++) {
                p.server().postRecv(i, rx, 0, max);
                server.expect(Opcode.RECV, i, max, WcStatus.SUCCESS);
                assertEquals(-1, mismatch(rxBuf, 0, max, i));
            }
        }
    }

    @Test
    void sendLargerThanPostedReceiveIsLocalLengthError() throws Exception {
        try (Pair p = pair(options(1024, 4, 4))) {
            Recorder server = new Recorder();
            Recorder client = new Recorder();
            p.server().setHandler(server);
            p.client().setHandler(client);
            MemoryRegion rx = p.server().register(ByteBuffer.allocateDirect(1024));
            p.server().postRecv(1, rx, 0, 100);
            p.server().postRecv(2, rx, 100, 900);
            p.server().start();
            p.client().start();
            MemoryRegion tx = p.client().register(ByteBuffer.allocateDirect(1024));
            p.client().postSend(7, tx, 0, 200);
            client.expect(Opcode.SEND, 7, 200, WcStatus.SUCCESS);
            server.expect(Opcode.RECV, 1, 0, WcStatus.LOC_LEN_ERR);
            server.expect(Opcode.RECV, 2, 0, WcStatus.FLUSH_ERR);
            FabricException e = assertInstanceOf(FabricException.class, server.awaitDisconnect());
            assertEquals(WcStatus.LOC_LEN_ERR, e.status());
            assertFalse(p.server().isOpen());
            IOException peer = client.awaitDisconnect();
            assertTrue(peer != null && peer.getMessage().contains("reset"), String.valueOf(peer));
            assertFalse(p.client().isOpen());
            assertThrows(IOException.class, () -> p.client().postSend(8, tx, 0, 10));
        }
    }

    @Test
    void sendLargerThanPeerMaximumIsRejectedAtPost() throws Exception {
        try (Pair p = pair(options(4096, 4, 4), options(1024, 4, 4))) {
            p.client().setHandler(new Recorder());
            MemoryRegion tx = p.client().register(ByteBuffer.allocateDirect(4096));
            FabricException e = assertThrows(FabricException.class, () -> p.client().postSend(1, tx, 0, 1025));
            assertEquals(WcStatus.LOC_LEN_ERR, e.status());
            assertTrue(p.client().isOpen());
        }
    }

    /** Ping-pong where every reply and every repost is made from inside the completion callbacks. */
    @Test
    void postsFromInsideCallbacks() throws Exception {
        int rounds = 20_000;
        try (Pair p = pair(options(64, 2, 4))) {
            CountDownLatch done = new CountDownLatch(1);
            AtomicReference<Throwable> failure = new AtomicReference<>();
            class Echo implements CompletionHandler {
                final Endpoint ep;
                final MemoryRegion rx;
                final MemoryRegion tx;
                int expected;

                Echo(Endpoint ep, int first) throws IOException {
                    this.ep = ep;
                    this.expected = first;
                    this.rx = ep.register(ByteBuffer.allocateDirect(64));
                    this.tx = ep.register(ByteBuffer.allocateDirect(64));
                }

                @Override
                public void onCompletion(int opcode, long wrId, int byteLen, int status) {
                    try {
                        assertEquals(WcStatus.SUCCESS, status);
                        if (opcode == Opcode.RECV) {
                            int n = rx.buffer().getInt(0);
                            assertEquals(expected, n);
                            expected += 2;
                            ep.postRecv(0, rx, 0, 64);
                            if (n + 1 >= rounds) {
                                done.countDown();
                                return;
                            }
                            tx.buffer().putInt(0, n + 1);
                            ep.postSend(n + 1, tx, 0, 4);
                        }
                    } catch (Throwable t) {
                        failure.compareAndSet(null, t);
                        done.countDown();
                    }
                }

                @Override
                public void onDisconnect(IOException cause) {
                }
            }
            Echo a = new Echo(p.client(), 1);
            Echo b = new Echo(p.server(), 0);
            p.client().setHandler(a);
            p.server().setHandler(b);
            p.client().postRecv(0, a.rx, 0, 64);
            p.server().postRecv(0, b.rx, 0, 64);
            p.client().start();
            p.server().start();
            long t0 = System.nanoTime();
            a.tx.buffer().putInt(0, 0);
            p.client().postSend(0, a.tx, 0, 4);
            assertTrue(done.await(50, TimeUnit.SECONDS));
            long ns = System.nanoTime() - t0;
            assertNull(failure.get());
            System.out.printf("shm ping-pong from callbacks: %d one-way messages, %.2f us per one-way hop%n", rounds,
                    ns / 1e3 / rounds);
        }
    }

    /**
     * Several threads post SENDs at once (sharing credits) while the receiver reposts from its callback: every message
     * arrives, each thread's messages in its order, and each thread's SEND completions in its posting order.
     */
    @Test
    void concurrentPosters() throws Exception {
        int threads = 3;
        int perThread = 20_000;
        int credits = 16;
        try (Pair p = pair(options(64, credits, 4))) {
            Endpoint server = p.server();
            ByteBuffer rxBuf = ByteBuffer.allocateDirect(credits * 64);
            MemoryRegion rx = server.register(rxBuf);
            Semaphore permits = new Semaphore(credits);
            int[] nextRecv = new int[threads];
            long[] nextSendCompletion = new long[threads];
            AtomicReference<Throwable> failure = new AtomicReference<>();
            CountDownLatch done = new CountDownLatch(threads * perThread);
            server.setHandler(new CompletionHandler() {
                @Override
                public void onCompletion(int opcode, long wrId, int byteLen, int status) {
                    try {
                        assertEquals(WcStatus.SUCCESS, status);
                        int slot = (int) wrId;
                        int t = rxBuf.getInt(slot * 64);
                        int seq = rxBuf.getInt(slot * 64 + 4);
                        assertEquals(nextRecv[t]++, seq, "order of thread " + t);
                        server.postRecv(wrId, rx, slot * 64, 64);
                        permits.release();
                        done.countDown();
                    } catch (Throwable e) {
                        failure.compareAndSet(null, e);
                    }
                }

                @Override
                public void onDisconnect(IOException cause) {
                }
            });
            for (int i = 0; i < credits; i++) {
                server.postRecv(i, rx, i * 64, 64);
            }
            server.start();
            p.client().setHandler(new CompletionHandler() {
                @Override
                public void onCompletion(int opcode, long wrId, int byteLen, int status) {
                    int t = (int) (wrId >>> 32);
                    synchronized (nextSendCompletion) { // completions of different threads may interleave
                        if (status != WcStatus.SUCCESS || (wrId & 0xffffffffL) != nextSendCompletion[t]++) {
                            failure.compareAndSet(null, new AssertionError("send completion " + wrId));
                        }
                    }
                }

                @Override
                public void onDisconnect(IOException cause) {
                }
            });
            p.client().start();
            Thread[] posters = new Thread[threads];
            for (int t = 0; t < threads; t++) {
                int id = t;
                MemoryRegion tx = p.client().register(ByteBuffer.allocateDirect(64));
                posters[t] = new Thread(() -> {
                    try {
                        for (int i = 0; i < perThread; i++) {
                            if (!permits.tryAcquire(10, TimeUnit.SECONDS)) {
                                throw new AssertionError("no credit");
                            }
                            tx.buffer().putInt(0, id).putInt(4, i);
                            p.client().postSend(((long) id << 32) | i, tx, 0, 8 + (i & 31));
                        }
                    } catch (Throwable e) {
                        failure.compareAndSet(null, e);
                    }
                });
                posters[t].start();
            }
            for (Thread t : posters) {
                t.join(30_000);
            }
            assertTrue(done.await(30, TimeUnit.SECONDS));
            assertNull(failure.get());
            for (int t = 0; t < threads; t++) {
                assertEquals(perThread, nextRecv[t]);
                assertEquals(perThread, nextSendCompletion[t]);
            }
        }
    }

    @Test
    void registrationRules() throws Exception {
        FabricOptions o = options(64, 2, 3);
        try (Pair p = pair(o); Pair other = pair(o)) {
            Endpoint c = p.client();
            c.setHandler(new Recorder());
            assertThrows(IllegalArgumentException.class, () -> c.register(ByteBuffer.allocate(64)));
            MemoryRegion r1 = c.register(ByteBuffer.allocateDirect(64).position(8).limit(40));
            assertEquals(32, r1.length());
            assertEquals(0, r1.buffer().position());
            assertEquals(r1.lkey(), r1.rkey());
            MemoryRegion r2 = c.register(ByteBuffer.allocateDirect(64));
            c.register(ByteBuffer.allocateDirect(64));
            IOException full = assertThrows(IOException.class, () -> c.register(ByteBuffer.allocateDirect(64)));
            assertTrue(full.getMessage().contains("too many"), full.getMessage());
            c.deregister(r2);
            c.deregister(r2); // idempotent
            MemoryRegion r4 = c.register(ByteBuffer.allocateDirect(64)); // reuses the slot with a new key
            assertTrue(r4.rkey() != r2.rkey());
            assertEquals(WcStatus.LOC_PROT_ERR,
                    assertThrows(FabricException.class, () -> c.postSend(1, r2, 0, 8)).status());
            assertEquals(WcStatus.LOC_PROT_ERR,
                    assertThrows(FabricException.class, () -> c.postSend(1, r1, 30, 8)).status());
            MemoryRegion foreign = other.client().register(ByteBuffer.allocateDirect(64));
            assertEquals(WcStatus.LOC_PROT_ERR,
                    assertThrows(FabricException.class, () -> c.postRecv(1, foreign, 0, 8)).status());
            assertEquals(WcStatus.LOC_PROT_ERR,
                    assertThrows(FabricException.class, () -> c.postRecv(1, r1, -1, 8)).status());
            c.postRecv(1, r1, 0, 8);
            c.postRecv(2, r1, 0, 8);
            IOException tooMany = assertThrows(IOException.class, () -> c.postRecv(3, r1, 0, 8));
            assertTrue(tooMany.getMessage().contains("too many posted receives"), tooMany.getMessage());
            assertTrue(c.isOpen());
            assertEquals("shm", c.fabricName());
            assertEquals(c.localAddress(), p.server().remoteAddress());
            assertEquals(c.remoteAddress(), p.server().localAddress());
        }
    }
}
