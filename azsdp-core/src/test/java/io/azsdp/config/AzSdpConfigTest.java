package io.azsdp.config;

import org.junit.jupiter.api.Test;

import java.util.Properties;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AzSdpConfigTest {
    private static AzSdpConfig load(String... kv) {
        Properties p = new Properties();
        for (int i = 0; i < kv.length; i += 2) {
            p.setProperty(kv[i], kv[i + 1]);
        }
        return AzSdpConfig.load(p);
    }

    @Test
    void unknownKeysAndBadValuesNameTheKey() {
        IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class,
                () -> load("azsdp.zcopy.treshold", "1"));
        assertTrue(unknown.getMessage().contains("azsdp.zcopy.treshold"), unknown.getMessage());
        IllegalArgumentException bad = assertThrows(IllegalArgumentException.class,
                () -> load(AzSdpConfig.ZCOPY_THRESHOLD_TCP, "0"));
        assertTrue(bad.getMessage().contains(AzSdpConfig.ZCOPY_THRESHOLD_TCP), bad.getMessage());
        assertThrows(IllegalArgumentException.class, () -> load().with(AzSdpConfig.MODE, "fast"));
    }

    @Test
    void tcpHasItsOwnZeroCopyThresholdUnlessTheGeneralOneIsSet() {
        AzSdpConfig defaults = load();
        assertEquals(65536, defaults.zcopyThreshold("shm"));
        assertEquals(Integer.MAX_VALUE, defaults.zcopyThreshold("tcp"));
        assertEquals(65536, defaults.zcopyThreshold("rdma"), "a fabric without its own key uses the general one");

        AzSdpConfig general = load(AzSdpConfig.ZCOPY_THRESHOLD, "4096");
        assertEquals(4096, general.zcopyThreshold("shm"));
        assertEquals(4096, general.zcopyThreshold("tcp"));

        AzSdpConfig both = load(AzSdpConfig.ZCOPY_THRESHOLD_TCP, "8192", AzSdpConfig.ZCOPY_THRESHOLD, "4096");
        assertEquals(4096, both.zcopyThreshold("shm"));
        assertEquals(8192, both.zcopyThreshold("tcp"), "the fabric's own key wins in the same layer");

        AzSdpConfig perSocket = both.with(AzSdpConfig.ZCOPY_THRESHOLD, 100);
        assertEquals(100, perSocket.zcopyThreshold("tcp"), "a later general setting applies to every fabric");
    }

    @Test
    void shmHasItsOwnReceiveBuffersUnlessTheGeneralKeyIsSet() {
        AzSdpConfig shmOnly = load(AzSdpConfig.BCOPY_BUFFERS_SHM, "32");
        assertEquals(32, shmOnly.bcopyBuffers("shm"));
        assertEquals(16, shmOnly.bcopyBuffers("tcp"));
        AzSdpConfig general = shmOnly.with(AzSdpConfig.BCOPY_BUFFERS, 8);
        assertEquals(8, general.bcopyBuffers("shm"));
        assertEquals(8, general.bcopyBuffers("tcp"));
        IllegalArgumentException tooFew = assertThrows(IllegalArgumentException.class,
                () -> load(AzSdpConfig.BCOPY_BUFFERS_SHM, "4", AzSdpConfig.CREDITS_RESERVE, "3"));
        assertTrue(tooFew.getMessage().contains(AzSdpConfig.BCOPY_BUFFERS_SHM), tooFew.getMessage());
    }

    @Test
    void shmHasItsOwnProtectionSyncBelowUnlessTheGeneralOneIsSet() {
        AzSdpConfig defaults = load();
        assertEquals(524288, defaults.protectionSyncBelow("shm"));
        assertEquals(0, defaults.protectionSyncBelow("rdma"), "a fabric without its own key uses the general one");

        AzSdpConfig general = load(AzSdpConfig.PROTECTION_SYNC_BELOW, "0");
        assertEquals(0, general.protectionSyncBelow("shm"));

        AzSdpConfig both = load(AzSdpConfig.PROTECTION_SYNC_BELOW_SHM, "8192", AzSdpConfig.PROTECTION_SYNC_BELOW, "0");
        assertEquals(8192, both.protectionSyncBelow("shm"), "the fabric's own key wins in the same layer");
        assertEquals(0, both.with(AzSdpConfig.PROTECTION_SYNC_BELOW, 0).protectionSyncBelow("shm"));
        assertThrows(IllegalArgumentException.class, () -> load(AzSdpConfig.PROTECTION_SYNC_BELOW_SHM, "-1"));
    }
}
