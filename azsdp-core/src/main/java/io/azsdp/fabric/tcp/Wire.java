package io.azsdp.fabric.tcp;

import java.nio.ByteBuffer;

/**
 * Frame format of the tcp fabric. Every frame starts with one fixed 24-byte big-endian header, so the reader needs a
 * single read per header and never reads ahead into a payload (payloads go straight into registered memory):
 *
 * <pre>
 *  0  u8   magic    0xA5 (catches a desynchronised or foreign stream early)
 *  1  u8   type     SEND, READ_REQ, READ_RESP, WRITE, WRITE_RESP, CLOSE
 *  2  u8   status   WcStatus of READ_RESP / WRITE_RESP, else 0
 *  3  u8   reserved 0
 *  4  i32  length   payload bytes that follow (SEND, READ_RESP, WRITE); requested bytes (READ_REQ); else 0
 *  8  i32  reqId    matches READ_REQ/WRITE with their response, else 0
 * 12  i32  rkey     remote key (READ_REQ, WRITE), else 0
 * 16  i64  address  remote address (READ_REQ, WRITE), else 0
 * </pre>
 */
final class Wire {
    static final int HEADER_LEN = 24;
    static final byte FRAME_MAGIC = (byte) 0xA5;

    static final byte SEND = 1;
    static final byte READ_REQ = 2;
    static final byte READ_RESP = 3;
    static final byte WRITE = 4;
    static final byte WRITE_RESP = 5;
    static final byte CLOSE = 6;

    static final int OFF_MAGIC = 0;
    static final int OFF_TYPE = 1;
    static final int OFF_STATUS = 2;
    static final int OFF_RESERVED = 3;
    static final int OFF_LENGTH = 4;
    static final int OFF_REQ_ID = 8;
    static final int OFF_RKEY = 12;
    static final int OFF_ADDRESS = 16;

    private Wire() {
    }

    /** Fills {@code h} (capacity {@link #HEADER_LEN}) with one header, ready to be written (position 0). */
    static void encode(ByteBuffer h, byte type, int status, int length, int reqId, int rkey, long address) {
        h.clear();
        h.put(OFF_MAGIC, FRAME_MAGIC)
                .put(OFF_TYPE, type)
                .put(OFF_STATUS, (byte) status)
                .put(OFF_RESERVED, (byte) 0)
                .putInt(OFF_LENGTH, length)
                .putInt(OFF_REQ_ID, reqId)
                .putInt(OFF_RKEY, rkey)
                .putLong(OFF_ADDRESS, address);
    }

    static String typeName(int type) {
        return switch (type) {
            case SEND -> "SEND";
            case READ_REQ -> "READ_REQ";
            case READ_RESP -> "READ_RESP";
            case WRITE -> "WRITE";
            case WRITE_RESP -> "WRITE_RESP";
            case CLOSE -> "CLOSE";
            default -> "type " + type;
        };
    }
}
