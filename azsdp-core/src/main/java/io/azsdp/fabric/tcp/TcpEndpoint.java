package io.azsdp.fabric.tcp;

import io.azsdp.fabric.CompletionHandler;
import io.azsdp.fabric.Endpoint;
import io.azsdp.fabric.FabricException;
import io.azsdp.fabric.FabricOptions;
import io.azsdp.fabric.MemoryRegion;
import io.azsdp.fabric.Opcode;
import io.azsdp.fabric.WcStatus;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.util.Objects;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;

/**
 * An RC queue pair emulated over one TCP connection. Threads and ownership:
 * <ul>
 *   <li>{@link FrameWriter} drains {@link #sendQ} — posted SEND/READ_REQ/WRITE frames and the responses the reader
 *       owes the peer — from the posting thread when it can, and from its own thread when the socket is full; only
 *       the holder of its writer role writes and completes SENDs;</li>
 *   <li>{@link FrameReader} reads frames and is the only one to complete RECVs and one-sided ops ({@link #recvQ},
 *       {@link #oneSidedQ}): its own thread, or an application thread about to wait ({@link #poll});</li>
 *   <li>each thread, when it stops, flushes the queues it owns with FLUSH_ERR; the last one to stop closes the channel
 *       and calls {@code onDisconnect} — so every completion precedes the disconnect, and each happens once.</li>
 * </ul>
 * Queues are guarded by {@link #lock}, which is never held while calling the handler, so handlers may post from
 * completion callbacks. Failures go through {@link #fail}: first cause wins, the socket is reset, both threads wake.
 */
final class TcpEndpoint implements Endpoint {
    private static final Logger log = LoggerFactory.getLogger(TcpEndpoint.class);

    /** Lifecycle. Failure is orthogonal ({@link #broken}): it can strike in OPEN or CLOSING. */
    enum State {
        /** Handshake done, threads not started; posts are queued. */
        CONNECTED,
        /** Reader and writer running. */
        OPEN,
        /** Orderly close requested (locally or by the peer's CLOSE): CLOSE is queued behind earlier work. */
        CLOSING,
        /** onDisconnect has been (or, without a handler yet, will be) delivered. */
        CLOSED
    }

    final SocketChannel channel;
    final FabricOptions options;
    final int peerMaxMessageSize;
    private final RegionTable regionTable;
    private final InetSocketAddress localAddress;
    private final InetSocketAddress remoteAddress;
    private final String peerName;
    private final FrameReader reader;
    private final FrameWriter writer;

    final Object lock = new Object();
    // guarded by lock
    final WorkRing sendQ;
    final WorkRing recvQ;
    final WorkRing oneSidedQ;
    private boolean sendOpen = true;
    private boolean recvOpen = true;
    private boolean oneSidedOpen = true;
    private int nextReqId;
    private ScheduledFuture<?> closeDeadline;

    private volatile State state = State.CONNECTED;
    /** Posts only queue; the poster calls {@link #flush} (see {@link Endpoint#deferTransmission}). */
    private volatile boolean deferred;
    private volatile CompletionHandler handler;
    private volatile Thread readerThread;
    /** The transport was torn down abortively; {@link #cause} says why. */
    volatile boolean broken;
    /** An orderly close is under way: an EOF from the peer is then an acceptable end of stream. */
    volatile boolean closing;
    /** The writer has written CLOSE and shut down output. */
    volatile boolean outputDone;
    /** The orderly-close bound passed after our output was done; the channel was closed, not failed. */
    private volatile boolean closeTimedOut;
    private final AtomicReference<IOException> cause = new AtomicReference<>();
    private final AtomicInteger liveThreads = new AtomicInteger();
    private final AtomicBoolean disconnectDelivered = new AtomicBoolean();

