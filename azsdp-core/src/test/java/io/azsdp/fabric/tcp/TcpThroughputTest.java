package io.azsdp.fabric.tcp;

import io.azsdp.fabric.Endpoint;
import io.azsdp.fabric.FabricOptions;
import io.azsdp.fabric.MemoryRegion;
import io.azsdp.fabric.Opcode;
import io.azsdp.fabric.WcStatus;
import io.azsdp.fabric.tcp.TcpTestSupport.Pair;
import io.azsdp.fabric.tcp.TcpTestSupport.Recorder;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.zip.CRC32;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Sanity run: 256 MiB in 64 KiB SENDs, driven entirely from completion callbacks (the sender refills and reposts a
 * buffer when its SEND completes, the receiver checksums and reposts on RECV). Checks the CRC; times nothing.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class TcpThroughputTest {
    private static final int MSG = 64 * 1024;
    private static final long TOTAL = 256L << 20;
    private static final int MESSAGES = (int) (TOTAL / MSG);
    private static final int DEPTH = 16;

    @Test
    void streamOf64KiBSends() throws Exception {
        FabricOptions o = new FabricOptions(MSG, DEPTH, 4, 5_000, 10_000);
        ByteBuffer pattern = ByteBuffer.allocateDirect(1 << 20);
        byte[] rnd = new byte[pattern.capacity()];
        new Random(11).nextBytes(rnd);
        pattern.put(rnd).clear();

        CRC32 sentCrc = new CRC32();
        CRC32 recvCrc = new CRC32();
        CountDownLatch received = new CountDownLatch(MESSAGES);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Endpoint[] ends = new Endpoint[2];
        MemoryRegion[] regions = new MemoryRegion[2];

        Recorder sender = new Recorder() {
            private int next = DEPTH;

            @Override
            public void onCompletion(int opcode, long wrId, int byteLen, int status) {
                try {
                    if (opcode != Opcode.SEND || status != WcStatus.SUCCESS) {
                        throw new AssertionError("sender got " + Opcode.name(opcode) + " " + WcStatus.name(status));
                    }
                    synchronized (this) { // checksum order must be posting order
                        if (next < MESSAGES) {
                            post(ends[0], regions[0], (int) wrId, next++, sentCrc, pattern); // from the writer thread
                        }
                    }
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                }
            }
        };
        Recorder receiver = new Recorder() {
            @Override
            public void onCompletion(int opcode, long wrId, int byteLen, int status) {
                try {
                    if (opcode != Opcode.RECV || status != WcStatus.SUCCESS || byteLen != MSG) {
                        throw new AssertionError("receiver got " + Opcode.name(opcode) + " " + WcStatus.name(status)
                                + " len " + byteLen);
                    }
                    int slot = (int) wrId;
                    recvCrc.update(regions[1].buffer().duplicate().position(slot * MSG).limit((slot + 1) * MSG));
                    ends[1].postRecv(wrId, regions[1], slot * MSG, MSG); // from the reader thread
                    received.countDown();
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                }
            }
        };

        try (Pair p = new Pair(o, o, sender, receiver)) {
            ends[0] = p.client;
            ends[1] = p.server;
            regions[0] = p.client.register(ByteBuffer.allocateDirect(DEPTH * MSG));
            regions[1] = p.server.register(ByteBuffer.allocateDirect(DEPTH * MSG));
            for (int s = 0; s < DEPTH; s++) {
                p.server.postRecv(s, regions[1], s * MSG, MSG);
            }
            long start = System.nanoTime();
            synchronized (sender) { // the first DEPTH posts race with completions of the earliest ones
                for (int s = 0; s < DEPTH; s++) {
                    post(p.client, regions[0], s, s, sentCrc, pattern);
                }
            }
            assertTrue(received.await(100, TimeUnit.SECONDS), "all messages received");
            long ns = System.nanoTime() - start;
            assertNull(failure.get(), () -> "callback failed: " + failure.get());
            assertEquals(sentCrc.getValue(), recvCrc.getValue(), "checksum of the whole stream");
            double mibPerSec = (TOTAL / (1024.0 * 1024.0)) / (ns / 1e9);
            System.out.printf("tcp fabric: %d MiB in %d x %d KiB SENDs took %.1f ms = %.0f MiB/s "
                            + "(loopback, both ends in one JVM, CRC32 on both sides)%n",
                    TOTAL >> 20, MESSAGES, MSG >> 10, ns / 1e6, mibPerSec);
        }
    }

    /** Fills slot {@code slot} with message {@code seq} (a window of the random pattern), checksums it, sends it. */
    private static void post(Endpoint ep, MemoryRegion region, int slot, int seq, CRC32 crc, ByteBuffer pattern)
            throws IOException {
        int from = (int) ((seq * 40_961L) % (pattern.capacity() - MSG));
        ByteBuffer dst = region.buffer().duplicate().position(slot * MSG).limit((slot + 1) * MSG);
        dst.put(pattern.duplicate().position(from).limit(from + MSG));
        crc.update(region.buffer().duplicate().position(slot * MSG).limit((slot + 1) * MSG));
        ep.postSend(slot, region, slot * MSG, MSG);
    }
}
