package io.azsdp.fabric.tcp;

import io.azsdp.fabric.Endpoint;
import io.azsdp.fabric.FabricException;
import io.azsdp.fabric.FabricOptions;
import io.azsdp.fabric.MemoryRegion;
import io.azsdp.fabric.Opcode;
import io.azsdp.fabric.WcStatus;
import io.azsdp.fabric.tcp.TcpTestSupport.Completion;
import io.azsdp.fabric.tcp.TcpTestSupport.Guarded;
import io.azsdp.fabric.tcp.TcpTestSupport.Pair;
import io.azsdp.fabric.tcp.TcpTestSupport.Recorder;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import static io.azsdp.fabric.tcp.TcpTestSupport.options;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
class TcpOneSidedTest {
    private static final int REGION = 1 << 20;
    private static final int GUARD = 64;

    private static void fillRandom(ByteBuffer b, long seed) {
        byte[] data = new byte[b.remaining()];
        new Random(seed).nextBytes(data);
        b.duplicate().put(data);
    }

    private static byte[] bytes(ByteBuffer b, int offset, int length) {
        byte[] out = new byte[length];
        b.get(offset, out);
        return out;
    }

    @Test
    void readsAndWritesOfRandomRangesMoveTheRightBytes() throws Exception {
        try (Pair p = new Pair(options(4096))) {
            Guarded remoteMem = new Guarded(REGION, GUARD);
            Guarded localMem = new Guarded(REGION, GUARD);
            MemoryRegion remote = p.server.register(remoteMem.window());
            MemoryRegion local = p.client.register(localMem.window());
            fillRandom(remote.buffer(), 1);
            Random rnd = new Random(7);

            // Pipelined READs into disjoint local slices.
            int reads = 64;
            int slice = REGION / reads;
            int[] remoteOff = new int[reads];
            int[] len = new int[reads];
            for (int i = 0; i < reads; i++) {
                len[i] = i == 0 ? 0 : rnd.nextInt(slice + 1);
                remoteOff[i] = rnd.nextInt(REGION - len[i] + 1);
                p.client.postRead(100 + i, local, i * slice, len[i], remote.address() + remoteOff[i], remote.rkey());
            }
            for (int i = 0; i < reads; i++) {
                assertEquals(new Completion(Opcode.READ, 100 + i, len[i], WcStatus.SUCCESS), p.clientEvents.next());
                assertArrayEquals(bytes(remote.buffer(), remoteOff[i], len[i]),
                        bytes(local.buffer(), i * slice, len[i]), "READ " + i);
            }

            // Pipelined WRITEs of random local ranges to disjoint remote slices.
            fillRandom(local.buffer(), 2);
            int writes = 64;
            for (int i = 0; i < writes; i++) {
                len[i] = rnd.nextInt(slice + 1);
                remoteOff[i] = i * slice + rnd.nextInt(slice - len[i] + 1);
                int localOff = rnd.nextInt(REGION - len[i] + 1);
                p.client.postWrite(500 + i, local, localOff, len[i], remote.address() + remoteOff[i], remote.rkey());
                assertEquals(new Completion(Opcode.WRITE, 500 + i, len[i], WcStatus.SUCCESS), p.clientEvents.next());
                assertArrayEquals(bytes(local.buffer(), localOff, len[i]),
                        bytes(remote.buffer(), remoteOff[i], len[i]), "WRITE " + i);
            }

            // Whole region, both ways, plus interleaved sends: one-sided ops do not disturb the SEND stream.
            MemoryRegion small = p.server.register(ByteBuffer.allocateDirect(64));
            p.server.postRecv(9, small, 0, 64);
            p.client.postWrite(1, local, 0, REGION, remote.address(), remote.rkey());
            p.client.postSend(2, local, 10, 50);
            p.client.postRead(3, local, 0, REGION, remote.address(), remote.rkey());
            // Order is guaranteed per opcode class only: the SEND (writer thread) may complete before or after the
            // WRITE (its response comes through the reader thread); the READ follows the WRITE.
            java.util.List<Completion> got = java.util.List.of(p.clientEvents.next(), p.clientEvents.next(),
                    p.clientEvents.next());
            assertTrue(got.contains(new Completion(Opcode.SEND, 2, 50, WcStatus.SUCCESS)), got::toString);
            java.util.List<Completion> oneSided = got.stream().filter(c -> c.opcode() != Opcode.SEND).toList();
            assertEquals(java.util.List.of(new Completion(Opcode.WRITE, 1, REGION, WcStatus.SUCCESS),
                    new Completion(Opcode.READ, 3, REGION, WcStatus.SUCCESS)), oneSided);
            assertEquals(new Completion(Opcode.RECV, 9, 50, WcStatus.SUCCESS), p.serverEvents.next());
            assertArrayEquals(bytes(local.buffer(), 0, REGION), bytes(remote.buffer(), 0, REGION));

            remoteMem.assertGuardsIntact();
            localMem.assertGuardsIntact();
        }
    }

