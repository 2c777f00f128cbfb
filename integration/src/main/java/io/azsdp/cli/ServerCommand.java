package io.azsdp.cli;

import io.azsdp.socket.AzSdpServerSocket;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** Benchmark server: one AZ-SDP listener (every fabric) and one plain Java TCP listener for the baseline. */
@Command(name = "server", mixinStandardHelpOptions = true,
        description = "Serve benchmark clients on AZ-SDP and on plain Java TCP; prints 'READY azsdp=<port> javatcp=<port>'.")
final class ServerCommand implements Callable<Integer> {
    @Option(names = "--bind", description = "Address to listen on (default: ${DEFAULT-VALUE}).", defaultValue = "127.0.0.1")
    String bind;

    @Option(names = "--port", description = "AZ-SDP port, 0 for any (default: ${DEFAULT-VALUE}).", defaultValue = "0")
    int port;

    @Option(names = "--javatcp-port", description = "Plain TCP port, 0 for any (default: ${DEFAULT-VALUE}).",
            defaultValue = "0")
    int javaPort;

    @Override
    public Integer call() throws Exception {
        InetAddress addr = InetAddress.getByName(bind);
        AzSdpServerSocket sdp = new AzSdpServerSocket();
        sdp.bind(new InetSocketAddress(addr, port));
        ServerSocket tcp = new ServerSocket();
        tcp.bind(new InetSocketAddress(addr, javaPort));
        Thread t = new Thread(() -> acceptLoop(tcp), "javatcp-accept");
        t.setDaemon(true);
        t.start();
        StallWatchdog.start();
        System.out.println("READY azsdp=" + sdp.getLocalPort() + " javatcp=" + tcp.getLocalPort());
        System.out.flush();
        acceptLoop(sdp);
        return 0;
    }

    private static void acceptLoop(ServerSocket server) {
        while (!server.isClosed()) {
            try {
                Socket s = server.accept();
                Thread t = new Thread(() -> serve(s), "bench-" + s.getPort());
                t.setDaemon(true);
                t.start();
            } catch (IOException e) {
                System.err.println("accept failed: " + e.getMessage());
            }
        }
    }

    private static void serve(Socket s) {
        try (Link link = Link.of(s)) {
            PerfSession.serve(link);
        } catch (IOException e) {
            System.err.println("session " + s + " failed: " + e);
        }
    }
}
