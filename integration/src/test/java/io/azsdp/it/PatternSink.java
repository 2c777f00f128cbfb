package io.azsdp.it;

import io.azsdp.socket.AzSdpServerSocket;
import java.io.DataInputStream;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.util.Map;

/**
 * Receiver of the AZ-SDP semantics tests, run in its own JVM by {@link PeerMain} ({@code pattern-sink}): accepts one
 * connection and reads frames {@code [int index][int length][payload]}, checking every payload byte against
 * {@link #pattern}. Prints {@code VERIFIED messages=N bytes=B} or {@code MISMATCH index=I offset=O}. With
 * {@code stall=true} it accepts and never reads, so the sender's adverts stay outstanding; with {@code dieAfterMs=N}
 * too it then dies abruptly N ms later.
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
                byte[] buf = new byte[4 << 20];
                long messages = 0;
                long bytes = 0;
                while (true) {
                    int index = in.readInt();
                    int len = in.readInt();
                    if (index < 0) {
                        break;
                    }
                    in.readFully(buf, 0, len);
                    for (int j = 0; j < len; j++) {
                        if (buf[j] != pattern(index, j)) {
                            PeerMain.say("MISMATCH index=" + index + " offset=" + j + " length=" + len + " got="
                                    + buf[j] + " want=" + pattern(index, j));
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
