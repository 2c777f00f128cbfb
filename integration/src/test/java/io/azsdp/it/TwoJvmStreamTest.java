package io.azsdp.it;

import io.azsdp.config.AzSdpConfig;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Two JVMs, one connection, both directions at the same time: random message sizes from 1 B to 4 MiB on mixed write
 * paths ({@code OutputStream.write}, {@code byteChannel().write} of direct and heap buffers), random read sizes on
 * mixed read paths, CRC32C and every byte checked, transfer counters proving the mode. The test JVM is the client and
 * picks the fabric; the peer serves both.
 */
@Timeout(value = 240, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class TwoJvmStreamTest extends MultiJvmTestBase {
    private static final long GIB = 1L << 30;
    private static final long MIB_256 = 256L << 20;

    static Stream<Arguments> cases() {
        Stream.Builder<Arguments> b = Stream.builder();
        for (String fabric : new String[] {"shm", "tcp"}) {
            // name, fabric, mode, bytes per direction, client threshold, peer threshold
            b.add(Arguments.of("auto", fabric, "auto", GIB, 65536, 65536));
            b.add(Arguments.of("auto-mixed-thresholds", fabric, "auto", GIB, 4096, 200_000));
            b.add(Arguments.of("bcopy-only", fabric, "bcopy", MIB_256, 65536, 65536));
            b.add(Arguments.of("zcopy-only", fabric, "zcopy", MIB_256, 65536, 65536));
        }
        return b.build();
    }

    @ParameterizedTest(name = "{1} {0}: {3} bytes each way")
    @MethodSource("cases")
    void bothDirectionsAtOnce(String name, String fabric, String mode, long bytes, int clientThreshold,
                              int peerThreshold) throws Exception {
        assumeFabric(fabric);
        Peer peer = startServer("stream-" + fabric + "-" + name, peerProps(AzSdpConfig.MODE, mode,
                AzSdpConfig.ZCOPY_THRESHOLD, Integer.toString(peerThreshold)));
        int port = peer.port();
        AzSdpConfig cfg = config(AzSdpConfig.FABRIC, fabric, AzSdpConfig.MODE, mode, AzSdpConfig.ZCOPY_THRESHOLD,
                Integer.toString(clientThreshold));
        streamBothWays(fabric + "/" + name, peer, port, cfg, new Side(mode, peerThreshold), 1, bytes,
                Traffic.MAX_MESSAGE, Duration.ofSeconds(180));
        peer.close();
    }
}
