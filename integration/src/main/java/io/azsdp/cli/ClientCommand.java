package io.azsdp.cli;

import io.azsdp.cli.bench.Endpoints;
import io.azsdp.cli.bench.Payload;
import io.azsdp.cli.bench.PingPong;
import io.azsdp.cli.bench.Sender;
import io.azsdp.cli.bench.Transport;
import io.azsdp.cli.bench.VerificationException;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** Benchmark client: runs the demo figures against a server and prints one RESULT line per figure. */
@Command(name = "client", mixinStandardHelpOptions = true,
        description = "Measure throughput and latency against 'azsdp server'; one RESULT line per figure.")
final class ClientCommand implements Callable<Integer> {
    @Option(names = "--host", defaultValue = "127.0.0.1", description = "Server address (default: ${DEFAULT-VALUE}).")
    String host;

    @Option(names = "--port", required = true, description = "Server AZ-SDP port.")
    int port;

    @Option(names = "--javatcp-port", required = true, description = "Server plain TCP port.")
    int javaPort;

    @picocli.CommandLine.Mixin
    MeasureOptions measure;

    @Option(names = "--only", split = ",",
            description = "Run only these transports, e.g. shm/zcopy,javatcp/socket (default: all).")
    List<String> only;

    @Option(names = "--sizes", split = ",", defaultValue = "1048576,65536",
            description = "Message sizes for throughput (default: ${DEFAULT-VALUE}).")
    List<Integer> sizes;

    @Option(names = "--no-latency", description = "Skip the latency figures.")
    boolean noLatency;

    static final List<Transport> BW = List.of(new Transport("shm", "bcopy"), new Transport("shm", "zcopy"),
            new Transport("shm", "azsdp"), new Transport("shm", "azsdp-copy"), new Transport("tcp", "bcopy"),
            new Transport("tcp", "auto"), new Transport("tcp", "azsdp"), new Transport("javatcp", "socket"));
    private static final long WARM_UP_NANOS = 1_000_000_000L;
    static final List<Transport> LAT = List.of(new Transport("shm", "bcopy"), new Transport("tcp", "bcopy"),
            new Transport("javatcp", "socket"));

    @Override
    public Integer call() throws Exception {
        StallWatchdog.start();
        Endpoints server = new Endpoints(host, port, javaPort, 0);
        List<String> failures = new ArrayList<>();
        for (int size : sizes) {
            for (Transport t : BW) {
                if (only != null && !only.contains(t.label())) {
                    continue;
                }
                try (Link link = t.open(server)) {
                    Payload p = new Payload(link, size, 1, false);
                    warmUp(link, p, size);
                    Sender s = new Sender(link, p, Math.max(1, measure.bytes / size));
                    try {
                        report(t, "bw", size, s.bytes() / (double) s.stream(0), "GB/s", true, failures);
                    } catch (VerificationException e) {
                        report(t, "bw", size, Double.NaN, "GB/s", false, failures);
                    }
                }
            }
        }
        for (Transport t : LAT) {
            if (noLatency || (only != null && !only.contains(t.label()))) {
                continue;
            }
            try (Link link = t.open(server)) {
                PingPong.run(link, 64, Math.max(1000, measure.iterations / 4)); // warm-up
                try {
                    double p50 = PingPong.run(link, 64, measure.iterations).getValueAtPercentile(50) / 1000.0;
                    report(t, "rtt_p50", 64, p50, "us", true, failures);
                } catch (VerificationException e) {
                    report(t, "rtt_p50", 64, Double.NaN, "us", false, failures);
                }
            }
        }
        if (!failures.isEmpty()) {
            System.err.println("verification FAILED: " + failures);
            return 1;
        }
        return 0;
    }

    /**
     * Streams 64 MiB at a time until {@link #WARM_UP_NANOS} have passed (at least once): the JIT compilers of both
     * JVMs finish with the paths this transport uses before it is measured (64 MiB of 1 MiB messages take a few
     * milliseconds, far less than compiling them).
     */
    private static void warmUp(Link link, Payload p, int size) throws IOException {
        long start = System.nanoTime();
        do {
            new Sender(link, p, Math.max(1, (64L << 20) / size)).stream(0);
        } while (System.nanoTime() - start < WARM_UP_NANOS);
    }

    private static void report(Transport t, String name, int size, double value, String unit, boolean verified,
                               List<String> failures) {
        System.out.printf(Locale.ROOT, "RESULT name=%s fabric=%s mode=%s size=%d value=%.3f unit=%s verified=%b%n",
                name, t.fabric(), t.mode(), size, value, unit, verified);
        System.out.flush();
        if (!verified) {
            failures.add(t.label() + " " + name + " size " + size);
        }
    }
}
