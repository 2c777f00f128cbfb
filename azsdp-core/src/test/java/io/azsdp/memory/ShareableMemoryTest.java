package io.azsdp.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.azsdp.nativeio.NativeLib;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Each shareable buffer holds an fd until the GC finds it unreachable: short-lived ones must not exhaust the process's
 * fds, and live ones beyond the bound become plain memory instead of failing.
 */
@Timeout(120)
class ShareableMemoryTest {
    @Test
    void shortLivedBuffersAreReclaimedAtTheBound() {
        assumeTrue(NativeLib.isAvailable() && ShareableMemory.allocate(1) != null, "no shareable memory (memfd) here");
        for (int i = 0; i < 3 * ShareableMemory.MAX_LIVE; i++) {
            ByteBuffer b = ShareableMemory.allocate(4096);
            assertNotNull(b, "allocation " + i + " fell back although every earlier buffer was garbage");
            b.putLong(0, i);
            assertEquals(i, b.getLong(0));
            assertTrue(ShareableMemory.liveCount() <= ShareableMemory.MAX_LIVE);
        }
    }

    @Test
    void liveBuffersBeyondTheBoundArePlainAlignedMemory() {
        assumeTrue(NativeLib.isAvailable() && ShareableMemory.allocate(1) != null, "no shareable memory (memfd) here");
        List<ByteBuffer> held = new ArrayList<>();
        try {
            ByteBuffer b;
            while ((b = ShareableMemory.allocate(4096)) != null) { // garbage from before is reclaimed on the way
                held.add(b);
                assertTrue(held.size() <= ShareableMemory.MAX_LIVE, "more live buffers than the bound");
            }
            assertTrue(ShareableMemory.liveCount() <= ShareableMemory.MAX_LIVE);
            ByteBuffer plain = ProtectedMemory.allocateAligned(10_000);
            assertEquals(10_000, plain.capacity());
            assertEquals(0, ProtectedMemory.address(plain) % ProtectedMemory.pageSize());
            assertNull(ShareableMemory.find(ProtectedMemory.address(plain), 1));
        } finally {
            held.clear();
        }
        System.gc();
        long deadline = System.nanoTime() + 10_000_000_000L;
        ByteBuffer again = null;
        while (again == null && System.nanoTime() < deadline) {
            again = ShareableMemory.allocate(4096);
        }
        assertNotNull(again, "the released buffers' fds were not reclaimed");
    }
}
