package io.azsdp.fabric.tcp;

import io.azsdp.fabric.CompletionHandler;
import io.azsdp.fabric.Endpoint;
import io.azsdp.fabric.FabricOptions;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** Shared helpers: endpoint pairs over real loopback sockets, a recording handler, raw protocol peers. */
final class TcpTestSupport {
    static final long WAIT_SECONDS = 20;

    private TcpTestSupport() {
    }

    static FabricOptions options(int maxMessageSize) {
        return new FabricOptions(maxMessageSize, 64, 16, 5_000, 5_000);
    }

    /** A connected socket pair on 127.0.0.1: [client, server]. */
    static SocketChannel[] socketPair() throws IOException {
        try (ServerSocketChannel server = ServerSocketChannel.open()) {
            server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            SocketChannel client = SocketChannel.open(server.getLocalAddress());
            SocketChannel accepted = server.accept();
            return new SocketChannel[] {client, accepted};
        }
    }

    /** Two started tcp endpoints, handshaken concurrently as the bootstrap would. */
    static final class Pair implements AutoCloseable {
        final Endpoint client;
        final Endpoint server;
        final Recorder clientEvents;
        final Recorder serverEvents;

        Pair(FabricOptions clientOptions, FabricOptions serverOptions, Recorder clientEvents, Recorder serverEvents)
                throws Exception {
            SocketChannel[] s = socketPair();
            CompletableFuture<Endpoint> accepted = CompletableFuture.supplyAsync(() -> {
                try {
                    return new TcpFabric().accept(s[1], serverOptions);
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });
            this.client = new TcpFabric().connect(s[0], clientOptions);
            this.server = accepted.get(WAIT_SECONDS, TimeUnit.SECONDS);
            this.clientEvents = clientEvents;
            this.serverEvents = serverEvents;
            client.setHandler(clientEvents);
            server.setHandler(serverEvents);
            client.start();
            server.start();
        }

        Pair(FabricOptions options) throws Exception {
            this(options, options, new Recorder(), new Recorder());
        }

        @Override
        public void close() {
            client.abort();
            server.abort();
        }
    }

    record Completion(int opcode, long wrId, int byteLen, int status) {
    }

    /** Records completions and the disconnect; an optional hook runs inside each completion callback. */
    static class Recorder implements CompletionHandler {
        final LinkedBlockingQueue<Completion> completions = new LinkedBlockingQueue<>();
        final CountDownLatch disconnected = new CountDownLatch(1);
        final AtomicInteger disconnectCalls = new AtomicInteger();
        final AtomicInteger completionsAfterDisconnect = new AtomicInteger();
        volatile IOException cause;

        @Override
        public void onCompletion(int opcode, long wrId, int byteLen, int status) {
            if (disconnectCalls.get() > 0) {
                completionsAfterDisconnect.incrementAndGet();
            }
            completions.add(new Completion(opcode, wrId, byteLen, status));
        }

        @Override
        public void onDisconnect(IOException cause) {
            this.cause = cause;
            disconnectCalls.incrementAndGet();
            disconnected.countDown();
        }

        Completion next() throws InterruptedException {
            Completion c = completions.poll(WAIT_SECONDS, TimeUnit.SECONDS);
            assertNotNull(c, "no completion within " + WAIT_SECONDS + " s");
            return c;
        }

        List<Completion> next(int n) throws InterruptedException {
            List<Completion> list = new ArrayList<>(n);
            for (int i = 0; i < n; i++) {
                list.add(next());
            }
            return list;
        }

        /** Waits for the disconnect and returns its cause (null for an orderly close). */
        IOException awaitDisconnect() throws InterruptedException {
            if (!disconnected.await(WAIT_SECONDS, TimeUnit.SECONDS)) {
                fail("no onDisconnect within " + WAIT_SECONDS + " s");
            }
            return cause;
        }

        /** After the disconnect: exactly one call, and no completion delivered after it. */
        void assertSingleDisconnect() throws InterruptedException {
            Thread.sleep(50);
            assertEquals(1, disconnectCalls.get(), "onDisconnect calls");
            assertEquals(0, completionsAfterDisconnect.get(), "completions after onDisconnect");
        }
    }

