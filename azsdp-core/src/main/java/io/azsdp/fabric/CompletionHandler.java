package io.azsdp.fabric;

import java.io.IOException;

/** Receives work completions. Primitive arguments only: completions are on the hot path and must not allocate. */
public interface CompletionHandler {

    /**
     * @param opcode  one of {@link Opcode}
     * @param wrId    the id given when the work request was posted
     * @param byteLen bytes received (RECV) or transferred (READ, WRITE, SEND)
     * @param status  one of {@link WcStatus}
     */
    void onCompletion(int opcode, long wrId, int byteLen, int status);

    /**
     * A successful RECV delivered in place (see Endpoint#receiveInPlace): the message is {@code byteLen} bytes at
     * {@code offset} of the view. Failed receives still complete through {@link #onCompletion}.
     */
    default void onRecvInPlace(long wrId, int offset, int byteLen) {
        throw new IllegalStateException("a receive in place for a handler whose endpoint was not asked for them");
    }

    /**
     * The connection is gone: closed by the peer, aborted, or broken (peer died, transport error). Called once; every
     * work request still posted then completes with {@link WcStatus#FLUSH_ERR} (before or after this call).
     *
     * @param cause null for an orderly close by the peer
     */
    void onDisconnect(IOException cause);
}
