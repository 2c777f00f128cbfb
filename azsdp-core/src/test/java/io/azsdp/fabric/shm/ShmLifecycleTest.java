package io.azsdp.fabric.shm;

import static io.azsdp.fabric.shm.ShmTestSupport.fill;
import static io.azsdp.fabric.shm.ShmTestSupport.mismatch;
import static io.azsdp.fabric.shm.ShmTestSupport.options;
import static io.azsdp.fabric.shm.ShmTestSupport.pair;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.azsdp.fabric.FabricOptions;
import io.azsdp.fabric.MemoryRegion;
import io.azsdp.fabric.Opcode;
import io.azsdp.fabric.WcStatus;
import io.azsdp.fabric.shm.ShmTestSupport.Pair;
import io.azsdp.fabric.shm.ShmTestSupport.Recorder;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(60)
class ShmLifecycleTest {

    /** Everything sent before close() reaches the peer, even receives posted long after; then a null disconnect. */
    @Test
    void orderlyCloseDeliversEverythingFirst() throws Exception {
        int max = 2048;
        int n = 8;
        try (Pair p = pair(options(max, n, 4))) {
            Recorder client = new Recorder();
            Recorder server = new Recorder();
            p.client().setHandler(client);
            p.server().setHandler(server);
            p.client().start();
            p.server().start();
            MemoryRegion tx = p.client().register(ByteBuffer.allocateDirect(max));
            for (int i = 0; i < n; i++) {
                fill(tx.buffer(), 0, i * 200, i);
                p.client().postSend(i, tx, 0, i * 200);
                client.expect(Opcode.SEND, i, i * 200, WcStatus.SUCCESS);
            }
            p.client().postRecv(77, tx, 0, max);
            p.client().close();
            client.expect(Opcode.RECV, 77, 0, WcStatus.FLUSH_ERR);
            assertNull(client.awaitDisconnect());
            assertFalse(p.client().isOpen());
            assertThrows(IOException.class, () -> p.client().postSend(99, tx, 0, 1));
            assertThrows(IOException.class, () -> p.client().postRecv(99, tx, 0, 1));

            Thread.sleep(150);
            assertFalse(server.disconnect.isDone(), "undelivered messages keep the peer connected");
            MemoryRegion rx = p.server().register(ByteBuffer.allocateDirect(max));
            for (int i = 0; i < n; i++) {
                p.server().postRecv(i, rx, 0, max);
                server.expect(Opcode.RECV, i, i * 200, WcStatus.SUCCESS);
                assertEquals(-1, mismatch(rx.buffer(), 0, i * 200, i));
                Thread.sleep(10);
            }
            assertNull(server.awaitDisconnect());
            assertFalse(p.server().isOpen());
            p.client().close();
            p.client().abort();
            p.server().close();
            Thread.sleep(50);
            assertEquals(1, client.disconnects.get());
            assertEquals(1, server.disconnects.get());
        }
    }

    /** An orderly close with receives already posted on the peer: delivered, then the peer's own posts flushed. */
    @Test
    void orderlyCloseWithReceivesPosted() throws Exception {
        try (Pair p = pair(options(256, 4, 4))) {
            Recorder client = new Recorder();
            Recorder server = new Recorder();
            p.client().setHandler(client);
            p.server().setHandler(server);
            MemoryRegion rx = p.server().register(ByteBuffer.allocateDirect(256));
            p.server().postRecv(1, rx, 0, 256);
            p.server().postRecv(2, rx, 0, 256);
            p.client().start();
            p.server().start();
            MemoryRegion tx = p.client().register(ByteBuffer.allocateDirect(256));
            p.client().postSend(5, tx, 0, 100);
            p.client().close();
            server.expect(Opcode.RECV, 1, 100, WcStatus.SUCCESS);
            server.expect(Opcode.RECV, 2, 0, WcStatus.FLUSH_ERR);
            assertNull(server.awaitDisconnect());
        }
    }

    /** abort(): local work flushed, "aborted locally"; the peer is reset at once without draining its ring. */
    @Test
    void abortResetsThePeerWithoutDraining() throws Exception {
        try (Pair p = pair(options(256, 4, 4))) {
            Recorder client = new Recorder();
            Recorder server = new Recorder();
            p.client().setHandler(client);
            p.server().setHandler(server);
            p.client().start();
            p.server().start();
            MemoryRegion tx = p.client().register(ByteBuffer.allocateDirect(256));
            for (int i = 0; i < 3; i++) {
                p.client().postSend(i, tx, 0, 10);
                client.expect(Opcode.SEND, i, 10, WcStatus.SUCCESS);
            }
            p.client().postRecv(9, tx, 0, 256);
            MemoryRegion rx = p.server().register(ByteBuffer.allocateDirect(256));
            p.client().abort();
            client.expect(Opcode.RECV, 9, 0, WcStatus.FLUSH_ERR);
            IOException local = client.awaitDisconnect();
            assertTrue(local != null && local.getMessage().contains("aborted locally"), String.valueOf(local));
            IOException peer = server.awaitDisconnect();
            assertTrue(peer != null && peer.getMessage().contains("reset by peer"), String.valueOf(peer));
            assertTrue(server.completions.isEmpty(), "nothing delivered after a reset: " + server.completions);
            assertThrows(IOException.class, () -> p.server().postRecv(1, rx, 0, 256));
            // The progress thread detaches the region table just after it reports the disconnect.
            long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
            IOException refused = null;
            while (refused == null && System.nanoTime() < end) {
                try {
                    p.server().register(ByteBuffer.allocateDirect(256));
                    Thread.sleep(1);
                } catch (IOException e) {
                    refused = e;
                }
            }
            assertTrue(refused != null && refused.getMessage().contains("closed"),
                    "register after the reset: " + refused);
            p.client().abort();
            p.server().abort();
            assertEquals(1, client.disconnects.get());
            assertEquals(1, server.disconnects.get());
        }
    }

