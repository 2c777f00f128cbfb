package io.azsdp.sdp;

import io.azsdp.fabric.Endpoint;
import io.azsdp.fabric.MemoryRegion;
import io.azsdp.nativeio.NativeLib;
import java.io.IOException;
import java.nio.ByteBuffer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Registrations of the application's direct buffers, kept while the application reuses its buffers, as streams do:
 * a message then costs no registration, no deregistration and no allocation. Sources are the buffers messages take
 * their bytes from (two-part SENDs, AZ-SDP adverts); sinks are the buffers a reader passes to {@code read}, which
 * READs fill. An entry is a whole buffer (position 0 to capacity), found again by the same object or, with the native
 * library, by the same address and capacity (a new view of the same memory); it counts the messages still using it,
 * and only an unused entry is replaced, the least recently used first. A registered buffer stays reachable, so its
 * memory stays allocated, until it is replaced or the connection ends. The peer cannot write into a kept buffer, with
 * a key it guessed, while the registration is only kept: sources are registered read-only (the peer may READ an
 * advertised one), sinks for local access only. Guarded by the connection's lock; no allocation on a hit.
 */
final class KeptRegions {
    private static final Logger LOG = LoggerFactory.getLogger(KeptRegions.class);
    static final int SOURCES = 8;
    /** A reader passes one buffer, or alternates between two. */
    static final int SINKS = 2;

    private final Endpoint ep;
    private final boolean sinks;
    private final boolean byAddress = NativeLib.isAvailable();
    private final ByteBuffer[] buffer;
    private final long[] address;
    private final MemoryRegion[] region;
    private final int[] users;
    private final long[] lastUse;
    private long uses;

    private KeptRegions(Endpoint ep, boolean sinks) {
        int capacity = sinks ? SINKS : SOURCES;
        this.ep = ep;
        this.sinks = sinks;
        this.buffer = new ByteBuffer[capacity];
        this.address = new long[capacity];
        this.region = new MemoryRegion[capacity];
        this.users = new int[capacity];
        this.lastUse = new long[capacity];
    }

    static KeptRegions sources(Endpoint ep) {
        return new KeptRegions(ep, false);
    }

    static KeptRegions sinks(Endpoint ep) {
        return new KeptRegions(ep, true);
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
                ByteBuffer whole = src.duplicate().clear();
                region[i] = sinks ? ep.registerLocal(whole) : ep.register(whole.asReadOnlyBuffer());
            } catch (IOException | RuntimeException e) {
                LOG.debug("AZ-SDP: {} not registered: {}", src, e.toString());
                return null;
            }
            buffer[i] = src;
            address[i] = byAddress ? NativeLib.address(src) : 0;
        }
        users[i]++;
        lastUse[i] = ++uses;
        return region[i];
    }

    /** One user of {@code mr} is done; false when {@code mr} is not one of these registrations. */
    boolean release(MemoryRegion mr) {
        for (int i = 0; i < region.length; i++) {
            if (region[i] == mr) {
                users[i]--;
                return true;
            }
        }
        return false;
    }

    /** Deregisters every entry, in use or not (the connection is ending). */
    void releaseAll() {
        for (int i = 0; i < region.length; i++) {
            drop(i);
        }
    }

    private int find(ByteBuffer src) {
        long a = -1;
        for (int i = 0; i < region.length; i++) {
            if (region[i] == null) {
                continue;
            }
            if (buffer[i] == src) {
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
        for (int i = 0; i < region.length; i++) {
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
            buffer[i] = null;
            users[i] = 0;
        }
    }
}
