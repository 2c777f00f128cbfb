package io.azsdp.sdp;

import static io.azsdp.socket.SocketPair.acceptAsync;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.azsdp.config.AzSdpConfig;
import io.azsdp.fabric.FabricOptions;
import io.azsdp.fabric.Fabrics;
import io.azsdp.fabric.MemoryRegion;
import io.azsdp.socket.AzSdpServerSocket;
import io.azsdp.socket.AzSdpSocket;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A rogue SDP peer ({@link RoguePeer}) against a real {@link AzSdpServerSocket}, on both fabrics. For every malformed
 * input the accepted socket's application thread, blocked in {@code getInputStream().read()}, must fail promptly with
 * an IOException naming the problem, the rogue must see the connection go away, nothing may hang, and the same server
 * socket must go on serving a well-behaved client. A positive control proves the rogue speaks the protocol.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class MalformedInputTest {
    /** SO_TIMEOUT of the accepted socket: far above what any failure may take, so a timeout means a hang. */
    private static final int SO_TIMEOUT_MS = 15_000;
    /** Bound on detecting a bad input and failing the blocked read. */
    private static final int FAIL_WITHIN_MS = 5_000;

    private static final Map<String, AzSdpServerSocket> SERVERS = new ConcurrentHashMap<>();

    static AzSdpConfig config(String fabric) {
        Properties p = new Properties();
        p.setProperty(AzSdpConfig.FABRIC, fabric);
        p.setProperty(AzSdpConfig.LIVENESS_TIMEOUT_MS, "2000");
        p.setProperty(AzSdpConfig.CLOSE_TIMEOUT_MS, "2000");
        return AzSdpConfig.load(p);
    }

    /** One server socket per fabric for the whole class: every scenario and every good client use the same one. */
    static AzSdpServerSocket server(String fabric) {
        String why = Fabrics.unavailableReason(fabric);
        Assumptions.assumeTrue(why == null, () -> "fabric " + fabric + " unavailable: " + why);
        return SERVERS.computeIfAbsent(fabric, f -> {
            try {
                AzSdpServerSocket s = new AzSdpServerSocket(config(f));
                s.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
                s.setSoTimeout(10_000);
                return s;
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        });
    }

    @AfterAll
    static void closeServers() throws IOException {
        for (AzSdpServerSocket s : SERVERS.values()) {
            s.close();
        }
        SERVERS.clear();
    }

    // ------------------------------------------------------------------------------------------------ harness

    /** The server application: one thread blocked in read(), recording every byte and how the stream ended. */
    static final class AppReader implements Runnable {
        final Socket socket;
        final Thread thread;
        private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        private IOException failure;
        private boolean eof;
        private boolean done;

        AppReader(Socket socket) {
            this.socket = socket;
            this.thread = new Thread(this, "app-reader-" + socket.getLocalPort());
            thread.setDaemon(true);
            thread.start();
        }

        @Override
        public void run() {
            try {
                InputStream in = socket.getInputStream();
                byte[] buf = new byte[65536];
                while (true) {
                    int n = in.read(buf);
                    synchronized (this) {
                        if (n < 0) {
                            eof = true;
                            return;
                        }
                        bytes.write(buf, 0, n);
                        notifyAll();
                    }
                }
            } catch (IOException e) {
                synchronized (this) {
                    failure = e;
                }
            } finally {
                synchronized (this) {
                    done = true;
                    notifyAll();
                }
            }
        }

        /** Waits until the thread is parked inside read() (so a bad input finds it blocked there). */
        void awaitBlocked() throws InterruptedException {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(2);
            while (System.nanoTime() < deadline) {
                Thread.State s = thread.getState();
                if (s == Thread.State.TIMED_WAITING || s == Thread.State.WAITING) {
                    return;
                }
                Thread.sleep(1);
            }
            fail("application thread never blocked in read(): " + thread.getState());
        }

        synchronized int count() {
            return bytes.size();
        }

        synchronized byte[] bytes() {
            return bytes.toByteArray();
        }

        synchronized void awaitCount(int n, long timeoutMs) throws InterruptedException {
            long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
            while (bytes.size() < n && !done) {
                long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
                if (left <= 0) {
                    break;
                }
                wait(left);
            }
            if (bytes.size() < n) {
                fail("server application read " + bytes.size() + " of " + n + " bytes (done=" + done + ", eof=" + eof
                        + ", failure=" + failure + ")");
            }
        }

        /** Waits for the read loop to end (EOF or exception); false if it has not within the bound. */
        synchronized boolean awaitDone(long timeoutMs) throws InterruptedException {
            long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
            while (!done) {
                long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
                if (left <= 0) {
                    return false;
                }
                wait(left);
            }
            return true;
        }

        synchronized IOException failure() {
            return failure;
        }

        synchronized boolean eof() {
            return eof;
        }
    }

    /** A rogue peer connected to the fabric's server, and the accepted socket with its reader blocked in read(). */
    static final class Scenario implements AutoCloseable {
        final String fabric;
        final AzSdpServerSocket server;
        final RoguePeer rogue;
        final Socket accepted;
        final AppReader app;

        Scenario(String fabric) throws Exception {
            this.fabric = fabric;
            this.server = server(fabric);
            CompletableFuture<Socket> f = acceptAsync(server);
            InetSocketAddress addr = (InetSocketAddress) server.getLocalSocketAddress();
            RoguePeer r = null;
            Socket s;
            try {
                r = RoguePeer.connect(fabric, addr);
                s = f.get(10, TimeUnit.SECONDS);
            } catch (Exception e) {
                if (r != null) {
                    r.close();
                }
                throw e;
            }
            this.rogue = r;
            this.accepted = s;
            assertEquals(fabric, ((AzSdpSocket) s).fabricName());
            s.setSoTimeout(SO_TIMEOUT_MS);
            this.app = new AppReader(s);
            app.awaitBlocked();
        }

        @Override
        public void close() throws IOException {
            rogue.close();
            accepted.close();
            try {
                app.thread.join(5000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /**
     * The common verdict on a bad input: the blocked read fails within the bound with an IOException naming the
     * problem (not a read timeout), later reads fail the same way, and the rogue sees the connection go away.
     */
    static IOException expectAborted(Scenario s, String... fragments) throws Exception {
        if (!s.app.awaitDone(FAIL_WITHIN_MS)) {
            fail("[" + s.fabric + "] the blocked read did not fail within " + FAIL_WITHIN_MS + " ms; "
                    + s.rogue.state() + "\n" + threadDump());
        }
        IOException e = s.app.failure();
        assertNotNull(e, () -> "[" + s.fabric + "] read ended without an IOException (eof=" + s.app.eof() + ", "
                + s.app.count() + " bytes read); " + s.rogue.state());
        assertFalse(e instanceof SocketTimeoutException, () -> "[" + s.fabric + "] read timed out: " + e);
        assertMentions(s.fabric, e, fragments);
        IOException again = null;
        try {
            int n = s.accepted.getInputStream().read();
            fail("[" + s.fabric + "] read after the abort returned " + n);
        } catch (IOException x) {
            again = x;
        }
        assertMentions(s.fabric, again, fragments);
        String gone = s.rogue.awaitGone(FAIL_WITHIN_MS);
        assertNotNull(gone, () -> "[" + s.fabric + "] the rogue peer still sees the connection up: " + s.rogue.state());
        System.out.printf("[%s] read failed with %s: %s | rogue: %s%n", s.fabric, e.getClass().getSimpleName(),
                e.getMessage(), gone);
        return e;
    }

    static void assertMentions(String fabric, IOException e, String... fragments) {
        String msg = String.valueOf(e.getMessage());
        for (String f : fragments) {
            assertTrue(msg.contains(f), () -> "[" + fabric + "] message of " + e.getClass().getSimpleName() + " '" + msg
                    + "' does not mention '" + f + "'");
        }
    }

    /** A well-behaved client still gets through the same server socket, both ways, bcopy and zcopy sizes. */
    static void assertServerStillServes(String fabric) throws Exception {
        assertServerStillServes(fabric, acceptAsync(server(fabric)));
    }

    /** As above, the good client being taken by an accept() that is already pending. */
    static void assertServerStillServes(String fabric, CompletableFuture<Socket> f) throws Exception {
        AzSdpServerSocket server = server(fabric);
        byte[] data = new byte[200_000];
        new Random(fabric.hashCode()).nextBytes(data);
        try (AzSdpSocket client = new AzSdpSocket(config(fabric))) {
            client.setSoTimeout(10_000);
            client.connect(server.getLocalSocketAddress(), 5000);
            try (Socket peer = f.get(10, TimeUnit.SECONDS)) {
                peer.setSoTimeout(10_000);
                client.getOutputStream().write(data, 0, 1000);
                client.getOutputStream().write(data, 1000, data.length - 1000);
                byte[] got = new byte[data.length];
                new DataInputStream(peer.getInputStream()).readFully(got);
                assertArrayEquals(data, got, "good client's bytes after a rogue peer");
                peer.getOutputStream().write(data, 0, 5000);
                byte[] back = new byte[5000];
                new DataInputStream(client.getInputStream()).readFully(back);
                assertArrayEquals(Arrays.copyOf(data, 5000), back);
            }
        }
    }

    /** Direct memory one connection may commit (both ends here: server 16 x 64 KiB receives plus send slots). */
    private static final long MAX_DIRECT_PER_CONNECTION = 16L << 20;

    static long directMemoryUsed() {
        for (BufferPoolMXBean b : ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class)) {
            if (b.getName().equals("direct")) {
                return b.getMemoryUsed();
            }
        }
        throw new IllegalStateException("no direct buffer pool bean");
    }

    static String threadDump() {
        StringBuilder sb = new StringBuilder("thread dump:\n");
        for (Map.Entry<Thread, StackTraceElement[]> e : Thread.getAllStackTraces().entrySet()) {
            sb.append('"').append(e.getKey().getName()).append("\" ").append(e.getKey().getState()).append('\n');
            for (StackTraceElement el : e.getValue()) {
                sb.append("    at ").append(el).append('\n');
            }
        }
        return sb.toString();
    }

    static byte[] random(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    /** A direct buffer of {@code guard + len + guard} bytes, guards 0xEE, middle random; the middle is registered. */
    static final class GuardedRegion {
        static final byte GUARD = (byte) 0xEE;
        final ByteBuffer whole;
        final int guard;
        final byte[] payload;
        final MemoryRegion mr;

        GuardedRegion(RoguePeer rogue, int len, int guard, long seed) throws IOException {
            this.guard = guard;
            this.payload = random(len, seed);
            whole = ByteBuffer.allocateDirect(guard + len + guard);
            for (int i = 0; i < whole.capacity(); i++) {
                whole.put(i, GUARD);
            }
            whole.put(guard, payload);
            mr = rogue.register(whole.duplicate().position(guard).limit(guard + len));
            assertEquals(len, mr.length());
        }

        /** Nothing was written into the rogue's memory, inside the region or around it. */
        void assertIntact() {
            for (int i = 0; i < guard; i++) {
                assertEquals(GUARD, whole.get(i), "front guard byte " + i);
                assertEquals(GUARD, whole.get(guard + payload.length + i), "back guard byte " + i);
            }
            byte[] mid = new byte[payload.length];
            whole.get(guard, mid);
            assertArrayEquals(payload, mid, "registered region content");
        }
    }

    // ------------------------------------------------------------------------------------------------ positive control

    /**
     * Well-formed Data (honouring credits, so the server's credit updates are exercised) and a correct SrcAvail of a
     * sub-range of a guarded region: the application reads exactly those bytes, the rogue gets RdmaRdCompl for exactly
     * the advertised length, a DisConn gives end of stream, and nothing was aborted.
     */
    @ParameterizedTest
    @ValueSource(strings = {"shm", "tcp"})
    void positiveControlWellFormedPeer(String fabric) throws Exception {
        try (Scenario s = new Scenario(fabric)) {
            ByteArrayOutputStream expected = new ByteArrayOutputStream();
            Random r = new Random(42);
            for (int i = 0; i < 64; i++) {
                byte[] p = random(1 + r.nextInt(3000), i);
                s.rogue.sendDataWithinCredits(p);
                expected.write(p);
            }
            s.app.awaitCount(expected.size(), FAIL_WITHIN_MS);
            assertTrue(s.rogue.lastSentMseq() > s.rogue.server.bufs(), "credits were renewed by the server");

            GuardedRegion region = new GuardedRegion(s.rogue, 20_000, 512, 7);
            int off = 1234;
            int len = 15_000;
            s.rogue.send(RoguePeer.srcAvail(len, region.mr.rkey(), region.mr.address() + off));
            expected.write(region.payload, off, len);
            s.app.awaitCount(expected.size(), FAIL_WITHIN_MS);
            assertTrue(s.rogue.awaitRdmaRdCompl(len, FAIL_WITHIN_MS), () -> "RdmaRdCompl: " + s.rogue.state());
            assertEquals(len, s.rogue.rdmaRdComplBytes(), "RdmaRdCompl covers exactly the advertised bytes");

            byte[] tail = random(777, 99);
            s.rogue.sendDataWithinCredits(tail);
            expected.write(tail);
            s.rogue.send(RoguePeer.msg(Bsdh.MID_DISCONN));
            assertTrue(s.app.awaitDone(FAIL_WITHIN_MS), "end of stream after DisConn");
            assertTrue(s.app.eof(), () -> "expected EOF, got " + s.app.failure());
            assertArrayEquals(expected.toByteArray(), s.app.bytes(), "the server application read exactly the bytes");
            region.assertIntact();
            assertFalse(s.rogue.receivedAbortConn(), () -> s.rogue.state());
            assertTrue(s.rogue.workErrors().isEmpty(), () -> s.rogue.state());
            assertFalse(s.rogue.isDisconnected(), () -> s.rogue.state());
        }
        assertServerStillServes(fabric);
    }

    // ------------------------------------------------------------------------------------------------ 1. BSDH length

    /** len field != bytes sent (longer, shorter, below the BSDH size, negative). */
    @ParameterizedTest(name = "{0}: len field {1}, payload {2}")
    @CsvSource({
        "shm, 27, 10", "tcp, 27, 10",
        "shm, 16, 100", "tcp, 16, 100",
        "shm, 8, 0", "tcp, 8, 0",
        "shm, -1, 100", "tcp, -1, 100"})
    void badBsdhLength(String fabric, int lenField, int payload) throws Exception {
        try (Scenario s = new Scenario(fabric)) {
            s.rogue.send(RoguePeer.data(random(payload, 1)).len(lenField));
            expectAborted(s, "BSDH length " + lenField, (16 + payload) + " bytes received");
            assertEquals(0, s.app.count(), "no byte of a malformed message reaches the application");
        }
        assertServerStillServes(fabric);
    }

    /** Fewer bytes on the wire than a BSDH. */
    @ParameterizedTest(name = "{0}: {1} bytes")
    @CsvSource({"shm, 12", "tcp, 12", "shm, 0", "tcp, 0"})
    void messageShorterThanBsdh(String fabric, int bytes) throws Exception {
        try (Scenario s = new Scenario(fabric)) {
            s.rogue.send(RoguePeer.data(new byte[0]).wireBytes(bytes));
            expectAborted(s, "message of " + bytes + " bytes", "BSDH");
        }
        assertServerStillServes(fabric);
    }

    // ------------------------------------------------------------------------------------------------ 2. message ids

    @ParameterizedTest(name = "{0}: mid 0x{1}")
    @CsvSource({"shm, 42", "tcp, 42", "shm, 05", "tcp, 05", "shm, 80", "tcp, 80"})
    void unknownMessageId(String fabric, String midHex) throws Exception {
        int mid = Integer.parseInt(midHex, 16);
        try (Scenario s = new Scenario(fabric)) {
            s.rogue.send(RoguePeer.msg(mid).payload(random(8, 3)));
            expectAborted(s, "unexpected message id 0x" + midHex);
        }
        assertServerStillServes(fabric);
    }

    /** Hello and HelloAck belong to the bootstrap; in band they are protocol violations. */
    @ParameterizedTest(name = "{0}: {1} in band")
    @CsvSource({"shm, Hello", "tcp, Hello", "shm, HelloAck", "tcp, HelloAck"})
    void helloInBand(String fabric, String which) throws Exception {
        Hello h = new Hello(16, 4, 4096);
        byte[] encoded = which.equals("Hello") ? h.encodeHello() : h.encodeHelloAck();
        int mid = which.equals("Hello") ? Bsdh.MID_HELLO : Bsdh.MID_HELLO_ACK;
        try (Scenario s = new Scenario(fabric)) {
            // Good data first, so the violation comes mid-stream.
            byte[] good = random(300, 5);
            s.rogue.send(RoguePeer.data(good));
            s.app.awaitCount(good.length, FAIL_WITHIN_MS);
            s.rogue.send(RoguePeer.msg(mid).payload(Arrays.copyOfRange(encoded, Bsdh.SIZE, encoded.length)));
            expectAborted(s, "unexpected message id " + which + " ");
            assertArrayEquals(good, s.app.bytes());
        }
        assertServerStillServes(fabric);
    }

    // ------------------------------------------------------------------------------------------------ 3. credits

    /**
     * One Data message more than the server granted in its HelloAck, sent without waiting. The rogue advertises
     * bufs=0, so the server cannot send a credit update (it has no credit for it) and its grant stays exactly the
     * HelloAck's: the extra message lands as soon as the application frees a buffer, and must be refused. (With a
     * peer that advertises buffers, the server renews credits eagerly before any reposted buffer can be reached, so a
     * violation cannot be observed at all: a fabric holds what it has no receive for.)
     */
    @ParameterizedTest
    @ValueSource(strings = {"shm", "tcp"})
    void creditViolation(String fabric) throws Exception {
        try (Scenario s = new Scenario(fabric)) {
            int granted = s.rogue.server.bufs();
            s.rogue.overrideBufs(0);
            ByteArrayOutputStream legit = new ByteArrayOutputStream();
            for (int i = 1; i <= granted + 1; i++) {
                byte[] p = random(100, i);
                s.rogue.send(RoguePeer.data(p));
                if (i <= granted) {
                    legit.write(p);
                }
            }
            IOException e = expectAborted(s, "credit violation", "mseq " + (granted + 1));
            assertArrayEquals(legit.toByteArray(), s.app.bytes(), "exactly the granted messages were delivered: " + e);
        }
        assertServerStillServes(fabric);
    }

    // ------------------------------------------------------------------------------------------------ 4. sequence

    @ParameterizedTest(name = "{0}: {1}")
    @CsvSource({"shm, skip", "tcp, skip", "shm, repeat", "tcp, repeat", "shm, zero", "tcp, zero"})
    void outOfSequenceMseq(String fabric, String how) throws Exception {
        try (Scenario s = new Scenario(fabric)) {
            byte[] good = random(200, 9);
            s.rogue.send(RoguePeer.data(good));
            s.app.awaitCount(good.length, FAIL_WITHIN_MS);
            int bad = switch (how) {
                case "skip" -> 3;
                case "repeat" -> 1;
                default -> 0;
            };
            s.rogue.send(RoguePeer.data(random(50, 10)).mseq(bad));
            expectAborted(s, "out-of-sequence", "mseq " + bad + ", expected 2");
            assertArrayEquals(good, s.app.bytes());
        }
        assertServerStillServes(fabric);
    }

    /** mseq_ack acknowledging a message the server never sent. */
    @ParameterizedTest
    @ValueSource(strings = {"shm", "tcp"})
    void mseqAckBeyondWhatServerSent(String fabric) throws Exception {
        try (Scenario s = new Scenario(fabric)) {
            s.rogue.send(RoguePeer.data(random(10, 11)).ack(5));
            expectAborted(s, "mseq_ack 5");
            assertEquals(0, s.app.count());
        }
        assertServerStillServes(fabric);
    }

    /** mseq_ack going backwards after the server has sent (a credit update) and the rogue acknowledged it. */
    @ParameterizedTest
    @ValueSource(strings = {"shm", "tcp"})
    void mseqAckGoingBackwards(String fabric) throws Exception {
        try (Scenario s = new Scenario(fabric)) {
            int total = 0;
            for (int i = 0; i < 3 * s.rogue.server.bufs() && s.rogue.lastReceivedMseq() == 0; i++) {
                s.rogue.sendDataWithinCredits(new byte[] {(byte) i});
                total++;
                s.app.awaitCount(total, FAIL_WITHIN_MS);
                s.rogue.awaitMessage(m -> true, 20);
            }
            int serverMseq = s.rogue.lastReceivedMseq();
            assertTrue(serverMseq > 0, () -> "server never sent a credit update: " + s.rogue.state());
            s.rogue.send(RoguePeer.data(new byte[] {1}).ack(serverMseq));
            total++;
            s.app.awaitCount(total, FAIL_WITHIN_MS);
            s.rogue.send(RoguePeer.data(new byte[] {2}).ack(serverMseq - 1));
            expectAborted(s, "mseq_ack " + (serverMseq - 1));
            assertEquals(total, s.app.count());
        }
        assertServerStillServes(fabric);
    }

    // ------------------------------------------------------------------------------------------------ 5. SrcAvail

    @ParameterizedTest(name = "{0}: rkey {1}")
    @CsvSource({"shm, flipped", "tcp, flipped", "shm, zero", "tcp, zero"})
    void srcAvailWithWrongRkey(String fabric, String how) throws Exception {
        try (Scenario s = new Scenario(fabric)) {
            GuardedRegion region = new GuardedRegion(s.rogue, 8192, 4096, 12);
            int rkey = how.equals("zero") ? 0 : region.mr.rkey() ^ 0x40000000;
            s.rogue.send(RoguePeer.srcAvail(4096, rkey, region.mr.address()));
            expectAborted(s, "READ", "REM_ACCESS_ERR");
            assertEquals(0, s.app.count(), "nothing read through a wrong key reaches the application");
            assertEquals(0, s.rogue.rdmaRdComplBytes(), () -> s.rogue.state());
            region.assertIntact();
        }
        assertServerStillServes(fabric);
    }

    /**
     * SrcAvail ranges not inside the registered region (which has unregistered guard bytes on both sides): the READ
     * must be refused as a whole, so no guard byte (nor any other) reaches the application.
     */
    @ParameterizedTest(name = "{0}: {1}")
    @CsvSource({
        "shm, past-end", "tcp, past-end",
        "shm, before-start", "tcp, before-start",
        "shm, one-too-long", "tcp, one-too-long",
        "shm, huge", "tcp, huge"})
    void srcAvailOutsideRegisteredRegion(String fabric, String how) throws Exception {
        try (Scenario s = new Scenario(fabric)) {
            int len = 8192;
            GuardedRegion region = new GuardedRegion(s.rogue, len, 4096, 13);
            long a = region.mr.address();
            RoguePeer.Msg m = switch (how) {
                case "past-end" -> RoguePeer.srcAvail(100, region.mr.rkey(), a + len - 10);
                case "before-start" -> RoguePeer.srcAvail(32, region.mr.rkey(), a - 16);
                case "one-too-long" -> RoguePeer.srcAvail(len + 1, region.mr.rkey(), a);
                default -> RoguePeer.srcAvail(Integer.MAX_VALUE, region.mr.rkey(), a);
            };
            s.rogue.send(m);
            expectAborted(s, "READ", "REM_ACCESS_ERR");
            assertEquals(0, s.app.count(), "no byte of an out-of-range advert reaches the application");
            assertEquals(0, s.rogue.rdmaRdComplBytes(), () -> s.rogue.state());
            region.assertIntact();
        }
        assertServerStillServes(fabric);
    }

    /** SrcAvail with a zero or negative length, or too short to hold its fields. */
    @ParameterizedTest(name = "{0}: {1}")
    @CsvSource({"shm, zero", "tcp, zero", "shm, negative", "tcp, negative", "shm, truncated", "tcp, truncated"})
    void srcAvailBadLength(String fabric, String how) throws Exception {
        try (Scenario s = new Scenario(fabric)) {
            GuardedRegion region = new GuardedRegion(s.rogue, 4096, 64, 14);
            switch (how) {
                case "zero" -> {
                    s.rogue.send(RoguePeer.srcAvail(0, region.mr.rkey(), region.mr.address()));
                    expectAborted(s, "SrcAvail with length 0");
                }
                case "negative" -> {
                    s.rogue.send(RoguePeer.srcAvail(-4096, region.mr.rkey(), region.mr.address()));
                    expectAborted(s, "SrcAvail with length -4096");
                }
                default -> {
                    s.rogue.send(RoguePeer.msg(Bsdh.MID_SRC_AVAIL).payload(new byte[8]));
                    expectAborted(s, "SrcAvail of 24 bytes");
                }
            }
            assertEquals(0, s.app.count());
            region.assertIntact();
        }
        assertServerStillServes(fabric);
    }

    // ------------------------------------------------------------------------------------------------ 6. misc

    @ParameterizedTest(name = "{0}: {1} bytes")
    @CsvSource({"shm, 100", "tcp, 100", "shm, 0", "tcp, 0"})
    void rdmaRdComplForBytesNeverAdvertised(String fabric, int n) throws Exception {
        try (Scenario s = new Scenario(fabric)) {
            s.rogue.send(RoguePeer.rdmaRdCompl(n));
            expectAborted(s, "RdmaRdCompl for " + n + " bytes");
        }
        assertServerStillServes(fabric);
    }

    @ParameterizedTest
    @ValueSource(strings = {"shm", "tcp"})
    void sendSmWithoutCancel(String fabric) throws Exception {
        try (Scenario s = new Scenario(fabric)) {
            s.rogue.send(RoguePeer.msg(Bsdh.MID_SEND_SM));
            expectAborted(s, "SendSM without a pending SrcAvailCancel");
        }
        assertServerStillServes(fabric);
    }

    /**
     * DisConn then Data. The DisConn legitimately ends the stream (the blocked read may return -1 first), but the
     * Data after it is a violation: the connection must be aborted and reads must then report why.
     */
    @ParameterizedTest
    @ValueSource(strings = {"shm", "tcp"})
    void dataAfterDisConn(String fabric) throws Exception {
        try (Scenario s = new Scenario(fabric)) {
            byte[] good = random(64, 15);
            s.rogue.send(RoguePeer.data(good));
            s.app.awaitCount(good.length, FAIL_WITHIN_MS);
            s.rogue.send(RoguePeer.msg(Bsdh.MID_DISCONN));
            s.rogue.send(RoguePeer.data(random(32, 16)));
            assertNotNull(s.rogue.awaitGone(FAIL_WITHIN_MS),
                    () -> "the server did not abort after Data following DisConn: " + s.rogue.state());
            assertTrue(s.app.awaitDone(FAIL_WITHIN_MS), "the blocked read returned");
            assertArrayEquals(good, s.app.bytes());
            IOException e = s.app.failure();
            if (e == null) {
                // The read saw the DisConn's end of stream first; the next one must report the abort.
                assertTrue(s.app.eof());
                try {
                    int n = s.accepted.getInputStream().read();
                    fail("[" + fabric + "] read after the server aborted for 'Data after DisConn' returned " + n
                            + " instead of reporting the violation");
                } catch (IOException x) {
                    e = x;
                }
            }
            assertMentions(fabric, e, "Data after DisConn");
        }
        assertServerStillServes(fabric);
    }

    /** Control messages whose length does not match their id. */
    @ParameterizedTest(name = "{0}: {1} with {2} payload bytes")
    @CsvSource({
        "shm, DisConn, 4", "tcp, DisConn, 4",
        "shm, SendSM, 4", "tcp, SendSM, 4",
        "shm, SrcAvailCancel, 4", "tcp, SrcAvailCancel, 4",
        "shm, RdmaRdCompl, 0", "tcp, RdmaRdCompl, 0"})
    void controlMessageWithWrongSize(String fabric, String name, int payload) throws Exception {
        int mid = switch (name) {
            case "DisConn" -> Bsdh.MID_DISCONN;
            case "SendSM" -> Bsdh.MID_SEND_SM;
            case "SrcAvailCancel" -> Bsdh.MID_SRC_AVAIL_CANCEL;
            default -> Bsdh.MID_RDMA_RD_COMPL;
        };
        try (Scenario s = new Scenario(fabric)) {
            s.rogue.send(RoguePeer.msg(mid).payload(new byte[payload]));
            expectAborted(s, name + " of " + (Bsdh.SIZE + payload) + " bytes");
        }
        assertServerStillServes(fabric);
    }

    /**
     * One SrcAvail more than the server's HelloAck allows outstanding, all back to back. Each advert is 8 MiB of a
     * valid region, so the application has usually not consumed the first before the last arrives: the extra one must
     * then be refused, and whatever the application got before is exactly the advertised bytes. Only then: a receiver
     * that has read a whole advert by the time the extra one arrives sees no more outstanding than allowed (a loaded
     * machine can deschedule the rogue between its sends), so such a run proves nothing and is repeated.
     */
    @ParameterizedTest
    @ValueSource(strings = {"shm", "tcp"})
    void tooManySrcAvailOutstanding(String fabric) throws Exception {
        for (int attempt = 1; ; attempt++) {
            try (Scenario s = new Scenario(fabric)) {
                int max = s.rogue.server.maxAdverts();
                int len = 8 << 20;
                GuardedRegion region = new GuardedRegion(s.rogue, len, 64, 17);
                for (int i = 0; i <= max; i++) {
                    s.rogue.send(RoguePeer.srcAvail(len, region.mr.rkey(), region.mr.address()));
                }
                if (!s.app.awaitDone(FAIL_WITHIN_MS) && s.app.count() >= len && attempt < 5) {
                    continue; // the race above went the receiver's way: no violation it could see
                }
                expectAborted(s, "more than " + max + " SrcAvail outstanding");
                byte[] got = s.app.bytes();
                assertTrue(got.length < len, "the first advert was not consumed before the extra one arrived");
                assertArrayEquals(Arrays.copyOf(region.payload, got.length), got, "bytes delivered before the abort");
                region.assertIntact();
            }
            break;
        }
        assertServerStillServes(fabric);
    }

    /**
     * A Hello that passes its own range checks but claims receive buffers far beyond the server's own (the fabric is
     * really sized 16 x 4 KiB): 127 x 16 MiB (whose product overflows an int) and 30 x 1 MiB. The server may refuse or
     * abort that one connection, or serve it within its own limits; it must never fail accept() because of it, the
     * direct memory it commits to the connection must be bounded by its own configuration (a 28-byte Hello must not
     * make it allocate tens of MiB: at 62 x 16 MiB that is 1 GiB, an OutOfMemoryError), and it must then serve a
     * well-behaved client.
     */
    @ParameterizedTest(name = "{0}: {1} x {2} KiB")
    @CsvSource({"shm, 127, 16384", "tcp, 127, 16384", "shm, 30, 1024", "tcp, 30, 1024"})
    void absurdHelloDoesNotBreakAccept(String fabric, int bufs, int rcvKiB) throws Exception {
        AzSdpServerSocket server = server(fabric);
        CompletableFuture<Socket> pending = acceptAsync(server);
        InetSocketAddress addr = (InetSocketAddress) server.getLocalSocketAddress();
        Hello claimed = new Hello(bufs, 1, rcvKiB << 10);
        FabricOptions real = new FabricOptions(4096, 16, 32, 5000, 2000);
        String outcome;
        RoguePeer rogue = null;
        long directBefore = directMemoryUsed();
        try {
            rogue = RoguePeer.connect(fabric, addr, claimed, real);
        } catch (IOException e) {
            outcome = "refused at connect: " + e;
        }
        try {
            if (rogue != null) {
                long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(FAIL_WITHIN_MS);
                while (!pending.isDone() && !rogue.isDisconnected() && System.nanoTime() < deadline) {
                    Thread.sleep(5);
                }
                // An accept() failing for this client does so right after the server dropped it.
                for (int i = 0; i < 40 && !pending.isDone(); i++) {
                    Thread.sleep(5);
                }
            }
            if (pending.isCompletedExceptionally()) {
                try {
                    pending.get();
                } catch (ExecutionException e) {
                    throw new AssertionError("[" + fabric + "] AzSdpServerSocket.accept() failed because of one bad "
                            + "client (it must log and skip it): " + e.getCause(), e.getCause());
                }
            }
            if (pending.isDone()) {
                // The server chose to serve it: within bounded memory, and it must really work.
                assertNotNull(rogue);
                long grown = directMemoryUsed() - directBefore;
                assertTrue(grown < MAX_DIRECT_PER_CONNECTION, () -> "[" + fabric + "] one connection whose Hello claims "
                        + bufs + " x " + rcvKiB + " KiB receive buffers made the server commit " + (grown >> 20)
                        + " MiB of direct memory (bound " + (MAX_DIRECT_PER_CONNECTION >> 20) + " MiB)");
                try (Socket s = pending.get()) {
                    assertEquals(rogue.ep.localAddress().getPort(), s.getPort());
                    s.setSoTimeout(SO_TIMEOUT_MS);
                    byte[] p = random(3000, 18);
                    rogue.sendDataWithinCredits(p);
                    byte[] got = new byte[p.length];
                    new DataInputStream(s.getInputStream()).readFully(got);
                    assertArrayEquals(p, got);
                    s.getOutputStream().write(random(100, 19));
                }
                outcome = "served";
                pending = acceptAsync(server);
            } else {
                assertNotNull(rogue);
                assertTrue(rogue.isDisconnected(), () -> "[" + fabric + "] neither accepted nor dropped within "
                        + FAIL_WITHIN_MS + " ms");
                outcome = "dropped by the server: " + rogue.awaitGone(0);
            }
        } finally {
            if (rogue != null) {
                rogue.close();
            }
        }
        System.out.printf("[%s] absurd Hello: %s%n", fabric, outcome);
        assertServerStillServes(fabric, pending);
    }

    /** Not malformed: an AbortConn from the peer resets the connection (the read says so). */
    @ParameterizedTest
    @ValueSource(strings = {"shm", "tcp"})
    void abortConnFromPeerResets(String fabric) throws Exception {
        try (Scenario s = new Scenario(fabric)) {
            s.rogue.send(RoguePeer.msg(Bsdh.MID_ABORT_CONN));
            expectAborted(s, "AbortConn");
        }
        assertServerStillServes(fabric);
    }
}
