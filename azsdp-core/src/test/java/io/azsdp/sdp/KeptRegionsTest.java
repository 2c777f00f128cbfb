package io.azsdp.sdp;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.azsdp.fabric.CompletionHandler;
import io.azsdp.fabric.Endpoint;
import io.azsdp.fabric.FabricOptions;
import io.azsdp.fabric.MemoryRegion;
import io.azsdp.fabric.WcStatus;
import io.azsdp.fabric.tcp.TcpFabric;
import io.azsdp.nativeio.NativeLib;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The registrations kept for the application's buffers, over a real tcp endpoint pair: the peer reads what a kept
 * source names with a one-sided READ, and a READ with the key of a replaced or released one is refused; a kept sink
 * takes READs at any offset, and the peer can neither read nor write it.
 */
@Timeout(60)
class KeptRegionsTest {
    private static final int SIZE = 8192;

    private Endpoint sender;
    private Endpoint reader;
    private final LinkedBlockingQueue<int[]> senderCompletions = new LinkedBlockingQueue<>();
    private final LinkedBlockingQueue<int[]> readerCompletions = new LinkedBlockingQueue<>();
    private MemoryRegion sink;
    private KeptRegions regions;

    @BeforeEach
    void connect() throws Exception {
        FabricOptions options = new FabricOptions(4096, 16, 64, 5_000, 5_000);
        SocketChannel client;
        SocketChannel accepted;
        try (ServerSocketChannel server = ServerSocketChannel.open()) {
            server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            client = SocketChannel.open(server.getLocalAddress());
            accepted = server.accept();
        }
        CompletableFuture<Endpoint> other = CompletableFuture.supplyAsync(() -> {
            try {
                return new TcpFabric().accept(accepted, options);
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        });
        sender = new TcpFabric().connect(client, options);
        reader = other.get(20, TimeUnit.SECONDS);
        sender.setHandler(recording(senderCompletions));
        reader.setHandler(recording(readerCompletions));
        sender.start();
        reader.start();
        sink = reader.register(ByteBuffer.allocateDirect(SIZE));
        regions = KeptRegions.sources(sender);
    }

    @AfterEach
    void close() {
        sender.abort();
        reader.abort();
    }

    @Test
    void aBufferIsRegisteredOnceWholeAndFoundAgainByItsMemory() throws Exception {
        ByteBuffer a = filled(SIZE, 1);
        a.position(100).limit(5000);
        MemoryRegion mr = regions.acquire(a);
        assertNotNull(mr);
        assertEquals(SIZE, mr.length(), "the whole buffer, whatever its position and limit");
        assertSame(mr, regions.acquire(a), "the same buffer again");
        if (NativeLib.isAvailable()) {
            assertSame(mr, regions.acquire(a.duplicate()), "another view of the same memory");
        }
        assertNotSame(mr, regions.acquire(a.clear().slice(0, 4096)), "a view of part of it is another region");
        assertArrayEquals(content(a), readRemote(1, mr, SIZE), "the peer reads the whole buffer");
        reader.postWrite(2, sink, 0, 16, mr.address(), mr.rkey());
        int[] c = readerCompletions.poll(20, TimeUnit.SECONDS);
        assertNotNull(c, "no WRITE completion");
        assertEquals(WcStatus.REM_ACCESS_ERR, c[2], "a WRITE into a kept registration");
        assertArrayEquals(content(filled(SIZE, 1)), content(a), "the buffer is untouched");
    }

    @Test
    void onlyUnusedRegistrationsAreReplacedTheLeastRecentlyUsedFirst() throws Exception {
        ByteBuffer[] bufs = new ByteBuffer[KeptRegions.SOURCES];
        MemoryRegion[] mrs = new MemoryRegion[bufs.length];
        for (int i = 0; i < bufs.length; i++) {
            bufs[i] = filled(SIZE, 10 + i);
            mrs[i] = regions.acquire(bufs[i]);
        }
        ByteBuffer extra = filled(SIZE, 99);
        assertNull(regions.acquire(extra), "every registration is in use");
        assertTrue(regions.release(mrs[5]));
        assertTrue(regions.release(mrs[2]));
        assertSame(mrs[2], regions.acquire(bufs[2]), "used again: now the most recent");
        MemoryRegion replacing = regions.acquire(extra);
        assertNotNull(replacing, "an unused registration makes room");
        for (int i = 0; i < bufs.length; i++) {
            if (i != 5) {
                assertSame(mrs[i], regions.acquire(bufs[i]), "registration " + i + " stays");
            }
        }
        assertArrayEquals(content(extra), readRemote(1, replacing, SIZE));
        assertEquals(false, regions.release(mrs[5]), "the replaced one is no longer kept");
        assertReadRefused(2, mrs[5]);
    }

    @Test
    void releaseAllDeregistersRegistrationsStillInUse() throws Exception {
        ByteBuffer a = filled(SIZE, 7);
        MemoryRegion mr = regions.acquire(a);
        assertArrayEquals(content(a), readRemote(1, mr, SIZE));
        regions.releaseAll();
        assertEquals(false, regions.release(mr));
        assertReadRefused(2, mr);
    }

    @Test
    void aSinkTakesReadsAtItsOffsetsAndIsClosedToThePeer() throws Exception {
        KeptRegions sinks = KeptRegions.sinks(reader);
        MemoryRegion source = regions.acquire(filled(SIZE, 3));
        ByteBuffer dst = filled(SIZE, 4);
        byte[] expected = content(dst);
        MemoryRegion mr = sinks.acquire(dst.position(1000));
        assertEquals(SIZE, mr.length(), "the whole buffer");
        assertTrue(sinks.release(mr));
        assertSame(mr, sinks.acquire(dst.position(3000)), "kept from one read to the next");
        reader.postRead(1, mr, 3000, 500, source.address() + 10, source.rkey());
        await(readerCompletions, 1, 500, WcStatus.SUCCESS);
        System.arraycopy(content(source.buffer()), 10, expected, 3000, 500);
        assertArrayEquals(expected, content(dst), "exactly the 500 bytes at offset 3000 changed");

        MemoryRegion senderSide = sender.register(filled(SIZE, 5));
        sender.postWrite(2, senderSide, 0, 16, mr.address(), mr.rkey());
        await(senderCompletions, 2, 0, WcStatus.REM_ACCESS_ERR);
        assertArrayEquals(expected, content(dst), "the sink is untouched");
    }

    private static void await(LinkedBlockingQueue<int[]> completions, long wrId, int len, int status)
            throws InterruptedException {
        int[] c = completions.poll(20, TimeUnit.SECONDS);
        assertNotNull(c, "no completion");
        assertArrayEquals(new int[] {(int) wrId, len, status}, c);
    }

    private static ByteBuffer filled(int size, long seed) {
        byte[] b = new byte[size];
        new Random(seed).nextBytes(b);
        return ByteBuffer.allocateDirect(size).put(b).clear();
    }

    private static byte[] content(ByteBuffer b) {
        byte[] out = new byte[b.capacity()];
        b.duplicate().clear().get(out);
        return out;
    }

    private byte[] readRemote(long wrId, MemoryRegion remote, int len) throws Exception {
        reader.postRead(wrId, sink, 0, len, remote.address(), remote.rkey());
        int[] c = readerCompletions.poll(20, TimeUnit.SECONDS);
        assertNotNull(c, "no READ completion");
        assertEquals(WcStatus.SUCCESS, c[2], "READ status");
        assertEquals(len, c[1]);
        byte[] out = new byte[len];
        sink.buffer().duplicate().clear().get(out);
        return out;
    }

    private void assertReadRefused(long wrId, MemoryRegion remote) throws Exception {
        reader.postRead(wrId, sink, 0, 16, remote.address(), remote.rkey());
        int[] c = readerCompletions.poll(20, TimeUnit.SECONDS);
        assertNotNull(c, "no READ completion");
        assertEquals(WcStatus.REM_ACCESS_ERR, c[2], "a READ with the key of a deregistered region");
    }

    private static CompletionHandler recording(LinkedBlockingQueue<int[]> completions) {
        return new CompletionHandler() {
            @Override
            public void onCompletion(int opcode, long wrId, int byteLen, int status) {
                completions.add(new int[] {(int) wrId, byteLen, status});
            }

            @Override
            public void onDisconnect(IOException cause) {
            }
        };
    }
}
