package io.azsdp.cli.micro;

import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.ChainedOptionsBuilder;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;
import org.openjdk.jmh.runner.options.VerboseMode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code azsdp micro}: JMH microbenchmarks of a receiver's per-byte work ({@link ReceiverWork}) and of a sender's
 * page protection ({@link SenderWork}) in a forked JVM, reported in GB/s per message size. {@code docs/BENCHMARKS.md}
 * compares the suite's figures with them.
 */
@Command(name = "micro", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"JMH microbenchmarks, one thread, no transport: copy between direct buffers, CRC32C, and "
                + "both in turn (what a receiving thread of 'azsdp bench' does per message), and protecting then "
                + "releasing a buffer's pages (what an AZ-SDP send of fresh pages costs its sender). Prints GB/s per "
                + "size."})
public final class MicroCommand implements Callable<Integer> {
    @Option(names = "--sizes", split = ",", description = "Message sizes in bytes (default: 16K to 4M).")
    List<Integer> sizes;

    @Option(names = "--iterations", defaultValue = "5",
            description = "Measured iterations of one second each (default: ${DEFAULT-VALUE}).")
    int iterations;

    @Option(names = "--warmup-iterations", defaultValue = "3",
            description = "Warm-up iterations of one second each before them (default: ${DEFAULT-VALUE}).")
    int warmups;

    @Override
    public Integer call() throws RunnerException {
        ChainedOptionsBuilder opt = new OptionsBuilder().include(ReceiverWork.class.getName() + "\\.")
                .include(SenderWork.class.getName() + "\\.")
                .forks(1).warmupIterations(warmups).warmupTime(TimeValue.seconds(1))
                .measurementIterations(iterations).measurementTime(TimeValue.seconds(1))
                .verbosity(VerboseMode.SILENT);
        if (sizes != null) {
            opt.param("size", sizes.stream().map(String::valueOf).toArray(String[]::new));
        }
        Collection<RunResult> results = new Runner(opt.build()).run();
        Map<Integer, Map<String, Double>> gbps = new TreeMap<>();
        for (RunResult r : results) {
            String bench = r.getParams().getBenchmark();
            String name = bench.substring(bench.lastIndexOf('.') + 1);
            int size = Integer.parseInt(r.getParams().getParam("size"));
            double value = r.getPrimaryResult().getScore() * size / 1e9;
            gbps.computeIfAbsent(size, k -> new TreeMap<>()).put(name, value);
            System.out.printf("RESULT test=micro_%s fabric=none mode=java size=%d conns=1 value=%.2f unit=GB/s%n",
                    name, size, value);
        }
        List<String> columns = List.of("copy", "crc32c", "copyThenCrc32c", "protectThenRelease");
        System.out.println();
        System.out.println("GB/s, one thread:");
        System.out.println("| size | " + String.join(" | ", columns) + " |");
        System.out.println("|---|" + "---|".repeat(columns.size()));
        gbps.forEach((size, row) -> {
            StringBuilder line = new StringBuilder("| " + size + " |");
            for (String c : columns) {
                line.append(String.format(" %.1f |", row.get(c)));
            }
            System.out.println(line);
        });
        return 0;
    }
}
