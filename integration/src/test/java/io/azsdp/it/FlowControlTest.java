package io.azsdp.it;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.azsdp.config.AzSdpConfig;
import io.azsdp.socket.AzSdpSocket;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Credit flow control under a write-then-read exchange, default configuration. We write 32 MiB (mostly zero copy)
 * and only then read; the peer meanwhile writes 8 MiB in bcopy (so, as we do not read yet, its credits run down to
 * the reserve) and reads our stream with 8 KiB direct-buffer reads, each a zero-copy READ acknowledged by its own
 * RdmaRdCompl that needs a credit. With TCP semantics this exchange simply completes; here the acknowledgements can
 * only trickle back at the credit round-trip rate, and nothing may be lost or aborted while they wait.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class FlowControlTest extends MultiJvmTestBase {

    @ParameterizedTest(name = "{0}: write-then-read against 8 KiB zero-copy reads, default config")
    @ValueSource(strings = {"shm", "tcp"})
    void writeThenReadAgainstSmallDirectReads(String fabric) throws Exception {
        assumeFabric(fabric);
        String what = fabric + "/small-direct-reads";
        long toPeer = 32L << 20;
        long fromPeer = 8L << 20;
        Peer peer = startServer("flow-" + fabric, peerProps(AzSdpConfig.MODE, "bcopy"));
        AzSdpConfig cfg = config(AzSdpConfig.FABRIC, fabric, AzSdpConfig.MODE, "auto");
        AzSdpSocket s = connect(cfg, peer.port());
        s.setSoTimeout(30_000);
        long seed = System.nanoTime();
        Job job = new Job(Job.STREAM_SMALL_DIRECT_READS, 0, seed, toPeer, fromPeer, Traffic.MAX_MESSAGE);
        log("%s: seed %d", what, seed);
        job.writeTo(s);
        Task<Traffic.Result[]> exchange = start(what + "-exchange", () -> new Traffic.Result[] {
            Traffic.send(s, job.clientSeed(), toPeer, Traffic.MAX_MESSAGE, null),
            Traffic.receive(s, job.peerSeed(), fromPeer, Traffic.MAX_MESSAGE, Traffic.MAX_MESSAGE, null)});
        awaitAll(what, Duration.ofSeconds(90), () -> abort(s), List.of(peer), List.of(exchange));
        Traffic.Result sent = exchange.get()[0];
        Traffic.Result got = exchange.get()[1];
        Map<String, String> p = peer.awaitFields("RESULT", Duration.ofSeconds(30));
        assertEquals(sent.crc(), Long.parseLong(p.get("recvCrc")), "CRC32C of client->peer");
        assertEquals(Long.parseLong(p.get("sentCrc")), got.crc(), "CRC32C of peer->client");
        assertEquals(-1, s.getInputStream().read(), "end of stream after the peer's orderly close");
        log("%s: counters client %s | peer %s", what, Traffic.format(Traffic.counters(s)), Traffic.format(p));
        s.close();
        peer.close();
    }
}
