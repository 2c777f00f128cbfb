package io.azsdp.it;

import io.azsdp.sdp.SdpStats;
import io.azsdp.socket.AzSdpChannel;
import io.azsdp.socket.AzSdpSocket;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;
import java.util.zip.CRC32C;

/**
 * The byte streams both JVMs move, and the loops that move them. Shared by the tests and {@link PeerMain}.
 *
 * <p>A stream is defined by a seed: a sequence of segments, segment i being {@code POOL[off_i, off_i + len_i)} with
 * {@code (off_i, len_i)} drawn from {@code new Random(seed)}, sizes from 1 B to {@code maxMessage}. The sender writes
 * each segment with one call on a randomly chosen write path; the receiver reads with random sizes on randomly chosen
 * read paths, keeps a CRC32C of every byte and also compares every byte with the segment it must belong to, so a
 * failure names the first wrong stream offset. The pool is the same in every JVM (fixed seed), never written after
 * creation, and has a direct twin for zero-copy writes.
 */
final class Traffic {
    static final int MAX_MESSAGE = 4 << 20;
    static final int POOL_SIZE = 2 * MAX_MESSAGE;
    /** Stream length meaning "until the connection breaks". */
    static final long FOREVER = Long.MAX_VALUE;

    private static final byte[] POOL = new byte[POOL_SIZE];
    private static final ByteBuffer POOL_DIRECT = ByteBuffer.allocateDirect(POOL_SIZE);

    static {
        new Random(0x5D9A2C0FFEEL).nextBytes(POOL);
        POOL_DIRECT.put(0, POOL);
    }

    private Traffic() {
    }

    /** What one direction moved. */
    record Result(long bytes, long crc, long nanos) {
        double mibPerSecond() {
            return nanos == 0 ? 0 : bytes / (1024.0 * 1024.0) / (nanos / 1e9);
        }
    }

    /** The segment sequence of a seed. */
    static final class Segments {
        private final Random r;
        private final int maxMessage;
        int off;
        int len;
        long index = -1;

        Segments(long seed, int maxMessage) {
            this.r = new Random(seed);
            this.maxMessage = maxMessage;
        }

        void next() {
            index++;
            len = randomSize(r, maxMessage);
            off = r.nextInt(POOL_SIZE - len + 1);
        }
    }

    /** Sizes from 1 B to {@code max}: many tiny, many around the zero-copy thresholds, most large. */
    static int randomSize(Random r, int max) {
        int p = r.nextInt(10);
        int bound = p < 2 ? Math.min(256, max) : p < 4 ? Math.min(64 << 10, max) : p < 5 ? Math.min(256 << 10, max) : max;
        return 1 + r.nextInt(bound);
    }

    // ---------------------------------------------------------------------------------------------- sending

    /**
     * Writes {@code total} bytes of the stream of {@code seed} (or until an exception when {@link #FOREVER}); every
     * segment is one call on one of the write paths, picked at random. {@code progress} counts bytes whose write call
     * has returned.
     */
    static Result send(Socket s, long seed, long total, int maxMessage, AtomicLong progress) throws IOException {
        Segments seg = new Segments(seed, maxMessage);
        Random path = paths(seed);
        OutputStream out = s.getOutputStream();
        AzSdpChannel ch = s instanceof AzSdpSocket a ? a.byteChannel() : null;
        CRC32C crc = new CRC32C();
        long done = 0;
        long t0 = System.nanoTime();
        while (done < total) {
            seg.next();
            int n = (int) Math.min(seg.len, total - done);
            int off = seg.off;
            switch (ch == null ? 0 : path.nextInt(WRITE_PATHS)) {
                case 0, 1 -> out.write(POOL, off, n); // OutputStream.write(byte[], off, len)
                case 2 -> {
                    if (n == 1) {
                        out.write(POOL[off]); // OutputStream.write(int)
                    } else if (n <= 64 << 10) {
                        out.write(Arrays.copyOfRange(POOL, off, off + n)); // OutputStream.write(byte[])
                    } else {
                        out.write(POOL, off, n);
                    }
                }
                case DIRECT_FIRST, DIRECT_FIRST + 1, DIRECT_FIRST + 2 -> {
                    ByteBuffer b = POOL_DIRECT.duplicate().limit(off + n).position(off);
                    writeFully(ch, b); // byteChannel().write(direct)
                }
                default -> writeFully(ch, ByteBuffer.wrap(POOL, off, n)); // byteChannel().write(heap)
            }
            crc.update(POOL, off, n);
            done += n;
            if (progress != null) {
                progress.addAndGet(n);
            }
        }
        return new Result(done, crc.getValue(), System.nanoTime() - t0);
    }

