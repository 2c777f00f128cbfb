package io.azsdp.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.azsdp.config.AzSdpConfig;
import io.azsdp.socket.AzSdpSocket;
import java.io.EOFException;
import java.io.IOException;
import java.net.SocketTimeoutException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The peer JVM is killed with SIGKILL in the middle of a transfer, while it is sending (our reader is busy or blocked)
 * and while it is receiving (our writer is blocked: in zcopy waiting for RdmaRdCompl, in bcopy waiting for credits;
 * our reader blocked as well). Every blocked or busy thread of ours must get an IOException, never a timeout, an end
 * of stream or wrong data, within {@code azsdp.liveness.timeoutMs} plus a margin; the broken socket closes promptly;
 * and this JVM then opens a new connection to a fresh peer and moves data both ways (nothing is wedged).
 *
 * <p>{@code SO_TIMEOUT} is 0 on the victim connection, so only the engine can release the blocked threads.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class PeerKillTest extends MultiJvmTestBase {
    /** Allowed on top of the liveness bound (two busy cores, JIT, GC). */
    private static final long MARGIN_MS = 3000;

    enum Victim {
        /** The peer streams to us; we read with random sizes and paths; killed after 64 MiB. */
        SENDING("auto"),
        /** We stream to the peer in zcopy; it stops reading; our writer waits for RdmaRdCompl, our reader for data. */
        RECEIVING_ZCOPY("zcopy"),
        /** Same with bcopy: our writer waits for credits. */
        RECEIVING_BCOPY("bcopy");

        final String ourMode;

        Victim(String ourMode) {
            this.ourMode = ourMode;
        }
    }

    static Stream<Arguments> cases() {
        Stream.Builder<Arguments> b = Stream.builder();
        for (String fabric : new String[] {"shm", "tcp"}) {
            for (Victim v : Victim.values()) {
                b.add(Arguments.of(fabric, v));
            }
        }
        return b.build();
    }

    @ParameterizedTest(name = "{0}: peer killed while {1}")
    @MethodSource("cases")
    void survivorGetsIoExceptionAndStaysUsable(String fabric, Victim victim) throws Exception {
        assumeFabric(fabric);
        String what = fabric + "/kill-" + victim;
        Peer peer = startServer("victim-" + fabric + "-" + victim, peerProps(AzSdpConfig.MODE, "auto"));
        AzSdpConfig cfg = config(AzSdpConfig.FABRIC, fabric, AzSdpConfig.MODE, victim.ourMode);
        AzSdpSocket s = connect(cfg, peer.port());
        assertEquals(fabric, s.fabricName());
        s.setSoTimeout(0);
        long seed = System.nanoTime();
        AtomicLong rxBytes = new AtomicLong();
        AtomicLong txBytes = new AtomicLong();
        List<Task<?>> blocked = new ArrayList<>();
        Task<Traffic.Result> rx;
        Task<Traffic.Result> tx = null;

        if (victim == Victim.SENDING) {
            new Job(Job.SOURCE, 0, seed, 0, 0, Traffic.MAX_MESSAGE).writeTo(s);
            rx = start(what + "-rx", () -> Traffic.receive(s, seed + 1, Traffic.FOREVER, Traffic.MAX_MESSAGE,
                    Traffic.MAX_MESSAGE, rxBytes));
            blocked.add(rx);
            awaitCondition(what + ": 64 MiB received", Duration.ofSeconds(30), () -> rxBytes.get() >= 64L << 20
                    || rx.result.isDone());
            assertFalse(rx.result.isDone(), () -> "reader ended before the kill: " + rx.failure());
        } else {
            long stallAfter = 8L << 20;
            new Job(Job.SINK_STALL, 0, seed, stallAfter, 0, Traffic.MAX_MESSAGE).writeTo(s);
            tx = start(what + "-tx", () -> Traffic.send(s, seed, Traffic.FOREVER, Traffic.MAX_MESSAGE, txBytes));
            rx = start(what + "-rx", () -> Traffic.receive(s, seed + 1, Traffic.FOREVER, Traffic.MAX_MESSAGE,
                    Traffic.MAX_MESSAGE, rxBytes));
            blocked.add(tx);
            blocked.add(rx);
            peer.awaitLine("STALLED", Duration.ofSeconds(30));
            String writerAt = awaitBlocked(what, tx, txBytes, peer);
            String readerAt = awaitBlocked(what, rx, rxBytes, peer);
            log("%s: before the kill the writer waits in %s after %s, the reader in %s", what, writerAt,
                    Traffic.mib(txBytes.get()), readerAt);
            assertEquals(victim == Victim.RECEIVING_ZCOPY ? "SdpConnection.awaitAdvertsDone"
                    : "SdpConnection.awaitWritable", writerAt, "where the blocked writer waits");
            assertEquals("ConnectionWaits.awaitReadable", readerAt, "where the blocked reader waits");
            if (victim == Victim.RECEIVING_ZCOPY) {
                assertTrue(Traffic.stats(s).srcAvailsSent() > 0, "zcopy writer advertised nothing");
                assertEquals(0, Traffic.stats(s).bcopyBytesSent(), "zcopy writer sent buffered copy");
            }
        }

        long killedAt = System.nanoTime();
        peer.kill();
        log("%s: peer %s killed (SIGKILL) after %s received, %s sent", what, peer, Traffic.mib(rxBytes.get()),
                Traffic.mib(txBytes.get()));
        // Bounded well beyond the assertion below, so a late release is measured and a hang is dumped.
        awaitDone(what + ": after the kill", Duration.ofMillis(LIVENESS_MS + MARGIN_MS + 10_000), blocked, List.of(peer));
        for (Task<?> t : blocked) {
            Throwable e = t.failure();
            assertNotNull(e, t.name + " ended without an exception");
            long ms = TimeUnit.NANOSECONDS.toMillis(t.endNanos - killedAt);
            log("%s: %s released after %d ms by %s", what, t.name, ms, e);
            if (!(e instanceof IOException) || e instanceof SocketTimeoutException || e instanceof EOFException
                    || e instanceof Traffic.CorruptStreamException) {
                fail(t.name + ": expected an IOException reporting the broken connection, got " + e, e);
            }
            assertTrue(ms <= LIVENESS_MS + MARGIN_MS, t.name + " released " + ms + " ms after the kill, more than "
                    + "azsdp.liveness.timeoutMs=" + LIVENESS_MS + " + " + MARGIN_MS + " ms");
        }

        // The broken socket closes promptly, and further calls fail at once.
        Task<Void> close = start(what + "-close", () -> {
            s.close();
            return null;
        });
        awaitAll(what + " close", Duration.ofSeconds(LIVENESS_MS / 1000 + 10), null, List.of(), List.of(close));
        close.get();

        // Nothing is wedged: a fresh peer, a new connection on the same fabric, data both ways.
        Peer fresh = startServer("fresh-" + fabric, peerProps(AzSdpConfig.MODE, "auto"));
        streamBothWays(what + "-after", fresh, fresh.port(), cfg,
                Side.of(config(AzSdpConfig.FABRIC, fabric)), 1, 16L << 20,
                Traffic.MAX_MESSAGE, Duration.ofSeconds(60));
        fresh.close();
    }

    /**
     * SIGKILL while 64 connections stream both ways at once (mixed paths, mode auto): all 128 of our threads, each
     * busy or blocked in a read or a write, get an IOException within the bound, and we can connect again.
     */
    @ParameterizedTest(name = "{0}: peer killed under 64 busy connections")
    @org.junit.jupiter.params.provider.ValueSource(strings = {"shm", "tcp"})
    void killedUnderLoad(String fabric) throws Exception {
        assumeFabric(fabric);
        String what = fabric + "/kill-under-load";
        int connections = 64;
        int maxMessage = 1 << 20;
        Peer peer = startServer("victim-" + fabric + "-load", peerProps(AzSdpConfig.MODE, "auto"));
        AzSdpConfig cfg = config(AzSdpConfig.FABRIC, fabric, AzSdpConfig.MODE, "auto");
        List<Task<AzSdpSocket>> connects = new ArrayList<>();
        for (int i = 0; i < connections; i++) {
            connects.add(start(what + "-connect-" + i, () -> connect(cfg, peer.port())));
        }
        awaitAll(what + " connect", Duration.ofSeconds(60), null, List.of(peer), connects);
        AtomicLong moved = new AtomicLong();
        List<Task<?>> busy = new ArrayList<>();
        long seed = System.nanoTime();
        for (int i = 0; i < connections; i++) {
            AzSdpSocket s = connects.get(i).get();
            s.setSoTimeout(0);
            Job job = new Job(Job.STREAM, i, seed + 2L * i, Long.MAX_VALUE, Long.MAX_VALUE, maxMessage);
            job.writeTo(s);
            busy.add(start(what + "-tx-" + i, () -> Traffic.send(s, job.clientSeed(), Traffic.FOREVER, maxMessage,
                    moved)));
            busy.add(start(what + "-rx-" + i, () -> Traffic.receive(s, job.peerSeed(), Traffic.FOREVER, maxMessage,
                    maxMessage, moved)));
        }
        awaitCondition(what + ": 256 MiB moved", Duration.ofSeconds(60), () -> moved.get() >= 256L << 20
                || busy.stream().anyMatch(t -> t.result.isDone()));
        for (Task<?> t : busy) {
            assertFalse(t.result.isDone(), () -> t.name + " ended before the kill: " + t.failure());
        }
        long killedAt = System.nanoTime();
        peer.kill();
        log("%s: peer %s killed (SIGKILL) after %s moved", what, peer, Traffic.mib(moved.get()));
        awaitDone(what + ": after the kill", Duration.ofMillis(LIVENESS_MS + MARGIN_MS + 10_000), busy, List.of(peer));
        long worst = 0;
        for (Task<?> t : busy) {
            Throwable e = t.failure();
            assertNotNull(e, t.name + " ended without an exception");
            if (!(e instanceof IOException) || e instanceof SocketTimeoutException || e instanceof EOFException
                    || e instanceof Traffic.CorruptStreamException) {
                fail(t.name + ": expected an IOException reporting the broken connection, got " + e, e);
            }
            worst = Math.max(worst, TimeUnit.NANOSECONDS.toMillis(t.endNanos - killedAt));
        }
        log("%s: all %d threads released, the last after %d ms", what, busy.size(), worst);
        assertTrue(worst <= LIVENESS_MS + MARGIN_MS, "a thread was released " + worst + " ms after the kill, more "
                + "than azsdp.liveness.timeoutMs=" + LIVENESS_MS + " + " + MARGIN_MS + " ms");

        List<Task<Void>> closes = new ArrayList<>();
        for (Task<AzSdpSocket> c : connects) {
            closes.add(start(c.name + "-close", () -> {
                c.get().close();
                return null;
            }));
        }
        awaitAll(what + " close", Duration.ofSeconds(LIVENESS_MS / 1000 + 10), null, List.of(), closes);

        Peer fresh = startServer("fresh-" + fabric, peerProps(AzSdpConfig.MODE, "auto"));
        streamBothWays(what + "-after", fresh, fresh.port(), cfg,
                Side.of(config(AzSdpConfig.FABRIC, fabric)), 8, 4L << 20, maxMessage,
                Duration.ofSeconds(60));
        fresh.close();
    }
}
