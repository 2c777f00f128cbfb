package io.azsdp.cli;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicReference;
import java.util.zip.CRC32C;

/**
 * The benchmark wire protocol, server side. A client sends a {@value #REQUEST}-byte request (magic, test, message
 * size, count, and its AZ-SDP transfer mode, which the server then writes with too: a {@code bibw} figure measures
 * one mode both ways). {@code bw}: the server reads size*count bytes, checksums every byte and answers (bytes, CRC32C).
 * {@code lat}: it echoes count messages. {@code bibw}: it reads like {@code bw} while a second thread writes count
 * messages of its own, then answers (bytes read, their CRC32C, CRC32C of what it wrote). With {@link #NO_CHECKSUM}
 * in the test field the server checksums nothing and answers 0 for each CRC32C: the client then checks byte counts
 * only, and the figure is the transport's alone, without a pass over the data after it arrived.
 */
public final class PerfSession {
    public static final int MAGIC = 0x415A5046;
    public static final int REQUEST = 24;
    public static final int TEST_BW = 1;
    public static final int TEST_LAT = 2;
    public static final int TEST_BIBW = 3;
    /** Flag in the request's test field: count the bytes, do not checksum them. */
    public static final int NO_CHECKSUM = 0x100;
    /** Bytes of the answer to TEST_BW / TEST_BIBW. */
    public static final int BW_REPLY = 16;
    public static final int BIBW_REPLY = 24;
    /** The sink reads at least this much per call, as a stream receiver does, whatever the sender's message size. */
    private static final int SINK_READ = 64 << 10;

    private PerfSession() {
    }

    /**
     * Server side: answers requests until the client closes. Requests, answers and the data buffers live as long as
     * the connection: a client calibrating its figures sends hundreds of requests a second.
     */
    static void serve(Link link) throws IOException {
        ByteBuffer hdr = ByteBuffer.allocate(REQUEST);
        ByteBuffer reply = ByteBuffer.allocate(BIBW_REPLY);
        ByteBuffer in = null;
        ByteBuffer out = null;
        while (true) {
            hdr.clear();
            while (hdr.hasRemaining()) {
                if (link.read(hdr) < 0) {
                    return;
                }
            }
            hdr.flip();
            if (hdr.getInt() != MAGIC) {
                throw new IOException("not a benchmark request");
            }
            int test = hdr.getInt();
            boolean checksum = (test & NO_CHECKSUM) == 0;
            test &= ~NO_CHECKSUM;
            int size = hdr.getInt();
            long count = hdr.getLong();
            link.useTransferMode(hdr.getInt());
            if (size <= 0 || size > (64 << 20) || count <= 0) {
                throw new IOException("bad request: size " + size + ", count " + count);
            }
            if (test != TEST_BW && test != TEST_BIBW && test != TEST_LAT) {
                throw new IOException("unknown test " + test);
            }
            in = sized(link, in, test == TEST_LAT ? size : Math.max(size, SINK_READ));
            reply.clear();
            if (test == TEST_BW) {
                link.write(reply.putLong(size * count).putLong(sink(link, in, size, size * count, checksum)).flip());
            } else if (test == TEST_BIBW) {
                out = sized(link, out, size);
                both(link, in, out.clear().limit(size), count, checksum, reply);
                link.write(reply.flip());
            } else {
                echo(link, in, size, count);
            }
        }
    }

    /** {@code buf} when it holds {@code size} bytes, else a new buffer of the link's kind. */
    private static ByteBuffer sized(Link link, ByteBuffer buf, int size) {
        return buf != null && buf.capacity() >= size ? buf : link.allocate(size);
    }

    /** A buffer to {@link #sink} messages of {@code size} bytes into. */
    public static ByteBuffer sinkBuffer(Link link, int size) {
        return link.allocate(Math.max(size, SINK_READ));
    }

    /**
     * Reads {@code total} bytes of {@code size}-byte messages into {@code buf} (from {@link #sinkBuffer}), at most
     * {@code max(size, SINK_READ)} per call whatever its capacity; their CRC32C, or 0 without {@code checksum}.
     */
    public static long sink(Link link, ByteBuffer buf, int size, long total, boolean checksum) throws IOException {
        CRC32C crc = new CRC32C();
        int readMax = Math.max(size, SINK_READ);
        long left = total;
        while (left > 0) {
            buf.clear().limit((int) Math.min(left, readMax));
            int n = link.read(buf);
            if (n < 0) {
                throw new IOException("client closed with " + left + " bytes missing");
            }
            if (checksum) {
                crc.update(buf.flip());
            }
            left -= n;
        }
        return checksum ? crc.getValue() : 0;
    }

    /** Sinks into {@code in} while writing {@code out}, filled with random bytes, count times; then fills reply. */
    private static void both(Link link, ByteBuffer in, ByteBuffer out, long count, boolean checksum,
                             ByteBuffer reply) throws IOException {
        int size = out.remaining();
        byte[] random = new byte[size];
        ThreadLocalRandom.current().nextBytes(random);
        out.put(random).flip();
        CRC32C sent = new CRC32C();
        for (long i = 0; checksum && i < count; i++) {
            sent.update(random);
        }
        AtomicReference<IOException> failure = new AtomicReference<>();
        Thread writer = new Thread(() -> {
            try {
                for (long i = 0; i < count; i++) {
                    out.rewind();
                    link.write(out);
                }
            } catch (IOException e) {
                failure.set(e);
            }
        }, "bench-bibw-writer");
        writer.setDaemon(true);
        writer.start();
        long crc = sink(link, in, size, (long) size * count, checksum);
        try {
            writer.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while the bibw writer ran");
        }
        if (failure.get() != null) {
            throw failure.get();
        }
        reply.putLong((long) size * count).putLong(crc).putLong(sent.getValue());
    }

    private static void echo(Link link, ByteBuffer buf, int size, long count) throws IOException {
        for (long i = 0; i < count; i++) {
            buf.clear().limit(size);
            link.readFully(buf);
            buf.flip();
            link.write(buf);
        }
    }

    /** Client side: asks the server for one test (optionally with {@link #NO_CHECKSUM}). */
    public static void request(Link link, int test, int size, long count) throws IOException {
        link.write(ByteBuffer.allocate(REQUEST).putInt(MAGIC).putInt(test).putInt(size).putLong(count)
                .putInt(link.transferMode()).flip());
    }
}
