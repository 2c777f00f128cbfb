package io.azsdp.nativeio;

import static java.nio.file.StandardOpenOption.READ;
import static java.nio.file.StandardOpenOption.WRITE;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Child-JVM side of {@link ProtectionTest}, plus the HotSpot-signal workloads both JVMs run.
 *
 * <ul>
 *   <li>{@code complete <pid> <fd> <delayMs>}: maps memfd {@code fd} of process {@code pid} (through
 *       /proc), prints {@code ready}, waits for the GO word (offset {@value #GO}) to become non-zero,
 *       sleeps {@code delayMs}, prints {@code completing <nanoTime>}, increments the completion word
 *       (offset {@value #WORD}) and futex-wakes it, prints {@code completed}; then waits for stdin to
 *       close. It is the "remote peer whose one-sided READ completes": the parent's release does not
 *       depend on any of the parent's Java threads.
 *   <li>{@code selfcheck}: installs the handler and runs the signal workloads and one blocked write
 *       (released by the death of a short-lived peer process) in this JVM, for runs under
 *       {@code -Xcheck:jni} or libjsig; prints {@code ok ...} at the end.
 * </ul>
 */
public final class ProtectionPeer {

    static final int WORD = 0;
    static final int GO = 64;
    private static final VarHandle INT = MethodHandles.byteBufferViewVarHandle(int[].class, ByteOrder.nativeOrder());

    private ProtectionPeer() {
    }

    public static void main(String[] args) throws Exception {
        switch (args[0]) {
            case "complete" -> complete(Long.parseLong(args[1]), Integer.parseInt(args[2]), Long.parseLong(args[3]));
            case "selfcheck" -> selfcheck();
            default -> throw new IllegalArgumentException(args[0]);
        }
    }

    private static void complete(long pid, int fd, long delayMillis) throws Exception {
        try (FileChannel channel = FileChannel.open(Path.of("/proc/" + pid + "/fd/" + fd), READ, WRITE)) {
            MappedByteBuffer shm = channel.map(FileChannel.MapMode.READ_WRITE, 0, NativeLib.pageSize());
            long base = NativeLib.address(shm);
            System.out.println("ready");
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while ((int) INT.getVolatile(shm, GO) == 0) {
                if (System.nanoTime() > deadline) {
                    System.out.println("no go");
                    System.exit(2);
                }
                NativeLib.futexWait(base + GO, 0, TimeUnit.MILLISECONDS.toNanos(100));
            }
            Thread.sleep(delayMillis);
            System.out.println("completing " + System.nanoTime());
            INT.getAndAdd(shm, WORD, 1);
            NativeLib.futexWake(base + WORD, Integer.MAX_VALUE);
            System.out.println("completed");
            while (System.in.read() >= 0) {
                // until the parent closes our stdin or kills us
            }
        }
    }

    private static void selfcheck() throws Exception {
        System.out.println("init=" + NativeLib.protectionInit(64));
        Churn churn = Churn.begin();
        try {
            System.out.println("npe=" + npeCompiled(200_000, 1000) + "+" + npeInterpreted(5));
            for (int i = 0; i < 3; i++) {
                try {
                    recurse(0);
                    throw new AssertionError("no StackOverflowError");
                } catch (StackOverflowError expected) {
                    // fine
                }
            }
            System.out.println("soe=3");
            gcStorm(10);
        } finally {
            System.out.println("churn=" + churn.finish());
        }

        int page = NativeLib.pageSize();
        ByteBuffer raw = ByteBuffer.allocateDirect(2 * page);
        long base = NativeLib.address(raw);
        long aligned = (base + page - 1) & -page;
        int offset = (int) (aligned - base);
        ByteBuffer word = ByteBuffer.allocateDirect(64);
        Process peer = new ProcessBuilder("sleep", "0.3").start();
        int id = NativeLib.protect(aligned, page, NativeLib.address(word), 1, (int) peer.pid());
        if (id < 0) {
            throw new AssertionError("protect: " + id);
        }
        long start = System.nanoTime();
        raw.putInt(offset, 42); // blocks until the peer exits (and is reaped)
        long blocked = System.nanoTime() - start;
        NativeLib.release(id);
        System.out.println("blocked_ms=" + TimeUnit.NANOSECONDS.toMillis(blocked) + " value=" + raw.getInt(offset));
        System.out.println("ok faults=" + NativeLib.protectionFaults());
    }

    // ------------------------------------------------------------ HotSpot signal workloads

    static final class Box {
        int x = 1;
    }

    private static int sink;

    private static int getX(Box box) {
        return box.x; // implicit null check: a SIGSEGV at address 0xc when box is null
    }

    /** Warms getX up until compiled, then feeds it a null every {@code nullEvery} calls. @return NPEs caught */
    static int npeCompiled(int iterations, int nullEvery) {
        Box box = new Box();
        int sum = 0;
        for (int i = 0; i < iterations; i++) {
            sum += getX(box);
        }
        int npes = 0;
        for (int i = 0; i < iterations; i++) {
            try {
                sum += getX(i % nullEvery == nullEvery - 1 ? null : box);
            } catch (NullPointerException e) {
                npes++;
            }
        }
        sink += sum;
        return npes;
    }

    private static int getXOnce(Box box) {
        return box.x;
    }

    /** Null field accesses in a method never run before, i.e. interpreted. @return NPEs caught */
    static int npeInterpreted(int times) {
        int npes = 0;
        for (int i = 0; i < times; i++) {
            try {
                sink += getXOnce(null);
            } catch (NullPointerException e) {
                npes++;
            }
        }
        return npes;
    }

    static int recurse(int depth) {
        return recurse(depth + 1) + 1;
    }

    /**
     * {@code rounds} System.gc() calls with allocation, while another thread spins in a compiled
     * loop (so that every safepoint arms its poll page: a SIGSEGV per safepoint).
     */
    static void gcStorm(int rounds) throws InterruptedException {
        AtomicBoolean stop = new AtomicBoolean();
        Thread spinner = new Thread(() -> {
            long n = 0;
            while (!stop.get()) {
                n++;
            }
            sink += (int) n;
        }, "azsdp-gc-spinner");
        spinner.setDaemon(true);
        spinner.start();
        List<byte[]> keep = new ArrayList<>();
        for (int i = 0; i < rounds; i++) {
            for (int j = 0; j < 64; j++) {
                keep.add(new byte[16 * 1024]);
            }
            System.gc();
            if (keep.size() > 256) {
                keep.clear();
            }
        }
        stop.set(true);
        spinner.join(10_000);
        if (spinner.isAlive()) {
            throw new AssertionError("spinner did not stop");
        }
    }

    /**
     * Protects and releases a page in a loop on another thread, so that the handler's "a
     * protection change raced with us" paths are exercised while HotSpot's own faults go through.
     */
    static final class Churn extends Thread {
        private volatile boolean stop;
        private volatile long cycles;
        private volatile String failure;

        static Churn begin() {
            Churn churn = new Churn();
            churn.setDaemon(true);
            churn.start();
            return churn;
        }

        private Churn() {
            super("azsdp-protect-churn");
        }

        @Override
        public void run() {
            int page = NativeLib.pageSize();
            ByteBuffer raw = ByteBuffer.allocateDirect(3 * page);
            long aligned = (NativeLib.address(raw) + page - 1) & -page;
            ByteBuffer word = ByteBuffer.allocateDirect(64);
            long wordAddress = NativeLib.address(word);
            long n = 0;
            while (!stop) {
                int a = NativeLib.protect(aligned, page, wordAddress, 1, 0);
                int b = NativeLib.protect(aligned, 2L * page, wordAddress, 1, 0);
                if (a < 0 || b < 0 || NativeLib.release(a) != 0 || NativeLib.release(b) != 0) {
                    failure = "protect/release: " + a + " " + b;
                    return;
                }
                n++;
            }
            cycles = n;
        }

        /** @return the number of protect/release cycles done */
        long finish() throws InterruptedException {
            stop = true;
            join(10_000);
            if (isAlive() || failure != null) {
                throw new AssertionError("churn: " + (isAlive() ? "still running" : failure));
            }
            return cycles;
        }
    }
}
