package io.azsdp.fabric.tcp;

import io.azsdp.fabric.Endpoint;
import io.azsdp.fabric.FabricException;
import io.azsdp.fabric.FabricOptions;
import io.azsdp.fabric.MemoryRegion;
import io.azsdp.fabric.Opcode;
import io.azsdp.fabric.WcStatus;
import io.azsdp.fabric.tcp.TcpTestSupport.Completion;
import io.azsdp.fabric.tcp.TcpTestSupport.Pair;
import io.azsdp.fabric.tcp.TcpTestSupport.RawPeer;
import io.azsdp.fabric.tcp.TcpTestSupport.Recorder;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static io.azsdp.fabric.tcp.TcpTestSupport.WAIT_SECONDS;
import static io.azsdp.fabric.tcp.TcpTestSupport.options;
import static io.azsdp.fabric.tcp.TcpTestSupport.socketPair;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
class TcpLifecycleTest {

    @Test
    void orderlyCloseDeliversEverySendFirst() throws Exception {
        try (Pair p = new Pair(options(4096))) {
            int sends = 200;
            ByteBuffer mem = ByteBuffer.allocateDirect(sends * 16);
            for (int i = 0; i < sends; i++) {
                mem.putInt(i * 16, i);
            }
            MemoryRegion src = p.client.register(mem);
            MemoryRegion dst = p.server.register(ByteBuffer.allocateDirect((sends + 10) * 16));
            for (int i = 0; i < sends + 10; i++) {
                p.server.postRecv(i, dst, i * 16, 16);
            }
            for (int i = 0; i < sends; i++) {
                p.client.postSend(i, src, i * 16, 16);
            }
            p.client.close();
            assertFalse(p.client.isOpen());
            assertThrows(FabricException.class, () -> p.client.postSend(999, src, 0, 16), "no post after close");
            p.client.close(); // idempotent

            for (int i = 0; i < sends; i++) {
                assertEquals(new Completion(Opcode.RECV, i, 16, WcStatus.SUCCESS), p.serverEvents.next());
                assertEquals(i, dst.buffer().getInt(i * 16));
            }
            for (int i = 0; i < 10; i++) { // left-over receives are flushed
                assertEquals(new Completion(Opcode.RECV, sends + i, 0, WcStatus.FLUSH_ERR), p.serverEvents.next());
            }
            assertNull(p.serverEvents.awaitDisconnect(), "orderly close reaches the peer as a null cause");
            for (int i = 0; i < sends; i++) {
                assertEquals(new Completion(Opcode.SEND, i, 16, WcStatus.SUCCESS), p.clientEvents.next());
            }
            assertNull(p.clientEvents.awaitDisconnect(), "the closing side gets onDisconnect(null) too");
            assertFalse(p.server.isOpen());
            p.serverEvents.assertSingleDisconnect();
            p.clientEvents.assertSingleDisconnect();
            TcpTestSupport.assertProviderThreadsGone(p.client, p.server);
        }
    }

    @Test
    void simultaneousCloseIsOrderlyOnBothSides() throws Exception {
        try (Pair p = new Pair(options(4096))) {
            MemoryRegion a = p.client.register(ByteBuffer.allocateDirect(4096));
            MemoryRegion b = p.server.register(ByteBuffer.allocateDirect(4096));
            p.client.postRecv(1, a, 0, 4096);
            p.server.postRecv(1, b, 0, 4096);
            p.client.postSend(2, a, 0, 100);
            p.server.postSend(2, b, 0, 100);
            p.client.close();
            p.server.close();
            assertNull(p.clientEvents.awaitDisconnect());
            assertNull(p.serverEvents.awaitDisconnect());
            p.clientEvents.assertSingleDisconnect();
            p.serverEvents.assertSingleDisconnect();
        }
    }

    @Test
    void abortFlushesLocallyAndResetsThePeer() throws Exception {
        try (Pair p = new Pair(options(4096))) {
            MemoryRegion a = p.client.register(ByteBuffer.allocateDirect(4096));
            MemoryRegion b = p.server.register(ByteBuffer.allocateDirect(4096));
            p.client.postRecv(1, a, 0, 4096);
            p.client.postRead(2, a, 0, 16, b.address(), b.rkey()); // answered or flushed, depending on timing
            p.server.postRecv(3, b, 0, 4096);
            p.client.abort();
            assertFalse(p.client.isOpen());

            IOException local = p.clientEvents.awaitDisconnect();
            assertNotNull(local);
            assertTrue(local.getMessage().contains("aborted locally"), local.getMessage());
            for (Completion c : p.clientEvents.next(2)) {
                assertTrue(c.status() == WcStatus.FLUSH_ERR || c.opcode() == Opcode.READ, c.toString());
            }

            IOException remote = p.serverEvents.awaitDisconnect();
            assertNotNull(remote, "the peer sees an abortive disconnect");
            assertEquals(new Completion(Opcode.RECV, 3, 0, WcStatus.FLUSH_ERR), p.serverEvents.next());
            p.client.abort(); // idempotent
            p.client.close();
            p.clientEvents.assertSingleDisconnect();
            p.serverEvents.assertSingleDisconnect();
            TcpTestSupport.assertProviderThreadsGone(p.client, p.server);
        }
    }

