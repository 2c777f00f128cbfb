package io.azsdp.examples;

import java.util.concurrent.atomic.AtomicLong;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerTaskEnd;

/** Sums Spark's own shuffle-read task metrics over every finished task (events arrive asynchronously). */
final class ShuffleReadTotals extends SparkListener {
    final AtomicLong fetchWaitMs = new AtomicLong();
    final AtomicLong remoteBytes = new AtomicLong();

    @Override
    public void onTaskEnd(SparkListenerTaskEnd end) {
        if (end.taskMetrics() != null) {
            fetchWaitMs.addAndGet(end.taskMetrics().shuffleReadMetrics().fetchWaitTime());
            remoteBytes.addAndGet(end.taskMetrics().shuffleReadMetrics().remoteBytesRead());
        }
    }
}
