package io.azsdp.fabric.tcp;

import io.azsdp.fabric.MemoryRegion;

import java.nio.ByteBuffer;

/**
 * Provider-side state of one registered region. I/O never goes through the user's {@link MemoryRegion#buffer()} (its
 * position is the user's); the reader thread and the writer thread use their own cached duplicate views of
 * {@link #base}, so no view is allocated per message and the two threads never share a position/limit.
 */
final class Region {
    final int slot;
    final int key;
    final MemoryRegion handle;
    /** The peer may name it in one-sided operations. */
    final boolean remote;
    private final ByteBuffer base;
    /** Used only by the reader thread, for one payload at a time. */
    private final ByteBuffer readerView;
    /**
     * Used only by the writer thread; one per batch position, since a batch may name a region several times, and as
     * many again for the bodies of gathered SENDs (a SEND may gather from its own head's region).
     */
    private final ByteBuffer[] writerViews;

    Region(int slot, int key, ByteBuffer base, MemoryRegion handle, int writerViewCount, boolean remote) {
        this.slot = slot;
        this.remote = remote;
        this.key = key;
        this.base = base;
        this.handle = handle;
        this.readerView = base.duplicate();
        this.writerViews = new ByteBuffer[writerViewCount];
    }

    /** Registered from a read-only buffer: a READ source only; a peer's WRITE into it is refused. */
    boolean readOnly() {
        return base.isReadOnly();
    }

    int length() {
        return base.capacity();
    }

    /** Reader thread only. The range has been checked by the caller. */
    ByteBuffer readerView(int offset, int length) {
        return frame(readerView, offset, length);
    }

    /** Writer thread only. */
    ByteBuffer writerView(int batchIndex, int offset, int length) {
        ByteBuffer v = writerViews[batchIndex];
        if (v == null) {
            v = base.duplicate();
            writerViews[batchIndex] = v;
        }
        return frame(v, offset, length);
    }

    private static ByteBuffer frame(ByteBuffer v, int offset, int length) {
        v.limit(offset + length).position(offset);
        return v;
    }
}
