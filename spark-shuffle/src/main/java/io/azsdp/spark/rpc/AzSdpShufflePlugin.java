package io.azsdp.spark.rpc;

import io.azsdp.spark.client.AzSdpBlockStoreClient;
import java.util.Map;
import org.apache.spark.api.plugin.DriverPlugin;
import org.apache.spark.api.plugin.ExecutorPlugin;
import org.apache.spark.api.plugin.SparkPlugin;

/**
 * The Spark plugin that goes with {@code AzSdpShuffleManager} ({@code spark.plugins}): every executor runs a block
 * server and publishes executor id → host:port through the driver; readers look addresses up lazily. Its metrics
 * (bytes and blocks fetched by mode, served, refused) appear under {@code plugin.<this class>.*}.
 */
public final class AzSdpShufflePlugin implements SparkPlugin {
    @Override
    public DriverPlugin driverPlugin() {
        return new AddressRegistry();
    }

    @Override
    public ExecutorPlugin executorPlugin() {
        return new ExecutorAgent();
    }

    /** The block client of this executor JVM. */
    public static AzSdpBlockStoreClient client() {
        return ExecutorAgent.client();
    }

    /** On the driver: the block server addresses the executors announced (monitoring and tests). */
    public static Map<String, ExecutorAddress> announcedAddresses() {
        return AddressRegistry.announced();
    }
}
