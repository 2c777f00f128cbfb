package io.azsdp.socket;

import java.io.IOException;
import java.io.InputStream;
import java.util.Objects;

/** The socket's input stream; reads honour {@code SO_TIMEOUT}. Closing it closes the socket, as for TCP sockets. */
final class SdpInputStream extends InputStream {
    private final AzSdpSocket socket;
    private final byte[] one = new byte[1];

    SdpInputStream(AzSdpSocket socket) {
        this.socket = socket;
    }

    @Override
    public int read() throws IOException {
        synchronized (one) {
            int n = read(one, 0, 1);
            return n < 0 ? -1 : one[0] & 0xFF;
        }
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
        Objects.checkFromIndexSize(off, len, b.length);
        if (socket.isInputShutdown()) {
            return -1;
        }
        return socket.requireConnection().read(b, off, len, socket.readTimeout());
    }

    @Override
    public int available() throws IOException {
        return socket.isInputShutdown() ? 0 : socket.requireConnection().available();
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }
}
