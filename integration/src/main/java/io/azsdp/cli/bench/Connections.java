package io.azsdp.cli.bench;

import io.azsdp.cli.Link;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The client's open links: one kept per transport across figures (connection set-up is not what is measured), extra
 * ones for the multi-connection test. {@link #abortAll} is the watchdog's way to unblock a figure.
 */
final class Connections implements AutoCloseable {
    private final Endpoints server;
    private final Map<Transport, Link> kept = new HashMap<>(); // guarded by this
    private final List<Link> all = new ArrayList<>(); // guarded by this

    Connections(Endpoints server) {
        this.server = server;
    }

    /** The kept link of {@code t}, opened on first use. */
    Link link(Transport t) throws IOException {
        synchronized (this) {
            Link l = kept.get(t);
            if (l != null) {
                return l;
            }
        }
        Link l = t.open(server);
        synchronized (this) {
            kept.put(t, l);
            all.add(l);
        }
        return l;
    }

    /** {@code n} new links of {@code t}, closed by {@link #release}. */
    List<Link> open(Transport t, int n) throws IOException {
        List<Link> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            Link l = t.open(server);
            synchronized (this) {
                all.add(l);
            }
            out.add(l);
        }
        return out;
    }

    /** Orderly close of links from {@link #open}. */
    void release(List<Link> links) throws IOException {
        for (Link l : links) {
            synchronized (this) {
                all.remove(l);
            }
            l.close();
        }
    }

    /** Resets every link (blocked calls fail at once) and forgets them: later figures connect again. */
    synchronized void abortAll() {
        all.forEach(Link::abort);
        all.clear();
        kept.clear();
    }

    @Override
    public synchronized void close() throws IOException {
        for (Link l : all) {
            l.close();
        }
        all.clear();
        kept.clear();
    }
}
