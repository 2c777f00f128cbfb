package io.azsdp.cli;

import java.io.BufferedReader;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import picocli.CommandLine.Command;

/**
 * The main demo: a server JVM and a client JVM on this host move data over the shm fabric (BCopy and ZCopy), over the
 * tcp fabric and over plain Java TCP, verify checksums, and print a table plus the client's RESULT lines.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "Start a server JVM and a client JVM, compare AZ-SDP fabrics and modes with plain Java TCP.")
final class DemoCommand implements Callable<Integer> {
    private static final Pattern RESULT = Pattern.compile(
            "RESULT name=(\\S+) fabric=(\\S+) mode=(\\S+) size=(\\d+) value=(\\S+) unit=(\\S+) verified=(\\S+)");

    @picocli.CommandLine.Mixin
    MeasureOptions measure;

    @Override
    public Integer call() throws Exception {
        Process server = Jvm.spawn("server");
        try {
            int[] ports = Jvm.awaitReady(server, Jvm.reader(server));
            System.out.println("server JVM pid " + server.pid() + ": azsdp port " + ports[0] + ", javatcp port "
                    + ports[1]);
            Process client = Jvm.spawn("client", "--port", Integer.toString(ports[0]), "--javatcp-port",
                    Integer.toString(ports[1]), "--bytes", Long.toString(measure.bytes), "--iterations",
                    Integer.toString(measure.iterations));
            System.out.println("client JVM pid " + client.pid() + ": measuring...");
            List<String[]> rows = new ArrayList<>();
            BufferedReader cout = Jvm.reader(client);
            for (String l; (l = cout.readLine()) != null; ) {
                Matcher r = RESULT.matcher(l);
                if (r.find()) {
                    rows.add(new String[] {r.group(1), r.group(2), r.group(3), r.group(4), r.group(5), r.group(6),
                        r.group(7)});
                }
                System.out.println(l);
            }
            int rc = client.waitFor();
            printTable(rows);
            return rc;
        } finally {
            server.destroy();
            server.waitFor(5, TimeUnit.SECONDS);
        }
    }

    private static void printTable(List<String[]> rows) {
        System.out.println();
        System.out.printf("%-8s %-8s %-10s %10s %12s %-5s %s%n", "test", "fabric", "mode", "size", "value", "unit",
                "verified");
        Map<String, Double> byKey = new HashMap<>();
        for (String[] r : rows) {
            System.out.printf(Locale.ROOT, "%-8s %-8s %-10s %10s %12s %-5s %s%n", (Object[]) r);
            byKey.put(r[0] + "/" + r[1] + "/" + r[2] + "/" + r[3], Double.parseDouble(r[4]));
        }
        Double javaTcp = byKey.get("bw/javatcp/socket/1048576");
        if (javaTcp != null) {
            System.out.println();
            for (String k : new String[] {"bw/shm/azsdp/1048576", "bw/shm/azsdp-copy/1048576", "bw/shm/zcopy/1048576",
                "bw/shm/bcopy/1048576",
                "bw/tcp/azsdp/1048576", "bw/tcp/auto/1048576"}) {
                Double v = byKey.get(k);
                if (v != null) {
                    System.out.printf(Locale.ROOT, "%-26s %.2fx plain Java TCP at 1 MiB messages%n", k, v / javaTcp);
                }
            }
        }
    }
}
