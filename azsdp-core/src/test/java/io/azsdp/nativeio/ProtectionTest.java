package io.azsdp.nativeio;

import static java.nio.file.StandardOpenOption.READ;
import static java.nio.file.StandardOpenOption.WRITE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.IntSupplier;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Protected memory: mprotect + the SIGSEGV handler of libazsdp (section 8 of azsdp.c).
 *
 * <p>Nothing here may hang. A thread blocked on a protected page holds up every safepoint of this
 * JVM, and {@code @Timeout} cannot interrupt a store blocked in a signal handler, so every range a
 * writer blocks on has a peer process whose death releases it at the latest: the completing child
 * JVM itself, or a {@code sleep} process used as a dead man's switch when the completion comes from
 * this JVM's test thread (which a badly timed safepoint could stall).
 */
@Timeout(60)
class ProtectionTest {

    private static final VarHandle INT = MethodHandles.byteBufferViewVarHandle(int[].class, ByteOrder.nativeOrder());
    private static final long MS = TimeUnit.MILLISECONDS.toNanos(1);
    private static final long SECOND = TimeUnit.SECONDS.toNanos(1);

    private static int page;

    @BeforeAll
    static void installHandler() {
        assertTrue(NativeLib.isAvailable(), () -> "unavailable: " + NativeLib.unavailableReason());
        assertEquals(0, NativeLib.protectionInit(4096));
        assertEquals(0, NativeLib.protectionInit(16), "idempotent");
        page = NativeLib.pageSize();
    }

    // ------------------------------------------------------------ 1. HotSpot's own SIGSEGVs

    @Test
    void hotSpotSignalsStillWorkWithTheHandlerInstalled() throws Exception {
        ProtectionPeer.Churn churn = ProtectionPeer.Churn.begin(); // protection changes racing with HotSpot's faults
        try {
            for (int round = 0; round < 3; round++) {
                assertEquals(200, ProtectionPeer.npeCompiled(200_000, 1000), "compiled implicit null checks");
                assertEquals(5, ProtectionPeer.npeInterpreted(5), "interpreted null checks");
                assertThrows(StackOverflowError.class, () -> ProtectionPeer.recurse(0));
            }
            ProtectionPeer.gcStorm(20);
        } finally {
            assertTrue(churn.finish() > 0, "no protect/release cycle ran");
        }
    }

    // ------------------------------------------------------------ 2. a write blocks until the transfer completes

    /** (a) The completion comes from another process, through a memfd word and a shared futex. */
    @Test
    void writeBlocksUntilAnotherProcessCompletesTheWord() throws Exception {
        int fd = NativeLib.memfdCreate("azsdp-protection-test", page);
        assertTrue(fd >= 0, "memfdCreate: " + fd);
        try (FileChannel channel = FileChannel.open(Path.of("/proc/self/fd/" + fd), READ, WRITE);
             Peer child = Peer.jvm("complete", String.valueOf(NativeLib.pid()), String.valueOf(fd), "200")) {
            MappedByteBuffer shm = channel.map(FileChannel.MapMode.READ_WRITE, 0, page);
            long word = NativeLib.address(shm) + ProtectionPeer.WORD;
            child.await("ready");

            Pages p = Pages.allocate(1);
            p.buf.putInt(0, 7);
            long faults = NativeLib.protectionFaults();
            int id = NativeLib.protect(p.address, page, word, 1, (int) child.pid());
            assertTrue(id >= 0, "protect: " + id);
            assertEquals(7, p.buf.getInt(0), "still readable");
            assertFalse(writable(p.address), "a kernel write into the range fails (EFAULT)");
            assertFalse(NativeLib.isComplete(id));

            // The writer itself tells the child to go, then stores: no other Java thread takes part.
            Writer writer = new Writer(p.buf, 8, 42, () -> {
                INT.setVolatile(shm, ProtectionPeer.GO, 1);
                NativeLib.futexWake(NativeLib.address(shm) + ProtectionPeer.GO, 1);
            }, () -> (int) INT.getVolatile(shm, ProtectionPeer.WORD));
            writer.start();
            writer.finish(10);
            long completing = Long.parseLong(child.await("completing ").substring("completing ".length()));
            assertTrue(writer.end > completing, "the store returned before the child completed the word");
            assertTrue(writer.end - writer.start >= 150 * MS, "blocked only " + (writer.end - writer.start) + " ns");
            assertEquals(1, writer.observed, "completion word when the store returned");
            assertEquals(42, p.buf.getInt(8), "the store took effect");
            assertEquals(7, p.buf.getInt(0));
            assertTrue(NativeLib.protectionFaults() > faults);

            assertTrue(NativeLib.isComplete(id));
            assertTrue(writable(p.address), "the faulting thread made the page writable");
            assertEquals(0, NativeLib.release(id));
            long after = NativeLib.protectionFaults();
            p.buf.putInt(16, 1);
            assertEquals(after, NativeLib.protectionFaults(), "no fault once released");
        } finally {
            assertEquals(0, NativeLib.close(fd));
        }
    }

