package io.azsdp.cli;

import io.azsdp.socket.AzSdpChannel;
import io.azsdp.socket.AzSdpSocket;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;

/**
 * One benchmark connection. Each transport gets the buffers it is best with: AZ-SDP direct buffers through its channel
 * (zero copy capable), plain Java sockets heap arrays through their streams (what their users write), NIO socket
 * channels direct buffers (no copy into a temporary direct buffer inside the JDK).
 */
public abstract class Link implements AutoCloseable {
    final Socket socket;

    Link(Socket socket) {
        this.socket = socket;
    }

    public static Link of(Socket s) throws IOException {
        return s instanceof AzSdpSocket a ? new Sdp(a) : new JavaTcp(s);
    }

    public static Link of(SocketChannel ch) throws IOException {
        return new Nio(ch);
    }

    public abstract ByteBuffer allocate(int size);

    /** Reads at least one byte into dst; -1 at end of stream. */
    public abstract int read(ByteBuffer dst) throws IOException;

    /** Writes all remaining bytes of src. */
    public abstract void write(ByteBuffer src) throws IOException;

    public void readFully(ByteBuffer dst) throws IOException {
        while (dst.hasRemaining()) {
            if (read(dst) < 0) {
                throw new EOFException("peer closed with " + dst.remaining() + " bytes missing");
            }
        }
    }

    /** Abortive close (reset): unblocks this side's readers and writers and tells the peer at once. */
    public void abort() {
        try {
            socket.setSoLinger(true, 0);
        } catch (IOException ignored) {
            // already closed: closing below is all that is left
        }
        try {
            socket.close();
        } catch (IOException ignored) {
            // nothing more to release
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
        public ByteBuffer allocate(int size) {
            return io.azsdp.AzSdp.allocate(size); // page-aligned: AZ-SDP protects whole pages, nothing to copy
        }

        @Override
        public int read(ByteBuffer dst) throws IOException {
            return ch.read(dst);
        }

        @Override
        public void write(ByteBuffer src) throws IOException {
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
        public ByteBuffer allocate(int size) {
            return ByteBuffer.allocate(size);
        }

        @Override
        public int read(ByteBuffer dst) throws IOException {
            int n = in.read(dst.array(), dst.arrayOffset() + dst.position(), dst.remaining());
            if (n > 0) {
                dst.position(dst.position() + n);
            }
            return n;
        }

        @Override
        public void write(ByteBuffer src) throws IOException {
            out.write(src.array(), src.arrayOffset() + src.position(), src.remaining());
            src.position(src.limit());
        }
    }

    private static final class Nio extends Link {
        private final SocketChannel ch;

        Nio(SocketChannel ch) throws IOException {
            super(ch.socket());
            this.ch = ch;
            ch.configureBlocking(true);
            ch.socket().setTcpNoDelay(true);
        }

        @Override
        public ByteBuffer allocate(int size) {
            return ByteBuffer.allocateDirect(size);
        }

        @Override
        public int read(ByteBuffer dst) throws IOException {
            return ch.read(dst);
        }

        @Override
        public void write(ByteBuffer src) throws IOException {
            while (src.hasRemaining()) {
                ch.write(src);
            }
        }
    }
}
