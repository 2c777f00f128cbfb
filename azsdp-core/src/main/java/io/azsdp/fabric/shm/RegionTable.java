package io.azsdp.fabric.shm;

import static io.azsdp.fabric.shm.ShmSegment.ENTRY_ADDRESS;
import static io.azsdp.fabric.shm.ShmSegment.ENTRY_KEY;
import static io.azsdp.fabric.shm.ShmSegment.ENTRY_LENGTH;
import static io.azsdp.fabric.shm.ShmSegment.ENTRY_PINS;
import static io.azsdp.fabric.shm.ShmSegment.ENTRY_SHARE_FD;
import static io.azsdp.fabric.shm.ShmSegment.ENTRY_SHARE_INODE;
import static io.azsdp.fabric.shm.ShmSegment.ENTRY_SHARE_OFFSET;
import static io.azsdp.fabric.shm.ShmSegment.ENTRY_SHARE_SIZE;
import static io.azsdp.fabric.shm.ShmSegment.ENTRY_SIZE;
import static io.azsdp.fabric.shm.ShmSegment.INT;
import static io.azsdp.fabric.shm.ShmSegment.LONG;

import io.azsdp.fabric.MemoryRegion;
import io.azsdp.memory.ShareableMemory;
import io.azsdp.nativeio.NativeLib;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One side's memory-region table in the segment. The owner's instance registers and deregisters (and remembers the
 * {@link MemoryRegion} objects so that posts can check a region is really theirs); the peer's instance only pins and
 * reads entries to validate one-sided operations.
 *
 * <p>Key = generation &lt;&lt; slotBits | slot, never 0: a key that was deregistered (or re-registered in the same
 * slot) no longer matches the entry. Entries are published by writing address and length, then the key with a
 * release store.
 *
 * <p>Pins make deregistration exact: a peer increments {@code pins} (a volatile read-modify-write) before reading the
 * key and keeps it during its copy; the owner clears the key (volatile store) and then waits for {@code pins} to drain.
 * By Dekker, either the peer sees the cleared key and touches nothing, or the owner waits for its copy to finish; so
 * once {@code deregister} returns no peer access to that memory is in flight or can start.
 */
final class RegionTable {
    /** Flag in an entry's length word (lengths are below 2^31). */
    private static final long READ_ONLY = 1L << 62;

    private static final Logger LOG = LoggerFactory.getLogger(RegionTable.class);

    private final ByteBuffer buf;
    private final int base;
    private final int entries;
    private final int slotBits;
    private final int slotMask;

    // Owner state, guarded by this.
    private final MemoryRegion[] regions;
    private final int[] generations;
    private final int[] freeSlots;
    private int freeCount;
    private boolean detached;

    /** Table {@code t} of {@code seg}; {@code owner} when this process writes it. */
    RegionTable(ShmSegment seg, int t, boolean owner) {
        this.buf = seg.buf;
        this.base = seg.layout.tableOffset[t];
        this.entries = seg.layout.params[t].maxRegions();
        this.slotBits = Math.max(1, 32 - Integer.numberOfLeadingZeros(entries - 1));
        this.slotMask = (1 << slotBits) - 1;
        if (owner) {
            regions = new MemoryRegion[entries];
            generations = new int[entries];
            freeSlots = new int[entries];
            for (int i = 0; i < entries; i++) {
                freeSlots[i] = entries - 1 - i; // hand out low slots first
            }
            freeCount = entries;
        } else {
            regions = null;
            generations = null;
            freeSlots = null;
        }
    }

    private int entry(int slot) {
        return base + slot * ENTRY_SIZE;
    }

    // ------------------------------------------------------------------ owner

    /** Registers; only a {@code remote} region is published in the table, so only its key lets the peer in. */
    synchronized MemoryRegion register(ByteBuffer buffer, boolean remote) throws IOException {
        if (!buffer.isDirect()) {
            throw new IllegalArgumentException("shm can only register direct buffers: " + buffer);
        }
        if (detached) {
            throw new IOException("endpoint is closed");
        }
        if (freeCount == 0) {
            throw new IOException("too many memory regions registered (max " + entries + ")");
        }
        int slot = freeSlots[--freeCount];
        int gen = (generations[slot] + 1) & (-1 >>> slotBits);
        if (gen == 0) {
            gen = 1; // key 0 means "free"
        }
        generations[slot] = gen;
        int key = (gen << slotBits) | slot;
        ByteBuffer view = buffer.slice();
        long address = NativeLib.address(buffer) + buffer.position();
        if (remote) {
            publish(slot, key, address, view);
        }
        MemoryRegion region = new MemoryRegion(view, address, key, key);
        regions[slot] = region;
        return region;
    }

    private void publish(int slot, int key, long address, ByteBuffer view) {
        int e = entry(slot);
        LONG.set(buf, e + ENTRY_ADDRESS, address);
        LONG.set(buf, e + ENTRY_LENGTH, view.capacity() | (view.isReadOnly() ? READ_ONLY : 0L));
        ShareableMemory.Shared shared = ShareableMemory.find(address, view.capacity());
        INT.set(buf, e + ENTRY_SHARE_FD, shared == null ? -1 : shared.fd());
        if (shared != null) {
            LONG.set(buf, e + ENTRY_SHARE_INODE, shared.inode());
            LONG.set(buf, e + ENTRY_SHARE_OFFSET, address - shared.address());
            LONG.set(buf, e + ENTRY_SHARE_SIZE, shared.size());
        }
        INT.setRelease(buf, e + ENTRY_KEY, key);
    }

