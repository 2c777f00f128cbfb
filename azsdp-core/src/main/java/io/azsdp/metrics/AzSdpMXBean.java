package io.azsdp.metrics;

/** JMX view of {@link AzSdpMetrics}, registered as {@code io.azsdp:type=AzSdp}. */
public interface AzSdpMXBean {
    int getOpenConnections();

    long getBcopyBytesSent();

    long getZcopyBytesSent();

    long getBcopyBytesReceived();

    long getZcopyBytesReceived();

    /** Of the zero-copy bytes received, those READ into the staging pool (copied once more to the reader). */
    long getStagedBytesReceived();

    long getSrcAvailsSent();

    long getRdmaRdComplsSent();

    long getProtectedSends();

    long getProtectedSendsReused();

    long getProtectSkipped();

    long getSyncZcopyCrowdedBytes();

    long getSpilledBytes();

    int getSrcAvailsOutstanding();

    long getWriterStalls();

    long getProtectionFaults();

    long getFaultWaitNanos();

    int getFaultWaitersNow();

    /** Bucket 0: faults resolved while spinning; bucket b >= 1: waits of [2^(b-1), 2^b) ns. */
    long[] getFaultWaitHistogram();
}
