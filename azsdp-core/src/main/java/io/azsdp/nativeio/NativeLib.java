package io.azsdp.nativeio;

import java.io.IOException;
import java.io.InputStream;
import java.lang.ref.Reference;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Objects;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The AZ-SDP JNI library ({@code libazsdp.so}, built from {@code src/main/c/azsdp.c}).
 *
 * <p>Loaded lazily and thread-safely on first use (holder-class idiom), from the class path
 * resource {@value #RESOURCE} which is copied to a temporary file first, as Netty does for its
 * native transports. System properties:
 * <ul>
 *   <li>{@code azsdp.native.path}: absolute path of a {@code .so} to load instead of the bundled one;
 *   <li>{@code azsdp.native.disable=true}: do not load it at all (pure-Java fallback).
 * </ul>
 *
 * <p>Loading never throws: when the library cannot be used, {@link #isAvailable()} is false,
 * {@link #unavailableReason()} says why, one line is logged, and every other method throws
 * {@link IllegalStateException}.
 *
 * <p>All calls take and return primitives; errors are returned as negative errno values
 * (e.g. {@code -14} for EFAULT) rather than thrown, so the hot paths never allocate.
 */
public final class NativeLib {

    /** Class path location of the bundled library. */
    public static final String RESOURCE = "META-INF/native/linux-x86_64/libazsdp.so";
    /** System property: absolute path of a library to load instead of the bundled one. */
    public static final String PATH_PROPERTY = "azsdp.native.path";
    /** System property: {@code true} to not load the library. */
    public static final String DISABLE_PROPERTY = "azsdp.native.disable";

    /** errno values returned (negated) by this class. */
    public static final int EINTR = 4;
    public static final int EAGAIN = 11;
    public static final int EFAULT = 14;
    public static final int ETIMEDOUT = 110;
    public static final int ESRCH = 3;
    public static final int ENODEV = 19;
    public static final int EINVAL = 22;
    public static final int ENOSPC = 28;

    private NativeLib() {
    }

    /**
     * Smallest copy between direct buffers done by memcpy (see {@link #copy(ByteBuffer, int, ByteBuffer, int, int)}):
     * below it the three native calls (two addresses and the copy) would cost about what the copy itself does.
     */
    private static final int NATIVE_COPY_MIN = 1024;

    /** Initialised on first access to any method below; the JIT folds {@code AVAILABLE} afterwards. */
    private static final class Holder {
        static final String UNAVAILABLE_REASON = load();
        static final boolean AVAILABLE = UNAVAILABLE_REASON == null;
        static final int PAGE_SIZE = AVAILABLE ? pageSize0() : 0;
    }

    public static boolean isAvailable() {
        return Holder.AVAILABLE;
    }

    /** Why the library is not usable, or {@code null} when it is loaded. */
    public static String unavailableReason() {
        return Holder.UNAVAILABLE_REASON;
    }

    /** Base address of a direct buffer (its position is ignored). */
    public static long address(ByteBuffer direct) {
        check();
        if (!direct.isDirect()) {
            throw new IllegalArgumentException("not a direct buffer: " + direct);
        }
        long address = address0(direct);
        if (address == 0) {
            throw new IllegalArgumentException("the JVM gave no address for " + direct);
        }
        return address;
    }

    /** {@code getpid()}. */
    public static int pid() {
        check();
        return pid0();
    }

    /** {@code sysconf(_SC_PAGESIZE)}. */
    public static int pageSize() {
        check();
        return Holder.PAGE_SIZE;
    }

    /**
     * FUTEX_WAIT (shared, not FUTEX_PRIVATE_FLAG: the word lives in memory mapped by two processes)
     * on the 4-byte aligned 32-bit word at {@code address}.
     *
     * @param timeoutNanos relative timeout; {@code <= 0} waits forever
     * @return 0 when woken (possibly spuriously), or a negative errno: {@code -EAGAIN} (the word
     *     differed from {@code expected}), {@code -ETIMEDOUT}, {@code -EINTR}. Callers re-check
     *     their condition and loop.
     */
    public static int futexWait(long address, int expected, long timeoutNanos) {
        check();
        return futexWait0(address, expected, timeoutNanos);
    }

    /** FUTEX_WAKE (shared). @return the number of waiters woken, or a negative errno */
    public static int futexWake(long address, int count) {
        check();
        return futexWake0(address, count);
    }

    /**
     * {@code process_vm_readv}: copies {@code length} bytes from {@code remoteAddress} in process
     * {@code pid} to {@code localAddress}, looping on partial transfers.
     *
     * @return bytes copied ({@code == length} on success) or a negative errno ({@code -EFAULT},
     *     {@code -ESRCH}, {@code -EPERM}...). Bad addresses give {@code -EFAULT}, never a crash.
     */
    public static long readRemote(int pid, long localAddress, long remoteAddress, long length) {
        check();
        return readRemote0(pid, localAddress, remoteAddress, length);
    }

    /** {@code process_vm_writev}: copies local to remote; same contract as {@link #readRemote}. */
    public static long writeRemote(int pid, long localAddress, long remoteAddress, long length) {
        check();
        return writeRemote0(pid, localAddress, remoteAddress, length);
    }

    /** {@code memfd_create(name, MFD_CLOEXEC)} + {@code ftruncate(size)}. @return the fd or a negative errno */
    public static int memfdCreate(String name, long size) {
        check();
        return memfdCreate0(Objects.requireNonNull(name, "name"), size);
    }

    /** {@code close(fd)}. @return 0 or a negative errno */
    public static int close(int fd) {
        check();
        return close0(fd);
    }

    // ---------------------------------------------------------------- shareable buffers

    /**
     * A sealed memfd of {@code size} bytes mapped read-write: {@code out[0]} = address, {@code out[1]} = inode.
     * @return the fd (kept open for the peer) or a negative errno
     */
    public static int shareableCreate(long size, long[] out) {
        check();
        return shareableCreate0(size, out);
    }

    /**
     * Maps read-only {@code size} bytes of the peer's shareable buffer {@code fd}, if that fd still names the sealed
     * memfd with inode {@code inode}. @return the address or a negative errno
     */
    public static long shareableMapPeer(int pid, int fd, long inode, long size) {
        check();
        return shareableMapPeer0(pid, fd, inode, size);
    }

    /** {@code munmap}. @return 0 or a negative errno */
    public static int unmap(long address, long size) {
        check();
        return unmap0(address, size);
    }

    /** A direct buffer over {@code size} bytes of memory at {@code address} that this library mapped. */
    public static ByteBuffer newBuffer(long address, int size) {
        check();
        return newBuffer0(address, size);
    }

    /** {@code memcpy} between two ranges of this process that the caller has checked. */
    public static void copy(long dst, long src, long length) {
        copy0(dst, src, length);
    }

    /**
     * {@code dst.put(dstIndex, src, srcIndex, length)}, by {@code memcpy} when the library is loaded, both buffers are
     * direct and the copy is large enough to pay for the native call. Through a ring between two cores, the JVM's own
     * copy moved 5.6-7.0 GB/s on the AMD EPYC development machine and glibc's 13.6-30.1 GB/s (16-64 KiB messages:
     * docs/bench/RingCopy.java, docs/BENCHMARKS-HISTORY.md session 18). The JVM's stores into memory the other core has
     * just read are the slow part: its copy out of the ring into a heap array ran as fast as memcpy. So heap arrays,
     * whose copies stay on their own core's side, keep the JVM's copy.
     */
    public static void copy(ByteBuffer dst, int dstIndex, ByteBuffer src, int srcIndex, int length) {
        if (length < NATIVE_COPY_MIN || !Holder.AVAILABLE || !dst.isDirect() || !src.isDirect() || dst.isReadOnly()) {
            dst.put(dstIndex, src, srcIndex, length);
            return;
        }
        Objects.checkFromIndexSize(dstIndex, length, dst.limit());
        Objects.checkFromIndexSize(srcIndex, length, src.limit());
        copy0(address0(dst) + dstIndex, address0(src) + srcIndex, length);
        Reference.reachabilityFence(dst); // their memory must outlive the copy
        Reference.reachabilityFence(src);
    }

    // ---------------------------------------------------------------- memory protection

    /*
     * Asynchronous zero-copy send: the buffer is made read-only while the peer READs it, and a
     * store into it before that is done blocks (in a SIGSEGV handler) until the transfer completes.
     * See section 8 of azsdp.c for the design.
     *
     * JVM rule: a thread blocked on such a store is, to HotSpot, still running Java code, so it
     * holds up every safepoint (GC, deoptimisation...) and every Java thread that reaches one. Its
     * release must therefore never depend on a Java thread of this JVM: it must come from the
     * completion word (written by another process, or by native code) or from the peer's death.
     * release() is for failure clean-up.
     */

    /**
     * Installs the SIGSEGV handler (chained to the JVM's, which keeps handling implicit null checks,
     * stack overflows and safepoint polls) and allocates the range table. Idempotent: later calls
     * return 0 and keep the first capacity.
     *
     * @param maxRanges capacity of the range table, 1..65536
     * @return 0 or a negative errno ({@code -EINVAL} for a bad capacity)
     */
    public static int protectionInit(int maxRanges) {
        check();
        return protectionInit0(maxRanges);
    }

    /** Set in {@link #protect}'s result when that call changed page protection (it made pages read-only). */
    public static final int CHANGED_PAGES = 1 << 30;

    /**
     * Makes {@code [address, address + length)} read-only until the 32-bit completion word at
     * {@code completionAddress} reaches {@code target} ({@code (int) (word - target) >= 0}), the
     * range is {@link #release released}, or process {@code peerPid} no longer exists. Several
     * ranges may share pages: a page becomes writable again only when no incomplete range covers
     * it. The memory must be ordinary read-write memory that stays allocated until {@link #release}
     * returned (release makes it read-write again: memory unmapped and reused meanwhile would get
     * the wrong protection), and so must the completion word. Every range must eventually be
     * released, which frees its table slot (after its completion, normally).
     *
     * <p>The 32-bit word after the completion word counts the threads asleep on it (a thread blocked
     * on the range increments it around its futex wait): whoever completes the word stores the new
     * value first and then needs to futex-wake the word only when that count is non-zero. It must be
     * writable and belongs to the completion word (ranges with different completion words need 8
     * bytes each).
     *
     * <p>Kernel writes into a protected range (read(2) into it...) are not blocked: they fail with
     * EFAULT.
     *
     * @param peerPid the process that completes the word, or 0
     * @return a range id {@code >= 0}, with {@link #CHANGED_PAGES} set when this call changed page protection
     *     (without it, ranges not yet released already held all of these pages read-only; every method taking an
     *     id accepts it with or without the bit), or a negative errno: {@code -EINVAL} (not page-aligned, empty,
     *     unaligned or null completion word, negative pid), {@code -EFAULT} (completion word not
     *     readable or the count after it not writable; not checked again while a range not yet released uses the
     *     same word), {@code -ENOSPC} (table full), {@code -ENODEV} ({@link #protectionInit} not called),
     *     or what mprotect(2) returned ({@code -ENOMEM} for unmapped memory)
     */
    public static int protect(long address, long length, long completionAddress, int target, int peerPid) {
        check();
        return protect0(address, length, completionAddress, target, peerPid);
    }

    /**
     * Marks the range complete (if it is not), makes writable the pages that no other incomplete
     * range covers, wakes the threads blocked on it and frees its slot. Idempotent: releasing an
     * already released id returns 0 (ids carry a 14-bit generation, so a stale id is recognised
     * until its slot has been reused 16384 times).
     *
     * @return 0, or {@code -EINVAL} for an id that was never valid
     */
    public static int release(int rangeId) {
        check();
        return release0(rangeId);
    }

    /**
     * True when the range's completion word reached its target, or it was settled or released, or
     * its peer died.
     *
     * @throws IllegalArgumentException for an id that was never valid
     */
    public static boolean isComplete(int rangeId) {
        check();
        return rangeFlag(isComplete0(rangeId), rangeId);
    }

    /**
     * The peer reported the range read: from now on it is complete whatever its completion word says, so a store
     * into it never waits. Its pages stay read-only until a store or {@link #release}. A stale id is ignored.
     *
     * @throws IllegalArgumentException for an id that was never valid
     */
    public static void settle(int rangeId) {
        check();
        rangeFlag(settle0(rangeId), rangeId);
    }

    /**
     * True while the range is live and its pages are read-only under it: until a store into it made
     * it writable (once it is complete) or it was released.
     *
     * @throws IllegalArgumentException for an id that was never valid
     */
    public static boolean isProtected(int rangeId) {
        check();
        return rangeFlag(isProtected0(rangeId), rangeId);
    }

    private static boolean rangeFlag(int rc, int rangeId) {
        if (rc < 0) {
            throw new IllegalArgumentException("not a protected range id: " + rangeId);
        }
        return rc != 0;
    }

    /**
     * Blocks in native code (futex waits in bounded slices, re-checking release and peer liveness)
     * until the range {@link #isComplete is complete}.
     *
     * @param timeoutNanos {@code <= 0} waits forever
     * @return 0, {@code -ETIMEDOUT}, or {@code -EINVAL} for an id that was never valid
     */
    public static int awaitRange(int rangeId, long timeoutNanos) {
        check();
        return awaitRange0(rangeId, timeoutNanos);
    }

    /** Number of write faults handled in protected ranges (since the library was loaded). */
    public static long protectionFaults() {
        check();
        return protectionFaults0();
    }

    /** Total nanoseconds threads spent blocked in the fault handler. */
    public static long protectionWaitNanos() {
        check();
        return protectionWaitNanos0();
    }

    /** Number of threads blocked in the fault handler now. */
    public static int protectionWaiters() {
        check();
        return protectionWaiters0();
    }

    /**
     * Start time (CLOCK_MONOTONIC nanoseconds, the clock of {@link System#nanoTime()} on Linux) of
     * the oldest current wait in the fault handler, or 0 if no thread waits.
     */
    public static long protectionOldestWaitStart() {
        check();
        return protectionOldestWaitStart0();
    }

    /**
     * Copies the fault-wait histogram into {@code out} (at most 40 buckets): bucket 0 counts faults resolved while
     * spinning, bucket b >= 1 waits of [2^(b-1), 2^b) nanoseconds. Returns the number of buckets copied.
     */
    public static int protectionWaitHistogram(long[] out) {
        check();
        return protectionWaitHistogram0(out);
    }

    private static void check() {
        if (!Holder.AVAILABLE) {
            throw new IllegalStateException("AZ-SDP native library unavailable: " + Holder.UNAVAILABLE_REASON);
        }
    }

    // ---------------------------------------------------------------- loading

    /** Loads and verifies the library; returns null on success, else the reason (already logged). */
    private static String load() {
        Logger log = LoggerFactory.getLogger(NativeLib.class);
        String reason;
        try {
            reason = tryLoad(log);
        } catch (Exception | LinkageError e) { // UnsatisfiedLinkError, IOException, SecurityException...
            reason = e.toString();
        }
        if (reason != null) {
            String line = "AZ-SDP native library unavailable ({}): the shm fabric and memory protection are "
                    + "disabled; pure-Java copy mode is used";
            if (Boolean.getBoolean(DISABLE_PROPERTY)) {
                log.info(line, reason); // asked for: not a problem
            } else {
                log.warn(line, reason);
            }
        }
        return reason;
    }

    private static String tryLoad(Logger log) throws IOException {
        if (Boolean.getBoolean(DISABLE_PROPERTY)) {
            return "disabled by -D" + DISABLE_PROPERTY + "=true";
        }
        String os = System.getProperty("os.name", "");
        String arch = System.getProperty("os.arch", "");
        if (!os.equals("Linux") || !(arch.equals("amd64") || arch.equals("x86_64"))) {
            return "unsupported platform " + os + "/" + arch + ", only Linux x86_64 is supported";
        }

        String override = System.getProperty(PATH_PROPERTY);
        String loaded;
        if (override != null && !override.isEmpty()) {
            Path path = Path.of(override);
            if (!path.isAbsolute()) {
                return "-D" + PATH_PROPERTY + " must be an absolute path: " + override;
            }
            if (!Files.isReadable(path)) {
                return "-D" + PATH_PROPERTY + " file not found or not readable: " + override;
            }
            System.load(override);
            loaded = override;
        } else {
            Path tmp;
            try (InputStream in = NativeLib.class.getResourceAsStream("/" + RESOURCE)) {
                if (in == null) {
                    return "resource " + RESOURCE + " not found on the class path";
                }
                tmp = Files.createTempFile("libazsdp-", ".so");
                tmp.toFile().deleteOnExit();
                Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
            }
            try {
                System.load(tmp.toString());
            } catch (UnsatisfiedLinkError e) {
                return "cannot load " + tmp + " (copied from " + RESOURCE + "; is "
                        + tmp.getParent() + " mounted noexec? set -D" + PATH_PROPERTY + "): " + e.getMessage();
            }
            // Once mapped the file is no longer needed; unlinking it now (as Netty does) means a
            // JVM that is killed does not leave it behind. deleteOnExit above remains the fallback.
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException ignored) {
                // deleteOnExit will retry
            }
            loaded = tmp + " (from " + RESOURCE + ")";
        }

        // Verify the binding with trivial calls before declaring it usable.
        long pid = pid0();
        long expected = ProcessHandle.current().pid();
        if (pid != expected) {
            return "self-test failed for " + loaded + ": pid() returned " + pid + ", expected " + expected;
        }
        int pageSize = pageSize0();
        if (pageSize <= 0) {
            return "self-test failed for " + loaded + ": pageSize() returned " + pageSize;
        }
        log.debug("AZ-SDP native library loaded from {} (pid {}, page size {})", loaded, pid, pageSize);
        return null;
    }

    // ---------------------------------------------------------------- natives (azsdp.c)

    private static native long address0(ByteBuffer direct);

    private static native int pid0();

    private static native int pageSize0();

    private static native int futexWait0(long address, int expected, long timeoutNanos);

    private static native int futexWake0(long address, int count);

    private static native long readRemote0(int pid, long localAddress, long remoteAddress, long length);

    private static native long writeRemote0(int pid, long localAddress, long remoteAddress, long length);

    private static native int memfdCreate0(String name, long size);

    private static native int close0(int fd);

    private static native int shareableCreate0(long size, long[] out);

    private static native long shareableMapPeer0(int pid, int fd, long inode, long size);

    private static native int unmap0(long address, long size);

    private static native ByteBuffer newBuffer0(long address, long size);

    private static native void copy0(long dst, long src, long length);

    private static native int protectionInit0(int maxRanges);

    private static native int protect0(long address, long length, long completionAddress, int target, int peerPid);

    private static native int release0(int rangeId);

    private static native int isComplete0(int rangeId);

    private static native int awaitRange0(int rangeId, long timeoutNanos);

    private static native int isProtected0(int rangeId);

    private static native int settle0(int rangeId);

    private static native long protectionFaults0();

    private static native long protectionWaitNanos0();

    private static native int protectionWaiters0();

    private static native long protectionOldestWaitStart0();

    private static native int protectionWaitHistogram0(long[] out);
}