    @Test
    void rawPeerClosingTheSocketIsAReset() throws Exception {
        try (RawPeer peer = new RawPeer(options(4096))) {
            MemoryRegion r = peer.endpoint.register(ByteBuffer.allocateDirect(64));
            peer.endpoint.postRecv(1, r, 0, 64);
            peer.raw.close();
            IOException cause = peer.events.awaitDisconnect();
            assertNotNull(cause);
            assertTrue(cause.getMessage().contains("connection reset by peer"), cause.getMessage());
            assertEquals(new Completion(Opcode.RECV, 1, 0, WcStatus.FLUSH_ERR), peer.events.next());
            assertFalse(peer.endpoint.isOpen());
            peer.events.assertSingleDisconnect();
        }
    }

    @Test
    void rawPeerResetIsAReset() throws Exception {
        try (RawPeer peer = new RawPeer(options(4096))) {
            peer.raw.setOption(java.net.StandardSocketOptions.SO_LINGER, 0);
            peer.raw.close();
            assertNotNull(peer.events.awaitDisconnect());
        }
    }

    /** The peer neither answers CLOSE nor closes: close() still ends within livenessTimeoutMs. */
    @Test
    void orderlyCloseIsBoundedBySilentPeer() throws Exception {
        FabricOptions quick = new FabricOptions(4096, 8, 4, 5_000, 500);
        try (RawPeer peer = new RawPeer(quick)) {
            MemoryRegion r = peer.endpoint.register(ByteBuffer.allocateDirect(64));
            peer.endpoint.postRecv(1, r, 0, 64);
            long start = System.nanoTime();
            peer.endpoint.close();
            ByteBuffer close = peer.readHeader();
            assertEquals(Wire.CLOSE, close.get(Wire.OFF_TYPE));
            assertNull(peer.events.awaitDisconnect(), "our half was delivered; the silent peer only delays the end");
            long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
            assertTrue(ms >= 400 && ms < 5_000, "closed after " + ms + " ms");
            assertEquals(new Completion(Opcode.RECV, 1, 0, WcStatus.FLUSH_ERR), peer.events.next());
        }
    }

    /** While closing, a SEND with no receive posted is discarded so the peer's CLOSE is still seen promptly. */
    @Test
    void closingEndpointStillConsumesUntilPeerClose() throws Exception {
        try (RawPeer peer = new RawPeer(options(4096))) {
            peer.endpoint.close();
            assertEquals(Wire.CLOSE, peer.readHeader().get(Wire.OFF_TYPE));
            peer.writeFrame(Wire.SEND, 0, 100, 0, 0, 0);
            peer.write(ByteBuffer.allocate(100));
            peer.writeFrame(Wire.CLOSE, 0, 0, 0, 0, 0);
            peer.raw.shutdownOutput();
            assertNull(peer.events.awaitDisconnect());
        }
    }