    TcpEndpoint(SocketChannel channel, FabricOptions options, int peerMaxMessageSize) throws IOException {
        this.channel = channel;
        this.options = options;
        this.peerMaxMessageSize = peerMaxMessageSize;
        this.regionTable = new RegionTable(options.maxRegions(), 2 * FrameWriter.MAX_BATCH);
        this.localAddress = (InetSocketAddress) channel.getLocalAddress();
        this.remoteAddress = (InetSocketAddress) channel.getRemoteAddress();
        this.peerName = remoteAddress.getHostString() + ":" + remoteAddress.getPort();
        channel.configureBlocking(false); // posters write without blocking; the provider threads wait in selectors
        this.sendQ = new WorkRing(Math.max(64, 2 * options.maxPostedRecvs()));
        this.recvQ = new WorkRing(options.maxPostedRecvs());
        this.oneSidedQ = new WorkRing(64);
        this.reader = new FrameReader(this);
        this.writer = new FrameWriter(this);
    }

    RegionTable regions() {
        return regionTable;
    }

    String peerName() {
        return peerName;
    }

    /** For tests: frames read by the reader thread and by application threads polling (see FrameReader#poll). */
    long framesReadByReaderThread() {
        return reader.framesByThread;
    }

    long framesReadByPollers() {
        return reader.framesByPollers;
    }

    /** For tests: waits of polling threads that ended in the busy poll, and those that slept in the kernel. */
    long[] pollerWaits() {
        return new long[] {reader.busyPollHits, reader.kernelWaits};
    }

    // ---------------------------------------------------------------- Endpoint API

    @Override
    public String fabricName() {
        return TcpFabric.NAME;
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
        Objects.requireNonNull(handler, "handler");
        synchronized (lock) {
            if (this.handler != null) {
                throw new IllegalStateException("handler already set");
            }
            this.handler = handler;
        }
    }

    @Override
    public void start() {
        synchronized (lock) {
            if (handler == null) {
                throw new IllegalStateException("setHandler must be called before start");
            }
            if (state == State.CONNECTED) {
                startLocked();
                return;
            }
            if (state == State.OPEN) {
                throw new IllegalStateException("already started");
            }
        }
        // Closed (close() starts the threads itself) or aborted before start: the disconnect may have been waiting
        // for a handler.
        if (state == State.CLOSED) {
            deliverDisconnect();
        }
    }

    private void startLocked() {
        state = State.OPEN;
        liveThreads.set(2);
        readerThread = daemon(reader, "azsdp-tcp-rx-" + peerName);
        readerThread.start();
        daemon(writer, "azsdp-tcp-tx-" + peerName).start();
        writer.handOff(); // frames posted before start
    }

    private static Thread daemon(Runnable r, String name) {
        Thread t = new Thread(r, name);
        t.setDaemon(true);
        return t;
    }

    @Override
    public MemoryRegion register(ByteBuffer buffer) throws IOException {
        return register(buffer, true);
    }

    @Override
    public MemoryRegion registerLocal(ByteBuffer buffer) throws IOException {
        return register(buffer, false);
    }

    private MemoryRegion register(ByteBuffer buffer, boolean remote) throws IOException {
        Objects.requireNonNull(buffer, "buffer");
        if (!buffer.isDirect()) {
            throw new IllegalArgumentException("only direct buffers can be registered: " + buffer);
        }
        return regionTable.register(buffer, remote).handle;
    }

    @Override
    public void deregister(MemoryRegion region) {
        regionTable.deregister(region);
    }

    @Override
    public void postRecv(long wrId, MemoryRegion region, int offset, int length) throws IOException {
        Region r = regionTable.local(region);
        region.checkRange(offset, length);
        region.checkWritable();
        synchronized (lock) {
            if (!recvOpen || broken) {
                throw closedException();
            }
            Work w = recvQ.add();
            w.wrId = wrId;
            w.region = r;
            w.offset = offset;
            w.length = length;
        }
        if (reader.waiting) {
            LockSupport.unpark(readerThread);
        }
    }

    @Override
    public void postSend(long wrId, MemoryRegion region, int offset, int length) throws IOException {
        Region r = regionTable.local(region);
        region.checkRange(offset, length);
        send(wrId, r, offset, length, null, 0, 0);
    }

