package io.azsdp.cli.bench;

import io.azsdp.cli.Link;
import io.azsdp.cli.PerfSession;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Client side of the throughput tests: {@code count} messages of a {@link Payload} on one link, timed from the first
 * write to the server's answer, which must confirm the byte count and (with {@code checksum}) the CRC32C of every
 * byte.
 */
public final class Sender {
    private final Link link;
    private final Payload payload;
    private final long count;
    private final boolean checksum;
    private final long expected;
    private final ByteBuffer reply;
    private ByteBuffer sinkBuffer; // for both(), allocated on first use

    public Sender(Link link, Payload payload, long count) {
        this(link, payload, count, true);
    }

    /** Without {@code checksum} the receivers only count bytes (see {@link PerfSession#NO_CHECKSUM}). */
    public Sender(Link link, Payload payload, long count, boolean checksum) {
        this.link = link;
        this.payload = payload;
        this.count = count;
        this.checksum = checksum;
        this.expected = checksum ? payload.expectedCrc(count) : 0;
        this.reply = ByteBuffer.allocate(PerfSession.BIBW_REPLY);
    }

    int size() {
        return payload.size();
    }

    long count() {
        return count;
    }

    public long bytes() {
        return payload.size() * count;
    }

    /** Streams the messages, computing {@code computeNanos} after each write; nanoseconds in all. */
    public long stream(long computeNanos) throws IOException {
        reply.clear().limit(PerfSession.BW_REPLY);
        PerfSession.request(link, test(PerfSession.TEST_BW), payload.size(), count);
        long t0 = System.nanoTime();
        for (long i = 0; i < count; i++) {
            link.write(payload.next(i));
            if (computeNanos > 0) {
                compute(computeNanos);
            }
        }
        link.readFully(reply);
        long t = System.nanoTime() - t0;
        verify(reply.flip());
        return t;
    }

    /**
     * Both directions at once: this thread writes while a second one reads and checksums the server's messages of the
     * same size and count; nanoseconds until both directions are done and verified.
     */
    long both() throws IOException {
        reply.clear();
        if (sinkBuffer == null) {
            sinkBuffer = PerfSession.sinkBuffer(link, payload.size());
        }
        long[] received = new long[1];
        AtomicReference<IOException> failure = new AtomicReference<>();
        Thread reader = new Thread(() -> {
            try {
                received[0] = PerfSession.sink(link, sinkBuffer, payload.size(), bytes(), checksum);
                link.readFully(reply);
            } catch (IOException e) {
                failure.set(e);
            }
        }, "bench-bibw-reader");
        reader.setDaemon(true);
        PerfSession.request(link, test(PerfSession.TEST_BIBW), payload.size(), count);
        reader.start();
        long t0 = System.nanoTime();
        for (long i = 0; i < count; i++) {
            link.write(payload.next(i));
        }
        join(reader);
        long t = System.nanoTime() - t0;
        if (failure.get() != null) {
            throw failure.get();
        }
        verify(reply.flip());
        long sent = reply.getLong();
        if (received[0] != sent) {
            throw new VerificationException(String.format("server->client CRC32C %08x, the server sent %08x",
                    received[0], sent));
        }
        return t;
    }

    /** Runs every sender's {@link #stream} on its own thread, started together; wall nanoseconds until all are done. */
    static long parallel(List<Sender> senders) throws IOException {
        CountDownLatch go = new CountDownLatch(1);
        AtomicReference<IOException> failure = new AtomicReference<>();
        List<Thread> threads = new ArrayList<>();
        for (Sender s : senders) {
            Thread t = new Thread(() -> {
                try {
                    go.await();
                    s.stream(0);
                } catch (IOException e) {
                    failure.compareAndSet(null, e);
                } catch (InterruptedException e) {
                    failure.compareAndSet(null, new InterruptedIOException("interrupted before the start"));
                }
            }, "bench-conn-" + threads.size());
            t.setDaemon(true);
            t.start();
            threads.add(t);
        }
        long t0 = System.nanoTime();
        go.countDown();
        for (Thread t : threads) {
            join(t);
        }
        long wall = System.nanoTime() - t0;
        if (failure.get() != null) {
            throw failure.get();
        }
        return wall;
    }

    /** The experiment's computation: a busy loop of a given duration, touching no buffer. */
    static void compute(long nanos) {
        long end = System.nanoTime() + nanos;
        while (System.nanoTime() < end) {
            Thread.onSpinWait();
        }
    }

    private static void join(Thread t) throws InterruptedIOException {
        try {
            t.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while " + t.getName() + " ran");
        }
    }

    private int test(int test) {
        return checksum ? test : test | PerfSession.NO_CHECKSUM;
    }

    private void verify(ByteBuffer r) throws VerificationException {
        long bytes = r.getLong();
        long crc = r.getLong();
        if (bytes != bytes() || crc != expected) {
            throw new VerificationException(String.format("server received %d bytes with CRC32C %08x, sent %d with %08x",
                    bytes, crc, bytes(), expected));
        }
    }
}
