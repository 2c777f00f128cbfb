package io.azsdp.cli;

import io.azsdp.config.AzSdpConfig;
import io.azsdp.socket.AzSdpSocket;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
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
            description = "Run only these transports, e.g. shm/zcopy,javatcp (default: all).")
    List<String> only;

    @Option(names = "--sizes", split = ",", defaultValue = "1048576,65536",
            description = "Message sizes for throughput (default: ${DEFAULT-VALUE}).")
    List<Integer> sizes;

    @Option(names = "--no-latency", description = "Skip the latency figures.")
    boolean noLatency;

    /** One transport configuration: fabric and mode, or the plain Java TCP baseline. */
    record Transport(String fabric, String mode) {
        boolean javaTcp() {
            return fabric.equals("javatcp");
        }

        String key() {
            return javaTcp() ? fabric : fabric + "/" + mode;
        }
    }

    static final List<Transport> BW = List.of(new Transport("shm", "bcopy"), new Transport("shm", "zcopy"),
            new Transport("shm", "azsdp"), new Transport("shm", "azsdp-copy"), new Transport("tcp", "bcopy"),
            new Transport("tcp", "auto"), new Transport("tcp", "azsdp"), new Transport("javatcp", "-"));
    static final List<Transport> LAT = List.of(new Transport("shm", "bcopy"), new Transport("tcp", "bcopy"),
            new Transport("javatcp", "-"));

    @Override
    public Integer call() throws Exception {
        StallWatchdog.start();
        List<String> failures = new ArrayList<>();
        for (int size : sizes) {
            for (Transport t : BW) {
                if (only != null && !only.contains(t.key())) {
                    continue;
                }
                try (Link link = Link.of(open(t))) {
                    PerfSession.bandwidth(link, size, Math.max(1, (64L << 20) / size)); // warm-up
                    report(t, size, PerfSession.bandwidth(link, size, Math.max(1, measure.bytes / size)), failures);
                }
            }
        }
        for (Transport t : LAT) {
            if (noLatency || (only != null && !only.contains(t.key()))) {
                continue;
            }
            try (Link link = Link.of(open(t))) {
                PerfSession.latency(link, 64, Math.max(1000, measure.iterations / 4)); // warm-up
                report(t, 64, PerfSession.latency(link, 64, measure.iterations), failures);
            }
        }
        if (!failures.isEmpty()) {
            System.err.println("verification FAILED: " + failures);
            return 1;
        }
        return 0;
    }

    private Socket open(Transport t) throws IOException {
        if (t.javaTcp()) {
            return new Socket(host, javaPort);
        }
        // "azsdp-copy": asynchronous mode with staging copies instead of page protection
        boolean copy = t.mode().endsWith("-copy");
        AzSdpSocket s = new AzSdpSocket(AzSdpConfig.global().with(AzSdpConfig.FABRIC, t.fabric())
                .with(AzSdpConfig.MODE, copy ? "azsdp" : t.mode())
                .with(AzSdpConfig.PROTECTION, copy ? "copy" : "mprotect"));
        s.connect(new InetSocketAddress(host, port), 10_000);
        return s;
    }

    private static void report(Transport t, int size, PerfSession.Figure f, List<String> failures) {
        System.out.printf(Locale.ROOT, "RESULT name=%s fabric=%s mode=%s size=%d value=%.3f unit=%s verified=%b%n",
                f.name(), t.fabric(), t.mode(), size, f.value(), f.unit(), f.verified());
        System.out.flush();
        if (!f.verified()) {
            failures.add(t + " " + f.name() + " size " + size);
        }
    }
}
