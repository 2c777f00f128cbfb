package io.azsdp.nativeio;

import static java.nio.file.StandardOpenOption.READ;
import static java.nio.file.StandardOpenOption.WRITE;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.net.URL;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.junit.jupiter.api.Test;

class NativeLibTest {

    private static final VarHandle INT = MethodHandles.byteBufferViewVarHandle(int[].class, ByteOrder.nativeOrder());
    private static final long SECOND = TimeUnit.SECONDS.toNanos(1);
    private static final int ESRCH = 3;
    private static final int EBADF = 9;
    private static final int EINVAL = 22;

    // ------------------------------------------------------------ loading and basics

    @Test
    void availableOnThisMachine() {
        assertTrue(NativeLib.isAvailable(), () -> "unavailable: " + NativeLib.unavailableReason());
        assertNull(NativeLib.unavailableReason());
        assertEquals(ProcessHandle.current().pid(), NativeLib.pid());
        int page = NativeLib.pageSize();
        assertTrue(page >= 4096 && Integer.bitCount(page) == 1, "page size " + page);
    }

    @Test
    void directBufferAddress() {
        ByteBuffer direct = ByteBuffer.allocateDirect(4096);
        long address = NativeLib.address(direct);
        assertNotEquals(0, address);
        direct.position(100);
        assertEquals(address, NativeLib.address(direct), "base address, position ignored");
        assertEquals(address, NativeLib.address(direct), "stable");
        assertEquals(address + 16, NativeLib.address(direct.duplicate().position(16).slice()), "a slice starts further");

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> NativeLib.address(ByteBuffer.allocate(16)));
        assertTrue(e.getMessage().contains("direct"), e.getMessage());
    }

    // ------------------------------------------------------------ futex

    @Test
    void bufferCopyMatchesPutAtEverySizeAndOffset() {
        Random random = new Random(42);
        byte[] data = new byte[70_000];
        random.nextBytes(data);
        ByteBuffer src = ByteBuffer.allocateDirect(data.length).put(data).clear();
        // A slice: its address is not the allocation's, and the copy must start at the slice's index 0.
        ByteBuffer srcSlice = src.slice(3, 68_000);
        for (int length : new int[] {0, 1, 1023, 1024, 4096, 65_536}) {
            for (ByteBuffer from : new ByteBuffer[] {src, srcSlice, ByteBuffer.wrap(data)}) {
                int srcIndex = Math.min(5, from.limit() - length);
                ByteBuffer direct = ByteBuffer.allocateDirect(length + 16);
                ByteBuffer heap = ByteBuffer.allocate(length + 16);
                NativeLib.copy(direct, 7, from, srcIndex, length);
                heap.put(7, from, srcIndex, length);
                assertEquals(heap.clear(), direct.clear(), "length " + length + " from " + from);
                assertEquals(0, direct.position(), "positions untouched");
            }
        }
    }

    @Test
    void bufferCopyChecksBoundsAndReadOnlyLikePut() {
        ByteBuffer src = ByteBuffer.allocateDirect(8192);
        ByteBuffer dst = ByteBuffer.allocateDirect(8192);
        assertThrows(IndexOutOfBoundsException.class, () -> NativeLib.copy(dst, 4096, src, 0, 4097));
        assertThrows(IndexOutOfBoundsException.class, () -> NativeLib.copy(dst, 0, src, 4096, 4097));
        assertThrows(IndexOutOfBoundsException.class, () -> NativeLib.copy(dst, -1, src, 0, 2048));
        assertThrows(IndexOutOfBoundsException.class, () -> NativeLib.copy(dst, 0, src.limit(1024), 0, 2048));
        assertThrows(java.nio.ReadOnlyBufferException.class,
                () -> NativeLib.copy(dst.asReadOnlyBuffer(), 0, src.clear(), 0, 2048));
    }

    @Test
    void futexWaitIsWokenByAnotherThread() throws Exception {
        ByteBuffer word = ByteBuffer.allocateDirect(64);
        long address = NativeLib.address(word);
        INT.setVolatile(word, 0, 0);

        AtomicInteger result = new AtomicInteger(Integer.MIN_VALUE);
        Thread waiter = new Thread(() -> result.set(NativeLib.futexWait(address, 0, 0)), "azsdp-futex-waiter");
        waiter.setDaemon(true);
        waiter.start();
        awaitBlockedInFutex(address);

        INT.setVolatile(word, 0, 1);
        assertEquals(1, NativeLib.futexWake(address, 1));
        waiter.join(5_000);
        assertFalse(waiter.isAlive(), "waiter not woken");
        assertEquals(0, result.get());
        assertEquals(0, NativeLib.futexWake(address, Integer.MAX_VALUE), "nobody left to wake");
    }

    /**
     * The waiter and the waker use two different mappings of the same memfd page, as two processes
     * would: only a shared (non-FUTEX_PRIVATE_FLAG) futex, keyed on the page, can find the waiter.
     */
    @Test
    void futexIsSharedAcrossMappingsOfTheSameMemory() throws Exception {
        int size = NativeLib.pageSize();
        int fd = NativeLib.memfdCreate("azsdp-futex-test", size);
        assertTrue(fd >= 0, "memfdCreate: " + fd);
        try (FileChannel c1 = FileChannel.open(Path.of("/proc/self/fd/" + fd), READ, WRITE);
             FileChannel c2 = FileChannel.open(Path.of("/proc/self/fd/" + fd), READ, WRITE)) {
            MappedByteBuffer m1 = c1.map(FileChannel.MapMode.READ_WRITE, 0, size);
            MappedByteBuffer m2 = c2.map(FileChannel.MapMode.READ_WRITE, 0, size);
            long a1 = NativeLib.address(m1) + 128;
            long a2 = NativeLib.address(m2) + 128;
            assertNotEquals(a1, a2);

            AtomicInteger result = new AtomicInteger(Integer.MIN_VALUE);
            Thread waiter = new Thread(() -> result.set(NativeLib.futexWait(a1, 0, 10 * SECOND)), "azsdp-futex-shared");
            waiter.setDaemon(true);
            waiter.start();
            awaitBlockedInFutex(a1);

            INT.setVolatile(m2, 128, 42);
            assertEquals(1, NativeLib.futexWake(a2, 1), "waiter on the other mapping not found");
            waiter.join(5_000);
            assertFalse(waiter.isAlive());
            assertEquals(0, result.get());
            assertEquals(42, (int) INT.getVolatile(m1, 128));
        } finally {
            assertEquals(0, NativeLib.close(fd));
        }
    }

    @Test
    void futexWaitWithWrongExpectedValueReturnsEagainAtOnce() {
        ByteBuffer word = ByteBuffer.allocateDirect(64);
        long address = NativeLib.address(word);
        INT.setVolatile(word, 0, 5);
        long start = System.nanoTime();
        assertEquals(-NativeLib.EAGAIN, NativeLib.futexWait(address, 4, 10 * SECOND));
        assertTrue(System.nanoTime() - start < SECOND / 2, "did not return at once");
        assertEquals(-EINVAL, NativeLib.futexWait(address + 1, 5, SECOND), "unaligned word");
    }

    @Test
    void futexWaitTimesOut() {
        ByteBuffer word = ByteBuffer.allocateDirect(64);
        long address = NativeLib.address(word);
        long timeout = TimeUnit.MILLISECONDS.toNanos(50);
        long start = System.nanoTime();
        int rc = NativeLib.futexWait(address, 0, timeout);
        long elapsed = System.nanoTime() - start;
        assertEquals(-NativeLib.ETIMEDOUT, rc);
        assertTrue(elapsed >= timeout - TimeUnit.MILLISECONDS.toNanos(2), "returned after " + elapsed + " ns");
        assertTrue(elapsed < 5 * SECOND, "returned after " + elapsed + " ns");
    }

    /**
     * Waits until a thread of this process is asleep in futex(address, FUTEX_WAIT), read from
     * /proc/self/task/{tid}/syscall and stat; the state is 'S' only once the waiter is queued, so a
     * wake issued afterwards must find it. Falls back to a plain sleep if /proc does not say.
     */
    private static void awaitBlockedInFutex(long address) throws InterruptedException {
        String prefix = "202 0x" + Long.toHexString(address) + " 0x0 "; // SYS_futex, uaddr, FUTEX_WAIT (shared)
        long deadline = System.nanoTime() + 5 * SECOND;
        while (System.nanoTime() < deadline) {
            try (DirectoryStream<Path> tasks = Files.newDirectoryStream(Path.of("/proc/self/task"))) {
                for (Path task : tasks) {
                    try {
                        if (Files.readString(task.resolve("syscall")).startsWith(prefix)) {
                            String stat = Files.readString(task.resolve("stat"));
                            if (stat.substring(stat.lastIndexOf(')') + 2).startsWith("S")) {
                                return;
                            }
                        }
                    } catch (IOException ignored) {
                        // the task ended meanwhile
                    }
                }
            } catch (IOException e) {
                break;
            }
            Thread.sleep(1);
        }
        Thread.sleep(200);
    }

    // ------------------------------------------------------------ cross-memory attach

    @Test
    void readAndWriteRemoteCopyExactly() {
        int pid = NativeLib.pid();
        int length = (1 << 20) + 13; // several pages, odd length
        byte[] data = new byte[length];
        new Random(42).nextBytes(data);
        ByteBuffer src = ByteBuffer.allocateDirect(length + 64);
        src.position(3).put(data);
        long srcAddress = NativeLib.address(src) + 3; // unaligned on purpose

        ByteBuffer dst = ByteBuffer.allocateDirect(length + 64);
        long dstAddress = NativeLib.address(dst) + 5;
        assertEquals(length, NativeLib.readRemote(pid, dstAddress, srcAddress, length));
        byte[] copy = new byte[length];
        dst.get(5, copy);
        assertArrayEquals(data, copy);
        assertEquals(0, dst.get(4), "nothing written before the destination");
        assertEquals(0, dst.get(5 + length), "nothing written after the destination");

        ByteBuffer dst2 = ByteBuffer.allocateDirect(length);
        assertEquals(length, NativeLib.writeRemote(pid, srcAddress, NativeLib.address(dst2), length));
        byte[] copy2 = new byte[length];
        dst2.get(0, copy2);
        assertArrayEquals(data, copy2);

        assertEquals(0, NativeLib.readRemote(pid, dstAddress, srcAddress, 0));
    }

    @Test
    void badAddressesAndPidsAreErrorsNotCrashes() {
        int pid = NativeLib.pid();
        ByteBuffer buf = ByteBuffer.allocateDirect(8192);
        long address = NativeLib.address(buf);
        assertEquals(-NativeLib.EFAULT, NativeLib.readRemote(pid, address, 8, 4096), "bad remote (read)");
        assertEquals(-NativeLib.EFAULT, NativeLib.writeRemote(pid, address, 8, 16), "bad remote (write)");
        assertEquals(-NativeLib.EFAULT, NativeLib.readRemote(pid, 8, address, 16), "bad local");
        assertEquals(-ESRCH, NativeLib.readRemote(Integer.MAX_VALUE, address, address + 4096, 16), "no such process");
        assertEquals(-EINVAL, NativeLib.readRemote(pid, address, address + 4096, -1), "negative length");
    }

    // ------------------------------------------------------------ memfd

    @Test
    void memfdIsSharedBetweenMappings() throws IOException {
        int size = 2 * NativeLib.pageSize();
        int fd = NativeLib.memfdCreate("azsdp-test", size);
        assertTrue(fd >= 0, "memfdCreate: " + fd);
        Path path = Path.of("/proc/self/fd/" + fd);
        try {
            assertTrue(Files.readSymbolicLink(path).toString().startsWith("/memfd:azsdp-test"),
                    Files.readSymbolicLink(path).toString());
            String flags = Files.readAllLines(Path.of("/proc/self/fdinfo/" + fd)).stream()
                    .filter(l -> l.startsWith("flags:")).findFirst().orElseThrow();
            assertTrue((Integer.parseInt(flags.substring(6).trim(), 8) & 02000000) != 0, "O_CLOEXEC: " + flags);

            try (FileChannel a = FileChannel.open(path, READ, WRITE);
                 FileChannel b = FileChannel.open(path, READ, WRITE)) {
                assertEquals(size, a.size());
                MappedByteBuffer ma = a.map(FileChannel.MapMode.READ_WRITE, 0, size);
                MappedByteBuffer mb = b.map(FileChannel.MapMode.READ_WRITE, 0, size);
                assertNotEquals(NativeLib.address(ma), NativeLib.address(mb));
                ma.putLong(size - 8, 0x1122334455667788L);
                assertEquals(0x1122334455667788L, mb.getLong(size - 8));
                mb.put(0, (byte) 7);
                assertEquals(7, ma.get(0));
            }
        } finally {
            assertEquals(0, NativeLib.close(fd));
        }
        assertEquals(-EBADF, NativeLib.close(fd), "already closed");
        assertEquals(-EINVAL, NativeLib.memfdCreate("azsdp-test", -1), "negative size");
    }

    // ------------------------------------------------------------ overrides and failures (child JVMs)

    /** Entry point of the child JVMs below: reports what NativeLib saw. */
    public static final class Probe {
        public static void main(String[] args) {
            System.out.println("available=" + NativeLib.isAvailable());
            System.out.println("reason=" + NativeLib.unavailableReason());
            try {
                System.out.println("pid=" + NativeLib.pid());
            } catch (IllegalStateException e) {
                System.out.println("ise=" + e.getMessage());
            }
        }
    }

    @Test
    void disabledByProperty() throws Exception {
        Child child = runProbe("-Dazsdp.native.disable=true");
        assertTrue(child.out.contains("available=false"), child.toString());
        assertTrue(child.out.contains("reason=disabled by -Dazsdp.native.disable=true"), child.toString());
        assertTrue(child.out.contains("ise=AZ-SDP native library unavailable: disabled"), child.toString());
        assertEquals(1, child.logLines(), child.toString());
    }

    @Test
    void brokenOverridePathIsReportedOnce() throws Exception {
        Path notElf = Files.createTempFile("azsdp-not-a-library", ".so");
        try {
            Files.writeString(notElf, "not an ELF file");
            Child child = runProbe("-Dazsdp.native.path=" + notElf);
            assertTrue(child.out.contains("available=false"), child.toString());
            assertTrue(child.out.contains("UnsatisfiedLinkError"), child.toString());
            assertTrue(child.err.contains("WARN"), child.toString());
            assertEquals(1, child.logLines(), child.toString());

            child = runProbe("-Dazsdp.native.path=/nonexistent/libazsdp.so");
            assertTrue(child.out.contains("available=false"), child.toString());
            assertTrue(child.out.contains("/nonexistent/libazsdp.so"), child.toString());
            assertEquals(1, child.logLines(), child.toString());
        } finally {
            Files.delete(notElf);
        }
    }

    @Test
    void overridePathIsLoaded() throws Exception {
        URL bundled = NativeLib.class.getResource("/" + NativeLib.RESOURCE);
        assertTrue(bundled != null && bundled.getProtocol().equals("file"), "bundled library: " + bundled);
        Child child = runProbe("-Dazsdp.native.path=" + Path.of(bundled.toURI()));
        assertTrue(child.out.contains("available=true"), child.toString());
        assertTrue(child.out.contains("pid=" + child.pid), child.toString());
        assertEquals(0, child.logLines(), child.toString());
    }

    private record Child(long pid, String out, String err) {
        long logLines() {
            return err.lines().filter(l -> l.contains("AZ-SDP native library unavailable (")).count();
        }
    }

    private static Child runProbe(String... properties) throws Exception {
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.add("-XX:TieredStopAtLevel=1");
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        // Fixed logging set-up, whatever simplelogger.properties the test class path has.
        command.add("-Dorg.slf4j.simpleLogger.defaultLogLevel=info");
        command.add("-Dorg.slf4j.simpleLogger.logFile=System.err");
        command.addAll(List.of(properties));
        command.add(Probe.class.getName());
        Path err = Files.createTempFile("azsdp-probe", ".err");
        try {
            Process process = new ProcessBuilder(command).redirectError(err.toFile()).start();
            String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(process.waitFor(60, TimeUnit.SECONDS), "probe JVM hung");
            String errText = Files.readString(err);
            assertEquals(0, process.exitValue(), "probe JVM failed:\n" + out + errText);
            return new Child(process.pid(), out, errText);
        } finally {
            Files.delete(err);
        }
    }
}
