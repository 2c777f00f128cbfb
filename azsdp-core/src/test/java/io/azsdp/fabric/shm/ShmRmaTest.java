package io.azsdp.fabric.shm;

import static io.azsdp.fabric.shm.ShmTestSupport.fill;
import static io.azsdp.fabric.shm.ShmTestSupport.guarded;
import static io.azsdp.fabric.shm.ShmTestSupport.inner;
import static io.azsdp.fabric.shm.ShmTestSupport.options;
import static io.azsdp.fabric.shm.ShmTestSupport.pair;
import static io.azsdp.fabric.shm.ShmTestSupport.snapshot;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.azsdp.fabric.FabricException;
import io.azsdp.fabric.MemoryRegion;
import io.azsdp.fabric.Opcode;
import io.azsdp.fabric.WcStatus;
import io.azsdp.fabric.shm.ShmTestSupport.Pair;
import io.azsdp.fabric.shm.ShmTestSupport.Recorder;
import io.azsdp.memory.ShareableMemory;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

@Timeout(60)
class ShmRmaTest {
    private static final int SIZE = 1 << 20;
    private static final int GUARD = 4096;

    /** Starts both endpoints with recording handlers; returns the client's. */
    private static Recorder start(Pair p) {
        Recorder client = new Recorder();
        p.client().setHandler(client);
        p.server().setHandler(new Recorder());
        p.client().start();
        p.server().start();
        return client;
    }

    @Test
    void randomReadsAndWritesMoveExactBytes() throws Exception {
        try (Pair p = pair(options(1024, 4, 8))) {
            Recorder client = start(p);
            ByteBuffer localBuf = guarded(SIZE, GUARD);
            ByteBuffer remoteBuf = guarded(SIZE, GUARD);
            MemoryRegion local = p.client().register(inner(localBuf, GUARD));
            MemoryRegion remote = p.server().register(inner(remoteBuf, GUARD));
            ByteBuffer l = local.buffer();
            ByteBuffer r = remote.buffer();
            fill(r, 0, SIZE, 1);
            fill(l, 0, SIZE, 2);
            SplittableRandom rnd = new SplittableRandom(7);
            for (int i = 0; i < 500; i++) {
                int len = i % 50 == 0 ? 0 : rnd.nextInt(i % 7 == 0 ? SIZE : 8192) + 1;
                len = Math.min(len, SIZE);
                int roff = rnd.nextInt(SIZE - len + 1);
                int loff = rnd.nextInt(SIZE - len + 1);
                boolean read = (i & 1) == 0;
                if (read) {
                    p.client().postRead(i, local, loff, len, remote.address() + roff, remote.rkey());
                } else {
                    p.client().postWrite(i, local, loff, len, remote.address() + roff, remote.rkey());
                }
                client.expect(read ? Opcode.READ : Opcode.WRITE, i, len, WcStatus.SUCCESS);
                assertEquals(-1, l.slice(loff, len).mismatch(r.slice(roff, len)), "op " + i);
                // keep the two sides different again so the next op proves something
                fill(read ? l : r, read ? loff : roff, len, 1000 + i);
            }
            // the very last byte and the whole region
            p.client().postRead(-1, local, 0, SIZE, remote.address(), remote.rkey());
            client.expect(Opcode.READ, -1, SIZE, WcStatus.SUCCESS);
            assertEquals(-1, l.mismatch(r));
            assertGuards(localBuf);
            assertGuards(remoteBuf);
            assertTrue(p.client().isOpen() && p.server().isOpen());
        }
    }

    /** Remote memory in a shareable buffer: READs copy from a mapping of it, with the same key and bounds checks. */
    @Test
    void readsFromShareableMemoryUseAMappingAndAreStillChecked() throws Exception {
        try (Pair p = pair(options(1024, 4, 8))) {
            Recorder client = start(p);
            ByteBuffer shared = ShareableMemory.allocate(SIZE + 3 * 4096);
            assertTrue(shared != null, "shareable memory available");
            ByteBuffer window = shared.slice(4096 + 100, SIZE); // a region that starts inside the buffer
            fill(window, 0, SIZE, 5);
            MemoryRegion remote = p.server().register(window);
            ByteBuffer localBuf = guarded(SIZE, GUARD);
            MemoryRegion local = p.client().register(inner(localBuf, GUARD));
            SplittableRandom rnd = new SplittableRandom(9);
            for (int i = 0; i < 200; i++) {
                int len = rnd.nextInt(i % 5 == 0 ? SIZE : 8192) + 1;
                int roff = rnd.nextInt(SIZE - len + 1);
                int loff = rnd.nextInt(SIZE - len + 1);
                p.client().postRead(i, local, loff, len, remote.address() + roff, remote.rkey());
                client.expect(Opcode.READ, i, len, WcStatus.SUCCESS);
                assertEquals(-1, local.buffer().slice(loff, len).mismatch(window.slice(roff, len)), "READ " + i);
                fill(local.buffer(), loff, len, 2000 + i);
            }
            assertEquals(200, ((ShmEndpoint) p.client()).sharedReads());
            assertGuards(localBuf);

            byte[] before = snapshot(localBuf);
            p.client().postRead(999, local, 0, 8192, remote.address() + SIZE - 4096, remote.rkey());
            client.expect(Opcode.READ, 999, 0, WcStatus.REM_ACCESS_ERR);
            assertArrayEquals(before, snapshot(localBuf), "a refused READ copies nothing");
        }
    }

