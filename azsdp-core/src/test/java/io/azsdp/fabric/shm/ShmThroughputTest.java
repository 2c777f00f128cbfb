package io.azsdp.fabric.shm;

import static io.azsdp.fabric.shm.ShmTestSupport.fill;
import static io.azsdp.fabric.shm.ShmTestSupport.options;
import static io.azsdp.fabric.shm.ShmTestSupport.pair;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.azsdp.fabric.CompletionHandler;
import io.azsdp.fabric.Endpoint;
import io.azsdp.fabric.MemoryRegion;
import io.azsdp.fabric.Opcode;
import io.azsdp.fabric.WcStatus;
import io.azsdp.fabric.shm.ShmTestSupport.Pair;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Sanity runs with full verification; the GB/s printed is informational (no timing assertions). */
@Timeout(180)
class ShmThroughputTest {
    private static final int MSG = 64 * 1024;
    private static final int CREDITS = 16;
    private static final int PATTERNS = 8;

    @Test
    void sendRecv512MiBIn64KiBMessages() throws Exception {
        run512MiB(false); // warm-up and raw speed
        run512MiB(true);
    }

    private void run512MiB(boolean verify) throws Exception {
        long total = 512L << 20;
        int count = (int) (total / MSG);
        try (Pair p = pair(options(MSG, CREDITS, 4))) {
            ByteBuffer txBuf = ByteBuffer.allocateDirect(PATTERNS * MSG);
            long[] crcs = new long[PATTERNS];
            for (int i = 0; i < PATTERNS; i++) {
                fill(txBuf, i * MSG, MSG, i);
                crcs[i] = crc(txBuf, i * MSG, MSG);
            }
            MemoryRegion tx = p.client().register(txBuf);
            ByteBuffer rxBuf = ByteBuffer.allocateDirect(CREDITS * MSG);
            MemoryRegion rx = p.server().register(rxBuf);
            Semaphore permits = new Semaphore(CREDITS);
            CountDownLatch done = new CountDownLatch(1);
            AtomicReference<Throwable> failure = new AtomicReference<>();
            Endpoint server = p.server();
            server.setHandler(new CompletionHandler() {
                int seq;

                @Override
                public void onCompletion(int opcode, long wrId, int byteLen, int status) {
                    try {
                        if (opcode != Opcode.RECV || status != WcStatus.SUCCESS || byteLen != MSG) {
                            throw new AssertionError("bad completion " + opcode + "/" + status + "/" + byteLen);
                        }
                        int slot = (int) wrId;
                        if (verify && crc(rxBuf, slot * MSG, MSG) != crcs[seq % PATTERNS]) {
                            throw new AssertionError("checksum mismatch in message " + seq);
                        }
                        seq++;
                        server.postRecv(wrId, rx, slot * MSG, MSG);
                        permits.release();
                        if (seq == count) {
                            done.countDown();
                        }
                    } catch (Throwable t) {
                        failure.compareAndSet(null, t);
                        done.countDown();
                    }
                }

                @Override
                public void onDisconnect(IOException cause) {
                    failure.compareAndSet(null, new AssertionError("disconnected", cause));
                    done.countDown();
                }
            });
            for (int i = 0; i < CREDITS; i++) {
                server.postRecv(i, rx, i * MSG, MSG);
            }
            server.start();
            p.client().setHandler(new CompletionHandler() {
                @Override
                public void onCompletion(int opcode, long wrId, int byteLen, int status) {
                }

                @Override
                public void onDisconnect(IOException cause) {
                }
            });
            p.client().start();
            long t0 = System.nanoTime();
            for (int i = 0; i < count && failure.get() == null; i++) {
                if (!permits.tryAcquire()) {
                    assertTrue(permits.tryAcquire(30, TimeUnit.SECONDS), "credit for message " + i);
                }
                p.client().postSend(i, tx, (i % PATTERNS) * MSG, MSG);
            }
            assertTrue(done.await(120, TimeUnit.SECONDS));
            long ns = System.nanoTime() - t0;
            assertNull(failure.get());
            System.out.printf("shm SEND/RECV: %d MiB in %d KiB messages in %.3f s = %.2f GB/s (%s)%n", total >> 20,
                    MSG >> 10, ns / 1e9, total / (double) ns, verify ? "with CRC32C check of every message"
                            : "no content check");
        }
    }

    @Test
    void read1GiBIn1MiBReads() throws Exception {
        int chunk = 1 << 20;
        int chunks = 64;
        long total = 1L << 30;
        try (Pair p = pair(options(1024, 4, 4))) {
            ByteBuffer remoteBuf = ByteBuffer.allocateDirect(chunks * chunk);
            long[] crcs = new long[chunks];
            for (int i = 0; i < chunks; i++) {
                fill(remoteBuf, i * chunk, chunk, i);
                crcs[i] = crc(remoteBuf, i * chunk, chunk);
            }
            MemoryRegion remote = p.server().register(remoteBuf);
            MemoryRegion local = p.client().register(ByteBuffer.allocateDirect(chunk));
            long[] completed = new long[1];
            p.client().setHandler(new CompletionHandler() {
                @Override
                public void onCompletion(int opcode, long wrId, int byteLen, int status) {
                    if (opcode == Opcode.READ && status == WcStatus.SUCCESS && byteLen == chunk
                            && wrId == completed[0]) {
                        completed[0]++;
                    }
                }

                @Override
                public void onDisconnect(IOException cause) {
                }
            });
            p.server().setHandler(new ShmTestSupport.Recorder());
            p.client().start();
            p.server().start();
            for (boolean verify : new boolean[] {false, true}) {
                completed[0] = 0;
                int n = (int) (total / chunk);
                long t0 = System.nanoTime();
                for (int i = 0; i < n; i++) {
                    int c = (i * 37) % chunks;
                    p.client().postRead(i, local, 0, chunk, remote.address() + (long) c * chunk, remote.rkey());
                    if (verify) {
                        assertEquals(crcs[c], crc(local.buffer(), 0, chunk), "READ " + i);
                    }
                }
                long ns = System.nanoTime() - t0;
                assertEquals(n, completed[0], "every READ completed inline, in order");
                System.out.printf("shm READ: %d MiB in %d KiB reads in %.3f s = %.2f GB/s (%s)%n", total >> 20,
                        chunk >> 10, ns / 1e9, total / (double) ns, verify ? "with CRC32C check of every read"
                                : "no content check");
            }
        }
    }

    private static long crc(ByteBuffer b, int offset, int length) {
        CRC32C c = new CRC32C();
        c.update(b.slice(offset, length));
        return c.getValue();
    }
}