    /** Both readers serve large READs for each other at once: neither may block writing a response. */
    @Test
    void crossingReadsDoNotDeadlock() throws Exception {
        try (Pair p = new Pair(options(4096))) {
            int len = 4 << 20;
            MemoryRegion a = p.client.register(ByteBuffer.allocateDirect(2 * len));
            MemoryRegion b = p.server.register(ByteBuffer.allocateDirect(2 * len));
            fillRandom(a.buffer().duplicate().limit(len), 3);
            fillRandom(b.buffer().duplicate().limit(len), 4);
            int rounds = 8;
            for (int i = 0; i < rounds; i++) {
                p.client.postRead(i, a, len, len, b.address(), b.rkey());
                p.server.postRead(i, b, len, len, a.address(), a.rkey());
            }
            for (int i = 0; i < rounds; i++) {
                assertEquals(new Completion(Opcode.READ, i, len, WcStatus.SUCCESS), p.clientEvents.next());
                assertEquals(new Completion(Opcode.READ, i, len, WcStatus.SUCCESS), p.serverEvents.next());
            }
            assertArrayEquals(bytes(b.buffer(), 0, len), bytes(a.buffer(), len, len));
            assertArrayEquals(bytes(a.buffer(), 0, len), bytes(b.buffer(), len, len));
        }
    }

    enum BadAccess {
        WRONG_KEY, BEYOND_REGION, STRADDLING_END, STALE_KEY, BAD_ADDRESS, LOCAL_ONLY
    }

    /** Remote region of 4096 bytes inside guards; returns {address, rkey} of the bad access and its length. */
    private static long[] badTarget(BadAccess kind, Endpoint server, MemoryRegion remote) throws IOException {
        return switch (kind) {
            case WRONG_KEY -> new long[] {remote.address(), remote.rkey() ^ 0x100, 16};
            case BEYOND_REGION -> new long[] {remote.address() + 4096, remote.rkey(), 16};
            case STRADDLING_END -> new long[] {remote.address() + 4096 - 8, remote.rkey(), 16};
            case BAD_ADDRESS -> new long[] {0, remote.rkey(), 16};
            case LOCAL_ONLY -> { // the same memory again, for the server's own posts only: its key lets nobody in
                MemoryRegion local = server.registerLocal(remote.buffer().duplicate().clear());
                yield new long[] {local.address(), local.rkey(), 16};
            }
            case STALE_KEY -> {
                server.deregister(remote);
                server.register(ByteBuffer.allocateDirect(4096)); // slot may be reused: the generation must differ
                yield new long[] {remote.address(), remote.rkey(), 16};
            }
        };
    }

    private static boolean postReadOrRefused(Endpoint ep, long wrId, MemoryRegion local, int offset, int length,
                                             long address, int rkey) throws IOException {
        try {
            ep.postRead(wrId, local, offset, length, address, rkey);
            return true;
        } catch (FabricException refused) {
            assertEquals(WcStatus.FLUSH_ERR, refused.status());
            return false;
        }
    }

