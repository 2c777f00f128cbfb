package io.azsdp.fabric.tcp;

import io.azsdp.fabric.FabricException;
import io.azsdp.fabric.Opcode;
import io.azsdp.fabric.Spin;
import io.azsdp.fabric.SpinWindow;
import io.azsdp.fabric.WcStatus;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;

/**
 * Reads frames: payloads straight into registered memory (posted receive, READ destination, WRITE target) — never
 * into a staging buffer, never outside a validated range. Whoever holds {@link #token} reads: the reader thread, or an
 * application thread about to wait for a completion ({@link #poll}), which then needs neither the reader thread to be
 * woken nor a hand-off to itself. The socket is non-blocking; the reader thread waits in its selector, without the
 * token between frames, and a poller in a selector of its own. It never writes to the socket: responses go to the
 * {@link FrameWriter}.
 *
 * <p>Every malformed or unexpected frame is fatal: the stream cannot be resynchronised, so the endpoint is failed
 * with a {@link FabricException} naming the problem.
 */
final class FrameReader implements Runnable {
    private static final Logger log = LoggerFactory.getLogger(FrameReader.class);
    private static final int SPINS = 200;
    private static final long PARK_NANOS = 50_000_000L;
    private static final int DISCARD_LEN = 64 * 1024;
    private static final long SELECT_MS = 100;
    /** Selecting with an action leaves the selected-key set alone: no set entry allocated per wake-up. */
    private static final Consumer<SelectionKey> IGNORE = key -> { };
    /**
     * How long the reader thread leaves the socket to pollers before it looks again: doubling from MIN to MAX. MAX
     * bounds how long a frame nobody waits for goes unread. Frames that only our application waits for (SENDs,
     * responses) wait for its next poll anyway, so MAX is long and the reader thread costs few wake-ups on a stream
     * (a 16 KiB tcp/bcopy stream: 0.51 of Java TCP's throughput with 200 us, 0.63 with 2 ms, mean of three A/B pairs);
     * once the peer READs or WRITEs our memory, nobody else serves it, and SERVING_MAX bounds its wait instead, until
     * SERVING_HOLD has passed without such a frame.
     */
    private static final long MIN_NAP_NANOS = 50_000L;
    private static final long MAX_NAP_NANOS = 2_000_000L;
    private static final long SERVING_MAX_NAP_NANOS = 200_000L;
    private static final long SERVING_HOLD_NANOS = 100_000_000L;
    private static final BooleanSupplier NEVER = () -> false;

    private static final int NONE = 0;
    private static final int FRAME = 1;
    /** A poller met something only the reader thread handles: end of stream, or a SEND without a posted receive. */
    private static final int HAND_BACK = 2;

    private final TcpEndpoint ep;
    private final SocketChannel channel;
    /** Token holder's: how long a poller currently busy-polls. */
    private final SpinWindow busyWindow;
    /** Whoever holds it reads from the socket and owns the fields below. */
    private final ReentrantLock token = new ReentrantLock();
    private final ByteBuffer header = ByteBuffer.allocateDirect(Wire.HEADER_LEN);
    private ByteBuffer discard;
    private boolean peerClosed;
    /** {@link #header} holds a complete header whose frame is not handled yet (a poller handed it back). */
    private boolean headerPending;
    /**
     * The token holder is a poller, not the reader thread: it never waits for a receive to be posted (it may be the
     * thread to post it), and it leaves once its caller's event came (another poller waits on its condition meanwhile).
     */
    private volatile boolean polling;

    /** Opened by the reader thread, which alone selects on it (OP_READ); null before. */
    private volatile Selector selector;
    /** Opened by the first poller; pollers select on it only while holding the token. */
    private volatile Selector pollSelector;
    private volatile boolean pollerBlocked;
    private volatile boolean pollerWoken;
    private volatile Thread thread;
    /** The reader thread naps because pollers read; a poller that got nothing wakes it. */
    private volatile boolean tokenParked;
    /** Counts pollers taking (or queueing for) the token: the reader thread naps while it moves. */
    private volatile int polls;
    /** A poller left without its frame: the reader thread must read again now. */
    private volatile boolean handedBack;
    /**
     * A poller found the token taken. The reader thread then lets go after the frame it is reading, so that a
     * streaming receiver reads the socket itself instead of being handed every frame by a wake-up.
     */
    private volatile boolean pollerWants;
    /** Set while waiting for a receive to be posted (receiver not ready); postRecv unparks only then. */
    volatile boolean waiting;
    /** Frames read by the reader thread and by pollers (each written by the token holder only): for tests. */
    volatile long framesByThread;
    volatile long framesByPollers;
    /** For tests: a poller's waits for data that ended in its busy poll, and those that slept in the kernel. */
    volatile long busyPollHits;
    volatile long kernelWaits;
    /** Counts the peer's READs and WRITEs served (by whoever holds the token); the reader thread watches it. */
    private volatile int peerOps;