    /** The writer's gathering write takes the body straight from its region: no copy of it in user space. */
    @Override
    public void postSendGather(long wrId, MemoryRegion head, int headOffset, int headLength, MemoryRegion body,
                               int bodyOffset, int bodyLength) throws IOException {
        Region h = regionTable.local(head);
        Region b = regionTable.local(body);
        head.checkRange(headOffset, headLength);
        body.checkRange(bodyOffset, bodyLength);
        send(wrId, h, headOffset, headLength + bodyLength, b, bodyOffset, bodyLength);
    }

    private void send(long wrId, Region r, int offset, int length, Region body, int bodyOffset, int bodyLength)
            throws IOException {
        if (length > peerMaxMessageSize) {
            throw new FabricException(WcStatus.LOC_LEN_ERR, "SEND of " + length + " bytes exceeds the peer's maxMessageSize "
                    + peerMaxMessageSize);
        }
        synchronized (lock) {
            if (!sendOpen || broken) {
                throw closedException();
            }
            Work w = sendQ.add();
            w.type = Wire.SEND;
            w.wrId = wrId;
            w.region = r;
            w.offset = offset;
            w.length = length;
            w.body = body;
            w.bodyOffset = bodyOffset;
            w.bodyLength = bodyLength;
        }
        drainIfStarted();
    }

    @Override
    public void postRead(long wrId, MemoryRegion local, int offset, int length, long remoteAddress, int rkey)
            throws IOException {
        postOneSided(Wire.READ_REQ, wrId, local, offset, length, remoteAddress, rkey);
    }

    @Override
    public void postWrite(long wrId, MemoryRegion local, int offset, int length, long remoteAddress, int rkey)
            throws IOException {
        postOneSided(Wire.WRITE, wrId, local, offset, length, remoteAddress, rkey);
    }

    /** Queues the request frame and, atomically with it, the pending entry its response will complete. */
    private void postOneSided(byte type, long wrId, MemoryRegion local, int offset, int length, long remoteAddr,
                              int rkey) throws IOException {
        Region r = regionTable.local(local);
        local.checkRange(offset, length);
        if (type == Wire.READ_REQ) {
            local.checkWritable();
        }
        synchronized (lock) {
            if (!sendOpen || !oneSidedOpen || broken) {
                throw closedException();
            }
            int reqId = nextReqId++;
            Work frame = sendQ.add();
            frame.type = type;
            frame.reqId = reqId;
            frame.region = type == Wire.WRITE ? r : null;
            frame.offset = offset;
            frame.length = length;
            frame.remoteAddress = remoteAddr;
            frame.rkey = rkey;
            Work pending = oneSidedQ.add();
            pending.type = type;
            pending.wrId = wrId;
            pending.reqId = reqId;
            pending.region = r;
            pending.offset = offset;
            pending.length = length;
            pending.remoteAddress = remoteAddr;
            pending.rkey = rkey;
        }
        drainIfStarted();
    }

    /** Before start() frames wait in the queue: the handler that completes them may not be set yet. */
    private void drainIfStarted() {
        if (state != State.CONNECTED && !deferred) {
            writer.drain();
        }
    }

    @Override
    public void deferTransmission() {
        deferred = true;
    }

    /**
     * Called after every release of the engine's lock: with nothing queued it takes no lock and no CAS. Only the
     * caller's own posts must go out here (another poster flushes its own), and those are visible to it unlocked.
     */
    @Override
    public void flush() {
        if (state != State.CONNECTED && !sendQ.isEmpty()) {
            writer.drain();
        }
    }

    /**
     * A thread about to wait reads incoming frames itself, waiting for them in the kernel, while the reader thread is
     * between frames: the kernel then wakes the thread that wants the data, and nothing is handed over.
     */
    @Override
    public boolean poll(long maxNanos, BooleanSupplier done) {
        return reader.poll(maxNanos, done);
    }

    @Override
    public boolean canPoll() {
        return isOpen();
    }

    @Override
    public boolean pollBlocks() {
        return true;
    }

