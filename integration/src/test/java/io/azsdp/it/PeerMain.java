package io.azsdp.it;

import io.azsdp.config.AzSdpConfig;
import io.azsdp.socket.AzSdpServerSocket;
import io.azsdp.socket.AzSdpSocket;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The remote peer of the multi-JVM tests, started by {@link Peer} in its own JVM. Configuration comes from
 * {@code -Dazsdp.*} system properties (the global configuration). Talks to the test on stdout, one line per event:
 * {@code READY port=P}, {@code RESULT k=v ...}, {@code FAILED ...}, and so on; listens on stdin for commands
 * ({@code GO}) and exits when stdin reaches end of file (the test is done with it, or the test JVM died).
 *
 * <pre>
 * serve                                         accept connections; each one starts with a {@link Job}
 * connect port=P op=close|close-exit|abort bytes=N seed=S
 *     close       write N bytes, close (orderly), print CLOSED, stay alive until stdin ends
 *     close-exit  write N bytes, close (orderly), print CLOSED and exit the JVM at once
 *     abort       write N bytes, wait for GO on stdin, SO_LINGER 0 + close, print ABORTED, stay alive
 * </pre>
 */
public final class PeerMain {
    private static final LinkedBlockingQueue<String> COMMANDS = new LinkedBlockingQueue<>();
    private static final AtomicInteger CONNECTIONS = new AtomicInteger();

