import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Per-thread CPU time and context switches of the running AZ-SDP JVMs over a window, busiest first: how often each
 * thread slept and woke (voluntary switches) and how often it was preempted (involuntary). Linux only; reads /proc.
 *
 * <pre>
 * java -jar integration/target/azsdp-standalone.jar bench --tests=overlap --fabrics=shm --modes=azsdp \
 *     --sizes=65536 --rounds=5 --seconds=20 &amp;
 * sleep 10; java docs/bench/ThreadSwitches.java 6
 * </pre>
 */
public final class ThreadSwitches {
    /** CPU ticks (user + system), voluntary and involuntary switches, and the thread's name. */
    private record Sample(String name, long ticks, long voluntary, long involuntary) {
    }

    /** One thread's share of the window. */
    private record Row(long ticks, long voluntary, long involuntary, String pid, String name) {
    }

    public static void main(String[] args) throws Exception {
        double seconds = args.length > 0 ? Double.parseDouble(args[0]) : 6;
        Map<String, Sample> before = sample();
        Thread.sleep((long) (seconds * 1000));
        Map<String, Sample> after = sample();
        List<Row> rows = new ArrayList<>();
        after.forEach((key, a) -> {
            Sample b = before.get(key);
            if (b != null) {
                rows.add(new Row(a.ticks - b.ticks, a.voluntary - b.voluntary, a.involuntary - b.involuntary,
                        key.substring(0, key.indexOf('/')), a.name));
            }
        });
        rows.sort(Comparator.comparingLong(Row::ticks).reversed());
        System.out.printf("%9s %9s %11s %8s  %s%n", "cpu_ticks", "voluntary", "involuntary", "pid", "thread");
        rows.stream().limit(10).forEach(r -> System.out.printf("%9d %9d %11d %8s  %s%n", r.ticks, r.voluntary,
                r.involuntary, r.pid, r.name));
    }

    /** Every thread of every JVM whose command line names azsdp, by "pid/tid". */
    private static Map<String, Sample> sample() throws IOException {
        Map<String, Sample> out = new HashMap<>();
        try (Stream<Path> procs = Files.list(Path.of("/proc"))) {
            for (Path p : (Iterable<Path>) procs::iterator) {
                String pid = p.getFileName().toString();
                boolean self = pid.equals(String.valueOf(ProcessHandle.current().pid()));
                if (self || !pid.chars().allMatch(Character::isDigit)) {
                    continue;
                }
                try {
                    String cmd = Files.readString(p.resolve("cmdline"));
                    if (!cmd.contains("java") || !cmd.contains("azsdp")) {
                        continue;
                    }
                    try (Stream<Path> tasks = Files.list(p.resolve("task"))) {
                        for (Path t : (Iterable<Path>) tasks::iterator) {
                            out.put(pid + "/" + t.getFileName(), read(t));
                        }
                    }
                } catch (IOException | RuntimeException gone) {
                    // the process or thread ended while we looked
                }
            }
        }
        return out;
    }

    private static Sample read(Path task) throws IOException {
        String stat = Files.readString(task.resolve("stat"));
        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        long voluntary = 0;
        long involuntary = 0;
        for (String line : Files.readAllLines(task.resolve("status"))) {
            if (line.startsWith("voluntary_ctxt_switches:")) {
                voluntary = Long.parseLong(line.substring(line.indexOf(':') + 1).trim());
            } else if (line.startsWith("nonvoluntary_ctxt_switches:")) {
                involuntary = Long.parseLong(line.substring(line.indexOf(':') + 1).trim());
            }
        }
        String name = Files.readString(task.resolve("comm")).trim();
        return new Sample(name, Long.parseLong(f[11]) + Long.parseLong(f[12]), voluntary, involuntary);
    }
}
