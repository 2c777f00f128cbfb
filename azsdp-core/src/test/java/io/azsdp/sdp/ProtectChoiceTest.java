package io.azsdp.sdp;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class ProtectChoiceTest {
    /** Protected sends until one is refused; each protected one reports {@code reused}. Returns how many. */
    private static int protectUntilRefused(ProtectChoice c, boolean reused) {
        int n = 0;
        while (c.protect()) {
            c.protectedSend(reused);
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
        ProtectChoice c = new ProtectChoice();
        for (int i = 0; i < 10_000; i++) {
            assertTrue(c.protect());
            c.protectedSend(i % 7 != 0); // a miss now and then (a new buffer) never adds up to a run
        }
    }

    @Test
    void aRunOfFreshPagesWaitsForLongerAndLongerUntilReuseComesBack() {
        ProtectChoice c = new ProtectChoice();
        assertEquals(8, protectUntilRefused(c, false));
        assertEquals(64, refusedUntilProtected(c));
        c.protectedSend(false);
        assertEquals(7, protectUntilRefused(c, false), "the try after the waits counts as the first miss");
        assertEquals(128, refusedUntilProtected(c));
        c.protectedSend(false);
        protectUntilRefused(c, false);
        assertEquals(256, refusedUntilProtected(c));

        c.protectedSend(true); // the application stopped rewriting: back to protecting, and a short wait next time
        for (int i = 0; i < 100; i++) {
            assertTrue(c.protect());
            c.protectedSend(true);
        }
        assertEquals(8, protectUntilRefused(c, false));
        assertEquals(64, refusedUntilProtected(c));
    }

    @Test
    void theWaitIsBounded() {
        ProtectChoice c = new ProtectChoice();
        int waits = 0;
        for (int round = 0; round < 12; round++) {
            protectUntilRefused(c, false);
            waits = refusedUntilProtected(c);
            c.protectedSend(false);
        }
        assertEquals(4096, waits);
    }
}