    /** (b) The failure clean-up path: release() from this JVM's test thread wakes the blocked writer. */
    @Test
    void releaseWakesABlockedWriter() throws Exception {
        try (Peer deadMan = Peer.sleep(60)) {
            Pages p = Pages.allocate(2);
            ByteBuffer words = ByteBuffer.allocateDirect(64);
            int id = NativeLib.protect(p.address, 2L * page, NativeLib.address(words), 1, (int) deadMan.pid());
            assertTrue(id >= 0, "protect: " + id);
            Writer writer = new Writer(p.buf, page + 4, 99, null, null); // second page
            writer.start();
            awaitWaiters(1);
            Thread.sleep(50);
            assertTrue(writer.isAlive(), "the write did not block");
            long released = System.nanoTime();
            assertEquals(0, NativeLib.release(id));
            writer.finish(5);
            assertTrue(writer.end - released < SECOND, "writer woken after " + (writer.end - released) + " ns");
            assertEquals(99, p.buf.getInt(page + 4));
            assertEquals(0, (int) INT.getVolatile(words, 0), "release does not touch the completion word");
            assertTrue(writable(p.address) && writable(p.address + page));
            assertEquals(0, NativeLib.release(id), "idempotent");
            assertTrue(NativeLib.isComplete(id), "a released id is complete");
        }
    }

    /** The peer reported the range read (settle): complete whatever its word says, so a store goes through. */
    @Test
    void aSettledRangeIsCompleteWhateverItsWordSays() throws Exception {
        try (Peer deadMan = Peer.sleep(60)) {
            Pages p = Pages.allocate(1);
            ByteBuffer words = ByteBuffer.allocateDirect(64);
            int id = NativeLib.protect(p.address, page, NativeLib.address(words), 1, (int) deadMan.pid());
            assertTrue(id >= 0, "protect: " + id);
            assertFalse(NativeLib.isComplete(id));
            NativeLib.settle(id);
            assertTrue(NativeLib.isComplete(id), "settled, the word still 0 < target 1");
            assertTrue(NativeLib.isProtected(id) && !writable(p.address), "read-only until a store or release");
            Writer writer = new Writer(p.buf, 4, 42, null, null);
            writer.start();
            writer.finish(5);
            assertEquals(42, p.buf.getInt(4));
            assertFalse(NativeLib.isProtected(id), "retired by the store");
            assertEquals(0, NativeLib.release(id));
            NativeLib.settle(id); // stale: ignored
            assertThrows(IllegalArgumentException.class, () -> NativeLib.settle(-5));

            int next = NativeLib.protect(p.address, page, NativeLib.address(words), 1, (int) deadMan.pid());
            assertFalse(NativeLib.isComplete(next), "a range protected later is not settled");
            assertEquals(0, NativeLib.release(next));
            assertEquals(0, (int) INT.getVolatile(words, 0), "the word is untouched");
        }
    }

