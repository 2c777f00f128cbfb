package io.azsdp.fabric.shm;

import static io.azsdp.fabric.shm.ShmSegment.INT;
import static io.azsdp.fabric.shm.ShmSegment.LONG;
import static io.azsdp.fabric.shm.ShmSegment.RECORD_HEADER;

import io.azsdp.fabric.FabricException;
import io.azsdp.fabric.WcStatus;
import io.azsdp.nativeio.NativeLib;
import java.nio.ByteBuffer;

/**
 * One direction's single-producer single-consumer message ring in the segment. An endpoint holds two instances: the
 * outbound ring, on which it only calls producer methods (under its send lock), and the inbound ring, on which only its
 * progress thread calls consumer methods (plus {@link #ring} for local wake-ups).
 *
 * <p>{@code head}, {@code tail} and the consumer's {@code cursor} are monotonically increasing byte counters (position
 * = counter % capacity). Records are 8-byte aligned and never straddle the end: a PAD record fills the rest at wrap.
 * The producer publishes a record by storing its 8-byte header last; the tail is its own. Before that it zeroes the
 * header after the record, so the consumer, which looks only at record boundaries, sees either zero (nothing yet) or
 * a header the producer stored in this lap, and never stale bytes of an earlier lap. The consumer thus polls the line
 * the record arrives in, rather than a tail word and then the record: one cache line fewer moves between the cores
 * per record. The producer keeps 8 bytes free beyond each record for that next header, and caches the consumer's
 * {@code head}, re-reading the shared line only when the cached value says "full".
 *
 * <p>The consumer reads at its {@code cursor}; {@code head} frees space behind it. Copying consumers move both
 * together. In place ({@link #receiveInPlace}) each delivered message stays where it is until its receive is posted
 * again: {@code head} then moves past the oldest messages whose receives came back ({@link #release}), pads included.
 * A sender that honours credits never overruns: the ring holds one message per posted receive plus one (the pad and
 * the next header), as long as the space pinned behind the oldest message held stays within what the held receives
 * leave unused ({@link #crowded}).
 *
 * <p>Wake-up protocol (Dekker on two volatile words): the producer publishes a header with a volatile store and then
 * reads {@code sleeping}; the consumer sets {@code sleeping}, reads the doorbell, re-checks the header at its cursor,
 * and only then futex-waits on the doorbell value it read. Either the consumer sees the header, or the producer sees the
 * flag and bumps the doorbell (so the futex wait returns at once or is woken). A consumer that sleeps "deferring" is
 * not woken for deferrable records; whoever ends the deferral ({@link #stopDeferring}) rings if it did. While the
 * consumer's poller flag is set ({@link #beginPolling}), no record rings it; the poller rings for what is left when it
 * stops ({@link #endPolling}).
 */
final class ShmRing {
    static final int TYPE_MSG = 1;
    static final int TYPE_PAD = 2;

    private final ByteBuffer buf;
    private final int headOff;
    /** Consumer states in the sleeping word. Deferring: asleep, but deferrable records need not wake it. */
    static final int AWAKE = 0;
    static final int ASLEEP = 1;
    static final int ASLEEP_DEFERRING = 2;

    private final int doorbellOff;
    private final int sleepingOff;
    /** Non-zero while an application thread of the consumer polls the ring (see {@link #endPolling}). */
    private final int pollingOff;
    private final int data;
    private final int capacity;
    private final int maxMessage;
    /** The space one largest message takes, header included. */
    private final long maxRecord;
    private final long doorbellAddress;

    // Producer state, guarded by the endpoint's send lock.
    private long tail;
    private long cachedHead;

    // Consumer state, the consumer only (in place, hold/release and head under the endpoint's receive lock).
    /** Volatile: in place, a thread posting a receive moves it while others check {@link #crowded}. */
    private volatile long head;
    private long cursor;
    /** The cursor, for {@link #peekData} on other threads. */
    private volatile long publishedCursor;
    private int recordPos;
    private int recordSize;

    // Messages delivered in place and not yet released, oldest first: their receives' ids, and where the space ends
    // that their release frees (up to the next one held: messages released out of order merge into the one before).
    private boolean inPlace;
    private long[] heldWrIds;
    private long[] heldEnds;
    private int heldFirst;
    private int heldCount;

    /** Ring {@code r} of {@code seg}: messages into side {@code r}. */
    ShmRing(ShmSegment seg, int r) {
        this.buf = seg.buf;
        int ctl = seg.layout.ctlOffset[r];
        this.headOff = ctl + ShmSegment.CTL_HEAD;
        this.doorbellOff = ctl + ShmSegment.CTL_DOORBELL;
        this.sleepingOff = ctl + ShmSegment.CTL_SLEEPING;
        this.pollingOff = ctl + ShmSegment.CTL_POLLING;
        this.data = seg.layout.dataOffset[r];
        this.capacity = seg.layout.ringCapacity[r];
        this.maxMessage = seg.layout.params[r].maxMessage();
        this.maxRecord = RECORD_HEADER + ShmSegment.align8(maxMessage);
        this.doorbellAddress = seg.base + doorbellOff;
    }

