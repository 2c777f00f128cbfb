package io.azsdp.sdp;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class CreditsTest {
    private static final int PEER_BUFS = 4;
    private static final int LOCAL_BUFS = 3;

    private static Credits withPosted(int posted) {
        Credits c = new Credits(PEER_BUFS, LOCAL_BUFS);
        for (int i = 0; i < posted; i++) {
            c.receivePosted();
        }
        return c;
    }

    @Test
    void sendingSpendsCreditsAndTheHeaderGrantsWhatIsPosted() {
        Credits c = withPosted(LOCAL_BUFS);
        assertEquals(PEER_BUFS, c.tx());
        assertEquals(LOCAL_BUFS, c.peer());
        for (int i = 1; i <= PEER_BUFS; i++) {
            assertEquals(i, c.nextMseq());
            assertEquals(i, c.send());
            assertEquals(i, c.lastMseq());
            assertEquals(PEER_BUFS - i, c.tx());
        }
        assertEquals(0, c.ackMseq(), "nothing received yet");
    }

    @Test
    void theAcknowledgementOfTheLastMessageRenewsEveryCredit() throws SdpProtocolException {
        Credits c = withPosted(LOCAL_BUFS);
        c.send();
        c.send();
        c.send();
        assertEquals(1, c.tx());
        c.receive(Bsdh.MID_DATA, 1, 5, 2); // acknowledges 2 of our 3, grants 5 beyond it
        assertEquals(5 - 1, c.tx());
        assertEquals(1, c.ackMseq());
        assertEquals(LOCAL_BUFS - 1, c.peer(), "the peer used one of the buffers we granted");
        c.receiveFilled(); // the peer's message took a buffer, not reposted yet
        c.send(); // carries bufs 2 and mseq_ack 1
        assertEquals(LOCAL_BUFS - 1, c.peer());
        c.receivePosted();
        c.receivePosted(); // more than the Hello announced
        c.send();
        assertEquals(LOCAL_BUFS + 1, c.peer());
    }

    @Test
    void aMessageBeyondTheGrantIsACreditViolation() throws SdpProtocolException {
        Credits c = withPosted(LOCAL_BUFS);
        for (int mseq = 1; mseq <= LOCAL_BUFS; mseq++) {
            c.receive(Bsdh.MID_DATA, mseq, PEER_BUFS, 0);
        }
        assertEquals(0, c.peer());
        SdpProtocolException e = assertThrows(SdpProtocolException.class,
                () -> c.receive(Bsdh.MID_DATA, LOCAL_BUFS + 1, PEER_BUFS, 0));
        assertTrue(e.getMessage().contains("credit violation"), e::getMessage);
        assertTrue(e.getMessage().contains("mseq " + (LOCAL_BUFS + 1)), e::getMessage);
        assertEquals(LOCAL_BUFS, c.ackMseq(), "a refused message changes nothing");
    }

    @Test
    void outOfSequenceAndImpossibleAcknowledgementsAreRefused() throws SdpProtocolException {
        Credits c = withPosted(LOCAL_BUFS);
        c.send();
        c.send();
        SdpProtocolException skip = assertThrows(SdpProtocolException.class,
                () -> c.receive(Bsdh.MID_DATA, 2, PEER_BUFS, 0));
        assertTrue(skip.getMessage().contains("mseq 2, expected 1"), skip::getMessage);
        SdpProtocolException ahead = assertThrows(SdpProtocolException.class,
                () -> c.receive(Bsdh.MID_DATA, 1, PEER_BUFS, 3));
        assertTrue(ahead.getMessage().contains("mseq_ack 3 outside [0, 2]"), ahead::getMessage);
        c.receive(Bsdh.MID_DATA, 1, PEER_BUFS, 2);
        SdpProtocolException back = assertThrows(SdpProtocolException.class,
                () -> c.receive(Bsdh.MID_DATA, 2, PEER_BUFS, 1));
        assertTrue(back.getMessage().contains("mseq_ack 1 outside [2, 2]"), back::getMessage);
        assertEquals(PEER_BUFS, c.tx(), "the refused messages took no credits");
    }
}