    // ------------------------------------------------------------ 3. ranges sharing pages

    @Test
    void aSharedPageStaysProtectedUntilEveryRangeCoveringItIsComplete() throws Exception {
        try (Peer deadMan = Peer.sleep(60)) {
            int peer = (int) deadMan.pid();
            Pages p = Pages.allocate(3);
            ByteBuffer words = ByteBuffer.allocateDirect(64);
            long w = NativeLib.address(words);
            int a = NativeLib.protect(p.address, 2L * page, w, 1, peer);            // pages 0-1
            int b = NativeLib.protect(p.address + page, 2L * page, w + 8, 1, peer); // pages 1-2
            assertTrue(a >= 0 && b >= 0, a + " " + b);

            Writer writer = new Writer(p.buf, page + 8, 5, null, null); // page 1: covered by both
            writer.start();
            awaitWaiters(1);
            // Past its spin it sleeps on a's word, counted in the word after it.
            awaitWord(words, 4, 1, "the sleeping writer counts itself after a's word");

            complete(words, 0, w);
            assertTrue(NativeLib.isComplete(a));
            assertFalse(NativeLib.isComplete(b));
            Thread.sleep(150);
            assertTrue(writer.isAlive(), "page 1 unprotected while range b is still in flight");
            assertEquals(1, NativeLib.protectionWaiters());
            awaitWord(words, 4, 0, "no longer asleep on a's word");
            awaitWord(words, 12, 1, "asleep on b's word now");

            // Page 0 is covered by a only, which is complete: a write there goes through (it faults
            // once, retires a) and leaves page 1 protected.
            p.buf.putInt(4, 3);
            assertTrue(writable(p.address));
            assertFalse(writable(p.address + page));
            assertFalse(writable(p.address + 2L * page));
            assertTrue(writer.isAlive());

            long completed = System.nanoTime();
            complete(words, 8, w + 8);
            writer.finish(5);
            assertTrue(writer.end - completed < SECOND);
            assertEquals(0, (int) INT.getVolatile(words, 12), "nobody asleep any more");
            assertEquals(5, p.buf.getInt(page + 8));
            assertTrue(writable(p.address + page) && writable(p.address + 2L * page), "all pages writable");
            assertEquals(0, NativeLib.release(a));
            assertEquals(0, NativeLib.release(b));

            // The same page twice, released one at a time (no faults: kernel writes probe it).
            int x = NativeLib.protect(p.address, page, w + 16, 1, 0);
            int y = NativeLib.protect(p.address, page, w + 16, 1, 0);
            assertTrue(x >= 0 && y >= 0 && x != y, x + " " + y);
            assertTrue((x & NativeLib.CHANGED_PAGES) != 0, "the first made the page read-only");
            assertEquals(0, y & NativeLib.CHANGED_PAGES, "the second found it read-only under the first");
            assertFalse(writable(p.address));
            assertEquals(0, NativeLib.release(x));
            assertFalse(writable(p.address), "y still covers the page");
            assertEquals(0, NativeLib.release(y));
            assertTrue(writable(p.address));

            // A range inside a protected one (no mprotect of its own): releasing the outer one first leaves the
            // inner one's page protected.
            int outer = NativeLib.protect(p.address, 3L * page, w + 24, 1, 0);
            int inner = NativeLib.protect(p.address + page, page, w + 24, 1, 0);
            assertTrue(outer >= 0 && inner >= 0, outer + " " + inner);
            assertEquals(0, inner & NativeLib.CHANGED_PAGES, "inside a protected range");
            assertEquals(0, NativeLib.release(outer & ~NativeLib.CHANGED_PAGES), "an id without the bit works too");
            assertTrue(writable(p.address) && writable(p.address + 2L * page));
            assertFalse(writable(p.address + page), "the inner range still covers page 1");
            assertEquals(0, NativeLib.release(inner));
            assertTrue(writable(p.address + page));
        }
    }

