package io.azsdp.it;

import io.azsdp.config.AzSdpConfig;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * 64 connections between two JVMs at once, opened in parallel, each moving 4 MiB both ways at the same time (random
 * sizes up to 1 MiB, mixed paths, mode auto), every byte and both checksums checked on every connection.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class ConcurrentConnectionsTest extends MultiJvmTestBase {
    private static final int CONNECTIONS = 64;
    private static final long BYTES = 4L << 20;

    @ParameterizedTest(name = "{0}: 64 connections x 4 MiB each way")
    @ValueSource(strings = {"shm", "tcp"})
    void sixtyFourConnectionsAtOnce(String fabric) throws Exception {
        assumeFabric(fabric);
        Peer peer = startServer("conc-" + fabric, peerProps(AzSdpConfig.MODE, "auto"));
        AzSdpConfig cfg = config(AzSdpConfig.FABRIC, fabric, AzSdpConfig.MODE, "auto");
        streamBothWays(fabric + "/x" + CONNECTIONS, peer, peer.port(), cfg,
                Side.of(config(AzSdpConfig.FABRIC, fabric)), CONNECTIONS, BYTES,
                1 << 20, Duration.ofSeconds(120));
        peer.close();
    }
}
