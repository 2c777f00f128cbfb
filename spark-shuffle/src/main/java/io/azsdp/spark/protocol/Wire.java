package io.azsdp.spark.protocol;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;

/**
 * The block protocol: small big-endian frames on one AZ-SDP connection. The server greets with a nonce, the client
 * proves the application's secret, then each request names blocks and the server answers every block in order with
 * either its bytes (a header, then the segment itself, written zero copy when large) or an error message.
 *
 * <pre>
 * server greeting : int MAGIC, byte VERSION, byte authRequired, byte[NONCE_BYTES] nonce
 * client hello    : int MAGIC, byte VERSION, str appId, short n, byte[n] proof
 * server verdict  : byte OK | REFUSED, str message
 * request         : int frameBytes, int count, count x str blockId
 * per block       : byte DATA | ZCOPY_DATA, long length, byte[length] | byte ERROR, str message
 * str             : short n, byte[n] UTF-8
 * </pre>
 */
public final class Wire {
    public static final int MAGIC = 0x415A5348; // "AZSH"
    public static final byte VERSION = 1;
    public static final int NONCE_BYTES = 32;
    public static final byte OK = 0;
    public static final byte REFUSED = 1;
    public static final byte DATA = 2;
    public static final byte ERROR = 3;
    /** Like DATA, but the bytes were advertised for the reader to pull by one-sided READ. */
    public static final byte ZCOPY_DATA = 4;
    /** Bounds a server checks before it allocates anything for a request. */
    public static final int MAX_REQUEST_BYTES = 1 << 20;
    public static final int MAX_BLOCKS_PER_REQUEST = 65_536;
    public static final int MAX_STRING_BYTES = 4096;

    private Wire() {
    }

    public static void readFully(ReadableByteChannel ch, ByteBuffer dst) throws IOException {
        while (dst.hasRemaining()) {
            if (ch.read(dst) < 0) {
                throw new EOFException("connection closed with " + dst.remaining() + " bytes of a frame missing");
            }
        }
    }

    public static void writeFully(WritableByteChannel ch, ByteBuffer src) throws IOException {
        while (src.hasRemaining()) {
            ch.write(src);
        }
    }

    /** Reads exactly {@code n} bytes into a fresh big-endian heap buffer, flipped for reading. */
    public static ByteBuffer read(ReadableByteChannel ch, int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        readFully(ch, b);
        return b.flip();
    }

    public static int stringBytes(String s) {
        return 2 + utf8(s).length;
    }

    public static void putString(ByteBuffer b, String s) {
        byte[] u = utf8(s);
        b.putShort((short) u.length).put(u);
    }

    /** Reads a string whose bytes are already in {@code b}; a length beyond the frame or the bound is malformed. */
    public static String getString(ByteBuffer b) throws ProtocolException {
        if (b.remaining() < 2) {
            throw new ProtocolException("truncated string length");
        }
        int n = Short.toUnsignedInt(b.getShort());
        if (n > MAX_STRING_BYTES || n > b.remaining()) {
            throw new ProtocolException("string of " + n + " bytes exceeds the frame or the bound of "
                    + MAX_STRING_BYTES);
        }
        byte[] u = new byte[n];
        b.get(u);
        return new String(u, StandardCharsets.UTF_8);
    }

    /** Reads a length-prefixed string straight from the channel. */
    public static String readString(ReadableByteChannel ch) throws IOException {
        int n = Short.toUnsignedInt(read(ch, 2).getShort());
        if (n > MAX_STRING_BYTES) {
            throw new ProtocolException("string of " + n + " bytes exceeds the bound of " + MAX_STRING_BYTES);
        }
        byte[] u = new byte[n];
        read(ch, n).get(u);
        return new String(u, StandardCharsets.UTF_8);
    }

    /** A message truncated to what fits a frame string. */
    public static String clip(String s) {
        String m = s == null ? "" : s;
        while (utf8(m).length > MAX_STRING_BYTES) {
            m = m.substring(0, m.length() / 2);
        }
        return m;
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
