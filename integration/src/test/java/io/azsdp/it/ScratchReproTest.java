package io.azsdp.it;

import io.azsdp.config.AzSdpConfig;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Temporary: -Dit.fabric -Dit.extra=k=v,... -Dit.bytes -Dit.mode -Dit.cthr -Dit.pthr -Dit.reps */
class ScratchReproTest extends MultiJvmTestBase {
    @Test
    void repro() throws Exception {
        String fabric = System.getProperty("it.fabric", "shm");
        List<String> kv = new ArrayList<>();
        for (String e : System.getProperty("it.extra", "").split(",")) {
            if (!e.isBlank()) {
                kv.add(e.substring(0, e.indexOf('=')));
                kv.add(e.substring(e.indexOf('=') + 1));
            }
        }
        String mode = System.getProperty("it.mode", "auto");
        int reps = Integer.getInteger("it.reps", 1);
        for (int i = 0; i < reps; i++) {
            List<String> p = new ArrayList<>(kv);
            p.addAll(List.of(AzSdpConfig.MODE, mode, AzSdpConfig.ZCOPY_THRESHOLD, System.getProperty("it.pthr", "65536")));
            Peer peer = startServer("scratch", peerProps(p.toArray(new String[0])));
            List<String> c = new ArrayList<>(kv);
            c.addAll(List.of(AzSdpConfig.FABRIC, fabric, AzSdpConfig.MODE, mode, AzSdpConfig.ZCOPY_THRESHOLD,
                    System.getProperty("it.cthr", "65536")));
            AzSdpConfig cfg = config(c.toArray(new String[0]));
            streamBothWays("scratch-" + i, peer, peer.port(), cfg, new Side(mode, Integer.parseInt(System.getProperty("it.pthr", "65536"))), 1,
                    Long.getLong("it.bytes", 64L << 20), Integer.getInteger("it.maxmsg", Traffic.MAX_MESSAGE), Duration.ofSeconds(60));
            peer.close();
        }
    }
}
