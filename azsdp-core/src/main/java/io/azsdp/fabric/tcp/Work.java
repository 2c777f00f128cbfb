package io.azsdp.fabric.tcp;

/**
 * One queued work item: a posted work request or a response the reader owes the peer. Instances live in a
 * {@link WorkRing} and are reused, so posting allocates nothing; whoever consumes an entry copies what it needs before
 * the entry is released back to the ring.
 */
final class Work {
    /** A {@link Wire} frame type (writer queue, one-sided queue), unused in the receive queue. */
    byte type;
    /** WcStatus of a response frame. */
    int status;
    long wrId;
    int reqId;
    /** Local payload source/destination; for READ_RESP the region being read by the peer. */
    Region region;
    int offset;
    int length;
    /** A gathered SEND's second part (its last {@code bodyLength} of {@code length} bytes); null otherwise. */
    Region body;
    int bodyOffset;
    int bodyLength;
    long remoteAddress;
    int rkey;

    /** Drops the region reference so a released entry does not keep deregistered memory reachable. */
    void release() {
        region = null;
        body = null;
    }
}
