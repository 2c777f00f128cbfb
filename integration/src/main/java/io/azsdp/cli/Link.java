package io.azsdp.cli;

import io.azsdp.sdp.TransferMode;
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
 * One benchmark connection. By default each transport gets the buffers it is best with: AZ-SDP direct buffers through
 * its channel (zero copy capable), plain Java sockets heap arrays through their streams (what their users write), NIO
 * socket channels direct buffers (no copy into a temporary direct buffer inside the JDK). With {@link #useHeap} every
 * buffer is a heap array, as most Spark and Hadoop code passes: through the socket's streams where it has them (AZ-SDP,
 * plain sockets), through the channel for NIO.
 */
public abstract class Link implements AutoCloseable {
    final Socket socket;
    private boolean heap;

    Link(Socket socket) {
        this.socket = socket;
    }

    /** From now on {@link #allocate} returns heap buffers ({@code true}) or the transport's best ({@code false}). */
    public Link useHeap(boolean on) {
        heap = on;
        return this;
    }

    public boolean heap() {
        return heap;
    }

    /** A buffer of {@code size} bytes: a heap array after {@code useHeap(true)}, else the transport's best kind. */
    public ByteBuffer allocate(int size) {
        return heap ? ByteBuffer.allocate(size) : allocateBest(size);
    }

    public static Link of(Socket s) throws IOException {
        return s instanceof AzSdpSocket a ? new Sdp(a) : new JavaTcp(s);
    }

    public static Link of(SocketChannel ch) throws IOException {
        return new Nio(ch);
    }

    abstract ByteBuffer allocateBest(int size);

    /** The AZ-SDP transfer mode this link writes with (see {@link #useTransferMode}); 0 for plain Java TCP. */
    int transferMode() {
        return 0;
    }

    /** Writes with the mode a {@link #transferMode} of the peer names (0: leave it). */
    void useTransferMode(int mode) throws IOException {
        if (mode != 0) {
            throw new IOException("an AZ-SDP transfer mode asked of a plain TCP link");
        }
    }

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

    /** Reads into the array behind {@code dst} from a stream, advancing its position. */
    static int readArray(InputStream in, ByteBuffer dst) throws IOException {
        int n = in.read(dst.array(), dst.arrayOffset() + dst.position(), dst.remaining());
        if (n > 0) {
            dst.position(dst.position() + n);
        }
        return n;
    }

    /** Writes the array behind {@code src} to a stream, advancing its position. */
    static void writeArray(OutputStream out, ByteBuffer src) throws IOException {
        out.write(src.array(), src.arrayOffset() + src.position(), src.remaining());
        src.position(src.limit());
    }

    private static final class Sdp extends Link {
        private final AzSdpChannel ch;
        private final InputStream in;
        private final OutputStream out;

        Sdp(AzSdpSocket s) throws IOException {
            super(s);
            ch = s.byteChannel();
            in = s.getInputStream();
            out = s.getOutputStream();
        }

        @Override
        ByteBuffer allocateBest(int size) {
            return io.azsdp.AzSdp.allocate(size); // page-aligned: AZ-SDP protects whole pages, nothing to copy
        }

        @Override
        int transferMode() {
            return ((AzSdpSocket) socket).connection().mode().ordinal() + 1;
        }

        @Override
        void useTransferMode(int mode) throws IOException {
            TransferMode[] modes = TransferMode.values();
            if (mode < 0 || mode > modes.length) {
                throw new IOException("unknown transfer mode " + mode);
            }
            if (mode != 0) {
                ((AzSdpSocket) socket).setTransferMode(modes[mode - 1]);
            }
        }

        @Override
        public int read(ByteBuffer dst) throws IOException {
            return dst.hasArray() ? readArray(in, dst) : ch.read(dst);
        }

        @Override
        public void write(ByteBuffer src) throws IOException {
            if (src.hasArray()) {
                writeArray(out, src);
            } else {
                ch.write(src);
            }
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
        ByteBuffer allocateBest(int size) {
            return ByteBuffer.allocate(size);
        }

        @Override
        public int read(ByteBuffer dst) throws IOException {
            return readArray(in, dst);
        }

        @Override
        public void write(ByteBuffer src) throws IOException {
            writeArray(out, src);
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
        ByteBuffer allocateBest(int size) {
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
