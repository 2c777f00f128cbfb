package io.azsdp.sdp;

import io.azsdp.fabric.Endpoint;
import io.azsdp.fabric.Spin;
import io.azsdp.fabric.SpinWindow;
import java.io.InterruptedIOException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.BooleanSupplier;

/**
 * How the threads of one connection wait, under its lock: for something to read, or for what lets a writer go on
 * (credits, advert slots, the peer's reads). A waiter first polls the fabric itself with the lock released, then parks
 * on one of two conditions. Every signal counts in {@link #events}, which is how a spinning waiter learns that the
 * state it waits on may have changed without taking the lock.
 *
 * <p>Every method must be called with the connection's lock held; a wait polls only when it is held once (a waiter
 * releases it while it polls). {@code drainDeferred} processes the completions that arrived inline while the lock was
 * held and returns true when there were any: their signals came before this thread could wait, so it re-checks.
 */
final class ConnectionWaits {
    /** The longest a waiter waits in a blocking fabric's poll (tcp) before it looks at its condition again. */
    private static final long BLOCKING_POLL_NANOS = TimeUnit.MILLISECONDS.toNanos(20);

    private final ReentrantLock lock;
    private final Condition readable;
    private final Condition writable;
    private final Endpoint ep;
    private final SdpStats stats;
    private final BooleanSupplier drainDeferred;
    private final long spinNanos;
    /** How long a waiter polls a spinning fabric before it parks, adapted to how long waits take. */
    private final SpinWindow spinWindow;
    /** When the last poll before a park began (0: it did not poll): {@link #woke} adapts the window. */
    private long spunSince;
    /** Counts signals: a waiter spinning without the lock watches it. */
    private volatile int events;
    /** {@link #events} when a blocking poll started; {@link #eventSeen} tells the poller when to stop. */
    private volatile int pollSeen;
    private final BooleanSupplier eventSeen = () -> events != pollSeen;

    ConnectionWaits(ReentrantLock lock, Endpoint ep, long spinNanos, SdpStats stats, BooleanSupplier drainDeferred) {
        this.lock = lock;
        this.readable = lock.newCondition();
        this.writable = lock.newCondition();
        this.ep = ep;
        this.spinNanos = spinNanos;
        this.spinWindow = new SpinWindow(spinNanos);
        this.stats = stats;
        this.drainDeferred = drainDeferred;
    }

    void signalReadable() {
        signal(readable);
    }

    void signalWritable() {
        signal(writable);
    }

    private void signal(Condition c) {
        events++;
        c.signalAll();
        ep.wakePoller();
    }

    /**
     * Takes what a spinning fabric's ring holds now, with the lock released: the peer's asynchronous SrcAvails do not
     * wake our progress thread, so a caller of available() would otherwise not see them.
     */
    void pollOnce() {
        if (lock.getHoldCount() == 1 && ep.canPoll() && !ep.pollBlocks()) {
            lock.unlock();
            try {
                ep.poll(0, eventSeen);
            } finally {
                lock.lock();
            }
        }
    }

    /**
     * A writer's first step of a wait: true when the state may have changed (deferred completions, or an event caught
     * while spinning), and the caller re-checks before it calls {@link #awaitPeer}.
     */
    boolean changedOrSpun() {
        return drainDeferred.getAsBoolean() || spinForEvent(Long.MAX_VALUE);
    }

