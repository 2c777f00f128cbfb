package io.azsdp.cli.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.azsdp.cli.Link;
import io.azsdp.cli.PerfSession;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The harness never reports a figure it could not verify and never waits for a hung transport: a server that lies
 * about the checksum (or, with {@code --verify=bytes}, the byte count) fails the figure, one that never answers has
 * it aborted by the watchdog.
 */
class FigureRunnerTest {
    private static final Figure.Key KEY = new Figure.Key("bw", new Transport("javatcp", "socket"), 4096, 1);

    private ServerSocket server;
    private Connections connections;
    private final AtomicInteger requestedTest = new AtomicInteger();

    @BeforeEach
    void listen() throws IOException {
        server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
        connections = new Connections(new Endpoints("127.0.0.1", 0, server.getLocalPort(), 0));
    }

    @AfterEach
    void close() throws IOException {
        connections.abortAll();
        server.close();
    }

    /**
     * Accepts one connection, reads one bw request and its payload, then answers (or not) with CRC 0 (wrong) and
     * {@code missing} bytes fewer than it read.
     */
    private void fakeServer(boolean answer, int missing) {
        Thread t = new Thread(() -> {
            try (Socket s = server.accept()) {
                DataInputStream in = new DataInputStream(s.getInputStream());
                assertEquals(PerfSession.MAGIC, in.readInt());
                requestedTest.set(in.readInt());
                int size = in.readInt();
                long count = in.readLong();
                in.readInt(); // the client's transfer mode
                in.readNBytes((int) (size * count));
                if (answer) {
                    new DataOutputStream(s.getOutputStream()).writeLong(size * count - missing);
                    new DataOutputStream(s.getOutputStream()).writeLong(0);
                }
                in.read(); // until the client goes away
            } catch (IOException e) {
                // the client reset the connection: expected
            }
        }, "fake-server");
        t.setDaemon(true);
        t.start();
    }

    private List<Figure> runOneFigure(Duration timeout) {
        return runOneFigure(timeout, true);
    }

    private List<Figure> runOneFigure(Duration timeout, boolean checksum) {
        FigureRunner runner = new FigureRunner(timeout, connections);
        runner.run(KEY, () -> {
            Link link = connections.link(KEY.t());
            Sender s = new Sender(link, new Payload(link, 4096, 1, false), 16, checksum);
            return List.of(Figure.ok(KEY, "bw", s.bytes() / (double) s.stream(0), "GB/s", ""));
        });
        assertFalse(runner.allOk());
        return runner.figures();
    }

    @Test
    void aWrongChecksumFailsTheFigure() {
        fakeServer(true, 0);
        List<Figure> f = runOneFigure(Duration.ofSeconds(20));
        assertEquals(PerfSession.TEST_BW, requestedTest.get());
        assertEquals(1, f.size());
        assertTrue(f.get(0).note().contains("VerificationException"), f.get(0).note());
        assertTrue(f.get(0).line().startsWith("FAILED test=bw fabric=javatcp mode=socket size=4096 conns=1 reason="),
                f.get(0).line());
    }

    @Test
    void withoutChecksumAMissingByteStillFailsTheFigure() {
        fakeServer(true, 1);
        List<Figure> f = runOneFigure(Duration.ofSeconds(20), false);
        assertEquals(PerfSession.TEST_BW | PerfSession.NO_CHECKSUM, requestedTest.get());
        assertEquals(1, f.size());
        assertTrue(f.get(0).note().contains("server received 65535 bytes"), f.get(0).note());
    }

    @Test
    void aServerThatNeverAnswersIsAbortedByTheWatchdog() {
        fakeServer(false, 0);
        long t0 = System.nanoTime();
        List<Figure> f = runOneFigure(Duration.ofSeconds(1));
        assertTrue(System.nanoTime() - t0 < Duration.ofSeconds(5).toNanos(), "the figure was not aborted in time");
        assertEquals(1, f.size());
        assertTrue(f.get(0).note().startsWith("timed out after 1 s"), f.get(0).note());
        assertFalse(f.get(0).note().contains("still blocked"), "the reset did not unblock the figure: " + f.get(0));
    }
}
