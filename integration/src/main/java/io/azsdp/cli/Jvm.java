package io.azsdp.cli;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Child JVMs running this command line (same class path, same {@code azsdp.*} system properties). */
public final class Jvm {
    private static final Pattern READY = Pattern.compile("READY azsdp=(\\d+) javatcp=(\\d+) nio=(\\d+)");

    private Jvm() {
    }

    /** Starts {@code azsdp args} in a new JVM; its stderr goes to ours. */
    public static Process spawn(String... args) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(ProcessHandle.current().info().command().orElse("java"));
        cmd.add("-Xmx1g");
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        for (String k : System.getProperties().stringPropertyNames()) {
            if (k.startsWith("azsdp.")) {
                cmd.add("-D" + k + "=" + System.getProperty(k));
            }
        }
        cmd.add(Main.class.getName());
        cmd.addAll(List.of(args));
        return new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
    }

    public static BufferedReader reader(Process p) {
        return new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
    }

    /**
     * Reads a spawned {@code server}'s READY line: its ports (AZ-SDP, plain Java TCP, NIO). Lines before it (a Java
     * agent's banner, say) are passed on to this JVM's stderr.
     *
     * @throws IOException when the server ended its output without that line
     */
    public static int[] awaitReady(Process server, BufferedReader out) throws IOException {
        for (String line = out.readLine(); line != null; line = out.readLine()) {
            Matcher m = READY.matcher(line);
            if (m.find()) {
                return new int[] {Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2)),
                        Integer.parseInt(m.group(3))};
            }
            System.err.println("server JVM (pid " + server.pid() + "): " + line);
        }
        throw new IOException("server JVM (pid " + server.pid() + ") did not start: its output ended before READY");
    }
}
