package io.azsdp.fabric.shm;

import static io.azsdp.fabric.shm.ShmTestSupport.fill;
import static io.azsdp.fabric.shm.ShmTestSupport.mismatch;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * One ring, its producer and its consumer driven by the test alone (no endpoint threads), so that where the consumer
 * stands is exact. 504-byte messages take 512 bytes each, so 4 receives make a ring of exactly 2560 bytes, with
 * nothing from rounding to spare.
 */
class ShmRingTest {
    private static final int MAX = 504;
    private static final int RECVS = 4;

    private Path file;
    private ShmRing producer;
    private ShmRing consumer;
    private final ByteBuffer src = ByteBuffer.allocateDirect(MAX);
    private final ByteBuffer dst = ByteBuffer.allocateDirect(MAX);

    @BeforeEach
    void map() throws Exception {
        ShmSegment.Params p = new ShmSegment.Params(MAX, RECVS, 4);
        ShmSegment.Layout layout = new ShmSegment.Layout(p, p, 4096);
        assertEquals(2560, layout.ringCapacity[1]);
        file = Files.createTempFile("azsdp-ring", ".seg");
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.setLength(layout.size);
        }
        ShmSegment seg = ShmSegment.create(file, layout, 1, 1);
        producer = new ShmRing(seg, 1);
        consumer = new ShmRing(seg, 1);
    }

    @AfterEach
    void unlink() throws Exception {
        Files.deleteIfExists(file);
    }

    private boolean offer(int length, int seed) {
        fill(src, 0, length, seed);
        return producer.offer(src, 0, length, false);
    }

    private void take(int length, int seed) throws Exception {
        assertEquals(length, consumer.next());
        consumer.copyTo(dst, 0, length);
        consumer.consume();
        assertEquals(-1, mismatch(dst, 0, length, seed));
    }

    /**
     * Messages that fill every posted receive still fit when the wrap wastes the most (a pad of a largest record less 8
     * bytes, not yet skipped by the consumer) and the producer keeps 8 bytes for the next header.
     */
    @Test
    void postedReceivesFitWhenTheWrapWastesTheMost() throws Exception {
        int seed = 0;
        for (int length : new int[] {504, 504, 504, 256, 248}) { // records up to offset 2056: 504 bytes before the end
            assertTrue(offer(length, seed));
            take(length, seed++);
        }
        assertEquals(-1, consumer.next());
        for (int k = 0; k < RECVS; k++) { // the first after a pad of 504 bytes
            assertTrue(offer(MAX, seed + k), "message " + k);
        }
        assertFalse(offer(8, 99), "one more than the receives posted");
        for (int k = 0; k < RECVS; k++) {
            take(MAX, seed + k);
        }
        assertEquals(-1, consumer.next());
    }

    /** A producer ignoring credits is refused before it would zero the header of the oldest record unread. */
    @Test
    void aFullRingKeepsEveryRecordItAccepted() throws Exception {
        int accepted = 0;
        while (offer(MAX, accepted)) {
            accepted++;
        }
        assertEquals(RECVS, accepted); // a fifth would end exactly at the first one's header
        for (int k = 0; k < accepted; k++) {
            take(MAX, k);
        }
        assertEquals(-1, consumer.next());
    }

    /**
     * Many laps of records of every size: the consumer sees each record once, in order, and never a stale header of an
     * earlier lap as a new one.
     */
    @Test
    void recordsOfEverySizeOverManyLaps() throws Exception {
        Random random = new Random(42);
        int[] lengths = new int[RECVS];
        int produced = 0;
        int consumed = 0;
        while (consumed < 20_000) {
            if (produced - consumed < RECVS && random.nextBoolean()) {
                int length = random.nextInt(MAX + 1);
                assertTrue(offer(length, produced), "record " + produced);
                lengths[produced++ % RECVS] = length;
            } else if (produced > consumed) {
                take(lengths[consumed % RECVS], consumed);
                consumed++;
            } else {
                assertEquals(-1, consumer.next());
            }
        }
    }
}
