package io.azsdp.fabric.shm;

import static io.azsdp.fabric.shm.ShmTestSupport.assumeShmAvailable;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.azsdp.fabric.CompletionHandler;
import io.azsdp.fabric.Endpoint;
import io.azsdp.fabric.FabricOptions;
import io.azsdp.fabric.MemoryRegion;
import io.azsdp.fabric.Opcode;
import io.azsdp.fabric.WcStatus;
import io.azsdp.fabric.shm.ShmTestSupport.Recorder;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** A peer in another JVM is killed with SIGKILL: the survivor must notice within the liveness timeout. */
@Timeout(60)
public class ShmPeerDeathTest {
    private static final int LIVENESS_MS = 1000;

    private static FabricOptions options() {
        return new FabricOptions(4096, 4, 4, 10_000, LIVENESS_MS);
    }

    /** The child: connects, sends one message, says READY, then waits to be killed. */
    public static void main(String[] args) throws Exception {
        SocketChannel ch = SocketChannel.open(new InetSocketAddress(InetAddress.getLoopbackAddress(),
                Integer.parseInt(args[0])));
        Endpoint ep = new ShmFabric().connect(ch, options());
        ep.setHandler(new CompletionHandler() {
            @Override
            public void onCompletion(int opcode, long wrId, int byteLen, int status) {
            }

            @Override
            public void onDisconnect(IOException cause) {
            }
        });
        MemoryRegion r = ep.register(ByteBuffer.allocateDirect(4096));
        ep.postRecv(1, r, 0, 4096);
        ep.start();
        ep.postSend(1, r, 0, 123);
        System.out.println("READY " + r.address() + " " + r.rkey());
        System.out.flush();
        Thread.sleep(50_000);
        System.exit(3);
    }

    @Test
    void killedPeerIsReportedWithinTheLivenessTimeout() throws Exception {
        assumeShmAvailable();
        try (ServerSocketChannel ss = ServerSocketChannel.open()) {
            ss.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            int port = ((InetSocketAddress) ss.getLocalAddress()).getPort();
            String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
            String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
            Process child = new ProcessBuilder(java, "-Xmx64m", "-XX:TieredStopAtLevel=1", "-cp", cp,
                    ShmPeerDeathTest.class.getName(), String.valueOf(port)).redirectErrorStream(true).start();
            try {
                SocketChannel ch = ss.accept();
                Endpoint ep = new ShmFabric().accept(ch, options());
                Recorder h = new Recorder();
                ep.setHandler(h);
                MemoryRegion rx = ep.register(ByteBuffer.allocateDirect(4096));
                ep.postRecv(10, rx, 0, 4096);
                ep.postRecv(11, rx, 0, 4096);
                ep.start();
                h.expect(Opcode.RECV, 10, 123, WcStatus.SUCCESS);

                CompletableFuture<String> ready = CompletableFuture.supplyAsync(() -> {
                    try {
                        BufferedReader out = new BufferedReader(new InputStreamReader(child.getInputStream(),
                                StandardCharsets.UTF_8));
                        for (String line; (line = out.readLine()) != null; ) {
                            if (line.startsWith("READY")) {
                                return line;
                            }
                            System.out.println("child: " + line);
                        }
                        return "EOF";
                    } catch (IOException e) {
                        return e.toString();
                    }
                });
                String[] line = ready.get(30, TimeUnit.SECONDS).split(" ");
                assertEquals("READY", line[0]);
                MemoryRegion local = ep.register(ByteBuffer.allocateDirect(16));
                ep.postRead(20, local, 0, 16, Long.parseLong(line[1]), Integer.parseInt(line[2]));
                h.expect(Opcode.READ, 20, 16, WcStatus.SUCCESS); // a READ from the child's memory works

                Thread.sleep(2 * LIVENESS_MS); // an idle live peer is not declared dead
                assertTrue(ep.isOpen());
                assertFalse(h.disconnect.isDone());

                long t0 = System.nanoTime();
                child.destroyForcibly();
                IOException cause = h.disconnect.get(LIVENESS_MS + 2_000, TimeUnit.MILLISECONDS);
                long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
                assertTrue(cause != null && cause.getMessage().contains("shm peer process " + child.pid() + " died"),
                        String.valueOf(cause));
                System.out.println("shm: killed peer reported after " + ms + " ms (liveness timeout " + LIVENESS_MS
                        + " ms)");
                h.expect(Opcode.RECV, 11, 0, WcStatus.FLUSH_ERR);
                assertFalse(ep.isOpen());
                assertThrows(IOException.class, () -> ep.postSend(1, rx, 0, 1));
            } finally {
                child.destroyForcibly();
                child.waitFor(10, TimeUnit.SECONDS);
            }
        }
    }
}
