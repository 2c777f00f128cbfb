package io.azsdp.sdp;

import io.azsdp.config.AzSdpConfig;
import io.azsdp.fabric.CompletionHandler;
import io.azsdp.fabric.Endpoint;
import io.azsdp.fabric.MemoryRegion;
import io.azsdp.fabric.Opcode;
import io.azsdp.fabric.WcStatus;
import io.azsdp.memory.LingeringRanges;
import io.azsdp.memory.ProtectedMemory;
import io.azsdp.nativeio.NativeLib;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One SDP connection over a fabric {@link Endpoint}: framing, credit flow control, BCopy, ZCopy (SrcAvail /
 * RdmaRdCompl, with SendSM and SrcAvailCancel), orderly (DisConn) and abortive (AbortConn) close. It does not know
 * which fabric it runs on.
 *
 * <p>Threads: application threads call {@link #read}/{@link #write}; the provider delivers completions from its own
 * thread or inline from a post. All state is guarded by one lock. Completions delivered inline while the posting thread
 * holds the lock are queued and processed before that thread releases the lock or waits, so a handler never runs in the
 * middle of another state change. How its threads wait (poll, then park) is {@link ConnectionWaits}.
 *
 * <p>Byte stream on the receive side: a FIFO of segments ({@link RxQueue}), each either a Data message held in its
 * receive buffer or a SrcAvail advert. An advert is pulled with one-sided READs, either straight into the reader's
 * direct buffer (zero copy) or, when nobody is waiting with one, promptly into a staging pool so the sender is
 * released early.
 */
public final class SdpConnection implements CompletionHandler {
    private static final Logger LOG = LoggerFactory.getLogger(SdpConnection.class);

    // Work request ids: a tag in the top byte, an index below.
    private static final long WR_RECV = 1L << 56;
    private static final long WR_SEND = 2L << 56;
    private static final long WR_READ_STAGE = 3L << 56;
    private static final long WR_READ_DIRECT = 4L << 56;
    private static final long WR_TAG = 0xFFL << 56;

    /** Reads into a direct buffer at least this large (or the whole advert) go straight into it. */
    private static final int DIRECT_READ_MIN = 8192;
    /** Smallest Data payload sent straight from the application's direct buffer (see gatherRegion). */
    private static final int GATHER_MIN = 8192;
    /**
     * While the reader takes adverts straight into its buffers, adverts from this size on wait for it instead of being
     * staged. Smaller synchronous ones are still staged ahead, which releases their blocked writer early; the staging
     * copy and the reader's copy out of it then stay in the cache. Asynchronous adverts of any size wait: their writer
     * does not, and the second copy costs the receiver CPU that, on a small machine, the writer's computation needs.
     * Measured on shm, 2 cores (bw, MB/s of azsdp): 1 MiB adverts 5440-6440 staged, 9800-9990 waiting; 64 KiB, three
     * pairs of runs of bw and overlap: bw 3450-4270 staged, 4000-4900 waiting; overlap 2660-2820 and 3120-3610.
     */
    private static final int DIRECT_ADVERT_MIN = 128 << 10;
    /** Staged READs in flight at once per connection. */
    private static final int MAX_STAGE_READS = 2;

    private final Endpoint ep;
    private final ReentrantLock lock = new ReentrantLock();
    /** Serialises whole write calls, so a synchronous zero-copy write has exactly one advert outstanding. */
    private final ReentrantLock writeLock = new ReentrantLock();
    /** Waits and signals of this connection's threads, under {@link #lock}. */
    private final ConnectionWaits waits;

    // Parameters fixed at connection setup.
    private final int rxBufSize;
    private final int rxBufCount;
    private final int reserve;
    private final int localMaxAdverts;
    private final int peerRxBufSize;
    private final int peerMaxAdverts;
    private final int readChunk;
    private final int stagingBytes;
    private final int closeTimeoutMs;
    private volatile TransferMode mode;
    /** Zero-copy threshold of auto and azsdp modes (the fabric's own, see AzSdpConfig#zcopyThreshold). */
    private volatile int zcopyThreshold;
    /** Azsdp mode's threshold while few other connections write (see AzsdpWrites). */
    private final int soloThreshold;
    /**
     * Azsdp-mode reads under way on this connection. While one is, mid sizes go by BCopy: with both directions busy
     * (shm bibw at 16 KiB) asynchronous zero copy both ways moved 1.8-3.2 GB/s against 3.5-4.1 with this rule
     * (docs/BENCHMARKS-HISTORY.md, session 18).
     */
    private final AtomicInteger readers = new AtomicInteger();

    // Received messages: in rxBufCount private slots of rxBufSize (one registered region), or in place in the
    // endpoint's memory (rxMr null). rxBase[i] is where the message of receive i starts.
    private final ByteBuffer rx;
    private final MemoryRegion rxMr;
    private final int[] rxBase;
    /** In place: where held Data moves when the endpoint's memory gets crowded (see #spillHeld); made on first use. */
    private ByteBuffer rxSpill;
    // Send buffers: one registered region, slots of the peer's receive size.
    private final ByteBuffer txPool;
    private final MemoryRegion txMr;
    private final int[] txFree;
    private int txFreeCount;
    /** Per send buffer: the application's region its message takes its payload from until the SEND completes. */
    private final MemoryRegion[] txGatherMr;
    private int gatheringSends;
    /** Registrations of the application's direct buffers, kept for the next writes (two-part SENDs, adverts)... */
    private final KeptRegions sources;
    /** ...and for the next reads (the buffers READs fill). */
    private final KeptRegions sinks;
    /** The last buffer writeProtected wrote and its native address. Guarded by writeLock. */
    private ByteBuffer addressedSource;
    private long addressedBase;
    /** Send buffer gathering BCopy bytes while no credit is free (-1: none), and its payload length. */
    private int pendingSlot = -1;
    private int pendingLen;

    /** Sequence numbers, credits, and our receive buffers posted (see Bsdh). */
    private final Credits credits;
    /** The peer's receive buffers as its Hello announced them: bounds the RdmaRdCompls sent deferrable. */
    private final int peerHelloBufs;

    private final ControlQueue ctl;
    private boolean creditUpdateQueued;
    /** Declared to the endpoint as a wait for the peer (see declareHeldSends). */
    private boolean sendsHeld;

    // Receive stream.
    private final RxQueue rxq;
    /** Adverts of the receive queue not yet fully read (what maxAdverts bounds). */
    private int rxAdvertsUnread;
    // Staging pool for pulled adverts, allocated on first use.
    private final int poolBytes;
    private ByteBuffer stagePool;
    private MemoryRegion stageMr;
    private StagedChunks chunks;
    private int stageReadsInFlight;
    /**
     * The application's last read went into a large direct buffer, so its next one will most likely READ the head
     * advert straight into its own memory: large and asynchronous adverts wait for it instead of being staged
     * meanwhile (staging is a second copy, and on a busy machine the CPU it takes is the receiver's; see
     * DIRECT_ADVERT_MIN). Staging comes back when the application reads into anything else, asks {@link #available},
     * has to wait in a write (two single-threaded peers that both write before they read must not wait for each
     * other), or the peer has sent DisConn (its close waits for its adverts).
     */
    private boolean readerTakesAdverts;
    // A reader blocked with a large direct buffer posts it: the advert at the head of the stream is then READ straight
    // into it by whichever thread sees the advert first (usually the provider's), before the reader is even woken.
    // The region is the whole buffer, kept in sinks; postedOff and postedLen are the range this read may fill.
    private MemoryRegion postedMr;
    private int postedOff;
    private int postedLen;
    private boolean postedReadInFlight;
    private int postedResult;
    private boolean cancelAckPending;

    // Send-side adverts outstanding (FIFO): SrcAvail mseq, length, bytes acknowledged by RdmaRdCompl.
    private final TxAdverts adverts;
    private int cancelMseq;
    private boolean cancelInFlight;
    // Sender staging for heap arrays sent zero copy.
    private ByteBuffer txStage;
    private MemoryRegion txStageMr;
    private StagingRing txStageRing;
    /** AZ-SDP: the application's pages can be protected on this connection (else its mode copies). */
    private final boolean protection;
    /** Largest protected advert: keeps the outstanding window far below 2^31 for the 32-bit notify word. */
    private final int maxProtectedAdvert;
    /** Receiver: advert bytes read (or dropped by a cancel) so far, mirrored into the peer's notify word. */
    private int notifyTotal;
    /**
     * Receiver: RdmaRdCompl bytes held back while more asynchronous adverts wait to be read (see queueRdmaRdCompl),
     * and how many adverts they finish; at most {@link #ackBatch} adverts are held.
     */
    private int ackHeldBytes;
    private int ackHeldAdverts;
    private final int ackBatch;

    // Connection state.
    private boolean outShutdown;
    private boolean inEof;
    private boolean inShutdown;
    private boolean closed;
    private boolean disconnected;
    private IOException error;

    private final DeferredCompletions deferred = new DeferredCompletions();
    /** Completed protected sends whose pages stay read-only until a store or a new send (lazy unprotect). */
    private final LingeringRanges lingering = new LingeringRanges();
    /** Whether an azsdp-mode write protects its pages or goes synchronously (azsdp.protection.syncBelow). */
    private final ProtectChoice protectChoice;
    private final DeferredCompletions.Sink replay = new DeferredCompletions.Sink() {
        @Override
        public void completion(int opcode, long wrId, int byteLen, int status) {
            handle(opcode, wrId, byteLen, status);
        }

        @Override
        public void disconnect(IOException cause) {
            handleDisconnect(cause);
        }
    };

    private final SdpStats stats = new SdpStats();
    /** Every connection not yet disconnected, for diagnostics and metrics. */
    private static final java.util.Set<SdpConnection> LIVE = java.util.concurrent.ConcurrentHashMap.newKeySet();

    /** Counters of the connections that have closed, summed. */
    private static final SdpStats RETIRED = new SdpStats();

    /** A snapshot of the summed counters of every connection this process has closed. */
    public static SdpStats retiredTotals() {
        SdpStats copy = new SdpStats();
        RETIRED.addTo(copy);
        return copy;
    }

    /** The connections of this process that are still open. */
    public static java.util.Set<SdpConnection> live() {
        return java.util.Collections.unmodifiableSet(LIVE);
    }

    /**
     * Creates the connection and starts the endpoint.
     *
     * @param local what we announced in our Hello/HelloAck
     * @param peer  what the peer announced
     */
    public SdpConnection(Endpoint ep, AzSdpConfig cfg, Hello local, Hello peer) throws IOException {
        this.ep = ep;
        this.rxBufSize = local.rcvSize();
        this.rxBufCount = local.bufs();
        this.localMaxAdverts = local.maxAdverts();
        // Our messages must fit the peer's receive buffers, but the peer's Hello must not size our memory (a hostile
        // 255 x 16 MiB would overflow or exhaust direct memory): send slots are never larger than our own buffers.
        this.peerRxBufSize = Math.min(peer.rcvSize(), local.rcvSize());
        this.peerMaxAdverts = peer.maxAdverts();
        this.credits = new Credits(peer.bufs(), rxBufCount);
        this.peerHelloBufs = peer.bufs();
        this.reserve = cfg.intValue(AzSdpConfig.CREDITS_RESERVE);
        this.readChunk = cfg.intValue(AzSdpConfig.ZCOPY_READ_CHUNK);
        this.poolBytes = cfg.intValue(AzSdpConfig.ZCOPY_POOL_BYTES);
        this.stagingBytes = cfg.intValue(AzSdpConfig.ZCOPY_STAGING_BYTES);
        this.closeTimeoutMs = cfg.intValue(AzSdpConfig.CLOSE_TIMEOUT_MS);
        this.mode = TransferMode.parse(cfg.get(AzSdpConfig.MODE));
        this.waits = new ConnectionWaits(lock, ep,
                TimeUnit.MICROSECONDS.toNanos(cfg.intValue(AzSdpConfig.WAIT_SPIN_MICROS)), stats, this::drainDeferred);
        this.zcopyThreshold = cfg.zcopyThreshold(ep.fabricName());
        this.soloThreshold = cfg.zcopySoloThreshold(ep.fabricName());
        this.protectChoice = new ProtectChoice(cfg.protectionSyncBelow(ep.fabricName()));
        this.ctl = new ControlQueue(Math.max(64, localMaxAdverts + 16));
        this.ackBatch = Math.max(1, localMaxAdverts / 2);

        // Held Data buffers, unread adverts, and as many read-but-unconsumed adverts (pump() stops there).
        rxq = new RxQueue(rxBufCount + 2 * localMaxAdverts + 2);
        adverts = new TxAdverts(peerMaxAdverts);
        // Pages may be protected only when a peer process (not a thread of this JVM, which a safepoint could stop)
        // releases them through a shared notify word.
        int peerPid = ep.peerPid();
        this.protection = "mprotect".equals(cfg.get(AzSdpConfig.PROTECTION)) && ep.notifyWordAddress() != 0
                && peerPid != 0 && peerPid != ProcessHandle.current().pid()
                && ProtectedMemory.unavailableReason() == null;
        int page = protection ? ProtectedMemory.pageSize() : 4096;
        this.maxProtectedAdvert = Math.min(128 << 20, (1 << 30) / peerMaxAdverts) / page * page;

        rxBase = new int[rxBufCount];
        ByteBuffer inPlace = "true".equals(cfg.get(AzSdpConfig.BCOPY_IN_PLACE)) ? ep.receiveInPlace() : null;
        if (inPlace != null) {
            rx = inPlace;
            rxMr = null;
        } else {
            rx = pageAligned(rxBufSize * rxBufCount);
            rxMr = ep.registerLocal(rx);
            for (int i = 0; i < rxBufCount; i++) {
                rxBase[i] = i * rxBufSize;
            }
        }
        // Sends are bounded by credits, so the peer's buffer count plus a few bounds the send buffers we need.
        int txCount = Math.min(peer.bufs(), 256) + 2;
        txPool = pageAligned(peerRxBufSize * txCount);
        txMr = ep.registerLocal(txPool);
        txFree = new int[txCount];
        txGatherMr = new MemoryRegion[txCount];
        sources = KeptRegions.sources(ep);
        sinks = KeptRegions.sinks(ep);
        for (int i = 0; i < txCount; i++) {
            txFree[txFreeCount++] = txCount - 1 - i;
        }
        ep.setHandler(this);
        ep.deferTransmission(); // posts under the lock, socket writes after it (see unlock)
        LIVE.add(this);
        lock.lock();
        try {
            for (int i = 0; i < rxBufCount; i++) {
                postRecv(i);
            }
        } finally {
            unlock();
        }
        ep.start();
    }

    // ------------------------------------------------------------------------------------------------ public API

    public void setMode(TransferMode mode) {
        this.mode = mode;
    }

    public TransferMode mode() {
        return mode;
    }

    public void setZcopyThreshold(int bytes) {
        if (bytes < 1) {
            throw new IllegalArgumentException("zcopy threshold must be >= 1: " + bytes);
        }
        this.zcopyThreshold = bytes;
    }

    public Endpoint endpoint() {
        return ep;
    }

    /** How many auto-mode writes of this JVM may wait for synchronous zero copy at once (see SyncZcopyWriters). */
    public static int syncZcopyWritersMax() {
        return SyncZcopyWriters.MAX;
    }

    /** Azsdp-mode writes under way from which another sends mid sizes by BCopy (see AzsdpWrites). */
    public static int azsdpWritesMax() {
        return AzsdpWrites.MAX;
    }

    public SdpStats stats() {
        return stats;
    }

    /** Writes all of {@code b[off, off+len)}; returns when the bytes may be reused. */
    public void write(byte[] b, int off, int len) throws IOException {
        if (len == 0) {
            return;
        }
        writeLock.lock();
        boolean counted = mode == TransferMode.AZSDP;
        if (counted) {
            AzsdpWrites.enter(); // seen by direct-buffer writes of other connections (a heap one never goes solo)
        }
        try {
            TransferMode path = pathFor(len, true);
            if (path == TransferMode.BCOPY) {
                writeBcopy(null, b, off, len);
            } else {
                writeStaged(null, b, off, len, path == TransferMode.AZSDP);
            }
        } finally {
            if (counted) {
                AzsdpWrites.exit();
            }
            writeLock.unlock();
        }
    }

    /** Writes all remaining bytes of {@code src}, advancing its position. */
    public void write(ByteBuffer src) throws IOException {
        int len = src.remaining();
        if (len == 0) {
            return;
        }
        writeLock.lock();
        boolean counted = mode == TransferMode.AZSDP;
        if (counted) {
            AzsdpWrites.enter();
        }
        try {
            TransferMode path = pathFor(len, !src.isDirect());
            if (path == TransferMode.ZCOPY && mode == TransferMode.AUTO) {
                writeZcopyAuto(src);
            } else if (path == TransferMode.BCOPY) {
                writeBcopy(src, null, 0, len);
            } else if (!src.isDirect()) {
                writeStaged(src, null, 0, len, path == TransferMode.AZSDP);
            } else if (path == TransferMode.ZCOPY || src.isReadOnly()) {
                // A read-only buffer (a mapped file, a view of someone else's memory) cannot be protected and may
                // still change behind the view: zero copy, but synchronous.
                writeZcopyDirect(src);
            } else if (protection) {
                if (!protectChoice.protect()) {
                    stats.protectSkipped++;
                    long start = System.nanoTime();
                    writeZcopyDirect(src); // cheaper than protecting fresh pages (see ProtectChoice)
                    protectChoice.synchronousSend(len, System.nanoTime() - start);
                } else {
                    writeProtected(src);
                }
            } else {
                writeStaged(src, null, 0, len, true);
            }
        } finally {
            if (counted) {
                AzsdpWrites.exit();
            }
            writeLock.unlock();
        }
    }

    /** Auto mode's zero copy: synchronous, unless as many such writes as SyncZcopyWriters allows already wait. */
    private void writeZcopyAuto(ByteBuffer src) throws IOException {
        if (!SyncZcopyWriters.tryEnter()) {
            stats.syncZcopyCrowdedBytes += src.remaining();
            writeBcopy(src, null, 0, src.remaining());
            return;
        }
        try {
            writeZcopyDirect(src);
        } finally {
            SyncZcopyWriters.exit();
        }
    }

    /**
     * Reads up to {@code len} bytes; blocks until at least one is available.
     *
     * @return bytes read, or -1 at end of stream
     */
    public int read(byte[] b, int off, int len, int timeoutMs) throws IOException {
        return len == 0 ? 0 : read(null, b, off, len, timeoutMs);
    }

    /** Reads into {@code dst} (advancing its position); a direct buffer may be filled by one-sided READ. */
    public int read(ByteBuffer dst, int timeoutMs) throws IOException {
        if (dst.remaining() == 0) {
            return 0;
        }
        if (dst.isDirect()) {
            // A READ into it is a write by the kernel, which fails on a page still protected by an earlier send.
            ProtectedMemory.awaitReusable(dst);
        }
        return read(dst, null, 0, dst.remaining(), timeoutMs);
    }

    /** Bytes readable without blocking (received Data and staged zero-copy data). */
    public int available() {
        lock.lock();
        try {
            long n = bytesReadable();
            if (n == 0) {
                waits.pollOnce();
                n = bytesReadable();
            }
            if (n == 0 && rxAdvertsUnread > 0) {
                try {
                    stageAgain(); // a caller polling available() before it reads must see the advert's bytes
                } catch (IOException e) {
                    // the next read reports the broken connection
                }
                if (drainDeferred()) { // READs that completed as they were posted (shm)
                    n = bytesReadable();
                }
            }
            return (int) Math.min(n, Integer.MAX_VALUE);
        } finally {
            unlock();
        }
    }

    /**
     * A direct buffer starting on a page, for the pools that READs and copies fill. allocateDirect's memory starts 16
     * bytes past an alignment, and on this project's machine (AMD EPYC) a copy from a page-aligned advert into it ran
     * at about a tenth of the speed: a reader of heap arrays, whose adverts all go through the staging pool, moved
     * 0.7-1.2 GB/s of 64 KiB zcopy messages with it, 2.5-4.9 with a page-aligned pool.
     */
    private static ByteBuffer pageAligned(int bytes) {
        ByteBuffer b = ByteBuffer.allocateDirect(bytes + 4096);
        return b.slice((4096 - b.alignmentOffset(0, 4096)) % 4096, bytes);
    }

    /** Bytes of the receive queue that a read can copy at once. Must hold the lock. */
    private long bytesReadable() {
        long n = 0;
        for (int i = 0; i < rxq.size(); i++) {
            RxSegment s = rxq.get(i);
            if (s.advert) {
                return n + s.readDone - s.consumed;
            }
            n += s.remaining;
        }
        return n;
    }

    /** Orderly half close: DisConn after everything written so far. */
    public void shutdownOutput() throws IOException {
        lock.lock();
        try {
            checkOpen();
            if (!outShutdown) {
                outShutdown = true;
                queueControl(Bsdh.MID_DISCONN, 0);
            }
        } finally {
            unlock();
        }
    }

    /** Discards unread and future input; reads return end of stream. */
    public void shutdownInput() throws IOException {
        lock.lock();
        try {
            checkOpen();
            inShutdown = true;
            discardInput();
            waits.signalReadable();
        } finally {
            unlock();
        }
    }

    public boolean isOutputShutdown() {
        return outShutdown;
    }

    public boolean isInputShutdown() {
        return inShutdown;
    }

    /**
     * Orderly close: DisConn follows everything written, then the endpoint is closed (it delivers what was posted).
     * Waits at most the close timeout for the DisConn to be posted when credits are short.
     */
    public void close() {
        lock.lock();
        try {
            if (closed) {
                return;
            }
            closed = true;
            if (!disconnected && error == null) {
                flushHeldAck(); // the peer's adverts we read complete as read, not as abandoned
                if (!outShutdown) {
                    outShutdown = true;
                    queueControl(Bsdh.MID_DISCONN, 0);
                }
            }
            long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(closeTimeoutMs);
            // Asynchronous adverts must be read before the endpoint goes: the peer READs them from our memory.
            while ((!ctl.isEmpty() || adverts.count() > 0) && !disconnected && error == null) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    LOG.warn("AZ-SDP close: {} adverts unread, DisConn {}sent after {} ms; closing anyway",
                            adverts.count(), ctl.isEmpty() ? "" : "not ", closeTimeoutMs);
                    break;
                }
                waits.awaitWritableUninterruptibly(left);
            }
        } catch (IOException e) {
            LOG.debug("AZ-SDP close: {}", e.getMessage());
        } finally {
            setError(new SocketException("Socket closed"));
            unlock();
        }
        ep.close();
    }

    /** Abortive close (SO_LINGER 0): AbortConn if it can be sent at once, then the endpoint is aborted. */
    public void abort() {
        lock.lock();
        try {
            if (closed && disconnected) {
                return;
            }
            closed = true;
            if (!disconnected && credits.tx() >= 1 && txFreeCount > 0) {
                sendNow(Bsdh.MID_ABORT_CONN, 0);
            }
        } catch (IOException e) {
            LOG.debug("AZ-SDP abort: {}", e.getMessage());
        } finally {
            setError(new SocketException("Socket closed"));
            unlock();
        }
        ep.abort();
        ep.close(); // no more reads: messages received in place may go with the endpoint's memory
    }

    public boolean isClosed() {
        return closed;
    }

    // ------------------------------------------------------------------------------------------------ write paths

    /**
     * How a write of {@code len} bytes travels: BCOPY, ZCOPY (synchronous) or AZSDP (asynchronous). In auto mode a
     * heap source goes by BCopy at any size: it must be copied anyway (the collector moves arrays), and advertising
     * the copy synchronously would add the peer's round trips to save nothing; measured 1.3-2x slower on shm. In
     * azsdp mode a direct source from the solo threshold on goes asynchronously while few other writes are under way
     * and no read of this connection is.
     */
    private TransferMode pathFor(int len, boolean heap) {
        TransferMode m = mode;
        return switch (m) {
            case BCOPY, ZCOPY -> m;
            case AUTO -> len >= zcopyThreshold && !heap ? TransferMode.ZCOPY : TransferMode.BCOPY;
            case AZSDP -> len >= zcopyThreshold || (len >= soloThreshold && !heap && readers.get() == 0
                    && AzsdpWrites.few())
                    ? TransferMode.AZSDP : TransferMode.BCOPY;
        };
    }

    /**
     * Buffered copy: chunks of the peer's receive size, each sent at once when a credit above the reserve is free.
     * Without one, the bytes gather in one pending send buffer until a credit comes back (as OFED SDP does): a stream
     * of small writes then costs one message per credit, not one credit round trip per few writes. Writes smaller than
     * a buffer already gather once half of the peer's buffers hold our messages (see {@link #aheadOfReader}).
     */
    private void writeBcopy(ByteBuffer src, byte[] arr, int off, int len) throws IOException {
        int maxPayload = peerRxBufSize - Bsdh.SIZE;
        int done = 0;
        boolean gathered = false;
        lock.lock();
        try {
            while (done < len) {
                checkWritable();
                int slot;
                int at;
                int n;
                if (pendingSlot >= 0) {
                    slot = pendingSlot;
                    at = pendingLen;
                    n = Math.min(len - done, maxPayload - at);
                    if (n == 0) {
                        awaitWritable(done); // full: a returning credit sends it (flushControl)
                        continue;
                    }
                } else if (canSendData() && (len - done >= maxPayload || !aheadOfReader())) {
                    slot = txFree[--txFreeCount];
                    at = 0;
                    n = Math.min(len - done, maxPayload);
                } else if (txFreeCount > 0 && ctl.isEmpty()) {
                    pendingSlot = slot = txFree[--txFreeCount];
                    pendingLen = at = 0;
                    n = Math.min(len - done, maxPayload);
                } else {
                    awaitWritable(done);
                    continue;
                }
                MemoryRegion from = slot != pendingSlot && n >= GATHER_MIN ? gatherRegion(src) : null;
                if (from != null) {
                    gathered = true;
                    postGathered(slot, n, from, src.position());
                    src.position(src.position() + n);
                    done += n;
                    stats.bcopyBytesSent += n;
                    stats.gatheredBytesSent += n;
                    continue;
                }
                int to = slot * peerRxBufSize + Bsdh.SIZE + at;
                if (arr != null) {
                    txPool.put(to, arr, off + done, n);
                } else {
                    NativeLib.copy(txPool, to, src, src.position(), n);
                    src.position(src.position() + n);
                }
                done += n;
                stats.bcopyBytesSent += n;
                if (slot == pendingSlot) {
                    pendingLen += n;
                    if (pendingLen == maxPayload || !aheadOfReader()) {
                        flushPending(false);
                    }
                } else {
                    postMessage(slot, Bsdh.MID_DATA, 0, Bsdh.SIZE + n);
                }
            }
        } finally {
            unlock();
        }
        if (gathered) {
            awaitGatheredSends(len);
        }
    }

    /**
     * The registered whole of {@code src} (one more user) when a message may take its payload straight from it with a
     * two-part SEND, saving the copy into the send buffer: a direct buffer (a heap array would be copied on its way
     * anyway). The write then returns once the endpoint has sent the bytes (on tcp: the kernel has them), which needs
     * nothing of the peer, whose credits guarantee it a receive. Null: copy. A read-only buffer (usually a mapped
     * file segment) is copied too: a kept registration would keep it mapped after the write (see acquireSource), and
     * one of its own per message would allocate where the copy does not. Must hold the lock.
     */
    private MemoryRegion gatherRegion(ByteBuffer src) {
        return src != null && src.isDirect() && !src.isReadOnly() ? sources.acquire(src) : null;
    }

    /** A Data message whose payload is {@code n} bytes of the registered application buffer at {@code from}. */
    private void postGathered(int slot, int n, MemoryRegion from, int offset) throws IOException {
        txGatherMr[slot] = from; // before the post: a provider may complete it inline
        gatheringSends++;
        try {
            postMessage(slot, Bsdh.MID_DATA, 0, Bsdh.SIZE + n, from, offset);
        } catch (IOException | RuntimeException e) {
            txGatherMr[slot] = null;
            gatheringSends--;
            sources.release(from);
            throw e;
        }
    }

    /**
     * A write returns when no message still takes bytes from the application's buffer. Not even an interrupt ends
     * this wait (it is kept for the caller): the bytes are posted, and the buffer must not change under them. It ends
     * when the endpoint has sent them, which needs no action of the peer application, or when the connection fails.
     */
    private void awaitGatheredSends(int len) throws IOException {
        boolean interrupted = false;
        lock.lock();
        try {
            while (gatheringSends > 0) {
                try {
                    awaitWritable(len);
                } catch (InterruptedIOException e) {
                    if (e instanceof SocketTimeoutException) {
                        throw e;
                    }
                    interrupted |= Thread.interrupted();
                }
            }
        } finally {
            unlock();
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /**
     * Half of the peer's buffers or more hold messages of ours: the stream is ahead of its reader. Then a write smaller
     * than a buffer gathers into the pending send buffer instead of taking a buffer (and a credit) of its own: one
     * full buffer carries up to a buffer's worth of small writes for one message, one credit and one receive. The
     * pending buffer goes out when full, or when the peer's next credits come (flushControl), which they do once the
     * reader has consumed the messages ahead of it (it must read those first anyway). With fewer messages in flight
     * (request and response) every write goes out at once. Until then, too, messages the peer need not see at once
     * may be sent deferrable (postMessage).
     */
    private boolean aheadOfReader() {
        return credits.tx() <= peerHelloBufs / 2;
    }

    /**
     * Sends the pending send buffer when a credit above the reserve is free, or, with {@code useReserve}, any credit
     * (its DisConn must follow it). Must hold the lock.
     */
    private void flushPending(boolean useReserve) throws IOException {
        if (pendingSlot < 0 || disconnected || credits.tx() <= (useReserve ? 0 : reserve)
                || (!useReserve && !ctl.isEmpty())) {
            return;
        }
        int slot = pendingSlot;
        pendingSlot = -1;
        postMessage(slot, Bsdh.MID_DATA, 0, Bsdh.SIZE + pendingLen);
    }

    /** Synchronous zero copy of a direct buffer: advertise it as it is, return once the peer has read it all. */
    private void writeZcopyDirect(ByteBuffer src) throws IOException {
        int len = src.remaining();
        lock.lock();
        try {
            MemoryRegion mr = acquireSource(src);
            try {
                advertise(mr, mr.address() + src.position(), len, TxAdverts.SYNC, -1);
                awaitAdvertsDone(len, 0);
            } finally {
                releaseSource(mr);
            }
        } finally {
            unlock();
        }
        src.position(src.limit());
    }

    /**
     * The registration of the whole of direct buffer {@code src} that messages take bytes from: a kept one, or one of
     * its own while every kept one is in use. A read-only buffer, usually a mapped file segment (a Spark block), is not
     * kept: keeping it would keep the mapping, and a deleted file's disk space, after the write. The peer READs the
     * registration, never writes. Must hold the lock; give it back with {@link #releaseSource}.
     */
    private MemoryRegion acquireSource(ByteBuffer src) throws IOException {
        MemoryRegion mr = src.isReadOnly() ? null : sources.acquire(src);
        return mr != null ? mr : ep.register(src.duplicate().clear().asReadOnlyBuffer());
    }

    /**
     * AZ-SDP: protect the whole pages inside the buffer, advertise them and return at once; the partial head and tail
     * pages, which the buffer does not own entirely, go by copy. A store into a protected page waits in the fault
     * handler until the peer has read it.
     */
    private void writeProtected(ByteBuffer src) throws IOException {
        int page = ProtectedMemory.pageSize();
        if (src != addressedSource) { // a native call: streams write the same buffer again
            addressedBase = ProtectedMemory.address(src);
            addressedSource = src;
        }
        long base = addressedBase;
        long addr = base + src.position();
        long end = addr + src.remaining();
        long pa = (addr + page - 1) / page * page;
        long pe = end / page * page;
        if (pe - pa < page) {
            writeStaged(src, null, 0, src.remaining(), true);
            return;
        }
        if (pa > addr) {
            writeBcopy(src, null, 0, (int) (pa - addr));
        }
        while (src.position() < src.limit() - (int) (end - pe)) {
            int n = (int) Math.min(pe - (base + src.position()), maxProtectedAdvert);
            lock.lock();
            try {
                MemoryRegion mr = acquireSource(src); // the whole buffer: the pages start at its position
                try {
                    advertise(mr, mr.address() + src.position(), n, TxAdverts.PROTECTED, -1);
                } catch (IOException | RuntimeException e) {
                    releaseSource(mr);
                    throw e;
                }
            } finally {
                unlock();
            }
            src.position(src.position() + n);
        }
        if (end > pe) {
            writeBcopy(src, null, 0, (int) (end - pe));
        }
    }

    /**
     * Heap arrays (which the GC moves) and the copy fallback: copy into the registered send staging ring and advertise
     * each chunk. Asynchronous: return once everything is advertised (the ring range is freed when the peer has read
     * it). Synchronous: wait for the peer to read each chunk.
     */
    private void writeStaged(ByteBuffer src, byte[] arr, int off, int len, boolean async) throws IOException {
        int chunkMax = async ? Math.max(4096, stagingBytes / 4) : stagingBytes;
        int done = 0;
        lock.lock();
        try {
            checkWritable();
            if (txStage == null) {
                txStage = pageAligned(stagingBytes);
                txStageMr = ep.register(txStage);
                txStageRing = new StagingRing(stagingBytes);
            }
            while (done < len) {
                int n = Math.min(len - done, chunkMax);
                int at;
                while (!canSendData() || adverts.full() || (at = txStageRing.alloc(n)) < 0) {
                    awaitWritable(done);
                }
                if (arr != null) {
                    txStage.put(at, arr, off + done, n);
                } else {
                    NativeLib.copy(txStage, at, src, src.position(), n);
                    src.position(src.position() + n);
                }
                advertise(txStageMr, txStageMr.address() + at, n, async ? TxAdverts.STAGED : TxAdverts.SYNC, at);
                if (!async) {
                    awaitAdvertsDone(n, done);
                }
                done += n;
            }
        } finally {
            unlock();
        }
    }

    /**
     * Sends one SrcAvail for {@code len} bytes at {@code vaddr} in {@code mr}, protecting them first when the advert is
     * PROTECTED. Waits for a credit and an advert slot. Must hold the lock.
     */
    private void advertise(MemoryRegion mr, long vaddr, int len, int kind, int stageOff) throws IOException {
        while (true) {
            flushPending(false); // the bytes written before this advert go first
            if (pendingSlot < 0 && canSendData() && !adverts.full()) {
                break;
            }
            awaitWritable(0);
        }
        int range = -1;
        if (kind == TxAdverts.PROTECTED) {
            // Before the SrcAvail leaves: from now on a store into these pages waits for the peer's READ.
            long start = System.nanoTime();
            int rc = ProtectedMemory.protect(vaddr, len, ep.notifyWordAddress(), adverts.targetAfter(len),
                    ep.peerPid());
            long protectNs = System.nanoTime() - start;
            range = ProtectedMemory.id(rc);
            stats.protectedSends++;
            stats.protectedReused += lingering.protectedAgain(vaddr, len);
            // Fresh pages, not those of a range in flight or lingering: the cost ProtectChoice weighs.
            protectChoice.protectedSend(!ProtectedMemory.changedPages(rc), len, protectNs);
        }
        int slot = txFree[--txFreeCount];
        int base = slot * peerRxBufSize;
        txPool.putInt(base + Bsdh.SIZE, len);
        txPool.putInt(base + Bsdh.SIZE + 4, mr.rkey());
        txPool.putLong(base + Bsdh.SIZE + 8, vaddr);
        try {
            postMessage(slot, Bsdh.MID_SRC_AVAIL, kind == TxAdverts.SYNC ? 0 : Bsdh.FLAG_ASYNC, Bsdh.SRC_AVAIL_SIZE);
        } catch (IOException e) {
            if (range >= 0) {
                ProtectedMemory.release(range);
            }
            if (stageOff >= 0) {
                txStageRing.free(stageOff, len);
            }
            throw e;
        }
        adverts.push(credits.lastMseq(), len, kind, kind == TxAdverts.PROTECTED ? mr : null, vaddr, range, stageOff);
        stats.srcAvailsSent++;
    }

    /**
     * Synchronous zero copy: the buffer is the application's again only when the peer has read all of it (and every
     * advert before it). An interrupt cancels the advert; the exception reports how much the peer had read.
     */
    private void awaitAdvertsDone(int len, int alreadyDone) throws IOException {
        while (adverts.count() > 0) {
            checkWritable();
            stageAgain();
            if (waits.changedOrSpun()) {
                continue;
            }
            try {
                waits.awaitPeer();
            } catch (InterruptedException e) {
                int acked = cancelAdvert(len);
                InterruptedIOException ie = new InterruptedIOException("zero-copy write interrupted");
                ie.bytesTransferred = alreadyDone + acked;
                Thread.currentThread().interrupt();
                throw ie;
            }
        }
    }

    /**
     * SrcAvailCancel for our (last) outstanding advert: the peer finishes the READs it has in flight, acknowledges
     * them with RdmaRdCompl, then answers SendSM; bytes it did not read are not part of the stream. A cancel withdraws
     * every advert outstanding, so earlier (asynchronous) ones must complete first. Returns how many bytes of our
     * advert the peer has read.
     */
    private int cancelAdvert(int len) throws IOException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(Math.max(closeTimeoutMs, 1000));
        while (adverts.count() > 1 && error == null && deadline - System.nanoTime() > 0) {
            waits.awaitWritableUninterruptibly(deadline - System.nanoTime());
        }
        if (adverts.count() > 0 && !disconnected && error == null) {
            cancelInFlight = true;
            queueControl(Bsdh.MID_SRC_AVAIL_CANCEL, 0);
            while (cancelInFlight && error == null) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    // The peer may still be reading our memory: the connection cannot be trusted any more.
                    fail(new SocketException("peer did not answer SrcAvailCancel"), true);
                    break;
                }
                waits.awaitWritableUninterruptibly(left);
            }
        }
        if (adverts.count() == 0) {
            return len;
        }
        int acked = adverts.acked(adverts.head());
        while (adverts.count() > 0) {
            completeAdvert();
        }
        return acked;
    }

    /** An advert or message no longer takes bytes from {@code mr}: a kept registration, or one of its own. */
    private void releaseSource(MemoryRegion mr) {
        if (!sources.release(mr)) {
            ep.deregister(mr);
        }
    }

    /** The oldest advert is done (read, cancelled or abandoned): give back what it held. */
    private void completeAdvert() {
        int i = adverts.head();
        int kind = adverts.kind(i);
        if (kind == TxAdverts.PROTECTED) {
            MemoryRegion mr = adverts.region(i);
            boolean read = adverts.acked(i) == adverts.len(i) && !disconnected && error == null;
            if (!read || !lingering.offer(adverts.rangeId(i), adverts.address(i), adverts.len(i), mr.buffer())) {
                ProtectedMemory.release(adverts.rangeId(i));
            }
            releaseSource(mr);
        }
        if (adverts.stageOff(i) >= 0) {
            txStageRing.free(adverts.stageOff(i), adverts.len(i));
        }
        stats.zcopyBytesSent += adverts.acked(i);
        adverts.pop();
    }

    /**
     * Ends a wait of the adverts for the reader (see readerTakesAdverts): a writer about to wait is not reading,
     * available() wants the bytes counted, a DisConn's sender waits for its adverts to be read.
     */
    private void stageAgain() throws IOException {
        if (readerTakesAdverts) {
            readerTakesAdverts = false;
            if (rxAdvertsUnread > 0) {
                pump();
            }
        }
    }

    private boolean canSendData() throws IOException {
        checkWritable();
        return ctl.isEmpty() && txFreeCount > 0 && credits.tx() > reserve;
    }

    /**
     * Waits for a credit, a send buffer or an advert slot. Throws at once when the connection can no longer send:
     * not every caller's condition looks at the connection (an advert waiting behind gathered bytes does not).
     */
    private void awaitWritable(int bytesDone) throws IOException {
        checkWritable();
        stageAgain();
        if (waits.changedOrSpun()) {
            return; // state changed: the caller re-checks before waiting
        }
        stats.writerStalls++;
        try {
            waits.awaitPeer();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            InterruptedIOException ie = new InterruptedIOException("write interrupted");
            ie.bytesTransferred = bytesDone;
            throw ie;
        }
    }

    private void checkWritable() throws IOException {
        if (error != null) {
            throw copyOf(error);
        }
        if (outShutdown) {
            throw new SocketException("Socket output is shutdown");
        }
        if (disconnected) {
            throw new SocketException("Broken pipe: connection closed by peer");
        }
    }

    private void checkOpen() throws IOException {
        if (closed) {
            throw new SocketException("Socket is closed");
        }
    }

    // ------------------------------------------------------------------------------------------------ read path

    /** In azsdp mode counted in {@link #readers}: a stream read while this connection writes is not alone. */
    private int read(ByteBuffer dst, byte[] arr, int off, int len, int timeoutMs) throws IOException {
        if (mode != TransferMode.AZSDP) {
            return readQueued(dst, arr, off, len, timeoutMs);
        }
        readers.incrementAndGet();
        try {
            return readQueued(dst, arr, off, len, timeoutMs);
        } finally {
            readers.decrementAndGet();
        }
    }

    private int readQueued(ByteBuffer dst, byte[] arr, int off, int len, int timeoutMs) throws IOException {
        long deadline = timeoutMs > 0 ? System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs) : 0;
        // Only a read into a large enough direct buffer can take an advert zero copy; others wait for staging.
        boolean wantsDirect = dst != null && dst.isDirect() && len >= DIRECT_READ_MIN;
        lock.lock();
        try {
            readerTakesAdverts = wantsDirect;
            while (true) {
                if (postedResult > 0) {
                    return takePosted(dst);
                }
                if (closed && !postedReadInFlight) {
                    throw new SocketException("Socket closed");
                }
                if (inShutdown && !postedReadInFlight) {
                    return -1;
                }
                if (!postedReadInFlight) {
                    if (rxq.size() > 0) {
                        RxSegment s = rxq.head();
                        if (!s.advert) {
                            releasePosted();
                            return readData(s, dst, arr, off, len);
                        }
                        if (chunks != null && chunks.headReady()) {
                            releasePosted();
                            return readStaged(s, dst, arr, off, len);
                        }
                    } else if (inEof) {
                        releasePosted();
                        if (error instanceof SdpProtocolException) {
                            throw copyOf(error); // the peer broke the protocol after its DisConn: not a clean EOF
                        }
                        return -1;
                    }
                    if (error != null) { // what was deliverable has been delivered
                        releasePosted();
                        throw copyOf(error);
                    }
                    if (wantsDirect && postedMr == null) {
                        postedMr = sinks.acquire(dst);
                        if (postedMr != null) {
                            postedOff = dst.position();
                            postedLen = len;
                            pump();
                            continue;
                        }
                        wantsDirect = false; // no registration to be had: the bytes come staged
                        readerTakesAdverts = false;
                    }
                    if (!wantsDirect && rxq.size() > 0) {
                        pump();
                    }
                }
                // A READ into the caller's buffer cannot be abandoned: wait for it whatever the timeout says.
                if (!waits.awaitReadable(postedReadInFlight ? 0 : deadline)) {
                    releasePosted();
                    throw new SocketTimeoutException("Read timed out");
                }
            }
        } finally {
            if (!postedReadInFlight) {
                releasePosted();
            }
            unlock();
        }
    }

    /** The READ into the posted buffer completed: hand its bytes to the caller. */
    private int takePosted(ByteBuffer dst) throws IOException {
        int n = postedResult;
        dst.position(dst.position() + n);
        releasePosted();
        return n;
    }

    private void releasePosted() {
        if (postedMr != null) {
            sinks.release(postedMr);
            postedMr = null;
        }
        postedResult = 0;
    }

    private int readData(RxSegment s, ByteBuffer dst, byte[] arr, int off, int len) throws IOException {
        int n = Math.min(len, s.remaining);
        copyOut(s.from, s.offset, dst, arr, off, n);
        s.offset += n;
        s.remaining -= n;
        stats.bytesReceived += n;
        if (s.remaining == 0) {
            rxq.pop();
            postRecv(s.buffer);
            maybeCreditUpdate();
        }
        return n;
    }

    private int readStaged(RxSegment s, ByteBuffer dst, byte[] arr, int off, int len) throws IOException {
        int n = Math.min(len, chunks.headRemaining());
        copyOut(stagePool, chunks.headPosition(), dst, arr, off, n);
        chunks.consume(n);
        s.consumed += n;
        stats.bytesReceived += n;
        if (s.consumed == s.len) {
            rxq.pop();
        }
        return n;
    }

    private static void copyOut(ByteBuffer from, int index, ByteBuffer dst, byte[] arr, int off, int n) {
        if (arr != null) {
            from.get(index, arr, off, n);
        } else {
            NativeLib.copy(dst, dst.position(), from, index, n);
            dst.position(dst.position() + n);
        }
    }

    /** Pulls adverts into the staging pool, in stream order, unless a reader is waiting with its own buffer. */
    private void pump() throws IOException {
        if (disconnected || error != null) {
            return;
        }
        int adverts = 0;
        for (int i = 0; i < rxq.size(); i++) {
            RxSegment s = rxq.get(i);
            if (!s.advert) {
                continue;
            }
            if (++adverts > localMaxAdverts) {
                return; // bound the staged-but-unconsumed adverts: the peer waits for RdmaRdCompl meanwhile
            }
            if (s.requested == s.len) {
                continue;
            }
            if (i == 0 && postedMr != null && stagedCount() == 0 && s.requested == s.consumed) {
                if (!postedReadInFlight && postedResult == 0) {
                    readIntoPosted(s);
                }
                return;
            }
            if (readerTakesAdverts && (s.len >= DIRECT_ADVERT_MIN || s.async)) {
                return;
            }
            if (chunks == null) {
                stagePool = pageAligned(poolBytes);
                stageMr = ep.registerLocal(stagePool);
                chunks = new StagedChunks(new StagingRing(poolBytes), 64);
            }
            while (s.requested < s.len && stageReadsInFlight < MAX_STAGE_READS && !chunks.isFull()) {
                int want = Math.min(Math.min(s.len - s.requested, readChunk), chunks.maxAlloc());
                if (want < Math.min(s.len - s.requested, 4096)) {
                    return;
                }
                int idx = chunks.add(want);
                int off = chunks.offset(idx);
                stageReadsInFlight++;
                long raddr = s.vaddr + s.requested;
                s.requested += want;
                try {
                    ep.postRead(WR_READ_STAGE | idx, stageMr, off, want, raddr, s.rkey);
                } catch (IOException e) {
                    stageReadsInFlight--;
                    rethrowUnlessGoing(e);
                    return;
                }
            }
            if (s.requested < s.len) {
                return;
            }
        }
    }

    private void advertRead(RxSegment s, int n) {
        s.readDone += n;
        if (s.readDone == s.len) {
            rxAdvertsUnread--;
        }
    }

    /** Zero copy: READ the head advert straight into the reader's posted buffer. */
    private void readIntoPosted(RxSegment s) throws IOException {
        int n = Math.min(postedLen, s.len - s.requested);
        long raddr = s.vaddr + s.requested;
        s.requested += n;
        postedReadInFlight = true;
        try {
            ep.postRead(WR_READ_DIRECT, postedMr, postedOff, n, raddr, s.rkey);
        } catch (IOException e) {
            postedReadInFlight = false;
            s.requested -= n;
            rethrowUnlessGoing(e);
        }
    }

    private int stagedCount() {
        return chunks == null ? 0 : chunks.count();
    }

    /** After shutdownInput: drop Data, acknowledge adverts without reading them. */
    private void discardInput() throws IOException {
        while (rxq.size() > 0) {
            RxSegment s = rxq.head();
            if (s.advert) {
                if (stagedCount() > 0 || postedReadInFlight) {
                    return;
                }
                int unread = s.len - s.requested;
                if (unread > 0) {
                    s.requested = s.len;
                    advertRead(s, unread);
                    queueRdmaRdCompl(s, unread);
                }
            } else {
                postRecv(s.buffer);
            }
            rxq.pop();
        }
        maybeCreditUpdate();
    }

    // ------------------------------------------------------------------------------------------------ completions

    @Override
    public void onCompletion(int opcode, long wrId, int byteLen, int status) {
        if (lock.isHeldByCurrentThread()) {
            deferred.add(opcode, wrId, byteLen, status);
            return;
        }
        lock.lock();
        try {
            handle(opcode, wrId, byteLen, status);
        } finally {
            unlock();
        }
    }

    /** Where the message lies is all that differs; the completion takes the usual way (perhaps deferred). */
    @Override
    public void onRecvInPlace(long wrId, int offset, int byteLen) {
        rxBase[(int) (wrId & ~WR_TAG)] = offset;
        onCompletion(Opcode.RECV, wrId, byteLen, WcStatus.SUCCESS);
    }

    @Override
    public void onDisconnect(IOException cause) {
        if (lock.isHeldByCurrentThread()) {
            deferred.addDisconnect(cause);
            return;
        }
        lock.lock();
        try {
            handleDisconnect(cause);
        } finally {
            unlock();
        }
    }

    private void handle(int opcode, long wrId, int byteLen, int status) {
        int idx = (int) (wrId & ~WR_TAG);
        long tag = wrId & WR_TAG;
        try {
            if (tag == WR_SEND) {
                txFree[txFreeCount++] = idx;
                if (txGatherMr[idx] != null) {
                    sources.release(txGatherMr[idx]);
                    txGatherMr[idx] = null;
                    gatheringSends--;
                }
                if (status != WcStatus.SUCCESS) {
                    onWorkError("send", status);
                }
                flushControl();
                waits.signalWritable();
            } else if (tag == WR_RECV) {
                credits.receiveFilled();
                if (status != WcStatus.SUCCESS) {
                    onWorkError("receive", status);
                } else if (!disconnected && error == null) {
                    onMessage(idx, byteLen);
                }
            } else if (tag == WR_READ_STAGE) {
                stageReadsInFlight--;
                if (status != WcStatus.SUCCESS) {
                    onWorkError("zero-copy READ", status);
                    return;
                }
                chunks.markReady(idx);
                RxSegment head = firstUnreadAdvert();
                if (head != null) {
                    advertRead(head, byteLen);
                }
                stats.zcopyBytesReceived += byteLen;
                stats.stagedBytesReceived += byteLen;
                queueRdmaRdCompl(head, byteLen);
                if (inShutdown) {
                    discardStaged();
                }
                maybeAckCancel();
                pump();
                waits.signalReadable();
            } else if (tag == WR_READ_DIRECT) {
                postedReadInFlight = false;
                if (status != WcStatus.SUCCESS) {
                    onWorkError("zero-copy READ", status);
                    waits.signalReadable();
                    return;
                }
                // The posted READ is always for the head advert: the reader consumes nothing while it is in flight.
                RxSegment s = rxq.head();
                advertRead(s, byteLen);
                s.consumed += byteLen;
                postedResult = byteLen;
                stats.bytesReceived += byteLen;
                stats.zcopyBytesReceived += byteLen;
                queueRdmaRdCompl(s, byteLen);
                if (s.consumed == s.len) {
                    rxq.pop();
                }
                maybeAckCancel();
                waits.signalReadable();
            } else {
                fail(new SocketException("completion with unknown work request id 0x" + Long.toHexString(wrId)
                        + " (" + Opcode.name(opcode) + ")"), true);
            }
        } catch (IOException e) {
            fail(e, true);
        }
    }

    private RxSegment firstUnreadAdvert() {
        for (int i = 0; i < rxq.size(); i++) {
            RxSegment s = rxq.get(i);
            if (s.advert && s.readDone < s.requested) {
                return s;
            }
        }
        return null;
    }

    private void discardStaged() {
        while (chunks != null && chunks.headReady() && rxq.size() > 0) {
            RxSegment s = rxq.head();
            int n = chunks.headRemaining();
            chunks.consume(n);
            s.consumed += n;
            if (s.consumed == s.len) {
                rxq.pop();
            }
        }
    }

    private void onWorkError(String what, int status) {
        if (status == WcStatus.FLUSH_ERR || disconnected) {
            return; // the disconnect reports the cause
        }
        String why = status == WcStatus.REM_ACCESS_ERR
                ? " (the peer advertised memory outside its registered regions, or a wrong key)" : "";
        fail(new SocketException(what + " failed: " + WcStatus.name(status) + why), true);
    }

    /** A message arrived in receive buffer {@code buf}. */
    private void onMessage(int buf, int byteLen) throws IOException {
        int base = rxBase[buf];
        if (byteLen < Bsdh.SIZE) {
            throw new SdpProtocolException("message of " + byteLen + " bytes is shorter than the BSDH");
        }
        int mid = Bsdh.mid(rx, base);
        int len = Bsdh.len(rx, base);
        int mseq = Bsdh.mseq(rx, base);
        int ack = Bsdh.mseqAck(rx, base);
        if (len != byteLen) {
            throw new SdpProtocolException("BSDH length " + len + " but " + byteLen + " bytes received ("
                    + Bsdh.midName(mid) + ")");
        }
        credits.receive(mid, mseq, Bsdh.bufs(rx, base), ack);
        boolean held = false;
        switch (mid) {
            case Bsdh.MID_DATA -> held = onData(buf, base, len - Bsdh.SIZE);
            case Bsdh.MID_SRC_AVAIL -> onSrcAvail(base, len, mseq);
            case Bsdh.MID_RDMA_RD_COMPL -> onRdmaRdCompl(base, len);
            case Bsdh.MID_SEND_SM -> onSendSm(len, ack);
            case Bsdh.MID_SRC_AVAIL_CANCEL -> onSrcAvailCancel(len, mseq);
            case Bsdh.MID_DISCONN -> onDisConn(len);
            case Bsdh.MID_ABORT_CONN -> {
                postRecv(buf);
                fail(new SocketException("Connection reset by peer (AbortConn)"), false);
                return;
            }
            default -> throw new SdpProtocolException("unexpected message id " + Bsdh.midName(mid) + " (" + len
                    + " bytes)");
        }
        if (!held) {
            postRecv(buf);
        }
        flushControl();
        maybeCreditUpdate();
        waits.signalWritable();
    }

    private boolean onData(int buf, int base, int payload) throws IOException {
        if (payload == 0) {
            return false; // credit update
        }
        if (inEof) {
            throw new SdpProtocolException("Data after DisConn");
        }
        stats.bcopyBytesReceived += payload;
        if (inShutdown) {
            return false;
        }
        RxSegment s = rxq.pushData();
        s.buffer = buf;
        s.from = rx;
        s.offset = base + Bsdh.SIZE;
        s.remaining = payload;
        waits.signalReadable();
        return true;
    }

    private void onSrcAvail(int base, int len, int mseq) throws IOException {
        if (len != Bsdh.SRC_AVAIL_SIZE) {
            throw new SdpProtocolException("SrcAvail of " + len + " bytes, expected " + Bsdh.SRC_AVAIL_SIZE);
        }
        if (inEof) {
            throw new SdpProtocolException("SrcAvail after DisConn");
        }
        if (rxAdvertsUnread >= localMaxAdverts) {
            throw new SdpProtocolException("more than " + localMaxAdverts + " SrcAvail outstanding");
        }
        int n = rx.getInt(base + Bsdh.SIZE);
        if (n <= 0) {
            throw new SdpProtocolException("SrcAvail with length " + n);
        }
        RxSegment s = rxq.pushAdvert();
        s.async = (Bsdh.flags(rx, base) & Bsdh.FLAG_ASYNC) != 0;
        s.len = n;
        s.rkey = rx.getInt(base + Bsdh.SIZE + 4);
        s.vaddr = rx.getLong(base + Bsdh.SIZE + 8);
        s.mseq = mseq;
        rxAdvertsUnread++;
        if (inShutdown) {
            discardInput();
        } else {
            pump();
        }
        waits.signalReadable();
    }

    private void onRdmaRdCompl(int base, int len) throws IOException {
        if (len != Bsdh.RDMA_RD_COMPL_SIZE) {
            throw new SdpProtocolException("RdmaRdCompl of " + len + " bytes");
        }
        int n = rx.getInt(base + Bsdh.SIZE);
        adverts.checkAck(n);
        while (n > 0) { // one acknowledgement may span several adverts (see queueRdmaRdCompl)
            int i = adverts.head();
            int k = Math.min(n, adverts.len(i) - adverts.acked(i));
            n -= k;
            if (adverts.ack(k)) {
                completeAdvert();
            }
        }
    }

    /** SendSM answers our SrcAvailCancel: only one sent at or after the cancel (mseq_ack) counts. */
    private void onSendSm(int len, int ack) throws IOException {
        if (len != Bsdh.SIZE) {
            throw new SdpProtocolException("SendSM of " + len + " bytes");
        }
        if (!cancelInFlight || ack - cancelMseq < 0) {
            throw new SdpProtocolException("SendSM without a pending SrcAvailCancel");
        }
        cancelInFlight = false;
    }

    /** The sender withdraws every advert it sent before the cancel: finish READs in flight, then SendSM. */
    private void onSrcAvailCancel(int len, int mseq) throws IOException {
        if (len != Bsdh.SIZE) {
            throw new SdpProtocolException("SrcAvailCancel of " + len + " bytes");
        }
        for (int i = 0; i < rxq.size(); i++) {
            RxSegment s = rxq.get(i);
            if (s.advert && s.mseq - mseq < 0 && s.len > s.requested) {
                boolean wasUnread = s.readDone < s.len;
                notifyRead(s.len - s.requested);
                s.len = s.requested;
                if (wasUnread && s.readDone == s.len) {
                    rxAdvertsUnread--;
                }
            }
        }
        // Adverts nothing was read from are gone from the stream.
        while (rxq.size() > 0 && rxq.head().advert && rxq.head().len == rxq.head().consumed) {
            rxq.pop();
        }
        rxq.removeEmptyAdverts();
        cancelAckPending = true;
        maybeAckCancel();
        waits.signalReadable();
    }

    private void maybeAckCancel() throws IOException {
        if (cancelAckPending && stageReadsInFlight == 0 && !postedReadInFlight) {
            cancelAckPending = false;
            flushHeldAck(); // before SendSM: the sender counts what is not acknowledged by then as unread
            queueControl(Bsdh.MID_SEND_SM, 0);
        }
    }

    private void onDisConn(int len) throws IOException {
        if (len != Bsdh.SIZE) {
            throw new SdpProtocolException("DisConn of " + len + " bytes");
        }
        inEof = true;
        stageAgain();
        waits.signalReadable();
    }

    private void handleDisconnect(IOException cause) {
        if (disconnected) {
            return;
        }
        disconnected = true;
        if (LIVE.remove(this)) {
            stats.addTo(RETIRED);
        }
        // Protected pages go back at once: a writer blocked on one is released (the next call reports the error).
        while (adverts.count() > 0) {
            completeAdvert();
        }
        lingering.releaseAll();
        if (cause != null) {
            setError(new SocketException("Connection reset: " + cause.getMessage()));
        } else if (!inEof && !closed) {
            setError(new SocketException("Connection closed by peer without DisConn"));
        }
        releaseRegions();
        waits.signalReadable();
        waits.signalWritable();
    }

    /** Registered memory goes back once the endpoint is gone; the buffers themselves are left to the GC. */
    private void releaseRegions() {
        if (rxMr != null) {
            ep.deregister(rxMr);
        }
        ep.deregister(txMr);
        sources.releaseAll();
        sinks.releaseAll();
        if (stageMr != null) {
            ep.deregister(stageMr);
        }
        if (txStageMr != null) {
            ep.deregister(txStageMr);
        }
    }

    private void fail(IOException e, boolean sendAbort) {
        if (error == null) {
            LOG.warn("AZ-SDP connection {} -> {} aborted: {}", ep.localAddress(), ep.remoteAddress(),
                    e.getMessage());
        }
        setError(e);
        if (sendAbort && !disconnected && credits.tx() >= 1 && txFreeCount > 0) {
            try {
                sendNow(Bsdh.MID_ABORT_CONN, 0);
            } catch (IOException ignored) {
                // the endpoint is breaking anyway
            }
        }
        ep.flush();
        ep.abort();
        waits.signalReadable();
        waits.signalWritable();
    }

    private void setError(IOException e) {
        if (error == null) {
            error = e;
        }
        lingering.releaseAll(); // before the endpoint (and the completion word of these ranges) goes
        waits.signalReadable();
        waits.signalWritable();
    }

    private static IOException copyOf(IOException e) {
        // A fresh exception per call gives every caller a useful stack; the cause keeps the original.
        if (e instanceof SocketException) {
            SocketException se = new SocketException(e.getMessage());
            se.initCause(e);
            return se;
        }
        return new IOException(e.getMessage(), e);
    }

    // ------------------------------------------------------------------------------------------------ sending

    private void postRecv(int buf) throws IOException {
        if (disconnected) {
            return;
        }
        try {
            ep.postRecv(WR_RECV | buf, rxMr, rxMr == null ? 0 : rxBase[buf], rxBufSize);
            credits.receivePosted();
            if (rxMr == null && ep.receivesCrowded()) {
                spillHeld(); // before the credit of this receive reaches the peer
            }
        } catch (IOException e) {
            rethrowUnlessGoing(e);
        }
    }

    /**
     * In place, messages handed back out of order left the endpoint too little room for the peer's credits: the Data
     * we hold (an application that does not read pins it) moves to private memory and its place goes back. Its
     * receives stay ours until it is read. Rare: it takes a long-held message and much traffic after it.
     */
    private void spillHeld() {
        if (rxSpill == null) {
            rxSpill = ByteBuffer.allocateDirect(rxBufSize * rxBufCount);
        }
        for (int i = 0; i < rxq.size(); i++) {
            RxSegment s = rxq.get(i);
            if (!s.advert && s.from == rx) {
                int to = s.buffer * rxBufSize;
                NativeLib.copy(rxSpill, to, rx, s.offset, s.remaining);
                s.from = rxSpill;
                s.offset = to;
                ep.releaseReceived(WR_RECV | s.buffer);
                stats.spilledBytes += s.remaining;
            }
        }
    }

    /**
     * A post can fail because the endpoint is already going away (the peer closed after its DisConn, or the
     * disconnect is about to be delivered). That is not an error of the call that merely returned a buffer or a credit.
     */
    private void rethrowUnlessGoing(IOException e) throws IOException {
        if (!disconnected && !inEof && ep.isOpen()) {
            throw e;
        }
    }

    /** Fills the BSDH of send slot {@code slot} and posts it. Must hold the lock; a credit must be available. */
    private void postMessage(int slot, int mid, int flags, int len) throws IOException {
        postMessage(slot, mid, flags, len, null, 0);
    }

    /** With {@code body}, the message's bytes after its BSDH are sent from there (at {@code bodyOffset}). */
    private void postMessage(int slot, int mid, int flags, int len, MemoryRegion body, int bodyOffset)
            throws IOException {
        int base = slot * peerRxBufSize;
        // An RdmaRdCompl matters to the peer only once it waits for an advert slot or for a synchronous send, a
        // credit update only once it waits for credits, and an asynchronous SrcAvail only once it reads (its READ
        // goes into the reader's buffer anyway); then it says so (waitingForPeer) or polls. None need wake the peer's
        // progress thread while half of our credits are left (the unread ones hold the peer's receive buffers, so
        // they must not pile up further), nor a credit update while the peer still has credits to spare.
        boolean deferrable = !aheadOfReader() && (mid == Bsdh.MID_RDMA_RD_COMPL
                || (mid == Bsdh.MID_DATA && len == Bsdh.SIZE && credits.peer() > reserve + 1)
                || (mid == Bsdh.MID_SRC_AVAIL && flags == Bsdh.FLAG_ASYNC));
        Bsdh.write(txPool, base, mid, flags, credits.posted(), len, credits.send(), credits.ackMseq());
        try {
            if (body != null) {
                ep.postSendGather(WR_SEND | slot, txMr, base, Bsdh.SIZE, body, bodyOffset, len - Bsdh.SIZE);
            } else if (deferrable) {
                ep.postSendDeferrable(WR_SEND | slot, txMr, base, len);
            } else {
                ep.postSend(WR_SEND | slot, txMr, base, len);
            }
        } catch (IOException e) {
            txFree[txFreeCount++] = slot;
            if (disconnected || inEof || !ep.isOpen()) {
                // the peer has gone (its DisConn came, or the endpoint stopped before its disconnect reached us)
                SocketException se = new SocketException("Broken pipe: connection closed by peer");
                se.initCause(e);
                throw se;
            }
            throw e;
        }
        stats.messagesSent++;
    }

    /**
     * RdmaRdCompl for {@code n} more bytes read of advert {@code s} (null: unknown). The sender applies
     * acknowledgements to its oldest adverts in order, so one message for a sum means the same as several (an
     * extension: SDP acknowledges one advert per message). While more asynchronous adverts wait to be read, their
     * writer waits for none of them: the bytes are held, up to {@link #ackBatch} adverts' worth, and go with a later
     * acknowledgement. Each RdmaRdCompl costs the reader about half a microsecond (the ring record, its credit and its
     * send completion; docs/BENCHMARKS-HISTORY.md, session 23), more than the READ of 16 KiB. A writer blocked on a
     * protected page waits on the notify word, which moves at once.
     */
    private void queueRdmaRdCompl(RxSegment s, int n) throws IOException {
        notifyRead(n);
        if (ackHeldBytes > Integer.MAX_VALUE - n) {
            flushHeldAck(); // the count is 32 bits
        }
        ackHeldBytes += n;
        if (s != null && s.readDone == s.len) {
            ackHeldAdverts++;
        }
        if (!mayHoldAck()) {
            flushHeldAck();
        }
    }

    /**
     * Holding is safe while adverts wait unread: the writer's outstanding adverts are those held plus those unread,
     * so reading the last unread one sends the rest, and a writer whose slots are full waits for the reader's reads,
     * as it would anyway. Not when the newest advert is synchronous (its writer waits for everything up to it), nor
     * once the stream is ending or a cancel is being answered.
     */
    private boolean mayHoldAck() {
        if (ackHeldAdverts >= ackBatch || rxAdvertsUnread == 0 || inEof || inShutdown || closed || cancelAckPending) {
            return false;
        }
        RxSegment last = rxq.get(rxq.size() - 1);
        return !last.advert || last.async;
    }

    /** Sends the RdmaRdCompl bytes held, merged into a queued one when credits are short. */
    private void flushHeldAck() throws IOException {
        int n = ackHeldBytes;
        if (n == 0) {
            return;
        }
        ackHeldBytes = 0;
        ackHeldAdverts = 0;
        if (ctl.mergeAck(n)) {
            flushControl();
        } else {
            queueControl(Bsdh.MID_RDMA_RD_COMPL, n);
        }
    }

    /**
     * Mirrors the advert bytes read so far into the peer's notify word, at once and without credits: a writer of the
     * peer blocked on a protected page waits on that word, not on the RdmaRdCompl its Java threads would process.
     */
    private void notifyRead(int n) {
        notifyTotal += n;
        if (ep.notifyWordAddress() != 0 && !disconnected) {
            try {
                ep.postNotify(notifyTotal);
            } catch (IOException e) {
                // closing: the peer's protected pages are released by its own disconnect
            }
        }
    }

    private void queueControl(int mid, int arg) throws IOException {
        ctl.add(mid, arg);
        flushControl();
    }

    /** Sends queued control messages while a credit and a send buffer are free (they may use the reserve). */
    private void flushControl() throws IOException {
        try {
            while (!ctl.isEmpty() && !disconnected && txFreeCount > 0 && credits.tx() >= 1) {
                if (ctl.headMid() == Bsdh.MID_DISCONN && pendingSlot >= 0) {
                    flushPending(true); // DisConn follows everything written
                    continue;
                }
                int mid = ctl.headMid();
                int arg = ctl.headArg();
                ctl.pop();
                sendNow(mid, arg);
            }
            if (ctl.isEmpty()) {
                flushPending(false); // data gathered while credits were short
            }
        } catch (IOException e) {
            rethrowUnlessGoing(e);
            ctl.clear();
        }
        if (ctl.isEmpty()) {
            waits.signalWritable();
        }
    }

    private void sendNow(int mid, int arg) throws IOException {
        int slot = txFree[--txFreeCount];
        int len = Bsdh.SIZE;
        if (mid == Bsdh.MID_RDMA_RD_COMPL) {
            txPool.putInt(slot * peerRxBufSize + Bsdh.SIZE, arg);
            len = Bsdh.RDMA_RD_COMPL_SIZE;
            stats.rdmaRdComplsSent++;
        } else if (mid == Bsdh.MID_DATA) {
            creditUpdateQueued = false;
        } else if (mid == Bsdh.MID_SRC_AVAIL_CANCEL) {
            cancelMseq = credits.nextMseq();
        }
        postMessage(slot, mid, 0, len);
    }

    /**
     * Zero-length Data tells the peer about reposted buffers when nothing else is going its way: when its view of
     * our buffers is nearly exhausted, or when half of them could be returned at once.
     */
    private void maybeCreditUpdate() throws IOException {
        if (creditUpdateQueued || disconnected) {
            return;
        }
        int peerView = credits.peer();
        int gain = credits.posted() - peerView;
        if (gain > 0 && (peerView <= reserve + 1 || gain >= rxBufCount / 2)) {
            creditUpdateQueued = true;
            queueControl(Bsdh.MID_DATA, 0);
        }
    }

    // ------------------------------------------------------------------------------------------------ locking

    /**
     * Processes completions that arrived inline while this thread held the lock, in arrival order. Returns true when
     * there were any: their signals were sent before this thread waits, so it must re-check its condition instead.
     */
    private boolean drainDeferred() {
        return deferred.drainTo(replay);
    }

    /** Releases the lock, then transmits what was posted under it (see Endpoint#deferTransmission). */
    private void unlock() {
        boolean outermost = lock.getHoldCount() == 1;
        try {
            if (outermost) {
                drainDeferred();
                declareHeldSends();
            }
        } finally {
            lock.unlock();
        }
        if (outermost) {
            ep.flush();
        }
    }

    /**
     * Control messages or gathered bytes held for lack of credits wait for the peer's next credits as much as a
     * blocked writer does, though no thread may be waiting: declared to the endpoint (as ConnectionWaits#awaitPeer
     * does), so that credits the peer sent deferrable do not sit unread meanwhile.
     */
    private void declareHeldSends() {
        boolean held = (pendingSlot >= 0 || !ctl.isEmpty()) && !disconnected && error == null;
        if (held != sendsHeld) {
            sendsHeld = held;
            ep.waitingForPeer(held);
        }
    }

    @Override
    public String toString() {
        return "SdpConnection[" + ep.fabricName() + " " + ep.localAddress() + " -> " + ep.remoteAddress()
                + ", credits=" + credits.tx() + ", posted=" + credits.posted() + ", adverts=" + adverts.count() + "/"
                + rxq.adverts()
                + (error != null ? ", error=" + error.getMessage() : "") + "]";
    }

    /** SrcAvails sent and not yet fully read by the peer (racy read, for monitoring). */
    public int advertsOutstanding() {
        return adverts.count();
    }

    /** Full protocol state, for stall diagnostics (takes the lock briefly; gives up after a second if it is held). */
    public String describe() {
        try {
            if (!lock.tryLock(1, TimeUnit.SECONDS)) {
                return toString() + " (lock held by another thread: state not read)";
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return toString();
        }
        try {
            StringBuilder b = new StringBuilder(toString());
            b.append(' ').append(credits).append(" ctlCount=").append(ctl.size())
                    .append(" txFree=").append(txFreeCount).append(" rxq=").append(rxq.size())
                    .append(" unread=").append(rxAdvertsUnread).append(" chunks=").append(stagedCount())
                    .append(" stageReads=").append(stageReadsInFlight).append(" posted=").append(postedMr != null)
                    .append(" postedInFlight=").append(postedReadInFlight).append(" postedResult=").append(postedResult)
                    .append(" inEof=").append(inEof).append(" outShutdown=").append(outShutdown)
                    .append(" disconnected=").append(disconnected);
            for (int i = 0; i < rxq.size(); i++) {
                RxSegment s = rxq.get(i);
                b.append(i == 0 ? " queue:" : ",");
                if (s.advert) {
                    b.append(" A(len=").append(s.len).append(" req=").append(s.requested).append(" done=")
                            .append(s.readDone).append(" used=").append(s.consumed).append(')');
                } else {
                    b.append(" D(").append(s.remaining).append(')');
                }
            }
            return b.toString();
        } finally {
            lock.unlock();
        }
    }
}
