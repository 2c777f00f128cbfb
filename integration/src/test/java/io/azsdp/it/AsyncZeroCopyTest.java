package io.azsdp.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.azsdp.AzSdp;
import io.azsdp.config.AzSdpConfig;
import io.azsdp.fabric.Fabrics;
import io.azsdp.nativeio.NativeLib;
import io.azsdp.sdp.SdpStats;
import io.azsdp.socket.AzSdpSocket;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Arrays;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * AZ-SDP (mode {@code azsdp}) keeps synchronous socket semantics: a write returns at once, the buffer is overwritten
 * at once, and the peer JVM must still receive exactly what the buffer held when write() was called. On shm the
 * buffer's pages are protected (the overwrite waits in the fault handler); on tcp the mode copies.
 */
@Timeout(value = 240, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class AsyncZeroCopyTest {
    private static final int MAX = 4 << 20;

    @AfterEach
    void cleanup() {
        Peer.destroyAll();
    }

    static AzSdpConfig config(String fabric) {
        return AzSdpConfig.global().with(AzSdpConfig.FABRIC, fabric).with(AzSdpConfig.MODE, "azsdp")
                .with(AzSdpConfig.LIVENESS_TIMEOUT_MS, 2000);
    }

    /** Sends the end frame; the sink's VERIFIED or MISMATCH line. */
    static String endAndVerdict(DataOutputStream hdr, Peer sink, int timeoutSeconds) throws Exception {
        hdr.writeInt(-1);
        hdr.writeInt(0);
        return sink.awaitLine(l -> l.startsWith("VERIFIED") || l.startsWith("MISMATCH"), "verdict",
                Duration.ofSeconds(timeoutSeconds));
    }

    /** A buffer from {@link AzSdp#allocate} holding message {@code index}'s pattern. */
    static ByteBuffer patternBuffer(int len, int index) {
        byte[] content = new byte[len];
        PatternSink.fill(content, index, len);
        return AzSdp.allocate(len).put(0, content);
    }

    static void assumeShm() {
        Assumptions.assumeTrue(Fabrics.unavailableReason("shm") == null, "shm fabric unavailable");
    }

    /** Log-uniform sizes from 1 B to 4 MiB: most messages small, many large. */
    static int size(Random r) {
        return (int) Math.min(MAX, Math.max(1, Math.round(Math.exp(r.nextDouble() * Math.log(MAX)))));
    }

    /**
     * With {@code alwaysProtect}, every azsdp-mode write from a direct buffer protects its pages; without it, writes
     * below {@code azsdp.protection.syncBelow} may go synchronously (this stream rewrites every buffer it sends).
     */
    @ParameterizedTest(name = "{0}, {1} messages, gc={2}, alwaysProtect={3}")
    @CsvSource({"shm, 10000, false, true", "shm, 3000, true, true", "shm, 3000, false, false",
        "tcp, 2000, false, true"})
    void overwriteRightAfterWrite(String fabric, int messages, boolean gcStorm, boolean alwaysProtect)
            throws Exception {
        if (fabric.equals("shm")) {
            assumeShm();
        }
        Peer sink = Peer.start("sink-" + fabric, Map.of(), "pattern-sink");
        int port = sink.awaitReady();
        AtomicBoolean stop = new AtomicBoolean();
        Thread gc = new Thread(() -> {
            while (!stop.get()) {
                byte[][] junk = new byte[64][];
                for (int i = 0; i < junk.length; i++) {
                    junk[i] = new byte[64 << 10];
                }
                System.gc();
            }
        }, "gc-storm");
        long faultsBefore = NativeLib.isAvailable() ? NativeLib.protectionFaults() : 0;
        AzSdpConfig cfg = alwaysProtect ? config(fabric).with(AzSdpConfig.PROTECTION_SYNC_BELOW, 0) : config(fabric);
        try (AzSdpSocket s = new AzSdpSocket(cfg)) {
            s.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 10_000);
            if (gcStorm) {
                gc.start();
            }
            DataOutputStream hdr = new DataOutputStream(s.getOutputStream());
            OutputStream out = s.getOutputStream();
            ByteBuffer aligned = AzSdp.allocate(MAX);
            ByteBuffer unalignedBase = ByteBuffer.allocateDirect(MAX + 8192);
            byte[] heap = new byte[MAX];
            byte[] content = new byte[MAX];
            byte[] scribble = new byte[MAX];
            Arrays.fill(scribble, (byte) 0x5A);
            Random r = new Random(42);
            for (int i = 0; i < messages; i++) {
                int len = size(r);
                PatternSink.fill(content, i, len);
                hdr.writeInt(i);
                hdr.writeInt(len);
                switch (r.nextInt(3)) {
                    case 0 -> {
                        ByteBuffer b = aligned.duplicate().clear().limit(len);
                        b.put(0, content, 0, len);
                        s.byteChannel().write(b);
                        b.put(0, scribble, 0, len); // waits on the fault while the peer still reads it
                    }
                    case 1 -> {
                        int off = 1 + r.nextInt(4095);
                        ByteBuffer b = unalignedBase.duplicate().position(off).limit(off + len).slice();
                        b.put(0, content, 0, len);
                        s.byteChannel().write(b);
                        b.put(0, scribble, 0, len);
                    }
                    default -> {
                        System.arraycopy(content, 0, heap, 0, len);
                        out.write(heap, 0, len);
                        System.arraycopy(scribble, 0, heap, 0, len);
                    }
                }
            }
            String verdict = endAndVerdict(hdr, sink, 120);
            assertTrue(verdict.startsWith("VERIFIED messages=" + messages + " "), verdict);
            if (fabric.equals("shm")) {
                assertTrue(s.connection().stats().protectedSends() > 0, "no write was protected");
                assertTrue(NativeLib.protectionFaults() > faultsBefore, "no overwrite ever waited on a fault");
                assertEquals(alwaysProtect, s.connection().stats().protectSkipped() == 0,
                        "writes sent synchronously instead of protected: " + s.connection().stats().protectSkipped());
                // The same figures through JMX, as an operator would read them.
                javax.management.MBeanServer mbs = java.lang.management.ManagementFactory.getPlatformMBeanServer();
                javax.management.ObjectName name = new javax.management.ObjectName("io.azsdp:type=AzSdp");
                assertTrue((Long) mbs.getAttribute(name, "ProtectedSends") >= s.connection().stats().protectedSends());
                long[] hist = (long[]) mbs.getAttribute(name, "FaultWaitHistogram");
                assertTrue(Arrays.stream(hist).sum() >= NativeLib.protectionFaults() - faultsBefore,
                        "fault-wait histogram misses faults: " + Arrays.toString(hist));
            } else {
                assertEquals(0, s.connection().stats().protectedSends(), "tcp must copy, not protect");
            }
            System.out.println(fabric + ": " + s.connection().stats() + ", faults "
                    + (NativeLib.protectionFaults() - faultsBefore));
        } finally {
            stop.set(true);
            gc.join(10_000);
        }
    }

    /**
     * The peer dies while our pages are protected: a store blocked on them is released, the next call throws. The
     * peer dies by itself: were this JVM to kill it, the release would depend on one of our threads, which a
     * safepoint held up by the blocked store could stop (the JVM rule).
     */
    @Test
    void peerKilledWhilePagesAreProtected() throws Exception {
        assumeShm();
        // The sink's clock starts when it stalls; a loaded machine may take seconds to get to the store below, so
        // give it a margin (the check only needs the peer alive for 300 ms after the store began).
        Peer sink = Peer.start("stalled-sink", Map.of(), "pattern-sink", "stall=true", "dieAfterMs=8000");
        int port = sink.awaitReady();
        try (AzSdpSocket s = new AzSdpSocket(config("shm"))) {
            s.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 10_000);
            sink.awaitLine("STALLING", Duration.ofSeconds(10));
            long stalled = System.nanoTime();
            ByteBuffer big = AzSdp.allocate(64 << 20);
            s.byteChannel().write(big.duplicate()); // returns at once; the peer stages 4 MiB and stops
            assertTrue(s.connection().stats().protectedSends() > 0);
            // Timed by the storing thread itself: while it is blocked in the fault handler, a safepoint (this JVM's
            // GC or its periodic cleanup) stops every other Java thread too, so no other thread can look in time.
            AtomicReference<Long> storeNanos = new AtomicReference<>();
            Thread writer = new Thread(() -> {
                long began = System.nanoTime();
                big.put((64 << 20) - 1, (byte) 1); // last page: certainly not read yet
                storeNanos.set(System.nanoTime() - began);
            }, "blocked-writer");
            writer.start();
            writer.join(25_000);
            assertTrue(storeNanos.get() != null, "the blocked store was not released after the peer died");
            assertTrue(storeNanos.get() >= TimeUnit.MILLISECONDS.toNanos(300), () -> "the store did not wait for the "
                    + "transfer: it took " + storeNanos.get() / 1_000_000 + " ms, "
                    + (System.nanoTime() - stalled) / 1_000_000 + " ms after the peer stalled (it dies after 8000)");
            sink.kill(); // reaps it
            assertThrows(IOException.class, () -> {
                for (int i = 0; i < 100; i++) {
                    s.getOutputStream().write(new byte[1 << 16]);
                    Thread.sleep(20);
                }
            });
        }
    }

    /**
     * Lazy unprotect: a buffer from {@link AzSdp#allocate} sent again unchanged after its last send completed finds its
     * pages still read-only (no mprotect); a store into it then faults once, without waiting, and the next send
     * carries the new bytes. Every message is verified by the peer.
     */
    @Test
    void unchangedBufferSentAgainStaysProtected() throws Exception {
        assumeShm();
        Peer sink = Peer.start("sink-linger", Map.of(), "pattern-sink");
        int port = sink.awaitReady();
        int len = 256 << 10;
        int sends = 40;
        try (AzSdpSocket s = new AzSdpSocket(config("shm"))) {
            s.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 10_000);
            DataOutputStream hdr = new DataOutputStream(s.getOutputStream());
            ByteBuffer buf = patternBuffer(len, 0);
            for (int i = 0; i < sends; i++) {
                hdr.writeInt(0); // the same message every time: the buffer is not touched
                hdr.writeInt(len);
                s.byteChannel().write(buf.duplicate());
                Thread.sleep(5); // the peer reads it meanwhile: the send completes and its range lingers
            }
            long reused = s.connection().stats().protectedReused();
            assertTrue(reused >= sends / 2, "sends that found their pages still read-only: " + reused + " of " + sends);

            long faults = NativeLib.protectionFaults();
            long waited = NativeLib.protectionWaitNanos();
            byte[] next = new byte[len];
            PatternSink.fill(next, 1, len);
            buf.put(0, next); // the lingering range is complete: one fault, no wait
            assertEquals(faults + 1, NativeLib.protectionFaults(), "one fault makes the whole range writable");
            assertTrue(NativeLib.protectionWaitNanos() - waited < 100_000_000L, "the store waited for nothing");
            hdr.writeInt(1);
            hdr.writeInt(len);
            s.byteChannel().write(buf.duplicate());
            String verdict = endAndVerdict(hdr, sink, 30);
            assertTrue(verdict.startsWith("VERIFIED messages=" + (sends + 1) + " "), verdict);
        }
    }

    /**
     * A stream that rewrites its buffer before every send finds nothing for lazy unprotect to reuse: below
     * {@code azsdp.protection.syncBelow} it then mostly sends synchronously (no mprotect), trying protection again now
     * and then; with the key at 0 every write is protected. Every message is verified by the peer either way.
     */
    @ParameterizedTest(name = "syncBelow={0}")
    @CsvSource({"-1", "0"})
    void rewrittenBufferGoesSynchronouslyBelowSyncBelow(int syncBelow) throws Exception {
        assumeShm();
        Peer sink = Peer.start("sink-rewrite", Map.of(), "pattern-sink");
        int port = sink.awaitReady();
        int len = 64 << 10;
        int sends = 300;
        AzSdpConfig cfg = syncBelow < 0 ? config("shm") : config("shm").with(AzSdpConfig.PROTECTION_SYNC_BELOW, 0);
        assertEquals(syncBelow < 0 ? 524288 : 0, cfg.protectionSyncBelow("shm"));
        try (AzSdpSocket s = new AzSdpSocket(cfg)) {
            s.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 10_000);
            DataOutputStream hdr = new DataOutputStream(s.getOutputStream());
            ByteBuffer buf = AzSdp.allocate(len);
            byte[] content = new byte[len];
            for (int i = 0; i < sends; i++) {
                PatternSink.fill(content, i, len);
                buf.put(0, content); // a store into pages the last send may still protect
                hdr.writeInt(i);
                hdr.writeInt(len);
                s.byteChannel().write(buf.duplicate());
            }
            String verdict = endAndVerdict(hdr, sink, 60);
            assertTrue(verdict.startsWith("VERIFIED messages=" + sends + " "), verdict);
            SdpStats st = s.connection().stats();
            assertEquals(sends, st.protectedSends() + st.protectSkipped(), st.toString());
            if (syncBelow < 0) {
                // 8 protected, 64 synchronous, 8 protected, 128 synchronous, 8 protected, the rest synchronous.
                assertEquals(24, st.protectedSends(), st.toString());
            } else {
                assertEquals(0, st.protectSkipped(), st.toString());
            }
        }
    }

    /**
     * The same buffer streamed unchanged, back to back with up to 16 sends in flight: each finds its pages read-only
     * under a send in flight or a lingering one (though often no earlier send has completed yet), so every write below
     * {@code azsdp.protection.syncBelow} stays protected. One frame: the sink checks every 64 KiB of it.
     */
    @Test
    void unchangedBufferStreamedStaysProtected() throws Exception {
        assumeShm();
        Peer sink = Peer.start("sink-stream", Map.of(), "pattern-sink", "period=65536");
        int port = sink.awaitReady();
        int len = 64 << 10;
        int sends = 2000;
        try (AzSdpSocket s = new AzSdpSocket(config("shm").with(AzSdpConfig.ZCOPY_MAX_ADVERTS, 16))) {
            s.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 10_000);
            DataOutputStream hdr = new DataOutputStream(s.getOutputStream());
            ByteBuffer buf = patternBuffer(len, 0);
            hdr.writeInt(0);
            hdr.writeInt(sends * len);
            for (int i = 0; i < sends; i++) {
                s.byteChannel().write(buf.duplicate());
            }
            String verdict = endAndVerdict(hdr, sink, 60);
            assertTrue(verdict.startsWith("VERIFIED messages=1 bytes=" + (long) sends * len), verdict);
            SdpStats st = s.connection().stats();
            assertEquals(0, st.protectSkipped(), st.toString());
            assertEquals(sends, st.protectedSends(), st.toString());
        }
    }

    /** A kernel write into a buffer just sent works once {@link AzSdp#awaitReusable} returned. */
    @Test
    void fileReadAfterAwaitReusable() throws Exception {
        assumeShm();
        Peer sink = Peer.start("sink-file", Map.of(), "pattern-sink");
        int port = sink.awaitReady();
        Path file = Files.createTempFile("azsdp", ".bin");
        byte[] data = new byte[1 << 20];
        new Random(5).nextBytes(data);
        Files.write(file, data);
        try (AzSdpSocket s = new AzSdpSocket(config("shm"));
             FileChannel fc = FileChannel.open(file, StandardOpenOption.READ)) {
            s.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 10_000);
            ByteBuffer buf = AzSdp.allocate(1 << 20);
            byte[] content = new byte[1 << 20];
            PatternSink.fill(content, 0, content.length);
            buf.put(0, content);
            DataOutputStream hdr = new DataOutputStream(s.getOutputStream());
            hdr.writeInt(0);
            hdr.writeInt(content.length);
            s.byteChannel().write(buf.duplicate());
            AzSdp.awaitReusable(buf);
            assertEquals(data.length, fc.read(buf.duplicate()), "the kernel could not write the buffer");
            byte[] got = new byte[data.length];
            buf.get(0, got);
            assertTrue(Arrays.equals(data, got));
            String verdict = endAndVerdict(hdr, sink, 30);
            assertTrue(verdict.startsWith("VERIFIED messages=1 "), verdict);
        } finally {
            Files.deleteIfExists(file);
        }
    }
}
