package io.azsdp.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.azsdp.nativeio.NativeLib;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Lazy unprotect, in this JVM with completion words it completes itself (no peer, and no store ever meets an incomplete
 * range, so nothing can block): which ranges linger, which leave, and when lingering pauses.
 */
@Timeout(60)
class LingeringRangesTest {
    private static final VarHandle INT = MethodHandles.byteBufferViewVarHandle(int[].class, ByteOrder.nativeOrder());

    private final ByteBuffer words = ByteBuffer.allocateDirect(64);
    private ByteBuffer buf;
    private long address;
    private int page;

    @BeforeEach
    void setUp() {
        assumeTrue(ProtectedMemory.unavailableReason() == null, "memory protection unavailable: "
                + ProtectedMemory.unavailableReason());
        page = ProtectedMemory.pageSize();
        buf = ShareableMemory.allocate(2 * page);
        assumeTrue(buf != null, "no shareable memory (memfd) here");
        address = ProtectedMemory.address(buf);
    }

    /** A complete range over the buffer's pages: the completion word already holds its target. */
    private int completeRange(int target) {
        INT.setVolatile(words, 0, target);
        return ProtectedMemory.protect(address, 2L * page, NativeLib.address(words), target, 0);
    }

    private boolean writable() {
        long rc = NativeLib.writeRemote(NativeLib.pid(), address, address, 1);
        return rc == 1;
    }

    @Test
    void aRangeSentAgainTakesOverWithoutWaitingAndTheOldOneLeaves() {
        LingeringRanges l = new LingeringRanges();
        int first = completeRange(100);
        assertTrue(l.offer(first, address, 2L * page, buf));
        assertFalse(writable(), "lingers read-only");
        int second = completeRange(200);
        assertEquals(1, l.protectedAgain(address, 2L * page), "the old range was still read-only");
        assertFalse(ProtectedMemory.isProtected(first), "released");
        assertTrue(ProtectedMemory.isProtected(second));
        assertFalse(writable(), "the new range keeps the pages read-only");
        ProtectedMemory.release(second);
        assertTrue(writable());
    }

    @Test
    void storesIntoLingeringBuffersPauseLingering() {
        LingeringRanges l = new LingeringRanges();
        int id = completeRange(7);
        assertTrue(l.offer(id, address, 2L * page, buf));
        long faults = NativeLib.protectionFaults();
        buf.put(0, (byte) 1); // faults once; complete, so the handler makes the range writable at once
        assertEquals(faults + 1, NativeLib.protectionFaults());
        assertTrue(writable());
        int next = completeRange(8);
        assertEquals(0, l.protectedAgain(address, 2L * page), "the old range had been made writable by the store");
        for (int i = 0; i < 64; i++) {
            assertFalse(l.offer(next, address, 2L * page, buf), "paused, send " + i);
        }
        assertTrue(l.offer(next, address, 2L * page, buf), "lingering again after 64 sends");
        l.releaseAll();
        assertTrue(writable());
    }

    @Test
    void aLingeringRangeIsSettledSoAStoreNeverWaitsForItsWord() {
        LingeringRanges l = new LingeringRanges();
        INT.setVolatile(words, 0, 0);
        // The peer reported it read while its word lags (a peer that lies): a store must not wait for the word.
        int lagging = ProtectedMemory.protect(address, 2L * page, NativeLib.address(words), 5, 0);
        assertFalse(NativeLib.isComplete(lagging));
        assertTrue(l.offer(lagging, address, 2L * page, buf));
        assertTrue(NativeLib.isComplete(lagging), "settled (ProtectionTest stores into such a range)");
        l.releaseAll();
        assertTrue(writable());
    }

    @Test
    void onlyShareableMemoryLingers() {
        LingeringRanges l = new LingeringRanges();
        ByteBuffer direct = ByteBuffer.allocateDirect(3 * page);
        long base = (ProtectedMemory.address(direct) + page - 1) / page * page;
        assertNull(ShareableMemory.find(base, page));
        INT.setVolatile(words, 0, 9);
        int other = ProtectedMemory.protect(base, page, NativeLib.address(words), 9, 0);
        assertFalse(l.offer(other, base, page, direct), "the application may free a plain direct buffer");
        ProtectedMemory.release(other);
        int id = completeRange(10);
        assertTrue(l.offer(id, address, 2L * page, buf), "shareable: lingers");
        assertFalse(l.offer(other, base, page, direct), "the buffer last seen changed: looked up again");
        l.releaseAll();
    }
}