    /** close() from inside a completion callback, on the progress thread. */
    @Test
    void closeFromInsideACallback() throws Exception {
        try (Pair p = pair(options(256, 4, 4))) {
            Recorder client = new Recorder();
            Recorder server = new Recorder() {
                @Override
                public void onCompletion(int opcode, long wrId, int byteLen, int status) {
                    super.onCompletion(opcode, wrId, byteLen, status);
                    if (status == WcStatus.SUCCESS) {
                        p.server().close();
                    }
                }
            };
            p.client().setHandler(client);
            p.server().setHandler(server);
            MemoryRegion rx = p.server().register(ByteBuffer.allocateDirect(256));
            p.server().postRecv(1, rx, 0, 256);
            p.server().postRecv(2, rx, 0, 256);
            p.client().start();
            p.server().start();
            MemoryRegion tx = p.client().register(ByteBuffer.allocateDirect(256));
            p.client().postSend(5, tx, 0, 100);
            server.expect(Opcode.RECV, 1, 100, WcStatus.SUCCESS);
            server.expect(Opcode.RECV, 2, 0, WcStatus.FLUSH_ERR);
            assertNull(server.awaitDisconnect());
            assertNull(client.awaitDisconnect());
        }
    }

    /** Before start() there is no progress thread: close() delivers inline, and start() afterwards is harmless. */
    @Test
    void closeBeforeStart() throws Exception {
        try (Pair p = pair(options(256, 4, 4))) {
            Recorder client = new Recorder();
            p.client().setHandler(client);
            MemoryRegion rx = p.client().register(ByteBuffer.allocateDirect(256));
            p.client().postRecv(3, rx, 0, 256);
            p.client().close();
            client.expect(Opcode.RECV, 3, 0, WcStatus.FLUSH_ERR);
            assertNull(client.disconnect.getNow(new IOException("not yet")));
            p.client().start();
            Recorder server = new Recorder();
            p.server().setHandler(server);
            p.server().start();
            assertNull(server.awaitDisconnect());
        }
    }

    /** Both mappings of a segment are gone once both endpoints are closed (no waiting for a GC). */
    @Test
    void segmentsAreUnmappedAfterClose() throws Exception {
        ShmTestSupport.assumeShmAvailable();
        long before = ShmTestSupport.segmentMappings();
        Pair p = pair(options(64 * 1024, 16, 16));
        assertEquals(before + 2, ShmTestSupport.segmentMappings());
        Recorder client = new Recorder();
        Recorder server = new Recorder();
        p.client().setHandler(client);
        p.server().setHandler(server);
        p.client().start();
        p.server().start();
        p.client().close();
        client.awaitDisconnect();
        server.awaitDisconnect();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (ShmTestSupport.segmentMappings() != before && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertEquals(before, ShmTestSupport.segmentMappings());
    }

    @Test
    void handshakeRejectsGarbage() throws Exception {
        ShmTestSupport.assumeShmAvailable();
        try (ServerSocketChannel ss = listen(); SocketChannel c = SocketChannel.open(ss.getLocalAddress());
             SocketChannel s = ss.accept()) {
            c.write(ByteBuffer.wrap("GET / HTTP/1.1\r\nHost: x\r\n\r\n".getBytes()));
            IOException e = assertThrows(IOException.class, () -> new ShmFabric().accept(s, options(64, 4, 4)));
            assertTrue(e.getMessage().contains("bad magic"), e.getMessage());
            assertFalse(s.isOpen(), "the bootstrap channel is closed");
        }
    }

    @Test
    void handshakeTimesOutOnASilentPeer() throws Exception {
        ShmTestSupport.assumeShmAvailable();
        FabricOptions o = new FabricOptions(64, 4, 4, 300, 2000);
        try (ServerSocketChannel ss = listen()) {
            for (boolean client : new boolean[] {false, true}) {
                try (SocketChannel c = SocketChannel.open(ss.getLocalAddress()); SocketChannel s = ss.accept()) {
                    long t0 = System.nanoTime();
                    SocketTimeoutException e = assertThrows(SocketTimeoutException.class,
                            () -> {
                                if (client) {
                                    new ShmFabric().connect(c, o);
                                } else {
                                    new ShmFabric().accept(s, o);
                                }
                            });
                    long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
                    assertTrue(ms >= 250 && ms < 3000, ms + " ms");
                    assertTrue(e.getMessage().contains("timed out"), e.getMessage());
                }
            }
        }
    }

    @Test
    void unsupportedPeerOptionsAreRejected() throws Exception {
        ShmTestSupport.assumeShmAvailable();
        try (ServerSocketChannel ss = listen(); SocketChannel c = SocketChannel.open(ss.getLocalAddress());
             SocketChannel s = ss.accept()) {
            ByteBuffer hello = ByteBuffer.allocate(24).putInt(0x415A5348).putInt(1).putInt((int) ProcessHandle
                    .current().pid()).putInt(1 << 30).putInt(1 << 20).putInt(4).flip();
            c.write(hello);
            IOException e = assertThrows(IOException.class, () -> new ShmFabric().accept(s, options(64, 4, 4)));
            assertTrue(e.getMessage().contains("unsupported peer options"), e.getMessage());
        }
    }

    private static ServerSocketChannel listen() throws IOException {
        ServerSocketChannel ss = ServerSocketChannel.open();
        ss.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
        return ss;
    }
}