    // ------------------------------------------------------------ 4. peer death

    @Test
    void peerDeathReleasesTheWriter() throws Exception {
        try (Peer peer = Peer.sleep(30)) {
            Pages p = Pages.allocate(1);
            ByteBuffer words = ByteBuffer.allocateDirect(64);
            int id = NativeLib.protect(p.address, page, NativeLib.address(words), 1, (int) peer.pid());
            assertTrue(id >= 0, "protect: " + id);
            Writer writer = new Writer(p.buf, 0, 77, null, null);
            writer.start();
            awaitWaiters(1);
            assertFalse(NativeLib.isComplete(id));

            long killed = System.nanoTime();
            peer.process.destroyForcibly();
            writer.finish(5);
            long latency = writer.end - killed;
            assertTrue(latency < SECOND, "released " + latency / MS + " ms after the peer's death");
            assertEquals(77, p.buf.getInt(0));
            assertTrue(NativeLib.isComplete(id), "peer dead: complete");
            assertEquals(0, NativeLib.awaitRange(id, 0));
            assertEquals(0, NativeLib.release(id));
        }
    }

    // ------------------------------------------------------------ 5. safepoints while a thread is blocked

    @Test
    void gcWhileAWriterIsBlockedCompletesOnceTheChildCompletes() throws Exception {
        int fd = NativeLib.memfdCreate("azsdp-protection-gc", page);
        assertTrue(fd >= 0, "memfdCreate: " + fd);
        try (FileChannel channel = FileChannel.open(Path.of("/proc/self/fd/" + fd), READ, WRITE);
             Peer child = Peer.jvm("complete", String.valueOf(NativeLib.pid()), String.valueOf(fd), "300")) {
            MappedByteBuffer shm = channel.map(FileChannel.MapMode.READ_WRITE, 0, page);
            long word = NativeLib.address(shm) + ProtectionPeer.WORD;
            child.await("ready");

            // Warm the store up so that the blocked store is (likely) in JIT-compiled code this time.
            Pages p = Pages.allocate(1);
            for (int i = 0; i < 100_000; i++) {
                store(p.buf, (i & 63) * 4, i);
            }
            int id = NativeLib.protect(p.address, page, word, 1, (int) child.pid());
            assertTrue(id >= 0, "protect: " + id);
            Writer writer = new Writer(p.buf, 0, 4242, () -> {
                INT.setVolatile(shm, ProtectionPeer.GO, 1);
                NativeLib.futexWake(NativeLib.address(shm) + ProtectionPeer.GO, 1);
            }, () -> (int) INT.getVolatile(shm, ProtectionPeer.WORD));
            writer.start();
            awaitWaiters(1);

            long[] gcEnd = {0};
            Thread gc = new Thread(() -> {
                System.gc();
                gcEnd[0] = System.nanoTime();
                List<byte[]> garbage = new ArrayList<>();
                for (int i = 0; i < 2000; i++) {
                    garbage.add(new byte[64 * 1024]);
                    if (garbage.size() > 100) {
                        garbage.clear();
                    }
                }
            }, "azsdp-gc-caller");
            Thread allocator = new Thread(() -> {
                long sum = 0;
                for (int i = 0; i < 20_000; i++) {
                    sum += new long[256].length;
                }
                assertTrue(sum > 0);
            }, "azsdp-allocator");
            gc.setDaemon(true);
            allocator.setDaemon(true);
            gc.start();
            allocator.start();

            writer.finish(15);
            gc.join(15_000);
            allocator.join(15_000);
            assertFalse(gc.isAlive() || allocator.isAlive(), "GC / allocation never finished");
            long completing = Long.parseLong(child.await("completing ").substring("completing ".length()));
            assertEquals(1, writer.observed);
            assertEquals(4242, p.buf.getInt(0));
            // System.gc() needs a safepoint, which waits for the blocked writer ("in Java" for HotSpot).
            assertTrue(gcEnd[0] > completing, "System.gc() returned before the blocked writer was released");
            assertEquals(0, NativeLib.release(id));
        } finally {
            assertEquals(0, NativeLib.close(fd));
        }
    }

