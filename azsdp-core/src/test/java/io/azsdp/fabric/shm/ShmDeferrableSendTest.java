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
import io.azsdp.socket.AzSdpChannel;
import io.azsdp.socket.SocketPair;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Who rings a ring's doorbell. A consumer that sleeps "deferring" is not rung by a deferrable SEND but by any other, and
 * a local thread that starts waiting for the peer ends the deferral and rings it (deferred SENDs may be in the ring). A
 * posted receive rings only a progress thread that waits for one. No producer rings a consumer whose application
 * thread polls. Where the client's progress thread is not started, the test plays the consumer of ring 0 itself.
 */
@Timeout(30)
class ShmDeferrableSendTest {
    @Test
    void deferrableSendsWakeOnlyAConsumerThatDoesNotDefer() throws Exception {
        try (Pair p = pair(options(1024, 4, 4))) {
            Recorder server = startServer(p);
            Ctl ring0 = new Ctl(p, 0);
            MemoryRegion tx = p.server().register(ByteBuffer.allocateDirect(64));

            ring0.sleeping(ShmRing.ASLEEP_DEFERRING);
            int bell = ring0.doorbell();
            p.server().postSendDeferrable(1, tx, 0, 16);
            assertEquals(bell, ring0.doorbell(), "a deferrable SEND rang");
            p.server().postSend(2, tx, 0, 16);
            assertEquals(bell + 1, ring0.doorbell(), "a plain SEND did not ring");

            ring0.sleeping(ShmRing.ASLEEP);
            p.server().postSendDeferrable(3, tx, 0, 16);
            assertEquals(bell + 2, ring0.doorbell(), "a deferrable SEND did not ring a consumer that does not defer");

            ring0.sleeping(ShmRing.ASLEEP_DEFERRING);
            p.client().waitingForPeer(true);
            assertEquals(ShmRing.ASLEEP, ring0.sleeping());
            assertEquals(bell + 3, ring0.doorbell(), "the waiter did not ring");
            p.client().waitingForPeer(false);

            ring0.sleeping(ShmRing.AWAKE);
            p.client().waitingForPeer(true);
            p.client().waitingForPeer(false);
            assertEquals(bell + 3, ring0.doorbell(), "rang an awake consumer");
            for (int wr = 1; wr <= 3; wr++) {
                server.expect(Opcode.SEND, wr, 16, WcStatus.SUCCESS);
            }
        }
    }

    @Test
    void aPostedReceiveRingsOnlyAProgressThreadWaitingForOne() throws Exception {
        try (Pair p = pair(options(1024, 4, 4))) {
            Recorder server = startServer(p);
            p.client().start();
            Ctl ring1 = new Ctl(p, 1);
            MemoryRegion rx = p.server().register(ByteBuffer.allocateDirect(4 * 64));
            MemoryRegion tx = p.client().register(ByteBuffer.allocateDirect(64));

            // Asleep for want of data: a receive changes nothing for it, so it is not woken.
            await(() -> ring1.sleeping() != ShmRing.AWAKE, "the progress thread never slept");
            int bell = ring1.doorbell();
            p.server().postRecv(1, rx, 0, 64);
            assertEquals(bell, ring1.doorbell(), "rang a thread waiting for data");
            p.client().postSend(10, tx, 0, 16);
            server.expect(Opcode.RECV, 1, 16, WcStatus.SUCCESS);

            // Asleep with a message and no receive for it: the receive is what it waits for.
            p.client().postSend(11, tx, 0, 32);
            await(((ShmEndpoint) p.server())::awaitingRecv, "the progress thread never waited for a receive");
            bell = ring1.doorbell();
            p.server().postRecv(2, rx, 64, 64);
            assertEquals(bell + 1, ring1.doorbell(), "did not ring the thread waiting for a receive");
            server.expect(Opcode.RECV, 2, 32, WcStatus.SUCCESS);
        }
    }

