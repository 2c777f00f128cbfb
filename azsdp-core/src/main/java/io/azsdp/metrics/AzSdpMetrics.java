package io.azsdp.metrics;

import io.azsdp.config.AzSdpConfig;
import io.azsdp.memory.ProtectedMemory;
import io.azsdp.nativeio.NativeLib;
import io.azsdp.sdp.SdpConnection;
import io.azsdp.sdp.SdpStats;
import java.lang.management.ManagementFactory;
import java.util.function.ToLongFunction;
import javax.management.JMException;
import javax.management.ObjectName;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Process-wide transport metrics: the counters of the open connections plus those of closed ones, and the page-fault
 * figures of asynchronous zero copy. Reads are racy snapshots (monitoring only); nothing here is on a data path.
 */
public final class AzSdpMetrics implements AzSdpMXBean {
    private static final Logger LOG = LoggerFactory.getLogger(AzSdpMetrics.class);
    private static final AzSdpMetrics INSTANCE = new AzSdpMetrics();
    private static volatile boolean registered;

    private AzSdpMetrics() {
    }

    public static AzSdpMetrics get() {
        return INSTANCE;
    }

    /** Registers the MXBean once (the socket layer calls it when the first connection opens). */
    public static void register() {
        if (registered) {
            return;
        }
        synchronized (AzSdpMetrics.class) {
            if (registered) {
                return;
            }
            registered = true;
            if (protection()) {
                FaultWatchdog.start(AzSdpConfig.global().intValue(AzSdpConfig.PROTECTION_WARN_MS));
            }
            try {
                ManagementFactory.getPlatformMBeanServer().registerMBean(INSTANCE, new ObjectName("io.azsdp:type=AzSdp"));
            } catch (JMException | RuntimeException e) {
                LOG.info("AZ-SDP metrics not registered in JMX: {}", e.toString());
            }
        }
    }

    /** One counter over the closed connections plus the open ones. */
    private static long sum(ToLongFunction<SdpStats> counter) {
        long n = counter.applyAsLong(SdpConnection.retiredTotals());
        for (SdpConnection c : SdpConnection.live()) {
            n += counter.applyAsLong(c.stats());
        }
        return n;
    }

    private static boolean protection() {
        return NativeLib.isAvailable() && ProtectedMemory.unavailableReason() == null;
    }

    @Override
    public int getOpenConnections() {
        return SdpConnection.live().size();
    }

    @Override
    public long getBcopyBytesSent() {
        return sum(SdpStats::bcopyBytesSent);
    }

    @Override
    public long getZcopyBytesSent() {
        return sum(SdpStats::zcopyBytesSent);
    }

    @Override
    public long getBcopyBytesReceived() {
        return sum(SdpStats::bcopyBytesReceived);
    }

    @Override
    public long getZcopyBytesReceived() {
        return sum(SdpStats::zcopyBytesReceived);
    }

    @Override
    public long getStagedBytesReceived() {
        return sum(SdpStats::stagedBytesReceived);
    }

    @Override
    public long getSrcAvailsSent() {
        return sum(SdpStats::srcAvailsSent);
    }

    @Override
    public long getRdmaRdComplsSent() {
        return sum(SdpStats::rdmaRdComplsSent);
    }

    @Override
    public long getProtectedSends() {
        return sum(SdpStats::protectedSends);
    }

    @Override
    public long getProtectedSendsReused() {
        return sum(SdpStats::protectedReused);
    }

    @Override
    public long getProtectSkipped() {
        return sum(SdpStats::protectSkipped);
    }

    @Override
    public long getSyncZcopyCrowdedBytes() {
        return sum(SdpStats::syncZcopyCrowdedBytes);
    }

    @Override
    public long getSpilledBytes() {
        return sum(SdpStats::spilledBytes);
    }

    @Override
    public long getWriterStalls() {
        return sum(SdpStats::writerStalls);
    }

    @Override
    public int getSrcAvailsOutstanding() {
        int n = 0;
        for (SdpConnection c : SdpConnection.live()) {
            n += c.advertsOutstanding();
        }
        return n;
    }

    @Override
    public long getProtectionFaults() {
        return protection() ? NativeLib.protectionFaults() : 0;
    }

    @Override
    public long getFaultWaitNanos() {
        return protection() ? NativeLib.protectionWaitNanos() : 0;
    }

    @Override
    public int getFaultWaitersNow() {
        return protection() ? NativeLib.protectionWaiters() : 0;
    }

    @Override
    public long[] getFaultWaitHistogram() {
        long[] h = new long[40];
        if (protection()) {
            NativeLib.protectionWaitHistogram(h);
        }
        return h;
    }
}
