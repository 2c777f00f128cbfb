package io.azsdp.spark.metrics;

import com.codahale.metrics.Gauge;
import com.codahale.metrics.MetricRegistry;
import io.azsdp.metrics.AzSdpMetrics;
import java.io.Serializable;
import java.util.concurrent.atomic.LongAdder;

/**
 * Process-wide counters of the shuffle transport: what this JVM fetched (by how the bytes arrived: zero copy or
 * buffered copy) and served. Published as Spark metrics by the plugin; {@link #snapshot()} is for monitoring and
 * tests.
 */
public final class TransportCounters {
    private static final LongAdder ZCOPY_BLOCKS = new LongAdder();
    private static final LongAdder ZCOPY_BYTES = new LongAdder();
    private static final LongAdder BCOPY_BLOCKS = new LongAdder();
    private static final LongAdder BCOPY_BYTES = new LongAdder();
    private static final LongAdder FETCH_FAILURES = new LongAdder();
    private static final LongAdder SERVED_BLOCKS = new LongAdder();
    private static final LongAdder SERVED_MAPPED_BYTES = new LongAdder();
    private static final LongAdder SERVED_COPIED_BYTES = new LongAdder();
    private static final LongAdder REFUSED_CLIENTS = new LongAdder();

    private TransportCounters() {
    }

    /** A block of {@code bytes}, advertised by the server for one-sided READ or sent by buffered copy. */
    public static void fetched(long bytes, boolean zeroCopy) {
        if (zeroCopy) {
            ZCOPY_BLOCKS.increment();
            ZCOPY_BYTES.add(bytes);
        } else {
            BCOPY_BLOCKS.increment();
            BCOPY_BYTES.add(bytes);
        }
    }

    public static void fetchFailed(int blocks) {
        FETCH_FAILURES.add(blocks);
    }

    public static void served(long bytes, boolean mapped) {
        SERVED_BLOCKS.increment();
        (mapped ? SERVED_MAPPED_BYTES : SERVED_COPIED_BYTES).add(bytes);
    }

    public static void refused() {
        REFUSED_CLIENTS.increment();
    }

    /** Registers gauges under Spark's plugin metrics namespace (so every configured sink reports them). */
    public static void register(MetricRegistry registry) {
        gauge(registry, "fetch.zcopyBlocks", ZCOPY_BLOCKS);
        gauge(registry, "fetch.zcopyBytes", ZCOPY_BYTES);
        gauge(registry, "fetch.bcopyBlocks", BCOPY_BLOCKS);
        gauge(registry, "fetch.bcopyBytes", BCOPY_BYTES);
        gauge(registry, "fetch.failedBlocks", FETCH_FAILURES);
        gauge(registry, "serve.blocks", SERVED_BLOCKS);
        gauge(registry, "serve.mappedBytes", SERVED_MAPPED_BYTES);
        gauge(registry, "serve.copiedBytes", SERVED_COPIED_BYTES);
        gauge(registry, "serve.refusedClients", REFUSED_CLIENTS);
        AzSdpMetrics m = AzSdpMetrics.get();
        registry.register("socket.zcopyBytesReceived", (Gauge<Long>) m::getZcopyBytesReceived);
        registry.register("socket.bcopyBytesReceived", (Gauge<Long>) m::getBcopyBytesReceived);
        registry.register("socket.zcopyBytesSent", (Gauge<Long>) m::getZcopyBytesSent);
        registry.register("socket.bcopyBytesSent", (Gauge<Long>) m::getBcopyBytesSent);
        registry.register("socket.openConnections", (Gauge<Integer>) m::getOpenConnections);
    }

    private static void gauge(MetricRegistry registry, String name, LongAdder counter) {
        registry.register(name, (Gauge<Long>) counter::sum);
    }

    public static Snapshot snapshot() {
        return new Snapshot(ZCOPY_BLOCKS.sum(), ZCOPY_BYTES.sum(), BCOPY_BLOCKS.sum(), BCOPY_BYTES.sum(),
                FETCH_FAILURES.sum(), SERVED_BLOCKS.sum(), SERVED_MAPPED_BYTES.sum(), SERVED_COPIED_BYTES.sum(),
                REFUSED_CLIENTS.sum());
    }

    /** The counters at one moment (serializable, so a task can bring an executor's figures to the driver). */
    public record Snapshot(long zcopyBlocks, long zcopyBytes, long bcopyBlocks, long bcopyBytes, long failedBlocks,
                           long servedBlocks, long servedMappedBytes, long servedCopiedBytes, long refusedClients)
            implements Serializable {
        public long fetchedBytes() {
            return zcopyBytes + bcopyBytes;
        }

        public long fetchedBlocks() {
            return zcopyBlocks + bcopyBlocks;
        }
    }
}
