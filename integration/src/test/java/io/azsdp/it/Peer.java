package io.azsdp.it;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * A {@link PeerMain} running in its own JVM, with the test's class path. Its stdout lines are collected (and echoed
 * with a prefix), its stderr echoed; every peer is registered so that {@link #destroyAll()} (after each test, and in
 * a shutdown hook) leaves no process behind.
 */
final class Peer implements AutoCloseable {
    private static final List<Peer> LIVE = new CopyOnWriteArrayList<>();

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(Peer::destroyAll, "peer-reaper"));
    }

    private final String name;
    private final Process process;
    private final List<String> lines = new ArrayList<>(); // guarded by this
    private final List<Boolean> taken = new ArrayList<>(); // guarded by this
    private boolean outputEnded; // guarded by this
    private volatile int port;

    private Peer(String name, Process process) {
        this.name = name;
        this.process = process;
        pipe(process.getInputStream(), true);
        pipe(process.getErrorStream(), false);
    }

    /**
     * Starts {@code PeerMain args} in a new JVM with {@code -Dk=v} for every entry of {@code sysProps}.
     */
    static Peer start(String name, Map<String, String> sysProps, String... args) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add("-Xmx1g");
        cmd.add("-XX:MaxDirectMemorySize=2g");
        cmd.add("-XX:+UseSerialGC"); // two cores: keep the peer's GC off the other JVM's core
        cmd.add("-Dorg.slf4j.simpleLogger.showDateTime=true");
        cmd.add("-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS");
        sysProps.forEach((k, v) -> cmd.add("-D" + k + "=" + v));
        cmd.add(PeerMain.class.getName());
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).start();
        Peer peer = new Peer(name + "-" + p.pid(), p);
        LIVE.add(peer);
        System.out.println("[" + peer.name + "] started: " + String.join(" ", cmd.subList(3, cmd.size())));
        return peer;
    }

    private void pipe(InputStream stream, boolean collect) {
        Thread t = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(stream, StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null; ) {
                    if (collect) {
                        synchronized (this) {
                            lines.add(line);
                            taken.add(false);
                            notifyAll();
                        }
                        System.out.println("[" + name + "] " + line);
                    } else {
                        System.err.println("[" + name + " err] " + line);
                    }
                }
            } catch (IOException ignored) {
                // the process is gone
            } finally {
                if (collect) {
                    synchronized (this) {
                        outputEnded = true;
                        notifyAll();
                    }
                }
            }
        }, name + (collect ? "-out" : "-err"));
        t.setDaemon(true);
        t.start();
    }

    String name() {
        return name;
    }

    long pid() {
        return process.pid();
    }

    boolean isAlive() {
        return process.isAlive();
    }

    Process process() {
        return process;
    }

    /**
     * The first line not taken yet that starts with {@code prefix}, taking it; fails when the peer prints FAILED, when
     * its output ends first, or after {@code timeout}.
     */
    String awaitLine(String prefix, Duration timeout) throws InterruptedException {
        return awaitLine(l -> l.startsWith(prefix), prefix, timeout);
    }

    synchronized String awaitLine(Predicate<String> match, String what, Duration timeout)
            throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        int scanned = 0;
        while (true) {
            for (int i = 0; i < lines.size(); i++) {
                if (!taken.get(i) && match.test(lines.get(i))) {
                    taken.set(i, true);
                    return lines.get(i);
                }
            }
            for (; scanned < lines.size(); scanned++) {
                if (lines.get(scanned).startsWith("FAILED")) {
                    throw new AssertionError("peer " + name + " failed while we waited for '" + what + "': "
                            + lines.get(scanned));
                }
            }
            if (outputEnded) {
                throw new AssertionError("peer " + name + " ended (exit " + exitValueOrNull() + ") before printing '"
                        + what + "'");
            }
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                throw new AssertionError("peer " + name + " did not print '" + what + "' within " + timeout);
            }
            TimeUnit.NANOSECONDS.timedWait(this, left);
        }
    }

    /** Parses {@code WORD k=v k=v ...}. */
    static Map<String, String> parse(String line) {
        Map<String, String> m = new LinkedHashMap<>();
        for (String part : line.trim().split("\\s+")) {
            int eq = part.indexOf('=');
            if (eq > 0) {
                m.put(part.substring(0, eq), part.substring(eq + 1));
            }
        }
        return m;
    }

    Map<String, String> awaitFields(String prefix, Duration timeout) throws InterruptedException {
        return parse(awaitLine(prefix, timeout));
    }

    /** The port of a serving peer ({@code READY port=P}). */
    int awaitReady() throws InterruptedException {
        port = Integer.parseInt(awaitFields("READY", Duration.ofSeconds(30)).get("port"));
        return port;
    }

    /** The listening port of a serving peer, once {@link #awaitReady()} returned. */
    int port() {
        if (port <= 0) {
            throw new IllegalStateException("peer " + name + " is not listening (yet)");
        }
        return port;
    }

    /** A command line on the peer's stdin. */
    void command(String line) throws IOException {
        OutputStream in = process.getOutputStream();
        in.write((line + "\n").getBytes(StandardCharsets.UTF_8));
        in.flush();
    }

    /** SIGKILL (on Linux {@code destroyForcibly} is SIGKILL); returns once the process is gone (bounded). */
    void kill() throws InterruptedException {
        process.destroyForcibly();
        if (!process.waitFor(10, TimeUnit.SECONDS)) {
            throw new AssertionError("peer " + name + " still alive 10 s after SIGKILL");
        }
    }

    /** Waits (bounded) for the peer to exit by itself. */
    int awaitExit(Duration timeout) throws InterruptedException {
        if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            throw new AssertionError("peer " + name + " did not exit within " + timeout);
        }
        return process.exitValue();
    }

    private Integer exitValueOrNull() {
        try {
            return process.waitFor(1, TimeUnit.SECONDS) ? process.exitValue() : null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        }
    }

    /** End of stdin asks the peer to exit; SIGKILL if it has not within 3 s. */
    @Override
    public void close() {
        LIVE.remove(this);
        try {
            process.getOutputStream().close();
        } catch (IOException ignored) {
            // gone already
        }
        try {
            if (!process.waitFor(3, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor(10, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }

    static void destroyAll() {
        for (Peer p : LIVE) {
            p.process.destroyForcibly();
        }
        for (Peer p : LIVE) {
            try {
                p.process.waitFor(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            LIVE.remove(p);
        }
    }

    /** Best effort {@code jstack -l} of this peer into {@code dir}; returns the dump (or why there is none). */
    String jstack(Path dir) {
        if (!process.isAlive()) {
            return "(peer " + name + " is not running)";
        }
        try {
            Files.createDirectories(dir);
            Path file = dir.resolve(name + ".jstack.txt");
            Path jstack = Path.of(System.getProperty("java.home"), "bin", "jstack");
            Process p = new ProcessBuilder(jstack.toString(), "-l", Long.toString(process.pid()))
                    .redirectErrorStream(true).redirectOutput(file.toFile()).start();
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return "(jstack of " + name + " did not finish within 30 s)";
            }
            return Files.readString(file);
        } catch (IOException | InterruptedException e) {
            return "(jstack of " + name + " failed: " + e + ")";
        }
    }

    @Override
    public String toString() {
        return name;
    }
}
