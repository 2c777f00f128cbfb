package io.azsdp.cli.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A run's figures as files in the output directory (results.csv, results.json, summary.md, PNG charts) and as
 * tables on stdout. summary.md is written to be pasted into docs/BENCHMARKS.md.
 */
final class Report {
    /** What results.json holds. */
    record Run(String date, String command, Machine machine, String verification, List<Figure> figures,
               List<Ratios.Ratio> ratios) {
    }

    /** What each table shows, under its title. */
    private static final Map<String, String> LEGEND = Map.ofEntries(
            Map.entry("latency", "Ping-pong round trip, median."),
            Map.entry("latency_p99", "Ping-pong round trip, 99th percentile."),
            Map.entry("latency_max", "Ping-pong round trip, longest."),
            Map.entry("bw", "One direction, client to server, one connection; median of the rounds (--rounds), "
                    + "interleaved across transports."),
            Map.entry("bibw", "Both directions at once on one connection (sum of the two); median of the rounds."),
            Map.entry("overlap", "Effective throughput when the sender computes, after each write, as long as one "
                    + "message's transfer took; median of the rounds."),
            Map.entry("overlap_hidden", "(t_comm + t_comp - t_total) / t_comm: 1 = transfer entirely hidden behind "
                    + "the computation, 0 = not at all, below 0 = the computation slowed the transfer (shared cores)."),
            Map.entry("overlap_bound", "What overlap would be were the transfer entirely hidden: bytes / t_comp, the "
                    + "computation alone (no transport can give more in that stream)."),
            Map.entry("multiconn", "Aggregate over concurrent connections, one sending thread each."),
            Map.entry("reuse_same", "The application stores into every page of the buffer right after write() and "
                    + "sends it again (in azsdp mode a store waits until the peer has read the page)."),
            Map.entry("reuse_rotate", "The same stores, into the next of " + Suite.ROTATE + " buffers in turn."));

    private final Run run;

    Report(String command, List<Figure> figures, int multiconnSize, boolean checksum) {
        this.run = new Run(ZonedDateTime.now().format(DateTimeFormatter.ISO_OFFSET_DATE_TIME), command,
                Machine.current(), checksum ? "every throughput figure verified by the receiver's CRC32C of every byte"
                        : "throughput figures verified by byte count only (--verify=bytes): no checksum pass",
                figures, Ratios.of(figures, multiconnSize));
    }

    /** Writes every file and prints the tables and ratios. */
    void write(Path dir) throws IOException {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("results.csv"), csv());
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(dir.resolve("results.json").toFile(),
                run);
        List<Path> charts = Charts.write(dir, run.figures());
        String summary = summary(charts);
        Files.writeString(dir.resolve("summary.md"), summary);
        System.out.println();
        System.out.println(summary);
        System.out.println("Written to " + dir.toAbsolutePath() + ": results.csv, results.json, summary.md, "
                + charts.size() + " charts");
    }

    private String csv() {
        StringBuilder b = new StringBuilder("test,fabric,mode,size,conns,value,unit,ok,note\n");
        for (Figure f : run.figures()) {
            b.append(String.format(Locale.ROOT, "%s,%s,%s,%d,%d,%s,%s,%b,\"%s\"%n", f.test(), f.fabric(), f.mode(),
                    f.size(), f.conns(), f.ok() ? String.format(Locale.ROOT, "%.4f", f.value()) : "", f.unit(), f.ok(),
                    f.note().replace("\"", "\"\"")));
        }
        return b.toString();
    }

    private String summary(List<Path> charts) {
        StringBuilder b = new StringBuilder();
        b.append("## ").append(run.date(), 0, 10).append(" — `").append(run.command()).append("`\n\n");
        b.append("Measured ").append(run.date()).append(" on ").append(run.machine().describe())
                .append(". Server and client in separate JVMs; ").append(run.verification())
                .append(", every echo compared.\n\n");
        b.append("### Ratios\n\n");
        b.append(Markdown.table(List.of("ratio", "value"), run.ratios().stream().map(Ratios.Ratio::cells).toList()));
        for (Map.Entry<String, List<Figure>> e : byTest().entrySet()) {
            b.append("\n### ").append(e.getKey()).append(" (").append(unit(e.getValue())).append(")\n\n")
                    .append(LEGEND.get(e.getKey())).append("\n\n");
            b.append(pivot(e.getKey(), e.getValue()));
        }
        List<Figure> failed = run.figures().stream().filter(f -> !f.ok()).toList();
        if (!failed.isEmpty()) {
            b.append("\n### Failed figures\n\n");
            failed.forEach(f -> b.append("- ").append(f.line()).append('\n'));
        }
        b.append("\nCharts: ").append(String.join(", ", charts.stream().map(p -> p.getFileName().toString()).toList()))
                .append('\n');
        return b.toString();
    }

    private Map<String, List<Figure>> byTest() {
        Map<String, List<Figure>> m = new LinkedHashMap<>();
        for (Figure f : run.figures()) {
            m.computeIfAbsent(f.test(), k -> new ArrayList<>()).add(f);
        }
        return m;
    }

    private static String unit(List<Figure> figures) {
        return figures.stream().filter(Figure::ok).map(Figure::unit).findFirst().orElse("no figure");
    }

    /** Rows: message size (connections for multiconn); columns: fabric/mode. */
    private static String pivot(String test, List<Figure> figures) {
        List<String> columns = new ArrayList<>();
        Map<String, Map<String, String>> rows = new LinkedHashMap<>();
        for (Figure f : figures) {
            if (!columns.contains(f.series())) {
                columns.add(f.series());
            }
            String row = test.equals("multiconn") ? f.conns() + " x " + Bytes.human(f.size()) : Bytes.human(f.size());
            rows.computeIfAbsent(row, k -> new LinkedHashMap<>()).put(f.series(),
                    f.ok() ? String.format(Locale.ROOT, "%.3f", f.value()) : "FAIL");
        }
        List<String> header = new ArrayList<>();
        header.add(test.equals("multiconn") ? "conns x size" : "size");
        header.addAll(columns);
        List<List<String>> cells = new ArrayList<>();
        rows.forEach((row, values) -> {
            List<String> r = new ArrayList<>();
            r.add(row);
            columns.forEach(c -> r.add(values.getOrDefault(c, "")));
            cells.add(r);
        });
        return Markdown.table(header, cells);
    }
}
