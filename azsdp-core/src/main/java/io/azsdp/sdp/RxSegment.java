package io.azsdp.sdp;

import java.nio.ByteBuffer;

/** One entry of a connection's receive stream (RxQueue): a held Data message or a SrcAvail advert. Pooled. */
final class RxSegment {
    boolean advert;
    // Data: receive buffer, and where its unread bytes are
    int buffer;
    ByteBuffer from;
    int offset;
    int remaining;
    // SrcAvail
    /** Its sender does not wait for it (Bsdh.FLAG_ASYNC). */
    boolean async;
    int len;
    int rkey;
    long vaddr;
    int mseq;
    int requested;
    int readDone;
    int consumed;
}
