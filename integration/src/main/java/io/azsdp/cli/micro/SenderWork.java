package io.azsdp.cli.micro;

import io.azsdp.AzSdp;
import io.azsdp.memory.ProtectedMemory;
import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * What an AZ-SDP sender pays for a message whose pages are not read-only already: protect them (mprotect read-only)
 * and, once the peer has read them, release them (read-write again), through the native library. In GB/s of buffer,
 * beside {@link ReceiverWork}: where it is below {@code copy}, waiting for the peer's one-copy READ costs the sender
 * less than protecting fresh pages (see {@code azsdp.protection.syncBelow}).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
public class SenderWork {
    @Param({"16384", "65536", "262144", "1048576", "4194304"})
    public int size;

    private ByteBuffer pages;
    private ByteBuffer words;
    private long address;
    private long word;

    @Setup
    public void setup() {
        String why = ProtectedMemory.unavailableReason();
        if (why != null) {
            throw new IllegalStateException("page protection unavailable: " + why);
        }
        pages = AzSdp.allocate(size); // page-aligned
        for (int p = 0; p < size; p += ProtectedMemory.pageSize()) {
            pages.put(p, (byte) 1); // mapped and dirty, as an application's buffer is
        }
        words = ByteBuffer.allocateDirect(16);
        address = ProtectedMemory.address(pages);
        word = (ProtectedMemory.address(words) + 7) & ~7L; // the completion word and its sleeper count
    }

    @Benchmark
    public int protectThenRelease() {
        int id = ProtectedMemory.protect(address, size, word, 1, 0);
        ProtectedMemory.release(id);
        return id;
    }
}
