package io.azsdp.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.azsdp.config.AzSdpConfig;
import io.azsdp.fabric.Fabrics;
import io.azsdp.sdp.SdpConnection;
import io.azsdp.socket.AzSdpSocket;
import java.io.IOException;
import java.lang.management.LockInfo;
import java.lang.management.ManagementFactory;
import java.lang.management.MonitorInfo;
import java.lang.management.ThreadInfo;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.LocalTime;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;

/**
 * What the multi-JVM tests share: configurations, peers cleaned up after every test, named tasks on daemon threads,
 * bounded waits that dump every thread of both JVMs (this one and each peer, with jstack) before failing.
 */
abstract class MultiJvmTestBase {
    /** The liveness bound both JVMs run with. */
    static final int LIVENESS_MS = 2000;
    static final Path DUMPS = Path.of("target", "it-dumps");

    private final List<Socket> sockets = new ArrayList<>();

    @AfterEach
    void cleanUp() {
        synchronized (sockets) {
            for (Socket s : sockets) {
                abort(s);
            }
            sockets.clear();
        }
        Peer.destroyAll();
    }

    // ---------------------------------------------------------------------------------------------- configuration

    /** Loopback-friendly defaults (liveness {@value #LIVENESS_MS} ms) overlaid with {@code key, value, ...}. */
    static AzSdpConfig config(String... kv) {
        Properties p = new Properties();
        p.setProperty(AzSdpConfig.LIVENESS_TIMEOUT_MS, Integer.toString(LIVENESS_MS));
        for (int i = 0; i < kv.length; i += 2) {
            p.setProperty(kv[i], kv[i + 1]);
        }
        return AzSdpConfig.load(p);
    }

