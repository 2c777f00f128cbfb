package io.azsdp.sdp;

/**
 * Per-connection transfer counters. Written under the connection lock (protectSkipped and syncZcopyCrowdedBytes under
 * the write lock); read without it (monitoring only).
 */
public final class SdpStats {
    long bcopyBytesSent;
    long gatheredBytesSent;
    long zcopyBytesSent;
    long bcopyBytesReceived;
    long spilledBytes;
    long zcopyBytesReceived;
    long stagedBytesReceived;
    long bytesReceived;
    long messagesSent;
    long srcAvailsSent;
    long rdmaRdComplsSent;
    long protectedSends;
    long protectedReused;
    long protectSkipped;
    long syncZcopyCrowdedBytes;
    long writerStalls;
    long signalsCaughtSpinning;

    /** Adds these counters to {@code total} (under total's monitor: closing connections add concurrently). */
    void addTo(SdpStats total) {
        synchronized (total) {
            total.bcopyBytesSent += bcopyBytesSent;
            total.gatheredBytesSent += gatheredBytesSent;
            total.zcopyBytesSent += zcopyBytesSent;
            total.bcopyBytesReceived += bcopyBytesReceived;
            total.spilledBytes += spilledBytes;
            total.zcopyBytesReceived += zcopyBytesReceived;
            total.stagedBytesReceived += stagedBytesReceived;
            total.bytesReceived += bytesReceived;
            total.messagesSent += messagesSent;
            total.srcAvailsSent += srcAvailsSent;
            total.rdmaRdComplsSent += rdmaRdComplsSent;
            total.protectedSends += protectedSends;
            total.protectedReused += protectedReused;
            total.protectSkipped += protectSkipped;
            total.syncZcopyCrowdedBytes += syncZcopyCrowdedBytes;
            total.writerStalls += writerStalls;
            total.signalsCaughtSpinning += signalsCaughtSpinning;
        }
    }

    /** Payload bytes sent by buffered copy (Data messages). */
    public long bcopyBytesSent() {
        return bcopyBytesSent;
    }

    /** Of {@link #bcopyBytesSent}, those sent straight from the application's buffer (no copy into a send buffer). */
    public long gatheredBytesSent() {
        return gatheredBytesSent;
    }

    /** Bytes the peer pulled from our buffers with one-sided READs. */
    public long zcopyBytesSent() {
        return zcopyBytesSent;
    }

    public long bcopyBytesReceived() {
        return bcopyBytesReceived;
    }

    /**
     * Of {@link #bcopyBytesReceived}, those received in place that had to move to private memory before they were
     * read, because the application held them while much traffic came after them (see azsdp.bcopy.inPlace).
     */
    public long spilledBytes() {
        return spilledBytes;
    }

    /** Bytes we pulled with one-sided READs (into the application's buffer or the staging pool). */
    public long zcopyBytesReceived() {
        return zcopyBytesReceived;
    }

    /** Of {@link #zcopyBytesReceived}, those READ into the staging pool: the reader copies them once more. */
    public long stagedBytesReceived() {
        return stagedBytesReceived;
    }

    /** Bytes handed to the application. */
    public long bytesReceived() {
        return bytesReceived;
    }

    public long messagesSent() {
        return messagesSent;
    }

    public long srcAvailsSent() {
        return srcAvailsSent;
    }

    /** RdmaRdCompl messages sent: one may acknowledge several of the peer's adverts (see SdpConnection). */
    public long rdmaRdComplsSent() {
        return rdmaRdComplsSent;
    }

    /** Times a writer had to wait for a credit, a send buffer, an advert slot or staging space. */
    public long writerStalls() {
        return writerStalls;
    }

    /**
     * Waits on tcp whose event another thread of the connection delivered (it was reading the socket) while this one
     * watched for it spinning, instead of parking on its condition.
     */
    public long signalsCaughtSpinning() {
        return signalsCaughtSpinning;
    }

    /** AZ-SDP adverts whose pages were protected instead of copied. */
    public long protectedSends() {
        return protectedSends;
    }

    /** Protected sends whose pages were still read-only from an earlier send of them (no mprotect: lazy unprotect). */
    public long protectedReused() {
        return protectedReused;
    }

    /**
     * Azsdp-mode writes sent by synchronous zero copy because protecting fresh pages would have cost more (see
     * {@code azsdp.protection.syncBelow}).
     */
    public long protectSkipped() {
        return protectSkipped;
    }

    /**
     * Of {@link #bcopyBytesSent}, those of auto-mode writes at or above the zero-copy threshold, sent by BCopy because
     * as many synchronous zero-copy writes as this JVM allows at once were already waiting for their peers (see
     * SyncZcopyWriters).
     */
    public long syncZcopyCrowdedBytes() {
        return syncZcopyCrowdedBytes;
    }

    @Override
    public String toString() {
        return "SdpStats[bcopySent=" + bcopyBytesSent + ", gatheredSent=" + gatheredBytesSent + ", zcopySent="
                + zcopyBytesSent + ", bcopyRecv=" + bcopyBytesReceived + ", spilled=" + spilledBytes
                + ", zcopyRecv=" + zcopyBytesReceived
                + ", stagedRecv=" + stagedBytesReceived + ", delivered=" + bytesReceived
                + ", messages=" + messagesSent + ", srcAvails=" + srcAvailsSent + ", rdmaRdCompls=" + rdmaRdComplsSent
                + ", protected=" + protectedSends
                + ", protectedReused=" + protectedReused + ", protectSkipped=" + protectSkipped
                + ", syncZcopyCrowdedBytes=" + syncZcopyCrowdedBytes
                + ", writerStalls=" + writerStalls + ", signalsCaughtSpinning=" + signalsCaughtSpinning + "]";
    }
}