    @ParameterizedTest
    @EnumSource(BadAccess.class)
    void badReadFailsWithRemoteAccessErrorAndBreaksTheConnection(BadAccess kind) throws Exception {
        // maxRegions = 1 on the server: a stale key's slot is necessarily reused by the new registration
        // (LOCAL_ONLY registers the same memory a second time, so it needs 2).
        FabricOptions serverOptions = new FabricOptions(4096, 8, kind == BadAccess.LOCAL_ONLY ? 2 : 1, 5_000, 5_000);
        try (Pair p = new Pair(options(4096), serverOptions, new Recorder(), new Recorder())) {
            Guarded remoteMem = new Guarded(4096, GUARD);
            Guarded localMem = new Guarded(4096, GUARD);
            MemoryRegion remote = p.server.register(remoteMem.window());
            MemoryRegion local = p.client.register(localMem.window());
            fillRandom(remote.buffer(), 5);
            byte[] remoteBefore = remoteMem.snapshot();
            byte[] localBefore = localMem.snapshot();
            long[] bad = badTarget(kind, p.server, remote);
            if (kind == BadAccess.STALE_KEY) {
                remoteBefore = remoteMem.snapshot();
            }

            p.client.postRead(1, local, 0, 16, remote.address(), remote.rkey()); // stale in the STALE_KEY case
            // Posts behind a failing op either queue (then complete FLUSH_ERR) or, once the failure has come back,
            // are refused: both are allowed by the contract.
            boolean queued2 = postReadOrRefused(p.client, 2, local, 100, (int) bad[2], bad[0], (int) bad[1]);
            boolean queued3 = postReadOrRefused(p.client, 3, local, 200, 16, remote.address(), remote.rkey());

            if (kind == BadAccess.STALE_KEY) {
                assertEquals(new Completion(Opcode.READ, 1, 0, WcStatus.REM_ACCESS_ERR), p.clientEvents.next());
                if (queued2) {
                    assertEquals(new Completion(Opcode.READ, 2, 0, WcStatus.FLUSH_ERR), p.clientEvents.next());
                }
            } else {
                assertTrue(queued2, "nothing failed before READ 2 was posted");
                assertEquals(new Completion(Opcode.READ, 1, 16, WcStatus.SUCCESS), p.clientEvents.next());
                assertEquals(new Completion(Opcode.READ, 2, 0, WcStatus.REM_ACCESS_ERR), p.clientEvents.next());
            }
            if (queued3) {
                assertEquals(new Completion(Opcode.READ, 3, 0, WcStatus.FLUSH_ERR), p.clientEvents.next());
            }

            FabricException cause = assertInstanceOf(FabricException.class, p.clientEvents.awaitDisconnect());
            assertEquals(WcStatus.REM_ACCESS_ERR, cause.status());
            assertFalse(p.client.isOpen());
            assertNotNull(p.serverEvents.awaitDisconnect(), "the responder sees the connection broken");
            assertThrows(FabricException.class, () -> p.client.postRead(4, local, 0, 16, bad[0], (int) bad[1]));

            // Nothing outside the granted ranges moved on either side.
            remoteMem.assertGuardsIntact();
            localMem.assertGuardsIntact();
            assertArrayEquals(remoteBefore, remoteMem.snapshot());
            byte[] localAfter = localMem.snapshot();
            if (kind != BadAccess.STALE_KEY) { // the first, valid READ wrote [GUARD, GUARD + 16)
                System.arraycopy(localAfter, GUARD, localBefore, GUARD, 16);
            }
            assertArrayEquals(localBefore, localAfter);
            p.clientEvents.assertSingleDisconnect();
            p.serverEvents.assertSingleDisconnect();
        }
    }

