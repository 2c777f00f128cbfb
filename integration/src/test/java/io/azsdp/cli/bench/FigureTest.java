package io.azsdp.cli.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** A stream figure measured in rounds reports its median round and lists every round; a failed round fails it. */
class FigureTest {
    private static final Figure.Key KEY = new Figure.Key("bw", new Transport("shm", "azsdp"), 65536, 1);

    @Test
    void medianOfRounds() {
        Figure m = Figure.median(List.of(round(3.0, "a"), round(1.0, "b"), round(2.0, "c")));
        assertEquals(2.0, m.value());
        assertTrue(m.note().startsWith("c; median of 3 rounds: 3.000 1.000 2.000"), m.note());
        assertEquals(1.5, Figure.median(List.of(round(2.5, "x"), round(1.5, "y"))).value(), "lower middle of two");
        Figure only = round(4.0, "z");
        assertSame(only, Figure.median(List.of(only)));
    }

    @Test
    void aFailedRoundFailsTheFigure() {
        Figure failed = Figure.failed(KEY, "did not verify");
        Figure m = Figure.median(List.of(round(3.0, "a"), failed));
        assertFalse(m.ok());
        assertEquals("did not verify", m.note());
    }

    private static Figure round(double value, String note) {
        return Figure.ok(KEY, "bw", value, "GB/s", note);
    }
}
