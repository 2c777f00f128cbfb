package io.azsdp;

import io.azsdp.memory.ProtectedMemory;
import java.nio.ByteBuffer;

/** Entry points for applications that use AZ-SDP's zero copy directly. */
public final class AzSdp {
    private AzSdp() {
    }

    /**
     * A direct buffer of {@code size} bytes starting on a page boundary, alone on its pages: sent in {@code azsdp} mode
     * all its whole pages are protected and advertised, only a partial last page is copied. After the peer has read
     * it, it stays read-only until the next store into it (one fault) or the next send of it (no protection change).
     */
    public static ByteBuffer allocate(int size) {
        return ProtectedMemory.allocateAligned(size);
    }

    /**
     * Waits until the peer has read every byte of {@code buf} that an {@code azsdp}-mode write advertised, and makes its
     * pages writable. Needed only before the kernel writes into the buffer (file or socket reads): a system call that
     * writes a protected page fails with EFAULT, while a Java store simply waits.
     */
    public static void awaitReusable(ByteBuffer buf) {
        ProtectedMemory.awaitReusable(buf);
    }
}
