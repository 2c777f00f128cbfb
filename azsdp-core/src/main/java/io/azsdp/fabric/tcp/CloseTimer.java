package io.azsdp.fabric.tcp;

import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * Bounds orderly closes. Neither provider thread can bound itself (both block in socket calls), so one shared daemon
 * thread, created on first use and gone when idle, enforces the deadlines.
 */
final class CloseTimer {
    private static final ScheduledThreadPoolExecutor TIMER = create();

    private CloseTimer() {
    }

    static ScheduledFuture<?> schedule(Runnable task, long delayMs) {
        return TIMER.schedule(task, delayMs, TimeUnit.MILLISECONDS);
    }

    private static ScheduledThreadPoolExecutor create() {
        ScheduledThreadPoolExecutor t = new ScheduledThreadPoolExecutor(1, r -> {
            Thread thread = new Thread(r, "azsdp-tcp-close-timer");
            thread.setDaemon(true);
            return thread;
        });
        t.setRemoveOnCancelPolicy(true);
        t.setKeepAliveTime(10, TimeUnit.SECONDS);
        t.allowCoreThreadTimeOut(true);
        return t;
    }
}
