package io.azsdp.spark.client;

import io.azsdp.socket.AzSdpChannel;
import io.azsdp.socket.AzSdpSocket;
import io.azsdp.spark.config.ShuffleConf;
import io.azsdp.spark.protocol.Handshake;
import io.azsdp.spark.protocol.ProtocolException;
import io.azsdp.spark.protocol.Wire;
import java.io.Closeable;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;

/** One authenticated connection to a block server; used by one fetch at a time. */
final class PeerConnection implements Closeable {
    private final AzSdpSocket socket;
    private final AzSdpChannel ch;
    private final InetSocketAddress address;
    /** Whether it has served a request before (a pooled connection the server may have closed meanwhile). */
    private boolean reused;

    private PeerConnection(AzSdpSocket socket, InetSocketAddress address) throws IOException {
        this.socket = socket;
        this.ch = socket.byteChannel();
        this.address = address;
    }

    /** Connects, then authenticates; every read on it is bounded by the configured timeout. */
    static PeerConnection open(InetSocketAddress address, ShuffleConf conf, String appId, String secret)
            throws IOException {
        AzSdpSocket s = new AzSdpSocket(conf.socketConfig());
        try {
            s.connect(address, conf.timeoutMs());
            s.setSoTimeout(conf.timeoutMs());
            PeerConnection c = new PeerConnection(s, address);
            Handshake.connect(c.ch, appId, secret);
            return c;
        } catch (IOException | RuntimeException e) {
            s.close();
            throw e;
        }
    }

    InetSocketAddress address() {
        return address;
    }

    boolean reused() {
        return reused;
    }

    void markReused() {
        reused = true;
    }

    boolean isOpen() {
        return !socket.isClosed();
    }

    AzSdpChannel channel() {
        return ch;
    }

    /** Sends ids[from..] as far as one request frame allows; returns how many were asked for. */
    int request(String[] ids, int from) throws IOException {
        int bytes = 4;
        int to = from;
        while (to < ids.length && to - from < Wire.MAX_BLOCKS_PER_REQUEST
                && bytes + Wire.stringBytes(ids[to]) <= Wire.MAX_REQUEST_BYTES) {
            bytes += Wire.stringBytes(ids[to]);
            to++;
        }
        if (to == from) {
            throw new ProtocolException("block id too long for a request: " + ids[from]);
        }
        ByteBuffer frame = ByteBuffer.allocate(4 + bytes);
        frame.putInt(bytes).putInt(to - from);
        for (int i = from; i < to; i++) {
            Wire.putString(frame, ids[i]);
        }
        Wire.writeFully(ch, frame.flip());
        return to - from;
    }

    /** Abortive close after a failure: no waiting for the peer's orderly goodbye. */
    void abort() {
        try {
            socket.setSoLinger(true, 0);
        } catch (IOException e) {
            // already closed
        }
        close();
    }

    @Override
    public void close() {
        try {
            socket.close();
        } catch (IOException e) {
            // closing after a failure: the failure is what gets reported
        }
    }
}
