package io.azsdp.spark.rpc;

import io.azsdp.spark.client.AzSdpBlockStoreClient;
import io.azsdp.spark.config.ShuffleConf;
import io.azsdp.spark.metrics.TransportCounters;
import io.azsdp.spark.server.BlockServer;
import io.azsdp.spark.server.ShuffleBlockSource;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Map;
import org.apache.spark.SecurityManager;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkEnv;
import org.apache.spark.api.plugin.ExecutorPlugin;
import org.apache.spark.api.plugin.PluginContext;
import org.apache.spark.network.netty.SparkTransportConf;
import scala.Option;

/**
 * The executor side: starts the block server, announces its address to the driver before the executor runs any
 * task (a synchronous ask), and owns the client the shuffle readers of this JVM share.
 */
final class ExecutorAgent implements ExecutorPlugin {
    private static volatile AzSdpBlockStoreClient client;
    private BlockServer server;

    @Override
    public void init(PluginContext ctx, Map<String, String> extraConf) {
        SparkConf conf = ctx.conf();
        ShuffleConf settings = ShuffleConf.from(conf);
        SparkEnv env = SparkEnv.get();
        SecurityManager security = env.securityManager();
        String secret = security.isAuthenticationEnabled() ? security.getSecretKey() : null;
        String appId = conf.getAppId();
        try {
            server = BlockServer.start(settings, new ShuffleBlockSource(), appId, secret);
            // The block manager's host (already initialized when plugins start): the executor's advertised host name.
            String host = env.blockManager().blockManagerId().host();
            ctx.ask(new Messages.Announce(new ExecutorAddress(ctx.executorID(), host, server.port())));
        } catch (IOException e) {
            throw new UncheckedIOException("AZ-SDP shuffle block server did not start", e);
        } catch (Exception e) {
            throw new IllegalStateException("could not announce the AZ-SDP block server to the driver", e);
        }
        client = new AzSdpBlockStoreClient(settings, new DriverAddressBook(ctx, settings.lookupTimeoutMs()), appId,
                secret, SparkTransportConf.fromSparkConf(conf, "shuffle", 0, Option.empty(), Option.empty()),
                env.blockManager().blockStoreClient());
        TransportCounters.register(ctx.metricRegistry());
    }

    @Override
    public void shutdown() {
        AzSdpBlockStoreClient c = client;
        client = null;
        if (c != null) {
            c.close();
        }
        if (server != null) {
            server.close();
        }
    }

    /** The client of this executor JVM; fails with the fix when the plugin is not configured. */
    static AzSdpBlockStoreClient client() {
        AzSdpBlockStoreClient c = client;
        if (c == null) {
            throw new IllegalStateException("the AZ-SDP shuffle client is not running in this JVM: set "
                    + "spark.plugins=" + AzSdpShufflePlugin.class.getName() + " along with the shuffle manager");
        }
        return c;
    }
}