    /** The write paths of {@link #send}; those from DIRECT_FIRST to DIRECT_FIRST + 2 write direct buffers. */
    private static final int WRITE_PATHS = 7;
    private static final int DIRECT_FIRST = 3;

    /** The choice of write path of each segment of stream {@code seed}, on an AZ-SDP socket. */
    private static Random paths(long seed) {
        return new Random(seed * 0x9E3779B97F4A7C15L + 1);
    }

    private static void writeFully(AzSdpChannel ch, ByteBuffer b) throws IOException {
        int want = b.remaining();
        int n = ch.write(b);
        if (n != want || b.hasRemaining()) {
            throw new IOException("AzSdpChannel.write returned " + n + " with " + b.remaining() + " of " + want
                    + " bytes left (a blocking channel must write everything)");
        }
    }

    // ---------------------------------------------------------------------------------------------- receiving

    /** Thrown when received bytes are not the stream's; names the first wrong offset. */
    static final class CorruptStreamException extends IOException {
        CorruptStreamException(String message) {
            super(message);
        }
    }

    /**
     * Reads exactly {@code total} bytes of the stream of {@code seed} (or until an exception when {@link #FOREVER}),
     * with random read sizes up to {@code maxRead} on randomly chosen read paths, verifying every byte. Throws
     * {@link EOFException} on an early end of stream. Does not read past {@code total}.
     */
    static Result receive(Socket s, long seed, long total, int maxMessage, int maxRead, AtomicLong progress)
            throws IOException {
        return new Receiver(s, seed, maxMessage, maxRead).receive(total, progress);
    }

    /** The reading side of one stream; successive {@link #receive} calls continue it. */
    static final class Receiver {
        private final Segments seg;
        private final Random path;
        private final InputStream in;
        private final AzSdpChannel ch;
        private final int maxRead;
        private final byte[] heap;
        private final ByteBuffer direct;
        private final ByteBuffer heapBuf;
        private final CRC32C crc = new CRC32C();
        private long done;
        private int segPos;
        private long nanos;

        private final int fixedDirectRead;

        Receiver(Socket s, long seed, int maxMessage, int maxRead) throws IOException {
            this(s, seed, maxMessage, maxRead, 0);
        }

        /** With {@code fixedDirectRead > 0} every read is a channel read of that many bytes into a direct buffer. */
        Receiver(Socket s, long seed, int maxMessage, int maxRead, int fixedDirectRead) throws IOException {
            this.fixedDirectRead = fixedDirectRead;
            this.seg = new Segments(seed, maxMessage);
            this.path = new Random(seed * 0xC2B2AE3D27D4EB4FL + 2);
            this.in = s.getInputStream();
            this.ch = s instanceof AzSdpSocket a ? a.byteChannel() : null;
            this.maxRead = maxRead;
            this.heap = new byte[maxRead];
            this.direct = ch == null ? null : ByteBuffer.allocateDirect(maxRead);
            this.heapBuf = ByteBuffer.wrap(heap);
            seg.next();
        }

        /**
         * Reads {@code count} more bytes (or until an exception when {@link #FOREVER}); returns the running totals.
         * {@code progress} is incremented by every read.
         */
        Result receive(long count, AtomicLong progress) throws IOException {
            long t0 = System.nanoTime();
            long end = count == FOREVER ? FOREVER : done + count;
            try {
                while (done < end) {
                    int size = fixedDirectRead > 0 ? fixedDirectRead : randomSize(path, maxRead);
                    long before = done;
                    readOnce((int) Math.min(size, end - done), end);
                    if (progress != null) {
                        progress.addAndGet(done - before);
                    }
                }
            } finally {
                nanos += System.nanoTime() - t0;
            }
            return new Result(done, crc.getValue(), nanos);
        }

