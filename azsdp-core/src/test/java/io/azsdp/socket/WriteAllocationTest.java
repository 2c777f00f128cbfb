package io.azsdp.socket;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * A stream of synchronous zero-copy writes of one direct buffer allocates next to nothing per write on the writing
 * thread: the buffer's registration is kept, not made again for every write.
 */
@Timeout(120)
class WriteAllocationTest {
    private static final int SIZE = 64 << 10;
    private static final int WARM = 500;
    private static final int COUNT = 2000;

    @ParameterizedTest
    @CsvSource({"tcp", "shm"})
    void zeroCopyWritesOfOneBufferKeepItsRegistration(String fabric) throws Exception {
        java.lang.management.ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        assumeTrue(mx instanceof com.sun.management.ThreadMXBean, "no per-thread allocation counters");
        com.sun.management.ThreadMXBean tmx = (com.sun.management.ThreadMXBean) mx;
        assumeTrue(tmx.isThreadAllocatedMemorySupported() && tmx.isThreadAllocatedMemoryEnabled());
        try (SocketPair pair = SocketPair.open(fabric, "zcopy")) {
            ByteBuffer buf = ByteBuffer.allocateDirect(SIZE);
            for (int i = 0; i < SIZE; i++) {
                buf.put(i, (byte) (i * 31 + 7));
            }
            CRC32C sent = new CRC32C();
            ByteChannel in = pair.azPeer().byteChannel();
            CompletableFuture<Long> received =
                    CompletableFuture.supplyAsync(() -> SocketPair.drainCrc(in, (long) (WARM + COUNT) * SIZE, SIZE));
            ByteChannel out = pair.client.byteChannel();
            long tid = Thread.currentThread().getId();
            long before = 0;
            for (int i = 0; i < WARM + COUNT; i++) {
                if (i == WARM) {
                    before = tmx.getThreadAllocatedBytes(tid);
                }
                sent.update(buf.clear());
                buf.clear();
                while (buf.hasRemaining()) {
                    out.write(buf);
                }
            }
            long perWrite = (tmx.getThreadAllocatedBytes(tid) - before) / COUNT;
            assertEquals(sent.getValue(), received.get(60, TimeUnit.SECONDS), "CRC32C of every byte");
            assertTrue(perWrite < 48, fabric + ": " + perWrite + " bytes allocated per write");
        }
    }
}