    @Test
    void aPollingConsumerIsNotRungAndItsPollerRingsForWhatIsLeft() throws Exception {
        try (Pair p = pair(options(1024, 4, 4))) {
            Recorder server = startServer(p);
            Ctl ring0 = new Ctl(p, 0);
            ShmRing consumer = new ShmRing(ring0.seg(), 0);
            MemoryRegion tx = p.server().register(ByteBuffer.allocateDirect(64));

            ring0.sleeping(ShmRing.ASLEEP);
            consumer.beginPolling();
            int bell = ring0.doorbell();
            p.server().postSend(1, tx, 0, 16);
            assertEquals(bell, ring0.doorbell(), "rang while a poller polled");
            assertTrue(consumer.endPolling(), "the poller did not see the record nobody rang for");
            p.server().postSend(2, tx, 0, 16);
            assertEquals(bell + 1, ring0.doorbell(), "no ring after the poller");

            ring0.sleeping(ShmRing.AWAKE);
            consumer.beginPolling();
            assertFalse(consumer.endPolling(), "an awake consumer needs no ring");
            server.expect(Opcode.SEND, 1, 16, WcStatus.SUCCESS);
            server.expect(Opcode.SEND, 2, 16, WcStatus.SUCCESS);
        }
    }

    /**
     * Through the socket API: an asynchronous write's SrcAvail does not wake the receiver's progress thread while its
     * application is not reading (that reader takes the advert itself, READ straight into its buffer), whereas Data
     * does. Every byte is compared.
     */
    @Test
    void anAsynchronousAdvertWaitsForTheReaderWithoutWakingItsProgressThread() throws Exception {
        try (SocketPair pair = SocketPair.open("shm", "azsdp")) {
            AzSdpChannel out = pair.client.byteChannel();
            AzSdpChannel in = pair.azPeer().byteChannel();
            ByteBuffer[] msgs = new ByteBuffer[3];
            for (int m = 0; m < msgs.length; m++) {
                msgs[m] = ByteBuffer.allocateDirect(64 << 10); // one buffer each: a sent one stays protected
                SocketPair.fill(msgs[m], m);
            }
            out.write(msgs[0]);
            expect(in, msgs[0], 0); // from now on the reader reads into direct buffers
            ShmEndpoint rx = (ShmEndpoint) pair.azPeer().connection().endpoint();
            Ctl ring = new Ctl(rx.segment(), rx.side());
            await(() -> ring.sleeping() == ShmRing.ASLEEP_DEFERRING, "the progress thread never slept");
            int bell = ring.doorbell();
            out.write(msgs[1]); // returns at once: the pages are protected
            out.write(msgs[2]);
            assertEquals(bell, ring.doorbell(), "an asynchronous SrcAvail rang");
            ByteBuffer small = ByteBuffer.allocateDirect(100);
            out.write(small);
            assertEquals(bell + 1, ring.doorbell(), "Data did not ring");
            expect(in, msgs[1], 1);
            expect(in, msgs[2], 2);
            expect(in, small, 3);
        }
    }

    /** Reads as many bytes as {@code want} was written with into a direct buffer and compares them. */
    private static void expect(AzSdpChannel in, ByteBuffer want, int m) throws IOException {
        ByteBuffer got = ByteBuffer.allocateDirect(want.rewind().remaining());
        while (got.hasRemaining()) {
            assertTrue(in.read(got) > 0, "end of stream in message " + m);
        }
        assertEquals(want, got.flip(), "message " + m);
    }

    /** Handlers on both sides, the server started; the server's recorder. */
    private static Recorder startServer(Pair p) {
        Recorder server = new Recorder();
        p.server().setHandler(server);
        p.client().setHandler(new Recorder());
        p.server().start();
        return server;
    }

    private static void await(BooleanSupplier condition, String failure) throws InterruptedException {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (!condition.getAsBoolean()) {
            assertTrue(System.nanoTime() < deadline, failure);
            Thread.sleep(1);
        }
    }

    /** The control words of ring {@code r}: ring 0 carries the server's SENDs to the client, ring 1 the client's. */
    private record Ctl(ShmSegment seg, int r) {
        Ctl(Pair p, int r) {
            this(((ShmEndpoint) p.server()).segment(), r);
        }

        int sleeping() {
            return (int) ShmSegment.INT.getVolatile(seg.buf, seg.layout.ctlOffset[r] + ShmSegment.CTL_SLEEPING);
        }

        void sleeping(int state) {
            ShmSegment.INT.setVolatile(seg.buf, seg.layout.ctlOffset[r] + ShmSegment.CTL_SLEEPING, state);
        }

        int doorbell() {
            return (int) ShmSegment.INT.getVolatile(seg.buf, seg.layout.ctlOffset[r] + ShmSegment.CTL_DOORBELL);
        }
    }
}
