package io.azsdp.fabric.shm;

import static io.azsdp.fabric.shm.ShmTestSupport.options;
import static io.azsdp.fabric.shm.ShmTestSupport.pair;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.azsdp.fabric.CompletionHandler;
import io.azsdp.fabric.Endpoint;
import io.azsdp.fabric.MemoryRegion;
import io.azsdp.fabric.Opcode;
import io.azsdp.fabric.WcStatus;
import io.azsdp.fabric.shm.ShmTestSupport.Pair;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** SEND, RECV (with repost from the callback) and READ allocate nothing per message, on either thread. */
@Timeout(60)
class ShmAllocationTest {

    @Test
    void hotPathsDoNotAllocate() throws Exception {
        java.lang.management.ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        assumeTrue(mx instanceof com.sun.management.ThreadMXBean, "no per-thread allocation counters");
        com.sun.management.ThreadMXBean tmx = (com.sun.management.ThreadMXBean) mx;
        assumeTrue(tmx.isThreadAllocatedMemorySupported() && tmx.isThreadAllocatedMemoryEnabled());
        int credits = 32;
        try (Pair p = pair(options(256, credits, 4))) {
            Endpoint server = p.server();
            MemoryRegion rx = server.register(ByteBuffer.allocateDirect(credits * 256));
            AtomicInteger permits = new AtomicInteger(credits);
            AtomicLong received = new AtomicLong();
            AtomicLong rxThread = new AtomicLong(-1);
            AtomicLong errors = new AtomicLong();
            server.setHandler(new CompletionHandler() {
                @Override
                public void onCompletion(int opcode, long wrId, int byteLen, int status) {
                    rxThread.set(Thread.currentThread().getId());
                    if (opcode != Opcode.RECV || status != WcStatus.SUCCESS) {
                        errors.incrementAndGet();
                        return;
                    }
                    try {
                        server.postRecv(wrId, rx, (int) wrId * 256, 256);
                    } catch (IOException e) {
                        errors.incrementAndGet();
                    }
                    received.incrementAndGet();
                    permits.incrementAndGet();
                }

                @Override
                public void onDisconnect(IOException cause) {
                    errors.incrementAndGet();
                }
            });
            for (int i = 0; i < credits; i++) {
                server.postRecv(i, rx, i * 256, 256);
            }
            server.start();
            AtomicLong sendCompletions = new AtomicLong();
            p.client().setHandler(new CompletionHandler() {
                @Override
                public void onCompletion(int opcode, long wrId, int byteLen, int status) {
                    sendCompletions.incrementAndGet();
                }

                @Override
                public void onDisconnect(IOException cause) {
                }
            });
            p.client().start();
            MemoryRegion tx = p.client().register(ByteBuffer.allocateDirect(256));
            MemoryRegion remote = server.register(ByteBuffer.allocateDirect(4096));

            long me = Thread.currentThread().getId();
            sendBatch(p.client(), tx, remote, permits, 50_000); // warm-up: JIT, monitor inflation
            awaitCount(received, 50_000);
            long t0 = System.nanoTime();
            long myBefore = tmx.getThreadAllocatedBytes(me);
            long rxBefore = tmx.getThreadAllocatedBytes(rxThread.get());
            sendBatch(p.client(), tx, remote, permits, 100_000);
            long myAfter = tmx.getThreadAllocatedBytes(me);
            awaitCount(received, 150_000);
            long rxAfter = tmx.getThreadAllocatedBytes(rxThread.get());
            long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
            assertEquals(0, errors.get());
            assertEquals(150_000 * 2, sendCompletions.get());
            System.out.printf("shm allocation over 100000 SEND+READ (%d ms): poster %d bytes, progress thread %d bytes%n",
                    ms, myAfter - myBefore, rxAfter - rxBefore);
            // Slack for incidental JVM activity; the progress thread also checks peer liveness every 100 ms
            // (a few hundred bytes each time): time-based, not per message.
            long slack = 4096 + ms * 10;
            assertTrue(myAfter - myBefore < slack, "poster allocated " + (myAfter - myBefore) + " bytes");
            assertTrue(rxAfter - rxBefore < slack, "progress thread allocated " + (rxAfter - rxBefore) + " bytes");
        }
    }

    private static void sendBatch(Endpoint ep, MemoryRegion tx, MemoryRegion remote, AtomicInteger permits, int n)
            throws IOException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        for (int i = 0; i < n; i++) {
            while (permits.get() == 0) {
                Thread.onSpinWait();
                if (System.nanoTime() - deadline > 0) {
                    throw new AssertionError("no credit after 30 s at message " + i);
                }
            }
            permits.decrementAndGet();
            ep.postSend(i, tx, 0, 1 + (i & 127));
            ep.postRead(i, tx, 0, 64, remote.address() + (i & 63) * 64, remote.rkey());
        }
    }

    private static void awaitCount(AtomicLong count, long n) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (count.get() < n && System.nanoTime() - deadline < 0) {
            Thread.sleep(1);
        }
        assertEquals(n, count.get());
    }
}
