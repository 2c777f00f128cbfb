package io.azsdp.examples;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.IntStream;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.storage.StorageLevel;
import scala.Tuple2;

/**
 * Shuffle benchmark: {@code megabytes} of incompressible records (an int key, a byte[] value) shuffled by groupByKey
 * and by sortByKey; prints one {@code RESULT} line per operation with the job time, the time reduce tasks spent
 * blocked on fetches (Spark's shuffle fetch-wait metric) and the remote bytes read. Compare transports by running it
 * with different {@code spark.shuffle.manager} settings (docs/BENCHMARKS.md).
 *
 * <p>Arguments: [label] [megabytes, default 256] [partitions, default 8] [value bytes, default 1000].
 */
public final class SparkShuffleBench {
    private static final int KEYS = 4096;

    private SparkShuffleBench() {
    }

    public static void main(String[] args) {
        String label = args.length > 0 ? args[0] : "run";
        long megabytes = args.length > 1 ? Long.parseLong(args[1]) : 256;
        int partitions = args.length > 2 ? Integer.parseInt(args[2]) : 8;
        int valueBytes = args.length > 3 ? Integer.parseInt(args[3]) : 1000;
        long records = megabytes * 1024 * 1024 / valueBytes;
        boolean ok = true;
        try (JavaSparkContext sc = new JavaSparkContext(new SparkConf().setAppName("AZ-SDP shuffle bench " + label))) {
            ShuffleReadTotals totals = new ShuffleReadTotals();
            sc.sc().addSparkListener(totals);
            AtomicLong fetchWaitMs = totals.fetchWaitMs;
            AtomicLong remoteBytes = totals.remoteBytes;
            List<Integer> slices = new ArrayList<>();
            IntStream.range(0, partitions).forEach(slices::add);
            JavaPairRDD<Integer, byte[]> data = sc.parallelize(slices, partitions).flatMapToPair(p -> {
                SplittableRandom random = new SplittableRandom(p);
                long from = p * records / partitions;
                long to = (p + 1) * records / partitions;
                return java.util.stream.LongStream.range(from, to).mapToObj(i -> {
                    byte[] v = new byte[valueBytes];
                    random.nextBytes(v);
                    return new Tuple2<>((int) (i % KEYS), v);
                }).iterator();
            }).persist(StorageLevel.MEMORY_AND_DISK());
            long count = data.count();

            long[] before = {fetchWaitMs.get(), remoteBytes.get()};
            long start = System.nanoTime();
            long grouped = data.groupByKey(partitions).mapValues(vs -> {
                long n = 0;
                for (byte[] v : vs) {
                    n += v.length;
                }
                return n;
            }).values().reduce(Long::sum);
            ok &= grouped == count * valueBytes;
            report(label, "groupByKey", start, before, fetchWaitMs, remoteBytes, grouped == count * valueBytes);

            before = new long[] {fetchWaitMs.get(), remoteBytes.get()};
            start = System.nanoTime();
            long sorted = data.sortByKey(true, partitions).mapPartitions(it -> {
                long n = 0;
                int last = Integer.MIN_VALUE;
                boolean inOrder = true;
                while (it.hasNext()) {
                    int k = it.next()._1();
                    inOrder &= k >= last;
                    last = k;
                    n++;
                }
                return List.of(inOrder ? n : -1L).iterator();
            }).reduce(Long::sum);
            ok &= sorted == count;
            report(label, "sortByKey", start, before, fetchWaitMs, remoteBytes, sorted == count);
        }
        if (!ok) {
            System.exit(1);
        }
    }

    private static void report(String label, String op, long startNanos, long[] before, AtomicLong fetchWaitMs,
                               AtomicLong remoteBytes, boolean verified) {
        long jobMs = (System.nanoTime() - startNanos) / 1_000_000;
        try {
            Thread.sleep(1000); // task-end events reach the listener asynchronously
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        System.out.printf("RESULT transport=%s op=%s job_ms=%d fetch_wait_ms=%d remote_mb=%.1f verified=%s%n", label,
                op, jobMs, fetchWaitMs.get() - before[0], (remoteBytes.get() - before[1]) / 1048576.0, verified);
    }
}
