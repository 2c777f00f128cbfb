package io.azsdp.fabric.tcp;

import io.azsdp.fabric.Opcode;
import io.azsdp.fabric.WcStatus;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.LockSupport;

/**
 * Writes queued frames — posted SEND/READ_REQ/WRITE and the responses the reader owes the peer — with gathering
 * writes straight from registered memory. Whoever holds the writer role writes, so the thread that posts a frame
 * usually writes it itself ({@link #drain}): no hand-off to another thread, no wake-up, on the common path. The socket
 * is non-blocking, so a poster (possibly holding its connection's lock, or the reader thread) never blocks on a full
 * socket, which could deadlock two peers that each wait for the other to read; when the socket is full the poster
 * leaves the rest of the batch to the writer thread, which waits for the socket to drain.
 *
 * <p>Entries stay in the queue while being written, so a failure mid-batch flushes them like any other unwritten
 * work. SENDs complete in the order written, by whoever holds the role.
 */
final class FrameWriter implements Runnable {
    private static final Logger log = LoggerFactory.getLogger(FrameWriter.class);

    /** Frames per gathering write. */
    static final int MAX_BATCH = 16;
    /** A batch stops growing past this many payload bytes, so SEND completions (credits) are not held back long. */
    private static final int MAX_BATCH_BYTES = 256 * 1024;
    private static final long PARK_NANOS = 100_000_000L;
    private static final long SELECT_MS = 100;

    private final TcpEndpoint ep;
    private final SocketChannel channel;
    /** Opened by the writer thread, which alone selects on it (OP_WRITE); null before. */
    private volatile Selector selector;
    /** The writer role: only its holder touches the batch state below and writes to the socket. */
    private final AtomicBoolean role = new AtomicBoolean();

    // ---- owned by the role holder
    private final Work[] batch = new Work[MAX_BATCH];
    private final ByteBuffer[] headers = new ByteBuffer[MAX_BATCH];
    /** A header and up to two payload parts (a gathered SEND) per frame. */
    private final ByteBuffer[] iov = new ByteBuffer[3 * MAX_BATCH];
    private final long[] sentWrIds = new long[MAX_BATCH];
    private final int[] sentLengths = new int[MAX_BATCH];
    /** Frames of the batch being written; 0 when none. */
    private int batchSize;
    private int iovFirst;
    private int iovCount;
    private int sentCount;
    private boolean batchCloses;

    /** A poster left bytes unwritten (socket full): the writer thread must finish them. */
    private volatile boolean stalled;
    /** Set while the writer thread may park; wake-ups unpark it only then. */
    private volatile boolean waiting;
    private volatile Thread thread;

    FrameWriter(TcpEndpoint ep) {
        this.ep = ep;
        this.channel = ep.channel;
        ByteBuffer all = ByteBuffer.allocateDirect(MAX_BATCH * Wire.HEADER_LEN);
        for (int i = 0; i < MAX_BATCH; i++) {
            headers[i] = all.slice(i * Wire.HEADER_LEN, Wire.HEADER_LEN);
        }
    }

    /**
     * Writes what is queued from the calling thread without blocking. When another thread holds the role it returns
     * at once: the holder re-checks the queue before it lets go, so the frame is not stranded.
     */
    void drain() {
        while (role.compareAndSet(false, true)) {
            boolean full = false;
            try {
                full = !writeQueued(false);
            } catch (IOException e) {
                ep.transportFailed(e); // the writer thread flushes what is left
                return;
            } catch (RuntimeException | Error t) {
                internalError(t);
                throw t;
            } finally {
                role.set(false);
            }
            if (full) {
                handOff();
                return;
            }
            if (!ep.hasQueuedFrames()) {
                return;
            }
        }
    }

    /** Gives the writer thread the queue (frames posted before start, or a full socket). */
    void handOff() {
        stalled = true;
        wake();
    }

    /** Wakes the writer thread (socket full, start, close, failure). */
    void wake() {
        if (waiting) {
            LockSupport.unpark(thread);
        }
        Selector s = selector;
        if (s != null) {
            s.wakeup();
        }
    }

    @Override
    public void run() {
        thread = Thread.currentThread();
        try {
            selector = Selector.open();
            channel.register(selector, SelectionKey.OP_WRITE);
            loop();
        } catch (IOException e) {
            ep.transportFailed(e);
        } catch (Throwable t) {
            internalError(t);
            if (t instanceof Error) {
                throw (Error) t;
            }
        } finally {
            // Take the role for good: no poster may write while the queue is flushed, nor after.
            while (!role.compareAndSet(false, true)) {
                LockSupport.parkNanos(this, 1_000_000L);
            }
            FrameReader.close(selector);
            ep.writerStopped();
        }
    }

    private void loop() throws IOException {
        while (!ep.broken && !ep.outputDone) {
            if (!stalled) {
                idle();
                continue;
            }
            stalled = false;
            // A poster that holds the role now either finishes the batch or hands it back (stalled again).
            while (!ep.outputDone && role.compareAndSet(false, true)) {
                try {
                    writeQueued(true);
                } finally {
                    role.set(false);
                }
                if (!ep.hasQueuedFrames()) {
                    break;
                }
            }
        }
    }

