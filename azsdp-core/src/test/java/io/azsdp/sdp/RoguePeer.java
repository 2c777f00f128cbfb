package io.azsdp.sdp;

import io.azsdp.fabric.Bootstrap;
import io.azsdp.fabric.CompletionHandler;
import io.azsdp.fabric.Endpoint;
import io.azsdp.fabric.FabricOptions;
import io.azsdp.fabric.Fabrics;
import io.azsdp.fabric.MemoryRegion;
import io.azsdp.fabric.Opcode;
import io.azsdp.fabric.WcStatus;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * A hand-driven SDP peer for malformed-input tests. It connects to a real AZ-SDP server exactly like a client (bootstrap
 * with a Hello as private data, HelloAck decoded), then drives the fabric {@link Endpoint} itself: its own registered
 * receive and send buffers, receives always reposted, and messages built byte by byte — well-formed ones by default
 * (next mseq, mseq_ack = last mseq received, bufs = receives posted), with any header field or the number of bytes put
 * on the wire overridable to make them malformed.
 *
 * <p>Everything the server sends is recorded ({@link #received()}), as is the endpoint's disconnect, so a test can
 * observe the connection being aborted (AbortConn and/or disconnect).
 */
final class RoguePeer implements CompletionHandler, AutoCloseable {
    static final int DEFAULT_BUFS = 16;
    static final int DEFAULT_RCV_SIZE = 4096;
    static final int DEFAULT_MAX_ADVERTS = 4;
    private static final int TX_SLOTS = 64;
    private static final int TX_SLOT_MAX = 8192;
    private static final int TIMEOUT_MS = 5000;

    /** One message received from the server, header decoded, whole message copied. */
    record Received(int mid, int bufs, int len, int mseq, int mseqAck, byte[] bytes) {
        /** The u32 right after the BSDH (RdmaRdCompl length), or -1 when absent. */
        int firstArg() {
            return bytes.length >= Bsdh.SIZE + 4 ? ByteBuffer.wrap(bytes).getInt(Bsdh.SIZE) : -1;
        }

        @Override
        public String toString() {
            return Bsdh.midName(mid) + "[len=" + len + " (" + bytes.length + " received), mseq=" + mseq + ", ack="
                    + mseqAck + ", bufs=" + bufs + (mid == Bsdh.MID_RDMA_RD_COMPL ? ", n=" + firstArg() : "") + "]";
        }
    }

    /** A message to send; unset fields get their well-formed value when sent. */
    static final class Msg {
        final int mid;
        byte[] payload = new byte[0];
        Integer len;
        Integer mseq;
        Integer ack;
        Integer bufs;
        Integer wireBytes;

        Msg(int mid) {
            this.mid = mid;
        }

        Msg payload(byte[] p) {
            payload = p;
            return this;
        }

        /** The BSDH len field (default: bytes on the wire). */
        Msg len(int v) {
            len = v;
            return this;
        }

        Msg mseq(int v) {
            mseq = v;
            return this;
        }

        Msg ack(int v) {
            ack = v;
            return this;
        }

        Msg bufs(int v) {
            bufs = v;
            return this;
        }

        /** Puts only the first {@code n} bytes of the encoded message on the wire (n may be below the BSDH size). */
        Msg wireBytes(int n) {
            wireBytes = n;
            return this;
        }
    }

    final String fabric;
    final Endpoint ep;
    final Hello local;
    final Hello server;

    private final int rcvSize;
    private final ByteBuffer rxPool;
    private final MemoryRegion rxMr;
    private final ByteBuffer txPool;
    private final MemoryRegion txMr;
    private final int txSlotSize;
    private final BlockingQueue<Integer> txFree = new ArrayBlockingQueue<>(TX_SLOTS);

    // Guarded by this.
    private final List<Received> received = new ArrayList<>();
    private final List<String> workErrors = new ArrayList<>();
    private int posted;
    private int txMseq;
    private int rxMseq;
    private int serverBufs;
    private int serverAck;
    private Integer bufsOverride;
    private boolean disconnected;
    private IOException disconnectCause;
    private boolean closed;

    private RoguePeer(String fabric, Endpoint ep, Hello local, FabricOptions options, Hello server)
            throws IOException {
        this.fabric = fabric;
        this.ep = ep;
        this.local = local;
        this.server = server;
        // The receives really posted follow the fabric options, whatever the Hello claimed.
        this.rcvSize = options.maxMessageSize();
        this.serverBufs = server.bufs();
        this.txSlotSize = Math.min(server.rcvSize(), TX_SLOT_MAX);
        rxPool = ByteBuffer.allocateDirect(rcvSize * options.maxPostedRecvs());
        rxMr = ep.register(rxPool);
        txPool = ByteBuffer.allocateDirect(txSlotSize * TX_SLOTS);
        txMr = ep.register(txPool);
        for (int i = 0; i < TX_SLOTS; i++) {
            txFree.add(i);
        }
        ep.setHandler(this);
        for (int i = 0; i < options.maxPostedRecvs(); i++) {
            ep.postRecv(i, rxMr, i * rcvSize, rcvSize);
            posted++;
        }
        ep.start();
    }

    /** Connects like an AZ-SDP client with the default Hello. */
    static RoguePeer connect(String fabric, InetSocketAddress server) throws IOException {
        return connect(fabric, server, new Hello(DEFAULT_BUFS, DEFAULT_MAX_ADVERTS, DEFAULT_RCV_SIZE));
    }

    static RoguePeer connect(String fabric, InetSocketAddress server, Hello hello) throws IOException {
        return connect(fabric, server, hello, new FabricOptions(hello.rcvSize(), hello.bufs(), 32, TIMEOUT_MS, 2000));
    }

    /**
     * Connects with {@code hello} as the SDP private data but the fabric sized by {@code options} (its receives are
     * what is really posted): a Hello may claim buffers the peer does not have.
     */
    static RoguePeer connect(String fabric, InetSocketAddress server, Hello hello, FabricOptions options)
            throws IOException {
        Bootstrap.Connected c = Bootstrap.connect(server, null, Fabrics.get(fabric), hello.encodeHello(), options,
                TIMEOUT_MS);
        try {
            return new RoguePeer(fabric, c.endpoint(), hello, options, Hello.decodeHelloAck(c.peerPrivateData()));
        } catch (IOException | RuntimeException e) {
            c.endpoint().abort();
            throw e;
        }
    }

    // ------------------------------------------------------------------------------------------------ memory

    /** Registers {@code buffer}'s [position, limit) with the rogue's endpoint (for SrcAvail). */
    MemoryRegion register(ByteBuffer buffer) throws IOException {
        return ep.register(buffer);
    }

    // ------------------------------------------------------------------------------------------------ sending

    static Msg msg(int mid) {
        return new Msg(mid);
    }

    static Msg data(byte[] payload) {
        return new Msg(Bsdh.MID_DATA).payload(payload);
    }

    static Msg srcAvail(int len, int rkey, long vaddr) {
        ByteBuffer b = ByteBuffer.allocate(16);
        b.putInt(0, len).putInt(4, rkey).putLong(8, vaddr);
        return new Msg(Bsdh.MID_SRC_AVAIL).payload(b.array());
    }

    static Msg rdmaRdCompl(int n) {
        return new Msg(Bsdh.MID_RDMA_RD_COMPL).payload(ByteBuffer.allocate(4).putInt(0, n).array());
    }

    /** Every later message advertises {@code bufs} (null: the receives really posted). */
    synchronized void overrideBufs(Integer bufs) {
        bufsOverride = bufs;
    }

    /** Encodes and posts {@code m}; returns the mseq it carried. */
    int send(Msg m) throws IOException {
        byte[] wire;
        int mseq;
        synchronized (this) {
            int total = Bsdh.SIZE + m.payload.length;
            ByteBuffer b = ByteBuffer.allocate(total);
            mseq = m.mseq != null ? m.mseq : txMseq + 1;
            txMseq = mseq;
            int bufs = m.bufs != null ? m.bufs : bufsOverride != null ? bufsOverride : posted;
            int ack = m.ack != null ? m.ack : rxMseq;
            b.put(0, (byte) m.mid);
            b.put(1, (byte) 0);
            b.putShort(2, (short) bufs);
            b.putInt(4, m.len != null ? m.len : total);
            b.putInt(8, mseq);
            b.putInt(12, ack);
            b.put(Bsdh.SIZE, m.payload);
            wire = b.array();
            if (m.wireBytes != null) {
                wire = java.util.Arrays.copyOf(wire, m.wireBytes);
            }
        }
        sendRaw(wire);
        return mseq;
    }

    /** Posts {@code bytes} as one SEND, exactly as given. */
    void sendRaw(byte[] bytes) throws IOException {
        if (bytes.length > txSlotSize) {
            throw new IllegalArgumentException("message of " + bytes.length + " bytes > send slot " + txSlotSize);
        }
        Integer slot;
        try {
            slot = txFree.poll(TIMEOUT_MS, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted waiting for a send slot");
        }
        if (slot == null) {
            throw new IOException("no send slot free within " + TIMEOUT_MS + " ms (sends not completing)");
        }
        txPool.put(slot * txSlotSize, bytes);
        try {
            ep.postSend(slot, txMr, slot * txSlotSize, bytes.length);
        } catch (IOException | RuntimeException e) {
            txFree.add(slot);
            throw e;
        }
    }

    /** Credits the server has granted us that we have not used. */
    synchronized int credits() {
        return serverAck + serverBufs - txMseq;
    }

    /** Sends well-formed Data, first waiting (bounded) for a credit as a well-behaved peer does. */
    int sendDataWithinCredits(byte[] payload) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(TIMEOUT_MS);
        synchronized (this) {
            while (credits() <= 0) {
                long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
                if (left <= 0 || disconnected) {
                    throw new IOException("no credit from the server within " + TIMEOUT_MS + " ms: " + state());
                }
                wait(left);
            }
        }
        return send(data(payload));
    }

    // ------------------------------------------------------------------------------------------------ observing

    synchronized List<Received> received() {
        return new ArrayList<>(received);
    }

    synchronized int lastSentMseq() {
        return txMseq;
    }

    synchronized int lastReceivedMseq() {
        return rxMseq;
    }

    synchronized boolean isDisconnected() {
        return disconnected;
    }

    synchronized IOException disconnectCause() {
        return disconnectCause;
    }

    synchronized List<String> workErrors() {
        return new ArrayList<>(workErrors);
    }

    synchronized boolean receivedAbortConn() {
        return received.stream().anyMatch(r -> r.mid() == Bsdh.MID_ABORT_CONN);
    }

    /** Waits for a received message matching {@code p}; null if none within {@code timeoutMs}. */
    synchronized Received awaitMessage(Predicate<Received> p, long timeoutMs) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        while (true) {
            for (Received r : received) {
                if (p.test(r)) {
                    return r;
                }
            }
            long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
            if (left <= 0 || disconnected) {
                return null;
            }
            wait(left);
        }
    }

    /** Sum of the lengths in all RdmaRdCompl received. */
    synchronized long rdmaRdComplBytes() {
        return received.stream().filter(r -> r.mid() == Bsdh.MID_RDMA_RD_COMPL).mapToLong(Received::firstArg).sum();
    }

    /** Waits until RdmaRdCompl messages cover {@code n} bytes; false on timeout or disconnect. */
    synchronized boolean awaitRdmaRdCompl(long n, long timeoutMs) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        while (rdmaRdComplBytes() < n) {
            long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
            if (left <= 0 || disconnected) {
                return false;
            }
            wait(left);
        }
        return true;
    }

    /**
     * Waits until the server tore the connection down: an AbortConn received and/or the endpoint disconnected.
     * Returns what was seen, or null if the connection is still up after {@code timeoutMs}.
     */
    synchronized String awaitGone(long timeoutMs) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        while (!disconnected) {
            long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
            if (left <= 0) {
                break;
            }
            wait(left);
        }
        boolean abort = receivedAbortConn();
        if (!abort && !disconnected) {
            return null;
        }
        return (abort ? "AbortConn received" : "no AbortConn") + (disconnected ? ", disconnected ("
                + (disconnectCause == null ? "orderly" : disconnectCause.getMessage()) + ")" : ", not disconnected");
    }

    synchronized String state() {
        return "RoguePeer[" + fabric + ", sent mseq " + txMseq + ", received mseq " + rxMseq + ", server bufs "
                + serverBufs + " ack " + serverAck + ", posted " + posted + ", disconnected " + disconnected
                + (disconnectCause != null ? " (" + disconnectCause.getMessage() + ")" : "") + ", received "
                + received + ", work errors " + workErrors + "]";
    }

    // ------------------------------------------------------------------------------------------------ completions

    @Override
    public void onCompletion(int opcode, long wrId, int byteLen, int status) {
        if (opcode == Opcode.SEND) {
            txFree.add((int) wrId);
            if (status != WcStatus.SUCCESS && status != WcStatus.FLUSH_ERR) {
                recordError("SEND " + WcStatus.name(status));
            }
            return;
        }
        if (opcode != Opcode.RECV) {
            recordError(Opcode.name(opcode) + " completion for wrId " + wrId + ": " + WcStatus.name(status));
            return;
        }
        int buf = (int) wrId;
        synchronized (this) {
            posted--;
            if (status != WcStatus.SUCCESS) {
                if (status != WcStatus.FLUSH_ERR) {
                    workErrors.add("RECV " + WcStatus.name(status));
                }
                notifyAll();
                return;
            }
            byte[] bytes = new byte[byteLen];
            rxPool.get(buf * rcvSize, bytes);
            ByteBuffer b = ByteBuffer.wrap(bytes);
            Received r = byteLen >= Bsdh.SIZE
                    ? new Received(Bsdh.mid(b, 0), Bsdh.bufs(b, 0), Bsdh.len(b, 0), Bsdh.mseq(b, 0), Bsdh.mseqAck(b, 0),
                    bytes)
                    : new Received(-1, 0, 0, 0, 0, bytes);
            received.add(r);
            if (byteLen >= Bsdh.SIZE) {
                rxMseq = r.mseq();
                serverBufs = r.bufs();
                serverAck = r.mseqAck();
            }
            if (!closed && ep.isOpen()) {
                try {
                    ep.postRecv(buf, rxMr, buf * rcvSize, rcvSize);
                    posted++;
                } catch (IOException e) {
                    // the endpoint is going away; the disconnect reports it
                }
            }
            notifyAll();
        }
    }

    private synchronized void recordError(String e) {
        workErrors.add(e);
        notifyAll();
    }

    @Override
    public synchronized void onDisconnect(IOException cause) {
        disconnected = true;
        disconnectCause = cause;
        notifyAll();
    }

    /** Abortive teardown of the rogue's endpoint. Idempotent. */
    @Override
    public void close() {
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
        }
        ep.abort();
    }
}
