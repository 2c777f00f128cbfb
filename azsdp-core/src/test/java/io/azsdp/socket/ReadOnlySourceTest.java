package io.azsdp.socket;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.ref.WeakReference;
import java.nio.MappedByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * A mapped file segment, which is what a Spark block server writes, is not kept by the connection once written: its
 * mapping, and a deleted shuffle file's disk space, go with the application's last reference, while the connection
 * stays open. Every path that may send it is covered: a two-part SEND (bcopy), synchronous zero copy, and the read-only
 * fallback of AZ-SDP.
 */
@Timeout(120)
class ReadOnlySourceTest {
    /** Above the smallest two-part SEND, within one send buffer. */
    private static final int SIZE = 32 << 10;
    private static final int WRITES = 4;

    @TempDir
    Path dir;

    @ParameterizedTest
    @CsvSource({"shm,bcopy", "shm,zcopy", "shm,azsdp", "shm,auto", "tcp,bcopy", "tcp,zcopy", "tcp,azsdp", "tcp,auto"})
    void aWrittenMappedSegmentIsNotKept(String fabric, String mode) throws Exception {
        byte[] content = new byte[SIZE];
        new Random(SIZE).nextBytes(content);
        Path file = Files.write(dir.resolve("segment"), content);
        try (SocketPair pair = SocketPair.open(fabric, mode)) {
            ByteChannel in = pair.azPeer().byteChannel();
            CompletableFuture<Long> received =
                    CompletableFuture.supplyAsync(() -> SocketPair.drainCrc(in, (long) WRITES * SIZE, SIZE));
            WeakReference<MappedByteBuffer> mapped = writeMapped(file, pair.client.byteChannel());
            CRC32C expected = new CRC32C();
            for (int i = 0; i < WRITES; i++) {
                expected.update(content);
            }
            assertEquals(expected.getValue(), received.get(60, TimeUnit.SECONDS), "CRC32C of every byte");
            Files.delete(file);
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (mapped.get() != null && System.nanoTime() < deadline) {
                System.gc();
                Thread.sleep(20);
            }
            assertTrue(mapped.get() == null, fabric + "/" + mode + ": the connection still holds the mapped segment");
        }
    }

    /** Writes the file's mapping {@link #WRITES} times and drops every reference of this thread to it. */
    private static WeakReference<MappedByteBuffer> writeMapped(Path file, ByteChannel out) throws IOException {
        MappedByteBuffer segment;
        try (FileChannel fc = FileChannel.open(file, StandardOpenOption.READ)) {
            segment = fc.map(FileChannel.MapMode.READ_ONLY, 0, SIZE);
        }
        assertTrue(segment.isReadOnly() && segment.isDirect());
        for (int i = 0; i < WRITES; i++) {
            segment.clear();
            while (segment.hasRemaining()) {
                out.write(segment);
            }
        }
        return new WeakReference<>(segment);
    }
}
