package io.azsdp.fabric;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class SpinWindowTest {
    private static final long MIN = 50_000;
    private static final long MAX = MIN * SpinWindow.MAX_FACTOR;

    @Test
    void startsAtTheConfiguredPoll() {
        assertEquals(MIN, new SpinWindow(MIN).nanos());
    }

    @Test
    void anEventSoonAfterThePollDoublesTheWindowUpToTheBound() {
        SpinWindow w = new SpinWindow(MIN);
        w.waited(true, MIN + 1);
        assertEquals(2 * MIN, w.nanos());
        w.waited(true, MAX); // at the bound still counts as soon
        assertEquals(4 * MIN, w.nanos());
        for (int i = 0; i < 10; i++) {
            w.waited(true, MIN);
        }
        assertEquals(MAX, w.nanos());
    }

    @Test
    void aLongWaitOrNoEventHalvesItDownToTheConfiguredPoll() {
        SpinWindow w = new SpinWindow(MIN);
        w.waited(true, MIN);
        w.waited(true, MIN);
        assertEquals(4 * MIN, w.nanos());
        w.waited(true, MAX + 1);
        assertEquals(2 * MIN, w.nanos());
        w.waited(false, MIN); // woken for something else, or timed out: polling longer would not have helped
        assertEquals(MIN, w.nanos());
        w.waited(false, MIN);
        assertEquals(MIN, w.nanos());
    }
}
