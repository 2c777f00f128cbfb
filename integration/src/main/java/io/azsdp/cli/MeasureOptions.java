package io.azsdp.cli;

import picocli.CommandLine.Option;

/** How much each figure measures; shared by {@code demo} and {@code client}. */
final class MeasureOptions {
    @Option(names = "--bytes", defaultValue = "536870912",
            description = "Bytes per throughput figure (default: ${DEFAULT-VALUE}).")
    long bytes;

    @Option(names = "--iterations", defaultValue = "20000",
            description = "Round trips per latency figure (default: ${DEFAULT-VALUE}).")
    int iterations;
}
