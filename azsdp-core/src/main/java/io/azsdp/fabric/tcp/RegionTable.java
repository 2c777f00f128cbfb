package io.azsdp.fabric.tcp;

import io.azsdp.fabric.FabricException;
import io.azsdp.fabric.MemoryRegion;
import io.azsdp.fabric.WcStatus;

import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * The memory regions of one endpoint (its protection domain). A region occupies a slot; its synthetic address is
 * {@code (slot + 1) << 32} (so address 0 is never valid) with the offset in the low 32 bits, and its key (lkey = rkey)
 * is {@code generation << slotBits | slot}. The per-slot generation changes on every registration, so a key kept
 * after {@link #deregister} no longer matches even when the slot is reused; freed slots are reused in FIFO order to
 * make generation wrap-around as late as possible.
 *
 * <p>Lookups are lock-free (the reader validates every remote access); registration changes take the table's monitor.
 */
final class RegionTable {
    private static final int MAX_SLOT_BITS = 24;

    private final AtomicReferenceArray<Region> slots;
    private final int slotBits;
    private final int slotMask;
    private final int generationMask;
    private final int writerViewCount;
    // guarded by this
    private final int[] generations;
    private final int[] free;
    private int freeHead;
    private int freeCount;

    RegionTable(int maxRegions, int writerViewCount) {
        if (maxRegions <= 0 || maxRegions > 1 << MAX_SLOT_BITS) {
            throw new IllegalArgumentException("maxRegions must be in [1, " + (1 << MAX_SLOT_BITS) + "]: " + maxRegions);
        }
        this.slots = new AtomicReferenceArray<>(maxRegions);
        this.slotBits = Math.max(1, 32 - Integer.numberOfLeadingZeros(maxRegions - 1));
        this.slotMask = (1 << slotBits) - 1;
        this.generationMask = (int) ((1L << (32 - slotBits)) - 1);
        this.writerViewCount = writerViewCount;
        this.generations = new int[maxRegions];
        this.free = new int[maxRegions];
        for (int i = 0; i < maxRegions; i++) {
            free[i] = i;
        }
        this.freeCount = maxRegions;
    }

    /** Registers the direct buffer's [position, limit); only a {@code remote} region is found by {@link #remote}. */
    synchronized Region register(ByteBuffer buffer, boolean remote) throws FabricException {
        if (freeCount == 0) {
            throw new FabricException(WcStatus.LOC_PROT_ERR,
                    "cannot register more than " + slots.length() + " memory regions on one endpoint");
        }
        int slot = free[freeHead];
        freeHead = (freeHead + 1) % free.length;
        freeCount--;
        int generation = (generations[slot] + 1) & generationMask;
        if (generation == 0) {
            generation = 1; // key 0 / generation 0 is never valid
        }
        generations[slot] = generation;
        int key = generation << slotBits | slot;
        long address = (long) (slot + 1) << 32;
        MemoryRegion handle = new MemoryRegion(buffer.slice(), address, key, key);
        Region region = new Region(slot, key, buffer.slice(), handle, writerViewCount, remote);
        slots.set(slot, region);
        return region;
    }

    /** Idempotent; ignores regions that are not (or no longer) registered here. */
    void deregister(MemoryRegion handle) {
        if (handle == null) {
            return;
        }
        int slot = handle.lkey() & slotMask;
        synchronized (this) {
            if (slot >= slots.length() || slots.get(slot) == null || slots.get(slot).handle != handle) {
                return;
            }
            slots.set(slot, null);
            free[(freeHead + freeCount) % free.length] = slot;
            freeCount++;
        }
    }

    /** The region behind a handle posted locally; it must be registered with this endpoint. */
    Region local(MemoryRegion handle) throws FabricException {
        if (handle == null) {
            throw new NullPointerException("region");
        }
        int slot = handle.lkey() & slotMask;
        Region r = slot < slots.length() ? slots.get(slot) : null;
        if (r == null || r.handle != handle) {
            throw new FabricException(WcStatus.LOC_PROT_ERR, handle + " is not registered with this endpoint");
        }
        return r;
    }

    boolean isRegistered(Region region) {
        return slots.get(region.slot) == region;
    }

    /**
     * The region a peer's one-sided access of {@code length} bytes at {@code address} with {@code rkey} may touch, or
     * null when the key is wrong or stale or the range is not entirely inside the region.
     */
    Region remote(long address, int rkey, int length) {
        long slot = (address >>> 32) - 1;
        if (slot < 0 || slot >= slots.length() || (rkey & slotMask) != slot || length < 0) {
            return null;
        }
        Region r = slots.get((int) slot);
        if (r == null || !r.remote || r.key != rkey || (address & 0xFFFF_FFFFL) + length > r.length()) {
            return null;
        }
        return r;
    }
}
