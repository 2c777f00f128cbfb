package io.azsdp.fabric.shm;

import io.azsdp.nativeio.NativeLib;
import java.io.IOException;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.invoke.VarHandle;
import java.lang.reflect.Field;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * The shared segment of one shm connection: layout, initialisation, validation and raw accessors. Created by the client
 * in a memfd, mapped by both processes (at different addresses: everything inside is addressed by offset).
 *
 * <p>Side 0 is the client, side 1 the server. Ring {@code r} carries messages INTO side {@code r} (produced by the
 * other side) and is sized from side {@code r}'s options; region table {@code t} is owned (written) by side {@code t}
 * and read by the other side. Native byte order; every word that two parties write lives on its own 64-byte line so
 * the producer and the consumer never false-share.
 *
 * <pre>
 * header, 256 bytes
 *    0 i32 magic 'AZSM'          4 i32 version
 *    8 i64 total size
 *   16 i32 pid[0]               20 i32 pid[1]
 *   24 i32 ringCapacity[0]      28 i32 ringCapacity[1]
 *   32 i32 maxMessage[0]        36 i32 maxMessage[1]       (largest payload side r accepts)
 *   40 i32 maxPostedRecvs[0]    44 i32 maxPostedRecvs[1]
 *   48 i32 maxRegions[0]        52 i32 maxRegions[1]
 *   64 i32 state[0]                                         (own line: OPEN, CLOSED or ABORTED)
 *  128 i32 state[1]                                         (own line)
 *  192 i32 notify[0]            196 i32 waiting[0]          (notify[s] is written by the other side only;
 *  200 i32 notify[1]            204 i32 waiting[1]           waiting[s] counts side s's threads asleep on it)
 * ring control r = 0, 1 (192 bytes each; the producer's tail is its own, records publish themselves)
 *   +0   i64 head                                           (consumer's line)
 *   +64  i32 doorbell, +68 i32 sleeping                     (slow-path line: the futex word and the consumer's flag)
 *   +128 i32 polling                                        (the consumer's pollers)
 * ring data 0, ring data 1                                  (ringCapacity[r] bytes each, 64-aligned)
 *   records: i64 header (length in the low 32 bits, type MSG or PAD in the high ones; 0 = not yet written, see
 *   ShmRing), payload padded to 8 bytes; a PAD record fills the ring's end at wrap
 * region table 0, region table 1                            (maxRegions[t] entries of 64 bytes)
 *   +0 i32 key (0 = free), +4 i32 pins (peer accesses in flight), +8 i64 address, +16 i64 length
 * </pre>
 * Total size rounded up to a page.
 */
final class ShmSegment {
    static final int MAGIC = 0x415A534D; // 'AZSM'
    static final int VERSION = 5;

    /** Per-side state words. Zero is deliberately not a valid state: an uninitialised segment is never "open". */
    static final int STATE_OPEN = 1;
    static final int STATE_CLOSED = 2;
    static final int STATE_ABORTED = 3;

    static final int LINE = 64;
    static final int HEADER_SIZE = 4 * LINE;
    static final int CTL_SIZE = 3 * LINE;
    static final int CTL_HEAD = 0;
    static final int CTL_DOORBELL = LINE;
    static final int CTL_SLEEPING = LINE + 4;
    /** Written by the consumer's pollers only, read by a producer only when it would ring: a line of its own. */
    static final int CTL_POLLING = 2 * LINE;
    static final int ENTRY_SIZE = LINE;
    static final int ENTRY_KEY = 0;
    static final int ENTRY_PINS = 4;
    static final int ENTRY_ADDRESS = 8;
    static final int ENTRY_LENGTH = 16;
    /** Shareable memory behind a region (see ShareableMemory): fd in the owner, -1 when none; inode; offset of the
     * region's first byte in it; its size. */
    static final int ENTRY_SHARE_FD = 24;
    static final int ENTRY_SHARE_INODE = 32;
    static final int ENTRY_SHARE_OFFSET = 40;
    static final int ENTRY_SHARE_SIZE = 48;
    /** Ring record header: one i64 (see ShmRing#header). */
    static final int RECORD_HEADER = 8;

    /** Limits that keep every offset in an int and the tables reasonable. */
    static final int MAX_RING = 1 << 30;
    static final int MAX_REGIONS = 1 << 20;
    static final int MAX_POSTED_RECVS = 1 << 20;

    private static final int H_MAGIC = 0;
    private static final int H_VERSION = 4;
    private static final int H_SIZE = 8;
    private static final int H_PID = 16;
    private static final int H_RING_CAPACITY = 24;
    private static final int H_MAX_MESSAGE = 32;
    private static final int H_MAX_RECVS = 40;
    private static final int H_MAX_REGIONS = 48;
    private static final int H_STATE = LINE;
    private static final int H_NOTIFY = 3 * LINE;

    /** Atomic views on the mapped buffer; indexes are byte offsets and must be aligned. */
    static final VarHandle INT = MethodHandles.byteBufferViewVarHandle(int[].class, ByteOrder.nativeOrder());
    static final VarHandle LONG = MethodHandles.byteBufferViewVarHandle(long[].class, ByteOrder.nativeOrder());

    /** What one side announces in the handshake; the segment is sized from both. */
    record Params(int maxMessage, int maxPostedRecvs, int maxRegions) {
        void check(String who) throws IOException {
            if (maxMessage <= 0 || maxPostedRecvs <= 0 || maxRegions <= 0 || maxPostedRecvs > MAX_POSTED_RECVS
                    || maxRegions > MAX_REGIONS) {
                throw new IOException("shm: unsupported " + who + " options " + this + " (limits: "
                        + MAX_POSTED_RECVS + " posted receives, " + MAX_REGIONS + " regions)");
            }
            try {
                ringCapacity(this);
            } catch (IOException e) {
                throw new IOException("shm: unsupported " + who + " options: " + e.getMessage());
            }
        }
    }

    /** Offsets of everything, a pure function of both sides' params (so the server can recompute and compare). */
    static final class Layout {
        final Params[] params;
        final int[] ringCapacity = new int[2];
        final int[] ctlOffset = new int[2];
        final int[] dataOffset = new int[2];
        final int[] tableOffset = new int[2];
        final long size;

        Layout(Params client, Params server, int pageSize) throws IOException {
            params = new Params[] {client, server};
            long off = HEADER_SIZE;
            for (int r = 0; r < 2; r++) {
                ringCapacity[r] = ringCapacity(params[r]);
                ctlOffset[r] = (int) off;
                off += CTL_SIZE;
            }
            for (int r = 0; r < 2; r++) {
                dataOffset[r] = (int) off;
                off += ringCapacity[r];
            }
            for (int t = 0; t < 2; t++) {
                tableOffset[t] = (int) off;
                off += (long) params[t].maxRegions() * ENTRY_SIZE;
                if (off > Integer.MAX_VALUE - pageSize) {
                    throw new IOException("shm segment would exceed 2 GiB with options " + client + " / " + server);
                }
            }
            size = (off + pageSize - 1) / pageSize * pageSize;
        }
    }

    /**
     * Room for every message the receiver may hold (one per posted receive) plus one more, so that the pad record
     * wasted at the wrap (at most a largest record less 8 bytes) and the next header the producer zeroes (8 bytes)
     * never make a credit-honouring sender overrun.
     */
    static int ringCapacity(Params p) throws IOException {
        long cap = (p.maxPostedRecvs() + 1L) * (align8(p.maxMessage()) + RECORD_HEADER);
        cap = (cap + LINE - 1) & -LINE;
        if (cap > MAX_RING) {
            throw new IOException("shm ring of " + cap + " bytes for " + p + " exceeds " + MAX_RING);
        }
        return (int) cap;
    }

    static long align8(long n) {
        return (n + 7) & -8L;
    }

    final ByteBuffer buf;
    final long base;
    final Layout layout;
    private boolean released;

    private ShmSegment(ByteBuffer buf, Layout layout) {
        this.buf = buf;
        this.base = NativeLib.address(buf);
        this.layout = layout;
    }

    /** Maps {@code path} (a /proc fd link), requiring the file to have exactly {@code size} bytes. */
    private static MappedByteBuffer map(Path path, long size) throws IOException {
        try (FileChannel fc = FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            long actual = fc.size();
            if (actual != size) {
                throw new IOException("shm segment " + path + " has " + actual + " bytes, expected " + size);
            }
            return fc.map(FileChannel.MapMode.READ_WRITE, 0, size); // the mapping outlives the channel
        }
    }

    /** Client: maps the fresh memfd and writes the header, both ring controls zeroed, both tables empty. */
    static ShmSegment create(Path path, Layout layout, int clientPid, int serverPid) throws IOException {
        ShmSegment s = new ShmSegment(map(path, layout.size), layout);
        ByteBuffer b = s.buf;
        INT.set(b, H_MAGIC, MAGIC);
        INT.set(b, H_VERSION, VERSION);
        LONG.set(b, H_SIZE, layout.size);
        INT.set(b, H_PID, clientPid);
        INT.set(b, H_PID + 4, serverPid);
        for (int i = 0; i < 2; i++) {
            Params p = layout.params[i];
            INT.set(b, H_RING_CAPACITY + 4 * i, layout.ringCapacity[i]);
            INT.set(b, H_MAX_MESSAGE + 4 * i, p.maxMessage());
            INT.set(b, H_MAX_RECVS + 4 * i, p.maxPostedRecvs());
            INT.set(b, H_MAX_REGIONS + 4 * i, p.maxRegions());
        }
        // memfd pages start zeroed: heads, the first record headers, doorbells and table keys are already 0.
        INT.setVolatile(b, stateOffset(0), STATE_OPEN);
        INT.setVolatile(b, stateOffset(1), STATE_OPEN);
        return s;
    }

    /** Server: maps the client's segment and checks that it is exactly what both announced. */
    static ShmSegment attach(Path path, long size, Layout expected, int clientPid, int serverPid) throws IOException {
        if (size != expected.size) {
            throw new IOException("shm segment size " + size + " differs from the expected " + expected.size);
        }
        ShmSegment s = new ShmSegment(map(path, size), expected);
        try {
            ByteBuffer b = s.buf;
            check("magic", (int) INT.get(b, H_MAGIC), MAGIC);
            check("version", (int) INT.get(b, H_VERSION), VERSION);
            check("size", (long) LONG.get(b, H_SIZE), expected.size);
            check("client pid", (int) INT.get(b, H_PID), clientPid);
            check("server pid", (int) INT.get(b, H_PID + 4), serverPid);
            for (int i = 0; i < 2; i++) {
                Params p = expected.params[i];
                check("ring capacity " + i, (int) INT.get(b, H_RING_CAPACITY + 4 * i), expected.ringCapacity[i]);
                check("max message " + i, (int) INT.get(b, H_MAX_MESSAGE + 4 * i), p.maxMessage());
                check("max posted receives " + i, (int) INT.get(b, H_MAX_RECVS + 4 * i), p.maxPostedRecvs());
                check("max regions " + i, (int) INT.get(b, H_MAX_REGIONS + 4 * i), p.maxRegions());
                check("state " + i, (int) INT.getVolatile(b, stateOffset(i)), STATE_OPEN);
            }
            return s;
        } catch (IOException e) {
            s.release();
            throw e;
        }
    }

    private static void check(String what, long actual, long expected) throws IOException {
        if (actual != expected) {
            throw new IOException("shm segment header: " + what + " is " + actual + ", expected " + expected);
        }
    }

    static int stateOffset(int side) {
        return H_STATE + side * LINE;
    }

    int state(int side) {
        return (int) INT.getVolatile(buf, stateOffset(side));
    }

    /** Volatile: every ring publication before it is visible to whoever sees the new state. */
    void setState(int side, int state) {
        INT.setVolatile(buf, stateOffset(side), state);
    }

    static int notifyOffset(int side) {
        return H_NOTIFY + 8 * side;
    }

    /** Native address of side {@code s}'s notify word, for futex waits. */
    long notifyAddress(int side) {
        return base + notifyOffset(side);
    }

    /**
     * Volatile store (the bytes our READ copied are visible before the writer is let go), then the number of side
     * {@code side}'s threads asleep on the word: the native waiter counts itself before its last look at the word,
     * so either it sees the new value or this sees it and wakes it.
     */
    int setNotify(int side, int value) {
        INT.setVolatile(buf, notifyOffset(side), value);
        return (int) INT.getVolatile(buf, notifyOffset(side) + 4);
    }

    int pid(int side) {
        return (int) INT.get(buf, H_PID + 4 * side);
    }

    /**
     * Unmaps now rather than at some future GC: the memory is only freed when both processes have unmapped it, and
     * GC is not driven by off-heap mappings. The caller guarantees that nothing touches the buffer any more.
     */
    synchronized void release() {
        if (released) {
            return;
        }
        released = true;
        if (UNMAP != null) {
            try {
                UNMAP.invokeExact(buf);
            } catch (Throwable ignored) {
                // leave it to the GC
            }
        }
    }

    /** sun.misc.Unsafe.invokeCleaner(ByteBuffer) bound to the instance, or null (then the GC unmaps). */
    private static final MethodHandle UNMAP = findUnmap();

    private static MethodHandle findUnmap() {
        try {
            Class<?> unsafeClass = Class.forName("sun.misc.Unsafe");
            Field f = unsafeClass.getDeclaredField("theUnsafe");
            f.setAccessible(true);
            Object unsafe = f.get(null);
            return MethodHandles.lookup()
                    .findVirtual(unsafeClass, "invokeCleaner", MethodType.methodType(void.class, ByteBuffer.class))
                    .bindTo(unsafe);
        } catch (ReflectiveOperationException | RuntimeException e) {
            return null;
        }
    }
}
