package io.azsdp.fabric.shm;

import io.azsdp.fabric.CompletionHandler;
import io.azsdp.fabric.Endpoint;
import io.azsdp.fabric.FabricException;
import io.azsdp.fabric.FabricOptions;
import io.azsdp.fabric.MemoryRegion;
import io.azsdp.fabric.Opcode;
import io.azsdp.fabric.Spin;
import io.azsdp.fabric.WcStatus;
import io.azsdp.nativeio.NativeLib;
import java.io.FileInputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.BooleanSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One side of a shm connection. SENDs are copied into the peer-bound ring by the posting thread and complete inline;
 * READ/WRITE are one process_vm_readv/writev between the two processes' registered memory and complete inline; the
 * progress thread matches inbound ring records with posted receives and detects peer close, abort and death.
 *
 * <p>Locks (never held across a callback; acquired in this order): {@code rmaLock} serialises one-sided operations,
 * {@code sendLock} the outbound ring and every phase transition, {@code recvLock} the posting of receives; the region
 * table has its own monitor. Unmapping the segment takes all of them, and every path checks the phase (or the receive
 * queue's closed flag) under its lock before touching the segment, so nothing can touch it once it is gone.
 *
 * <p>Disconnect: {@link #beginShutdown} makes the phase transition, tells the peer (state word + doorbell) and revokes
 * our region keys; {@link #finishDisconnect} flushes posted receives and calls {@code onDisconnect} exactly once. The
 * latter runs on the progress thread when there is one, inline otherwise.
 *
 * <p>Polling: the inbound ring and the receive queue have one consumer at a time, the holder of {@code token}: the
 * progress thread, or an application thread that is about to wait for a completion and {@link #poll}s the ring itself
 * for a few microseconds (no doorbell, no wake-up of the progress thread, no hand-off: a round trip without a system
 * call). While a poller holds the token the progress thread parks (250 us to 2 ms, see {@link #TOKEN_PARK_NANOS})
 * instead of sleeping on the doorbell, and a progress thread that already sleeps there is not rung by the peer (the
 * poller's flag in the ring); a poller that gives up without a delivery unparks it, one that leaves records behind
 * rings it. The progress thread takes the token for good before it unmaps the segment, so no poller can touch it
 * afterwards.
 *
 * <p>Receives in place ({@link #receiveInPlace}) save the receiving side's copy: each message is handed out where it
 * lies in the inbound ring and stays there until its receive is posted again. The owner may read such messages until
 * it calls {@link #close}, after a disconnect too, so the segment is then unmapped by whichever comes last of the
 * progress thread's end and that call.
 */
final class ShmEndpoint implements Endpoint {
    private static final Logger LOG = LoggerFactory.getLogger(ShmEndpoint.class);

    /** Spin this long before sleeping: a reply on a busy connection usually arrives within it. */
    private static final long SPIN_NANOS = 5_000;
    /**
     * How long the progress thread parks while a poller holds the token: bounds how late it takes records that arrived
     * after the poller's last look (a poller that delivered does not wake it, expecting to poll again soon). Doubled
     * after each park that ended with the token still held, up to 8x, and back to 250 us once the progress thread
     * delivers: with a fixed 250 us, an application thread that polls most of the time (a stream's receiver) had the
     * progress thread wake up to 4000 times a second, each wake-up taking a core from an application thread
     * (docs/BENCHMARKS-HISTORY.md, session 19).
     */
    private static final long TOKEN_PARK_NANOS = 250_000;
    private static final long TOKEN_PARK_MAX_NANOS = 8 * TOKEN_PARK_NANOS;

    // Local phases. OPEN until the first transition; which one it was picks the cause and the state we publish.
    private static final int OPEN = 0;
    private static final int CLOSED = 1;
    private static final int ABORTED = 2;
    private static final int BROKEN = 3;
    private static final int PEER_CLOSED = 4;
    private static final int PEER_RESET = 5;
    private static final int PEER_DEAD = 6;

    private final ShmSegment seg;
    private final int side;
    private final int peerSide;
    private final int peerPid;
    private final ProcessHandle peerProcess; // null when already gone at connect time
    private final ShmRing out;
    private final ShmRing in;
    private final RegionTable localRegions;
    private final RegionTable peerRegions;
    private final RecvQueue recvs;
    private final InlineCompletions sendCompletions = new InlineCompletions();
    private final InlineCompletions rmaCompletions = new InlineCompletions();
    private final InetSocketAddress localAddress;
    private final InetSocketAddress remoteAddress;
    private final long waitNanos;
    private final long livenessNanos;
    private final BooleanSupplier peerAliveCheck = this::peerAlive;

    private final Object rmaLock = new Object();
    /** Guarded by rmaLock. */
    private final PeerMappings peerMappings;
    /** READs served from a mapping of the peer's shareable memory rather than by CMA. Guarded by rmaLock. */
    private long sharedReads;
    private final Object sendLock = new Object();
    private final Object recvLock = new Object();
    /** Consumer of the inbound ring and the receive queue (see the class comment). */
    private final ReentrantLock token = new ReentrantLock();
    private volatile boolean progressParked;
    private long tokenParkNanos = TOKEN_PARK_NANOS; // progress thread
    /**
     * The progress thread sleeps until a receive is posted (a message waits in the ring). Only then does a posted
     * receive wake it: an application thread that polled and reposts the buffers it consumed must not wake a progress
     * thread that merely waits for data.
     */
    private volatile boolean awaitingRecv;
    /** Threads inside {@link #waitingForPeer}: while none, the progress thread sleeps through deferrable SENDs. */
    private final AtomicInteger peerWaiters = new AtomicInteger();

    private volatile CompletionHandler handler;
    private volatile int phase = OPEN;
    private volatile IOException disconnectCause; // written under sendLock before the phase leaves OPEN
    private final AtomicBoolean disconnectDelivered = new AtomicBoolean();
    /** Set before start. Then the owner reads messages in the ring, and its close is one more user of the segment. */
    private volatile boolean inPlace;
    private ByteBuffer inPlaceView; // guarded by sendLock
    private final AtomicInteger segmentUsers = new AtomicInteger(1);
    private final AtomicBoolean ownerClosed = new AtomicBoolean();
    private boolean started; // guarded by sendLock
    private volatile Thread thread;
    private boolean recvClosed; // guarded by recvLock
    private long lastLivenessCheck; // progress thread
    private final String statPath;
    private final byte[] statBuffer = new byte[1024];

    ShmEndpoint(ShmSegment seg, int side, FabricOptions options, InetSocketAddress localAddress,
                InetSocketAddress remoteAddress) {
        this.seg = seg;
        this.side = side;
        this.peerSide = 1 - side;
        this.peerPid = seg.pid(peerSide);
        this.peerProcess = ProcessHandle.of(peerPid).orElse(null);
        this.statPath = "/proc/" + peerPid + "/stat";
        this.out = new ShmRing(seg, peerSide);
        this.in = new ShmRing(seg, side);
        this.localRegions = new RegionTable(seg, side, true);
        this.peerRegions = new RegionTable(seg, peerSide, false);
        this.peerMappings = new PeerMappings(peerPid);
        this.recvs = new RecvQueue(options.maxPostedRecvs());
        this.localAddress = localAddress;
        this.remoteAddress = remoteAddress;
        this.livenessNanos = TimeUnit.MILLISECONDS.toNanos(options.livenessTimeoutMs());
        this.waitNanos = Math.max(TimeUnit.MILLISECONDS.toNanos(1),
                Math.min(TimeUnit.MILLISECONDS.toNanos(100), livenessNanos / 4));
    }

    @Override
    public String fabricName() {
        return "shm";
    }

    @Override
    public InetSocketAddress localAddress() {
        return localAddress;
    }

    @Override
    public InetSocketAddress remoteAddress() {
        return remoteAddress;
    }

    @Override
    public void setHandler(CompletionHandler handler) {
        this.handler = handler;
    }

    @Override
    public void start() {
        synchronized (sendLock) {
            if (started) {
                throw new IllegalStateException("endpoint already started");
            }
            started = true;
            if (phase != OPEN) {
                return; // closed before start: the disconnect was delivered inline
            }
            Thread t = new Thread(this::progressThread, "azsdp-shm-rx-" + peerPid);
            t.setDaemon(true);
            thread = t;
            t.start();
        }
    }

    @Override
    public ByteBuffer receiveInPlace() {
        synchronized (sendLock) {
            if (started) {
                throw new IllegalStateException("receives in place must be asked for before start");
            }
            if (phase != OPEN) {
                return null; // closed before start: the segment may be gone, and the posts fail anyway
            }
            if (inPlaceView == null) {
                segmentUsers.incrementAndGet();
                inPlaceView = in.receiveInPlace(recvs.limit());
                inPlace = true;
            }
            return inPlaceView;
        }
    }

    @Override
    public boolean receivesCrowded() {
        return inPlace && in.crowded(recvs.size(), recvs.limit());
    }

    @Override
    public void releaseReceived(long wrId) {
        synchronized (recvLock) {
            if (inPlace && !recvClosed) { // closed: nobody sends into the ring any more
                in.release(wrId);
            }
        }
    }

    // ------------------------------------------------------------------ memory

    @Override
    public MemoryRegion register(ByteBuffer buffer) throws IOException {
        return localRegions.register(buffer, true);
    }

    @Override
    public MemoryRegion registerLocal(ByteBuffer buffer) throws IOException {
        return localRegions.register(buffer, false);
    }

    @Override
    public void deregister(MemoryRegion region) {
        localRegions.deregister(region, peerAliveCheck, livenessNanos);
    }

    private void checkLocal(MemoryRegion region, int offset, int length) throws FabricException {
        if (!localRegions.owns(region)) {
            throw new FabricException(WcStatus.LOC_PROT_ERR, "memory region not registered with this endpoint: "
                    + region);
        }
        region.checkRange(offset, length);
    }

    // ------------------------------------------------------------------ two-sided

    @Override
    public void postRecv(long wrId, MemoryRegion region, int offset, int length) throws IOException {
        boolean inPlace = this.inPlace;
        if (!inPlace) {
            checkLocal(region, offset, length);
            region.checkWritable();
        } else if (region != null || offset != 0 || length < 0) {
            throw new IllegalArgumentException("a receive in place takes no region, offset 0 and a length >= 0");
        }
        synchronized (recvLock) {
            if (recvClosed) {
                throw closedException();
            }
            if (inPlace) {
                in.release(wrId);
                if (recvs.size() + in.held() >= recvs.limit()) {
                    throw new IOException("too many receives posted or holding messages in place (max "
                            + recvs.limit() + ")");
                }
            }
            if (!recvs.offer(wrId, region, offset, length)) {
                throw new IOException("too many posted receives (max " + recvs.limit() + ")");
            }
            // The progress thread may be asleep waiting for exactly this receive (volatile tail, then flag: Dekker).
            if (awaitingRecv) {
                in.ring();
            }
        }
    }

    @Override
    public void postSend(long wrId, MemoryRegion region, int offset, int length) throws IOException {
        send(wrId, region, offset, length, null, 0, 0, false);
    }

    @Override
    public void postSendDeferrable(long wrId, MemoryRegion region, int offset, int length) throws IOException {
        send(wrId, region, offset, length, null, 0, 0, true);
    }

    /** Both parts are copied into the ring at once: the body's one copy on this side. */
    @Override
    public void postSendGather(long wrId, MemoryRegion head, int headOffset, int headLength, MemoryRegion body,
                               int bodyOffset, int bodyLength) throws IOException {
        checkLocal(body, bodyOffset, bodyLength);
        send(wrId, head, headOffset, headLength, body, bodyOffset, bodyLength, false);
    }

    @Override
    public void waitingForPeer(boolean waiting) {
        if (!waiting) {
            peerWaiters.decrementAndGet();
            return;
        }
        peerWaiters.incrementAndGet(); // then end a deferring sleep (Dekker with await)
        synchronized (recvLock) { // the segment stays mapped while the receive queue is open
            if (!recvClosed && in.stopDeferring()) {
                in.ring(); // deferred SENDs may be waiting in the ring
            }
        }
    }

    private void send(long wrId, MemoryRegion region, int offset, int length, MemoryRegion body, int bodyOffset,
                      int bodyLength, boolean deferrable) throws IOException {
        checkLocal(region, offset, length);
        int total = length + bodyLength;
        if (total > out.maxMessage()) {
            throw new FabricException(WcStatus.LOC_LEN_ERR, "SEND of " + total
                    + " bytes exceeds the peer's maximum message size of " + out.maxMessage());
        }
        synchronized (sendLock) {
            ensureOpen();
            if (!out.offer(region.buffer(), offset, length, body == null ? null : body.buffer(), bodyOffset,
                    bodyLength, deferrable)) {
                throw new IOException("remote receive queue overrun");
            }
            sendCompletions.add(Opcode.SEND, wrId, total, WcStatus.SUCCESS);
        }
        sendCompletions.drain(handler);
    }

    // ------------------------------------------------------------------ one-sided

    @Override
    public void postRead(long wrId, MemoryRegion local, int offset, int length, long remoteAddress, int rkey)
            throws IOException {
        oneSided(Opcode.READ, wrId, local, offset, length, remoteAddress, rkey);
    }

    @Override
    public void postWrite(long wrId, MemoryRegion local, int offset, int length, long remoteAddress, int rkey)
            throws IOException {
        oneSided(Opcode.WRITE, wrId, local, offset, length, remoteAddress, rkey);
    }

    private void oneSided(int opcode, long wrId, MemoryRegion local, int offset, int length, long raddr, int rkey)
            throws IOException {
        checkLocal(local, offset, length);
        if (opcode == Opcode.READ) {
            local.checkWritable();
        }
        boolean inline = false;
        synchronized (rmaLock) {
            synchronized (sendLock) {
                ensureOpen();
            }
            FabricException error = transfer(opcode, local.address() + offset, length, raddr, rkey);
            if (error == null) {
                rmaCompletions.add(opcode, wrId, length, WcStatus.SUCCESS);
            } else {
                // As with verbs, a failed one-sided operation moves the connection to the error state.
                rmaCompletions.add(opcode, wrId, 0, error.status());
                inline = beginShutdown(BROKEN, error);
            }
        }
        try {
            rmaCompletions.drain(handler);
        } finally {
            if (inline) {
                finishDisconnect();
                releaseSegment();
            }
        }
    }

    /** One copy between our memory and the peer's, after checking the peer's key and bounds. Null on success. */
    private FabricException transfer(int opcode, long localAddr, int length, long raddr, int rkey) {
        int slot = peerRegions.pin(rkey);
        if (slot < 0) {
            return new FabricException(WcStatus.REM_ACCESS_ERR, Opcode.name(opcode) + ": remote key 0x"
                    + Integer.toHexString(rkey) + " is not registered by the peer");
        }
        try {
            long base = peerRegions.address(slot);
            long regionLength = peerRegions.length(slot);
            long off = raddr - base; // exact for any raddr: valid iff 0 <= off <= regionLength - length
            if (opcode == Opcode.WRITE && peerRegions.readOnly(slot)) {
                return new FabricException(WcStatus.REM_ACCESS_ERR, "WRITE: the peer registered key 0x"
                        + Integer.toHexString(rkey) + " read-only");
            }
            if (off < 0 || off > regionLength - length) {
                return new FabricException(WcStatus.REM_ACCESS_ERR, Opcode.name(opcode) + ": remote range [0x"
                        + Long.toHexString(raddr) + ", +" + length + ") outside the peer's region [0x"
                        + Long.toHexString(base) + ", +" + regionLength + ") of key 0x" + Integer.toHexString(rkey));
            }
            if (length == 0) {
                return null;
            }
            long shared = opcode == Opcode.READ ? peerRegions.sharedAddress(slot, peerMappings) : 0;
            long n;
            if (shared != 0) {
                NativeLib.copy(localAddr, shared + off, length); // the local range was checked by the caller
                n = length;
                sharedReads++;
            } else {
                n = opcode == Opcode.READ
                        ? NativeLib.readRemote(peerPid, localAddr, raddr, length)
                        : NativeLib.writeRemote(peerPid, localAddr, raddr, length);
            }
            if (n != length) {
                return new FabricException(WcStatus.REM_OP_ERR, Opcode.name(opcode) + " of " + length
                        + " bytes from/to process " + peerPid + " failed: " + (n < 0 ? "errno " + -n : n + " bytes"));
            }
            return null;
        } finally {
            peerRegions.unpin(slot);
        }
    }

    long sharedReads() {
        synchronized (rmaLock) {
            return sharedReads;
        }
    }

    // ------------------------------------------------------------------ lifecycle

    @Override
    public long notifyWordAddress() {
        return seg.notifyAddress(side);
    }

    /**
     * Never blocks: a store into the shared segment, and a futex wake when a thread sleeps on the word (under
     * sendLock, which keeps it mapped).
     */
    @Override
    public void postNotify(int value) throws IOException {
        synchronized (sendLock) {
            if (phase != OPEN) {
                throw closedException();
            }
            if (seg.setNotify(peerSide, value) != 0) {
                NativeLib.futexWake(seg.notifyAddress(peerSide), Integer.MAX_VALUE);
            }
        }
    }

    @Override
    public int peerPid() {
        return peerPid;
    }

    /** False as soon as the peer has closed or reset too, even before the progress thread has noticed. */
    @Override
    public boolean isOpen() {
        synchronized (sendLock) { // keeps the segment mapped while we read the peer's state
            return phase == OPEN && seg.state(peerSide) == ShmSegment.STATE_OPEN;
        }
    }

    @Override
    public void close() {
        shutdown(CLOSED, null);
        if (inPlace && ownerClosed.compareAndSet(false, true)) {
            releaseSegment(); // the owner reads no more messages in place
        }
    }

    @Override
    public void abort() {
        shutdown(ABORTED, new IOException("aborted locally"));
    }

    private void shutdown(int newPhase, IOException cause) {
        if (beginShutdown(newPhase, cause)) {
            finishDisconnect();
            releaseSegment();
        }
    }

    /** Caller holds sendLock. Throws unless both sides are open. */
    private void ensureOpen() throws IOException {
        if (phase != OPEN) {
            throw closedException();
        }
        int ps = seg.state(peerSide);
        if (ps != ShmSegment.STATE_OPEN) {
            throw new IOException(ps == ShmSegment.STATE_CLOSED ? "connection closed by peer"
                    : "connection reset by peer");
        }
    }

    private IOException closedException() {
        IOException cause = disconnectCause;
        return new IOException("shm endpoint is closed" + (cause == null ? "" : ": " + cause.getMessage()), cause);
    }

    /**
     * Leaves OPEN (first caller wins), publishes our state and wakes both progress threads, then revokes our region
     * keys so the peer can no longer touch our memory.
     *
     * @return true when the caller must run {@link #finishDisconnect} itself (no progress thread)
     */
    private boolean beginShutdown(int newPhase, IOException cause) {
        boolean inline;
        synchronized (sendLock) {
            if (phase != OPEN) {
                return false;
            }
            disconnectCause = cause;
            phase = newPhase;
            // Under sendLock, so every SEND that completed successfully is in the ring before the peer sees this.
            seg.setState(side, newPhase == CLOSED || newPhase == PEER_CLOSED
                    ? ShmSegment.STATE_CLOSED : ShmSegment.STATE_ABORTED);
            out.ring();
            Thread t = thread;
            inline = t == null;
            if (t != null && t != Thread.currentThread()) {
                in.ring();
                LockSupport.unpark(t); // in case it is parked for the token
            }
        }
        localRegions.revokeAll(peerAliveCheck, livenessNanos);
        return inline;
    }

    /** Flushes the posted receives and reports the disconnect, once. Runs on the receive queue's consumer. */
    private void finishDisconnect() {
        if (!disconnectDelivered.compareAndSet(false, true)) {
            return;
        }
        synchronized (recvLock) {
            recvClosed = true;
        }
        while (!recvs.isEmpty()) {
            long wrId = recvs.wrId();
            recvs.remove();
            complete(Opcode.RECV, wrId, 0, WcStatus.FLUSH_ERR);
        }
        CompletionHandler h = handler;
        if (h != null) {
            try {
                h.onDisconnect(disconnectCause);
            } catch (Throwable t) {
                LOG.warn("shm: onDisconnect handler failed", t);
            }
        }
    }

    /**
     * Unmaps the segment once nothing can touch it: after the phase left OPEN and the progress thread is done, and in
     * place after the owner's close too (each calls this once).
     */
    private void releaseSegment() {
        if (segmentUsers.decrementAndGet() > 0) {
            return;
        }
        synchronized (rmaLock) {
            synchronized (sendLock) {
                synchronized (recvLock) {
                    localRegions.detach();
                    peerMappings.close();
                    seg.release();
                }
            }
        }
    }

    // ------------------------------------------------------------------ progress thread

    private void progressThread() {
        lastLivenessCheck = System.nanoTime();
        try {
            receiveLoop();
        } catch (Throwable t) {
            LOG.error("shm: progress thread failed", t);
            beginShutdown(BROKEN, new FabricException(WcStatus.TRANSPORT_ERR, "shm progress thread failed: " + t, t));
        } finally {
            token.lock(); // for good: pollers hold it for microseconds, and none may start after this
            finishDisconnect();
            releaseSegment();
        }
    }

    /** Matches ring records with posted receives until the phase leaves OPEN. */
    private void receiveLoop() {
        final ShmRing in = this.in;
        final RecvQueue recvs = this.recvs;
        while (phase == OPEN) {
            if (!token.isHeldByCurrentThread() && !acquireToken()) {
                continue;
            }
            int length;
            try {
                length = in.next();
                int peerState = seg.state(peerSide);
                if (peerState != ShmSegment.STATE_OPEN && peerState != ShmSegment.STATE_CLOSED) {
                    beginShutdown(PEER_RESET, new IOException("connection reset by peer")); // no draining
                    return;
                }
                if (length < 0) {
                    if (peerState == ShmSegment.STATE_CLOSED) {
                        // The peer published its last record before its state; one more look settles it.
                        if (in.next() < 0) {
                            beginShutdown(PEER_CLOSED, null);
                            return;
                        }
                        continue;
                    }
                    await(false);
                    continue;
                }
            } catch (FabricException e) {
                beginShutdown(BROKEN, e);
                return;
            }
            if (recvs.isEmpty()) {
                await(true); // receiver not ready: the message stays in the ring
                continue;
            }
            long wrId = recvs.wrId();
            int capacity = recvs.length();
            if (length > capacity) {
                recvs.remove();
                complete(Opcode.RECV, wrId, 0, WcStatus.LOC_LEN_ERR);
                beginShutdown(BROKEN, new FabricException(WcStatus.LOC_LEN_ERR, "incoming SEND of " + length
                        + " bytes is larger than the posted receive of " + capacity + " bytes"));
                return;
            }
            deliver(wrId, length);
            tokenParkNanos = TOKEN_PARK_NANOS;
        }
    }

    /** The current ring message goes to the oldest posted receive, {@code wrId}: copied into it, or in place. */
    private void deliver(long wrId, int length) {
        if (!inPlace) {
            in.copyTo(recvs.region().buffer(), recvs.offset(), length);
            in.consume();
            recvs.remove();
            complete(Opcode.RECV, wrId, length, WcStatus.SUCCESS);
            return;
        }
        int offset;
        synchronized (recvLock) { // with postRecv's count of receives posted or held
            offset = in.hold(wrId);
            recvs.remove();
        }
        CompletionHandler h = handler;
        if (h == null) {
            return;
        }
        try {
            h.onRecvInPlace(wrId, offset, length);
        } catch (Throwable t) {
            LOG.warn("shm: completion handler failed for RECV wrId {}", wrId, t);
        }
    }

    /**
     * Progress thread: takes the token, or parks a little while a poller has it (see {@link #TOKEN_PARK_NANOS}). True
     * when it has the token.
     */
    private boolean acquireToken() {
        if (token.tryLock()) {
            return true;
        }
        progressParked = true; // then re-check: a poller releases the token, then reads this flag
        try {
            if (token.tryLock()) {
                return true;
            }
            LockSupport.parkNanos(this, tokenParkNanos);
            if (token.tryLock()) {
                return true;
            }
            tokenParkNanos = Math.min(TOKEN_PARK_MAX_NANOS, 2 * tokenParkNanos);
            return false;
        } finally {
            progressParked = false;
        }
    }

    @Override
    public boolean canPoll() {
        return thread != null;
    }

    @Override
    public boolean poll(long spinNanos, BooleanSupplier done) {
        if (thread == null || phase != OPEN || !token.tryLock()) {
            return false;
        }
        int delivered = 0;
        boolean handBack = false;
        in.beginPolling();
        try {
            long start = System.nanoTime();
            long nextYield = Spin.firstYield(start);
            while (phase == OPEN) {
                int r = pollOnce();
                if (r > 0) {
                    delivered++;
                    continue; // take whatever else is there too
                }
                handBack = r < 0;
                long now = System.nanoTime();
                if (handBack || delivered > 0 || now - start >= spinNanos) {
                    break;
                }
                // now and then the core goes to the reply's thread, maybe queued behind us (the peer's or our own)
                nextYield = Spin.pause(now, nextYield);
            }
        } finally {
            if (in.endPolling()) {
                in.ring(); // what arrived after our last look, or what we handed back
            }
            token.unlock();
            if ((delivered == 0 || handBack) && progressParked) {
                LockSupport.unpark(thread);
            }
        }
        return delivered > 0;
    }

    /**
     * One ring record into a posted receive, on a poller: 1 delivered, 0 nothing yet, -1 something only the progress
     * thread handles (a state change, a missing or too small receive, a corrupt ring).
     */
    private int pollOnce() {
        int length;
        try {
            length = in.next();
        } catch (FabricException e) {
            return -1;
        }
        int peerState = seg.state(peerSide);
        if (length < 0 || (peerState != ShmSegment.STATE_OPEN && peerState != ShmSegment.STATE_CLOSED)) {
            // An orderly close still delivers what is in the ring (as receiveLoop does); the rest is its business.
            return length < 0 && peerState == ShmSegment.STATE_OPEN ? 0 : -1;
        }
        if (recvs.isEmpty() || length > recvs.length()) {
            return -1;
        }
        deliver(recvs.wrId(), length);
        return 1;
    }

    /**
     * Waits for a ring record ({@code forRecv} false) or a posted receive (true): spins briefly, then sleeps on our
     * inbound doorbell, which the peer rings for data and state changes and we ring for posted receives and local
     * shutdown. Sleeps are bounded so that a dead peer is noticed within the liveness timeout.
     */
    private void await(boolean forRecv) {
        token.unlock(); // idle: a waiting application thread may poll meanwhile; receiveLoop takes it back
        long spinStart = System.nanoTime();
        do {
            Thread.onSpinWait();
            if (ready(forRecv)) {
                return;
            }
        } while (System.nanoTime() - spinStart < SPIN_NANOS);
        // With no thread waiting for the peer, deferrable SENDs (RdmaRdCompl, credit updates, asynchronous SrcAvail)
        // need not wake us: the thread that will want them polls the ring, or ends the deferral first (waitingForPeer).
        boolean deferring = !forRecv && peerWaiters.get() == 0;
        awaitingRecv = forRecv; // before the re-check below (Dekker with postRecv)
        in.setSleeping(deferring ? ShmRing.ASLEEP_DEFERRING : ShmRing.ASLEEP);
        if (deferring && peerWaiters.get() > 0) {
            in.stopDeferring(); // a waiter came meanwhile and may have missed the deferring state
        }
        int seen = in.doorbell();
        if (!ready(forRecv)) {
            in.await(seen, waitNanos);
        }
        in.setSleeping(ShmRing.AWAKE);
        awaitingRecv = false;
        long now = System.nanoTime();
        if (now - lastLivenessCheck >= waitNanos) {
            lastLivenessCheck = now;
            if (seg.state(peerSide) == ShmSegment.STATE_OPEN && !peerAlive()) {
                beginShutdown(PEER_DEAD, new IOException("shm peer process " + peerPid + " died"));
            }
        }
    }

    /** For tests: the progress thread is about to sleep, or sleeps, until a receive is posted. */
    boolean awaitingRecv() {
        return awaitingRecv;
    }

    private boolean ready(boolean forRecv) {
        if (phase != OPEN) {
            return true;
        }
        int peerState = seg.state(peerSide);
        if (forRecv) {
            // An orderly close still wants its messages delivered, so only an abort ends a wait for a receive.
            return !recvs.isEmpty() || (peerState != ShmSegment.STATE_OPEN && peerState != ShmSegment.STATE_CLOSED);
        }
        return in.peekData() || peerState != ShmSegment.STATE_OPEN; // without the token: no consumer state
    }

    /**
     * ProcessHandle compares the start time, so a recycled pid does not count. A zombie (killed, not yet reaped by
     * its parent) still "exists" for ProcessHandle, so the state letter in /proc/pid/stat is checked too, read into a
     * reused buffer: this runs every wait timeout for the life of the connection.
     */
    private boolean peerAlive() {
        if (peerProcess == null || !peerProcess.isAlive()) {
            return false;
        }
        synchronized (statBuffer) { // also called by deregistering threads
            int n = 0;
            try (FileInputStream in = new FileInputStream(statPath)) {
                for (int r; n < statBuffer.length && (r = in.read(statBuffer, n, statBuffer.length - n)) > 0; ) {
                    n += r;
                }
            } catch (IOException e) {
                return peerProcess.isAlive(); // gone between the two checks, or no /proc: trust ProcessHandle
            }
            // "pid (comm) S ...": the state follows the last ')' (comm may itself contain parentheses)
            for (int i = n - 1; i >= 0; i--) {
                if (statBuffer[i] == ')') {
                    return i + 2 >= n || statBuffer[i + 2] != 'Z';
                }
            }
            return true;
        }
    }

    private void complete(int opcode, long wrId, int byteLen, int status) {
        CompletionHandler h = handler;
        if (h == null) {
            return;
        }
        try {
            h.onCompletion(opcode, wrId, byteLen, status);
        } catch (Throwable t) {
            LOG.warn("shm: completion handler failed for {} wrId {}", Opcode.name(opcode), wrId, t);
        }
    }

    /** For tests that corrupt the shared memory on purpose. */
    ShmSegment segment() {
        return seg;
    }

    /** For tests: our side of the segment, which is also the index of our inbound ring. */
    int side() {
        return side;
    }

    @Override
    public String toString() {
        return "ShmEndpoint[" + localAddress + " -> " + remoteAddress + ", peer pid " + peerPid + ", "
                + (isOpen() ? "open" : "closed") + "]";
    }
}