        private void readOnce(int want, long end) throws IOException {
            ByteBuffer got;
            int n;
            switch (ch == null ? 0 : fixedDirectRead > 0 ? 3 : path.nextInt(6)) {
                case 0, 1 -> { // InputStream.read(byte[], off, len)
                    n = in.read(heap, 0, want);
                    got = n > 0 ? ByteBuffer.wrap(heap, 0, n) : null;
                }
                case 2 -> { // InputStream.read()
                    int b = in.read();
                    n = b < 0 ? -1 : 1;
                    if (b >= 0) {
                        heap[0] = (byte) b;
                    }
                    got = n > 0 ? ByteBuffer.wrap(heap, 0, 1) : null;
                }
                case 3, 4 -> { // byteChannel().read(direct)
                    direct.clear().limit(want);
                    n = ch.read(direct);
                    got = direct.flip();
                }
                default -> { // byteChannel().read(heap)
                    heapBuf.clear().limit(want);
                    n = ch.read(heapBuf);
                    got = heapBuf.flip();
                }
            }
            if (n < 0) {
                throw new EOFException("end of stream after " + done + " of " + (end == FOREVER ? "unbounded"
                        : Long.toString(end)) + " bytes");
            }
            if (n == 0 || n > want || got.remaining() != n) {
                throw new IOException("read of at most " + want + " bytes returned " + n + " (buffer holds "
                        + (got == null ? 0 : got.remaining()) + ")");
            }
            crc.update(got.duplicate());
            // Compare with the stream, segment by segment.
            int p = got.position();
            int left = n;
            while (left > 0) {
                if (segPos == seg.len) {
                    seg.next();
                    segPos = 0;
                }
                int k = Math.min(left, seg.len - segPos);
                int mm = got.slice(p, k).mismatch(ByteBuffer.wrap(POOL, seg.off + segPos, k));
                if (mm >= 0) {
                    throw new CorruptStreamException("wrong byte at stream offset " + (done + (p - got.position())
                            + mm) + " (segment " + seg.index + " of " + seg.len + " bytes, offset " + (segPos + mm)
                            + " in it): got " + got.get(p + mm) + ", expected " + POOL[seg.off + segPos + mm]
                            + "; read of " + n + " bytes starting at " + done);
                }
                p += k;
                segPos += k;
                left -= k;
            }
            done += n;
        }
    }

    /**
     * Bytes of the first {@code total} of the stream of {@code seed} that a sender in {@code mode} with zero-copy
     * threshold {@code threshold} moves zero copy: each segment is one write call, so this is exact.
     */
    static long expectedZcopyBytes(long seed, long total, int maxMessage, String mode, int threshold) {
        if (mode.equals("bcopy")) {
            return 0;
        }
        if (mode.equals("zcopy")) {
            return total;
        }
        Segments seg = new Segments(seed, maxMessage);
        Random path = paths(seed);
        long done = 0;
        long z = 0;
        while (done < total) {
            seg.next();
            int n = (int) Math.min(seg.len, total - done);
            int p = path.nextInt(WRITE_PATHS);
            boolean direct = p >= DIRECT_FIRST && p < DIRECT_FIRST + 3;
            if (n >= threshold && (direct || !mode.equals("auto"))) { // auto mode sends heap arrays by BCopy
                z += n;
            }
            done += n;
        }
        return z;
    }

    // ---------------------------------------------------------------------------------------------- reporting

    /** The transfer counters as key=value pairs (read after taking the connection lock, see {@link #stats}). */
    static Map<String, Long> counters(AzSdpSocket s) {
        SdpStats st = stats(s);
        Map<String, Long> m = new LinkedHashMap<>();
        m.put("bcopySent", st.bcopyBytesSent());
        m.put("zcopySent", st.zcopyBytesSent());
        m.put("zcopyCrowded", st.syncZcopyCrowdedBytes()); // auto-mode bytes above the threshold sent by BCopy
        m.put("bcopyRecv", st.bcopyBytesReceived());
        m.put("zcopyRecv", st.zcopyBytesReceived());
        m.put("delivered", st.bytesReceived());
        m.put("srcAvails", st.srcAvailsSent());
        return m;
    }

    /**
     * The counters are written under the connection lock and read without it; {@code available()} takes that lock,
     * which makes every earlier update visible here.
     */
    static SdpStats stats(AzSdpSocket s) {
        s.connection().available();
        return s.connection().stats();
    }

    static String format(Map<String, ?> kv) {
        StringBuilder b = new StringBuilder();
        kv.forEach((k, v) -> b.append(b.length() == 0 ? "" : " ").append(k).append('=').append(v));
        return b.toString();
    }

    static String mib(long bytes) {
        return String.format("%.1f MiB", bytes / (1024.0 * 1024.0));
    }
}