    private PeerMain() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length == 0) {
            throw new IllegalArgumentException("usage: PeerMain serve | connect port=P op=... bytes=N seed=S");
        }
        Map<String, String> opt = new HashMap<>();
        for (int i = 1; i < args.length; i++) {
            int eq = args[i].indexOf('=');
            opt.put(args[i].substring(0, eq), args[i].substring(eq + 1));
        }
        startStdinWatcher();
        startWatchdog(Integer.parseInt(opt.getOrDefault("maxSeconds", "600")));
        try {
            switch (args[0]) {
                case "serve" -> serve();
                case "connect" -> connect(opt);
                case "pattern-sink" -> PatternSink.run(opt);
                default -> throw new IllegalArgumentException("unknown subcommand " + args[0]);
            }
        } catch (Throwable t) {
            say("FAILED " + describe(t));
            t.printStackTrace();
            System.exit(2);
        }
    }

    static synchronized void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    static String describe(Throwable t) {
        return "error=" + t.getClass().getName() + " message=" + String.valueOf(t.getMessage()).replace('\n', ' ');
    }

    /** Commands on stdin; end of stdin ends the process. */
    private static void startStdinWatcher() {
        Thread t = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null; ) {
                    COMMANDS.add(line.trim());
                }
            } catch (IOException ignored) {
                // treated as end of input
            }
            System.exit(0);
        }, "stdin-watcher");
        t.setDaemon(true);
        t.start();
    }

    /** A peer never outlives a lost test by much. */
    private static void startWatchdog(int seconds) {
        Thread t = new Thread(() -> {
            try {
                Thread.sleep(TimeUnit.SECONDS.toMillis(seconds));
            } catch (InterruptedException ignored) {
                return;
            }
            System.err.println("peer watchdog: " + seconds + " s passed, halting");
            Runtime.getRuntime().halt(3);
        }, "watchdog");
        t.setDaemon(true);
        t.start();
    }

    private static void awaitCommand(String command) throws InterruptedException {
        while (true) {
            String c = COMMANDS.poll(120, TimeUnit.SECONDS);
            if (c == null) {
                throw new IllegalStateException("no " + command + " on stdin within 120 s");
            }
            if (c.equals(command)) {
                return;
            }
        }
    }

    private static void sleepUntilStdinEnds() throws InterruptedException {
        Thread.sleep(Long.MAX_VALUE); // the stdin watcher exits the JVM
    }

    // ---------------------------------------------------------------------------------------------- serve

    private static void serve() throws Exception {
        AzSdpServerSocket server = new AzSdpServerSocket(AzSdpConfig.global());
        server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 128);
        say("READY port=" + server.getLocalPort() + " pid=" + ProcessHandle.current().pid());
        while (true) {
            Socket s = server.accept();
            int n = CONNECTIONS.incrementAndGet();
            Thread t = new Thread(() -> serveOne((AzSdpSocket) s), "peer-conn-" + n);
            t.setDaemon(true);
            t.start();
        }
    }

    private static void serveOne(AzSdpSocket s) {
        int id = -1;
        try {
            s.setSoTimeout(60_000);
            Job job = Job.readFrom(s);
            id = job.id();
            switch (job.op()) {
                case Job.STREAM -> stream(s, job, 0);
                case Job.STREAM_SMALL_DIRECT_READS -> stream(s, job, Job.SMALL_DIRECT_READ);
                case Job.SOURCE -> {
                    say("SOURCE id=" + id + " fabric=" + s.fabricName());
                    Traffic.send(s, job.peerSeed(), Traffic.FOREVER, job.maxMessage(), null);
                }
                case Job.SINK_STALL -> {
                    Traffic.Result r = Traffic.receive(s, job.clientSeed(), job.peerReceives(), job.maxMessage(),
                            job.maxMessage(), null);
                    say("STALLED id=" + id + " bytes=" + r.bytes() + " crc=" + r.crc() + " fabric=" + s.fabricName());
                    sleepUntilStdinEnds();
                }
                default -> throw new IOException("unknown job op " + job.op());
            }
        } catch (Throwable t) {
            say("FAILED id=" + id + " " + describe(t));
            t.printStackTrace();
            abort(s);
        }
    }

    /** Both directions at once; RESULT with both checksums and the counters, then an orderly close. */
    private static void stream(AzSdpSocket s, Job job, int fixedDirectRead) throws Exception {
        CompletableFuture<Traffic.Result> received = new CompletableFuture<>();
        Thread rx = new Thread(() -> {
            try {
                received.complete(new Traffic.Receiver(s, job.clientSeed(), job.maxMessage(), job.maxMessage(),
                        fixedDirectRead).receive(job.peerReceives(), null));
            } catch (Throwable t) {
                received.completeExceptionally(t);
                abort(s); // releases our own sender too
            }
        }, Thread.currentThread().getName() + "-rx");
        rx.setDaemon(true);
        rx.start();
        Traffic.Result sent;
        try {
            sent = Traffic.send(s, job.peerSeed(), job.peerSends(), job.maxMessage(), null);
        } catch (Throwable t) {
            abort(s);
            throw t;
        }
        Traffic.Result got = received.get(); // the receiver is bounded by SO_TIMEOUT
        Map<String, Object> kv = new LinkedHashMap<>();
        kv.put("id", job.id());
        kv.put("fabric", s.fabricName());
        kv.put("recvBytes", got.bytes());
        kv.put("recvCrc", got.crc());
        kv.put("sentBytes", sent.bytes());
        kv.put("sentCrc", sent.crc());
        kv.putAll(Traffic.counters(s));
        say("RESULT " + Traffic.format(kv));
        s.close();
    }

    private static void abort(Socket s) {
        try {
            s.setSoLinger(true, 0);
        } catch (IOException ignored) {
            // closed already
        }
        try {
            s.close();
        } catch (IOException ignored) {
            // closing anyway
        }
    }

    // ---------------------------------------------------------------------------------------------- connect

    private static void connect(Map<String, String> opt) throws Exception {
        int port = Integer.parseInt(opt.get("port"));
        String op = opt.get("op");
        long bytes = Long.parseLong(opt.get("bytes"));
        long seed = Long.parseLong(opt.get("seed"));
        AzSdpSocket s = new AzSdpSocket(AzSdpConfig.global());
        s.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 10_000);
        say("CONNECTED fabric=" + s.fabricName() + " localPort=" + s.getLocalPort());
        Traffic.Result r = Traffic.send(s, seed, bytes, Traffic.MAX_MESSAGE, null);
        Map<String, Object> kv = new LinkedHashMap<>();
        kv.put("sentBytes", r.bytes());
        kv.put("sentCrc", r.crc());
        kv.putAll(Traffic.counters(s));
        say("RESULT " + Traffic.format(kv));
        switch (op) {
            case "close" -> {
                s.close();
                say("CLOSED");
                sleepUntilStdinEnds();
            }
            case "close-exit" -> {
                s.close();
                say("CLOSED");
                System.exit(0);
            }
            case "abort" -> {
                awaitCommand("GO");
                s.setSoLinger(true, 0);
                s.close();
                say("ABORTED");
                sleepUntilStdinEnds();
            }
            default -> throw new IllegalArgumentException("unknown op " + op);
        }
    }
}
