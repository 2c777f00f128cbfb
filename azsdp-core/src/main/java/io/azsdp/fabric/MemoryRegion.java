package io.azsdp.fabric;

import java.nio.ByteBuffer;

/**
 * A registered memory range. {@code address} is what the peer names in one-sided operations (a real virtual address
 * on shm and rdma, a provider-chosen one on tcp); {@code buffer} is a view with position 0 and capacity
 * {@code length}. Offsets in posts are relative to the start of the region.
 */
public final class MemoryRegion {
    private final ByteBuffer buffer;
    private final long address;
    private final int lkey;
    private final int rkey;

    public MemoryRegion(ByteBuffer buffer, long address, int lkey, int rkey) {
        this.buffer = buffer;
        this.address = address;
        this.lkey = lkey;
        this.rkey = rkey;
    }

    public ByteBuffer buffer() {
        return buffer;
    }

    public long address() {
        return address;
    }

    public int length() {
        return buffer.capacity();
    }

    public int lkey() {
        return lkey;
    }

    public int rkey() {
        return rkey;
    }

    /** Throws if the region was registered from a read-only buffer: it may be a READ source, never a destination. */
    public void checkWritable() throws FabricException {
        if (buffer.isReadOnly()) {
            throw new FabricException(WcStatus.LOC_PROT_ERR, this + " is read-only: it cannot receive data");
        }
    }

    /** Throws unless [offset, offset+length) lies inside this region. */
    public void checkRange(int offset, int length) throws FabricException {
        if (offset < 0 || length < 0 || offset > buffer.capacity() - length) {
            throw new FabricException(WcStatus.LOC_PROT_ERR,
                    "range [" + offset + ", +" + length + ") outside local region of " + buffer.capacity() + " bytes");
        }
    }

    @Override
    public String toString() {
        return "MemoryRegion[addr=0x" + Long.toHexString(address) + ", len=" + length() + ", rkey=0x"
                + Integer.toHexString(rkey) + "]";
    }
}