    FrameReader(TcpEndpoint ep) {
        this.ep = ep;
        this.channel = ep.channel;
        this.busyWindow = new SpinWindow(ep.options.busyPollMicros() * 1000L);
    }

    /** Wakes the reader thread wherever it waits (a posted receive, readable data, a failure), and any poller. */
    void wake() {
        LockSupport.unpark(thread);
        Selector s = selector;
        if (s != null) {
            s.wakeup();
        }
        wakePoller();
    }

    @Override
    public void run() {
        thread = Thread.currentThread();
        try {
            selector = Selector.open();
            channel.register(selector, SelectionKey.OP_READ);
            loop();
        } catch (IOException e) {
            ep.transportFailed(e); // no-op when a fault already failed the endpoint
        } catch (Throwable t) {
            internalError(t);
            if (t instanceof Error) {
                throw (Error) t;
            }
        } finally {
            waiting = false;
            token.lock(); // for good: no poller may touch the queues while they are flushed, nor after
            close(selector);
            close(pollSelector);
            ep.readerStopped();
        }
    }

    /**
     * While pollers read, the reader thread stays out of the selector (where every arriving frame would wake it as
     * well as the poller) and naps instead, longer while pollers keep coming back; a poller whose event never came
     * hands the socket back at once ({@link #handedBack}). Frames that arrive when nobody waits for them wait at most
     * one nap.
     */
    private void loop() throws IOException {
        long nap = 0;
        int pollsSeen = polls;
        int peerOpsSeen = peerOps;
        long lastPeerOp = System.nanoTime() - SERVING_HOLD_NANOS;
        while (true) {
            boolean pollersActive = polls != pollsSeen;
            pollsSeen = polls;
            if (handedBack) {
                handedBack = false;
                pollersActive = false;
            }
            if (pollersActive || !token.tryLock()) {
                long now = System.nanoTime();
                if (peerOps != peerOpsSeen) {
                    peerOpsSeen = peerOps;
                    lastPeerOp = now;
                }
                long max = now - lastPeerOp < SERVING_HOLD_NANOS ? SERVING_MAX_NAP_NANOS : MAX_NAP_NANOS;
                nap = Math.min(Math.max(2 * nap, MIN_NAP_NANOS), max);
                tokenParked = true;
                LockSupport.parkNanos(this, nap);
                tokenParked = false;
                continue;
            }
            nap = 0;
            int r;
            try {
                while ((r = readFrame()) == FRAME) {
                    framesByThread++;
                    if (pollerWants) {
                        break;
                    }
                }
            } finally {
                token.unlock();
            }
            if (r == FRAME) {
                continue; // a poller is waiting for the token: nap
            }
            if (r == HAND_BACK) {
                // end of stream at a frame boundary
                if (!peerClosed && !ep.closing && !ep.broken) {
                    ep.fail(new IOException("connection reset by peer " + ep.peerName()
                            + ": end of stream without CLOSE"));
                }
                return; // orderly: after the peer's CLOSE, or while we are closing
            }
            if (ep.broken) {
                throw new IOException("endpoint failed");
            }
            selector.select(IGNORE, SELECT_MS); // between frames, without the token: pollers may read meanwhile
        }
    }

