package io.azsdp.socket;


import static io.azsdp.socket.SocketPair.acceptAsync;
import static io.azsdp.socket.SocketPair.assumeFabric;
import static io.azsdp.socket.SocketPair.config;
import static io.azsdp.socket.SocketPair.connect;
import static io.azsdp.socket.SocketPair.fill;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.azsdp.config.AzSdpConfig;
import io.azsdp.memory.ProtectedMemory;
import io.azsdp.sdp.SdpConnection;
import io.azsdp.sdp.SdpStats;
import io.azsdp.sdp.TransferMode;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Properties;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Both ends in one JVM: the socket API semantics on each fabric and mode (the multi-JVM tests live in integration). */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class SocketInProcessTest {

    @ParameterizedTest
    @CsvSource({"tcp,bcopy", "tcp,zcopy", "tcp,auto", "shm,bcopy", "shm,zcopy", "shm,auto"})
    void randomStreamBothDirections(String fabric, String mode) throws Exception {
        assumeFabric(fabric);
        AzSdpConfig cfg = config(fabric, mode);
        try (AzSdpServerSocket server = new AzSdpServerSocket(cfg)) {
            server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            CompletableFuture<Socket> accepted = acceptAsync(server);
            try (AzSdpSocket client = new AzSdpSocket(cfg)) {
                client.connect(server.getLocalSocketAddress(), 5000);
                try (Socket peer = accepted.get(10, TimeUnit.SECONDS)) {
                    assertEquals(fabric, client.fabricName());
                    assertEquals(client.getLocalPort(), peer.getPort());
                    assertEquals(client.getPort(), peer.getLocalPort());
                    assertNull(client.getChannel());
                    long total = 48L << 20;
                    client.setSoTimeout(30_000);
                    peer.setSoTimeout(30_000);
                    awaitAll(pump(client, peer, total, 1), pump(peer, client, total, 2));
                }
            }
        }
    }

    /** Waits for all, failing as soon as one fails (so a dead writer does not leave its reader waiting). */
    static void awaitAll(CompletableFuture<?>... fs) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(100);
        while (true) {
            boolean all = true;
            for (CompletableFuture<?> f : fs) {
                if (f.isCompletedExceptionally()) {
                    f.get();
                }
                all &= f.isDone();
            }
            if (all) {
                return;
            }
            if (System.nanoTime() > deadline) {
                throw new java.util.concurrent.TimeoutException("transfer did not finish in 100 s");
            }
            Thread.sleep(10);
        }
    }

    /** Sends {@code total} random bytes from {@code from} to {@code to} in random sizes, compares CRCs. */
    static CompletableFuture<Long> pump(Socket from, Socket to, long total, long seed) {
        CompletableFuture<Long> sent = CompletableFuture.supplyAsync(() -> {
            try {
                OutputStream out = from.getOutputStream();
                Random r = new Random(seed);
                CRC32 crc = new CRC32();
                byte[] buf = new byte[4 << 20];
                ByteBuffer direct = ByteBuffer.allocateDirect(4 << 20);
                long left = total;
                while (left > 0) {
                    int n = (int) Math.min(left, 1 + r.nextInt(r.nextBoolean() ? 4096 : 4 << 20));
                    r.nextBytes(buf);
                    crc.update(buf, 0, n);
                    if (r.nextBoolean() && from instanceof AzSdpSocket s) {
                        direct.clear();
                        direct.put(buf, 0, n).flip();
                        s.byteChannel().write(direct);
                    } else {
                        out.write(buf, 0, n);
                    }
                    left -= n;
                }
                return crc.getValue();
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        });
        CompletableFuture<Long> received = CompletableFuture.supplyAsync(() -> {
            try {
                InputStream in = to.getInputStream();
                Random r = new Random(seed * 31);
                CRC32 crc = new CRC32();
                byte[] buf = new byte[4 << 20];
                ByteBuffer direct = ByteBuffer.allocateDirect(4 << 20);
                long left = total;
                while (left > 0) {
                    int want = (int) Math.min(left, 1 + r.nextInt(4 << 20));
                    int n;
                    if (r.nextBoolean() && to instanceof AzSdpSocket s) {
                        direct.clear().limit(want);
                        n = s.byteChannel().read(direct);
                        direct.flip();
                        direct.get(buf, 0, Math.max(n, 0));
                    } else {
                        n = in.read(buf, 0, want);
                    }
                    if (n < 0) {
                        throw new IOException("early EOF with " + left + " bytes left");
                    }
                    crc.update(buf, 0, n);
                    left -= n;
                }
                return crc.getValue();
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        });
        CompletableFuture<Long> both = sent.thenCombine(received, (s, r) -> {
            assertEquals(s, r, "checksum of " + total + " bytes");
            return s;
        });
        sent.exceptionally(e -> {
            both.completeExceptionally(e);
            return null;
        });
        received.exceptionally(e -> {
            both.completeExceptionally(e);
            return null;
        });
        return both;
    }

    /** Many small adverts and a reader that lags: staged adverts must stay within the advertised limits. */
    @ParameterizedTest
    @CsvSource({"tcp", "shm"})
    void manyAdvertsWithSlowReader(String fabric) throws Exception {
        try (SocketPair pair = SocketPair.open(fabric, "zcopy")) {
            AzSdpSocket client = pair.client;
            Socket peer = pair.peer;
            byte[] msg = new byte[64 << 10];
            int count = 600;
            CompletableFuture<Long> writer = CompletableFuture.supplyAsync(() -> {
                CRC32 crc = new CRC32();
                try {
                    for (int i = 0; i < count; i++) {
                        java.util.Arrays.fill(msg, (byte) i);
                        crc.update(msg);
                        client.getOutputStream().write(msg);
                    }
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
                return crc.getValue();
            });
            CRC32 crc = new CRC32();
            byte[] buf = new byte[1000];
            long left = (long) count * msg.length;
            int reads = 0;
            while (left > 0) {
                int n = peer.getInputStream().read(buf, 0, (int) Math.min(buf.length, left));
                crc.update(buf, 0, n);
                left -= n;
                if (++reads % 2000 == 0) {
                    Thread.sleep(5);
                }
            }
            assertEquals(writer.get(60, TimeUnit.SECONDS), crc.getValue());
            assertTrue(((AzSdpSocket) peer).connection().stats().zcopyBytesReceived() > 0);
        }
    }

    /**
     * An interrupted zero-copy write cancels its advert (SrcAvailCancel, answered by SendSM): the peer receives exactly
     * the bytes the InterruptedIOException reports, and the stream stays usable.
     */
    @ParameterizedTest
    @CsvSource({"tcp", "shm"})
    void interruptedZcopyWriteCancelsItsAdvert(String fabric) throws Exception {
        try (SocketPair pair = SocketPair.open(fabric, "zcopy")) {
            AzSdpSocket client = pair.client;
            Socket peer = pair.peer;
            ByteBuffer big = ByteBuffer.allocateDirect(32 << 20);
            byte[] content = new byte[big.capacity()];
            new Random(3).nextBytes(content);
            big.put(content).flip();
            java.util.concurrent.atomic.AtomicReference<Throwable> thrown =
                    new java.util.concurrent.atomic.AtomicReference<>();
            Thread writer = new Thread(() -> {
                try {
                    client.byteChannel().write(big);
                } catch (Throwable t) {
                    thrown.set(t);
                }
            });
            writer.start();
            Thread.sleep(300); // the peer stages what its pool holds, then the write waits
            writer.interrupt();
            writer.join(10_000);
            assertTrue(thrown.get() instanceof java.io.InterruptedIOException, () -> "got " + thrown.get());
            int sent = ((java.io.InterruptedIOException) thrown.get()).bytesTransferred;
            assertTrue(sent >= 0 && sent < content.length, "bytesTransferred " + sent);
            byte[] got = new byte[sent + 3];
            CompletableFuture<Void> reader = CompletableFuture.runAsync(() -> {
                try {
                    new DataInputStream(peer.getInputStream()).readFully(got);
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });
            client.getOutputStream().write(new byte[] {1, 2, 3}); // a full staging pool holds it until read
            reader.get(30, TimeUnit.SECONDS);
            assertArrayEquals(java.util.Arrays.copyOf(content, sent), java.util.Arrays.copyOf(got, sent));
            assertArrayEquals(new byte[] {1, 2, 3}, java.util.Arrays.copyOfRange(got, sent, sent + 3));
            assertEquals(0, peer.getInputStream().available());
        }
    }

    /** A read-only mapping of a file (what a shuffle server sends) goes zero copy in every zero-copy mode. */
    @ParameterizedTest
    @CsvSource({"tcp,zcopy", "tcp,azsdp", "shm,zcopy", "shm,azsdp"})
    void readOnlyMappedFileGoesZeroCopy(String fabric, String mode) throws Exception {
        java.nio.file.Path file = java.nio.file.Files.createTempFile("azsdp", ".seg");
        try (SocketPair pair = SocketPair.open(fabric, mode);
             java.nio.channels.FileChannel fc = java.nio.channels.FileChannel.open(file,
                     java.nio.file.StandardOpenOption.READ, java.nio.file.StandardOpenOption.WRITE)) {
            byte[] content = new byte[3 << 20];
            new Random(11).nextBytes(content);
            java.nio.file.Files.write(file, content);
            int off = 12345; // a segment that starts and ends inside pages
            int len = content.length - off - 777;
            ByteBuffer segment = fc.map(java.nio.channels.FileChannel.MapMode.READ_ONLY, off, len);
            pair.client.setZcopyThreshold(65536); // tcp copies by default at any size
            CompletableFuture<byte[]> received = CompletableFuture.supplyAsync(() -> {
                try {
                    byte[] got = new byte[len];
                    new DataInputStream(pair.peer.getInputStream()).readFully(got);
                    return got;
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });
            assertEquals(len, pair.client.byteChannel().write(segment));
            assertEquals(0, segment.remaining());
            assertArrayEquals(java.util.Arrays.copyOfRange(content, off, off + len),
                    received.get(30, TimeUnit.SECONDS));
            assertTrue(pair.client.connection().stats().zcopyBytesSent() >= len - 8192L,
                    "zero copy: " + pair.client.connection().stats().zcopyBytesSent());
        } finally {
            java.nio.file.Files.deleteIfExists(file);
        }
    }

    @ParameterizedTest
    @CsvSource({"tcp", "shm"})
    void orderlyCloseDeliversEverythingThenEof(String fabric) throws Exception {
        try (SocketPair pair = SocketPair.open(fabric, "auto")) {
            Socket peer = pair.peer;
            byte[] data = new byte[3 << 20];
            new Random(7).nextBytes(data);
            // More than the peer's receive buffers hold: it must read while we write (as a TCP peer would have to
            // once the socket buffers fill).
            DataInputStream in = new DataInputStream(peer.getInputStream());
            CompletableFuture<byte[]> received = CompletableFuture.supplyAsync(() -> {
                try {
                    byte[] got = new byte[data.length];
                    in.readFully(got);
                    return got;
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });
            pair.client.getOutputStream().write(data, 0, 1000);
            pair.client.getOutputStream().write(data, 1000, data.length - 1000);
            pair.client.close();
            assertArrayEquals(data, received.get(30, TimeUnit.SECONDS));
            assertEquals(-1, in.read());
            assertEquals(-1, in.read());
            assertThrows(SocketException.class, () -> {
                for (int i = 0; i < 100; i++) {
                    peer.getOutputStream().write(new byte[1024]);
                    Thread.sleep(20);
                }
            });
        }
    }

    /**
     * In auto mode a heap array goes by BCopy at any size (it must be copied anyway; a synchronous advert of the copy
     * only adds round trips), a direct buffer from the threshold by zero copy. Every byte is compared.
     */
    @ParameterizedTest
    @CsvSource({"tcp", "shm"})
    void autoModeSendsHeapArraysByBcopyAndDirectBuffersZeroCopy(String fabric) throws Exception {
        try (SocketPair pair = SocketPair.open(fabric, "auto")) {
            pair.client.setZcopyThreshold(64 << 10); // tcp's default sends everything by BCopy
            int len = 256 << 10;
            byte[] heap = new byte[len];
            new Random(5).nextBytes(heap);
            ByteBuffer direct = ByteBuffer.allocateDirect(len);
            SocketPair.fill(direct, 6);
            CompletableFuture<byte[]> received = CompletableFuture.supplyAsync(() -> {
                byte[] got = new byte[2 * len];
                try {
                    new DataInputStream(pair.peer.getInputStream()).readFully(got);
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
                return got;
            });
            SdpStats stats = pair.client.connection().stats();
            pair.client.getOutputStream().write(heap);
            assertEquals(len, stats.bcopyBytesSent(), "heap array by BCopy");
            assertEquals(0, stats.zcopyBytesSent(), "heap array by BCopy");
            pair.client.byteChannel().write(direct.duplicate());
            assertEquals(len, stats.zcopyBytesSent(), "direct buffer zero copy");
            byte[] got = received.get(30, TimeUnit.SECONDS);
            assertArrayEquals(heap, Arrays.copyOf(got, len));
            assertEquals(direct, ByteBuffer.wrap(got, len, len));
        }
    }

    /**
     * Small writes go out one message each while more than half of the peer's buffers are free, then gather into one
     * send buffer; that buffer goes out when the reader's credits come back. Every byte is compared.
     */
    @ParameterizedTest
    @CsvSource({"tcp", "shm"})
    void smallWritesGatherOnceHalfThePeersBuffersHoldOurMessages(String fabric) throws Exception {
        try (SocketPair pair = SocketPair.open(fabric, "bcopy")) {
            int peerBuffers = SocketPair.config(fabric, "bcopy").intValue(AzSdpConfig.BCOPY_BUFFERS);
            byte[] data = new byte[40 * 1000];
            new Random(9).nextBytes(data);
            OutputStream out = pair.client.getOutputStream();
            SdpStats stats = pair.client.connection().stats();
            long before = stats.messagesSent();
            for (int i = 0; i < 40; i++) {
                out.write(data, i * 1000, 1000); // nothing is read yet
            }
            long sent = stats.messagesSent() - before;
            assertTrue(sent <= peerBuffers / 2, sent + " messages for 40 small writes to " + peerBuffers + " buffers");
            byte[] got = new byte[data.length];
            new DataInputStream(pair.peer.getInputStream()).readFully(got); // the gathered bytes follow the credits
            assertArrayEquals(data, got);
        }
    }

    /**
     * Data messages sent straight from the writer's direct buffer (no copy into a send buffer): the write returns only
     * once the endpoint has sent them, so the writer refills the buffer at once. Every write differs, the reader lags
     * (the socket and the peer's buffers fill up), and every byte of every write is checked in order.
     */
    @ParameterizedTest
    @CsvSource({"tcp", "shm"})
    void directWritesSentFromTheBufferMayRefillItAtOnce(String fabric) throws Exception {
        try (SocketPair pair = SocketPair.open(fabric, "bcopy")) {
            int size = 200 << 10; // three full messages and an 8 KiB one
            int count = 200;
            ByteBuffer buf = ByteBuffer.allocateDirect(size);
            byte[] junk = new byte[size];
            CompletableFuture<Void> writer = CompletableFuture.runAsync(() -> {
                try {
                    for (int i = 0; i < count; i++) {
                        for (int j = 0; j < size; j++) {
                            buf.put(j, pattern(i, j));
                        }
                        buf.clear();
                        pair.client.connection().write(buf);
                        assertEquals(size, buf.position());
                        buf.put(0, junk); // at once: nothing may still be sent from here
                    }
                } catch (IOException e) {
                    throw new CompletionException(e);
                }
            });
            DataInputStream in = new DataInputStream(pair.peer.getInputStream());
            byte[] got = new byte[size];
            for (int i = 0; i < count; i++) {
                if (i % 10 == 0) {
                    Thread.sleep(20);
                }
                in.readFully(got);
                for (int j = 0; j < size; j++) {
                    if (got[j] != pattern(i, j)) {
                        throw new AssertionError("write " + i + ", byte " + j + ": " + got[j] + " != " + pattern(i, j));
                    }
                }
            }
            writer.get(30, TimeUnit.SECONDS);
            long gathered = pair.client.connection().stats().gatheredBytesSent();
            // Most full messages go from the buffer; how many go by copy instead (no credit free: they gather in the
            // pending send buffer) depends on the machine's load (45 % from the buffer once in a full CI run, where
            // half was asserted), so this only asserts that the path carried a good part of the stream.
            assertTrue(gathered >= (long) count * size / 8, "sent from the buffer: " + gathered);
        }
    }

    /**
     * Data left unread while much traffic comes in behind it (here the RdmaRdCompls answering the other direction's
     * zero-copy writes): received in place, it pins the ring, so it moves to private memory rather than let the peer
     * overrun the ring; either way it reads back intact afterwards, and so does the other direction.
     */
    @ParameterizedTest
    @CsvSource({"true", "false"})
    void unreadDataSurvivesTrafficBehindIt(String inPlace) throws Exception {
        Properties p = new Properties();
        p.setProperty(AzSdpConfig.FABRIC, "shm");
        p.setProperty(AzSdpConfig.MODE, "zcopy");
        p.setProperty(AzSdpConfig.BCOPY_IN_PLACE, inPlace);
        p.setProperty(AzSdpConfig.BCOPY_BUFFER_SIZE, "4112"); // a small ring fills soon
        p.setProperty(AzSdpConfig.BCOPY_BUFFERS, "8");
        try (SocketPair pair = SocketPair.open(AzSdpConfig.load(p))) {
            byte[] early = new byte[3000];
            new Random(5).nextBytes(early);
            pair.azPeer().connection().setMode(TransferMode.BCOPY);
            pair.peer.getOutputStream().write(early); // a Data message, which the client does not read yet
            int count = 2000;
            CompletableFuture<Long> reader = CompletableFuture.supplyAsync(() -> {
                CRC32 crc = new CRC32();
                byte[] buf = new byte[16 << 10];
                try {
                    DataInputStream in = new DataInputStream(pair.peer.getInputStream());
                    for (int i = 0; i < count; i++) {
                        in.readFully(buf);
                        crc.update(buf);
                    }
                } catch (IOException e) {
                    throw new CompletionException(e);
                }
                return crc.getValue();
            });
            CRC32 sent = new CRC32();
            byte[] msg = new byte[16 << 10];
            for (int i = 0; i < count; i++) {
                Arrays.fill(msg, (byte) i);
                sent.update(msg);
                pair.client.getOutputStream().write(msg);
            }
            assertEquals(sent.getValue(), reader.get(30, TimeUnit.SECONDS));
            byte[] got = new byte[early.length];
            new DataInputStream(pair.client.getInputStream()).readFully(got);
            assertArrayEquals(early, got);
            SdpStats stats = pair.client.connection().stats();
            assertEquals(Boolean.parseBoolean(inPlace) ? early.length : 0, stats.spilledBytes(), stats.toString());
        }
    }

    /** The shm receive buffers (credits) have their own key: each end posts that many there, the general count on tcp. */
    @ParameterizedTest
    @CsvSource({"shm,32", "tcp,16"})
    void receiveBuffersFollowTheFabric(String fabric, int expected) throws Exception {
        Properties p = new Properties();
        p.setProperty(AzSdpConfig.FABRIC, fabric);
        p.setProperty(AzSdpConfig.BCOPY_BUFFERS_SHM, "32");
        try (SocketPair pair = SocketPair.open(AzSdpConfig.load(p))) {
            pair.client.getOutputStream().write(7);
            assertEquals(7, pair.peer.getInputStream().read());
            for (AzSdpSocket s : new AzSdpSocket[] {pair.client, pair.azPeer()}) {
                String state = s.connection().toString();
                assertTrue(state.contains("posted=" + expected + ","), state);
            }
        }
    }

    private static byte pattern(int write, int index) {
        return (byte) (write * 31 + index * 7 + (index >>> 11));
    }

    /**
     * Pipelined requests: the client writes 40 small requests before the server reads any, so the later ones gather;
     * the server answers each as it reads it, and the credits its answers carry send the gathered requests (else it
     * would wait for them forever). Every byte is compared.
     */
    @ParameterizedTest
    @CsvSource({"tcp", "shm"})
    @Timeout(value = 30, unit = TimeUnit.SECONDS)
    void gatheredRequestsGoOutWithTheCreditsOfTheAnswers(String fabric) throws Exception {
        try (SocketPair pair = SocketPair.open(fabric, "bcopy")) {
            int requests = 40;
            int size = 1000;
            CountDownLatch written = new CountDownLatch(1);
            CompletableFuture<Void> server = CompletableFuture.runAsync(() -> {
                byte[] req = new byte[size];
                try {
                    written.await();
                    DataInputStream in = new DataInputStream(pair.peer.getInputStream());
                    for (int i = 0; i < requests; i++) {
                        in.readFully(req);
                        pair.peer.getOutputStream().write(req); // the echo is the answer
                    }
                } catch (IOException | InterruptedException e) {
                    throw new RuntimeException(e);
                }
            });
            byte[] data = new byte[requests * size];
            new Random(13).nextBytes(data);
            OutputStream out = pair.client.getOutputStream();
            SdpStats stats = pair.client.connection().stats();
            long before = stats.messagesSent();
            for (int i = 0; i < requests; i++) {
                out.write(data, i * size, size);
            }
            assertTrue(stats.messagesSent() - before < requests, "the later requests gathered");
            written.countDown(); // the server reads only now: its answers must bring the gathered requests out
            byte[] got = new byte[data.length];
            new DataInputStream(pair.client.getInputStream()).readFully(got);
            assertArrayEquals(data, got);
            server.get(30, TimeUnit.SECONDS);
        }
    }

    /**
     * With no reader, credits run out after a few messages; further small writes gather in one send buffer and
     * return, then go out as one message, in order, ahead of a zero-copy advert and of the DisConn.
     */
    @ParameterizedTest
    @CsvSource({"tcp", "shm"})
    void smallWritesGatherWhileCreditsAreShort(String fabric) throws Exception {
        try (SocketPair pair = SocketPair.open(fabric, "auto")) {
            int small = 6000;
            byte[] data = new byte[small * 10 + (2 << 20)];
            new Random(11).nextBytes(data);
            OutputStream out = pair.client.getOutputStream();
            CompletableFuture<Void> smallWrites = CompletableFuture.runAsync(() -> {
                try {
                    for (int i = 0; i < small; i++) {
                        out.write(data, i * 10, 10);
                    }
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });
            smallWrites.get(30, TimeUnit.SECONDS); // returns although nothing has been read
            long messages = pair.client.connection().stats().messagesSent();
            assertTrue(messages < 100, "small writes gathered into few messages: " + messages);
            pair.client.setZcopyThreshold(1 << 20);
            CompletableFuture<Void> rest = CompletableFuture.runAsync(() -> {
                try {
                    // zero copy (auto mode sends heap arrays by BCopy), after the gathered bytes
                    ByteBuffer large = ByteBuffer.allocateDirect(data.length - small * 10);
                    large.put(data, small * 10, large.capacity()).flip();
                    pair.client.byteChannel().write(large);
                    pair.client.shutdownOutput(); // DisConn after both
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });
            byte[] got = new byte[data.length];
            DataInputStream in = new DataInputStream(pair.peer.getInputStream());
            in.readFully(got);
            assertArrayEquals(data, got);
            assertEquals(-1, in.read());
            rest.get(30, TimeUnit.SECONDS);
            assertTrue(pair.client.connection().stats().zcopyBytesSent() >= 2 << 20,
                    "the large write went zero copy: " + pair.client.connection().stats());
        }
    }

    /**
     * Both single-threaded peers read into direct buffers (so large adverts wait for their next read instead of being
     * staged) and both write a large synchronous zero-copy message before they read: each blocked writer lets the
     * other's advert be staged, so neither waits for the other forever. Every byte is compared.
     */
    @ParameterizedTest
    @CsvSource({"tcp", "shm"})
    void bothWriteBeforeReadingWithDirectReaders(String fabric) throws Exception {
        try (SocketPair pair = SocketPair.open(fabric, "zcopy")) {
            int[] sizes = {64 << 10, 1 << 20, 2 << 20, 1 << 20};
            CompletableFuture<Void> a = writeThenRead(pair.client.byteChannel(), sizes, 1, 2);
            CompletableFuture<Void> b = writeThenRead(((AzSdpSocket) pair.peer).byteChannel(), sizes, 2, 1);
            awaitAll(a, b);
        }
    }

    /** Per size: writes a message seeded by (seed, size), then reads the peer's into a direct buffer and checks it. */
    private static CompletableFuture<Void> writeThenRead(AzSdpChannel ch, int[] sizes, int seed, int peerSeed) {
        return CompletableFuture.runAsync(() -> {
            try {
                for (int size : sizes) {
                    ByteBuffer out = ByteBuffer.allocateDirect(size);
                    byte[] mine = new byte[size];
                    new Random(seed * 31L + size).nextBytes(mine);
                    out.put(mine).flip();
                    while (out.hasRemaining()) {
                        ch.write(out);
                    }
                    ByteBuffer in = ByteBuffer.allocateDirect(size);
                    while (in.hasRemaining()) {
                        if (ch.read(in) < 0) {
                            throw new IOException("end of stream after " + in.position() + " of " + size + " bytes");
                        }
                    }
                    byte[] theirs = new byte[size];
                    new Random(peerSeed * 31L + size).nextBytes(theirs);
                    byte[] got = new byte[size];
                    in.flip().get(got);
                    assertArrayEquals(theirs, got, "message of " + size + " bytes");
                }
            } catch (IOException e) {
                throw new CompletionException(e);
            }
        });
    }

    /**
     * A reader that last read into a direct buffer leaves large adverts unstaged until its next read; available()
     * must still report them (a caller may poll it before reading), and the bytes then read are the ones sent.
     */
    @ParameterizedTest
    @CsvSource({"tcp", "shm"})
    void availableSeesAdvertsLeftForADirectReader(String fabric) throws Exception {
        try (SocketPair pair = SocketPair.open(fabric, "azsdp")) {
            pair.client.setZcopyThreshold(64 << 10); // tcp's default sends everything by buffered copy
            AzSdpChannel out = pair.client.byteChannel();
            AzSdpChannel in = ((AzSdpSocket) pair.peer).byteChannel();
            byte[] data = new byte[(64 << 10) + (1 << 20)];
            new Random(5).nextBytes(data);
            ByteBuffer src = ByteBuffer.allocateDirect(data.length).put(data).flip();
            out.write(src.slice(0, 64 << 10));
            ByteBuffer first = ByteBuffer.allocateDirect(64 << 10);
            while (first.hasRemaining()) {
                in.read(first);
            }
            out.write(src.slice(64 << 10, 1 << 20)); // asynchronous: returns before the peer reads
            InputStream is = pair.peer.getInputStream();
            if (fabric.equals("shm")) { // the SrcAvail is in the peer's ring, though it woke no thread there
                assertTrue(is.available() > 0, "available() did not see the SrcAvail in the ring");
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (is.available() == 0) {
                assertTrue(System.nanoTime() < deadline, "available() stayed 0 with 1 MiB advertised");
                Thread.sleep(1);
            }
            ByteBuffer rest = ByteBuffer.allocateDirect(1 << 20);
            while (rest.hasRemaining()) {
                in.read(rest);
            }
            byte[] got = new byte[data.length];
            first.flip().get(got, 0, 64 << 10);
            rest.flip().get(got, 64 << 10, 1 << 20);
            assertArrayEquals(data, got);
        }
    }

    /**
     * A reader that reads into direct buffers and often comes back late: asynchronous adverts (azsdp) of 64 KiB wait
     * for it and go straight into its buffers, since their sender does not wait; synchronous ones (zcopy) are staged
     * meanwhile to release their blocked writer. Every byte is compared.
     */
    @ParameterizedTest
    @CsvSource({"tcp,azsdp,false", "tcp,zcopy,true", "shm,azsdp,false", "shm,zcopy,true"})
    void onlyAdvertsWhoseWriterWaitsAreStagedAheadOfADirectReader(String fabric, String mode, boolean staged)
            throws Exception {
        try (SocketPair pair = SocketPair.open(fabric, mode)) {
            pair.client.setZcopyThreshold(64 << 10); // tcp's default sends everything by buffered copy
            int size = 64 << 10;
            int count = 64;
            AzSdpChannel out = pair.client.byteChannel();
            AzSdpChannel in = pair.azPeer().byteChannel();
            ByteBuffer[] bufs = new ByteBuffer[8];
            for (int i = 0; i < bufs.length; i++) {
                bufs[i] = ByteBuffer.allocateDirect(size);
            }
            java.util.concurrent.CountDownLatch firstRead = new java.util.concurrent.CountDownLatch(1);
            CompletableFuture<Void> writer = CompletableFuture.runAsync(() -> {
                try {
                    for (int m = 0; m < count; m++) {
                        if (m == 1) {
                            firstRead.await(); // from here on the reader's last read went into a direct buffer
                        }
                        ByteBuffer b = bufs[m % bufs.length];
                        fill(b, m);
                        while (b.hasRemaining()) {
                            out.write(b);
                        }
                    }
                } catch (IOException | InterruptedException e) {
                    throw new CompletionException(e);
                }
            });
            ByteBuffer got = ByteBuffer.allocateDirect(size);
            ByteBuffer want = ByteBuffer.allocate(size);
            long stagedBefore = 0;
            for (int m = 0; m < count; m++) {
                got.clear();
                while (got.hasRemaining()) {
                    assertTrue(in.read(got) > 0, "end of stream in message " + m);
                }
                fill(want, m);
                assertEquals(want, got.flip(), "message " + m);
                if (m == 0) {
                    stagedBefore = pair.azPeer().connection().stats().stagedBytesReceived();
                    firstRead.countDown();
                }
                Thread.sleep(2); // the next adverts arrive while nobody reads
            }
            writer.get(60, TimeUnit.SECONDS);
            long stagedAfter = pair.azPeer().connection().stats().stagedBytesReceived() - stagedBefore;
            if (staged) {
                assertTrue(stagedAfter > 0, "no synchronous advert was staged");
            } else {
                assertEquals(0, stagedAfter, "bytes of asynchronous adverts staged");
            }
        }
    }

    /**
     * A zero-copy write of a direct buffer waits behind gathered small writes that no credit can send; when the peer
     * then resets the connection, that writer gets an IOException (it once slept on, re-checking only the gathered
     * buffer, not the connection).
     */
    @ParameterizedTest
    @CsvSource({"tcp", "shm"})
    void writerBehindGatheredBytesSeesPeerReset(String fabric) throws Exception {
        try (SocketPair pair = SocketPair.open(fabric, "auto")) {
            OutputStream out = pair.client.getOutputStream();
            byte[] small = new byte[10];
            AzSdpConfig cfg = SocketPair.config(fabric, "auto");
            int messages = cfg.intValue(AzSdpConfig.BCOPY_BUFFERS) - cfg.intValue(AzSdpConfig.CREDITS_RESERVE);
            SdpStats stats = pair.client.connection().stats();
            long before = stats.messagesSent();
            while (stats.messagesSent() - before < messages) {
                out.write(small); // no reader: the credits run out
            }
            for (int i = 0; i < 100; i++) {
                out.write(small); // and these gather in one send buffer
            }
            pair.client.setZcopyThreshold(64 << 10);
            ByteBuffer big = ByteBuffer.allocateDirect(1 << 20);
            AzSdpChannel ch = pair.client.byteChannel();
            CompletableFuture<Void> write = CompletableFuture.runAsync(() -> {
                try {
                    ch.write(big);
                } catch (IOException e) {
                    throw new CompletionException(e);
                }
            });
            Thread.sleep(300);
            assertFalse(write.isDone(), "the zero-copy write waits for the gathered bytes to go first");
            pair.peer.setSoLinger(true, 0);
            pair.peer.close();
            ExecutionException e = assertThrows(ExecutionException.class,
                    () -> write.get(10, TimeUnit.SECONDS), "the blocked writer is released by the reset");
            assertTrue(e.getCause().getCause() instanceof IOException, () -> "got " + e.getCause());
        }
    }

    @ParameterizedTest
    @CsvSource({"tcp", "shm"})
    void abortiveCloseResetsPeerAndTimeoutsWork(String fabric) throws Exception {
        try (SocketPair pair = SocketPair.open(fabric, "auto")) {
            AzSdpSocket client = pair.client;
            Socket peer = pair.peer;
            pair.server.setSoTimeout(200);
            assertThrows(SocketTimeoutException.class, pair.server::accept, "no second client: accept times out");
            peer.setSoTimeout(150);
            long t0 = System.nanoTime();
            assertThrows(SocketTimeoutException.class, () -> peer.getInputStream().read());
            assertTrue(System.nanoTime() - t0 >= TimeUnit.MILLISECONDS.toNanos(140));
            client.getOutputStream().write(42);
            assertEquals(42, peer.getInputStream().read(), "still usable after a timeout");
            peer.setSoTimeout(5000);
            client.setSoLinger(true, 0);
            client.close();
            IOException e = assertThrows(IOException.class, () -> {
                while (peer.getInputStream().read() >= 0) {
                    // drain
                }
            });
            assertTrue(e.getMessage().toLowerCase().contains("reset"), e.getMessage());
        }
    }

    /**
     * Auto mode: while as many synchronous zero-copy writes as the JVM allows wait for peers that do not read, a large
     * write on another connection goes by BCopy and returns at once; once they are done it goes zero copy again.
     * Every byte of every connection arrives intact.
     */
    @ParameterizedTest
    @CsvSource({"tcp", "shm"})
    void autoSendsByBcopyWhileSynchronousZeroCopyWritersWait(String fabric) throws Exception {
        int waiting = SdpConnection.syncZcopyWritersMax();
        SocketPair[] pairs = openPairs(crowdingConfig(fabric, "auto"), waiting + 1);
        try {
            ByteBuffer big = ByteBuffer.allocateDirect(1 << 20);
            fill(big, 1);
            CompletableFuture<?>[] writers = new CompletableFuture<?>[waiting];
            for (int i = 0; i < waiting; i++) {
                SdpConnection c = pairs[i].client.connection();
                ByteBuffer view = big.duplicate();
                writers[i] = runAsync(() -> c.write(view));
            }
            for (int i = 0; i < waiting; i++) {
                SdpConnection c = pairs[i].client.connection();
                long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                while (c.advertsOutstanding() == 0 && System.nanoTime() < end) {
                    Thread.sleep(1);
                }
                assertEquals(1, c.advertsOutstanding(), "writer " + i + " waits for its peer");
            }
            SdpConnection last = pairs[waiting].client.connection();
            ByteBuffer msg = ByteBuffer.allocateDirect(64 << 10);
            fill(msg, 2);
            last.write(msg.duplicate()); // the peer reads nothing yet: returns only because it went by BCopy
            assertEquals(64 << 10, last.stats().syncZcopyCrowdedBytes(), last.stats().toString());
            assertEquals(64 << 10, last.stats().bcopyBytesSent(), last.stats().toString());
            assertEquals(0, last.stats().zcopyBytesSent(), last.stats().toString());
            for (int i = 0; i < waiting; i++) {
                assertArrayEquals(bytes(big), readFully(pairs[i].peer, big.capacity()));
                writers[i].get(30, TimeUnit.SECONDS);
            }
            assertArrayEquals(bytes(msg), readFully(pairs[waiting].peer, msg.capacity()));
            CompletableFuture<byte[]> echo = CompletableFuture.supplyAsync(() -> {
                try {
                    return readFully(pairs[waiting].peer, msg.capacity());
                } catch (IOException e) {
                    throw new CompletionException(e);
                }
            });
            last.write(msg.duplicate()); // no other writer waits now
            assertArrayEquals(bytes(msg), echo.get(30, TimeUnit.SECONDS));
            assertEquals(64 << 10, last.stats().syncZcopyCrowdedBytes(), last.stats().toString());
            assertEquals(64 << 10, last.stats().zcopyBytesSent(), last.stats().toString());
        } finally {
            closeAll(pairs);
        }
    }

    /**
     * Azsdp mode: a write between the solo and the zero-copy thresholds goes by asynchronous zero copy while fewer
     * azsdp-mode writes of other connections are under way than the JVM allows, and by BCopy while as many wait
     * for peers that do not read, or while a read of its own connection is under way. Every byte of every connection
     * arrives intact.
     */
    @ParameterizedTest
    @CsvSource({"tcp", "shm"})
    void azsdpSendsMidSizesAsynchronouslyOnlyWhileFewOtherWritesAreUnderWay(String fabric) throws Exception {
        AzSdpConfig cfg = crowdingConfig(fabric, "azsdp");
        int others = SdpConnection.azsdpWritesMax();
        SocketPair[] pairs = openPairs(cfg, others + 1);
        try {
            SdpConnection solo = pairs[others].client.connection();
            ByteBuffer mid = ProtectedMemory.allocateAligned(16 << 10);
            fill(mid, 3);
            solo.write(mid.duplicate()); // alone: asynchronous
            assertArrayEquals(bytes(mid), readFully(pairs[others].peer, mid.capacity()));
            awaitNoAdverts(solo);
            assertEquals(16 << 10, solo.stats().zcopyBytesSent(), solo.stats().toString());

            // Larger than the staging ring: each write waits for its peer, which reads nothing yet.
            byte[] big = new byte[3 * cfg.intValue(AzSdpConfig.ZCOPY_STAGING_BYTES)];
            new Random(4).nextBytes(big);
            CompletableFuture<?>[] writers = new CompletableFuture<?>[others];
            for (int i = 0; i < others; i++) {
                SdpConnection c = pairs[i].client.connection();
                writers[i] = runAsync(() -> c.write(big, 0, big.length));
            }
            for (int i = 0; i < others; i++) {
                SdpConnection c = pairs[i].client.connection();
                long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                while (c.advertsOutstanding() == 0 && System.nanoTime() < end) {
                    Thread.sleep(1);
                }
                Thread.sleep(50);
                assertFalse(writers[i].isDone(), "writer " + i + " waits for its peer");
            }
            solo.write(mid.duplicate());
            assertArrayEquals(bytes(mid), readFully(pairs[others].peer, mid.capacity()));
            assertEquals(16 << 10, solo.stats().bcopyBytesSent(), solo.stats().toString());
            assertEquals(16 << 10, solo.stats().zcopyBytesSent(), solo.stats().toString());

            for (int i = 0; i < others; i++) {
                assertArrayEquals(big, readFully(pairs[i].peer, big.length));
                writers[i].get(30, TimeUnit.SECONDS);
            }
            solo.write(mid.duplicate()); // the others are done: asynchronous again
            assertArrayEquals(bytes(mid), readFully(pairs[others].peer, mid.capacity()));
            awaitNoAdverts(solo);
            assertEquals(32 << 10, solo.stats().zcopyBytesSent(), solo.stats().toString());
            assertEquals(16 << 10, solo.stats().bcopyBytesSent(), solo.stats().toString());

            // A read under way on the same connection: both directions busy, BCopy.
            InputStream soloIn = pairs[others].client.getInputStream();
            CompletableFuture<Integer> reader = CompletableFuture.supplyAsync(() -> {
                try {
                    return soloIn.read();
                } catch (IOException e) {
                    throw new CompletionException(e);
                }
            });
            Thread.sleep(50);
            assertFalse(reader.isDone(), "the reader waits for its peer");
            solo.write(mid.duplicate());
            assertArrayEquals(bytes(mid), readFully(pairs[others].peer, mid.capacity()));
            assertEquals(32 << 10, solo.stats().bcopyBytesSent(), solo.stats().toString());
            pairs[others].peer.getOutputStream().write(7);
            assertEquals(7, reader.get(10, TimeUnit.SECONDS));
        } finally {
            closeAll(pairs);
        }
    }

    /**
     * Tests of the JVM-wide bounds: {@code mode} on {@code fabric}, zero copy from 64 KiB and azsdp mode's solo range
     * from 16 KiB on both fabrics, and a peer that stages little of what it does not read.
     */
    private static AzSdpConfig crowdingConfig(String fabric, String mode) {
        Properties p = new Properties();
        p.setProperty(AzSdpConfig.FABRIC, fabric);
        p.setProperty(AzSdpConfig.MODE, mode);
        p.setProperty(AzSdpConfig.ZCOPY_THRESHOLD, "65536"); // tcp too
        p.setProperty(AzSdpConfig.ZCOPY_SOLO_THRESHOLD, "16384"); // tcp too
        p.setProperty(AzSdpConfig.ZCOPY_POOL_BYTES, "65536");
        return AzSdpConfig.load(p);
    }

    private static SocketPair[] openPairs(AzSdpConfig cfg, int n) throws Exception {
        SocketPair[] pairs = new SocketPair[n];
        try {
            for (int i = 0; i < n; i++) {
                pairs[i] = SocketPair.open(cfg);
            }
        } catch (Exception | Error e) {
            closeAll(pairs);
            throw e;
        }
        return pairs;
    }

    private static void closeAll(SocketPair[] pairs) throws IOException {
        for (SocketPair pair : pairs) {
            if (pair != null) {
                pair.close();
            }
        }
    }

    private interface IoAction {
        void run() throws IOException;
    }

    private static CompletableFuture<?> runAsync(IoAction action) {
        return CompletableFuture.runAsync(() -> {
            try {
                action.run();
            } catch (IOException e) {
                throw new CompletionException(e);
            }
        });
    }

    /** The peer has read every advert: its RdmaRdCompl may still be on its way. */
    private static void awaitNoAdverts(SdpConnection c) throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (c.advertsOutstanding() > 0 && System.nanoTime() < end) {
            Thread.sleep(1);
        }
        assertEquals(0, c.advertsOutstanding(), c.stats().toString());
    }

    private static byte[] bytes(ByteBuffer b) {
        byte[] out = new byte[b.capacity()];
        b.duplicate().clear().get(out);
        return out;
    }

    private static byte[] readFully(Socket s, int n) throws IOException {
        byte[] out = new byte[n];
        new DataInputStream(s.getInputStream()).readFully(out);
        return out;
    }
}
