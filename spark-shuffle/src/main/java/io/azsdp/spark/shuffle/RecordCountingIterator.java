package io.azsdp.spark.shuffle;

import org.apache.spark.TaskContext;
import org.apache.spark.shuffle.ShuffleReadMetricsReporter;
import scala.Product2;
import scala.Tuple2;
import scala.collection.AbstractIterator;
import scala.collection.Iterator;

/** Counts records read and, once exhausted, merges the task's shuffle read metrics (as Spark's reader does). */
final class RecordCountingIterator<K> extends AbstractIterator<Product2<K, Object>> {
    private final Iterator<Tuple2<Object, Object>> records;
    private final ShuffleReadMetricsReporter metrics;
    private final TaskContext context;
    private boolean merged;

    RecordCountingIterator(Iterator<Tuple2<Object, Object>> records, ShuffleReadMetricsReporter metrics,
                           TaskContext context) {
        this.records = records;
        this.metrics = metrics;
        this.context = context;
    }

    @Override
    public boolean hasNext() {
        boolean more = records.hasNext();
        if (!more && !merged) {
            merged = true;
            context.taskMetrics().mergeShuffleReadMetrics();
        }
        return more;
    }

    @Override
    @SuppressWarnings("unchecked")
    public Product2<K, Object> next() {
        Product2<K, Object> r = (Product2<K, Object>) (Product2<?, ?>) records.next();
        metrics.incRecordsRead(1);
        return r;
    }
}
