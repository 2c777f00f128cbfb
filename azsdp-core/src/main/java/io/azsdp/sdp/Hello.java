package io.azsdp.sdp;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * The SDP Hello / HelloAck exchanged as connection private data (as SDP carries them in the CM request and reply).
 * <pre>
 * Hello:    BSDH(mid=Hello, bufs) | version u8 | ipVersion u8 | cap u8 | maxAdverts u8 | desRemRcvSz u32 | localRcvSz u32
 * HelloAck: BSDH(mid=HelloAck, bufs) | version u8 | rsvd u16 | maxAdverts u8 | actRcvSz u32
 * </pre>
 *
 * @param bufs       private receive buffers posted by the sender of this message (initial credits for the peer)
 * @param maxAdverts most SrcAvails the sender accepts outstanding
 * @param rcvSize    size of one of the sender's private receive buffers, header included
 */
public record Hello(int bufs, int maxAdverts, int rcvSize) {
    /** SDP version 2.2, major and minor in one byte. */
    static final int VERSION = 0x22;
    private static final int HELLO_LEN = Bsdh.SIZE + 12;
    private static final int HELLO_ACK_LEN = Bsdh.SIZE + 8;

    public byte[] encodeHello() {
        ByteBuffer b = ByteBuffer.allocate(HELLO_LEN);
        Bsdh.write(b, 0, Bsdh.MID_HELLO, bufs, HELLO_LEN, 0, 0);
        b.put(16, (byte) VERSION).put(17, (byte) 0x40).put(18, (byte) 0).put(19, (byte) maxAdverts);
        b.putInt(20, rcvSize).putInt(24, rcvSize);
        return b.array();
    }

    public byte[] encodeHelloAck() {
        ByteBuffer b = ByteBuffer.allocate(HELLO_ACK_LEN);
        Bsdh.write(b, 0, Bsdh.MID_HELLO_ACK, bufs, HELLO_ACK_LEN, 0, 0);
        b.put(16, (byte) VERSION).put(19, (byte) maxAdverts);
        b.putInt(20, rcvSize);
        return b.array();
    }

    public static Hello decodeHello(byte[] data) throws IOException {
        return decode(data, Bsdh.MID_HELLO, HELLO_LEN, 24);
    }

    public static Hello decodeHelloAck(byte[] data) throws IOException {
        return decode(data, Bsdh.MID_HELLO_ACK, HELLO_ACK_LEN, 20);
    }

    private static Hello decode(byte[] data, int mid, int len, int rcvSizeOffset) throws IOException {
        String what = Bsdh.midName(mid);
        if (data.length != len) {
            throw new SdpProtocolException(what + " of " + data.length + " bytes, expected " + len);
        }
        ByteBuffer b = ByteBuffer.wrap(data);
        if (Bsdh.mid(b, 0) != mid || Bsdh.len(b, 0) != len) {
            throw new SdpProtocolException("expected " + what + ", got message id " + Bsdh.midName(Bsdh.mid(b, 0))
                    + " length " + Bsdh.len(b, 0));
        }
        int version = b.get(16) & 0xFF;
        if ((version >> 4) != (VERSION >> 4)) {
            throw new SdpProtocolException(what + ": unsupported SDP version " + (version >> 4) + "." + (version & 15));
        }
        Hello h = new Hello(Bsdh.bufs(b, 0), b.get(19) & 0xFF, b.getInt(rcvSizeOffset));
        if (h.bufs < 3 || h.maxAdverts < 1 || h.rcvSize < 64 || h.rcvSize > (16 << 20)) {
            throw new SdpProtocolException(what + " with invalid parameters " + h);
        }
        return h;
    }
}
