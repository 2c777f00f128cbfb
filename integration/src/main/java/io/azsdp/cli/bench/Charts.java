package io.azsdp.cli.bench;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.ToIntFunction;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.Styler;

/**
 * PNG charts laid out like the paper's figures: one series per fabric/mode against message size (or connections).
 * Sizes go on a log2 axis labelled in binary units; latency too goes on a log2 axis (XChart's logarithmic axes label
 * only powers of ten, often a single one over this range).
 */
final class Charts {
    private static final int WIDTH = 900;
    private static final int HEIGHT = 560;

    private Charts() {
    }

    /** Writes the charts of the tests present in {@code figures}; returns the files written. */
    static List<Path> write(Path dir, List<Figure> figures) throws IOException {
        System.setProperty("java.awt.headless", "true");
        List<Path> out = new ArrayList<>();
        ToIntFunction<Figure> size = Figure::size;
        xy(out, dir, figures, "bw", "Throughput, one direction", "message size (bytes)", "GB/s", size, false);
        xy(out, dir, figures, "bibw", "Throughput, both directions at once (sum)", "message size (bytes)", "GB/s", size,
                false);
        xy(out, dir, figures, "latency", "Round-trip latency (p50)", "message size (bytes)", "microseconds", size,
                true);
        xy(out, dir, figures, "overlap", "Throughput with computation = transfer time after each write",
                "message size (bytes)", "effective GB/s", size, false);
        xy(out, dir, figures, "overlap_hidden", "Fraction of the transfer hidden behind computation",
                "message size (bytes)", "(t_comm + t_comp - t_total) / t_comm", size, false);
        xy(out, dir, figures, "multiconn", "Aggregate throughput over concurrent connections", "connections", "GB/s",
                Figure::conns, false);
        reuse(out, dir, figures);
        return out;
    }

    private static void xy(List<Path> out, Path dir, List<Figure> figures, String test, String title, String xTitle,
                           String yTitle, ToIntFunction<Figure> x, boolean logY) throws IOException {
        Map<String, List<double[]>> series = new LinkedHashMap<>();
        for (Figure f : figures) {
            if (f.ok() && f.test().equals(test) && (!logY || f.value() > 0)) {
                series.computeIfAbsent(f.series(), k -> new ArrayList<>())
                        .add(new double[] {log2(x.applyAsInt(f)), logY ? log2(f.value()) : f.value()});
            }
        }
        if (series.isEmpty()) {
            return;
        }
        XYChart chart = new XYChartBuilder().width(WIDTH).height(HEIGHT).title(title).xAxisTitle(xTitle)
                .yAxisTitle(yTitle).build();
        chart.getStyler().setLegendPosition(Styler.LegendPosition.OutsideE);
        chart.setCustomXAxisTickLabelsFormatter(v -> Bytes.human(Math.round(Math.pow(2, v))));
        if (logY) {
            chart.setCustomYAxisTickLabelsFormatter(v -> Long.toString(Math.round(Math.pow(2, v))));
        }
        series.forEach((name, points) -> chart.addSeries(name, points.stream().map(p -> p[0]).toList(),
                points.stream().map(p -> p[1]).toList()));
        out.add(save(chart, dir, test));
    }

    private static double log2(double v) {
        return Math.log(v) / Math.log(2);
    }

    /** Throughput when the application rewrites the buffer it just sent, against rotating buffers. */
    private static void reuse(List<Path> out, Path dir, List<Figure> figures) throws IOException {
        Map<String, Map<String, Double>> byTest = new LinkedHashMap<>();
        List<String> categories = new ArrayList<>();
        for (Figure f : figures) {
            if (f.ok() && f.test().startsWith("reuse_")) {
                String c = f.series() + " " + Bytes.human(f.size());
                if (!categories.contains(c)) {
                    categories.add(c);
                }
                byTest.computeIfAbsent(f.test(), k -> new LinkedHashMap<>()).put(c, f.value());
            }
        }
        if (byTest.isEmpty()) {
            return;
        }
        CategoryChart chart = new CategoryChartBuilder().width(WIDTH + 300).height(HEIGHT)
                .title("Buffer reuse: store into every page right after write() (same) vs rotate "
                        + Suite.ROTATE + " buffers").xAxisTitle("fabric/mode size").yAxisTitle("GB/s").build();
        chart.getStyler().setXAxisLabelRotation(45).setLegendPosition(Styler.LegendPosition.InsideNE);
        byTest.forEach((test, v) -> chart.addSeries(test, categories,
                categories.stream().map(c -> v.getOrDefault(c, 0.0)).toList()));
        out.add(save(chart, dir, "reuse"));
    }

    private static Path save(org.knowm.xchart.internal.chartpart.Chart<?, ?> chart, Path dir, String name)
            throws IOException {
        Path file = dir.resolve(name + ".png");
        BitmapEncoder.saveBitmap(chart, file.toString(), BitmapEncoder.BitmapFormat.PNG);
        return file;
    }
}
