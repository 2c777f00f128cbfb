package io.azsdp.fabric.tcp;

import io.azsdp.fabric.FabricOptions;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;

/**
 * The tcp provider handshake: each side writes a 16-byte hello, then reads the peer's one (big-endian).
 *
 * <pre>
 *  0  i32  magic           0x415A5443 ("AZTC")
 *  4  u16  version         1
 *  6  u8   role            1 = connect side, 2 = accept side
 *  7  u8   reserved        0
 *  8  i32  maxMessageSize  largest SEND the sender of this hello accepts
 * 12  i32  maxPostedRecvs  informational
 * </pre>
 *
 * The read goes through the socket adaptor's unbuffered InputStream, which honours SO_TIMEOUT (a blocking channel
 * read does not), so the handshake is bounded by {@link FabricOptions#connectTimeoutMs()} (0 = unbounded).
 */
final class Handshake {
    static final int MAGIC = 0x415A5443;
    static final short VERSION = 1;
    static final int HELLO_LEN = 16;
    static final byte ROLE_CONNECT = 1;
    static final byte ROLE_ACCEPT = 2;

    private Handshake() {
    }

    /** Runs the handshake and returns the peer's maxMessageSize. */
    static int exchange(SocketChannel ch, FabricOptions options, byte role) throws IOException {
        ByteBuffer out = ByteBuffer.allocate(HELLO_LEN);
        out.putInt(MAGIC).putShort(VERSION).put(role).put((byte) 0)
                .putInt(options.maxMessageSize()).putInt(options.maxPostedRecvs()).flip();
        while (out.hasRemaining()) {
            ch.write(out);
        }

        Socket socket = ch.socket();
        byte[] in = new byte[HELLO_LEN];
        socket.setSoTimeout(options.connectTimeoutMs());
        try {
            // Not closed on purpose: closing the adaptor stream would close the channel.
            InputStream stream = socket.getInputStream();
            int n = stream.readNBytes(in, 0, HELLO_LEN);
            if (n < HELLO_LEN) {
                throw new EOFException("tcp fabric handshake: " + ch.getRemoteAddress() + " closed the connection after "
                        + n + " of " + HELLO_LEN + " hello bytes");
            }
        } catch (SocketTimeoutException e) {
            SocketTimeoutException t = new SocketTimeoutException("tcp fabric handshake with " + ch.getRemoteAddress()
                    + " timed out after " + options.connectTimeoutMs() + " ms");
            t.initCause(e);
            throw t;
        } finally {
            try {
                socket.setSoTimeout(0); // later reads go through the channel, which ignores it anyway
            } catch (IOException ignored) {
                // closed meanwhile; the original outcome stands
            }
        }
        return parse(ByteBuffer.wrap(in), role, String.valueOf(ch.getRemoteAddress()));
    }

    private static int parse(ByteBuffer hello, byte role, String peer) throws IOException {
        int magic = hello.getInt();
        int version = hello.getShort() & 0xFFFF;
        int peerRole = hello.get();
        int reserved = hello.get();
        int maxMessageSize = hello.getInt();
        if (magic != MAGIC) {
            throw new IOException("tcp fabric handshake: " + peer + " is not a tcp fabric peer (bad magic 0x"
                    + Integer.toHexString(magic) + ", expected 0x" + Integer.toHexString(MAGIC) + ")");
        }
        if (version != VERSION) {
            throw new IOException("tcp fabric handshake: " + peer + " speaks version " + version + ", this side "
                    + VERSION);
        }
        int expectedRole = role == ROLE_CONNECT ? ROLE_ACCEPT : ROLE_CONNECT;
        if (peerRole != expectedRole || reserved != 0) {
            throw new IOException("tcp fabric handshake: " + peer + " sent role " + peerRole + " (reserved " + reserved
                    + "), expected role " + expectedRole + " (both sides called connect, or both accept?)");
        }
        if (maxMessageSize <= 0) {
            throw new IOException("tcp fabric handshake: " + peer + " announced an invalid maxMessageSize "
                    + maxMessageSize);
        }
        return maxMessageSize;
    }
}
