package io.azsdp.sdp;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.SocketException;
import org.junit.jupiter.api.Test;

class ControlQueueTest {
    @Test
    void consecutiveAcknowledgementsAddUp() throws SocketException {
        ControlQueue q = new ControlQueue(4);
        assertFalse(q.mergeIntoLast(Bsdh.MID_RDMA_RD_COMPL, 5), "nothing queued to merge into");
        q.add(Bsdh.MID_RDMA_RD_COMPL, 100, true);
        assertTrue(q.mergeIntoLast(Bsdh.MID_RDMA_RD_COMPL, 50));
        assertEquals(1, q.size());
        assertEquals(150, q.headArg());
    }

    @Test
    void onlyIntoTheLastMergeableMessageOfTheSameId() throws SocketException {
        ControlQueue q = new ControlQueue(4);
        q.add(Bsdh.MID_RDMA_RD_COMPL, 100, true);
        q.add(Bsdh.MID_SEND_SM, 0, false);
        assertFalse(q.mergeIntoLast(Bsdh.MID_RDMA_RD_COMPL, 7), "a SendSM follows: order matters");
        q.add(Bsdh.MID_RDMA_RD_COMPL, 7, false);
        assertFalse(q.mergeIntoLast(Bsdh.MID_RDMA_RD_COMPL, 1), "the last one is not mergeable");
        assertEquals(3, q.size());
        assertEquals(100, q.headArg());
    }

    @Test
    void aSumBeyond32BitsIsNotMerged() throws SocketException {
        ControlQueue q = new ControlQueue(4);
        q.add(Bsdh.MID_RDMA_RD_COMPL, Integer.MAX_VALUE - 10, true);
        assertFalse(q.mergeIntoLast(Bsdh.MID_RDMA_RD_COMPL, 11));
        assertTrue(q.mergeIntoLast(Bsdh.MID_RDMA_RD_COMPL, 10));
        assertEquals(Integer.MAX_VALUE, q.headArg());
    }

    @Test
    void overflowIsAnError() throws SocketException {
        ControlQueue q = new ControlQueue(1);
        q.add(Bsdh.MID_DISCONN, 0, false);
        assertThrows(SocketException.class, () -> q.add(Bsdh.MID_SEND_SM, 0, false));
    }
}