    /** System properties for a peer: the same liveness bound overlaid with {@code key, value, ...}. */
    static Map<String, String> peerProps(String... kv) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put(AzSdpConfig.LIVENESS_TIMEOUT_MS, Integer.toString(LIVENESS_MS));
        for (int i = 0; i < kv.length; i += 2) {
            m.put(kv[i], kv[i + 1]);
        }
        return m;
    }

    static void assumeFabric(String fabric) {
        String why = Fabrics.unavailableReason(fabric);
        Assumptions.assumeTrue(why == null, () -> "fabric " + fabric + " unavailable: " + why);
    }

    /** A serving peer; returns once it listens. */
    static Peer startServer(String name, Map<String, String> props) throws Exception {
        Peer p = Peer.start(name, props, "serve");
        p.awaitReady();
        return p;
    }

    /** Connects to a peer on loopback with {@code cfg}; the socket is aborted after the test if still open. */
    AzSdpSocket connect(AzSdpConfig cfg, int port) throws IOException {
        AzSdpSocket s = new AzSdpSocket(cfg);
        track(s);
        s.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 10_000);
        return s;
    }

    <S extends Socket> S track(S s) {
        synchronized (sockets) {
            sockets.add(s);
        }
        return s;
    }

    static void abort(Socket s) {
        try {
            if (!s.isClosed()) {
                s.setSoLinger(true, 0);
            }
        } catch (IOException ignored) {
            // closed meanwhile
        }
        try {
            s.close();
        } catch (IOException ignored) {
            // closing anyway
        }
    }

    static void log(String format, Object... args) {
        System.out.println(LocalTime.now() + " " + String.format(format, args));
    }

    // ---------------------------------------------------------------------------------------------- tasks

    /** A named computation on its own daemon thread; the thread is kept for stack inspection. */
    static final class Task<T> {
        final String name;
        final Thread thread;
        final CompletableFuture<T> result = new CompletableFuture<>();
        volatile long endNanos;

        private Task(String name, Callable<T> body) {
            this.name = name;
            this.thread = new Thread(() -> {
                try {
                    T v = body.call();
                    endNanos = System.nanoTime();
                    result.complete(v);
                } catch (Throwable t) {
                    endNanos = System.nanoTime();
                    result.completeExceptionally(t);
                }
            }, name);
            thread.setDaemon(true);
        }

        T get() throws Exception {
            try {
                return result.getNow(null);
            } catch (java.util.concurrent.CompletionException e) {
                throw unwrap(e);
            }
        }

        Throwable failure() {
            if (!result.isCompletedExceptionally()) {
                return null;
            }
            try {
                result.join();
                return null;
            } catch (java.util.concurrent.CompletionException | java.util.concurrent.CancellationException e) {
                return e.getCause() != null ? e.getCause() : e;
            }
        }

        @Override
        public String toString() {
            return name;
        }
    }

    static <T> Task<T> start(String name, Callable<T> body) {
        Task<T> t = new Task<>(name, body);
        t.thread.start();
        return t;
    }

    private static Exception unwrap(Throwable e) {
        Throwable c = e.getCause() != null ? e.getCause() : e;
        if (c instanceof Exception ex) {
            return ex;
        }
        if (c instanceof Error err) {
            throw err;
        }
        return new ExecutionException(c);
    }

    /**
     * Waits for every task, at most {@code timeout} in all. On the first failure {@code onFailure} runs (typically:
     * abort the sockets, so no task stays blocked on a peer that will never answer) and the failure is rethrown once the
     * others have ended (bounded too). On timeout every thread of this JVM and of {@code peers} is dumped first.
     */
    void awaitAll(String what, Duration timeout, Runnable onFailure, Collection<Peer> peers, Collection<? extends Task<?>> tasks)
            throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        Throwable first = null;
        while (true) {
            boolean all = true;
            for (Task<?> t : tasks) {
                if (first == null && t.failure() != null) {
                    first = t.failure();
                    log("%s: task %s failed: %s; aborting the rest", what, t.name, first);
                    if (onFailure != null) {
                        onFailure.run();
                    }
                    deadline = Math.min(deadline, System.nanoTime() + TimeUnit.SECONDS.toNanos(20));
                }
                all &= t.result.isDone();
            }
            if (all) {
                break;
            }
            if (System.nanoTime() > deadline) {
                List<String> pending = tasks.stream().filter(t -> !t.result.isDone()).map(t -> t.name).toList();
                String why = what + ": tasks " + pending + " did not finish within " + timeout
                        + (first != null ? " (after an earlier failure: " + first + ")" : "");
                dumpEverything(why, peers);
                AssertionError e = new AssertionError(why + "; thread dumps in " + DUMPS.toAbsolutePath());
                if (first != null) {
                    e.addSuppressed(first);
                }
                throw e;
            }
            Thread.sleep(5);
        }
        if (first != null) {
            if (first instanceof Error err) {
                throw err;
            }
            throw first instanceof Exception ex ? ex : new ExecutionException(first);
        }
    }

    /**
     * Waits (bounded) until every task has ended, successfully or not; on timeout dumps all threads of both JVMs and
     * fails. For tasks that are expected to fail.
     */
    static void awaitDone(String what, Duration timeout, Collection<? extends Task<?>> tasks, Collection<Peer> peers)
            throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!tasks.stream().allMatch(t -> t.result.isDone())) {
            if (System.nanoTime() > deadline) {
                List<String> pending = tasks.stream().filter(t -> !t.result.isDone()).map(t -> t.name).toList();
                String why = what + ": " + pending + " still blocked after " + timeout;
                dumpEverything(why, peers);
                fail(why + " (engine hang? thread dumps printed above and in "
                        + DUMPS.toAbsolutePath() + ")");
            }
            Thread.sleep(5);
        }
    }

    // ---------------------------------------------------------------------------------------------- streams

    /** Transfer mode and zero-copy threshold of one side, to predict its counters. */
    record Side(String mode, int threshold) {
        static Side of(AzSdpConfig cfg) {
            return new Side(cfg.get(AzSdpConfig.MODE), cfg.zcopyThreshold(cfg.get(AzSdpConfig.FABRIC)));
        }

        /** Whether a write of a heap array goes zero copy (auto mode sends heap arrays by BCopy). */
        boolean zcopyHeapWrite() {
            return mode.equals("zcopy");
        }
    }

    /**
     * Opens {@code connections} connections to a serving peer (in parallel), and on every one moves {@code bytes}
     * each way at the same time (a {@link Job#STREAM}), then checks: both checksums against the peer's RESULT, every
     * byte (see {@link Traffic#receive}), end of stream after the peer's orderly close, and the transfer counters of
     * both sides (each write's path is predictable from its size, so the zero-copy byte counts are exact).
     */
    void streamBothWays(String what, Peer peer, int port, AzSdpConfig cfg, Side server, int connections, long bytes,
                        int maxMessage, Duration timeout) throws Exception {
        String fabric = cfg.get(AzSdpConfig.FABRIC);
        Side client = Side.of(cfg);
        long baseSeed = Long.getLong("azsdp.it.seed", System.nanoTime());
        log("%s: %d connection(s) on %s, %s each way, client %s, peer %s, seed %d", what, connections, fabric,
                Traffic.mib(bytes), client, server, baseSeed);

        List<Task<AzSdpSocket>> connects = new ArrayList<>();
        for (int i = 0; i < connections; i++) {
            connects.add(start(what + "-connect-" + i, () -> {
                AzSdpSocket s = connect(cfg, port);
                s.setSoTimeout(60_000);
                return s;
            }));
        }
        awaitAll(what + " connect", Duration.ofSeconds(60), null, List.of(peer), connects);
        List<AzSdpSocket> sockets = new ArrayList<>();
        for (Task<AzSdpSocket> t : connects) {
            sockets.add(t.get());
        }
        Runnable abortAll = () -> sockets.forEach(MultiJvmTestBase::abort);

        long t0 = System.nanoTime();
        List<Job> jobs = new ArrayList<>();
        List<Task<Traffic.Result>> tx = new ArrayList<>();
        List<Task<Traffic.Result>> rx = new ArrayList<>();
        for (int i = 0; i < connections; i++) {
            AzSdpSocket s = sockets.get(i);
            assertEquals(fabric, s.fabricName(), "fabric of connection " + i);
            Job job = new Job(Job.STREAM, i, baseSeed + 2L * i, bytes, bytes, maxMessage);
            jobs.add(job);
            job.writeTo(s);
            tx.add(start(what + "-tx-" + i, () -> Traffic.send(s, job.clientSeed(), bytes, maxMessage, null)));
            rx.add(start(what + "-rx-" + i, () -> Traffic.receive(s, job.peerSeed(), bytes, maxMessage, maxMessage,
                    null)));
        }
        List<Task<Traffic.Result>> all = new ArrayList<>(tx);
        all.addAll(rx);
        awaitAll(what, timeout, abortAll, List.of(peer), all);
        long wall = System.nanoTime() - t0;

        for (int i = 0; i < connections; i++) {
            AzSdpSocket s = sockets.get(i);
            Job job = jobs.get(i);
            String id = Integer.toString(i);
            Map<String, String> p = Peer.parse(peer.awaitLine(l -> l.startsWith("RESULT")
                    && id.equals(Peer.parse(l).get("id")), "RESULT id=" + id, Duration.ofSeconds(30)));
            Traffic.Result sent = tx.get(i).get();
            Traffic.Result got = rx.get(i).get();
            String c = what + " connection " + i + ": ";
            assertEquals(fabric, p.get("fabric"), c + "peer's fabric");
            assertEquals(bytes, sent.bytes(), c + "bytes we sent");
            assertEquals(bytes, got.bytes(), c + "bytes we received");
            assertEquals(bytes, Long.parseLong(p.get("recvBytes")), c + "bytes the peer received");
            assertEquals(bytes, Long.parseLong(p.get("sentBytes")), c + "bytes the peer sent");
            assertEquals(sent.crc(), Long.parseLong(p.get("recvCrc")), c + "CRC32C of client->peer");
            assertEquals(Long.parseLong(p.get("sentCrc")), got.crc(), c + "CRC32C of peer->client");
            assertEquals(-1, s.getInputStream().read(), c + "end of stream after the peer's orderly close");

            Map<String, Long> mine = Traffic.counters(s);
            long onWire = bytes + Job.SIZE; // the job header is ours too
            // Less what auto mode sent by BCopy while other connections' synchronous zero-copy writes waited.
            long myZ = Traffic.expectedZcopyBytes(job.clientSeed(), bytes, maxMessage, client.mode(),
                    client.threshold()) + (client.zcopyHeapWrite() ? Job.SIZE : 0) // the job header is a heap array
                    - mine.get("zcopyCrowded");
            long peerZ = Traffic.expectedZcopyBytes(job.peerSeed(), bytes, maxMessage, server.mode(),
                    server.threshold()) - get(p, "zcopyCrowded");
            assertEquals(onWire, mine.get("bcopySent") + mine.get("zcopySent"), c + "our sent counters " + mine);
            assertEquals(myZ, mine.get("zcopySent"), c + "our zero-copy bytes (" + client + ") " + mine);
            assertEquals(bytes, get(p, "bcopySent") + get(p, "zcopySent"), c + "peer's sent counters " + p);
            assertEquals(peerZ, get(p, "zcopySent"), c + "peer's zero-copy bytes (" + server + ") " + p);
            assertEquals(mine.get("zcopySent"), get(p, "zcopyRecv"), c + "zero copy client->peer, both views");
            assertEquals(mine.get("bcopySent"), get(p, "bcopyRecv"), c + "buffered copy client->peer, both views");
            assertEquals(get(p, "zcopySent"), mine.get("zcopyRecv"), c + "zero copy peer->client, both views");
            assertEquals(get(p, "bcopySent"), mine.get("bcopyRecv"), c + "buffered copy peer->client, both views");
            assertEquals(bytes, mine.get("delivered"), c + "bytes delivered to us " + mine);
            assertEquals(onWire, get(p, "delivered"), c + "bytes delivered to the peer " + p);
            for (Map<String, ?> side : List.of(mine, p)) {
                Object z = side.get("zcopySent");
                Object b = side.get("bcopySent");
                String who = side == mine ? "client" : "peer";
                Side mode = side == mine ? client : server;
                switch (mode.mode()) {
                    case "bcopy" -> assertEquals(0L, Long.parseLong(z.toString()), c + who + " in bcopy sent zero copy");
                    case "zcopy" -> {
                        assertEquals(0L, Long.parseLong(b.toString()), c + who + " in zcopy sent buffered copy");
                        assertTrue(Long.parseLong(z.toString()) > 0, c + who + " in zcopy sent nothing zero copy");
                    }
                    default -> {
                        if (bytes >= 64L << 20) { // enough random sizes on both sides of any threshold used here
                            assertTrue(Long.parseLong(z.toString()) > 0, c + who + " in auto sent nothing zero copy");
                            assertTrue(Long.parseLong(b.toString()) > 0, c + who + " in auto sent nothing bcopy");
                        }
                    }
                }
            }
            if (connections == 1) {
                log("%s: counters client %s | peer %s", what, Traffic.format(mine), Traffic.format(p));
                log("%s: client->peer %.0f MiB/s, peer->client %.0f MiB/s", what, sent.mibPerSecond(),
                        got.mibPerSecond());
            }
            s.close();
        }
        log("%s: THROUGHPUT %s moved (%d connection(s) x %s x 2 directions) in %.2f s = %.0f MiB/s aggregate", what,
                Traffic.mib(2L * connections * bytes), connections, Traffic.mib(bytes), wall / 1e9,
                2.0 * connections * bytes / (1024.0 * 1024.0) / (wall / 1e9));
    }

    private static long get(Map<String, String> m, String key) {
        String v = m.get(key);
        assertNotNull(v, "peer line lacks " + key + ": " + m);
        return Long.parseLong(v);
    }

    // ---------------------------------------------------------------------------------------------- diagnostics

    /** Full stacks of every thread of this JVM and a jstack of every live peer, to stdout and {@link #DUMPS}. */
    static void dumpEverything(String why, Collection<Peer> peers) {
        StringBuilder b = new StringBuilder("=== " + why + "\n=== threads of the test JVM (pid "
                + ProcessHandle.current().pid() + ")\n");
        b.append(threadDump());
        b.append("=== connections of the test JVM not yet disconnected\n");
        SdpConnection.live().forEach(c -> b.append(c.describe()).append('\n'));
        for (Peer p : peers) {
            b.append("=== jstack of peer ").append(p.name()).append('\n').append(p.jstack(DUMPS)).append('\n');
        }
        String text = b.toString();
        System.out.println(text);
        try {
            Files.createDirectories(DUMPS);
            Files.writeString(DUMPS.resolve("hang-" + System.currentTimeMillis() + ".txt"), text);
        } catch (IOException e) {
            System.out.println("cannot write the dump: " + e);
        }
    }

    static String threadDump() {
        StringBuilder b = new StringBuilder();
        for (ThreadInfo ti : ManagementFactory.getThreadMXBean().dumpAllThreads(true, true)) {
            b.append(format(ti));
        }
        return b.toString();
    }

    /** Like {@link ThreadInfo#toString()} without its eight-frame limit. */
    static String format(ThreadInfo ti) {
        StringBuilder b = new StringBuilder("\"" + ti.getThreadName() + "\" #" + ti.getThreadId()
                + (ti.isDaemon() ? " daemon" : "") + " " + ti.getThreadState());
        if (ti.getLockName() != null) {
            b.append(" on ").append(ti.getLockName());
        }
        if (ti.getLockOwnerName() != null) {
            b.append(" owned by \"").append(ti.getLockOwnerName()).append("\" #").append(ti.getLockOwnerId());
        }
        b.append('\n');
        StackTraceElement[] st = ti.getStackTrace();
        for (int i = 0; i < st.length; i++) {
            b.append("\tat ").append(st[i]).append('\n');
            for (MonitorInfo mi : ti.getLockedMonitors()) {
                if (mi.getLockedStackDepth() == i) {
                    b.append("\t-  locked ").append(mi).append('\n');
                }
            }
        }
        LockInfo[] syncs = ti.getLockedSynchronizers();
        if (syncs.length > 0) {
            b.append("\tLocked ownable synchronizers:\n");
            for (LockInfo li : syncs) {
                b.append("\t- ").append(li).append('\n');
            }
        }
        return b.append('\n').toString();
    }

    /** The stack of one thread of this JVM, innermost frame first, as "Class.method" strings. */
    static List<String> frames(Thread t) {
        List<String> out = new ArrayList<>();
        for (StackTraceElement e : t.getStackTrace()) {
            String cls = e.getClassName();
            out.add(cls.substring(cls.lastIndexOf('.') + 1) + "." + e.getMethodName());
        }
        return out;
    }

    /**
     * Waits until {@code t} has made no progress for 500 ms while parked; returns the innermost frame of its stack in
     * SdpConnection or ConnectionWaits (where it waits), skipping {@code ConnectionWaits.awaitPeer}, the helper every
     * writer's wait goes through.
     */
    String awaitBlocked(String what, Task<?> t, AtomicLong progress, Peer peer) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        long last = -1;
        long since = System.nanoTime();
        while (true) {
            if (t.result.isDone()) {
                fail(t.name + " ended while we waited for it to block: " + t.failure(), t.failure());
            }
            long p = progress.get();
            Thread.State st = t.thread.getState();
            boolean parked = st == Thread.State.WAITING || st == Thread.State.TIMED_WAITING;
            if (p != last || !parked) {
                last = p;
                since = System.nanoTime();
            } else if (System.nanoTime() - since > TimeUnit.MILLISECONDS.toNanos(500)) {
                for (String f : frames(t.thread)) {
                    if ((f.startsWith("SdpConnection.") || f.startsWith("ConnectionWaits."))
                            && !f.equals("ConnectionWaits.awaitPeer")) {
                        return f;
                    }
                }
                return "(no SdpConnection or ConnectionWaits frame: " + frames(t.thread) + ")";
            }
            if (System.nanoTime() > deadline) {
                dumpEverything(what + ": " + t.name + " never blocked", List.of(peer));
                fail(t.name + " did not block within 30 s (progress " + p + ")");
            }
            Thread.sleep(20);
        }
    }

    /** Bounded wait for a condition, polled. */
    static void awaitCondition(String what, Duration timeout, java.util.function.BooleanSupplier cond)
            throws InterruptedException, TimeoutException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!cond.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new TimeoutException(what + " not reached within " + timeout);
            }
            Thread.sleep(10);
        }
    }
}