    /** Publish {@link #waiting}, re-check once, then park (wake-ups unpark). */
    private void idle() {
        if (!waiting) {
            waiting = true;
            return;
        }
        LockSupport.parkNanos(this, PARK_NANOS);
        waiting = false;
    }

    /**
     * Writes batches until the queue is empty (true) or, when not blocking, the socket is full (false); a partial
     * batch stays for the next role holder.
     */
    private boolean writeQueued(boolean blocking) throws IOException {
        while (!ep.outputDone) {
            if (batchSize == 0 && !takeBatch()) {
                return true;
            }
            if (!writeIov(blocking)) {
                return false;
            }
            finishBatch();
        }
        return true;
    }

    /** Takes up to MAX_BATCH queued frames and builds the gathering write; false when the queue is empty. */
    private boolean takeBatch() {
        if (ep.sendQ.isEmpty()) {
            return false;
        }
        int n = 0;
        synchronized (ep.lock) {
            WorkRing q = ep.sendQ;
            int size = Math.min(q.size(), MAX_BATCH);
            long bytes = 0;
            while (n < size && bytes < MAX_BATCH_BYTES) {
                Work w = q.peek(n);
                batch[n++] = w;
                bytes += w.region != null ? w.length : 0;
            }
        }
        if (n == 0) {
            return false;
        }
        int count = 0;
        sentCount = 0;
        batchCloses = false;
        for (int i = 0; i < n; i++) {
            Work w = batch[i];
            ByteBuffer h = headers[i];
            ByteBuffer payload = null;
            ByteBuffer body = null;
            switch (w.type) {
                case Wire.SEND -> {
                    Wire.encode(h, Wire.SEND, 0, w.length, 0, 0, 0);
                    payload = w.region.writerView(i, w.offset, w.length - w.bodyLength);
                    if (w.body != null) {
                        body = w.body.writerView(MAX_BATCH + i, w.bodyOffset, w.bodyLength);
                    }
                    sentWrIds[sentCount] = w.wrId;
                    sentLengths[sentCount++] = w.length;
                }
                case Wire.READ_REQ -> Wire.encode(h, Wire.READ_REQ, 0, w.length, w.reqId, w.rkey, w.remoteAddress);
                case Wire.WRITE -> {
                    Wire.encode(h, Wire.WRITE, 0, w.length, w.reqId, w.rkey, w.remoteAddress);
                    payload = w.region.writerView(i, w.offset, w.length);
                }
                case Wire.READ_RESP -> {
                    // Re-checked here: the region may have been deregistered since the reader validated the request.
                    boolean ok = w.status == WcStatus.SUCCESS && ep.regions().isRegistered(w.region);
                    Wire.encode(h, Wire.READ_RESP, ok ? WcStatus.SUCCESS : WcStatus.REM_ACCESS_ERR, ok ? w.length : 0,
                            w.reqId, 0, 0);
                    payload = ok ? w.region.writerView(i, w.offset, w.length) : null;
                }
                case Wire.WRITE_RESP -> Wire.encode(h, Wire.WRITE_RESP, w.status, 0, w.reqId, 0, 0);
                case Wire.CLOSE -> {
                    Wire.encode(h, Wire.CLOSE, 0, 0, 0, 0, 0);
                    batchCloses = true;
                }
                default -> throw new IllegalStateException("bad queued frame type " + w.type);
            }
            iov[count++] = h;
            if (payload != null && payload.hasRemaining()) {
                iov[count++] = payload;
            }
            if (body != null && body.hasRemaining()) {
                iov[count++] = body;
            }
        }
        batchSize = n;
        iovFirst = 0;
        iovCount = count;
        return true;
    }

    /** Writes the rest of the batch; false when not blocking and the socket took less than all of it. */
    private boolean writeIov(boolean blocking) throws IOException {
        while (iovFirst < iovCount) {
            long written = channel.write(iov, iovFirst, iovCount - iovFirst);
            while (iovFirst < iovCount && !iov[iovFirst].hasRemaining()) {
                iovFirst++;
            }
            if (written == 0 && iovFirst < iovCount) {
                if (!blocking) {
                    return false;
                }
                awaitWritable();
            }
        }
        return true;
    }

    private void awaitWritable() throws IOException {
        if (ep.broken) {
            throw new IOException("endpoint failed while writing");
        }
        selector.select(SELECT_MS);
        selector.selectedKeys().clear();
    }

    /** The batch is on the wire: release its entries, then complete its SENDs; CLOSE ends the output. */
    private void finishBatch() throws IOException {
        for (int i = 0; i < iovCount; i++) {
            iov[i] = null;
        }
        synchronized (ep.lock) {
            ep.sendQ.advance(batchSize); // before completing: a handler that aborts must not see these flushed again
        }
        batchSize = 0;
        for (int i = 0; i < sentCount; i++) {
            ep.complete(Opcode.SEND, sentWrIds[i], sentLengths[i], WcStatus.SUCCESS);
        }
        if (batchCloses) {
            // CLOSE is always the last frame: tell the peer no more data follows; the writer thread then stops.
            channel.shutdownOutput();
            ep.outputDone = true;
            wake();
        }
    }

    private void internalError(Throwable t) {
        log.error("tcp fabric writer to {} failed", ep.peerName(), t);
        ep.fail(new IOException("internal error in the tcp fabric writer: " + t, t));
    }

}
