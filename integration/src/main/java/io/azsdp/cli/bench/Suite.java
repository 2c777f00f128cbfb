package io.azsdp.cli.bench;

import io.azsdp.cli.Link;
import io.azsdp.metrics.AzSdpMetrics;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.HdrHistogram.Histogram;

/**
 * The bench tests, client side. Sizes are the outer loop and transports the inner one, so that the figures of one
 * size are measured close together in time (this machine's noise drifts over minutes).
 */
final class Suite {
    /** Messages of the calibration warm-up at most (small messages in zero-copy modes are round trips). */
    private static final long WARM_MESSAGES = 2000;
    /**
     * Round trips before a latency figure, at most: until both JVMs' C2 compilers are done with a round trip's paths.
     * shm round trips of a fresh transport, or of the first at a size that takes a new path, took 30-50 us instead of
     * 2-4 for their first 25 000-35 000 (with the JIT's profiled tier: they were fast at once with C1 alone).
     */
    private static final int WARM_ROUND_TRIPS = 40_000;
    /** ... or for this long at most (a slow transport's round trips gain less from compiled code). */
    private static final long WARM_ROUND_TRIP_NANOS = TimeUnit.SECONDS.toNanos(2);
    /** A warm-up run counts as faster when it takes at least 1/this less time than the fastest before it. */
    private static final long WARM_GAIN = 8;
    /** Runs in a row no faster than the fastest before them that end a transport's first warm-up. */
    private static final int WARM_STEADY_RUNS = 5;
    /** Figures' time a warm-up may go on for while its runs keep getting faster. */
    private static final long WARM_RAMP_FIGURES = 4;
    /** Round trips of one warm-up request after the first (each request costs a round trip of its own). */
    private static final int WARM_BATCH = 2_000;
    /** Buffers the application rotates through in {@code reuse_rotate}. */
    static final int ROTATE = 8;

    private final Plan plan;
    private final Connections connections;
    private final FigureRunner runner;
    /** Transports that have had their first, longer warm-up. */
    private final Set<Transport> warmed = new HashSet<>();

    Suite(Plan plan, Connections connections, FigureRunner runner) {
        this.plan = plan;
        this.connections = connections;
        this.runner = runner;
    }

    void run() {
        for (String test : plan.tests()) {
            switch (test) {
                case "latency" -> bySize(test, plan.latencySizes(), this::latency);
                case "bw" -> inRounds(test, plan.streamSizes(), (t, size) -> stream(t, size, false));
                case "bibw" -> inRounds(test, plan.streamSizes(), (t, size) -> stream(t, size, true));
                case "overlap" -> inRounds(test, plan.overlapSizes(), this::overlap);
                case "multiconn" -> multiconn();
                case "reuse" -> {
                    bySize("reuse_same", plan.reuseSizes(), (t, size) -> reuse(t, size, 1));
                    bySize("reuse_rotate", plan.reuseSizes(), (t, size) -> reuse(t, size, ROTATE));
                }
            }
        }
    }

    /** One figure of a transport and size. */
    private interface Measure {
        List<Figure> of(Transport t, int size) throws Exception;
    }

    private void bySize(String test, List<Integer> sizes, Measure m) {
        for (int size : sizes) {
            for (Transport t : plan.transports()) {
                runner.run(new Figure.Key(test, t, size, 1), () -> m.of(t, size));
            }
        }
    }

    /**
     * Each size in {@code plan.rounds()} rounds over all transports, the median round per transport reported: a
     * minute of this machine's noise then hits one round of every transport rather than all of one. A transport that
     * failed a round is not measured again.
     */
    private void inRounds(String test, List<Integer> sizes, Measure m) {
        for (int size : sizes) {
            Map<Transport, List<List<Figure>>> rounds = new LinkedHashMap<>();
            for (int r = 0; r < plan.rounds(); r++) {
                for (Transport t : plan.transports()) {
                    List<List<Figure>> done = rounds.computeIfAbsent(t, k -> new ArrayList<>());
                    if (done.isEmpty() || done.get(done.size() - 1).stream().allMatch(Figure::ok)) {
                        done.add(runner.measure(new Figure.Key(test, t, size, 1), () -> m.of(t, size)));
                    }
                }
            }
            for (List<List<Figure>> done : rounds.values()) {
                runner.record(Figure.median(done));
            }
        }
    }

