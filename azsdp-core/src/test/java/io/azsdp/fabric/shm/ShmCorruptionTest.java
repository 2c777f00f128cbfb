package io.azsdp.fabric.shm;

import static io.azsdp.fabric.shm.ShmTestSupport.options;
import static io.azsdp.fabric.shm.ShmTestSupport.pair;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.azsdp.fabric.FabricException;
import io.azsdp.fabric.MemoryRegion;
import io.azsdp.fabric.Opcode;
import io.azsdp.fabric.WcStatus;
import io.azsdp.fabric.shm.ShmTestSupport.Pair;
import io.azsdp.fabric.shm.ShmTestSupport.Recorder;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.stream.Stream;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** A peer that scribbles on the ring must break the connection with a clear error, never crash or over-read. */
@Timeout(30)
class ShmCorruptionTest {

    /** PAD_AT_START is well formed but never sent: skipping it would bring the consumer back to it, for ever. */
    enum Garbage { HUGE_LENGTH, NEGATIVE_LENGTH, BAD_TYPE, SHORT_PAD, PAD_AT_START }

    static Stream<Arguments> cases() {
        return Stream.of(Garbage.values()).flatMap(g -> Stream.of(Arguments.of(g, false), Arguments.of(g, true)));
    }

    /** With {@code inPlace}, the receiver reads messages in the ring (its head then lags its read cursor). */
    @ParameterizedTest
    @MethodSource("cases")
    void malformedRecordBreaksTheReceiver(Garbage garbage, boolean inPlace) throws Exception {
        try (Pair p = pair(options(1024, 4, 4))) {
            Recorder client = new Recorder();
            Recorder server = new Recorder();
            p.client().setHandler(client);
            p.server().setHandler(server);
            if (inPlace) {
                p.client().receiveInPlace();
                p.client().postRecv(1, null, 0, 1024);
            } else {
                MemoryRegion rx = p.client().register(ByteBuffer.allocateDirect(1024));
                p.client().postRecv(1, rx, 0, 1024);
            }
            p.client().start();
            p.server().start();

            // Forge a record in ring 0 (into the client) through the server's mapping of the segment.
            ShmSegment seg = ((ShmEndpoint) p.server()).segment();
            ByteBuffer b = seg.buf;
            int data = seg.layout.dataOffset[0];
            int ctl = seg.layout.ctlOffset[0];
            int cap = seg.layout.ringCapacity[0];
            int length = 16;
            int type = ShmRing.TYPE_MSG;
            switch (garbage) {
                case HUGE_LENGTH -> length = 1 << 29;
                case NEGATIVE_LENGTH -> length = -8;
                case BAD_TYPE -> type = 7;
                case SHORT_PAD -> type = ShmRing.TYPE_PAD;
                case PAD_AT_START -> {
                    type = ShmRing.TYPE_PAD;
                    length = cap - ShmSegment.RECORD_HEADER;
                }
                default -> throw new AssertionError(garbage);
            }
            ShmSegment.LONG.setVolatile(b, data, ShmRing.header(length, type));
            ShmSegment.INT.getAndAdd(b, ctl + ShmSegment.CTL_DOORBELL, 1);
            io.azsdp.nativeio.NativeLib.futexWake(seg.base + ctl + ShmSegment.CTL_DOORBELL, 1);

            client.expect(Opcode.RECV, 1, 0, WcStatus.FLUSH_ERR);
            FabricException e = assertInstanceOf(FabricException.class, client.awaitDisconnect());
            assertEquals(WcStatus.TRANSPORT_ERR, e.status());
            assertTrue(e.getMessage().startsWith("shm ring corrupted by the peer"), e.getMessage());
            assertFalse(p.client().isOpen());
            IOException peer = server.awaitDisconnect();
            assertTrue(peer != null && peer.getMessage().contains("reset"), String.valueOf(peer));
        }
    }
}
