package io.azsdp.sdp;

/**
 * A connection's receive stream: a FIFO of segments, each a Data message held in its receive buffer or a SrcAvail
 * advert. The segments are pooled and reused in ring order, so receiving allocates nothing. Not thread-safe: the
 * connection's lock guards it.
 */
final class RxQueue {
    private final RxSegment[] ring;
    private int head;
    private int count;
    private int adverts;

    RxQueue(int capacity) {
        ring = new RxSegment[capacity];
        for (int i = 0; i < capacity; i++) {
            ring[i] = new RxSegment();
        }
    }

    int size() {
        return count;
    }

    /** Adverts in the queue, read or not. */
    int adverts() {
        return adverts;
    }

    /** The oldest segment; the queue must not be empty. */
    RxSegment head() {
        return ring[head];
    }

    /** The {@code i}-th segment from the head. */
    RxSegment get(int i) {
        return ring[(head + i) % ring.length];
    }

    /** A new Data segment at the tail, for the caller to fill in. */
    RxSegment pushData() throws SdpProtocolException {
        RxSegment s = push();
        s.advert = false;
        return s;
    }

    /** A new advert at the tail, its progress counters at zero, for the caller to fill in. */
    RxSegment pushAdvert() throws SdpProtocolException {
        RxSegment s = push();
        s.advert = true;
        s.requested = s.readDone = s.consumed = 0;
        adverts++;
        return s;
    }

    private RxSegment push() throws SdpProtocolException {
        if (count == ring.length) {
            throw new SdpProtocolException("receive queue overrun");
        }
        return ring[(head + count++) % ring.length];
    }

    void pop() {
        if (ring[head].advert) {
            adverts--;
        }
        head = (head + 1) % ring.length;
        count--;
    }

    /**
     * Drops the adverts left with no bytes (a cancel withdrew them before any was read), wherever they are; the other
     * segments keep their order. The dropped segments move behind the live ones, back into the pool.
     */
    void removeEmptyAdverts() {
        int kept = 0;
        for (int i = 0; i < count; i++) {
            RxSegment s = get(i);
            if (s.advert && s.len == 0) {
                continue;
            }
            if (kept != i) { // swap: the empty advert at kept moves to i, behind every live segment seen so far
                int to = (head + kept) % ring.length;
                ring[(head + i) % ring.length] = ring[to];
                ring[to] = s;
            }
            kept++;
        }
        adverts -= count - kept;
        count = kept;
    }
}
