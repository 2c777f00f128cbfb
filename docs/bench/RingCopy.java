import io.azsdp.nativeio.NativeLib;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Two threads, a ring of 16 slots in direct memory: one copies each message into a slot, the other copies it out, as
 * shm BCopy's sender and receiver do on two cores. Compares the JVM's copy (ByteBuffer.put) with memcpy through the
 * native library (NativeLib.copy) on both sides, and memcpy into the ring with the JVM's copy out of it into a heap
 * array (what a read into a byte[] does), side by side, three rounds each. docs/BENCHMARKS-HISTORY.md, session 18.
 * Run from the repository after a build:
 * {@code java -cp integration/target/azsdp-standalone.jar docs/bench/RingCopy.java 16384 65536}
 */
public final class RingCopy {
    private static final int SLOTS = 16;
    private static final long BYTES = 4L << 30;

    public static void main(String[] args) throws InterruptedException {
        if (!NativeLib.isAvailable()) {
            throw new IllegalStateException("native library unavailable: " + NativeLib.unavailableReason());
        }
        for (String arg : args) {
            int size = Integer.parseInt(arg);
            for (int round = 1; round <= 3; round++) {
                double jvm = run(size, false, false);
                double memcpy = run(size, true, true);
                double heapOut = run(size, true, false);
                System.out.printf("%d B, round %d: JVM copy %.2f GB/s, memcpy %.2f GB/s (%.2fx), memcpy in and JVM"
                        + " copy out to a heap array %.2f GB/s%n", size, round, jvm, memcpy, memcpy / jvm, heapOut);
            }
        }
    }

    private static double run(int size, boolean memcpyIn, boolean memcpyOut) throws InterruptedException {
        ByteBuffer ring = ByteBuffer.allocateDirect(SLOTS * size);
        ByteBuffer src = ByteBuffer.allocateDirect(size);
        ByteBuffer dst = ByteBuffer.allocateDirect(size);
        byte[] heap = new byte[size];
        long ringAddress = NativeLib.address(ring);
        long srcAddress = NativeLib.address(src);
        long dstAddress = NativeLib.address(dst);
        long count = BYTES / size;
        AtomicLong written = new AtomicLong();
        AtomicLong read = new AtomicLong();
        Thread reader = new Thread(() -> {
            for (long k = 0; k < count; k++) {
                while (written.get() <= k) {
                    Thread.onSpinWait();
                }
                int at = (int) (k % SLOTS) * size;
                if (memcpyOut) {
                    NativeLib.copy(dstAddress, ringAddress + at, size);
                } else if (memcpyIn) {
                    ring.get(at, heap, 0, size);
                } else {
                    dst.put(0, ring, at, size);
                }
                read.lazySet(k + 1);
            }
        });
        reader.start();
        long start = System.nanoTime();
        for (long k = 0; k < count; k++) {
            while (k - read.get() >= SLOTS) {
                Thread.onSpinWait();
            }
            int at = (int) (k % SLOTS) * size;
            if (memcpyIn) {
                NativeLib.copy(ringAddress + at, srcAddress, size);
            } else {
                ring.put(at, src, 0, size);
            }
            written.lazySet(k + 1);
        }
        reader.join();
        return (double) count * size / (System.nanoTime() - start);
    }
}
