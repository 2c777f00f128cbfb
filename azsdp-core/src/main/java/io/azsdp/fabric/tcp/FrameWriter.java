package io.azsdp.fabric.tcp;

import io.azsdp.fabric.Opcode;
import io.azsdp.fabric.WcStatus;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.util.concurrent.locks.LockSupport;

/**
 * The writer thread: the only thread that writes to the socket, so posts never block and the reader never blocks on a
 * write (two readers blocked writing READ_RESPs to each other would deadlock). It takes a batch of queued frames and
 * writes headers and payloads with one gathering write, straight from registered memory. Entries stay in the queue
 * while being written, so a failure mid-batch flushes them like any other unwritten work.
 */
final class FrameWriter implements Runnable {
    private static final Logger log = LoggerFactory.getLogger(FrameWriter.class);

    /** Frames per gathering write. */
    static final int MAX_BATCH = 16;
    /** A batch stops growing past this many payload bytes, so SEND completions (credits) are not held back long. */
    private static final int MAX_BATCH_BYTES = 256 * 1024;
    private static final int SPINS = 200;
    private static final long PARK_NANOS = 100_000_000L;

    private final TcpEndpoint ep;
    private final SocketChannel channel;
    private final Work[] batch = new Work[MAX_BATCH];
    private final ByteBuffer[] headers = new ByteBuffer[MAX_BATCH];
    private final ByteBuffer[] iov = new ByteBuffer[2 * MAX_BATCH];
    private final long[] sentWrIds = new long[MAX_BATCH];
    private final int[] sentLengths = new int[MAX_BATCH];
    /** Set while the writer may park; posters unpark it only then. */
    volatile boolean waiting;

    FrameWriter(TcpEndpoint ep) {
        this.ep = ep;
        this.channel = ep.channel;
        ByteBuffer all = ByteBuffer.allocateDirect(MAX_BATCH * Wire.HEADER_LEN);
        for (int i = 0; i < MAX_BATCH; i++) {
            headers[i] = all.slice(i * Wire.HEADER_LEN, Wire.HEADER_LEN);
        }
    }

    @Override
    public void run() {
        try {
            loop();
        } catch (IOException e) {
            ep.transportFailed(e);
        } catch (Throwable t) {
            log.error("tcp fabric writer to {} failed", ep.peerName(), t);
            ep.fail(new IOException("internal error in the tcp fabric writer: " + t, t));
            if (t instanceof Error) {
                throw (Error) t;
            }
        } finally {
            ep.writerStopped();
        }
    }

    private void loop() throws IOException {
        int idle = 0;
        while (!ep.broken) {
            int n = takeBatch();
            if (n == 0) {
                idle = idle(idle);
                continue;
            }
            idle = 0;
            waiting = false;
            if (writeBatch(n)) {
                // CLOSE is always the last frame: tell the peer no more data follows, then stop.
                channel.shutdownOutput();
                ep.outputDone = true;
                return;
            }
        }
    }

    /** Spin briefly, then publish {@link #waiting}, re-check once, then park (posts unpark). */
    private int idle(int idle) {
        if (idle < SPINS) {
            Thread.onSpinWait();
            return idle + 1;
        }
        if (!waiting) {
            waiting = true; // the next takeBatch() re-checks the queue before we park
            return idle;
        }
        LockSupport.parkNanos(this, PARK_NANOS);
        return idle;
    }

    private int takeBatch() {
        if (ep.sendQ.isEmpty()) {
            return 0;
        }
        synchronized (ep.lock) {
            WorkRing q = ep.sendQ;
            int size = Math.min(q.size(), MAX_BATCH);
            long bytes = 0;
            int n = 0;
            while (n < size && bytes < MAX_BATCH_BYTES) {
                Work w = q.peek(n);
                batch[n++] = w;
                bytes += w.region != null ? w.length : 0;
            }
            return n;
        }
    }

    /** Writes batch[0..n); returns true when it ended with CLOSE. */
    private boolean writeBatch(int n) throws IOException {
        int count = 0;
        int sent = 0;
        boolean close = false;
        for (int i = 0; i < n; i++) {
            Work w = batch[i];
            ByteBuffer h = headers[i];
            ByteBuffer payload = null;
            switch (w.type) {
                case Wire.SEND -> {
                    Wire.encode(h, Wire.SEND, 0, w.length, 0, 0, 0);
                    payload = w.region.writerView(i, w.offset, w.length);
                    sentWrIds[sent] = w.wrId;
                    sentLengths[sent++] = w.length;
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
                    close = true;
                }
                default -> throw new IllegalStateException("bad queued frame type " + w.type);
            }
            iov[count++] = h;
            if (payload != null && payload.hasRemaining()) {
                iov[count++] = payload;
            }
        }
        writeFully(count);
        synchronized (ep.lock) {
            ep.sendQ.advance(n); // before completing: a handler that aborts must not see these flushed again
        }
        for (int i = 0; i < sent; i++) {
            ep.complete(Opcode.SEND, sentWrIds[i], sentLengths[i], WcStatus.SUCCESS);
        }
        return close;
    }

    private void writeFully(int count) throws IOException {
        int first = 0;
        while (first < count) {
            channel.write(iov, first, count - first);
            while (first < count && !iov[first].hasRemaining()) {
                first++;
            }
        }
        for (int i = 0; i < count; i++) {
            iov[i] = null;
        }
    }
}
