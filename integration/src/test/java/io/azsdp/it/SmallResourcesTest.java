package io.azsdp.it;

import io.azsdp.config.AzSdpConfig;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The two-JVM, both-directions stream of {@link TwoJvmStreamTest} (64 MiB each way, mode auto, different thresholds
 * on each side) with legal but small resources on both sides, where credits run out often and every advert is pulled
 * in many READs, each acknowledged by an RdmaRdCompl that needs a credit.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class SmallResourcesTest extends MultiJvmTestBase {
    /** Smallest legal resources: 4 receive buffers of 1 KiB, 1 credit reserved, 1 advert, 4 KiB pools and READs. */
    private static final String MINIMUM = String.join(",", AzSdpConfig.BCOPY_BUFFERS, "4",
            AzSdpConfig.BCOPY_BUFFER_SIZE, "1024", AzSdpConfig.CREDITS_RESERVE, "1", AzSdpConfig.ZCOPY_MAX_ADVERTS, "1",
            AzSdpConfig.ZCOPY_POOL_BYTES, "4096", AzSdpConfig.ZCOPY_READ_CHUNK, "4096",
            AzSdpConfig.ZCOPY_STAGING_BYTES, "4096");
    /** Defaults but for 16 KiB READs: a 4 MiB advert takes 256 of them. */
    private static final String SMALL_READ_CHUNK = String.join(",", AzSdpConfig.ZCOPY_READ_CHUNK, "16384");

    static Stream<Arguments> cases() {
        Stream.Builder<Arguments> b = Stream.builder();
        for (String fabric : new String[] {"shm", "tcp"}) {
            b.add(Arguments.of(fabric, "minimum", MINIMUM));
            b.add(Arguments.of(fabric, "readChunk-16KiB", SMALL_READ_CHUNK));
        }
        return b.build();
    }

    @ParameterizedTest(name = "{0}: {1} resources, 64 MiB each way")
    @MethodSource("cases")
    void streamWithSmallResources(String fabric, String name, String settings) throws Exception {
        assumeFabric(fabric);
        String[] kv = settings.split(",");
        int clientThreshold = 2048;
        int peerThreshold = 8192;
        Peer peer = startServer("small-" + fabric + "-" + name, peerProps(with(kv, AzSdpConfig.MODE, "auto",
                AzSdpConfig.ZCOPY_THRESHOLD, Integer.toString(peerThreshold))));
        AzSdpConfig cfg = config(with(kv, AzSdpConfig.FABRIC, fabric, AzSdpConfig.MODE, "auto",
                AzSdpConfig.ZCOPY_THRESHOLD, Integer.toString(clientThreshold)));
        streamBothWays(fabric + "/" + name, peer, peer.port(), cfg, new Side("auto", peerThreshold), 1, 64L << 20,
                Traffic.MAX_MESSAGE, Duration.ofSeconds(90));
        peer.close();
    }

    private static String[] with(String[] kv, String... more) {
        List<String> all = new ArrayList<>(List.of(kv));
        all.addAll(List.of(more));
        return all.toArray(new String[0]);
    }
}
