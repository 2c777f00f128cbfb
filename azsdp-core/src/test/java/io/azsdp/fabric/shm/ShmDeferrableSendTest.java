package io.azsdp.fabric.shm;

import static io.azsdp.fabric.shm.ShmTestSupport.options;
import static io.azsdp.fabric.shm.ShmTestSupport.pair;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
 * In the first test the client's progress thread is not started, so the test plays the sleeping consumer of ring 0
 * itself. A posted receive rings only a progress thread that waits for one, and no producer rings a consumer whose
 * application thread polls.
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

    @Test
    void aPostedReceiveRingsOnlyAProgressThreadWaitingForOne() throws Exception {
        try (Pair p = pair(options(1024, 4, 4))) {
            Recorder server = new Recorder();
            p.server().setHandler(server);
            p.client().setHandler(new Recorder());
            p.server().start();
            p.client().start();
            ShmSegment seg = ((ShmEndpoint) p.server()).segment();
            int ctl = seg.layout.ctlOffset[1]; // ring 1 carries the client's SENDs to the server
            int sleeping = ctl + ShmSegment.CTL_SLEEPING;
            int doorbell = ctl + ShmSegment.CTL_DOORBELL;
            MemoryRegion rx = p.server().register(ByteBuffer.allocateDirect(4 * 64));
            MemoryRegion tx = p.client().register(ByteBuffer.allocateDirect(64));

            // Asleep for want of data: a receive changes nothing for it, so it is not woken.
            awaitAsleep(seg, sleeping);
            int bell = (int) ShmSegment.INT.getVolatile(seg.buf, doorbell);
            p.server().postRecv(1, rx, 0, 64);
            assertEquals(bell, (int) ShmSegment.INT.getVolatile(seg.buf, doorbell), "rang a thread waiting for data");
            p.client().postSend(10, tx, 0, 16);
            server.expect(Opcode.RECV, 1, 16, WcStatus.SUCCESS);

            // Asleep with a message and no receive for it: the receive is what it waits for.
            p.client().postSend(11, tx, 0, 32);
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (!((ShmEndpoint) p.server()).awaitingRecv()) {
                assertTrue(System.nanoTime() < deadline, "the progress thread never waited for a receive");
                Thread.sleep(1);
            }
            bell = (int) ShmSegment.INT.getVolatile(seg.buf, doorbell);
            p.server().postRecv(2, rx, 64, 64);
            assertEquals(bell + 1, (int) ShmSegment.INT.getVolatile(seg.buf, doorbell),
                    "did not ring the thread waiting for a receive");
            server.expect(Opcode.RECV, 2, 32, WcStatus.SUCCESS);
        }
    }

    /**
     * While an application thread of the consumer polls, producers do not ring its sleeping progress thread; the poller
     * rings it when it stops and finds records left. The client's progress thread is not started: the test plays it.
     */
    @Test
    void aPollingConsumerIsNotRungAndItsPollerRingsForWhatIsLeft() throws Exception {
        try (Pair p = pair(options(1024, 4, 4))) {
            Recorder server = new Recorder();
            p.server().setHandler(server);
            p.client().setHandler(new Recorder());
            p.server().start();
            ShmSegment seg = ((ShmEndpoint) p.server()).segment();
            int ctl = seg.layout.ctlOffset[0]; // ring 0 carries the server's SENDs to the client
            int sleeping = ctl + ShmSegment.CTL_SLEEPING;
            int doorbell = ctl + ShmSegment.CTL_DOORBELL;
            ShmRing consumer = new ShmRing(seg, 0);
            MemoryRegion tx = p.server().register(ByteBuffer.allocateDirect(64));

            ShmSegment.INT.setVolatile(seg.buf, sleeping, ShmRing.ASLEEP);
            consumer.beginPolling();
            int bell = (int) ShmSegment.INT.getVolatile(seg.buf, doorbell);
            p.server().postSend(1, tx, 0, 16);
            assertEquals(bell, (int) ShmSegment.INT.getVolatile(seg.buf, doorbell), "rang while a poller polled");
            assertTrue(consumer.endPolling(), "the poller did not see the record nobody rang for");
            p.server().postSend(2, tx, 0, 16);
            assertEquals(bell + 1, (int) ShmSegment.INT.getVolatile(seg.buf, doorbell), "no ring after the poller");

            ShmSegment.INT.setVolatile(seg.buf, sleeping, ShmRing.AWAKE);
            consumer.beginPolling();
            assertFalse(consumer.endPolling(), "an awake consumer needs no ring");
            server.expect(Opcode.SEND, 1, 16, WcStatus.SUCCESS);
            server.expect(Opcode.SEND, 2, 16, WcStatus.SUCCESS);
        }
    }

    /** Until the server's progress thread sleeps on its doorbell (after its spin). */
    private static void awaitAsleep(ShmSegment seg, int sleeping) throws InterruptedException {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while ((int) ShmSegment.INT.getVolatile(seg.buf, sleeping) == ShmRing.AWAKE) {
            assertTrue(System.nanoTime() < deadline, "the progress thread never slept");
            Thread.sleep(1);
        }
    }
}
