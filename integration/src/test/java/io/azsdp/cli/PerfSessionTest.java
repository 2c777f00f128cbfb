package io.azsdp.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.azsdp.cli.bench.Payload;
import io.azsdp.cli.bench.Sender;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/** The benchmark server against the benchmark client over a plain socket: both verification levels pass. */
class PerfSessionTest {
    @Test
    void streamsVerifyWithAndWithoutTheChecksum() throws Exception {
        AtomicReference<Throwable> serverFailure = new AtomicReference<>();
        try (ServerSocket server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            Thread t = new Thread(() -> {
                try (Socket s = server.accept(); Link link = Link.of(s)) {
                    PerfSession.serve(link);
                } catch (Throwable e) {
                    serverFailure.set(e);
                }
            }, "perf-server");
            t.start();
            try (Link link = Link.of(new Socket(InetAddress.getLoopbackAddress(), server.getLocalPort()))) {
                Payload p = new Payload(link, 10_000, 1, false);
                for (boolean checksum : new boolean[] {true, false, true}) {
                    Sender s = new Sender(link, p, 100, checksum);
                    assertTrue(s.stream(0) > 0);
                    assertEquals(1_000_000, s.bytes());
                }
            }
            t.join(10_000);
        }
        if (serverFailure.get() != null) {
            throw new AssertionError("server failed", serverFailure.get());
        }
    }
}