    /**
     * Lets an application thread about to wait read and deliver frames itself, waiting for them in the kernel (its own
     * selector) for up to {@code maxNanos}, so that the kernel wakes the thread that wants the data, as with a plain
     * blocking socket. While the reader thread holds the token, the poller waits for it (the reader thread lets go
     * after its frame); while another poller holds it, the caller waits on its condition (that poller delivers). It
     * reads until {@code done}: frames that do not concern the caller (a READ request it serves, say) do not end its
     * wait, which would leave the frame it waits for to the napping reader thread. Also stops on {@link #wakePoller}
     * and after {@code maxNanos}. Returns true when it delivered any frame.
     */
    boolean poll(long maxNanos, BooleanSupplier done) {
        if (thread == null) {
            return false;
        }
        long deadline = System.nanoTime() + maxNanos;
        polls++; // racy increments are fine: the reader thread only looks for a change
        if (!token.tryLock()) {
            if (polling) {
                return false; // another waiting thread reads and delivers: wait on the condition instead
            }
            pollerWants = true;
            try {
                if (!token.tryLock(maxNanos, TimeUnit.NANOSECONDS)) {
                    return false;
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
        pollerWants = false;
        int delivered = 0;
        boolean handBack = false;
        try {
            polling = true;
            while (!ep.broken && !done.getAsBoolean()) {
                int r = readFrame();
                if (r == FRAME) {
                    delivered++;
                    framesByPollers++;
                    continue; // take whatever else has arrived too
                }
                handBack = r == HAND_BACK;
                long left = deadline - System.nanoTime();
                if (handBack || left <= 0 || !awaitData(left, done)) {
                    break;
                }
            }
        } catch (IOException e) {
            ep.transportFailed(e);
        } catch (RuntimeException | Error t) {
            internalError(t);
            throw t;
        } finally {
            polling = false;
            token.unlock();
            // A poller whose event came (in its own frames, from the reader thread while it queued for the token,
            // or as a completion of its own posts) keeps the socket: its thread is about to come back (a streaming
            // writer, each time its credits run out), and handing back would put the reader thread in the selector,
            // woken by every frame. Only a poller that waited in vain must hand back.
            if (handBack || !done.getAsBoolean()) {
                handedBack = true; // nobody reads now: the reader thread must not sleep on
                if (tokenParked) {
                    LockSupport.unpark(thread);
                }
            }
        }
        return delivered > 0;
    }

    /**
     * Poller (holding the token): waits for readable data; false when woken for another reason. For the busy-poll
     * window it only looks (SO_BUSY_POLL's idea): a reply due within microseconds then costs neither thread a sleep and
     * a wake-up, which on a virtual machine whose idle vCPU halts takes tens of microseconds.
     */
    private boolean awaitData(long nanos, BooleanSupplier done) throws IOException {
        Selector s = pollSelector;
        if (s == null) {
            s = Selector.open();
            channel.register(s, SelectionKey.OP_READ);
            pollSelector = s;
        }
        pollerWoken = false;
        pollerBlocked = true;
        try {
            if (pollerWoken || Thread.currentThread().isInterrupted()) {
                return false;
            }
            long start = System.nanoTime();
            if (busyPoll(s, start + Math.min(nanos, busyWindow.nanos()), done)) {
                busyPollHits++;
            } else {
                kernelWaits++;
                int ready = s.select(IGNORE, Math.max(1, TimeUnit.NANOSECONDS.toMillis(nanos)));
                busyWindow.waited(ready > 0 && !pollerWoken, System.nanoTime() - start);
            }
        } finally {
            pollerBlocked = false;
        }
        return !pollerWoken && !Thread.currentThread().isInterrupted();
    }

    /** True when data came, the caller's event came from elsewhere, or the poller was woken before {@code until}. */
    private boolean busyPoll(Selector s, long until, BooleanSupplier done) throws IOException {
        long now = System.nanoTime();
        long nextYield = Spin.firstYield(now);
        while (now < until) {
            if (s.selectNow(IGNORE) > 0 || pollerWoken || done.getAsBoolean()) {
                return true;
            }
            nextYield = Spin.pause(now, nextYield);
            now = System.nanoTime();
        }
        return false;
    }

    /** Ends a poller's wait early: the state its caller waits on may have changed without any frame arriving. */
    void wakePoller() {
        if (pollerBlocked) {
            pollerWoken = true;
            Selector s = pollSelector;
            if (s != null) {
                s.wakeup();
            }
        }
    }

    /** Reads and handles one frame: FRAME, NONE (nothing to read) or HAND_BACK (see there). Holds the token. */
    private int readFrame() throws IOException {
        if (!headerPending) {
            header.clear();
            int n = channel.read(header);
            if (n == 0) {
                return NONE;
            }
            if (n < 0) {
                return HAND_BACK;
            }
            while (header.hasRemaining()) {
                if (read(header) < 0) {
                    throw new EOFException("end of stream inside a frame header");
                }
            }
            headerPending = true;
        }
        int magic = header.get(Wire.OFF_MAGIC);
        int type = header.get(Wire.OFF_TYPE);
        int status = header.get(Wire.OFF_STATUS) & 0xFF;
        int reserved = header.get(Wire.OFF_RESERVED);
        int length = header.getInt(Wire.OFF_LENGTH);
        int reqId = header.getInt(Wire.OFF_REQ_ID);
        int rkey = header.getInt(Wire.OFF_RKEY);
        long address = header.getLong(Wire.OFF_ADDRESS);
        if (magic != Wire.FRAME_MAGIC || reserved != 0) {
            throw violation(String.format("bad frame header (magic 0x%02x, reserved 0x%02x)", magic & 0xFF,
                    reserved & 0xFF));
        }
        if (length < 0) {
            throw violation(Wire.typeName(type) + " frame with negative length " + length);
        }
        if (peerClosed) {
            throw violation(Wire.typeName(type) + " frame after CLOSE");
        }
        if (status != 0 && type != Wire.READ_RESP && type != Wire.WRITE_RESP) {
            throw violation(Wire.typeName(type) + " frame with status " + status);
        }
        switch (type) {
            case Wire.SEND -> {
                if (!onSend(length)) {
                    return HAND_BACK;
                }
            }
            case Wire.READ_REQ -> onReadRequest(length, reqId, rkey, address);
            case Wire.READ_RESP -> onResponse(Wire.READ_REQ, status, length, reqId);
            case Wire.WRITE -> onWrite(length, reqId, rkey, address);
            case Wire.WRITE_RESP -> onResponse(Wire.WRITE, status, length, reqId);
            case Wire.CLOSE -> onClose(length);
            default -> throw violation("unknown frame type " + (type & 0xFF));
        }
        headerPending = false;
        return FRAME;
    }

    /** False when a poller found no posted receive: the reader thread waits for one. */
    private boolean onSend(int length) throws IOException {
        if (length > ep.options.maxMessageSize()) {
            throw violation("SEND of " + length + " bytes exceeds the announced maxMessageSize "
                    + ep.options.maxMessageSize());
        }
        if (polling && ep.recvQ.isEmpty()) {
            return false;
        }
        Work recv = awaitRecv();
        if (recv == null) {
            skip(length); // closing locally and no receive posted: nobody will consume it
            return true;
        }
        long wrId = recv.wrId;
        int posted = recv.length;
        if (length > posted) {
            popRecv();
            ep.complete(Opcode.RECV, wrId, 0, WcStatus.LOC_LEN_ERR);
            throw ep.fault(new FabricException(WcStatus.LOC_LEN_ERR, "incoming SEND of " + length
                    + " bytes from " + ep.peerName() + " exceeds the posted receive of " + posted + " bytes"));
        }
        // Only the token holder removes receives, so the head entry stays ours while its payload is read.
        readFully(recv.region.readerView(recv.offset, length));
        popRecv();
        ep.complete(Opcode.RECV, wrId, length, WcStatus.SUCCESS);
        return true;
    }

    /**
     * The oldest posted receive, waiting for one when none is posted (infinite receiver-not-ready retry: the message
     * is held, not dropped). Returns null when an orderly close is under way and no receive is posted.
     */
    private Work awaitRecv() throws IOException {
        for (int spins = 0; ; spins++) {
            if (!ep.recvQ.isEmpty()) {
                synchronized (ep.lock) {
                    if (!ep.recvQ.isEmpty()) {
                        waiting = false;
                        return ep.recvQ.peek(0);
                    }
                }
            }
            if (ep.broken) {
                throw new IOException("endpoint failed while waiting for a receive");
            }
            if (ep.closing) {
                waiting = false;
                return null;
            }
            if (spins < SPINS) {
                Thread.onSpinWait();
            } else if (!waiting) {
                waiting = true; // publish, then re-check the queue once more before parking
            } else {
                LockSupport.parkNanos(this, PARK_NANOS);
            }
        }
    }

    private void popRecv() {
        synchronized (ep.lock) {
            ep.recvQ.advance(1);
        }
    }

    private void onReadRequest(int length, int reqId, int rkey, long address) {
        peerOps++; // single writer: the token holder
        Region r = ep.regions().remote(address, rkey, length);
        if (r == null) {
            log.debug("rejecting READ of {} bytes at 0x{} rkey 0x{} from {}", length, Long.toHexString(address),
                    Integer.toHexString(rkey), ep.peerName());
            ep.respond(Wire.READ_RESP, WcStatus.REM_ACCESS_ERR, reqId, null, 0, 0);
        } else {
            // The writer sends the payload straight from the region.
            ep.respond(Wire.READ_RESP, WcStatus.SUCCESS, reqId, r, (int) address, length);
        }
    }

    private void onWrite(int length, int reqId, int rkey, long address) throws IOException {
        peerOps++;
        Region r = ep.regions().remote(address, rkey, length);
        if (r == null || r.readOnly()) {
            log.debug("rejecting WRITE of {} bytes at 0x{} rkey 0x{} from {}", length, Long.toHexString(address),
                    Integer.toHexString(rkey), ep.peerName());
            skip(length); // keep the stream in sync without touching any region
            ep.respond(Wire.WRITE_RESP, WcStatus.REM_ACCESS_ERR, reqId, null, 0, 0);
        } else {
            readFully(r.readerView((int) address, length));
            ep.respond(Wire.WRITE_RESP, WcStatus.SUCCESS, reqId, null, 0, 0);
        }
    }

    /**
     * READ_RESP or WRITE_RESP. The peer answers in request order (one reader, one writer queue), so the response must
     * match the oldest pending one-sided op; anything else is a protocol violation.
     */
    private void onResponse(byte requestType, int status, int length, int reqId) throws IOException {
        String what = requestType == Wire.READ_REQ ? "READ_RESP" : "WRITE_RESP";
        Work op;
        synchronized (ep.lock) {
            op = ep.oneSidedQ.isEmpty() ? null : ep.oneSidedQ.peek(0);
        }
        if (op == null || op.type != requestType || op.reqId != reqId) {
            throw violation(what + " for unknown reqId " + reqId);
        }
        int expected = requestType == Wire.READ_REQ && status == WcStatus.SUCCESS ? op.length : 0;
        if (length != expected) {
            throw violation(what + " for reqId " + reqId + " carries " + length + " bytes, expected " + expected);
        }
        if (expected > 0) {
            readFully(op.region.readerView(op.offset, length));
        }
        long wrId = op.wrId;
        int opLength = op.length;
        long remoteAddress = op.remoteAddress;
        int rkey = op.rkey;
        synchronized (ep.lock) {
            ep.oneSidedQ.advance(1);
        }
        int opcode = requestType == Wire.READ_REQ ? Opcode.READ : Opcode.WRITE;
        ep.complete(opcode, wrId, status == WcStatus.SUCCESS ? opLength : 0, status);
        if (status != WcStatus.SUCCESS) {
            // As with verbs, a failed one-sided op moves the queue pair to the error state.
            throw ep.fault(new FabricException(status, "remote " + Opcode.name(opcode) + " of " + opLength
                    + " bytes at 0x" + Long.toHexString(remoteAddress) + " rkey 0x" + Integer.toHexString(rkey)
                    + " on " + ep.peerName() + " failed with " + WcStatus.name(status) + "; connection broken"));
        }
    }

    private void onClose(int length) throws IOException {
        if (length != 0) {
            throw violation("CLOSE frame with length " + length);
        }
        peerClosed = true; // only the end of stream may follow
        ep.initiateClose();
    }

    private void readFully(ByteBuffer dst) throws IOException {
        while (dst.hasRemaining()) {
            if (read(dst) < 0) {
                throw new EOFException("end of stream inside a frame payload");
            }
        }
    }

    /**
     * Reads at least one byte of the frame in progress into {@code dst} (which has room); -1 at end of stream. The
     * reader thread waits in its selector, a poller in its own (holding the token: nobody else reads mid-frame).
     */
    private int read(ByteBuffer dst) throws IOException {
        int n;
        while ((n = channel.read(dst)) == 0) {
            if (ep.broken) {
                throw new IOException("endpoint failed while reading");
            }
            if (polling) {
                // the rest of the frame is on its way: worth the busy poll as well
                awaitData(TimeUnit.MILLISECONDS.toNanos(SELECT_MS), NEVER);
                if (Thread.currentThread().isInterrupted()) {
                    Thread.onSpinWait(); // the selector returns at once for an interrupted thread
                }
            } else {
                selector.select(IGNORE, SELECT_MS);
            }
        }
        return n;
    }

    /** Closes a provider thread's selector (null: never opened). */
    static void close(Selector s) {
        if (s == null) {
            return;
        }
        try {
            s.close();
        } catch (IOException e) {
            log.debug("closing a selector of the tcp fabric: {}", e.toString());
        }
    }

    private void skip(int length) throws IOException {
        if (discard == null) {
            discard = ByteBuffer.allocateDirect(DISCARD_LEN);
        }
        int left = length;
        while (left > 0) {
            discard.clear().limit(Math.min(left, DISCARD_LEN));
            readFully(discard);
            left -= discard.limit();
        }
    }

    private void internalError(Throwable t) {
        log.error("tcp fabric reader from {} failed", ep.peerName(), t);
        ep.fail(new IOException("internal error in the tcp fabric reader: " + t, t));
    }

    private FabricException violation(String what) {
        return ep.fault(new FabricException(WcStatus.TRANSPORT_ERR, "tcp fabric protocol violation from "
                + ep.peerName() + ": " + what));
    }
}
