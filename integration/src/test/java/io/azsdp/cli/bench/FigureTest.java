package io.azsdp.cli.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** A figure measured in rounds reports its median round and lists every round; a failed round fails it. */
class FigureTest {
    private static final Figure.Key KEY = new Figure.Key("bw", new Transport("shm", "azsdp"), 65536, 1);

    @Test
    void medianOfRounds() {
        Figure m = one(Figure.median(List.of(List.of(round(3.0, "a")), List.of(round(1.0, "b")),
                List.of(round(2.0, "c")))));
        assertEquals(2.0, m.value());
        assertTrue(m.note().startsWith("c; median of 3 rounds: 3.000 1.000 2.000"), m.note());
        assertEquals(1.5, one(Figure.median(List.of(List.of(round(2.5, "x")), List.of(round(1.5, "y"))))).value(),
                "lower middle of two");
        Figure only = round(4.0, "z");
        assertSame(only, one(Figure.median(List.of(List.of(only)))));
    }

    @Test
    void theFirstFigureOfARoundPicksTheMedianRoundForAllItsFigures() {
        List<Figure> m = Figure.median(List.of(
                List.of(round(3.0, "a"), hidden(0.1)),
                List.of(round(1.0, "b"), hidden(0.9)),
                List.of(round(2.0, "c"), hidden(0.5))));
        assertEquals(2, m.size());
        assertEquals(2.0, m.get(0).value());
        assertEquals(0.5, m.get(1).value(), "the hidden fraction of the same round, not the median of the fractions");
        assertTrue(m.get(1).note().startsWith("h; median of 3 rounds (by bw): 3.000 1.000 2.000"), m.get(1).note());
    }

    @Test
    void aFailedRoundFailsTheFigure() {
        Figure failed = Figure.failed(KEY, "did not verify");
        Figure m = one(Figure.median(List.of(List.of(round(3.0, "a")), List.of(failed))));
        assertFalse(m.ok());
        assertEquals("did not verify", m.note());
    }

    private static Figure one(List<Figure> figures) {
        assertEquals(1, figures.size());
        return figures.get(0);
    }

    private static Figure hidden(double value) {
        return Figure.ok(KEY, "overlap_hidden", value, "fraction", "h");
    }

    private static Figure round(double value, String note) {
        return Figure.ok(KEY, "bw", value, "GB/s", note);
    }
}
