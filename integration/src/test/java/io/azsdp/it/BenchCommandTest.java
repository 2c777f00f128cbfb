package io.azsdp.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.azsdp.memory.ProtectedMemory;
import java.awt.image.BufferedImage;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code azsdp bench} end to end with tiny settings: a client JVM (the command) and the server JVM it spawns, every
 * test, both AZ-SDP fabrics and both baselines; checks the RESULT lines, the CSV, the JSON, the charts and the summary.
 */
class BenchCommandTest {
    private static final Pattern RESULT = Pattern.compile(
            "RESULT test=(\\S+) fabric=(\\S+) mode=(\\S+) size=(\\d+) conns=(\\d+) value=(-?\\d+\\.\\d+) unit=(\\S+)");

    @Test
    void tinyRunWritesVerifiedFiguresAndEveryOutput(@TempDir Path out) throws Exception {
        MultiJvmTestBase.assumeFabric("shm");
        List<String> lines = run(List.of("bench", "--quick",
                "--fabrics", "shm,tcp,javatcp", "--modes", "zcopy,azsdp,socket,nio", "--sizes", "4096,65536",
                "--conns", "1,2", "--bytes", "4194304", "--seconds", "0.02", "--iterations", "200",
                "--figure-timeout", "20", "--out", out.toString()));

        List<Matcher> results = new ArrayList<>();
        for (String l : lines) {
            assertFalse(l.startsWith("FAILED"), l);
            if (l.startsWith("RESULT")) {
                Matcher m = RESULT.matcher(l);
                assertTrue(m.matches(), "malformed: " + l);
                results.add(m);
            }
        }
        Set<String> tests = new HashSet<>();
        results.forEach(m -> tests.add(m.group(1)));
        assertEquals(Set.of("latency", "latency_p99", "latency_max", "bw", "bibw", "overlap", "overlap_hidden",
                "overlap_bound", "multiconn", "reuse_same", "reuse_rotate"), tests);
        // 6 transports (2 AZ-SDP fabrics x 2 modes, 2 baselines), each: per size 3 latency + bw + bibw + 3 overlap
        // + 2 reuse, and one multiconn per connection count
        assertEquals(6 * (2 * 10 + 2), results.size());
        // The computation alone bounds each overlap stream: its throughput never exceeds bytes / t_comp.
        Map<String, Double> overlap = new HashMap<>();
        results.stream().filter(m -> m.group(1).equals("overlap"))
                .forEach(m -> overlap.put(m.group(2) + m.group(3) + m.group(4), Double.parseDouble(m.group(6))));
        results.stream().filter(m -> m.group(1).equals("overlap_bound")).forEach(m -> {
            Double measured = overlap.get(m.group(2) + m.group(3) + m.group(4));
            assertNotNull(measured, m.group());
            assertTrue(Double.parseDouble(m.group(6)) >= measured, m.group() + " below overlap " + measured);
        });

        List<String> csv = Files.readAllLines(out.resolve("results.csv"));
        assertEquals("test,fabric,mode,size,conns,value,unit,ok,note", csv.get(0));
        assertEquals(results.size(), csv.size() - 1);
        for (String row : csv.subList(1, csv.size())) {
            String[] c = row.split(",", 9);
            assertEquals("true", c[7], row);
            Double.parseDouble(c[5]);
        }

        JsonNode json = new ObjectMapper().readTree(out.resolve("results.json").toFile());
        assertEquals(results.size(), json.get("figures").size());
        for (JsonNode f : json.get("figures")) {
            assertTrue(f.get("ok").asBoolean(), f.toString());
            assertTrue(f.get("value").isNumber(), f.toString());
        }
        assertTrue(json.get("machine").get("nproc").asInt() > 0);

        for (String chart : List.of("bw", "bibw", "latency", "overlap", "overlap_hidden", "multiconn", "reuse")) {
            BufferedImage img = ImageIO.read(out.resolve(chart + ".png").toFile());
            assertNotNull(img, chart + ".png is not an image");
            assertTrue(img.getWidth() > 100 && img.getHeight() > 100, chart + ".png size");
        }

        String summary = Files.readString(out.resolve("summary.md"));
        assertTrue(summary.contains("`bin/azsdp bench --quick"), summary);
        assertTrue(summary.contains("### Ratios") && summary.contains("shm/azsdp / shm/zcopy at 64K"), summary);
        assertTrue(summary.contains("overlap_bound shm/azsdp / overlap shm/zcopy at 64K"), summary);
        assertTrue(summary.contains("CPUs (nproc)"), summary);
    }

    /**
     * Heap-array variants of the modes ({@code -heap}): both ends read and write heap arrays, and their figures verify
     * like the others; {@code socket-heap} is not a transport (Java's socket uses heap arrays already).
     */
    @Test
    void heapVariantsOfTheModesVerify(@TempDir Path out) throws Exception {
        MultiJvmTestBase.assumeFabric("shm");
        List<String> lines = run(List.of("bench", "--quick", "--tests", "bw,latency", "--fabrics", "shm,tcp,javatcp",
                "--modes", "auto-heap,azsdp-heap,socket-heap,nio-heap", "--sizes", "65536", "--bytes", "4194304",
                "--seconds", "0.02", "--iterations", "200", "--figure-timeout", "20", "--out", out.toString()));
        Set<String> bw = new HashSet<>();
        for (String l : lines) {
            assertFalse(l.startsWith("FAILED"), l);
            Matcher m = RESULT.matcher(l);
            if (m.matches() && m.group(1).equals("bw")) {
                bw.add(m.group(2) + "/" + m.group(3));
            }
        }
        assertEquals(Set.of("shm/auto-heap", "shm/azsdp-heap", "tcp/auto-heap", "tcp/azsdp-heap", "javatcp/nio-heap"),
                bw);
    }

    /**
     * {@code azsdp micro}: JMH finds the generated benchmarks, forks, and each reports a throughput (the sender's page
     * protection where the native library can protect pages).
     */
    @Test
    void microMeasuresEachBenchmarkInAForkedJvm() throws Exception {
        List<String> lines = run(List.of("micro", "--sizes", "4096", "--iterations", "1", "--warmup-iterations", "1"));
        Set<String> seen = new HashSet<>();
        for (String l : lines) {
            Matcher m = RESULT.matcher(l);
            if (m.matches()) {
                assertEquals("4096", m.group(4), l);
                assertTrue(Double.parseDouble(m.group(6)) > 0, l);
                seen.add(m.group(1));
            }
        }
        Set<String> expected = new HashSet<>(Set.of("micro_copy", "micro_crc32c", "micro_copyThenCrc32c"));
        if (ProtectedMemory.unavailableReason() == null) {
            expected.add("micro_protectThenRelease");
        }
        assertEquals(expected, seen);
    }

    /** Runs the command line in a JVM of its own; its output lines, once it has exited 0. */
    private static List<String> run(List<String> args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"), "io.azsdp.cli.Main"));
        cmd.addAll(args);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        List<String> lines = new ArrayList<>();
        try (var r = p.inputReader(StandardCharsets.UTF_8)) {
            for (String l; (l = r.readLine()) != null; ) {
                System.out.println("[" + args.get(0) + "] " + l);
                lines.add(l);
            }
        }
        assertTrue(p.waitFor(90, TimeUnit.SECONDS), args.get(0) + " did not end");
        assertEquals(0, p.exitValue(), args.get(0) + " exit code");
        return lines;
    }
}