    private List<Figure> latency(Transport t, int size) throws IOException {
        Link link = connections.link(t);
        warmUpRoundTrips(link, size);
        Histogram h = PingPong.run(link, size, plan.iterations());
        Figure.Key k = new Figure.Key("latency", t, size, 1);
        String n = h.getTotalCount() + " round trips";
        return List.of(Figure.ok(k, "latency", h.getValueAtPercentile(50) / 1e3, "us", n),
                Figure.ok(k, "latency_p99", h.getValueAtPercentile(99) / 1e3, "us", n),
                Figure.ok(k, "latency_max", h.getMaxValue() / 1e3, "us", n));
    }

    /**
     * A quarter of a figure's round trips, then more, up to four times a figure's and at most {@link #WARM_ROUND_TRIPS}
     * within {@link #WARM_ROUND_TRIP_NANOS}: a transport's first figure (or its first at a size that takes a new path)
     * measured its JIT warm-up (see the constants).
     */
    private void warmUpRoundTrips(Link link, int size) throws IOException {
        int min = Math.max(100, plan.iterations() / 4);
        int max = Math.max(min, Math.min(WARM_ROUND_TRIPS, 4 * plan.iterations()));
        long end = System.nanoTime() + WARM_ROUND_TRIP_NANOS;
        PingPong.run(link, size, min);
        for (int done = min; done < max && System.nanoTime() < end; done += WARM_BATCH) {
            PingPong.run(link, size, WARM_BATCH);
        }
    }

    private List<Figure> stream(Transport t, int size, boolean both) throws IOException {
        Sender s = calibrated(t, size, 1, false, both, plan.seconds() / plan.rounds());
        long nanos = both ? s.both() : s.stream(0);
        String test = both ? "bibw" : "bw";
        return List.of(Figure.ok(new Figure.Key(test, t, size, 1), test, (both ? 2.0 : 1.0) * s.bytes() / nanos,
                "GB/s", Bytes.human(s.bytes()) + (both ? " bytes each way" : " bytes")));
    }

    /**
     * Streams with a computation as long as one message's transfer after every write (t_total), between two streams
     * without computation whose mean is t_comm (the bracket cancels drift of this machine's load): hidden =
     * (t_comm + t_comp - t_total) / t_comm, 1 when the transfer is entirely overlapped. The bound is the throughput of
     * the computation alone (t_total = t_comp), the most any transport could give this stream.
     */
    private List<Figure> overlap(Transport t, int size) throws IOException {
        Sender s = calibrated(t, size, 1, false, false, plan.seconds() / plan.rounds());
        long before = s.stream(0);
        long perMessage = before / s.count();
        long total = s.stream(perMessage);
        long comm = (before + s.stream(0)) / 2;
        long comp = perMessage * s.count();
        Figure.Key k = new Figure.Key("overlap", t, size, 1);
        String note = String.format("t_comm %.1f ms, t_comp %.1f ms, t_total %.1f ms", comm / 1e6, comp / 1e6,
                total / 1e6);
        return List.of(Figure.ok(k, "overlap", (double) s.bytes() / total, "GB/s", note),
                Figure.ok(k, "overlap_hidden", (double) (comm + comp - total) / comm, "fraction", note),
                Figure.ok(k, "overlap_bound", (double) s.bytes() / comp, "GB/s", note));
    }

    /** The application stores into one byte of every page of the next buffer before writing it. */
    private List<Figure> reuse(Transport t, int size, int buffers) throws IOException {
        Sender s = calibrated(t, size, buffers, true, false, plan.seconds());
        AzSdpMetrics m = AzSdpMetrics.get();
        long faults = m.getProtectionFaults();
        long protectedSends = m.getProtectedSends();
        long reused = m.getProtectedSendsReused();
        long synchronous = m.getProtectSkipped();
        long nanos = s.stream(0);
        String test = buffers == 1 ? "reuse_same" : "reuse_rotate";
        return List.of(Figure.ok(new Figure.Key(test, t, size, 1), test, (double) s.bytes() / nanos, "GB/s",
                String.format("%d buffer(s), %d protection faults, %d protected sends (%d reused), %d sent"
                        + " synchronously instead", buffers, m.getProtectionFaults() - faults,
                        m.getProtectedSends() - protectedSends, m.getProtectedSendsReused() - reused,
                        m.getProtectSkipped() - synchronous)));
    }

