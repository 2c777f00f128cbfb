package io.azsdp.fabric.tcp;

import io.azsdp.fabric.FabricException;
import io.azsdp.fabric.Opcode;
import io.azsdp.fabric.WcStatus;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.util.concurrent.locks.LockSupport;

/**
 * The reader thread: blocking reads of one frame header at a time, payloads straight into registered memory (posted
 * receive, READ destination, WRITE target) — never into a staging buffer, never outside a validated range. It never
 * writes to the socket: responses are queued for the {@link FrameWriter}.
 *
 * <p>Every malformed or unexpected frame is fatal: the stream cannot be resynchronised, so the endpoint is failed
 * with a {@link FabricException} naming the problem.
 */
final class FrameReader implements Runnable {
    private static final Logger log = LoggerFactory.getLogger(FrameReader.class);
    private static final int SPINS = 200;
    private static final long PARK_NANOS = 50_000_000L;
    private static final int DISCARD_LEN = 64 * 1024;

    private final TcpEndpoint ep;
    private final SocketChannel channel;
    private final ByteBuffer header = ByteBuffer.allocateDirect(Wire.HEADER_LEN);
    private ByteBuffer discard;
    private boolean peerClosed;
    /** Set while waiting for a receive to be posted (receiver not ready); postRecv unparks only then. */
    volatile boolean waiting;

    FrameReader(TcpEndpoint ep) {
        this.ep = ep;
        this.channel = ep.channel;
    }

    @Override
    public void run() {
        try {
            loop();
        } catch (IOException e) {
            ep.transportFailed(e); // no-op when a fault already failed the endpoint
        } catch (Throwable t) {
            log.error("tcp fabric reader from {} failed", ep.peerName(), t);
            ep.fail(new IOException("internal error in the tcp fabric reader: " + t, t));
            if (t instanceof Error) {
                throw (Error) t;
            }
        } finally {
            waiting = false;
            ep.readerStopped();
        }
    }

    private void loop() throws IOException {
        while (true) {
            if (!readHeader()) {
                if (!peerClosed && !ep.closing && !ep.broken) {
                    ep.fail(new IOException("connection reset by peer " + ep.peerName()
                            + ": end of stream without CLOSE"));
                }
                return; // orderly: after the peer's CLOSE, or while we are closing
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
                case Wire.SEND -> onSend(length);
                case Wire.READ_REQ -> onReadRequest(length, reqId, rkey, address);
                case Wire.READ_RESP -> onResponse(Wire.READ_REQ, status, length, reqId);
                case Wire.WRITE -> onWrite(length, reqId, rkey, address);
                case Wire.WRITE_RESP -> onResponse(Wire.WRITE, status, length, reqId);
                case Wire.CLOSE -> onClose(length);
                default -> throw violation("unknown frame type " + (type & 0xFF));
            }
        }
    }

    private void onSend(int length) throws IOException {
        if (length > ep.options.maxMessageSize()) {
            throw violation("SEND of " + length + " bytes exceeds the announced maxMessageSize "
                    + ep.options.maxMessageSize());
        }
        Work recv = awaitRecv();
        if (recv == null) {
            skip(length); // closing locally and no receive posted: nobody will consume it
            return;
        }
        long wrId = recv.wrId;
        int posted = recv.length;
        if (length > posted) {
            popRecv();
            ep.complete(Opcode.RECV, wrId, 0, WcStatus.LOC_LEN_ERR);
            throw ep.fault(new FabricException(WcStatus.LOC_LEN_ERR, "incoming SEND of " + length
                    + " bytes from " + ep.peerName() + " exceeds the posted receive of " + posted + " bytes"));
        }
        // Only this thread removes receives, so the head entry stays ours while its payload is read.
        readFully(recv.region.readerView(recv.offset, length));
        popRecv();
        ep.complete(Opcode.RECV, wrId, length, WcStatus.SUCCESS);
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

    /** Reads one header; false on end of stream at a frame boundary. */
    private boolean readHeader() throws IOException {
        header.clear();
        if (channel.read(header) < 0) {
            return false;
        }
        while (header.hasRemaining()) {
            if (channel.read(header) < 0) {
                throw new EOFException("end of stream inside a frame header");
            }
        }
        return true;
    }

    private void readFully(ByteBuffer dst) throws IOException {
        while (dst.hasRemaining()) {
            if (channel.read(dst) < 0) {
                throw new EOFException("end of stream inside a frame payload");
            }
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

    private FabricException violation(String what) {
        return ep.fault(new FabricException(WcStatus.TRANSPORT_ERR, "tcp fabric protocol violation from "
                + ep.peerName() + ": " + what));
    }
}
