package io.azsdp.cli;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.ThreadLocalRandom;
import java.util.zip.CRC32C;
import org.HdrHistogram.Histogram;

/**
 * The benchmark wire protocol, both sides. A client sends a 20-byte request (magic, test, message size, count); for
 * {@code bw} the server reads size*count bytes, checksums every byte and answers with (bytes, CRC32C); for {@code lat}
 * it echoes count messages.
 */
final class PerfSession {
    static final int MAGIC = 0x415A5046;
    static final int TEST_BW = 1;
    static final int TEST_LAT = 2;

    /** One measured figure. */
    record Figure(String name, double value, String unit, boolean verified) {
    }

    private PerfSession() {
    }

    /** Server side: answers requests until the client closes. */
    static void serve(Link link) throws IOException {
        ByteBuffer hdr = link.allocate(20);
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
            int size = hdr.getInt();
            long count = hdr.getLong();
            if (size <= 0 || size > (64 << 20) || count <= 0) {
                throw new IOException("bad request: size " + size + ", count " + count);
            }
            if (test == TEST_BW) {
                sink(link, size, size * count);
            } else if (test == TEST_LAT) {
                echo(link, size, count);
            } else {
                throw new IOException("unknown test " + test);
            }
        }
    }

    private static void sink(Link link, int size, long total) throws IOException {
        ByteBuffer buf = link.allocate(size);
        CRC32C crc = new CRC32C();
        long left = total;
        while (left > 0) {
            buf.clear().limit((int) Math.min(left, size));
            int n = link.read(buf);
            if (n < 0) {
                throw new IOException("client closed with " + left + " bytes missing");
            }
            buf.flip();
            crc.update(buf);
            left -= n;
        }
        ByteBuffer reply = link.allocate(16);
        reply.putLong(total).putLong(crc.getValue()).flip();
        link.write(reply);
    }

    private static void echo(Link link, int size, long count) throws IOException {
        ByteBuffer buf = link.allocate(size);
        for (long i = 0; i < count; i++) {
            buf.clear();
            link.readFully(buf);
            buf.flip();
            link.write(buf);
        }
    }

    private static void request(Link link, int test, int size, long count) throws IOException {
        ByteBuffer hdr = link.allocate(20);
        hdr.putInt(MAGIC).putInt(test).putInt(size).putLong(count).flip();
        link.write(hdr);
    }

    /** Client side: streams {@code count} messages of {@code size} bytes; GB/s, verified by the server's CRC. */
    static Figure bandwidth(Link link, int size, long count) throws IOException {
        ByteBuffer buf = link.allocate(size);
        byte[] random = new byte[size];
        ThreadLocalRandom.current().nextBytes(random);
        buf.put(random).flip();
        CRC32C expected = new CRC32C();
        for (long i = 0; i < count; i++) {
            expected.update(random, 0, size);
        }
        request(link, TEST_BW, size, count);
        long t0 = System.nanoTime();
        for (long i = 0; i < count; i++) {
            buf.rewind();
            link.write(buf);
        }
        ByteBuffer reply = link.allocate(16);
        link.readFully(reply);
        long t1 = System.nanoTime();
        reply.flip();
        long bytes = reply.getLong();
        long crc = reply.getLong();
        boolean ok = bytes == size * count && crc == expected.getValue();
        return new Figure("bw", (double) size * count / (t1 - t0), "GB/s", ok);
    }

    /** Client side: ping-pong; median round trip in microseconds, every echo compared. */
    static Figure latency(Link link, int size, int iterations) throws IOException {
        ByteBuffer out = link.allocate(size);
        ByteBuffer in = link.allocate(size);
        byte[] random = new byte[size];
        ThreadLocalRandom.current().nextBytes(random);
        out.put(random).flip();
        Histogram h = new Histogram(3);
        boolean ok = true;
        request(link, TEST_LAT, size, iterations);
        for (int i = 0; i < iterations; i++) {
            out.rewind();
            in.clear();
            long t0 = System.nanoTime();
            link.write(out);
            link.readFully(in);
            h.recordValue(System.nanoTime() - t0);
            in.flip();
            out.rewind();
            ok &= in.equals(out);
        }
        return new Figure("rtt_p50", h.getValueAtPercentile(50) / 1000.0, "us", ok);
    }
}
