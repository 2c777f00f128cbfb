package io.azsdp.fabric.shm;

import io.azsdp.nativeio.NativeLib;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Read-only mappings of the peer's shareable buffers, by inode, least recently used evicted first. A buffer that
 * cannot be mapped is remembered as such, so its READs go by CMA without retrying. Not thread-safe: the endpoint
 * uses it under its one-sided lock, which also keeps eviction and {@link #close} away from a copy in progress.
 */
final class PeerMappings {
    private static final Logger LOG = LoggerFactory.getLogger(PeerMappings.class);
    private static final int MAX_MAPPINGS = 64;
    private static final long MAX_BYTES = 8L << 30; // address space only: the pages are the peer's

    private final int peerPid;
    /** inode → {address (0: unmappable), size}. */
    private final LinkedHashMap<Long, long[]> maps = new LinkedHashMap<>(16, 0.75f, true);
    private long mappedBytes;
    /** The mapping found last, and its inode: a READ of the same buffer again needs no boxed key. */
    private long[] last;
    private long lastInode;

    PeerMappings(int peerPid) {
        this.peerPid = peerPid;
    }

    /** Address of a read-only mapping of {@code size} bytes of the peer's buffer {@code fd}/{@code inode}, or 0. */
    long map(int fd, long inode, long size) {
        if (last != null && lastInode == inode && last[1] >= size) {
            return last[0];
        }
        long[] m = maps.get(inode);
        if (m != null && m[1] >= size) {
            last = m;
            lastInode = inode;
            return m[0];
        }
        if (m != null) {
            evict(inode, m);
        }
        long address = NativeLib.shareableMapPeer(peerPid, fd, inode, size);
        if (address < 0) {
            LOG.debug("cannot map peer {} buffer fd {} inode {}: errno {}; READs use CMA", peerPid, fd, inode,
                    -address);
            address = 0;
        }
        m = new long[] {address, size};
        maps.put(inode, m);
        if (address != 0) {
            mappedBytes += size;
        }
        last = m;
        lastInode = inode;
        trim();
        return address;
    }

    private void trim() {
        Iterator<Map.Entry<Long, long[]>> it = maps.entrySet().iterator();
        while ((maps.size() > MAX_MAPPINGS || mappedBytes > MAX_BYTES) && it.hasNext()) {
            long[] m = it.next().getValue();
            it.remove();
            unmap(m);
        }
    }

    private void evict(long inode, long[] m) {
        maps.remove(inode);
        unmap(m);
    }

    private void unmap(long[] m) {
        if (m == last) {
            last = null;
        }
        if (m[0] != 0) {
            NativeLib.unmap(m[0], m[1]);
            mappedBytes -= m[1];
        }
    }

    /** Unmaps everything. */
    void close() {
        for (long[] m : maps.values()) {
            unmap(m);
        }
        maps.clear();
    }
}
