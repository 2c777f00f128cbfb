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
        assertFalse(q.mergeAck(5), "nothing queued to merge into");
        q.add(Bsdh.MID_RDMA_RD_COMPL, 100);
        assertTrue(q.mergeAck(50));
        assertEquals(1, q.size());
        assertEquals(150, q.headArg());
    }

    @Test
    void onlyIntoTheLastMessageWhenItIsAnAcknowledgement() throws SocketException {
        ControlQueue q = new ControlQueue(4);
        q.add(Bsdh.MID_RDMA_RD_COMPL, 100);
        q.add(Bsdh.MID_SEND_SM, 0);
        assertFalse(q.mergeAck(7), "a SendSM follows: order matters");
        q.add(Bsdh.MID_RDMA_RD_COMPL, 7);
        assertTrue(q.mergeAck(1), "into the RdmaRdCompl after the SendSM");
        assertEquals(3, q.size());
        assertEquals(100, q.headArg(), "the one before the SendSM is untouched");
    }

    @Test
    void aSumBeyond32BitsIsNotMerged() throws SocketException {
        ControlQueue q = new ControlQueue(4);
        q.add(Bsdh.MID_RDMA_RD_COMPL, Integer.MAX_VALUE - 10);
        assertFalse(q.mergeAck(11));
        assertTrue(q.mergeAck(10));
        assertEquals(Integer.MAX_VALUE, q.headArg());
    }

    @Test
    void overflowIsAnError() throws SocketException {
        ControlQueue q = new ControlQueue(1);
        q.add(Bsdh.MID_DISCONN, 0);
        assertThrows(SocketException.class, () -> q.add(Bsdh.MID_SEND_SM, 0));
    }
}
