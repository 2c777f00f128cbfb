package io.azsdp.sdp;

import java.nio.ByteBuffer;

/**
 * The SDP Base Sockets Direct Header: 16 bytes, big-endian, in front of every message.
 * <pre>
 * mid u8 | flags u8 | bufs u16 | len u32 (whole message, header included) | mseq u32 | mseq_ack u32
 * </pre>
 * {@code bufs} is how many private receive buffers the sender has posted beyond {@code mseq_ack}; the peer's credits
 * are {@code bufs - (its last mseq - mseq_ack)}. Message ids are those of the SDP specification.
 */
final class Bsdh {
    static final int SIZE = 16;

    static final int MID_HELLO = 0x00;
    static final int MID_HELLO_ACK = 0x01;
    static final int MID_DISCONN = 0x02;
    static final int MID_ABORT_CONN = 0x03;
    static final int MID_SEND_SM = 0x04;
    static final int MID_RDMA_RD_COMPL = 0x06;
    static final int MID_SRC_AVAIL_CANCEL = 0x08;
    static final int MID_SRC_AVAIL = 0xFE;
    static final int MID_DATA = 0xFF;

    /**
     * Flag of a SrcAvail whose sender does not wait for it (AZ-SDP: its pages are protected instead of the call
     * blocking). An extension of this implementation: the receiver need not hurry to release such a sender.
     */
    static final int FLAG_ASYNC = 0x80;

    /** SrcAvail: BSDH + len u32 + rkey u32 + vaddr u64. */
    static final int SRC_AVAIL_SIZE = SIZE + 16;
    /** RdmaRdCompl: BSDH + len u32 (bytes read). */
    static final int RDMA_RD_COMPL_SIZE = SIZE + 4;

    private Bsdh() {
    }

    static void write(ByteBuffer b, int off, int mid, int bufs, int len, int mseq, int mseqAck) {
        write(b, off, mid, 0, bufs, len, mseq, mseqAck);
    }

    static void write(ByteBuffer b, int off, int mid, int flags, int bufs, int len, int mseq, int mseqAck) {
        b.put(off, (byte) mid);
        b.put(off + 1, (byte) flags);
        b.putShort(off + 2, (short) Math.min(bufs, 0xFFFF));
        b.putInt(off + 4, len);
        b.putInt(off + 8, mseq);
        b.putInt(off + 12, mseqAck);
    }

    static int mid(ByteBuffer b, int off) {
        return b.get(off) & 0xFF;
    }

    static int flags(ByteBuffer b, int off) {
        return b.get(off + 1) & 0xFF;
    }

    static int bufs(ByteBuffer b, int off) {
        return b.getShort(off + 2) & 0xFFFF;
    }

    static int len(ByteBuffer b, int off) {
        return b.getInt(off + 4);
    }

    static int mseq(ByteBuffer b, int off) {
        return b.getInt(off + 8);
    }

    static int mseqAck(ByteBuffer b, int off) {
        return b.getInt(off + 12);
    }

    static String midName(int mid) {
        return switch (mid) {
            case MID_HELLO -> "Hello";
            case MID_HELLO_ACK -> "HelloAck";
            case MID_DISCONN -> "DisConn";
            case MID_ABORT_CONN -> "AbortConn";
            case MID_SEND_SM -> "SendSM";
            case MID_RDMA_RD_COMPL -> "RdmaRdCompl";
            case MID_SRC_AVAIL_CANCEL -> "SrcAvailCancel";
            case MID_SRC_AVAIL -> "SrcAvail";
            case MID_DATA -> "Data";
            default -> String.format("0x%02x", mid);
        };
    }
}