    private static void store(ByteBuffer buf, int index, int value) {
        buf.putInt(index, value);
    }

    // ------------------------------------------------------------ 6. errors, queries, counters

    @Test
    void invalidArguments() {
        Pages p = Pages.allocate(2);
        ByteBuffer words = ByteBuffer.allocateDirect(64);
        long w = NativeLib.address(words);
        int einval = -NativeLib.EINVAL;
        assertEquals(einval, NativeLib.protect(p.address + 1, page, w, 1, 0), "unaligned address");
        assertEquals(einval, NativeLib.protect(p.address + 64, page, w, 1, 0), "unaligned address");
        assertEquals(einval, NativeLib.protect(p.address, page - 1, w, 1, 0), "unaligned length");
        assertEquals(einval, NativeLib.protect(p.address, page + 8, w, 1, 0), "unaligned length");
        assertEquals(einval, NativeLib.protect(p.address, 0, w, 1, 0), "empty");
        assertEquals(einval, NativeLib.protect(p.address, -page, w, 1, 0), "negative length");
        assertEquals(einval, NativeLib.protect(-(long) page, page, w, 1, 0), "negative address");
        assertEquals(einval, NativeLib.protect(p.address, page, w + 2, 1, 0), "unaligned word");
        assertEquals(einval, NativeLib.protect(p.address, page, 0, 1, 0), "null word");
        assertEquals(einval, NativeLib.protect(p.address, page, w, 1, -1), "negative pid");
        assertEquals(-NativeLib.EFAULT, NativeLib.protect(p.address, page, 8, 1, 0), "unreadable word");
        assertEquals(-12 /* ENOMEM */, NativeLib.protect(page, page, w, 1, 0), "unmapped memory");
        assertTrue(writable(p.address) && writable(p.address + page), "nothing left protected");

        assertEquals(einval, NativeLib.release(-1));
        assertEquals(einval, NativeLib.release(0xffff), "index beyond the capacity");
        assertEquals(einval, NativeLib.awaitRange(-1, MS));
        assertThrows(IllegalArgumentException.class, () -> NativeLib.isComplete(-5));
        assertEquals(einval, NativeLib.protectionInit(0));
        assertEquals(einval, NativeLib.protectionInit(1 << 17));
    }

    @Test
    void tableFull() {
        Pages p = Pages.allocate(1);
        ByteBuffer words = ByteBuffer.allocateDirect(64);
        long w = NativeLib.address(words);
        List<Integer> ids = new ArrayList<>();
        int rc;
        while ((rc = NativeLib.protect(p.address, page, w, 1, 0)) >= 0) {
            ids.add(rc);
            assertTrue(ids.size() <= 1 << 16, "never full");
        }
        try {
            assertEquals(-NativeLib.ENOSPC, rc);
            assertTrue(ids.size() > 1000, "capacity " + ids.size());
            assertEquals(ids.size(), ids.stream().distinct().count(), "ids are unique");
            assertEquals(0, NativeLib.release(ids.remove(ids.size() / 2)));
            int again = NativeLib.protect(p.address, page, w, 1, 0);
            assertTrue(again >= 0, "a released slot is reused: " + again);
            ids.add(again);
            assertEquals(-NativeLib.ENOSPC, NativeLib.protect(p.address, page, w, 1, 0));
            assertFalse(writable(p.address));
        } finally {
            for (int id : ids) {
                assertEquals(0, NativeLib.release(id));
            }
        }
        assertTrue(writable(p.address));
    }

