package io.azsdp.cli.bench;

import java.time.Duration;
import java.util.List;

/**
 * What a bench run measures. Throughput figures run for about {@code seconds} each (the count of messages is
 * calibrated by a warm-up on the same connection) and move at most {@code bytes}; stream and overlap figures
 * ({@code bw}, {@code bibw}, {@code overlap}) are the median of {@code rounds} rounds of {@code seconds / rounds},
 * interleaved across transports.
 * With {@code checksum} every receiver checksums every byte (CRC32C); without, it counts them only.
 */
record Plan(List<String> tests, List<Transport> transports, List<Integer> latencySizes, List<Integer> streamSizes,
            List<Integer> overlapSizes, List<Integer> reuseSizes, List<Integer> conns, int multiconnSize, long bytes,
            double seconds, int rounds, int iterations, boolean checksum, Duration timeout) {
    static final List<String> TESTS = List.of("latency", "bw", "bibw", "overlap", "multiconn", "reuse");

    private static final List<Integer> LATENCY_FULL = List.of(1, 4, 16, 64, 256, 1 << 10, 4 << 10, 16 << 10, 64 << 10);
    private static final List<Integer> LATENCY_QUICK = List.of(1, 64, 4 << 10, 64 << 10);
    private static final List<Integer> STREAM_FULL = List.of(1, 64, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10,
            1 << 20, 4 << 20);
    private static final List<Integer> STREAM_QUICK = List.of(64, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20);
    private static final List<Integer> OVERLAP_FULL = List.of(16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20);
    private static final List<Integer> OVERLAP_QUICK = List.of(64 << 10, 1 << 20);
    private static final List<Integer> REUSE_FULL = List.of(64 << 10, 1 << 20, 4 << 20);
    private static final List<Integer> REUSE_QUICK = List.of(1 << 20);

    /** The full or quick defaults; {@code sizes} (when not null) replaces every test's message sizes. */
    static Plan of(boolean quick, List<String> tests, List<Transport> transports, List<Integer> sizes,
                   List<Integer> conns, int multiconnSize, Long bytes, Double seconds, Integer rounds,
                   Integer iterations, boolean checksum, Duration timeout) {
        return new Plan(tests, transports,
                sizes != null ? sizes : quick ? LATENCY_QUICK : LATENCY_FULL,
                sizes != null ? sizes : quick ? STREAM_QUICK : STREAM_FULL,
                sizes != null ? sizes : quick ? OVERLAP_QUICK : OVERLAP_FULL,
                sizes != null ? sizes : quick ? REUSE_QUICK : REUSE_FULL,
                conns, multiconnSize,
                bytes != null ? bytes : quick ? 128L << 20 : 2L << 30,
                seconds != null ? seconds : quick ? 0.25 : 1.0,
                rounds != null ? rounds : quick ? 1 : 5,
                iterations != null ? iterations : quick ? 1000 : 10_000,
                checksum, timeout);
    }
}