    @Override
    public void wakePoller() {
        reader.wakePoller();
    }

    /** None over TCP: asynchronous zero copy falls back to copying on this fabric. */
    @Override
    public long notifyWordAddress() {
        return 0;
    }

    @Override
    public void postNotify(int value) throws IOException {
        throw new FabricException(WcStatus.REM_OP_ERR, "the tcp fabric has no notify word");
    }

    @Override
    public int peerPid() {
        return 0;
    }

    @Override
    public boolean isOpen() {
        State s = state;
        return !broken && (s == State.CONNECTED || s == State.OPEN);
    }

    @Override
    public void close() {
        boolean teardownUnstarted = false;
        synchronized (lock) {
            if (state == State.CONNECTED) {
                if (handler == null) {
                    teardownUnstarted = true; // nobody to complete work for: nothing worth draining
                    markClosedLocked();
                } else {
                    startLocked(); // drain what was posted before start, as an orderly close promises
                }
            }
        }
        if (teardownUnstarted) {
            closeChannel();
            flushUnstarted();
        } else {
            initiateClose();
        }
    }

    @Override
    public void abort() {
        boolean unstarted;
        synchronized (lock) {
            unstarted = state == State.CONNECTED;
            if (unstarted) {
                markClosedLocked();
            }
        }
        fail(new IOException("aborted locally"));
        if (unstarted) {
            flushUnstarted();
        }
    }

    @Override
    public String toString() {
        return "TcpEndpoint[" + localAddress + " -> " + remoteAddress + ", " + state + (broken ? ", broken" : "") + "]";
    }

    // ---------------------------------------------------------------- used by the reader and the writer

    /** Starts an orderly close (local close(), or the peer's CLOSE): CLOSE goes out after everything posted so far. */
    void initiateClose() {
        synchronized (lock) {
            if (state != State.OPEN) {
                return;
            }
            state = State.CLOSING;
            closing = true;
            if (sendOpen) {
                sendQ.add().type = Wire.CLOSE;
                sendOpen = false; // nothing may follow CLOSE on the wire
            }
            closeDeadline = CloseTimer.schedule(this::closeDeadlinePassed, options.livenessTimeoutMs());
        }
        writer.drain();
        reader.wake(); // a reader waiting for a receive stops waiting once closing
    }

    /** The orderly close did not finish within livenessTimeoutMs. */
    private void closeDeadlinePassed() {
        if (state == State.CLOSED) {
            return;
        }
        if (!outputDone) {
            fail(new IOException("orderly close to " + peerName + " timed out after " + options.livenessTimeoutMs()
                    + " ms before all posted work was written"));
        } else {
            // Everything we owed was sent; the peer just did not finish its half in time.
            closeTimedOut = true;
            closeChannel();
            reader.wake();
        }
    }

    /** Records the first failure, resets the connection (SO_LINGER 0) and wakes both threads. */
    void fail(IOException failure) {
        if (cause.compareAndSet(null, failure)) {
            log.debug("tcp endpoint to {} failed: {}", peerName, failure.toString());
        }
        broken = true;
        try {
            channel.setOption(StandardSocketOptions.SO_LINGER, 0);
        } catch (IOException | RuntimeException ignored) {
            // already closed
        }
        closeChannel();
        reader.wake();
        writer.wake();
    }

    /** Like {@link #fail} and returns the exception, for {@code throw endpoint.fault(...)}. */
    <E extends IOException> E fault(E failure) {
        fail(failure);
        return failure;
    }

    /** An I/O error seen by the reader or writer: a failure unless we tore the transport down ourselves. */
    void transportFailed(IOException e) {
        if (!broken && !closeTimedOut) {
            fail(new IOException("connection reset by peer " + peerName + ": " + e, e));
        }
    }

    /** Whether frames wait to be written (read under the lock: the writer role's hand-over relies on it). */
    boolean hasQueuedFrames() {
        synchronized (lock) {
            return !sendQ.isEmpty();
        }
    }

