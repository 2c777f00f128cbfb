package io.azsdp.cli;

import io.azsdp.socket.AzSdpChannel;
import io.azsdp.socket.AzSdpSocket;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.ByteBuffer;

/**
 * One benchmark connection. Each transport gets the buffers it is best with: AZ-SDP direct buffers through its channel
 * (zero copy capable), plain Java sockets heap arrays through their streams (what their users write).
 */
abstract class Link implements AutoCloseable {
    final Socket socket;

    Link(Socket socket) {
        this.socket = socket;
    }

    static Link of(Socket s) throws IOException {
        return s instanceof AzSdpSocket a ? new Sdp(a) : new JavaTcp(s);
    }

    abstract ByteBuffer allocate(int size);

    /** Reads at least one byte into dst; -1 at end of stream. */
    abstract int read(ByteBuffer dst) throws IOException;

    /** Writes all remaining bytes of src. */
    abstract void write(ByteBuffer src) throws IOException;

    void readFully(ByteBuffer dst) throws IOException {
        while (dst.hasRemaining()) {
            if (read(dst) < 0) {
                throw new EOFException("peer closed with " + dst.remaining() + " bytes missing");
            }
        }
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }

    private static final class Sdp extends Link {
        private final AzSdpChannel ch;

        Sdp(AzSdpSocket s) throws IOException {
            super(s);
            ch = s.byteChannel();
        }

        @Override
        ByteBuffer allocate(int size) {
            return io.azsdp.AzSdp.allocate(size); // page-aligned: AZ-SDP protects whole pages, nothing to copy
        }

        @Override
        int read(ByteBuffer dst) throws IOException {
            return ch.read(dst);
        }

        @Override
        void write(ByteBuffer src) throws IOException {
            ch.write(src);
        }
    }

    private static final class JavaTcp extends Link {
        private final InputStream in;
        private final OutputStream out;

        JavaTcp(Socket s) throws IOException {
            super(s);
            s.setTcpNoDelay(true);
            in = s.getInputStream();
            out = s.getOutputStream();
        }

        @Override
        ByteBuffer allocate(int size) {
            return ByteBuffer.allocate(size);
        }

        @Override
        int read(ByteBuffer dst) throws IOException {
            int n = in.read(dst.array(), dst.arrayOffset() + dst.position(), dst.remaining());
            if (n > 0) {
                dst.position(dst.position() + n);
            }
            return n;
        }

        @Override
        void write(ByteBuffer src) throws IOException {
            out.write(src.array(), src.arrayOffset() + src.position(), src.remaining());
            src.position(src.limit());
        }
    }
}