    int maxMessage() {
        return maxMessage;
    }

    /** Consumer, before the first message: deliver in place (see the class comment). Returns the messages' view. */
    ByteBuffer receiveInPlace(int maxPostedRecvs) {
        inPlace = true;
        heldWrIds = new long[maxPostedRecvs];
        heldEnds = new long[maxPostedRecvs];
        return buf.slice(data, capacity).asReadOnlyBuffer();
    }

    // ------------------------------------------------------------------ producer

    /**
     * Copies {@code src[offset, offset+length)} into the ring and publishes it, waking the consumer if it sleeps (a
     * {@code deferrable} record does not wake a consumer that defers; none wakes one whose poller polls). Never blocks.
     *
     * @return false when the ring lacks room (the peer holds more than its credits allow)
     */
    boolean offer(ByteBuffer src, int offset, int length, boolean deferrable) {
        return offer(src, offset, length, null, 0, 0, deferrable);
    }

    /** The same for one record of {@code head[headOffset, +headLength)} then {@code body[bodyOffset, +bodyLength)}. */
    boolean offer(ByteBuffer head, int headOffset, int headLength, ByteBuffer body, int bodyOffset, int bodyLength,
                  boolean deferrable) {
        int length = headLength + bodyLength;
        int rec = RECORD_HEADER + (int) ShmSegment.align8(length);
        int pos = (int) (tail % capacity);
        int toEnd = capacity - pos;
        // The record, the pad before it at wrap, and the next record's header, zeroed below.
        long need = (rec <= toEnd ? rec : (long) toEnd + rec) + RECORD_HEADER;
        if (tail + need - cachedHead > capacity) {
            cachedHead = (long) LONG.getAcquire(buf, headOff);
            if (tail + need - cachedHead > capacity) {
                return false;
            }
        }
        int padPos = -1;
        if (rec > toEnd) {
            padPos = pos;
            tail += toEnd;
            pos = 0;
        }
        NativeLib.copy(buf, data + pos + RECORD_HEADER, head, headOffset, headLength);
        if (body != null) {
            NativeLib.copy(buf, data + pos + RECORD_HEADER + headLength, body, bodyOffset, bodyLength);
        }
        tail += rec;
        LONG.set(buf, data + (int) (tail % capacity), 0L);
        // Volatile, not just release: the last store must be ordered before the load of the sleeping flag below.
        if (padPos < 0) {
            LONG.setVolatile(buf, data + pos, header(length, TYPE_MSG));
        } else {
            LONG.setRelease(buf, data + pos, header(length, TYPE_MSG)); // unseen until the pad is
            LONG.setVolatile(buf, data + padPos, header(toEnd - RECORD_HEADER, TYPE_PAD));
        }
        int s = (int) INT.getVolatile(buf, sleepingOff);
        if ((s == ASLEEP || (s == ASLEEP_DEFERRING && !deferrable)) && (int) INT.getVolatile(buf, pollingOff) == 0) {
            ring();
        }
        return true;
    }

    /** A record header: its payload length and type, stored and loaded as one word. Zero: not yet written. */
    static long header(int length, int type) {
        return (long) type << 32 | (length & 0xFFFF_FFFFL);
    }

    // ------------------------------------------------------------------ both

    /** Bumps the doorbell and wakes the consumer: new data, a posted receive, or a state change. */
    void ring() {
        INT.getAndAdd(buf, doorbellOff, 1);
        NativeLib.futexWake(doorbellAddress, 1);
    }

    // ------------------------------------------------------------------ consumer

    /**
     * True when a record (possibly a pad) is published and unread, from the published cursor and the header there: no
     * consumer state is written, so a thread that is not the current consumer may ask (a hint: the consumer may take
     * it first).
     */
    boolean peekData() {
        return (long) LONG.getVolatile(buf, data + (int) (publishedCursor % capacity)) != 0;
    }

    /**
     * Positions on the next message, skipping pad records.
     *
     * @return its payload length, or -1 when the ring is empty
     * @throws FabricException when the peer wrote something that is not a valid record
     */
    int next() throws FabricException {
        for (;;) {
            int pos = (int) (cursor % capacity);
            long h = (long) LONG.getAcquire(buf, data + pos);
            if (h == 0) {
                return -1;
            }
            int length = (int) h;
            int type = (int) (h >>> 32);
            int rec;
            if (type == TYPE_MSG) {
                if (length < 0 || length > maxMessage) {
                    throw corrupt("message length " + length + " at offset " + pos + " (max " + maxMessage + ")");
                }
                rec = RECORD_HEADER + (int) ShmSegment.align8(length);
                if (rec > capacity - pos) {
                    throw corrupt("message of " + length + " bytes at offset " + pos + " crosses the ring end");
                }
            } else if (type == TYPE_PAD) {
                if (length != capacity - pos - RECORD_HEADER || pos == 0) { // at 0, skipping it leads back to it
                    throw corrupt("pad of " + length + " bytes at offset " + pos + " does not end the ring");
                }
                advance(capacity - pos); // in place, the next message's release frees the pad too
                continue;
            } else {
                throw corrupt("record type " + type + " at offset " + pos);
            }
            recordPos = pos;
            recordSize = rec;
            return length;
        }
    }

