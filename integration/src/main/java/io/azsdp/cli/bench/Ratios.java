package io.azsdp.cli.bench;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The ratios the project tracks (issues 2 to 4): asynchronous against synchronous zero copy (streaming at 16-256 KiB,
 * with overlapped computation, over 8 connections), shm AZ-SDP against plain Java TCP at 1 MiB, and the tcp fabric
 * against plain Java TCP at 64 KiB and above; the same against Java's socket for the heap-array variants of the modes.
 * Only ratios whose two figures were both measured are listed.
 */
final class Ratios {
    private static final List<Integer> ASYNC_SIZES = List.of(16 << 10, 64 << 10, 256 << 10);

    /** One ratio: what it compares and its value (numerator / denominator). */
    record Ratio(String what, double value) {
        List<String> cells() {
            return List.of(what, String.format(Locale.ROOT, "%.2fx", value));
        }
    }

    private final Map<String, Double> values = new HashMap<>();
    private final List<Ratio> out = new ArrayList<>();

    private Ratios(List<Figure> figures) {
        for (Figure f : figures) {
            if (f.ok()) {
                values.put(key(f.test(), f.series(), f.size(), f.conns()), f.value());
            }
        }
    }

    static List<Ratio> of(List<Figure> figures, int multiconnSize) {
        Ratios r = new Ratios(figures);
        for (String fabric : List.of("shm", "tcp")) {
            for (int size : ASYNC_SIZES) {
                r.add("bw", fabric + "/azsdp", fabric + "/zcopy", size, 1);
            }
            for (Figure f : figures) {
                if (f.test().equals("overlap") && f.series().equals(fabric + "/azsdp")) {
                    r.add("overlap", f.series(), fabric + "/zcopy", f.size(), 1);
                    // the same were azsdp's transfer entirely hidden: how much of the target the test leaves
                    r.add("overlap_bound", f.series(), "overlap", fabric + "/zcopy", f.size(), 1);
                }
            }
            r.add("multiconn", fabric + "/azsdp", fabric + "/zcopy", multiconnSize, 8);
        }
        for (String baseline : Transport.JAVA_MODES) {
            r.add("bw", "shm/azsdp", Transport.JAVATCP + "/" + baseline, 1 << 20, 1);
        }
        r.add("bw", "shm/azsdp" + Transport.HEAP_SUFFIX, "javatcp/socket", 1 << 20, 1); // heap arrays at both ends
        List<String> modes = new ArrayList<>(Transport.SDP_MODES);
        Transport.SDP_MODES.forEach(m -> modes.add(m + Transport.HEAP_SUFFIX));
        for (String mode : modes) {
            double min = Double.NaN;
            for (Figure f : figures) {
                if (f.test().equals("bw") && f.series().equals("tcp/" + mode) && f.size() >= 64 << 10) {
                    double v = r.add("bw", f.series(), "javatcp/socket", f.size(), 1);
                    min = Double.isNaN(min) || v < min ? v : min;
                }
            }
            if (!Double.isNaN(min)) {
                r.out.add(new Ratio("bw tcp/" + mode + " / javatcp/socket, min over sizes >= 64K", min));
            }
        }
        return r.out;
    }

    /** Adds a / b when both were measured; returns it (NaN when not). */
    private double add(String test, String a, String b, int size, int conns) {
        return add(test, a, test, b, size, conns);
    }

    /** Adds figure {@code testA} of a / figure {@code testB} of b when both were measured. */
    private double add(String testA, String a, String testB, String b, int size, int conns) {
        Double x = values.get(key(testA, a, size, conns));
        Double y = values.get(key(testB, b, size, conns));
        if (x == null || y == null) {
            return Double.NaN;
        }
        String where = conns > 1 ? Bytes.human(size) + " x " + conns + " conns" : Bytes.human(size);
        String what = testA.equals(testB) ? testA + " " + a + " / " + b : testA + " " + a + " / " + testB + " " + b;
        out.add(new Ratio(what + " at " + where, x / y));
        return x / y;
    }

    private static String key(String test, String series, int size, int conns) {
        return test + '|' + series + '|' + size + '|' + conns;
    }
}