    /**
     * A reader's wait, until {@code deadline} (0: none). False when the deadline passed; true when the caller should
     * re-check its condition.
     */
    boolean awaitReadable(long deadline) throws InterruptedIOException {
        if (drainDeferred.getAsBoolean()
                || spinForEvent(deadline == 0 ? Long.MAX_VALUE : deadline - System.nanoTime())) {
            return true;
        }
        ep.flush();
        ep.waitingForPeer(true); // the peer's deferrable SrcAvails must now wake our progress thread
        try {
            if (deadline == 0) {
                readable.await();
                woke(true);
                return true;
            }
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                return false;
            }
            woke(readable.awaitNanos(left) > 0);
            return true;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("read interrupted");
        } finally {
            ep.waitingForPeer(false);
        }
    }

    /**
     * A writer's wait (after {@link #changedOrSpun}): for credits, advert slots or the peer's reads, all of which the
     * peer's messages bring. Declared to the endpoint, so that those it sent deferrable wake our progress thread now.
     * Holding the lock until the await releases it, no delivery can signal before this thread waits.
     */
    void awaitPeer() throws InterruptedException {
        awaitPeer(Long.MAX_VALUE);
    }

    /** A writer's wait of at most {@code nanos}; an interrupt ends it early and stays pending for the caller. */
    void awaitWritableUninterruptibly(long nanos) {
        if (drainDeferred.getAsBoolean()) {
            return; // state changed: the caller re-checks before waiting
        }
        try {
            awaitPeer(nanos);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void awaitPeer(long nanos) throws InterruptedException {
        ep.flush();
        ep.waitingForPeer(true);
        try {
            if (nanos == Long.MAX_VALUE) {
                writable.await();
                woke(true);
            } else {
                woke(writable.awaitNanos(nanos) > 0);
            }
        } finally {
            ep.waitingForPeer(false);
        }
    }

    /**
     * Before a waiter parks, lets it poll the fabric with the lock released, delivering completions itself, for at
     * most {@code maxNanos}. A spinning fabric (shm) is polled for up to {@link #spinWindow} (from {@code spinNanos}
     * to 8x that, see #woke): on a short round trip the event arrives within the spin, and neither the provider's
     * thread nor this one has to be woken; while the provider's own thread is delivering, the waiter retries within
     * its budget and watches for that signal. A blocking fabric (tcp) is polled once, for up to
     * {@link #BLOCKING_POLL_NANOS}: the waiter waits in the kernel itself, as on a plain socket; when another thread is
     * reading it falls back to the condition at once.
     */
    private boolean spinForEvent(long maxNanos) {
        spunSince = 0;
        if (spinNanos <= 0 || maxNanos <= 0 || !ep.canPoll() || lock.getHoldCount() != 1) {
            return false;
        }
        int seen = events;
        pollSeen = seen;
        boolean caught = false;
        long spun = 0;
        lock.unlock();
        ep.flush();
        try {
            if (ep.pollBlocks()) {
                long start = System.nanoTime();
                if (!ep.poll(Math.min(maxNanos, BLOCKING_POLL_NANOS), eventSeen) && events == seen) {
                    // At once when another thread of this connection reads the socket (it delivers our frames too):
                    // watch for its signal for the spin budget rather than park, as on shm. A reader and a writer of
                    // one connection hand each other credit updates and data this way (both directions of a
                    // stream, an RPC client's reader thread).
                    caught = watchForSignal(seen, start + Math.min(maxNanos, spinNanos));
                }
            } else {
                spun = System.nanoTime();
                pollSpinning(seen, spun, Math.min(maxNanos, spinWindow.nanos()));
            }
        } finally {
            lock.lock();
        }
        if (caught) {
            stats.signalsCaughtSpinning++;
        }
        if (events != seen || drainDeferred.getAsBoolean()) {
            return true;
        }
        spunSince = spun; // 0 on a blocking fabric: its own poll adapts (FrameReader)
        return false;
    }

    /**
     * Polls a spinning fabric until {@code events} moves on or {@code budget} has passed since {@code start}. While
     * another thread holds the poll (the provider's thread delivering, or this connection's other direction waiting
     * too) this one watches for its signal, and yields now and then: on 2 cores a bare spin here took the core from
     * the very threads whose work it waited for (a stream in both directions moved a third as much). The clock is
     * read before every poll, the first one too: a loop that polled first made the 64 B round trip 0.25 us slower,
     * repeatably, for reasons not found (docs/BENCHMARKS-HISTORY.md, session 18).
     */
    private void pollSpinning(int seen, long start, long budget) {
        long nextYield = Spin.firstYield(start);
        long left;
        long now;
        while (events == seen && (left = budget - ((now = System.nanoTime()) - start)) > 0) {
            if (!ep.poll(left, eventSeen)) {
                nextYield = Spin.pause(now, nextYield);
            }
        }
    }

    /** Spins until {@code events} moves on (true) or {@code until} (false). */
    private boolean watchForSignal(int seen, long until) {
        long now = System.nanoTime();
        long nextYield = Spin.firstYield(now);
        while (events == seen) {
            if (now >= until) {
                return false;
            }
            nextYield = Spin.pause(now, nextYield);
            now = System.nanoTime();
        }
        return true;
    }

    /**
     * After a park that followed a poll of the spin window: a wake-up soon after the poll gave up widens the window
     * (see SpinWindow). On a synchronous stream each side otherwise parks just before the other's reply, and every
     * message then pays two wake-ups, which on a virtual machine outlast the configured poll.
     */
    private void woke(boolean signalled) {
        if (spunSince != 0) {
            spinWindow.waited(signalled, System.nanoTime() - spunSince);
            spunSince = 0;
        }
    }
}