    @ParameterizedTest
    @EnumSource(value = BadAccess.class, names = {"WRONG_KEY", "BEYOND_REGION", "STRADDLING_END", "BAD_ADDRESS",
            "LOCAL_ONLY"})
    void badWriteTouchesNoMemory(BadAccess kind) throws Exception {
        try (Pair p = new Pair(options(4096))) {
            Guarded remoteMem = new Guarded(4096, GUARD);
            MemoryRegion remote = p.server.register(remoteMem.window());
            MemoryRegion local = p.client.register(ByteBuffer.allocateDirect(8192));
            fillRandom(local.buffer(), 6);
            byte[] before = remoteMem.snapshot();
            long[] bad = badTarget(kind, p.server, remote);

            p.client.postWrite(1, local, 0, (int) bad[2], bad[0], (int) bad[1]);
            // Behind the failure: completes FLUSH_ERR. As with verbs, a flushed op may still have executed remotely
            // (the responder serves it before the requester's reset arrives), so it targets another region.
            MemoryRegion other = p.server.register(ByteBuffer.allocateDirect(64));
            boolean queued2;
            try {
                p.client.postWrite(2, local, 0, 16, other.address(), other.rkey());
                queued2 = true;
            } catch (FabricException refused) {
                queued2 = false;
            }
            assertEquals(new Completion(Opcode.WRITE, 1, 0, WcStatus.REM_ACCESS_ERR), p.clientEvents.next());
            if (queued2) {
                assertEquals(new Completion(Opcode.WRITE, 2, 0, WcStatus.FLUSH_ERR), p.clientEvents.next());
            }
            FabricException cause = assertInstanceOf(FabricException.class, p.clientEvents.awaitDisconnect());
            assertEquals(WcStatus.REM_ACCESS_ERR, cause.status());
            assertNotNull(p.serverEvents.awaitDisconnect());
            assertArrayEquals(before, remoteMem.snapshot(), "target memory and guards unchanged");
        }
    }

    @Test
    void largeBadWriteIsSkippedWithoutTouchingMemory() throws Exception {
        try (Pair p = new Pair(options(4096))) {
            Guarded remoteMem = new Guarded(4096, GUARD);
            MemoryRegion remote = p.server.register(remoteMem.window());
            MemoryRegion local = p.client.register(ByteBuffer.allocateDirect(3 << 20));
            fillRandom(local.buffer(), 8);
            byte[] before = remoteMem.snapshot();
            // 3 MiB aimed at a 4 KiB region: the responder must discard exactly the payload, then answer.
            p.client.postWrite(1, local, 0, 3 << 20, remote.address(), remote.rkey());
            assertEquals(new Completion(Opcode.WRITE, 1, 0, WcStatus.REM_ACCESS_ERR), p.clientEvents.next());
            assertArrayEquals(before, remoteMem.snapshot());
        }
    }

    @Test
    void readOnlyRegionIsAReadSourceOnly() throws Exception {
        try (Pair p = new Pair(options(4096))) {
            Guarded remoteMem = new Guarded(4096, GUARD);
            fillRandom(remoteMem.window(), 9);
            MemoryRegion remote = p.server.register(remoteMem.window().asReadOnlyBuffer());
            MemoryRegion local = p.client.register(ByteBuffer.allocateDirect(8192));
            MemoryRegion localReadOnly = p.client.register(ByteBuffer.allocateDirect(64).asReadOnlyBuffer());
            FabricException refused = assertThrows(FabricException.class,
                    () -> p.client.postRead(9, localReadOnly, 0, 16, remote.address(), remote.rkey()));
            assertEquals(WcStatus.LOC_PROT_ERR, refused.status());
            assertThrows(FabricException.class, () -> p.client.postRecv(9, localReadOnly, 0, 16));
            byte[] before = remoteMem.snapshot();

            p.client.postRead(1, local, 0, 4096, remote.address(), remote.rkey());
            assertEquals(new Completion(Opcode.READ, 1, 4096, WcStatus.SUCCESS), p.clientEvents.next());
            assertArrayEquals(bytes(remote.buffer(), 0, 4096), bytes(local.buffer(), 0, 4096));

            p.client.postWrite(2, local, 4096, 16, remote.address(), remote.rkey());
            assertEquals(new Completion(Opcode.WRITE, 2, 0, WcStatus.REM_ACCESS_ERR), p.clientEvents.next());
            assertArrayEquals(before, remoteMem.snapshot(), "a read-only region is never written");
        }
    }

    @Test
    void keysAreDistinctAcrossRegistrations() throws Exception {
        FabricOptions one = new FabricOptions(4096, 8, 1, 5_000, 5_000);
        try (Pair p = new Pair(one)) {
            int[] keys = new int[50];
            for (int i = 0; i < keys.length; i++) {
                MemoryRegion r = p.client.register(ByteBuffer.allocateDirect(16));
                keys[i] = r.rkey();
                assertNotEquals(0, r.address(), "address 0 is never valid");
                p.client.deregister(r);
            }
            assertEquals(keys.length, Arrays.stream(keys).distinct().count(), "each registration gets a fresh key");
        }
    }
}
