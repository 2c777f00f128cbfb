package io.azsdp.sdp;

import io.azsdp.fabric.MemoryRegion;

/**
 * Sender side: the SrcAvail adverts outstanding, oldest first, with what to give back once the peer has read each
 * (RdmaRdCompl are applied to the oldest adverts, in order). Fixed capacity, no allocation per advert.
 */
final class TxAdverts {
    /** The writer waits for it (synchronous ZCopy). */
    static final int SYNC = 0;
    /** AZ-SDP: the application's pages are protected until the peer has read them. */
    static final int PROTECTED = 1;
    /** AZ-SDP copy path: a range of the send staging ring. */
    static final int STAGED = 2;

    private final int[] mseq;
    private final int[] len;
    private final int[] acked;
    private final int[] kind;
    private final int[] rangeId;
    private final int[] stageOff;
    private final MemoryRegion[] region;
    private final long[] address;
    private int head;
    private int count;
    /** Bytes advertised so far, modulo 2^32: the peer counts the bytes it read the same way in our notify word. */
    private int advertised;

    TxAdverts(int capacity) {
        mseq = new int[capacity];
        len = new int[capacity];
        acked = new int[capacity];
        kind = new int[capacity];
        rangeId = new int[capacity];
        stageOff = new int[capacity];
        region = new MemoryRegion[capacity];
        address = new long[capacity];
    }

    int count() {
        return count;
    }

    boolean full() {
        return count == mseq.length;
    }

    /** The notify-word value at which an advert of {@code n} more bytes will have been read. */
    int targetAfter(int n) {
        return advertised + n;
    }

    /** Records an advert just sent; returns its index. */
    int push(int msgSeq, int bytes, int k, MemoryRegion mr, long vaddr, int range, int off) {
        int i = (head + count) % mseq.length;
        mseq[i] = msgSeq;
        len[i] = bytes;
        acked[i] = 0;
        kind[i] = k;
        region[i] = mr;
        address[i] = vaddr;
        rangeId[i] = range;
        stageOff[i] = off;
        count++;
        advertised += bytes;
        return i;
    }

    /**
     * Checks RdmaRdCompl for {@code n} bytes against the bytes of all adverts outstanding not yet acknowledged (one
     * RdmaRdCompl may cover several adverts).
     */
    void checkAck(int n) throws SdpProtocolException {
        long unacked = 0;
        for (int k = 0; k < count; k++) {
            int i = (head + k) % len.length;
            unacked += len[i] - acked[i];
        }
        if (n <= 0 || n > unacked) {
            throw new SdpProtocolException("RdmaRdCompl for " + n + " bytes with " + count + " SrcAvail outstanding ("
                    + unacked + " bytes unacknowledged)");
        }
    }

    /** Applies {@code n} acknowledged bytes to the oldest advert, at most what it lacks; true when it is fully read. */
    boolean ack(int n) {
        acked[head] += n;
        return acked[head] == len[head];
    }

    int head() {
        return head;
    }

    void pop() {
        region[head] = null;
        head = (head + 1) % mseq.length;
        count--;
    }

    int kind(int i) {
        return kind[i];
    }

    int len(int i) {
        return len[i];
    }

    int acked(int i) {
        return acked[i];
    }

    int rangeId(int i) {
        return rangeId[i];
    }

    int stageOff(int i) {
        return stageOff[i];
    }

    MemoryRegion region(int i) {
        return region[i];
    }

    /** Where advert i's bytes start (in the peer's terms). */
    long address(int i) {
        return address[i];
    }
}