    /** A registered region of {@code length} bytes with {@code guard} guard bytes (0x5A) on each side. */
    static final class Guarded {
        static final byte GUARD = 0x5A;
        final ByteBuffer whole;
        final int guard;
        final int length;

        Guarded(int length, int guard) {
            this.whole = ByteBuffer.allocateDirect(length + 2 * guard);
            this.guard = guard;
            this.length = length;
            for (int i = 0; i < whole.capacity(); i++) {
                whole.put(i, GUARD);
            }
        }

        /** The [guard, guard + length) window, ready to register. */
        ByteBuffer window() {
            return whole.duplicate().position(guard).limit(guard + length);
        }

        byte[] snapshot() {
            byte[] b = new byte[whole.capacity()];
            whole.duplicate().clear().get(b);
            return b;
        }

        void assertGuardsIntact() {
            for (int i = 0; i < guard; i++) {
                assertEquals(GUARD, whole.get(i), "front guard byte " + i);
                assertEquals(GUARD, whole.get(guard + length + i), "back guard byte " + i);
            }
        }
    }

    /** A provider endpoint (accept side, started) talking to a raw socket that speaks the wire format by hand. */
    static final class RawPeer implements AutoCloseable {
        final SocketChannel raw;
        final Endpoint endpoint;
        final Recorder events = new Recorder();

        RawPeer(FabricOptions providerOptions) throws Exception {
            SocketChannel[] s = socketPair();
            raw = s[0];
            CompletableFuture<Endpoint> accepted = CompletableFuture.supplyAsync(() -> {
                try {
                    return new TcpFabric().accept(s[1], providerOptions);
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });
            Handshake.exchange(raw, options(1 << 20), Handshake.ROLE_CONNECT);
            endpoint = accepted.get(WAIT_SECONDS, TimeUnit.SECONDS);
            endpoint.setHandler(events);
            endpoint.start();
        }

        void writeFrame(int type, int status, int length, int reqId, int rkey, long address) throws IOException {
            ByteBuffer h = ByteBuffer.allocate(Wire.HEADER_LEN);
            h.put(Wire.FRAME_MAGIC).put((byte) type).put((byte) status).put((byte) 0)
                    .putInt(length).putInt(reqId).putInt(rkey).putLong(address).flip();
            write(h);
        }

        void write(ByteBuffer b) throws IOException {
            while (b.hasRemaining()) {
                raw.write(b);
            }
        }

        /** Reads one header (bounded by the test timeout: the raw channel is blocking). */
        ByteBuffer readHeader() throws IOException {
            return readFully(Wire.HEADER_LEN);
        }

        ByteBuffer readFully(int n) throws IOException {
            ByteBuffer b = ByteBuffer.allocate(n);
            while (b.hasRemaining()) {
                if (raw.read(b) < 0) {
                    throw new java.io.EOFException("raw peer: end of stream");
                }
            }
            return b.flip();
        }

        @Override
        public void close() throws IOException {
            endpoint.abort();
            raw.close();
        }
    }

    /** The provider threads of these endpoints (named after the remote address) end soon after the disconnect. */
    static void assertProviderThreadsGone(Endpoint... endpoints) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_SECONDS);
        for (Endpoint ep : endpoints) {
            String suffix = "-" + ep.remoteAddress().getHostString() + ":" + ep.remoteAddress().getPort();
            while (Thread.getAllStackTraces().keySet().stream()
                    .anyMatch(t -> t.getName().startsWith("azsdp-tcp-") && t.getName().endsWith(suffix))) {
                assertTrue(System.nanoTime() < deadline, "provider threads of " + ep + " still running");
                Thread.sleep(10);
            }
        }
    }

    static void assertDisconnectedWithin(Recorder r, String expectation) throws InterruptedException {
        assertTrue(r.disconnected.await(WAIT_SECONDS, TimeUnit.SECONDS), expectation);
    }
}
