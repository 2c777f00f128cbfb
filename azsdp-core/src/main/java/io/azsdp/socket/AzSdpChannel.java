package io.azsdp.socket;

import io.azsdp.sdp.SdpConnection;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.GatheringByteChannel;
import java.nio.channels.ScatteringByteChannel;
import java.util.Objects;

/**
 * Blocking {@code ByteBuffer} I/O on an {@link AzSdpSocket}. Direct buffers at or above the zero-copy threshold are
 * advertised to the peer and pulled by one-sided READ; a read into a large direct buffer is filled by READ straight
 * from the sender's memory.
 */
public final class AzSdpChannel implements ByteChannel, GatheringByteChannel, ScatteringByteChannel {
    private final AzSdpSocket socket;

    AzSdpChannel(AzSdpSocket socket) {
        this.socket = socket;
    }

    public AzSdpSocket socket() {
        return socket;
    }

    private SdpConnection conn() throws IOException {
        if (socket.isClosed()) {
            throw new ClosedChannelException();
        }
        return socket.requireConnection();
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
        if (socket.isInputShutdown()) {
            return -1;
        }
        return conn().read(dst, socket.readTimeout());
    }

    /** Blocks for the first buffer with room, then fills later ones only with bytes already available. */
    @Override
    public long read(ByteBuffer[] dsts, int offset, int length) throws IOException {
        Objects.checkFromIndexSize(offset, length, dsts.length);
        long total = 0;
        for (int i = offset; i < offset + length; i++) {
            ByteBuffer b = dsts[i];
            while (b.hasRemaining()) {
                if (total > 0 && conn().available() == 0) {
                    return total;
                }
                int n = read(b);
                if (n < 0) {
                    return total > 0 ? total : -1;
                }
                total += n;
            }
        }
        return total;
    }

    @Override
    public long read(ByteBuffer[] dsts) throws IOException {
        return read(dsts, 0, dsts.length);
    }

    @Override
    public int write(ByteBuffer src) throws IOException {
        int n = src.remaining();
        conn().write(src);
        return n;
    }

    @Override
    public long write(ByteBuffer[] srcs, int offset, int length) throws IOException {
        Objects.checkFromIndexSize(offset, length, srcs.length);
        long total = 0;
        for (int i = offset; i < offset + length; i++) {
            total += write(srcs[i]);
        }
        return total;
    }

    @Override
    public long write(ByteBuffer[] srcs) throws IOException {
        return write(srcs, 0, srcs.length);
    }

    @Override
    public boolean isOpen() {
        return !socket.isClosed();
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }
}