    @Test
    void closeAndAbortBeforeStart() throws Exception {
        for (boolean abort : new boolean[] {false, true}) {
            SocketChannel[] s = socketPair();
            CompletableFuture<Endpoint> accepted = CompletableFuture.supplyAsync(() -> {
                try {
                    return new TcpFabric().accept(s[1], options(4096));
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });
            Endpoint client = new TcpFabric().connect(s[0], options(4096));
            Endpoint server = accepted.get(WAIT_SECONDS, TimeUnit.SECONDS);
            Recorder serverEvents = new Recorder();
            server.setHandler(serverEvents);
            server.start();

            Recorder clientEvents = new Recorder();
            client.setHandler(clientEvents);
            MemoryRegion r = client.register(ByteBuffer.allocateDirect(64));
            client.postRecv(1, r, 0, 64);
            if (abort) {
                client.abort();
                assertEquals(new Completion(Opcode.RECV, 1, 0, WcStatus.FLUSH_ERR), clientEvents.next());
                assertNotNull(clientEvents.awaitDisconnect());
                assertNotNull(serverEvents.awaitDisconnect());
            } else {
                client.close(); // with a handler set: started, then closed in order
                assertEquals(new Completion(Opcode.RECV, 1, 0, WcStatus.FLUSH_ERR), clientEvents.next());
                assertNull(clientEvents.awaitDisconnect());
                assertNull(serverEvents.awaitDisconnect());
            }
            client.start(); // after close: no-op, no second disconnect
            clientEvents.assertSingleDisconnect();
            assertFalse(client.isOpen());
        }
    }

    @Test
    void handshakeRejectsGarbage() throws Exception {
        SocketChannel[] s = socketPair();
        s[1].write(ByteBuffer.wrap("GET / HTTP/1.1\r\n\r\n".getBytes()));
        IOException e = assertThrows(IOException.class, () -> new TcpFabric().connect(s[0], options(4096)));
        assertTrue(e.getMessage().contains("magic"), e.getMessage());
        assertFalse(s[0].isOpen(), "a failed handshake closes the channel");
        s[1].close();
    }

    @Test
    void handshakeRejectsTwoConnectingSides() throws Exception {
        SocketChannel[] s = socketPair();
        CompletableFuture<Endpoint> other = CompletableFuture.supplyAsync(() -> {
            try {
                return new TcpFabric().connect(s[1], options(4096));
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        });
        IOException e = assertThrows(IOException.class, () -> new TcpFabric().connect(s[0], options(4096)));
        assertTrue(e.getMessage().contains("role"), e.getMessage());
        assertThrows(ExecutionException.class, () -> other.get(WAIT_SECONDS, TimeUnit.SECONDS));
    }

    @Test
    void handshakeIsBoundedByConnectTimeout() throws Exception {
        SocketChannel[] s = socketPair();
        long start = System.nanoTime();
        FabricOptions o = new FabricOptions(4096, 8, 4, 300, 5_000);
        assertThrows(SocketTimeoutException.class, () -> new TcpFabric().accept(s[1], o));
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        assertTrue(ms >= 250 && ms < 5_000, "gave up after " + ms + " ms");
        s[0].close();
    }

    @Test
    void peerClosingDuringHandshakeIsAnError() throws Exception {
        SocketChannel[] s = socketPair();
        s[0].write(ByteBuffer.wrap(new byte[5]));
        s[0].close();
        assertThrows(IOException.class, () -> new TcpFabric().accept(s[1], options(4096)));
    }

    @Test
    void completionHandlersMayPostAndCloseFromCallbacks() throws Exception {
        Recorder echo = new Recorder() {
            MemoryRegion region;

            @Override
            public void onCompletion(int opcode, long wrId, int byteLen, int status) {
                super.onCompletion(opcode, wrId, byteLen, status);
                try {
                    if (opcode == Opcode.RECV && status == WcStatus.SUCCESS) {
                        Endpoint self = serverRef;
                        if (region == null) {
                            region = recvRegionRef;
                        }
                        self.postSend(wrId, region, (int) wrId * 64, byteLen); // echo from the reader thread
                        self.postRecv(wrId, region, (int) wrId * 64, 64);
                        if (wrId == 9) {
                            self.close(); // from inside a callback
                        }
                    }
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            }
        };
        try (Pair p = new Pair(options(4096), options(4096), new Recorder(), echo)) {
            serverRef = p.server;
            recvRegionRef = p.server.register(ByteBuffer.allocateDirect(640));
            MemoryRegion c = p.client.register(ByteBuffer.allocateDirect(1280));
            for (int i = 0; i < 10; i++) {
                p.server.postRecv(i, recvRegionRef, i * 64, 64);
                p.client.postRecv(100 + i, c, 640 + i * 64, 64);
            }
            for (int i = 0; i < 10; i++) {
                c.buffer().put(i * 64, (byte) i);
                p.client.postSend(i, c, i * 64, 1 + i);
            }
            int echoed = 0;
            while (echoed < 10) {
                Completion x = p.clientEvents.next();
                if (x.opcode() == Opcode.RECV) {
                    assertEquals(new Completion(Opcode.RECV, 100 + echoed, 1 + echoed, WcStatus.SUCCESS), x);
                    assertEquals((byte) echoed, c.buffer().get(640 + echoed * 64));
                    echoed++;
                }
            }
            assertNull(p.clientEvents.awaitDisconnect());
            assertNull(p.serverEvents.awaitDisconnect());
        }
    }

    private static volatile Endpoint serverRef;
    private static volatile MemoryRegion recvRegionRef;

    @Test
    void failedEndpointReportsItsCauseOnPost() throws Exception {
        try (Pair p = new Pair(options(4096))) {
            p.server.abort();
            p.clientEvents.awaitDisconnect();
            MemoryRegion r = p.client.register(ByteBuffer.allocateDirect(64));
            FabricException e = assertThrows(FabricException.class, () -> p.client.postSend(1, r, 0, 8));
            assertEquals(WcStatus.FLUSH_ERR, e.status());
            assertInstanceOf(IOException.class, p.clientEvents.cause);
        }
    }
}
