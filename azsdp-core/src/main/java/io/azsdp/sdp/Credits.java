package io.azsdp.sdp;

/**
 * SDP's message sequence numbers and credits (see {@link Bsdh}). Every message carries its {@code mseq}, the mseq of
 * the last message its sender received ({@code mseq_ack}), and how many receive buffers its sender has posted beyond
 * that one ({@code bufs}). A side may send while it has credits: the peer's last {@code bufs} minus what it sent
 * since the peer's {@code mseq_ack}. Sequence numbers wrap; every comparison is of differences. Not thread-safe: the
 * connection's lock guards it.
 */
final class Credits {
    private int txMseq;
    private int rxMseq;
    /** The peer's last bufs and mseq_ack: our credits. */
    private int peerBufs;
    private int peerMseqAck;
    /** What our last message told the peer (bufs, mseq_ack): its credits as far as we know. */
    private int advBufs;
    private int advMseqAck;
    /** Our receive buffers posted and not yet filled. */
    private int posted;

    /** With the buffers each side announced in its Hello (none posted yet here: see {@link #posted()}). */
    Credits(int peerBufs, int localBufs) {
        this.peerBufs = peerBufs;
        this.advBufs = localBufs;
    }

    /** Messages we may send now. */
    int tx() {
        return peerBufs - (txMseq - peerMseqAck);
    }

    /** The peer's credits as far as we know: what we granted it minus what it has used since. */
    int peer() {
        return advBufs - (rxMseq - advMseqAck);
    }

    /** Receive buffers posted beyond the last message received: the {@code bufs} our next message carries. */
    int posted() {
        return posted;
    }

    void receivePosted() {
        posted++;
    }

    void receiveFilled() {
        posted--;
    }

    /** The mseq the next message will carry. */
    int nextMseq() {
        return txMseq + 1;
    }

    /** The mseq of the last message sent. */
    int lastMseq() {
        return txMseq;
    }

    /** The mseq of the last message received: the {@code mseq_ack} our next message carries. */
    int ackMseq() {
        return rxMseq;
    }

    /** A message is going out with {@link #posted()} and {@link #ackMseq()}: returns its mseq. */
    int send() {
        advBufs = posted;
        advMseqAck = rxMseq;
        return ++txMseq;
    }

    /**
     * Checks a received message's header against the sequence and the credits we granted, then takes its credits.
     * Throws, leaving the state as it was, when the peer broke the protocol.
     */
    void receive(int mid, int mseq, int bufs, int ack) throws SdpProtocolException {
        if (mseq != rxMseq + 1) {
            throw new SdpProtocolException("out-of-sequence " + Bsdh.midName(mid) + ": mseq " + mseq + ", expected "
                    + (rxMseq + 1));
        }
        if (mseq - advMseqAck > advBufs) {
            throw new SdpProtocolException("credit violation: " + Bsdh.midName(mid) + " mseq " + mseq
                    + " beyond the " + advBufs + " buffers granted after mseq " + advMseqAck);
        }
        if (ack - peerMseqAck < 0 || ack - txMseq > 0) {
            throw new SdpProtocolException("mseq_ack " + ack + " outside [" + peerMseqAck + ", " + txMseq + "]");
        }
        rxMseq = mseq;
        peerBufs = bufs;
        peerMseqAck = ack;
    }

    @Override
    public String toString() {
        return "txMseq=" + txMseq + " rxMseq=" + rxMseq + " peerBufs=" + peerBufs + " peerMseqAck=" + peerMseqAck
                + " advBufs=" + advBufs + " advMseqAck=" + advMseqAck;
    }
}
