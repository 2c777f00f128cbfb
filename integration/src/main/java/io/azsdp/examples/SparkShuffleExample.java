package io.azsdp.examples;

import io.azsdp.spark.metrics.TransportCounters;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;
import java.util.stream.LongStream;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkEnv;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaSparkContext;
import scala.Tuple2;

/**
 * A Spark job to submit as is with the AZ-SDP shuffle (see the README, "Use with Spark"): it shuffles generated
 * records with groupByKey and sortByKey, checks every result against what the generator implies, and prints Spark's
 * shuffle-read figures and the bytes the executors fetched over AZ-SDP. Exits with status 1 when a check fails.
 *
 * <p>Arguments: [records, default 2000000] [partitions, default 8].
 */
public final class SparkShuffleExample {
    private static final int KEYS = 1000;

    private SparkShuffleExample() {
    }

    public static void main(String[] args) {
        long records = args.length > 0 ? Long.parseLong(args[0]) : 2_000_000L;
        int partitions = args.length > 1 ? Integer.parseInt(args[1]) : 8;
        SparkConf conf = new SparkConf().setAppName("AZ-SDP shuffle example");
        boolean ok;
        try (JavaSparkContext sc = new JavaSparkContext(conf)) {
            ShuffleReadTotals totals = new ShuffleReadTotals();
            sc.sc().addSparkListener(totals);
            System.out.println("shuffle manager: " + conf.get("spark.shuffle.manager", "sort (Spark's default)"));

            List<Integer> slices = new ArrayList<>();
            IntStream.range(0, partitions).forEach(slices::add);
            JavaPairRDD<Long, Long> data = sc.parallelize(slices, partitions).flatMapToPair(p ->
                    LongStream.range(p * records / partitions, (p + 1) * records / partitions)
                            .mapToObj(i -> new Tuple2<>(i % KEYS, i)).iterator());

            long start = System.nanoTime();
            Map<Long, long[]> groups = new HashMap<>();
            data.groupByKey(partitions).mapValues(vs -> {
                long n = 0;
                long sum = 0;
                for (long v : vs) {
                    n++;
                    sum += v;
                }
                return new long[] {n, sum};
            }).collect().forEach(t -> groups.put(t._1(), t._2()));
            ok = checkGroups(groups, records);
            System.out.printf("groupByKey: %s (%d keys) in %.1f s%n", ok ? "OK" : "WRONG", groups.size(),
                    (System.nanoTime() - start) / 1e9);

            start = System.nanoTime();
            // Each sorted partition reports {count, first key, last key, 1 if sorted inside}.
            List<long[]> ranges = data.sortByKey(true, partitions).mapPartitions(it -> {
                long n = 0;
                long first = -1;
                long last = -1;
                long sorted = 1;
                while (it.hasNext()) {
                    long k = it.next()._1();
                    if (n++ == 0) {
                        first = k;
                    } else if (k < last) {
                        sorted = 0;
                    }
                    last = k;
                }
                return List.of(new long[] {n, first, last, sorted}).iterator();
            }).collect();
            boolean sortedOk = checkSorted(ranges, records);
            ok &= sortedOk;
            System.out.printf("sortByKey: %s in %.1f s%n", sortedOk ? "OK" : "WRONG",
                    (System.nanoTime() - start) / 1e9);

            System.out.printf("remote shuffle bytes read (Spark's task metrics): %d%n", totals.remoteBytes.get());
            printTransportCounters(sc);
        }
        System.out.println(ok ? "RESULT OK" : "RESULT WRONG");
        if (!ok) {
            System.exit(1);
        }
    }

    /** Key k holds every i < records with i % KEYS == k: their count and sum follow from the series. */
    private static boolean checkGroups(Map<Long, long[]> groups, long records) {
        for (long k = 0; k < Math.min(KEYS, records); k++) {
            long n = (records - 1 - k) / KEYS + 1;
            long sum = n * k + (long) KEYS * n * (n - 1) / 2;
            long[] got = groups.get(k);
            if (got == null || got[0] != n || got[1] != sum) {
                return false;
            }
        }
        return groups.size() == Math.min(KEYS, records);
    }

    private static boolean checkSorted(List<long[]> ranges, long records) {
        long total = 0;
        long previousLast = -1;
        for (long[] r : ranges) {
            total += r[0];
            if (r[0] == 0) {
                continue;
            }
            if (r[3] != 1 || r[1] < previousLast) {
                return false;
            }
            previousLast = r[2];
        }
        return total == records;
    }

    /** Asks every executor for its AZ-SDP counters (absent when the job runs without the AZ-SDP shuffle). */
    private static void printTransportCounters(JavaSparkContext sc) {
        if (!sc.getConf().get("spark.shuffle.manager", "").endsWith("AzSdpShuffleManager")) {
            return;
        }
        int probes = 4 * Math.max(1, sc.sc().getExecutorMemoryStatus().size());
        List<Integer> slices = new ArrayList<>();
        IntStream.range(0, probes).forEach(slices::add);
        Map<String, TransportCounters.Snapshot> byExecutor = new HashMap<>();
        sc.parallelize(slices, probes)
                .map(x -> new Tuple2<>(SparkEnv.get().executorId(), TransportCounters.snapshot()))
                .collect().forEach(t -> byExecutor.put(t._1(), t._2()));
        long zBytes = 0;
        long zBlocks = 0;
        long bBytes = 0;
        long bBlocks = 0;
        for (TransportCounters.Snapshot s : byExecutor.values()) {
            zBytes += s.zcopyBytes();
            zBlocks += s.zcopyBlocks();
            bBytes += s.bcopyBytes();
            bBlocks += s.bcopyBlocks();
        }
        System.out.printf("AZ-SDP fetched (executors %s): %d bytes zero copy in %d blocks, %d bytes copied in %d "
                + "blocks%n", byExecutor.keySet(), zBytes, zBlocks, bBytes, bBlocks);
    }
}
