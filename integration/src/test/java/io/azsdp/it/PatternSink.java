package io.azsdp.it;

import io.azsdp.socket.AzSdpServerSocket;
import java.io.DataInputStream;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.util.Arrays;
import java.util.Map;

/**
 * Receiver of the AZ-SDP semantics tests, run in its own JVM by {@link PeerMain} ({@code pattern-sink}): accepts one
 * connection and reads frames {@code [int index][int length][payload]}, checking every payload byte against
 * {@link #pattern}. Prints {@code VERIFIED messages=N bytes=B} or {@code MISMATCH index=I offset=O}. With
 * {@code stall=true} it accepts and never reads, so the sender's adverts stay outstanding; with {@code dieAfterMs=N}
 * too it then dies abruptly N ms later. With {@code period=P} a message's byte at offset j is
 * {@code pattern(index, j % P)} (its length a multiple of P): one frame carries the same P bytes sent many times.
 */
final class PatternSink {
    private PatternSink() {
    }

    /** The byte every message {@code index} must carry at {@code offset}: cheap, and differs between messages. */
    static byte pattern(int index, int offset) {
        return (byte) (index * 131 + offset * 7 + (offset >>> 9));
    }

    static void fill(byte[] b, int index, int len) {
        for (int j = 0; j < len; j++) {
            b[j] = pattern(index, j);
        }
    }

    static void run(Map<String, String> opt) throws IOException, InterruptedException {
        try (AzSdpServerSocket server = new AzSdpServerSocket()) {
            server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            PeerMain.say("READY port=" + server.getLocalPort() + " pid=" + ProcessHandle.current().pid());
            try (Socket s = server.accept()) {
                if (Boolean.parseBoolean(opt.getOrDefault("stall", "false"))) {
                    PeerMain.say("STALLING");
                    long dieAfter = Long.parseLong(opt.getOrDefault("dieAfterMs", "-1"));
                    Thread.sleep(dieAfter < 0 ? Long.MAX_VALUE : dieAfter);
                    Runtime.getRuntime().halt(137); // as if killed: no close, nothing flushed
                }
                DataInputStream in = new DataInputStream(s.getInputStream());
                int period = Integer.parseInt(opt.getOrDefault("period", "0"));
                byte[] buf = new byte[4 << 20];
                byte[] expect = new byte[buf.length];
                int expectIndex = -1;
                int expectLen = -1;
                long messages = 0;
                long bytes = 0;
                while (true) {
                    int index = in.readInt();
                    int len = in.readInt();
                    if (index < 0) {
                        break;
                    }
                    int unit = period > 0 ? period : len;
                    if (period > 0 && len % period != 0) {
                        PeerMain.say("MISMATCH index=" + index + " length=" + len + " is not a multiple of " + period);
                        return;
                    }
                    if (index != expectIndex || unit > expectLen) { // a stream of one message is checked fast
                        fill(expect, index, unit);
                        expectIndex = index;
                        expectLen = unit;
                    }
                    for (int done = 0; done < len; done += unit) {
                        in.readFully(buf, 0, unit);
                        int j = Arrays.mismatch(buf, 0, unit, expect, 0, unit);
                        if (j >= 0) {
                            PeerMain.say("MISMATCH index=" + index + " offset=" + (done + j) + " length=" + len
                                    + " got=" + buf[j] + " want=" + pattern(index, j));
                            return;
                        }
                    }
                    messages++;
                    bytes += len;
                }
                PeerMain.say("VERIFIED messages=" + messages + " bytes=" + bytes);
            }
        }
    }
}
