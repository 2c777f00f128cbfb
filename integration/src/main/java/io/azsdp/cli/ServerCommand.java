package io.azsdp.cli;

import io.azsdp.socket.AzSdpServerSocket;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Benchmark server: one AZ-SDP listener (every fabric) and, for the baselines, one plain Java TCP listener (socket
 * streams, heap arrays) and one NIO listener (socket channels, direct buffers).
 */
@Command(name = "server", mixinStandardHelpOptions = true,
        description = "Serve benchmark clients on AZ-SDP and on plain Java TCP; "
                + "prints 'READY azsdp=<port> javatcp=<port> nio=<port>'.")
public final class ServerCommand implements Callable<Integer> {
    @Option(names = "--bind", description = "Address to listen on (default: ${DEFAULT-VALUE}).", defaultValue = "127.0.0.1")
    String bind;

    @Option(names = "--port", description = "AZ-SDP port, 0 for any (default: ${DEFAULT-VALUE}).", defaultValue = "0")
    int port;

    @Option(names = "--javatcp-port", description = "Plain TCP port, 0 for any (default: ${DEFAULT-VALUE}).",
            defaultValue = "0")
    int javaPort;

    @Option(names = "--nio-port", description = "NIO TCP port, 0 for any (default: ${DEFAULT-VALUE}).",
            defaultValue = "0")
    int nioPort;

    @Override
    public Integer call() throws Exception {
        serve(bind, port, javaPort, nioPort);
        return 0;
    }

    /** Listens, prints the READY line and serves until the JVM ends. */
    public static void serve(String bind, int port, int javaPort, int nioPort) throws IOException {
        InetAddress addr = InetAddress.getByName(bind);
        AzSdpServerSocket sdp = new AzSdpServerSocket();
        sdp.bind(new InetSocketAddress(addr, port));
        ServerSocket tcp = new ServerSocket();
        tcp.bind(new InetSocketAddress(addr, javaPort));
        ServerSocketChannel nio = ServerSocketChannel.open().bind(new InetSocketAddress(addr, nioPort));
        daemon("javatcp-accept", () -> acceptLoop(tcp));
        daemon("nio-accept", () -> acceptLoop(nio));
        StallWatchdog.start();
        System.out.println("READY azsdp=" + sdp.getLocalPort() + " javatcp=" + tcp.getLocalPort() + " nio="
                + nio.socket().getLocalPort());
        System.out.flush();
        acceptLoop(sdp);
    }

    private static void daemon(String name, Runnable body) {
        Thread t = new Thread(body, name);
        t.setDaemon(true);
        t.start();
    }

    private static void acceptLoop(ServerSocket server) {
        while (!server.isClosed()) {
            try {
                Socket s = server.accept();
                daemon("bench-" + s.getPort(), () -> serve(s.toString(), () -> Link.of(s)));
            } catch (IOException e) {
                System.err.println("accept failed: " + e.getMessage());
            }
        }
    }

    private static void acceptLoop(ServerSocketChannel server) {
        while (server.isOpen()) {
            try {
                SocketChannel ch = server.accept();
                daemon("bench-nio-" + ch.socket().getPort(), () -> serve(ch.toString(), () -> Link.of(ch)));
            } catch (IOException e) {
                System.err.println("accept failed: " + e.getMessage());
            }
        }
    }

    /** Opens a link; may fail like the socket calls it makes. */
    private interface LinkOpener {
        Link open() throws IOException;
    }

    private static void serve(String name, LinkOpener opener) {
        try (Link link = opener.open()) {
            PerfSession.serve(link);
        } catch (IOException e) {
            System.err.println("session " + name + " failed: " + e);
        }
    }
}