    /** Clears the entry and waits until no peer copy into it is in flight (see the class comment). Idempotent. */
    synchronized void deregister(MemoryRegion region, BooleanSupplier peerAlive, long maxWaitNanos) {
        int slot = region.lkey() & slotMask;
        if (slot >= entries || regions[slot] != region) {
            return;
        }
        regions[slot] = null;
        freeSlots[freeCount++] = slot;
        if (!detached) {
            INT.setVolatile(buf, entry(slot) + ENTRY_KEY, 0);
            awaitUnpinned(slot, peerAlive, maxWaitNanos);
        }
    }

    /** True when {@code region} is currently registered here. Lock-free: posts call it on every work request. */
    boolean owns(MemoryRegion region) {
        int slot = region.lkey() & slotMask;
        return slot < entries && regions[slot] == region;
    }

    /**
     * The endpoint is going away: revoke every key so the peer can no longer touch our memory, and wait for copies in
     * flight. Local regions stay known so that a later {@link #deregister} is a harmless no-op.
     */
    synchronized void revokeAll(BooleanSupplier peerAlive, long maxWaitNanos) {
        if (detached) {
            return;
        }
        for (int slot = 0; slot < entries; slot++) {
            if (regions[slot] != null) {
                INT.setVolatile(buf, entry(slot) + ENTRY_KEY, 0);
            }
        }
        for (int slot = 0; slot < entries; slot++) {
            if (regions[slot] != null) {
                awaitUnpinned(slot, peerAlive, maxWaitNanos);
            }
        }
    }

    /** No segment access after this (the segment is about to be unmapped). */
    synchronized void detach() {
        detached = true;
    }

    /**
     * A peer copy takes microseconds; a peer that stays pinned is stopped or dead. Give up when it is dead, or after
     * the liveness timeout (then a stopped peer could still write late: logged).
     */
    private void awaitUnpinned(int slot, BooleanSupplier peerAlive, long maxWaitNanos) {
        int pins = entry(slot) + ENTRY_PINS;
        long start = System.nanoTime();
        long lastCheck = start;
        for (int spins = 0; (int) INT.getVolatile(buf, pins) != 0; spins++) {
            if (spins < 100) {
                Thread.onSpinWait();
                continue;
            }
            LockSupport.parkNanos(50_000);
            long now = System.nanoTime();
            if (now - lastCheck > TimeUnit.MILLISECONDS.toNanos(50)) {
                lastCheck = now;
                if (!peerAlive.getAsBoolean()) {
                    return;
                }
                if (now - start > maxWaitNanos) {
                    LOG.warn("shm: peer still accessing memory region slot {} after {} ms; deregistering anyway",
                            slot, TimeUnit.NANOSECONDS.toMillis(now - start));
                    return;
                }
            }
        }
    }

    // ------------------------------------------------------------------ peer

    /**
     * Pins the entry named by {@code rkey} if the key is current.
     *
     * @return the slot (to pass to {@link #address}, {@link #length} and {@link #unpin}), or -1 (nothing pinned)
     */
    int pin(int rkey) {
        int slot = rkey & slotMask;
        if (rkey == 0 || slot >= entries) {
            return -1;
        }
        int e = entry(slot);
        INT.getAndAdd(buf, e + ENTRY_PINS, 1);
        if ((int) INT.getVolatile(buf, e + ENTRY_KEY) != rkey) {
            INT.getAndAdd(buf, e + ENTRY_PINS, -1);
            return -1;
        }
        return slot;
    }

    /** Stable while pinned: the owner only rewrites an entry after it has drained the pins. */
    long address(int slot) {
        return (long) LONG.get(buf, entry(slot) + ENTRY_ADDRESS);
    }

    long length(int slot) {
        return (long) LONG.get(buf, entry(slot) + ENTRY_LENGTH) & ~READ_ONLY;
    }

    /**
     * Peer side, slot pinned: where the pinned region can be copied from in a mapping of the owner's shareable
     * memory, via {@code mappings}; 0 when it is not in shareable memory or cannot be mapped (then use CMA).
     */
    long sharedAddress(int slot, PeerMappings mappings) {
        int e = entry(slot);
        int fd = (int) INT.get(buf, e + ENTRY_SHARE_FD);
        if (fd < 0) {
            return 0;
        }
        long offset = (long) LONG.get(buf, e + ENTRY_SHARE_OFFSET);
        long size = (long) LONG.get(buf, e + ENTRY_SHARE_SIZE);
        if (offset < 0 || size <= 0 || offset > size - length(slot)) {
            return 0; // inconsistent: let CMA validate the access instead
        }
        long base = mappings.map(fd, (long) LONG.get(buf, e + ENTRY_SHARE_INODE), size);
        return base == 0 ? 0 : base + offset;
    }

    /** Registered from a read-only buffer: the peer may READ it but never WRITE it. */
    boolean readOnly(int slot) {
        return ((long) LONG.get(buf, entry(slot) + ENTRY_LENGTH) & READ_ONLY) != 0;
    }

    void unpin(int slot) {
        INT.getAndAdd(buf, entry(slot) + ENTRY_PINS, -1);
    }
}
