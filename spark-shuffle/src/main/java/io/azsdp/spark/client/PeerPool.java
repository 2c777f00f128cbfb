package io.azsdp.spark.client;

import io.azsdp.spark.config.ShuffleConf;
import java.io.Closeable;
import java.io.IOException;
import java.net.SocketTimeoutException;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;

/**
 * At most {@code connectionsPerPeer} connections to each executor, kept open between fetches. A fetch takes a
 * permit (waiting at most the timeout), then an idle connection or a new one.
 */
final class PeerPool implements Closeable {
    private final ShuffleConf conf;
    private final AddressResolver resolver;
    private final String appId;
    private final String secret;
    private final Map<String, Peer> peers = new ConcurrentHashMap<>();
    private volatile boolean closed;

    PeerPool(ShuffleConf conf, AddressResolver resolver, String appId, String secret) {
        this.conf = conf;
        this.resolver = resolver;
        this.appId = appId;
        this.secret = secret;
    }

    private final class Peer {
        final Semaphore permits = new Semaphore(conf.connectionsPerPeer());
        final ConcurrentLinkedQueue<PeerConnection> idle = new ConcurrentLinkedQueue<>();
    }

    PeerConnection acquire(String executorId) throws IOException {
        if (closed) {
            throw new IOException("AZ-SDP shuffle client is closed");
        }
        Peer p = peers.computeIfAbsent(executorId, id -> new Peer());
        try {
            if (!p.permits.tryAcquire(conf.timeoutMs(), TimeUnit.MILLISECONDS)) {
                throw new SocketTimeoutException("no connection to executor " + executorId + " became free within "
                        + conf.timeoutMs() + " ms");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while waiting for a connection to executor " + executorId, e);
        }
        for (PeerConnection c; (c = p.idle.poll()) != null; ) {
            if (c.isOpen()) {
                return c;
            }
        }
        try {
            return PeerConnection.open(resolver.resolve(executorId), conf, appId, secret);
        } catch (IOException | RuntimeException e) {
            p.permits.release();
            resolver.invalidate(executorId);
            throw e;
        }
    }

    void release(String executorId, PeerConnection c) {
        Peer p = peers.get(executorId);
        c.markReused();
        if (closed || p == null) {
            c.close();
        } else {
            p.idle.add(c);
        }
        if (p != null) {
            p.permits.release();
        }
    }

    /** Drops a failed connection; its executor's address is looked up again next time. */
    void discard(String executorId, PeerConnection c) {
        c.abort();
        resolver.invalidate(executorId);
        Peer p = peers.get(executorId);
        if (p != null) {
            p.permits.release();
        }
    }

    @Override
    public void close() {
        closed = true;
        for (Peer p : peers.values()) {
            for (PeerConnection c; (c = p.idle.poll()) != null; ) {
                c.close();
            }
        }
    }
}
