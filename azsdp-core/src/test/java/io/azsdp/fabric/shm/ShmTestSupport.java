package io.azsdp.fabric.shm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.azsdp.fabric.CompletionHandler;
import io.azsdp.fabric.Endpoint;
import io.azsdp.fabric.FabricOptions;
import io.azsdp.fabric.MemoryRegion;
import io.azsdp.fabric.Opcode;
import io.azsdp.fabric.WcStatus;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

/** Shared helpers: an in-process connected pair, a recording handler, deterministic payloads. */
final class ShmTestSupport {
    private ShmTestSupport() {
    }

    static void assumeShmAvailable() {
        String why = new ShmFabric().unavailableReason();
        assumeTrue(why == null, "shm unavailable: " + why);
    }

    static FabricOptions options(int maxMessage, int maxPostedRecvs, int maxRegions) {
        return new FabricOptions(maxMessage, maxPostedRecvs, maxRegions, 5_000, 2_000);
    }

    /**
     * Connected, not started endpoints. Closing aborts both, then closes them, which ends receives in place too
     * (idempotent if the test closed them already).
     */
    record Pair(Endpoint client, Endpoint server) implements AutoCloseable {
        /** Starts both ends with these handlers. */
        void start(Recorder clientEvents, Recorder serverEvents) {
            server.setHandler(serverEvents);
            server.start();
            client.setHandler(clientEvents);
            client.start();
        }

        @Override
        public void close() {
            client.abort();
            server.abort();
            client.close();
            server.close();
        }
    }

