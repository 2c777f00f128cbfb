package io.azsdp.spark.config;

import io.azsdp.config.AzSdpConfig;
import java.util.Locale;
import org.apache.spark.SparkConf;
import scala.Tuple2;

/**
 * The {@code spark.shuffle.azsdp.*} settings, read once from the {@link SparkConf}. Every key has a default; bad
 * values fail fast with the key's name (the socket layer validates the ones it receives).
 */
public final class ShuffleConf {
    public static final String PREFIX = "spark.shuffle.azsdp.";
    /** Fabric the readers connect over: auto (shm on the same host, else tcp), shm or tcp. */
    public static final String FABRIC = PREFIX + "fabric";
    /** How the block server writes segments: auto (zero copy at or above the threshold), zcopy, bcopy or azsdp. */
    public static final String MODE = PREFIX + "mode";
    /** Port of each executor's block server; 0 picks a free one (local-cluster runs several per host). */
    public static final String PORT = PREFIX + "port";
    /** Segments of at least this many bytes are mapped and sent zero copy; smaller ones are copied and batched. */
    public static final String ZCOPY_THRESHOLD = PREFIX + "zcopyThreshold";
    /** Bytes a reduce task may have requested and not yet consumed (Spark's spark.reducer.maxSizeInFlight). */
    public static final String MAX_BYTES_IN_FLIGHT = PREFIX + "maxBytesInFlight";
    /** Connections a reader JVM opens to one executor's block server (parallel requests to that peer). */
    public static final String CONNECTIONS_PER_PEER = PREFIX + "connectionsPerPeer";
    /** Bound on connecting, on each read of a response and on waiting for a free connection (milliseconds). */
    public static final String TIMEOUT_MS = PREFIX + "timeoutMs";
    /** How long a reader waits for an executor's address to be announced before the fetch fails (milliseconds). */
    public static final String LOOKUP_TIMEOUT_MS = PREFIX + "lookupTimeoutMs";
    /** Any {@code spark.shuffle.azsdp.core.<key>} is passed to the socket layer as {@code azsdp.<key>}. */
    public static final String CORE_PREFIX = PREFIX + "core.";

    private final String fabric;
    private final String mode;
    private final int port;
    private final int zcopyThreshold;
    private final long maxBytesInFlight;
    private final int connectionsPerPeer;
    private final int timeoutMs;
    private final int lookupTimeoutMs;
    private final AzSdpConfig socketConfig;

    private ShuffleConf(SparkConf conf) {
        fabric = conf.get(FABRIC, "auto").toLowerCase(Locale.ROOT);
        mode = conf.get(MODE, "auto").toLowerCase(Locale.ROOT);
        port = (int) range(conf, PORT, conf.getInt(PORT, 0), 0, 65535);
        zcopyThreshold = (int) range(conf, ZCOPY_THRESHOLD,
                conf.getSizeAsBytes(ZCOPY_THRESHOLD, "64k"), 1, Integer.MAX_VALUE);
        maxBytesInFlight = range(conf, MAX_BYTES_IN_FLIGHT,
                conf.getSizeAsBytes(MAX_BYTES_IN_FLIGHT, conf.get("spark.reducer.maxSizeInFlight", "48m")),
                1, Long.MAX_VALUE);
        connectionsPerPeer = (int) range(conf, CONNECTIONS_PER_PEER, conf.getInt(CONNECTIONS_PER_PEER, 2), 1, 64);
        timeoutMs = (int) range(conf, TIMEOUT_MS, conf.getTimeAsMs(TIMEOUT_MS, "120s"), 1, Integer.MAX_VALUE);
        lookupTimeoutMs = (int) range(conf, LOOKUP_TIMEOUT_MS, conf.getTimeAsMs(LOOKUP_TIMEOUT_MS, "30s"),
                1, Integer.MAX_VALUE);

        AzSdpConfig c = AzSdpConfig.global()
                .with(AzSdpConfig.FABRIC, fabric)
                .with(AzSdpConfig.MODE, mode)
                .with(AzSdpConfig.ZCOPY_THRESHOLD, Integer.toString(zcopyThreshold))
                .with(AzSdpConfig.CONNECT_TIMEOUT_MS, Integer.toString(timeoutMs));
        for (Tuple2<String, String> kv : conf.getAllWithPrefix(CORE_PREFIX)) {
            c = c.with("azsdp." + kv._1(), kv._2());
        }
        socketConfig = c;
    }

    public static ShuffleConf from(SparkConf conf) {
        try {
            return new ShuffleConf(conf);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("bad AZ-SDP shuffle configuration: " + e.getMessage(), e);
        }
    }

    private static long range(SparkConf conf, String key, long value, long min, long max) {
        if (value < min || value > max) {
            throw new IllegalArgumentException(key + "=" + conf.get(key, "") + " is outside [" + min + ", " + max + "]");
        }
        return value;
    }

    public String fabric() {
        return fabric;
    }

    public String mode() {
        return mode;
    }

    public int port() {
        return port;
    }

    public int zcopyThreshold() {
        return zcopyThreshold;
    }

    public long maxBytesInFlight() {
        return maxBytesInFlight;
    }

    public int connectionsPerPeer() {
        return connectionsPerPeer;
    }

    public int timeoutMs() {
        return timeoutMs;
    }

    public int lookupTimeoutMs() {
        return lookupTimeoutMs;
    }

    /** Socket settings for both ends (the server accepts every fabric; the client's choice decides). */
    public AzSdpConfig socketConfig() {
        return socketConfig;
    }
}
