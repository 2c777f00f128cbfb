package io.azsdp.cli.bench;

import io.azsdp.cli.Link;
import io.azsdp.cli.PerfSession;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.HdrHistogram.Histogram;

/** Client side of the latency test: round trips of one message, every echo compared with what was sent. */
public final class PingPong {
    /** Round trips above this are recorded as this (a fixed range: the histogram never resizes in the loop). */
    private static final long MAX_NANOS = TimeUnit.SECONDS.toNanos(60);

    private PingPong() {
    }

    /** Round-trip times in nanoseconds. */
    public static Histogram run(Link link, int size, int iterations) throws IOException {
        ByteBuffer out = link.allocate(size);
        ByteBuffer in = link.allocate(size);
        byte[] random = new byte[size];
        ThreadLocalRandom.current().nextBytes(random);
        out.put(random).flip();
        Histogram h = new Histogram(MAX_NANOS, 3);
        PerfSession.request(link, PerfSession.TEST_LAT, size, iterations);
        for (int i = 0; i < iterations; i++) {
            out.rewind();
            in.clear();
            long t0 = System.nanoTime();
            link.write(out);
            link.readFully(in);
            h.recordValue(Math.min(System.nanoTime() - t0, MAX_NANOS));
            in.flip();
            out.rewind();
            if (!in.equals(out)) {
                throw new VerificationException("round trip " + i + " of " + size + " bytes: the echo differs");
            }
        }
        return h;
    }
}
