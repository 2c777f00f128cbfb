package io.azsdp.socket;

import java.io.IOException;
import java.io.OutputStream;
import java.util.Objects;

/** The socket's output stream. Writes return when the bytes may be reused; flush has nothing to do. */
final class SdpOutputStream extends OutputStream {
    private final AzSdpSocket socket;
    private final byte[] one = new byte[1];

    SdpOutputStream(AzSdpSocket socket) {
        this.socket = socket;
    }

    @Override
    public void write(int b) throws IOException {
        synchronized (one) {
            one[0] = (byte) b;
            write(one, 0, 1);
        }
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
        Objects.checkFromIndexSize(off, len, b.length);
        socket.requireConnection().write(b, off, len);
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }
}