    @Test
    void isCompleteAndAwaitRange() throws Exception {
        Pages p = Pages.allocate(1);
        ByteBuffer words = ByteBuffer.allocateDirect(64);
        long w = NativeLib.address(words);

        int id = NativeLib.protect(p.address, page, w, 2, 0);
        assertTrue(id >= 0, "protect: " + id);
        assertFalse(NativeLib.isComplete(id));
        long start = System.nanoTime();
        assertEquals(-NativeLib.ETIMEDOUT, NativeLib.awaitRange(id, 60 * MS));
        long waited = System.nanoTime() - start;
        assertTrue(waited >= 55 * MS && waited < 2 * SECOND, "waited " + waited);
        INT.setVolatile(words, 0, 1);
        assertFalse(NativeLib.isComplete(id), "1 < target 2");

        Thread completer = new Thread(() -> {
            sleep(100);
            INT.setVolatile(words, 0, 2);
            NativeLib.futexWake(w, Integer.MAX_VALUE);
        });
        completer.start();
        start = System.nanoTime();
        assertEquals(0, NativeLib.awaitRange(id, 5 * SECOND));
        waited = System.nanoTime() - start;
        assertTrue(waited >= 80 * MS && waited < 2 * SECOND, "waited " + waited);
        completer.join();
        assertTrue(NativeLib.isComplete(id));
        assertFalse(writable(p.address), "complete but not retired: still protected until a write or release");
        assertTrue(NativeLib.isProtected(id));
        p.buf.put(0, (byte) 7); // faults once; the range is complete, so the handler makes it writable at once
        assertTrue(writable(p.address));
        assertFalse(NativeLib.isProtected(id), "retired by the store");
        assertEquals(0, NativeLib.release(id));
        assertFalse(NativeLib.isProtected(id), "released");
        assertTrue(NativeLib.isComplete(id));
        assertEquals(0, NativeLib.awaitRange(id, 0), "released");

        // Wrap-around: complete when (int) (word - target) >= 0.
        INT.setVolatile(words, 8, Integer.MAX_VALUE);
        int wrap = NativeLib.protect(p.address, page, w + 8, Integer.MIN_VALUE, 0);
        assertFalse(NativeLib.isComplete(wrap), "MAX_VALUE is one short of MIN_VALUE");
        INT.setVolatile(words, 8, Integer.MIN_VALUE);
        assertTrue(NativeLib.isComplete(wrap));
        assertEquals(0, NativeLib.release(wrap));

        // release() wakes awaitRange.
        int waitedOn = NativeLib.protect(p.address, page, w + 16, 1, 0);
        Thread releaser = new Thread(() -> {
            sleep(100);
            NativeLib.release(waitedOn);
        });
        releaser.start();
        start = System.nanoTime();
        assertEquals(0, NativeLib.awaitRange(waitedOn, 0));
        assertTrue(System.nanoTime() - start < SECOND);
        releaser.join();
        assertTrue(writable(p.address));
    }

    @Test
    void counters() throws Exception {
        try (Peer peer = Peer.sleep(0.4)) { // completes (dies) on its own: no Java thread involved
            Pages p = Pages.allocate(1);
            ByteBuffer words = ByteBuffer.allocateDirect(64);
            long faults = NativeLib.protectionFaults();
            long waitNanos = NativeLib.protectionWaitNanos();
            assertEquals(0, NativeLib.protectionWaiters());
            assertEquals(0, NativeLib.protectionOldestWaitStart());

            int id = NativeLib.protect(p.address, page, NativeLib.address(words), 1, (int) peer.pid());
            assertTrue(id >= 0, "protect: " + id);
            long before = System.nanoTime();
            Writer writer = new Writer(p.buf, 0, 1, null, null);
            writer.start();
            awaitWaiters(1);
            long oldest = NativeLib.protectionOldestWaitStart();
            assertTrue(oldest >= before && oldest <= System.nanoTime(), "oldest wait start " + oldest + " vs " + before);
            writer.finish(10);

            assertTrue(NativeLib.protectionFaults() >= faults + 1, "faults");
            long waited = NativeLib.protectionWaitNanos() - waitNanos;
            assertTrue(waited > 0 && waited >= (writer.end - writer.start) / 2, "wait nanos " + waited);
            assertEquals(0, NativeLib.protectionWaiters());
            assertEquals(0, NativeLib.protectionOldestWaitStart());
            assertEquals(0, NativeLib.release(id));
        }
    }

