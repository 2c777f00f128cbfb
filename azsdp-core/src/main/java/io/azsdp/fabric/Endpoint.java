package io.azsdp.fabric;

import java.io.Closeable;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.util.function.BooleanSupplier;

/**
 * One reliable, connected queue pair (the RC QP of verbs). All posts are non-blocking: they either queue the work
 * request or throw. Completions are delivered to the {@link CompletionHandler}, from a provider thread or inline from
 * the posting thread, in posting order per opcode class (sends, receives, one-sided ops).
 *
 * <p>An incoming SEND is matched with the oldest posted receive; when none is posted the provider holds the message
 * (infinite receiver-not-ready retry), so a peer that honours credits never loses a message.
 *
 * <p>Memory is registered per endpoint (one protection domain per connection). A remote READ or WRITE outside a
 * registered region or with a wrong key fails with {@link WcStatus#REM_ACCESS_ERR} and touches no memory; as with
 * verbs, such an error breaks the connection.
 */
public interface Endpoint extends Closeable {

    String fabricName();

    InetSocketAddress localAddress();

    InetSocketAddress remoteAddress();

    /** Must be called once, before {@link #start()}. */
    void setHandler(CompletionHandler handler);

    /** Starts delivering receive completions. Receives may be posted before. */
    void start();

    /** Registers a direct buffer's [position, limit) range for local and remote access. */
    MemoryRegion register(ByteBuffer buffer) throws IOException;

    /**
     * Registers a direct buffer's [position, limit) range for this side's posts only, as a verbs region with local
     * access alone: the peer's READ or WRITE with its key is refused like one with a wrong key.
     */
    MemoryRegion registerLocal(ByteBuffer buffer) throws IOException;

    /** Deregisters; later remote accesses with its key fail. Idempotent. */
    void deregister(MemoryRegion region);

    /**
     * Posts a receive of at most {@code length} bytes into the region's range. In place (see {@link #receiveInPlace})
     * the region is null and the offset 0, and posting a {@code wrId} again hands back the memory of the message last
     * delivered to it.
     */
    void postRecv(long wrId, MemoryRegion region, int offset, int length) throws IOException;

    /**
     * Asks for receives in place, before {@link #start()}: a provider that holds incoming messages in memory of its
     * own then delivers each one where it lies, through {@link CompletionHandler#onRecvInPlace}, instead of copying
     * it into the posted receive. The message stays there, unchanged, until its {@code wrId} is posted again. The
     * returned view covers every such message; it stays readable until {@link #close} has been called, even after
     * {@link #abort} or a disconnect, so that what arrived before a failure can still be read. Null when the
     * provider copies into posted receives (the default); nothing changes then.
     */
    default ByteBuffer receiveInPlace() {
        return null;
    }

    /**
     * In place, after posting a receive: true when messages handed back out of order left too little room for what
     * the peer may still send (the oldest message held pins everything after it). The owner must then copy out the
     * messages it holds longest and {@link #releaseReceived} them before it grants the peer more credits.
     */
    default boolean receivesCrowded() {
        return false;
    }

    /** In place: the message of receive {@code wrId} is no longer read, though the receive is not posted again yet. */
    default void releaseReceived(long wrId) {
    }

    void postSend(long wrId, MemoryRegion region, int offset, int length) throws IOException;

    /**
     * One SEND of a head range followed by a body range of another region (a work request with two scatter/gather
     * entries, as in verbs): the peer receives them as one message. Both ranges must stay unchanged until the SEND
     * completes.
     */
    void postSendGather(long wrId, MemoryRegion head, int headOffset, int headLength, MemoryRegion body,
                        int bodyOffset, int bodyLength) throws IOException;

    /**
     * A SEND whose delivery may wait until the peer next looks for messages anyway: a provider may skip waking the
     * peer's sleeping progress thread for it, unless a peer thread declared with {@link #waitingForPeer} that it
     * waits. The caller bounds how many such SENDs can pile up (they hold the peer's receives).
     */
    default void postSendDeferrable(long wrId, MemoryRegion region, int offset, int length) throws IOException {
        postSend(wrId, region, offset, length);
    }

    /**
     * Brackets a wait of this side for the peer's deferrable SENDs ({@code true} before, {@code false} after): while
     * no thread waits, a provider may let them sit until the next look. Calls nest across threads.
     */
    default void waitingForPeer(boolean waiting) {
    }

    /** One-sided read of {@code length} bytes at {@code remoteAddress} (key {@code rkey}) into the local region. */
    void postRead(long wrId, MemoryRegion local, int offset, int length, long remoteAddress, int rkey)
            throws IOException;

    /** One-sided write of the local range to {@code remoteAddress} (key {@code rkey}). */
    void postWrite(long wrId, MemoryRegion local, int offset, int length, long remoteAddress, int rkey)
            throws IOException;

    /**
     * From now on posts on this endpoint may only queue their work until {@link #flush}: a provider that transmits
     * on the posting thread (a socket write) then does it in {@code flush}, which the caller promises to call after
     * every batch of posts, before it waits for anything. The SDP engine posts while holding its connection lock and
     * flushes after releasing it, so no thread of that connection waits for the lock during a system call. Providers
     * that only queue anyway ignore it.
     */
    default void deferTransmission() {
    }

    /** Transmits what posts queued since {@link #deferTransmission}. */
    default void flush() {
    }

    /**
     * Address of a 32-bit word that only the peer writes (with {@link #postNotify}), in memory the peer can write and
     * wake waiters on without any thread of this process running; 0 when the fabric has none. It stays mapped until
     * the endpoint's disconnect has been delivered and {@link #close}/{@link #abort} was called. Asynchronous zero copy
     * waits on it to release a writer blocked on a protected page: that must never depend on a thread of its own JVM.
     * The 32-bit word after it counts this side's threads asleep on it (see NativeLib#protect).
     */
    long notifyWordAddress();

    /** Stores {@code value} into the peer's notify word and wakes the peer's threads asleep on it, if any. */
    void postNotify(int value) throws IOException;

    /** The peer's process id when it runs on this host and is known, else 0. */
    int peerPid();

    /**
     * Lets a thread that is about to wait for a completion deliver incoming work itself, polling for up to
     * {@code maxNanos}, instead of waiting for the provider's thread to be woken and scheduled. Completions are
     * delivered to the handler on the calling thread, which must hold none of the handler's locks. Returns true when it
     * delivered anything; false when the provider has no such fast path, or (spinning providers) at once when another
     * thread is delivering. A blocking provider ({@link #pollBlocks}) also returns once {@code done} is true: the
     * caller's event may come from another thread; it looks without blocking for up to
     * {@link FabricOptions#busyPollMicros} before it waits in the kernel.
     */
    default boolean poll(long maxNanos, BooleanSupplier done) {
        return false;
    }

    /** True when {@link #poll} can deliver anything at all (worth retrying while another thread delivers). */
    default boolean canPoll() {
        return false;
    }

    /**
     * True when {@link #poll} waits in the kernel instead of spinning: a waiter may then poll for as long as it would
     * otherwise wait, and should not retry while another thread delivers.
     */
    default boolean pollBlocks() {
        return false;
    }

    /** Ends a blocking {@link #poll} early: the state its caller waits on changed without any incoming work. */
    default void wakePoller() {
    }

    /** True until the endpoint is closed, aborted or broken. */
    boolean isOpen();

    /** Orderly close: sends already posted are delivered first, then the peer sees a disconnect. Idempotent. */
    @Override
    void close();

    /** Abortive close: pending work is flushed with errors, the peer sees a disconnect at once. Idempotent. */
    void abort();
}
