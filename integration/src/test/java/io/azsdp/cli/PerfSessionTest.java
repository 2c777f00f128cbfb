package io.azsdp.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.azsdp.cli.bench.Payload;
import io.azsdp.cli.bench.Sender;
import io.azsdp.config.AzSdpConfig;
import io.azsdp.sdp.TransferMode;
import io.azsdp.socket.AzSdpServerSocket;
import io.azsdp.socket.AzSdpSocket;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.Properties;
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

    /** Over AZ-SDP the server writes with the client's transfer mode, not its own default: bibw measures one mode. */
    @Test
    void theServerTakesTheClientsTransferMode() throws Exception {
        AtomicReference<Throwable> serverFailure = new AtomicReference<>();
        AtomicReference<AzSdpSocket> accepted = new AtomicReference<>();
        Properties p = new Properties();
        p.setProperty(AzSdpConfig.FABRIC, "tcp");
        p.setProperty(AzSdpConfig.MODE, "auto");
        try (AzSdpServerSocket server = new AzSdpServerSocket(AzSdpConfig.load(p))) {
            server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            Thread t = new Thread(() -> {
                try (AzSdpSocket s = (AzSdpSocket) server.accept(); Link link = Link.of(s)) {
                    accepted.set(s);
                    PerfSession.serve(link);
                } catch (Throwable e) {
                    serverFailure.set(e);
                }
            }, "perf-server");
            t.start();
            p.setProperty(AzSdpConfig.MODE, "bcopy");
            AzSdpSocket client = new AzSdpSocket(AzSdpConfig.load(p));
            client.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), server.getLocalPort()));
            try (Link link = Link.of(client)) {
                Sender s = new Sender(link, new Payload(link, 10_000, 1, false), 10, true);
                assertTrue(s.stream(0) > 0);
                assertEquals(TransferMode.BCOPY, accepted.get().connection().mode());
            }
            t.join(10_000);
        }
        if (serverFailure.get() != null) {
            throw new AssertionError("server failed", serverFailure.get());
        }
    }
}