    /** Copies the payload of the current message (see {@link #next}). */
    void copyTo(ByteBuffer dst, int offset, int length) {
        NativeLib.copy(dst, offset, buf, data + recordPos + RECORD_HEADER, length);
    }

    /** Frees the current message's space for the producer. */
    void consume() {
        advance(recordSize);
    }

    private void advance(int bytes) {
        cursor += bytes;
        publishedCursor = cursor;
        if (!inPlace) {
            head = cursor;
            LONG.setRelease(buf, headOff, head);
        }
    }

    /**
     * In place, under the receive lock: the current message goes to receive {@code wrId} and stays in the ring until
     * {@link #release}. Returns its payload's offset in the view.
     */
    int hold(long wrId) {
        int offset = recordPos + RECORD_HEADER;
        advance(recordSize);
        int i = (heldFirst + heldCount) % heldWrIds.length; // room: each one held took a posted receive
        heldWrIds[i] = wrId;
        heldEnds[i] = cursor;
        heldCount++;
        return offset;
    }

    /** In place: messages delivered and not yet released. */
    int held() {
        return heldCount;
    }

    /**
     * In place: true when the space from head to the cursor (held messages, and those released behind the oldest one)
     * leaves less room than {@code posted} receives may take, each a largest message, plus a pad: a sender using
     * all its credits could then overrun. Any thread; a racing consumer only makes it less crowded.
     */
    boolean crowded(int posted, int limit) {
        return publishedCursor - head > (long) (limit - posted) * maxRecord;
    }

    /**
     * In place, under the receive lock: receive {@code wrId} is posted again, so its message, if it holds one, is no
     * longer read. Frees the space of the oldest messages released.
     */
    void release(long wrId) {
        int n = heldWrIds.length;
        for (int k = 0; k < heldCount; k++) {
            int i = (heldFirst + k) % n;
            if (heldWrIds[i] != wrId) {
                continue;
            }
            if (k == 0) {
                head = heldEnds[i];
                LONG.setRelease(buf, headOff, head);
                heldFirst = (i + 1) % n;
            } else {
                heldEnds[(i - 1 + n) % n] = heldEnds[i]; // freed with the older one
                for (int j = k + 1; j < heldCount; j++) {
                    int from = (heldFirst + j) % n;
                    int to = (from - 1 + n) % n;
                    heldWrIds[to] = heldWrIds[from];
                    heldEnds[to] = heldEnds[from];
                }
            }
            heldCount--;
            return;
        }
    }

    /** {@link #AWAKE}, {@link #ASLEEP} or {@link #ASLEEP_DEFERRING}. */
    void setSleeping(int state) {
        if (state != AWAKE) {
            INT.setVolatile(buf, sleepingOff, state); // ordered before the doorbell and header re-reads
        } else {
            INT.setRelease(buf, sleepingOff, AWAKE); // a producer seeing a stale state only makes a spare wake-up
        }
    }

    /** A consumer asleep while deferring is asleep for everything from now on; true when it was deferring. */
    boolean stopDeferring() {
        return INT.compareAndSet(buf, sleepingOff, ASLEEP_DEFERRING, ASLEEP);
    }

    /** An application thread of the consumer starts polling (holding the consumer's token). */
    void beginPolling() {
        INT.setVolatile(buf, pollingOff, 1);
    }

    /**
     * The poller stops. True when the consumer sleeps and records wait that no producer rang it for: the caller rings.
     * The flag is cleared before the header is read, a producer publishes its header before it reads the flag (Dekker):
     * either it rings, or this sees its record.
     */
    boolean endPolling() {
        INT.setVolatile(buf, pollingOff, 0);
        return peekData() && (int) INT.getVolatile(buf, sleepingOff) != AWAKE;
    }

    int doorbell() {
        return (int) INT.getVolatile(buf, doorbellOff);
    }

    /** Sleeps until the doorbell moves from {@code seen}, a timeout or a spurious wake-up. */
    void await(int seen, long timeoutNanos) {
        NativeLib.futexWait(doorbellAddress, seen, timeoutNanos);
    }

    private static FabricException corrupt(String what) {
        return new FabricException(WcStatus.TRANSPORT_ERR, "shm ring corrupted by the peer: " + what);
    }
}