    // ------------------------------------------------------------ HotSpot with other signal set-ups (child JVMs)

    /**
     * The handler under -Xcheck:jni (HotSpot checks its signal handlers periodically and complains
     * once) and with libjsig preloaded (sigaction() after JVM start is intercepted: our handler
     * becomes a chained handler HotSpot calls for faults it does not recognise).
     */
    @Test
    void childJvmsWithCheckJniAndLibjsig() throws Exception {
        Path libjsig = Path.of(System.getProperty("java.home"), "lib", "libjsig.so");
        List<List<String>> setups = new ArrayList<>();
        setups.add(List.of("-Xcheck:jni"));
        if (Files.exists(libjsig)) {
            setups.add(List.of("LD_PRELOAD=" + libjsig));
        }
        for (List<String> setup : setups) {
            List<String> jvmOptions = new ArrayList<>();
            String preload = null;
            for (String s : setup) {
                if (s.startsWith("LD_PRELOAD=")) {
                    preload = s.substring("LD_PRELOAD=".length());
                } else {
                    jvmOptions.add(s);
                }
            }
            try (Peer child = Peer.jvm(jvmOptions, preload, "selfcheck")) {
                assertTrue(child.process.waitFor(30, TimeUnit.SECONDS), setup + ": child hung\n" + child.output());
                child.drain();
                String out = child.output();
                assertEquals(0, child.process.exitValue(), setup + ": child failed\n" + out);
                assertTrue(out.contains("init=0") && out.contains("npe=200+5") && out.contains("soe=3")
                        && out.contains("value=42") && out.contains("ok faults="), setup + "\n" + out);
                System.out.println("[" + String.join(" ", setup) + "] child JVM said:\n" + out);
            }
        }
    }

    // ------------------------------------------------------------ helpers

    /** Whole pages of direct memory: {@code buf} starts at the page-aligned {@code address}. */
    private record Pages(ByteBuffer buf, long address) {
        static Pages allocate(int pages) {
            ByteBuffer raw = ByteBuffer.allocateDirect((pages + 1) * page);
            long base = NativeLib.address(raw);
            long aligned = (base + page - 1) & -page;
            int offset = (int) (aligned - base);
            ByteBuffer buf = raw.position(offset).limit(offset + pages * page).slice().order(ByteOrder.nativeOrder());
            assertEquals(aligned, NativeLib.address(buf));
            return new Pages(buf, aligned);
        }
    }

    /**
     * Probes whether the kernel may write the byte at {@code address}, without faulting: copies it
     * onto itself with process_vm_writev, which fails with EFAULT on a read-only page. Only for
     * memory nobody else writes meanwhile.
     */
    private static boolean writable(long address) {
        long rc = NativeLib.writeRemote(NativeLib.pid(), address, address, 1);
        if (rc != 1 && rc != -NativeLib.EFAULT) {
            fail("writeRemote: " + rc);
        }
        return rc == 1;
    }

    private static void complete(ByteBuffer words, int offset, long address) {
        INT.getAndAdd(words, offset, 1);
        NativeLib.futexWake(address, Integer.MAX_VALUE);
    }

    /** Waits (at most 5 s) for the int at {@code offset} to hold {@code expected}: a thread gets there by itself. */
    private static void awaitWord(ByteBuffer words, int offset, int expected, String what) throws InterruptedException {
        long deadline = System.nanoTime() + 5 * SECOND;
        while ((int) INT.getVolatile(words, offset) != expected && System.nanoTime() < deadline) {
            Thread.sleep(1);
        }
        assertEquals(expected, (int) INT.getVolatile(words, offset), what);
    }

