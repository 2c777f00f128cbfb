package io.azsdp.cli.bench;

import io.azsdp.cli.Link;
import java.nio.ByteBuffer;
import java.util.concurrent.ThreadLocalRandom;
import java.util.zip.CRC32C;

/**
 * What a sender writes: message i is buffer {@code i % buffers}, random content, and with {@code stamp} the
 * application first stores the message number into one byte of every page of it (the {@code reuse} experiment: in
 * {@code azsdp} mode a store into a page still in flight waits for the peer's READ). {@link #expectedCrc} replays the
 * same content on heap copies, before the timed loop.
 */
public final class Payload {
    static final int PAGE = 4096;

    private final int size;
    private final ByteBuffer[] buffers;
    private final byte[][] content;
    private final boolean stamp;

    public Payload(Link link, int size, int buffers, boolean stamp) {
        this.size = size;
        this.stamp = stamp;
        this.buffers = new ByteBuffer[buffers];
        this.content = new byte[buffers][size];
        for (int b = 0; b < buffers; b++) {
            ThreadLocalRandom.current().nextBytes(content[b]);
            this.buffers[b] = link.allocate(size).put(content[b]).flip();
        }
    }

    int size() {
        return size;
    }

    /** Message i, ready to write (no allocation). */
    ByteBuffer next(long i) {
        ByteBuffer b = buffers[(int) (i % buffers.length)];
        if (stamp) {
            for (int p = 0; p < size; p += PAGE) {
                b.put(p, (byte) i);
            }
        }
        return b.clear();
    }

    /** CRC32C of messages 0 .. count-1 as {@link #next} produces them. */
    long expectedCrc(long count) {
        CRC32C crc = new CRC32C();
        for (long i = 0; i < count; i++) {
            byte[] c = content[(int) (i % content.length)];
            if (stamp) {
                for (int p = 0; p < size; p += PAGE) {
                    c[p] = (byte) i;
                }
            }
            crc.update(c);
        }
        return crc.getValue();
    }
}