    private void multiconn() {
        int size = plan.multiconnSize();
        for (int n : plan.conns()) {
            for (Transport t : plan.transports()) {
                Figure.Key k = new Figure.Key("multiconn", t, size, n);
                runner.run(k, () -> {
                    List<Link> links = connections.open(t, n);
                    List<Payload> payloads = new ArrayList<>();
                    List<Sender> warm = new ArrayList<>();
                    for (Link l : links) {
                        payloads.add(new Payload(l, size, 1, false));
                        warm.add(new Sender(l, payloads.get(payloads.size() - 1), Math.max(1, warmCount(size) / n),
                                plan.checksum()));
                    }
                    long warmNanos = Sender.parallel(warm);
                    long each = count(warm.get(0), warmNanos, n, plan.seconds());
                    List<Sender> senders = new ArrayList<>();
                    for (int i = 0; i < n; i++) {
                        senders.add(new Sender(links.get(i), payloads.get(i), each, plan.checksum()));
                    }
                    long wall = Sender.parallel(senders);
                    connections.release(links);
                    return List.of(Figure.ok(k, "multiconn", (double) n * senders.get(0).bytes() / wall, "GB/s",
                            n + " x " + Bytes.human(senders.get(0).bytes()) + " bytes"));
                });
            }
        }
    }

    /** A sender on the kept link of {@code t}, warmed up with the same payload and calibrated. */
    private Sender calibrated(Transport t, int size, int buffers, boolean stamp, boolean both, double seconds)
            throws IOException {
        Link link = connections.link(t);
        Payload p = new Payload(link, size, buffers, stamp);
        Sender warm = new Sender(link, p, warmCount(size), plan.checksum());
        return new Sender(link, p, count(warm, warmUp(t, warm, both), 1, seconds), plan.checksum());
    }

    /**
     * Runs {@code warm} at least once and for at least a twentieth of a figure's time, and on while its last run was
     * the fastest yet. The first figure of a transport warms up for a whole figure's time, and then on until
     * {@link #WARM_STEADY_RUNS} runs in a row are no faster than the fastest before them, for up to
     * {@link #WARM_RAMP_FIGURES} figures' time: until then neither JVM's JIT compilers have seen the transport's paths,
     * and on the slower development machine their ramp took seconds (the warm-up runs of a shm zcopy 64 KiB stream
     * moved 0.3-1.2 GB/s in the first second, and its rounds after a second of warm-up 1.5, 6.0 and 14.2 GB/s). The
     * nanoseconds of the last run.
     */
    private long warmUp(Transport t, Sender warm, boolean both) throws IOException {
        long figure = (long) (plan.seconds() * 1e9);
        boolean first = warmed.add(t);
        long min = first ? figure : figure / 20;
        int steady = first ? WARM_STEADY_RUNS : 1;
        long start = System.nanoTime();
        long fastest = Long.MAX_VALUE;
        int sinceFastest = 0;
        long nanos;
        long elapsed;
        do {
            nanos = both ? warm.both() : warm.stream(0);
            elapsed = System.nanoTime() - start;
            sinceFastest = nanos < fastest - fastest / WARM_GAIN ? 0 : sinceFastest + 1;
            fastest = Math.min(fastest, nanos);
        } while (elapsed < min || (sinceFastest < steady && elapsed < WARM_RAMP_FIGURES * figure));
        return nanos;
    }

    private long warmCount(int size) {
        return Math.max(1, Math.min(WARM_MESSAGES, plan.bytes() / 8 / size));
    }

    /**
     * Messages per connection for a figure of about {@code seconds}, from a warm-up that moved {@code warm.bytes()}
     * on each of {@code conns} connections in {@code nanos}; within the byte budget.
     */
    private long count(Sender warm, long nanos, int conns, double seconds) {
        int size = warm.size();
        double perSecond = (double) warm.bytes() / size * 1e9 / nanos;
        long timed = Math.max(4, (long) (perSecond * seconds));
        return Math.max(1, Math.min(timed, plan.bytes() / conns / size));
    }
}
