package io.azsdp.spark.shuffle;

import io.azsdp.spark.config.ShuffleConf;
import io.azsdp.spark.rpc.AzSdpShufflePlugin;
import java.util.Arrays;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.shuffle.BaseShuffleHandle;
import org.apache.spark.shuffle.ShuffleHandle;
import org.apache.spark.shuffle.ShuffleReadMetricsReporter;
import org.apache.spark.shuffle.ShuffleReader;
import org.apache.spark.shuffle.sort.SortShuffleManager;

/**
 * Spark's sort-based shuffle (its writers and index/data file layout unchanged) whose reducers fetch remote blocks
 * over AZ-SDP. Use with {@code spark.shuffle.manager=io.azsdp.spark.shuffle.AzSdpShuffleManager} and
 * {@code spark.plugins=io.azsdp.spark.rpc.AzSdpShufflePlugin} (the plugin runs the block servers and the address
 * table).
 */
public final class AzSdpShuffleManager extends SortShuffleManager {
    private final ShuffleConf settings;

    public AzSdpShuffleManager(SparkConf conf, boolean isDriver) {
        super(conf);
        this.settings = ShuffleConf.from(conf);
        if (isDriver) {
            requireCompatible(conf);
        }
    }

    /** Fails the application at start rather than at the first shuffle. */
    private static void requireCompatible(SparkConf conf) {
        String plugin = AzSdpShufflePlugin.class.getName();
        boolean listed = Arrays.stream(conf.get("spark.plugins", "").split(","))
                .map(String::trim).anyMatch(plugin::equals);
        if (!listed) {
            throw new IllegalArgumentException("AzSdpShuffleManager needs spark.plugins to include " + plugin);
        }
        if (conf.getBoolean("spark.shuffle.service.enabled", false)) {
            throw new IllegalArgumentException("AzSdpShuffleManager serves blocks from the executors: set "
                    + "spark.shuffle.service.enabled=false");
        }
    }

    @Override
    public <K, C> ShuffleReader<K, C> getReader(ShuffleHandle handle, int startMapIndex, int endMapIndex,
                                                int startPartition, int endPartition, TaskContext context,
                                                ShuffleReadMetricsReporter metrics) {
        @SuppressWarnings("unchecked")
        BaseShuffleHandle<K, ?, C> base = (BaseShuffleHandle<K, ?, C>) handle;
        var blocks = SparkEnv.get().mapOutputTracker().getMapSizesByExecutorId(handle.shuffleId(), startMapIndex,
                endMapIndex, startPartition, endPartition);
        boolean batch = SortShuffleManager.canUseBatchFetch(startPartition, endPartition, context);
        return new AzSdpShuffleReader<>(base, blocks, context, metrics, batch, settings,
                AzSdpShufflePlugin.client());
    }
}
