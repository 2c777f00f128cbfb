package io.azsdp.sdp;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class ProtectChoiceTest {
    private static final int SYNC_BELOW = 512 << 10;
    private static final int SMALL = 64 << 10;
    private static final int LARGE = 1 << 20;

    /** Protected sends until one is refused; each protected one reports {@code reused}. Returns how many. */
    private static int protectUntilRefused(ProtectChoice c, boolean reused) {
        return protectUntilRefused(c, reused, SMALL, 1);
    }

    /** The same for sends of {@code len} bytes whose protect calls took {@code protectNs}. */
    private static int protectUntilRefused(ProtectChoice c, boolean reused, int len, long protectNs) {
        int n = 0;
        while (c.protect()) {
            c.protectedSend(reused, len, protectNs);
            n++;
            assertTrue(n < 1000, "never switched to waiting");
        }
        return n;
    }

    /** Refused (synchronous) sends until one is protected again; the one protected is not reported. */
    private static int refusedUntilProtected(ProtectChoice c) {
        int n = 1; // protectUntilRefused's last call was refused
        while (!c.protect()) {
            n++;
        }
        return n;
    }

    @Test
    void reusedPagesAlwaysProtect() {
        ProtectChoice c = new ProtectChoice(SYNC_BELOW);
        for (int i = 0; i < 10_000; i++) {
            assertTrue(c.protect());
            c.protectedSend(i % 7 != 0, SMALL, 1); // a miss now and then (a new buffer) never adds up to a run
        }
    }

    @Test
    void aRunOfFreshPagesWaitsForLongerAndLongerUntilReuseComesBack() {
        ProtectChoice c = new ProtectChoice(SYNC_BELOW);
        assertEquals(8, protectUntilRefused(c, false));
        assertEquals(64, refusedUntilProtected(c));
        c.protectedSend(false, SMALL, 1);
        assertEquals(7, protectUntilRefused(c, false), "the try after the waits counts as the first miss");
        assertEquals(128, refusedUntilProtected(c));
        c.protectedSend(false, SMALL, 1);
        protectUntilRefused(c, false);
        assertEquals(256, refusedUntilProtected(c));

        // The application stopped rewriting: back to protecting, and a short wait next time.
        c.protectedSend(true, SMALL, 1);
        for (int i = 0; i < 100; i++) {
            assertTrue(c.protect());
            c.protectedSend(true, SMALL, 1);
        }
        assertEquals(8, protectUntilRefused(c, false));
        assertEquals(64, refusedUntilProtected(c));
    }

    @Test
    void theWaitIsBounded() {
        ProtectChoice c = new ProtectChoice(SYNC_BELOW);
        int waits = 0;
        for (int round = 0; round < 12; round++) {
            protectUntilRefused(c, false);
            waits = refusedUntilProtected(c);
            c.protectedSend(false, SMALL, 1);
        }
        assertEquals(4096, waits);
    }

    @Test
    void zeroAlwaysProtects() {
        ProtectChoice c = new ProtectChoice(0);
        for (int i = 0; i < 10_000; i++) {
            assertTrue(c.protect());
            c.protectedSend(false, SMALL, 1_000_000);
        }
    }

    /** Synchronous sends until one is protected again, each of {@code len} bytes taking {@code ns}. */
    private static int syncUntilProtected(ProtectChoice c, int len, long ns) {
        int n = 1; // protectUntilRefused's last call was refused
        c.synchronousSend(len, 50 * ns); // the first waits for the protected sends before it: not counted
        while (!c.protect()) {
            c.synchronousSend(len, ns);
            n++;
        }
        return n;
    }

    @Test
    void fromSyncBelowFreshPagesWaitOnlyWhileProtectingCostsMoreThanWaiting() {
        ProtectChoice c = new ProtectChoice(SYNC_BELOW);
        // The cost of waiting is not known yet: a run of fresh pages waits, and measures it.
        assertEquals(8, protectUntilRefused(c, false, LARGE, 30_000));
        assertEquals(64, syncUntilProtected(c, LARGE, 100_000));
        // Protect and release (2 x 30 us) cost less than a wait (100 us): fresh pages keep being protected.
        for (int i = 0; i < 10_000; i++) {
            assertTrue(c.protect());
            c.protectedSend(false, LARGE, 30_000);
        }
        // Protecting becomes dearer (2 x 60 us): the average crosses the waits' cost within a few sends, then a run.
        int protectedSends = protectUntilRefused(c, false, LARGE, 60_000);
        assertTrue(protectedSends >= 8 && protectedSends < 20, protectedSends + " protected sends");
        assertEquals(64, syncUntilProtected(c, LARGE, 100_000));
        assertEquals(8, protectUntilRefused(c, false, LARGE, 60_000));
        assertEquals(128, syncUntilProtected(c, LARGE, 100_000));
        // Below syncBelow fresh pages count whatever they cost.
        ProtectChoice small = new ProtectChoice(SYNC_BELOW);
        small.protect();
        small.protectedSend(false, SMALL, 1);
        small.synchronousSend(SMALL, 1_000_000);
        assertEquals(7, protectUntilRefused(small, false, SMALL, 1));
    }
}
