package io.azsdp.memory;

import io.azsdp.nativeio.NativeLib;
import java.lang.management.ManagementFactory;
import java.lang.ref.Cleaner;
import java.nio.ByteBuffer;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Buffers a peer process on this host can map: each is a sealed memfd mapped here. A peer that READs from one copies
 * it with a plain memcpy out of its own read-only mapping, instead of a process_vm_readv that pins every page and
 * takes this process's mmap lock (which every mprotect of an AZ-SDP send also takes). The fd stays open for the
 * buffer's lifetime (the peer opens /proc/&lt;pid&gt;/fd/&lt;fd&gt;); when the buffer becomes unreachable a cleaner
 * unmaps it and closes the fd. The peer's own mapping keeps the pages alive until it unmaps them.
 *
 * <p>So every live buffer holds an fd until a GC finds it unreachable, and a heap that rarely needs collecting lets
 * short-lived buffers pile up until the process runs out of fds (its sockets then fail too). Hence a bound, a quarter
 * of the fd limit: at the bound a GC gives the cleaner a chance, as the JDK does for direct memory; if the buffers are
 * really alive, further ones are plain page-aligned memory (peers READ them by process_vm_readv), logged once.
 */
public final class ShareableMemory {
    /** How a peer finds one buffer: its fd in this process, the memfd's inode, and the mapping. */
    public record Shared(long address, long size, int fd, long inode) {
    }

    private static final Logger LOG = LoggerFactory.getLogger(ShareableMemory.class);
    private static final Cleaner CLEANER = Cleaner.create();
    /** Live buffers by address. */
    private static final ConcurrentSkipListMap<Long, Shared> LIVE = new ConcurrentSkipListMap<>();
    /** LIVE's size (a skip list counts by walking). */
    private static final AtomicInteger LIVE_COUNT = new AtomicInteger();
    static final int MAX_LIVE = maxLive();
    /** How long an allocation at the bound waits for the cleaner after its GC. */
    private static final long CLEANER_WAIT_NANOS = TimeUnit.MILLISECONDS.toNanos(100);
    private static final AtomicBoolean WARNED = new AtomicBoolean();

    private ShareableMemory() {
    }

    /**
     * A page-aligned direct buffer of {@code size} bytes in shareable memory (whole pages, nothing else on them), or
     * null when it cannot be created (no native library, no memfd).
     */
    public static ByteBuffer allocate(int size) {
        if (!NativeLib.isAvailable() || size <= 0 || !roomForOneMore()) {
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
        LIVE_COUNT.incrementAndGet();
        CLEANER.register(root, () -> {
            LIVE.remove(shared.address());
            LIVE_COUNT.decrementAndGet();
            NativeLib.unmap(shared.address(), shared.size());
            NativeLib.close(shared.fd());
        });
        // The slice references the root, so the memory lives as long as any view of it.
        return root.limit(size).slice();
    }

    /** Buffers allocated and not yet released by the cleaner. */
    static int liveCount() {
        return LIVE_COUNT.get();
    }

    /** Below the bound, or back below it after a GC and a short wait for the cleaner. */
    private static boolean roomForOneMore() {
        if (LIVE_COUNT.get() < MAX_LIVE) {
            return true;
        }
        System.gc();
        long deadline = System.nanoTime() + CLEANER_WAIT_NANOS;
        while (LIVE_COUNT.get() >= MAX_LIVE && deadline - System.nanoTime() > 0) {
            try {
                Thread.sleep(1);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        if (LIVE_COUNT.get() < MAX_LIVE) {
            return true;
        }
        if (WARNED.compareAndSet(false, true)) {
            LOG.warn("{} AzSdp.allocate buffers are alive, each holding an fd (bound: {}, a quarter of the fd limit): "
                    + "further ones are plain direct memory, which a peer on this host READs by process_vm_readv",
                    LIVE_COUNT.get(), MAX_LIVE);
        }
        return false;
    }

    private static int maxLive() {
        long fds = 1024;
        if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.UnixOperatingSystemMXBean u) {
            fds = u.getMaxFileDescriptorCount();
        }
        return (int) Math.max(16, Math.min(4096, fds / 4));
    }

    /** The shareable buffer that contains [address, address + length), or null. */
    public static Shared find(long address, long length) {
        Long key = LIVE.floorKey(address); // not floorEntry: that allocates a snapshot entry on every registration
        Shared s = key == null ? null : LIVE.get(key);
        return s != null && address + length <= s.address() + s.size() ? s : null;
    }
}
