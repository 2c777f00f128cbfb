package io.azsdp.memory;

import io.azsdp.nativeio.NativeLib;
import java.lang.ref.Cleaner;
import java.nio.ByteBuffer;
import java.util.concurrent.ConcurrentSkipListMap;

/**
 * Buffers a peer process on this host can map: each is a sealed memfd mapped here. A peer that READs from one copies
 * it with a plain memcpy out of its own read-only mapping, instead of a process_vm_readv that pins every page and
 * takes this process's mmap lock (which every mprotect of an AZ-SDP send also takes). The fd stays open for the
 * buffer's lifetime (the peer opens /proc/&lt;pid&gt;/fd/&lt;fd&gt;); when the buffer becomes unreachable a cleaner
 * unmaps it and closes the fd. The peer's own mapping keeps the pages alive until it unmaps them.
 */
public final class ShareableMemory {
    /** How a peer finds one buffer: its fd in this process, the memfd's inode, and the mapping. */
    public record Shared(long address, long size, int fd, long inode) {
    }

    private static final Cleaner CLEANER = Cleaner.create();
    /** Live buffers by address. */
    private static final ConcurrentSkipListMap<Long, Shared> LIVE = new ConcurrentSkipListMap<>();

    private ShareableMemory() {
    }

    /**
     * A page-aligned direct buffer of {@code size} bytes in shareable memory (whole pages, nothing else on them), or
     * null when it cannot be created (no native library, no memfd).
     */
    public static ByteBuffer allocate(int size) {
        if (!NativeLib.isAvailable() || size <= 0) {
            return null;
        }
        int page = NativeLib.pageSize();
        long rounded = (size + (long) page - 1) / page * page;
        long[] out = new long[2];
        int fd = NativeLib.shareableCreate(rounded, out);
        if (fd < 0) {
            return null;
        }
        Shared shared = new Shared(out[0], rounded, fd, out[1]);
        ByteBuffer root = NativeLib.newBuffer(shared.address(), (int) rounded);
        LIVE.put(shared.address(), shared);
        CLEANER.register(root, () -> {
            LIVE.remove(shared.address());
            NativeLib.unmap(shared.address(), shared.size());
            NativeLib.close(shared.fd());
        });
        // The slice references the root, so the memory lives as long as any view of it.
        return root.limit(size).slice();
    }

    /** The shareable buffer that contains [address, address + length), or null. */
    public static Shared find(long address, long length) {
        Long key = LIVE.floorKey(address); // not floorEntry: that allocates a snapshot entry on every registration
        Shared s = key == null ? null : LIVE.get(key);
        return s != null && address + length <= s.address() + s.size() ? s : null;
    }
}
