package io.azsdp.fabric.tcp;

import io.azsdp.fabric.FabricException;
import io.azsdp.fabric.MemoryRegion;
import io.azsdp.fabric.Opcode;
import io.azsdp.fabric.WcStatus;
import io.azsdp.fabric.tcp.TcpTestSupport.Completion;
import io.azsdp.fabric.tcp.TcpTestSupport.RawPeer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;

import static io.azsdp.fabric.tcp.TcpTestSupport.options;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The provider against a hand-written peer: wire format checks and malformed input. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class TcpProtocolTest {

    enum Malformed {
        UNKNOWN_TYPE("unknown frame type 99"),
        BAD_MAGIC("bad frame header"),
        NEGATIVE_LENGTH("negative length"),
        HUGE_SEND("exceeds the announced maxMessageSize"),
        HUGE_SEND_WITH_RECV_POSTED("exceeds the announced maxMessageSize"),
        UNSOLICITED_READ_RESP("unknown reqId"),
        UNSOLICITED_WRITE_RESP("unknown reqId"),
        STATUS_ON_SEND("status"),
        CLOSE_WITH_LENGTH("CLOSE frame with length"),
        FRAME_AFTER_CLOSE("after CLOSE"),
        TRUNCATED_HEADER("connection reset by peer");

        final String message;

        Malformed(String message) {
            this.message = message;
        }
    }

    @ParameterizedTest
    @EnumSource(Malformed.class)
    void malformedInputBreaksTheConnectionWithAClearError(Malformed kind) throws Exception {
        try (RawPeer peer = new RawPeer(options(4096))) {
            MemoryRegion r = peer.endpoint.register(ByteBuffer.allocateDirect(8192));
            if (kind == Malformed.HUGE_SEND_WITH_RECV_POSTED) {
                peer.endpoint.postRecv(1, r, 0, 8192);
            }
            switch (kind) {
                case UNKNOWN_TYPE -> peer.writeFrame(99, 0, 0, 0, 0, 0);
                case BAD_MAGIC -> peer.write(ByteBuffer.wrap(new byte[Wire.HEADER_LEN]));
                case NEGATIVE_LENGTH -> peer.writeFrame(Wire.SEND, 0, -5, 0, 0, 0);
                case HUGE_SEND, HUGE_SEND_WITH_RECV_POSTED -> peer.writeFrame(Wire.SEND, 0, Integer.MAX_VALUE, 0, 0, 0);
                case UNSOLICITED_READ_RESP -> peer.writeFrame(Wire.READ_RESP, 0, 16, 77, 0, 0);
                case UNSOLICITED_WRITE_RESP -> peer.writeFrame(Wire.WRITE_RESP, 0, 0, 77, 0, 0);
                case STATUS_ON_SEND -> peer.writeFrame(Wire.SEND, 3, 0, 0, 0, 0);
                case CLOSE_WITH_LENGTH -> peer.writeFrame(Wire.CLOSE, 0, 8, 0, 0, 0);
                case FRAME_AFTER_CLOSE -> {
                    peer.writeFrame(Wire.CLOSE, 0, 0, 0, 0, 0);
                    peer.writeFrame(Wire.SEND, 0, 0, 0, 0, 0);
                }
                case TRUNCATED_HEADER -> {
                    peer.write(ByteBuffer.wrap(new byte[] {Wire.FRAME_MAGIC, Wire.SEND, 0}));
                    peer.raw.shutdownOutput();
                }
            }
            IOException cause = peer.events.awaitDisconnect();
            assertNotNull(cause, kind.name());
            assertTrue(cause.getMessage().contains(kind.message), kind + ": " + cause.getMessage());
            if (kind != Malformed.TRUNCATED_HEADER) {
                assertEquals(WcStatus.TRANSPORT_ERR, assertInstanceOf(FabricException.class, cause).status());
            }
            if (kind == Malformed.HUGE_SEND_WITH_RECV_POSTED) {
                assertEquals(new Completion(Opcode.RECV, 1, 0, WcStatus.FLUSH_ERR), peer.events.next());
            }
            assertFalse(peer.endpoint.isOpen());
            peer.events.assertSingleDisconnect();
        }
    }

    /** Checks the frames the provider writes, and that a response that does not match its request is fatal. */
    @Test
    void readResponseOfTheWrongLengthIsAProtocolViolation() throws Exception {
        try (RawPeer peer = new RawPeer(options(4096))) {
            MemoryRegion r = peer.endpoint.register(ByteBuffer.allocateDirect(64));
            peer.endpoint.postRead(5, r, 8, 32, 0x1_0000_0010L, 0x1234);
            ByteBuffer h = peer.readHeader();
            assertEquals(Wire.FRAME_MAGIC, h.get(Wire.OFF_MAGIC));
            assertEquals(Wire.READ_REQ, h.get(Wire.OFF_TYPE));
            assertEquals(32, h.getInt(Wire.OFF_LENGTH));
            assertEquals(0x1234, h.getInt(Wire.OFF_RKEY));
            assertEquals(0x1_0000_0010L, h.getLong(Wire.OFF_ADDRESS));
            int reqId = h.getInt(Wire.OFF_REQ_ID);

            peer.writeFrame(Wire.READ_RESP, 0, 31, reqId, 0, 0);
            try {
                peer.write(ByteBuffer.allocate(31));
            } catch (IOException reset) {
                // the header alone is enough to condemn the frame: the provider may reset before the payload lands
            }
            IOException cause = peer.events.awaitDisconnect();
            assertTrue(cause.getMessage().contains("carries 31 bytes, expected 32"), cause.getMessage());
            assertEquals(new Completion(Opcode.READ, 5, 0, WcStatus.FLUSH_ERR), peer.events.next());
        }
    }

    /** Serving a raw peer's READ_REQ and WRITE; a rejected WRITE's payload is skipped and the stream stays in sync. */
    @Test
    void servesOneSidedRequestsAndSkipsRejectedPayloads() throws Exception {
        try (RawPeer peer = new RawPeer(options(4096))) {
            ByteBuffer mem = ByteBuffer.allocateDirect(256);
            for (int i = 0; i < 256; i++) {
                mem.put(i, (byte) i);
            }
            MemoryRegion r = peer.endpoint.register(mem);
            MemoryRegion inbox = peer.endpoint.register(ByteBuffer.allocateDirect(64));
            peer.endpoint.postRecv(42, inbox, 0, 64);

            peer.writeFrame(Wire.READ_REQ, 0, 10, 1, r.rkey(), r.address() + 100);
            ByteBuffer h = peer.readHeader();
            assertEquals(Wire.READ_RESP, h.get(Wire.OFF_TYPE));
            assertEquals(WcStatus.SUCCESS, h.get(Wire.OFF_STATUS));
            assertEquals(1, h.getInt(Wire.OFF_REQ_ID));
            assertEquals(10, h.getInt(Wire.OFF_LENGTH));
            ByteBuffer data = peer.readFully(10);
            for (int i = 0; i < 10; i++) {
                assertEquals((byte) (100 + i), data.get(i));
            }

            // Rejected WRITE (wrong key) with a payload, then a SEND: the SEND must still parse.
            peer.writeFrame(Wire.WRITE, 0, 5000, 2, r.rkey() + 1, r.address());
            peer.write(ByteBuffer.allocate(5000));
            peer.writeFrame(Wire.SEND, 0, 3, 0, 0, 0);
            peer.write(ByteBuffer.wrap(new byte[] {7, 8, 9}));
            h = peer.readHeader();
            assertEquals(Wire.WRITE_RESP, h.get(Wire.OFF_TYPE));
            assertEquals(WcStatus.REM_ACCESS_ERR, h.get(Wire.OFF_STATUS));
            assertEquals(2, h.getInt(Wire.OFF_REQ_ID));
            assertEquals(new Completion(Opcode.RECV, 42, 3, WcStatus.SUCCESS), peer.events.next());
            assertEquals(9, inbox.buffer().get(2));
            for (int i = 0; i < 256; i++) {
                assertEquals((byte) i, mem.get(i), "rejected WRITE touched byte " + i);
            }

            // Valid WRITE.
            peer.writeFrame(Wire.WRITE, 0, 4, 3, r.rkey(), r.address() + 252);
            peer.write(ByteBuffer.wrap(new byte[] {-1, -2, -3, -4}));
            h = peer.readHeader();
            assertEquals(Wire.WRITE_RESP, h.get(Wire.OFF_TYPE));
            assertEquals(WcStatus.SUCCESS, h.get(Wire.OFF_STATUS));
            assertEquals(-4, mem.get(255));
            assertEquals((byte) 251, mem.get(251));

            // Rejected READ: answered with REM_ACCESS_ERR and no data. The responder stays up (the requester breaks).
            peer.writeFrame(Wire.READ_REQ, 0, 10, 4, r.rkey(), r.address() + 250);
            h = peer.readHeader();
            assertEquals(Wire.READ_RESP, h.get(Wire.OFF_TYPE));
            assertEquals(WcStatus.REM_ACCESS_ERR, h.get(Wire.OFF_STATUS));
            assertEquals(0, h.getInt(Wire.OFF_LENGTH));
            assertTrue(peer.endpoint.isOpen());
        }
    }
}
