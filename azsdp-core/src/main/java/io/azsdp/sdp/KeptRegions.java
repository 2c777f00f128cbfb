package io.azsdp.sdp;

import io.azsdp.fabric.Endpoint;
import io.azsdp.fabric.MemoryRegion;
import io.azsdp.nativeio.NativeLib;
import java.io.IOException;
import java.nio.ByteBuffer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Registrations of the application's direct buffers that messages take their bytes from (two-part SENDs, AZ-SDP
 * adverts), kept while the application reuses its buffers, as streams do: such a message then costs no registration,
 * no deregistration and no allocation. An entry is a whole buffer (position 0 to capacity), found again by the same
 * object or, with the native library, by the same address and capacity (a new view of the same memory); it counts the
 * messages still using it, and only an unused entry is replaced, the least recently used first. A registered buffer
 * stays reachable, so its memory stays allocated, until it is replaced or the connection ends. Registered read-only:
 * the peer may READ an advertised buffer, but a WRITE into one (with a key it guessed) is refused, also while the
 * registration is only kept. Guarded by the connection's lock; no allocation on a hit.
 */
final class SourceRegions {
    private static final Logger LOG = LoggerFactory.getLogger(SourceRegions.class);
    static final int CAPACITY = 8;

    private final Endpoint ep;
    private final boolean byAddress = NativeLib.isAvailable();
    private final ByteBuffer[] source = new ByteBuffer[CAPACITY];
    private final long[] address = new long[CAPACITY];
    private final MemoryRegion[] region = new MemoryRegion[CAPACITY];
    private final int[] users = new int[CAPACITY];
    private final long[] lastUse = new long[CAPACITY];
    private long uses;

    SourceRegions(Endpoint ep) {
        this.ep = ep;
    }

    /**
     * The registered whole of direct buffer {@code src}, with one more user; null when every entry is in use or the
     * registration failed (the caller then copies or registers the bytes itself).
     */
    MemoryRegion acquire(ByteBuffer src) {
        int i = find(src);
        if (i < 0) {
            i = victim();
            if (i < 0) {
                return null;
            }
            drop(i);
            try {
                region[i] = ep.register(src.duplicate().clear().asReadOnlyBuffer());
            } catch (IOException | RuntimeException e) {
                LOG.debug("AZ-SDP: {} not registered: {}", src, e.toString());
                return null;
            }
            source[i] = src;
            address[i] = byAddress ? NativeLib.address(src) : 0;
        }
        users[i]++;
        lastUse[i] = ++uses;
        return region[i];
    }

    /** One user of {@code mr} is done; false when {@code mr} is not one of these registrations. */
    boolean release(MemoryRegion mr) {
        for (int i = 0; i < CAPACITY; i++) {
            if (region[i] == mr) {
                users[i]--;
                return true;
            }
        }
        return false;
    }

    /** Deregisters every entry, in use or not (the connection is ending). */
    void releaseAll() {
        for (int i = 0; i < CAPACITY; i++) {
            drop(i);
        }
    }

    private int find(ByteBuffer src) {
        long a = -1;
        for (int i = 0; i < CAPACITY; i++) {
            if (region[i] == null) {
                continue;
            }
            if (source[i] == src) {
                return i;
            }
            if (byAddress) {
                if (a == -1) {
                    a = NativeLib.address(src);
                }
                if (address[i] == a && region[i].length() == src.capacity()) {
                    return i;
                }
            }
        }
        return -1;
    }

    /** An empty entry, else the least recently used one without users; -1 when all are in use. */
    private int victim() {
        int best = -1;
        for (int i = 0; i < CAPACITY; i++) {
            if (region[i] == null) {
                return i;
            }
            if (users[i] == 0 && (best < 0 || lastUse[i] < lastUse[best])) {
                best = i;
            }
        }
        return best;
    }

    private void drop(int i) {
        if (region[i] != null) {
            ep.deregister(region[i]);
            region[i] = null;
            source[i] = null;
            users[i] = 0;
        }
    }
}
