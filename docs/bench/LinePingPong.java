import java.util.concurrent.atomic.AtomicLongArray;

/**
 * The round trip of one cache line between two threads, ns: each stores a counter the other waits for, on lines of
 * their own. On a 2-vCPU guest it tells where the host placed the two vCPUs at that moment (close: about 120 ns; apart:
 * about 500 ns), which sets the shm round trip (docs/BENCHMARKS-HISTORY.md, session 24). Three rounds of a million.
 *
 * <pre>
 * java docs/bench/LinePingPong.java
 * </pre>
 */
public final class LinePingPong {
    private static final int N = 1_000_000;
    /** Index 0 and 16: 128 bytes apart, two lines of their own (and not adjacent-line prefetch partners). */
    private static final int PING = 0;
    private static final int PONG = 16;

    public static void main(String[] args) throws Exception {
        for (int round = 0; round < 3; round++) {
            AtomicLongArray w = new AtomicLongArray(32);
            Thread pong = new Thread(() -> {
                for (long i = 1; i <= N; i++) {
                    while (w.getAcquire(PING) != i) {
                        Thread.onSpinWait();
                    }
                    w.setRelease(PONG, i);
                }
            });
            pong.start();
            long start = System.nanoTime();
            for (long i = 1; i <= N; i++) {
                w.setRelease(PING, i);
                while (w.getAcquire(PONG) != i) {
                    Thread.onSpinWait();
                }
            }
            long ns = System.nanoTime() - start;
            pong.join();
            System.out.printf("cache line round trip: %.1f ns%n", (double) ns / N);
        }
    }
}