    static Pair pair(FabricOptions clientOptions, FabricOptions serverOptions) throws Exception {
        assumeShmAvailable();
        try (ServerSocketChannel ss = ServerSocketChannel.open()) {
            ss.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            SocketChannel c = SocketChannel.open(ss.getLocalAddress());
            SocketChannel s = ss.accept();
            CompletableFuture<Endpoint> server = CompletableFuture.supplyAsync(() -> {
                try {
                    return new ShmFabric().accept(s, serverOptions);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
            Endpoint client = new ShmFabric().connect(c, clientOptions);
            return new Pair(client, server.get(10, TimeUnit.SECONDS));
        }
    }

    static Pair pair(FabricOptions options) throws Exception {
        return pair(options, options);
    }

    record Completion(int opcode, long wrId, int byteLen, int status) {
        @Override
        public String toString() {
            return Opcode.name(opcode) + "(wr=" + wrId + ", len=" + byteLen + ", " + WcStatus.name(status) + ")";
        }
    }

    /** Records everything; for tests where allocation does not matter. */
    static class Recorder implements CompletionHandler {
        final BlockingQueue<Completion> completions = new LinkedBlockingQueue<>();
        final CompletableFuture<IOException> disconnect = new CompletableFuture<>();
        final AtomicInteger disconnects = new AtomicInteger();

        @Override
        public void onCompletion(int opcode, long wrId, int byteLen, int status) {
            completions.add(new Completion(opcode, wrId, byteLen, status));
        }

        @Override
        public void onDisconnect(IOException cause) {
            disconnects.incrementAndGet();
            disconnect.complete(cause);
        }

        Completion take() throws InterruptedException {
            Completion c = completions.poll(10, TimeUnit.SECONDS);
            assertNotNull(c, "no completion within 10 s");
            return c;
        }

        void expect(int opcode, long wrId, int byteLen, int status) throws InterruptedException {
            assertEquals(new Completion(opcode, wrId, byteLen, status), take());
        }

        IOException awaitDisconnect() throws Exception {
            return disconnect.get(10, TimeUnit.SECONDS);
        }
    }

    /** {@code count} random lengths in 0..max, every {@code every}-th one empty and the one after it {@code max}. */
    static int[] randomLengths(int count, int max, int every, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        int[] lengths = new int[count];
        for (int i = 0; i < count; i++) {
            lengths[i] = i % every == 0 ? 0 : i % every == 1 ? max : random.nextInt(max + 1);
        }
        return lengths;
    }

    /**
     * Sends message i of {@code lengths} (content {@link #fill} of seed i, wrId i) from the client for every permit
     * (a credit the receiver returns), while {@code pollers} more threads poll the server's ring as waiting application
     * threads do (they and the progress thread take turns as its consumer); then waits for {@code done}.
     */
    static void sendPolled(Pair p, int[] lengths, Semaphore permits, int pollers, CountDownLatch done,
                           AtomicReference<Throwable> failure) throws Exception {
        ByteBuffer txBuf = ByteBuffer.allocateDirect(Arrays.stream(lengths).max().orElse(0) + 1);
        MemoryRegion tx = p.client().register(txBuf);
        Thread[] polling = new Thread[pollers];
        for (int t = 0; t < pollers; t++) {
            polling[t] = new Thread(() -> {
                while (done.getCount() > 0) {
                    if (!p.server().poll(20_000, () -> false)) {
                        Thread.yield();
                    }
                }
            }, "poller-" + t);
            polling[t].start();
        }
        try {
            for (int i = 0; i < lengths.length && failure.get() == null; i++) {
                assertTrue(permits.tryAcquire(10, TimeUnit.SECONDS), "credit for message " + i);
                fill(txBuf, 0, lengths[i], i);
                p.client().postSend(i, tx, 0, lengths[i]); // the buffer is reusable at once: SEND copies
            }
            assertTrue(done.await(30, TimeUnit.SECONDS));
        } finally {
            done.countDown();
            for (Thread t : polling) {
                t.join(5_000);
            }
        }
    }

    /** A direct buffer of {@code guard + size + guard} bytes, all 0xA5; register {@link #inner} of it. */
    static ByteBuffer guarded(int size, int guard) {
        ByteBuffer b = ByteBuffer.allocateDirect(size + 2 * guard);
        for (int i = 0; i < b.capacity(); i++) {
            b.put(i, (byte) 0xA5);
        }
        return b;
    }

    /** The middle of a {@link #guarded} buffer, as [position, limit) for registration. */
    static ByteBuffer inner(ByteBuffer guarded, int guard) {
        return guarded.duplicate().position(guard).limit(guarded.capacity() - guard);
    }

    static byte[] snapshot(ByteBuffer b) {
        byte[] a = new byte[b.capacity()];
        b.get(0, a);
        return a;
    }

    /** Deterministic pseudo-random content for message {@code seq}. */
    static void fill(ByteBuffer b, int offset, int length, long seq) {
        long x = seed(seq);
        int i = 0;
        for (; i + 8 <= length; i += 8) {
            x = next(x);
            b.putLong(offset + i, x);
        }
        x = next(x);
        for (; i < length; i++, x >>>= 8) {
            b.put(offset + i, (byte) x);
        }
    }

    /** Index of the first byte that differs from {@link #fill}, or -1. */
    static int mismatch(ByteBuffer b, int offset, int length, long seq) {
        long x = seed(seq);
        int i = 0;
        for (; i + 8 <= length; i += 8) {
            x = next(x);
            if (b.getLong(offset + i) != x) {
                return i;
            }
        }
        x = next(x);
        for (; i < length; i++, x >>>= 8) {
            if (b.get(offset + i) != (byte) x) {
                return i;
            }
        }
        return -1;
    }

    private static long seed(long seq) {
        return (seq + 1) * 0x9E3779B97F4A7C15L;
    }

    private static long next(long x) {
        x ^= x << 13;
        x ^= x >>> 7;
        x ^= x << 17;
        return x;
    }

    /** Whether the segment of this in-process endpoint is still mapped (other tests' mappings do not count). */
    static boolean mapped(Endpoint ep) throws IOException {
        String start = Long.toHexString(((ShmEndpoint) ep).segment().base) + "-";
        return Files.readAllLines(Path.of("/proc/self/maps")).stream().anyMatch(l -> l.startsWith(start));
    }

    /** Mappings of shm segments in this process (both ends of an in-process pair show up). */
    static long segmentMappings() throws IOException {
        return Files.readAllLines(Path.of("/proc/self/maps")).stream().filter(l -> l.contains("azsdp-shm")).count();
    }
}