    enum Bad {
        READ_WRONG_KEY, READ_BEYOND_END, READ_STRADDLING_END, READ_BEFORE_START, READ_STALE_KEY, READ_ZERO_KEY,
        WRITE_WRONG_KEY, WRITE_STRADDLING_END, WRITE_BEFORE_START, WRITE_STALE_KEY, WRITE_READ_ONLY,
        READ_LOCAL_ONLY, WRITE_LOCAL_ONLY;

        boolean read() {
            return name().startsWith("READ");
        }
    }

    /** Every bad access fails with REM_ACCESS_ERR, touches no byte on either side, and breaks the connection. */
    @ParameterizedTest
    @EnumSource(Bad.class)
    void badRemoteAccessIsRejectedAndBreaksTheConnection(Bad bad) throws Exception {
        try (Pair p = pair(options(1024, 4, 8))) {
            Recorder client = new Recorder();
            Recorder server = new Recorder();
            p.client().setHandler(client);
            p.server().setHandler(server);
            p.client().start();
            p.server().start();
            int size = 64 * 1024;
            ByteBuffer localBuf = guarded(size, GUARD);
            ByteBuffer remoteBuf = guarded(size, GUARD);
            MemoryRegion local = p.client().register(inner(localBuf, GUARD));
            ByteBuffer remoteView = inner(remoteBuf, GUARD);
            fill(remoteView, 0, size, 4);
            // A read-only registration is writable memory underneath: only the key's access rights refuse the WRITE.
            // A local-only registration is never published: its own key does not let the peer in.
            MemoryRegion remote = bad == Bad.READ_LOCAL_ONLY || bad == Bad.WRITE_LOCAL_ONLY
                    ? p.server().registerLocal(remoteView)
                    : p.server().register(bad == Bad.WRITE_READ_ONLY ? remoteView.asReadOnlyBuffer() : remoteView);
            fill(local.buffer(), 0, size, 3);
            byte[] localBefore = snapshot(localBuf);
            byte[] remoteBefore = snapshot(remoteBuf);
            long addr = remote.address();
            int key = remote.rkey();
            int len = 4096;
            switch (bad) {
                case READ_WRONG_KEY, WRITE_WRONG_KEY -> key ^= 0x10000;
                case READ_ZERO_KEY -> key = 0;
                case READ_BEYOND_END -> addr += size;
                case READ_STRADDLING_END, WRITE_STRADDLING_END -> addr += size - len / 2;
                case READ_BEFORE_START, WRITE_BEFORE_START -> addr -= 8;
                case READ_STALE_KEY, WRITE_STALE_KEY -> p.server().deregister(remote);
                case WRITE_READ_ONLY, READ_LOCAL_ONLY, WRITE_LOCAL_ONLY -> { }
                default -> throw new AssertionError(bad);
            }
            if (bad.read()) {
                p.client().postRead(99, local, 0, len, addr, key);
            } else {
                p.client().postWrite(99, local, 0, len, addr, key);
            }
            client.expect(bad.read() ? Opcode.READ : Opcode.WRITE, 99, 0, WcStatus.REM_ACCESS_ERR);
            FabricException e = assertInstanceOf(FabricException.class, client.awaitDisconnect());
            assertEquals(WcStatus.REM_ACCESS_ERR, e.status());
            assertFalse(p.client().isOpen());
            IOException peer = server.awaitDisconnect();
            assertTrue(peer != null && peer.getMessage().contains("reset"), String.valueOf(peer));
            assertArrayEquals(localBefore, snapshot(localBuf), "local memory untouched");
            assertArrayEquals(remoteBefore, snapshot(remoteBuf), "remote memory untouched");
            assertThrows(IOException.class, () -> p.client().postRead(100, local, 0, 8, remote.address(),
                    remote.rkey()));
            assertEquals(1, client.disconnects.get());
        }
    }

    @Test
    void localRangeIsCheckedBeforeAnything() throws Exception {
        try (Pair p = pair(options(1024, 4, 8))) {
            Recorder client = new Recorder();
            p.client().setHandler(client);
            p.client().start();
            p.server().setHandler(new Recorder());
            p.server().start();
            MemoryRegion local = p.client().register(ByteBuffer.allocateDirect(100));
            MemoryRegion remote = p.server().register(ByteBuffer.allocateDirect(1000));
            FabricException e = assertThrows(FabricException.class,
                    () -> p.client().postRead(1, local, 50, 51, remote.address(), remote.rkey()));
            assertEquals(WcStatus.LOC_PROT_ERR, e.status());
            assertTrue(p.client().isOpen(), "a local error is the poster's fault, not the connection's");
            p.client().postRead(2, local, 0, 100, remote.address() + 900, remote.rkey());
            client.expect(Opcode.READ, 2, 100, WcStatus.SUCCESS);
        }
    }

    private static void assertGuards(ByteBuffer b) {
        for (int i = 0; i < b.capacity(); i++) {
            if (i == GUARD) {
                i = b.capacity() - GUARD;
            }
            assertEquals((byte) 0xA5, b.get(i), "guard byte " + i);
        }
    }
}
