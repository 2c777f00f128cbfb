package io.azsdp.fabric.shm;

import static io.azsdp.fabric.shm.ShmTestSupport.options;
import static io.azsdp.fabric.shm.ShmTestSupport.pair;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.azsdp.fabric.MemoryRegion;
import io.azsdp.fabric.Opcode;
import io.azsdp.fabric.WcStatus;
import io.azsdp.fabric.shm.ShmTestSupport.Pair;
import io.azsdp.fabric.shm.ShmTestSupport.Recorder;
import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The doorbell of a consumer that sleeps "deferring": a deferrable SEND leaves it alone, any other SEND rings it, and a
 * local thread that starts waiting for the peer ends the deferral and rings it (deferred SENDs may be in the ring).
 * The client's progress thread is not started, so the test plays the sleeping consumer of ring 0 itself.
 */
@Timeout(30)
class ShmDeferrableSendTest {
    @Test
    void deferrableSendsWakeOnlyAConsumerThatDoesNotDefer() throws Exception {
        try (Pair p = pair(options(1024, 4, 4))) {
            Recorder server = new Recorder();
            p.server().setHandler(server);
            p.client().setHandler(new Recorder());
            p.server().start();
            ShmSegment seg = ((ShmEndpoint) p.server()).segment();
            int ctl = seg.layout.ctlOffset[0]; // ring 0 carries the server's SENDs to the client
            int sleeping = ctl + ShmSegment.CTL_SLEEPING;
            int doorbell = ctl + ShmSegment.CTL_DOORBELL;
            MemoryRegion tx = p.server().register(ByteBuffer.allocateDirect(64));

            ShmSegment.INT.setVolatile(seg.buf, sleeping, ShmRing.ASLEEP_DEFERRING);
            int bell = (int) ShmSegment.INT.getVolatile(seg.buf, doorbell);
            p.server().postSendDeferrable(1, tx, 0, 16);
            assertEquals(bell, (int) ShmSegment.INT.getVolatile(seg.buf, doorbell), "a deferrable SEND rang");
            p.server().postSend(2, tx, 0, 16);
            assertEquals(bell + 1, (int) ShmSegment.INT.getVolatile(seg.buf, doorbell), "a plain SEND did not ring");

            ShmSegment.INT.setVolatile(seg.buf, sleeping, ShmRing.ASLEEP);
            p.server().postSendDeferrable(3, tx, 0, 16);
            assertEquals(bell + 2, (int) ShmSegment.INT.getVolatile(seg.buf, doorbell),
                    "a deferrable SEND did not ring a consumer that does not defer");

            ShmSegment.INT.setVolatile(seg.buf, sleeping, ShmRing.ASLEEP_DEFERRING);
            p.client().waitingForPeer(true);
            assertEquals(ShmRing.ASLEEP, (int) ShmSegment.INT.getVolatile(seg.buf, sleeping));
            assertEquals(bell + 3, (int) ShmSegment.INT.getVolatile(seg.buf, doorbell), "the waiter did not ring");
            p.client().waitingForPeer(false);

            ShmSegment.INT.setVolatile(seg.buf, sleeping, ShmRing.AWAKE);
            p.client().waitingForPeer(true);
            p.client().waitingForPeer(false);
            assertEquals(bell + 3, (int) ShmSegment.INT.getVolatile(seg.buf, doorbell), "rang an awake consumer");
            for (int wr = 1; wr <= 3; wr++) {
                server.expect(Opcode.SEND, wr, 16, WcStatus.SUCCESS);
            }
        }
    }
}
