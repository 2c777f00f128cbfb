package io.azsdp.cli.bench;

import io.azsdp.cli.Jvm;
import io.azsdp.cli.ServerCommand;
import java.nio.file.Path;
import java.time.Duration;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code azsdp bench}: the benchmark suite (latency, bw, bibw, overlap, multiconn, reuse) over every fabric and mode
 * and the plain Java TCP baselines. Locally it starts a server JVM and measures from this one; across machines run
 * {@code --server host:port} on one and {@code --connect host:port} on the other.
 */
@Command(name = "bench", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Benchmark AZ-SDP fabrics and modes against plain Java TCP (socket streams and NIO).",
            "Prints one 'RESULT test=.. fabric=.. mode=.. size=.. conns=.. value=.. unit=..' line per verified figure "
                + "(FAILED lines for the others), tables and ratios; writes CSV, JSON, summary.md and PNG charts. "
                + "Exits 1 when any figure failed or did not verify."})
public final class BenchCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--tests", split = ",", description = "Tests to run (default: all): ${DEFAULT-VALUE}.",
            defaultValue = "latency,bw,bibw,overlap,multiconn,reuse")
    List<String> tests;

    @Option(names = "--quick", description = "Fewer sizes, bytes and iterations: the whole suite in under 3 minutes.")
    boolean quick;

    @Option(names = "--fabrics", split = ",", defaultValue = "shm,tcp,javatcp",
            description = "Fabrics (default: ${DEFAULT-VALUE}); javatcp = the plain Java TCP baselines.")
    List<String> fabrics;

    @Option(names = "--modes", split = ",", defaultValue = "bcopy,zcopy,azsdp,auto,socket,nio",
            description = "Modes (default: ${DEFAULT-VALUE}); socket and nio apply to javatcp, the others to shm and "
                    + "tcp (azsdp-copy: asynchronous with staging copies). The suffix -heap (auto-heap, nio-heap) "
                    + "gives a mode heap arrays at both ends, as most Spark and Hadoop code passes.")
    List<String> modes;

    @Option(names = "--sizes", split = ",",
            description = "Message sizes in bytes for every size-swept test (default: per test, fewer with --quick).")
    List<Integer> sizes;

    @Option(names = "--bytes", description = "Most bytes per throughput figure (default: 2 GiB, 128 MiB with --quick).")
    Long bytes;

    @Option(names = "--seconds", description = "Target duration of a throughput figure (default: 1, 0.25 with --quick).")
    Double seconds;

    @Option(names = "--rounds", description = "Rounds of each stream and overlap figure (bw, bibw, overlap), "
            + "interleaved across transports; the median is reported (default: 5, 1 with --quick).")
    Integer rounds;

    @Option(names = "--iterations", description = "Round trips per latency figure (default: 10000, 1000 with --quick).")
    Integer iterations;

    @Option(names = "--verify", defaultValue = "crc32c",
            description = "What the receivers check of throughput figures: crc32c (default: the CRC32C of every byte, "
                    + "a pass over the data after it arrived, in the timed loop) or bytes (the byte count only: the "
                    + "transport's own throughput, as netperf or ib_read_bw measure it).")
    Verify verify;

    /** How throughput figures are verified. */
    enum Verify { crc32c, bytes }

    @Option(names = "--conns", split = ",", defaultValue = "1,2,4,8,16",
            description = "Connection counts of multiconn (default: ${DEFAULT-VALUE}).")
    List<Integer> conns;

    @Option(names = "--multiconn-size", defaultValue = "65536",
            description = "Message size of multiconn (default: ${DEFAULT-VALUE}).")
    int multiconnSize;

    @Option(names = "--figure-timeout", defaultValue = "60",
            description = "Seconds before a figure is aborted and recorded as failed (default: ${DEFAULT-VALUE}).")
    int figureTimeout;

    @Option(names = "--out", description = "Output directory (default: bench-results/<timestamp>).")
    Path out;

    @ArgGroup
    Remote remote;

    /** Across machines: one side serves, the other connects. */
    static final class Remote {
        @Option(names = "--server", description = "Only serve, on host:port (baselines on port+1 and port+2).")
        String server;

        @Option(names = "--connect", description = "Measure against a 'bench --server' at host:port.")
        String connect;
    }

    @Override
    public Integer call() throws Exception {
        if (remote != null && remote.server != null) {
            Endpoints e = Endpoints.parse(remote.server);
            ServerCommand.serve(e.host(), e.azsdp(), e.javatcp(), e.nio());
            return 0;
        }
        for (String t : tests) {
            if (!Plan.TESTS.contains(t)) {
                throw new picocli.CommandLine.ParameterException(spec.commandLine(),
                        "unknown test '" + t + "'; tests: " + Plan.TESTS);
            }
        }
        List<Transport> transports = Transport.select(fabrics, modes);
        if (transports.isEmpty()) {
            throw new picocli.CommandLine.ParameterException(spec.commandLine(), "no transport in " + fabrics + " x "
                    + modes);
        }
        Plan plan = Plan.of(quick, tests, transports, sizes, conns, multiconnSize, bytes, seconds, rounds, iterations,
                verify == Verify.crc32c, Duration.ofSeconds(figureTimeout));
        Path dir = out != null ? out
                : Path.of("bench-results", LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss")));
        if (remote != null) {
            return measure(plan, Endpoints.parse(remote.connect), dir);
        }
        Process server = Jvm.spawn("server", "--bind", "127.0.0.1");
        try {
            int[] ports = Jvm.awaitReady(server, Jvm.reader(server));
            System.out.println("server JVM pid " + server.pid() + ", client JVM pid " + ProcessHandle.current().pid());
            return measure(plan, new Endpoints("127.0.0.1", ports[0], ports[1], ports[2]), dir);
        } finally {
            server.destroy();
            server.waitFor(5, TimeUnit.SECONDS);
        }
    }

    private int measure(Plan plan, Endpoints server, Path dir) throws Exception {
        FigureRunner runner;
        try (Connections connections = new Connections(server)) {
            runner = new FigureRunner(plan.timeout(), connections);
            new Suite(plan, connections, runner).run();
        }
        // the parse result's original arguments start with the subcommand's name
        String command = "bin/azsdp " + String.join(" ", spec.commandLine().getParseResult().originalArgs());
        new Report(command, runner.figures(), plan.multiconnSize(), plan.checksum()).write(dir);
        if (!runner.allOk()) {
            System.err.println("bench: " + runner.figures().stream().filter(f -> !f.ok()).count()
                    + " figure(s) FAILED (see the FAILED lines)");
            return 1;
        }
        return 0;
    }
}
