package io.azsdp.sdp;

import java.util.Locale;

/** How a socket moves written bytes. */
public enum TransferMode {
    /** Buffered copy through private receive buffers, with credit flow control. */
    BCOPY,
    /** Synchronous zero copy: advertise the buffer (SrcAvail), return when the peer has read it (RdmaRdCompl). */
    ZCOPY,
    /**
     * BCopy below the zero-copy threshold, ZCopy at or above it for direct buffers; heap arrays always by BCopy (they
     * are copied anyway, so a synchronous advert of the copy would only add round trips).
     */
    AUTO,
    /**
     * Asynchronous zero copy (the paper's AZ-SDP) at or above the threshold, BCopy below: the buffer's pages are
     * protected and advertised and the write returns at once; heap arrays are copied and sent asynchronously.
     */
    AZSDP;

    public static TransferMode parse(String s) {
        return valueOf(s.toUpperCase(Locale.ROOT));
    }
}
