package io.azsdp.cli.micro;

import java.nio.ByteBuffer;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32C;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * What a receiving application of {@code azsdp bench} does per message, on one thread and without any transport:
 * copy one direct buffer into another (the single copy of a zero-copy READ on {@code shm}), CRC32C it (the bench's
 * default verification), and both in turn. Their throughput bounds what one receiving thread can take in.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
public class ReceiverWork {
    @Param({"16384", "65536", "262144", "1048576", "4194304"})
    public int size;

    private ByteBuffer src;
    private ByteBuffer dst;
    private final CRC32C crc = new CRC32C();

    @Setup
    public void setup() {
        byte[] content = new byte[size];
        ThreadLocalRandom.current().nextBytes(content);
        src = ByteBuffer.allocateDirect(size).put(content).flip();
        dst = ByteBuffer.allocateDirect(size);
    }

    @Benchmark
    public ByteBuffer copy() {
        return dst.put(0, src, 0, size);
    }

    @Benchmark
    public long crc32c() {
        crc.reset();
        crc.update(src.clear());
        return crc.getValue();
    }

    @Benchmark
    public long copyThenCrc32c() {
        dst.put(0, src, 0, size);
        crc.reset();
        crc.update(dst.clear());
        return crc.getValue();
    }
}