    private static void awaitWaiters(int n) throws InterruptedException {
        long deadline = System.nanoTime() + 5 * SECOND;
        while (NativeLib.protectionWaiters() < n) {
            if (System.nanoTime() > deadline) {
                fail("no thread blocked on a protected page (waiters " + NativeLib.protectionWaiters() + ")");
            }
            Thread.sleep(1);
        }
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** A thread doing one store; records when it started and returned. */
    private static final class Writer extends Thread {
        private final ByteBuffer buf;
        private final int index;
        private final int value;
        private final Runnable before;
        private final IntSupplier after;
        volatile long start;
        volatile long end;
        volatile int observed;
        private volatile Throwable failure;

        Writer(ByteBuffer buf, int index, int value, Runnable before, IntSupplier after) {
            super("azsdp-protected-writer");
            this.buf = buf;
            this.index = index;
            this.value = value;
            this.before = before;
            this.after = after;
            setDaemon(true);
        }

        @Override
        public void run() {
            try {
                if (before != null) {
                    before.run();
                }
                start = System.nanoTime();
                store(buf, index, value);
                end = System.nanoTime();
                if (after != null) {
                    observed = after.getAsInt();
                }
            } catch (Throwable t) {
                failure = t;
            }
        }

        void finish(int seconds) throws InterruptedException {
            join(seconds * 1000L);
            assertFalse(isAlive(), "the writer is still blocked");
            if (failure != null) {
                throw new AssertionError("writer failed", failure);
            }
        }
    }

    /** A child process: a JVM running {@link ProtectionPeer}, or {@code sleep}. */
    private static final class Peer implements AutoCloseable {
        final Process process;
        private final BlockingQueue<String> lines = new LinkedBlockingQueue<>();
        private final StringBuffer output = new StringBuffer();
        private final Thread reader;

        private Peer(ProcessBuilder builder) throws IOException {
            process = builder.redirectErrorStream(true).start();
            reader = new Thread(() -> {
                try (BufferedReader in = new BufferedReader(
                        new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                    String line;
                    while ((line = in.readLine()) != null) {
                        output.append(line).append('\n');
                        lines.add(line);
                    }
                } catch (IOException ignored) {
                    // the process was killed
                }
            }, "azsdp-peer-reader");
            reader.setDaemon(true);
            reader.start();
        }

        static Peer jvm(String... args) throws IOException {
            return jvm(List.of("-XX:TieredStopAtLevel=1"), null, args);
        }

        static Peer jvm(List<String> jvmOptions, String preload, String... args) throws IOException {
            List<String> command = new ArrayList<>();
            command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
            command.add("-Xmx64m");
            command.addAll(jvmOptions);
            command.add("-cp");
            command.add(System.getProperty("java.class.path"));
            command.add(ProtectionPeer.class.getName());
            command.addAll(List.of(args));
            ProcessBuilder builder = new ProcessBuilder(command);
            if (preload != null) {
                builder.environment().put("LD_PRELOAD", preload);
            }
            return new Peer(builder);
        }

        static Peer sleep(double seconds) throws IOException {
            return new Peer(new ProcessBuilder("sleep", String.valueOf(seconds)));
        }

        long pid() {
            return process.pid();
        }

        String await(String prefix) throws InterruptedException {
            long deadline = System.nanoTime() + 30 * SECOND;
            while (System.nanoTime() < deadline) {
                String line = lines.poll(100, TimeUnit.MILLISECONDS);
                if (line != null && line.startsWith(prefix)) {
                    return line;
                }
                if (line == null && !process.isAlive() && lines.isEmpty() && !reader.isAlive()) {
                    break;
                }
            }
            fail("peer did not say '" + prefix + "'; it said:\n" + output);
            return null;
        }

        void drain() throws InterruptedException {
            reader.join(5_000);
        }

        String output() {
            return output.toString();
        }

        @Override
        public void close() throws InterruptedException {
            process.destroyForcibly();
            assertTrue(process.waitFor(10, TimeUnit.SECONDS), "child did not die");
        }
    }
}
