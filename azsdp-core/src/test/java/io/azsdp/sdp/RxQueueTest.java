package io.azsdp.sdp;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

class RxQueueTest {
    private static final int CAPACITY = 5;

    private static RxSegment data(RxQueue q, int remaining) throws SdpProtocolException {
        RxSegment s = q.pushData();
        s.remaining = remaining;
        return s;
    }

    private static RxSegment advert(RxQueue q, int len) throws SdpProtocolException {
        RxSegment s = q.pushAdvert();
        s.len = len;
        return s;
    }

    /** What the queue holds, head first: "D<remaining>" or "A<len>". */
    private static List<String> contents(RxQueue q) {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < q.size(); i++) {
            RxSegment s = q.get(i);
            out.add(s.advert ? "A" + s.len : "D" + s.remaining);
        }
        return out;
    }

    @Test
    void firstInFirstOutAcrossTheRingsEnd() throws SdpProtocolException {
        RxQueue q = new RxQueue(CAPACITY);
        for (int round = 0; round < 3 * CAPACITY; round++) {
            data(q, round);
            advert(q, 1000 + round);
            assertEquals(List.of("D" + round, "A" + (1000 + round)), contents(q));
            assertEquals(1, q.adverts());
            q.pop();
            assertEquals(1, q.adverts(), "popping Data leaves the advert count");
            assertEquals(1000 + round, q.head().len);
            q.pop();
            assertEquals(0, q.adverts());
            assertEquals(0, q.size());
        }
    }

    @Test
    void anAdvertStartsWithNothingReadAndDataIsNoAdvert() throws SdpProtocolException {
        RxQueue q = new RxQueue(CAPACITY);
        RxSegment a = advert(q, 10);
        a.requested = 10;
        a.readDone = 7;
        a.consumed = 3;
        q.pop();
        for (int i = 0; i < CAPACITY - 1; i++) {
            assertFalse(data(q, 1).advert);
        }
        RxSegment again = q.pushAdvert(); // the ring comes round to the first segment
        assertSame(a, again);
        assertTrue(again.advert);
        assertEquals(0, again.requested + again.readDone + again.consumed);
    }

    @Test
    void aFullQueueRefusesAnotherSegment() throws SdpProtocolException {
        RxQueue q = new RxQueue(CAPACITY);
        for (int i = 0; i < CAPACITY; i++) {
            data(q, i);
        }
        SdpProtocolException e = assertThrows(SdpProtocolException.class, q::pushAdvert);
        assertEquals("SDP protocol violation: receive queue overrun", e.getMessage());
        assertEquals(CAPACITY, q.size());
        assertEquals(0, q.adverts());
        q.pop();
        advert(q, 9);
        assertEquals(List.of("D1", "D2", "D3", "D4", "A9"), contents(q));
    }

    @Test
    void removingEmptyAdvertsKeepsTheOthersInOrderAndEverySegmentInThePool() throws SdpProtocolException {
        RxQueue q = new RxQueue(CAPACITY);
        data(q, 0);
        q.pop(); // start away from the ring's first slot, so the compaction wraps
        data(q, 0);
        q.pop();
        Set<RxSegment> pool = Collections.newSetFromMap(new IdentityHashMap<>());
        advert(q, 0);
        data(q, 1);
        advert(q, 0);
        advert(q, 2);
        advert(q, 0);
        for (int i = 0; i < q.size(); i++) {
            pool.add(q.get(i));
        }
        assertEquals(4, q.adverts());

        q.removeEmptyAdverts();

        assertEquals(List.of("D1", "A2"), contents(q));
        assertEquals(1, q.adverts());
        for (int i = 0; i < CAPACITY - 2; i++) {
            advert(q, 10 + i);
        }
        assertEquals(List.of("D1", "A2", "A10", "A11", "A12"), contents(q));
        for (int i = 0; i < q.size(); i++) {
            pool.add(q.get(i));
        }
        assertEquals(CAPACITY, pool.size(), "a segment was lost or handed out twice");
    }

    @Test
    void removingFromAQueueWithoutEmptyAdvertsChangesNothing() throws SdpProtocolException {
        RxQueue q = new RxQueue(CAPACITY);
        advert(q, 3);
        data(q, 4);
        q.removeEmptyAdverts();
        assertEquals(List.of("A3", "D4"), contents(q));
        assertEquals(1, q.adverts());
        q.pop();
        q.pop();
        q.removeEmptyAdverts();
        assertEquals(0, q.size());
    }
}
