package io.azsdp.cli;

import io.azsdp.sdp.SdpConnection;

/** Every 30 s, prints the protocol state of every open connection to stderr: a stalled benchmark explains itself. */
final class StallWatchdog {
    private StallWatchdog() {
    }

    static void start() {
        Thread t = new Thread(() -> {
            while (true) {
                try {
                    Thread.sleep(30_000);
                } catch (InterruptedException e) {
                    return;
                }
                SdpConnection.live().forEach(c -> System.err.println("azsdp state: " + c.describe()));
            }
        }, "azsdp-stall-watchdog");
        t.setDaemon(true);
        t.start();
    }
}
