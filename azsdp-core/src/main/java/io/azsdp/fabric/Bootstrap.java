package io.azsdp.fabric;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketTimeoutException;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;

/**
 * Connection bootstrap over TCP, the role rdma_cm plays for verbs: the client names the fabric and carries private
 * data (the SDP Hello), the server answers with its private data (HelloAck) or a rejection, then the chosen provider
 * runs its own handshake on the same channel. Every read here is bounded by a timeout, so a silent peer cannot hold an
 * accepting thread forever.
 *
 * <pre>
 * request: magic u32 'AZSD' | version u16 | fabric name (u8 length + ASCII) | private data (u16 length + bytes)
 * reply:   status u8 (0 accepted, 1 rejected) | u16 length + bytes (private data, or a UTF-8 reason)
 * </pre>
 */
public final class Bootstrap {
    static final int MAGIC = 0x415A5344;
    static final int VERSION = 1;
    static final int MAX_PRIVATE_DATA = 1024;

    private Bootstrap() {
    }

    /** The result of a successful client bootstrap. */
    public record Connected(Endpoint endpoint, byte[] peerPrivateData) {
    }

    /** A connection request read by the server, to be accepted or rejected. */
    public static final class Incoming {
        private final SocketChannel channel;
        private final String fabricName;
        private final byte[] privateData;

        Incoming(SocketChannel channel, String fabricName, byte[] privateData) {
            this.channel = channel;
            this.fabricName = fabricName;
            this.privateData = privateData;
        }

        public String fabricName() {
            return fabricName;
        }

        public byte[] privateData() {
            return privateData;
        }

        public InetSocketAddress remoteAddress() throws IOException {
            return (InetSocketAddress) channel.getRemoteAddress();
        }

        /** Sends our private data and runs the provider handshake; closes the channel on failure. */
        public Endpoint accept(Fabric fabric, byte[] replyPrivateData, FabricOptions options) throws IOException {
            try {
                writeReply(channel, 0, replyPrivateData);
                return fabric.accept(channel, options);
            } catch (IOException | RuntimeException e) {
                closeQuietly(channel);
                throw e;
            }
        }

        /** Tells the client why, then closes. */
        public void reject(String reason) {
            try {
                writeReply(channel, 1, reason.getBytes(StandardCharsets.UTF_8));
            } catch (IOException ignored) {
                // the client is gone already; nothing to tell
            } finally {
                closeQuietly(channel);
            }
        }
    }

    /** Connects to {@code remote}, asks for {@code fabric}, and runs its handshake. */
    public static Connected connect(InetSocketAddress remote, InetSocketAddress localBind, Fabric fabric,
                                    byte[] privateData, FabricOptions options, int timeoutMs) throws IOException {
        if (privateData.length > MAX_PRIVATE_DATA) {
            throw new IllegalArgumentException("private data too long: " + privateData.length);
        }
        SocketChannel ch = SocketChannel.open();
        try {
            if (localBind != null) {
                ch.bind(localBind);
            }
            ch.socket().connect(remote, timeoutMs);
            ch.socket().setTcpNoDelay(true);
            ch.socket().setSoTimeout(timeoutMs);
            DataOutputStream out = new DataOutputStream(ch.socket().getOutputStream());
            byte[] name = fabric.name().getBytes(StandardCharsets.US_ASCII);
            out.writeInt(MAGIC);
            out.writeShort(VERSION);
            out.writeByte(name.length);
            out.write(name);
            out.writeShort(privateData.length);
            out.write(privateData);
            out.flush();
            DataInputStream in = new DataInputStream(ch.socket().getInputStream());
            int status = in.readUnsignedByte();
            byte[] body = readBlock(in, "reply");
            if (status != 0) {
                throw new java.net.ConnectException("connection to " + remote + " refused by AZ-SDP server: "
                        + new String(body, StandardCharsets.UTF_8));
            }
            Endpoint ep = fabric.connect(ch, options);
            return new Connected(ep, body);
        } catch (SocketTimeoutException e) {
            closeQuietly(ch);
            throw new SocketTimeoutException("AZ-SDP connect to " + remote + " timed out after " + timeoutMs + " ms");
        } catch (IOException | RuntimeException e) {
            closeQuietly(ch);
            throw e;
        }
    }

    /**
     * Reads a connection request from a freshly accepted channel, bounded by {@code timeoutMs}. A malformed request
     * closes the channel and throws.
     */
    public static Incoming readRequest(SocketChannel ch, int timeoutMs) throws IOException {
        try {
            ch.socket().setTcpNoDelay(true);
            ch.socket().setSoTimeout(timeoutMs);
            DataInputStream in = new DataInputStream(ch.socket().getInputStream());
            int magic = in.readInt();
            if (magic != MAGIC) {
                throw new IOException("not an AZ-SDP client (bad magic 0x" + Integer.toHexString(magic) + ")");
            }
            int version = in.readUnsignedShort();
            if (version != VERSION) {
                writeReply(ch, 1, ("unsupported bootstrap version " + version).getBytes(StandardCharsets.UTF_8));
                throw new IOException("unsupported AZ-SDP bootstrap version " + version);
            }
            int nameLen = in.readUnsignedByte();
            byte[] name = new byte[nameLen];
            in.readFully(name);
            byte[] priv = readBlock(in, "private data");
            return new Incoming(ch, new String(name, StandardCharsets.US_ASCII), priv);
        } catch (IOException | RuntimeException e) {
            closeQuietly(ch);
            throw e;
        }
    }

    private static byte[] readBlock(DataInputStream in, String what) throws IOException {
        int len = in.readUnsignedShort();
        if (len > MAX_PRIVATE_DATA) {
            throw new IOException("bootstrap " + what + " too long: " + len + " bytes");
        }
        byte[] b = new byte[len];
        in.readFully(b);
        return b;
    }

    private static void writeReply(SocketChannel ch, int status, byte[] body) throws IOException {
        DataOutputStream out = new DataOutputStream(ch.socket().getOutputStream());
        out.writeByte(status);
        out.writeShort(Math.min(body.length, MAX_PRIVATE_DATA));
        out.write(body, 0, Math.min(body.length, MAX_PRIVATE_DATA));
        out.flush();
    }

    static void closeQuietly(SocketChannel ch) {
        try {
            ch.close();
        } catch (IOException ignored) {
            // closing a broken channel
        }
    }

}