    /** Delivers one completion; a throwing handler is logged and does not stop the provider threads. */
    void complete(int opcode, long wrId, int byteLen, int status) {
        try {
            handler.onCompletion(opcode, wrId, byteLen, status);
        } catch (RuntimeException e) {
            log.warn("completion handler threw on {} wrId={} status={}", Opcode.name(opcode), wrId,
                    WcStatus.name(status), e);
        }
    }

    /** Queues a response frame for the writer; false when nothing may be sent any more (closing or closed). */
    boolean respond(byte type, int status, int reqId, Region region, int offset, int length) {
        synchronized (lock) {
            if (!sendOpen) {
                return false;
            }
            Work w = sendQ.add();
            w.type = type;
            w.status = status;
            w.reqId = reqId;
            w.region = region;
            w.offset = offset;
            w.length = length;
        }
        writer.drain();
        return true;
    }

    /** Writer: called when it stops. Flushes the SENDs it did not write, then maybe finishes. */
    void writerStopped() {
        synchronized (lock) {
            sendOpen = false;
        }
        flushSends(); // no producer can touch sendQ any more
        threadStopped();
    }

    /** Reader: called when it stops. Flushes receives and one-sided ops, then maybe finishes. */
    void readerStopped() {
        synchronized (lock) {
            recvOpen = false;
            oneSidedOpen = false;
        }
        flushRecvs();
        flushOneSided();
        threadStopped();
    }

    private void threadStopped() {
        if (liveThreads.decrementAndGet() == 0) {
            closeChannel();
            synchronized (lock) {
                state = State.CLOSED;
                if (closeDeadline != null) {
                    closeDeadline.cancel(false);
                }
            }
            deliverDisconnect();
        }
    }

    // ---------------------------------------------------------------- helpers

    private void markClosedLocked() {
        state = State.CLOSED;
        sendOpen = false;
        recvOpen = false;
        oneSidedOpen = false;
    }

    /** Close or abort before start(): no provider thread exists, so flush inline. */
    private void flushUnstarted() {
        flushSends();
        flushRecvs();
        flushOneSided();
        deliverDisconnect();
    }

    private void flushSends() {
        CompletionHandler h = handler;
        for (int i = 0, n = sendQ.size(); i < n; i++) {
            Work w = sendQ.peek(i);
            if (w.type == Wire.SEND && h != null) {
                complete(Opcode.SEND, w.wrId, 0, WcStatus.FLUSH_ERR);
            }
        }
        sendQ.advance(sendQ.size());
    }

    private void flushRecvs() {
        CompletionHandler h = handler;
        for (int i = 0, n = recvQ.size(); i < n; i++) {
            if (h != null) {
                complete(Opcode.RECV, recvQ.peek(i).wrId, 0, WcStatus.FLUSH_ERR);
            }
        }
        recvQ.advance(recvQ.size());
    }

    private void flushOneSided() {
        CompletionHandler h = handler;
        for (int i = 0, n = oneSidedQ.size(); i < n; i++) {
            Work w = oneSidedQ.peek(i);
            if (h != null) {
                complete(w.type == Wire.READ_REQ ? Opcode.READ : Opcode.WRITE, w.wrId, 0, WcStatus.FLUSH_ERR);
            }
        }
        oneSidedQ.advance(oneSidedQ.size());
    }

    private void deliverDisconnect() {
        CompletionHandler h = handler;
        if (h != null && disconnectDelivered.compareAndSet(false, true)) {
            try {
                h.onDisconnect(cause.get());
            } catch (RuntimeException e) {
                log.warn("onDisconnect handler threw", e);
            }
        }
    }

    private void closeChannel() {
        try {
            channel.close();
        } catch (IOException e) {
            log.debug("closing channel to {}: {}", peerName, e.toString());
        }
    }

    private FabricException closedException() {
        IOException c = cause.get();
        return new FabricException(WcStatus.FLUSH_ERR, "tcp endpoint to " + peerName + " is "
                + (c != null ? "broken (" + c.getMessage() + ")" : "closed"));
    }
}
