package io.azsdp.spark.shuffle;

import io.azsdp.spark.config.ShuffleConf;
import java.io.InputStream;
import org.apache.spark.Aggregator;
import org.apache.spark.InterruptibleIterator;
import org.apache.spark.ShuffleDependency;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.internal.config.package$;
import org.apache.spark.io.CompressionCodec$;
import org.apache.spark.network.shuffle.BlockStoreClient;
import org.apache.spark.serializer.SerializerInstance;
import org.apache.spark.serializer.SerializerManager;
import org.apache.spark.shuffle.BaseShuffleHandle;
import org.apache.spark.shuffle.ShuffleReadMetricsReporter;
import org.apache.spark.shuffle.ShuffleReader;
import org.apache.spark.shuffle.checksum.RowBasedChecksum;
import org.apache.spark.storage.BlockId;
import org.apache.spark.storage.BlockManagerId;
import org.apache.spark.storage.ShuffleBlockFetcherIterator;
import org.apache.spark.util.SystemClock;
import org.apache.spark.util.collection.ExternalSorter;
import scala.Option;
import scala.Product2;
import scala.Tuple2;
import scala.Tuple3;
import scala.collection.Iterator;
import scala.collection.Seq;

/**
 * Reads a reduce partition: Spark's {@link ShuffleBlockFetcherIterator} (local blocks from disk, remote ones through
 * our {@link BlockStoreClient}, with Spark's retries, checksums, fetch-failure reporting and read metrics), then
 * deserialization, aggregation and sorting as the dependency asks.
 */
final class AzSdpShuffleReader<K, C> implements ShuffleReader<K, C> {
    private static final package$ CONFIG = package$.MODULE$;

    private final BaseShuffleHandle<K, ?, C> handle;
    private final Iterator<Tuple2<BlockManagerId, Seq<Tuple3<BlockId, Object, Object>>>> blocks;
    private final TaskContext context;
    private final ShuffleReadMetricsReporter metrics;
    private final boolean batchFetchAllowed;
    private final ShuffleConf settings;
    private final BlockStoreClient client;

    AzSdpShuffleReader(BaseShuffleHandle<K, ?, C> handle,
                       Iterator<Tuple2<BlockManagerId, Seq<Tuple3<BlockId, Object, Object>>>> blocks,
                       TaskContext context, ShuffleReadMetricsReporter metrics, boolean batchFetchAllowed,
                       ShuffleConf settings, BlockStoreClient client) {
        this.handle = handle;
        this.blocks = blocks;
        this.context = context;
        this.metrics = metrics;
        this.batchFetchAllowed = batchFetchAllowed;
        this.settings = settings;
        this.client = client;
    }

    @Override
    @SuppressWarnings({"unchecked", "rawtypes"})
    public Iterator<Product2<K, C>> read() {
        SparkEnv env = SparkEnv.get();
        SparkConf conf = env.conf();
        SerializerManager serializers = env.serializerManager();
        ShuffleBlockFetcherIterator fetcher = new ShuffleBlockFetcherIterator(context, client, env.blockManager(),
                env.mapOutputTracker(), blocks, serializers::wrapStream,
                settings.maxBytesInFlight(),
                (Integer) conf.get(CONFIG.REDUCER_MAX_REQS_IN_FLIGHT()),
                (Integer) conf.get(CONFIG.REDUCER_MAX_BLOCKS_IN_FLIGHT_PER_ADDRESS()),
                (Long) conf.get(CONFIG.MAX_REMOTE_BLOCK_SIZE_FETCH_TO_MEM()),
                (Integer) conf.get(CONFIG.SHUFFLE_MAX_ATTEMPTS_ON_NETTY_OOM()),
                (Boolean) conf.get(CONFIG.SHUFFLE_DETECT_CORRUPT()),
                (Boolean) conf.get(CONFIG.SHUFFLE_DETECT_CORRUPT_MEMORY()),
                (Boolean) conf.get(CONFIG.SHUFFLE_CHECKSUM_ENABLED()),
                conf.get(CONFIG.SHUFFLE_CHECKSUM_ALGORITHM()),
                metrics, batchFetch(conf), new SystemClock());

        ShuffleDependency<K, ?, C> dep = handle.dependency();
        SerializerInstance serializer = dep.serializer().newInstance();
        Iterator<Tuple2<BlockId, InputStream>> streams = fetcher.toCompletionIterator();
        Iterator<Tuple2<Object, Object>> records = streams.flatMap(
                s -> serializer.deserializeStream(s._2()).asKeyValueIterator());
        Iterator<Product2<K, Object>> counted = new RecordCountingIterator(records, metrics, context);
        InterruptibleIterator<Product2<K, Object>> interruptible = new InterruptibleIterator<>(context, counted);

        Iterator<Product2<K, C>> result;
        if (dep.keyOrdering().isDefined()) {
            Option aggregator = Option.empty();
            if (dep.aggregator().isDefined()) {
                Aggregator agg = dep.aggregator().get();
                // Combined on the map side: the values read are already combiners.
                aggregator = dep.mapSideCombine()
                        ? Option.apply(new Aggregator(c -> c, agg.mergeCombiners(), agg.mergeCombiners()))
                        : dep.aggregator();
            }
            ExternalSorter sorter = new ExternalSorter(context, aggregator, Option.empty(), dep.keyOrdering(),
                    dep.serializer(), new RowBasedChecksum[0]);
            result = sorter.insertAllAndUpdateMetrics((Iterator) interruptible);
        } else if (dep.aggregator().isDefined()) {
            Aggregator agg = dep.aggregator().get();
            result = dep.mapSideCombine()
                    ? agg.combineCombinersByKey(interruptible, context)
                    : agg.combineValuesByKey(interruptible, context);
        } else {
            result = (Iterator) interruptible;
        }
        // Aggregation or sorting consumed the first interruptible iterator: wrap again so cancellation still works.
        return result instanceof InterruptibleIterator ? result : new InterruptibleIterator<>(context, result);
    }

    /** Contiguous blocks of one map output in one request, when the serializer and codec allow concatenation. */
    private boolean batchFetch(SparkConf conf) {
        if (!batchFetchAllowed || !handle.dependency().serializer().supportsRelocationOfSerializedObjects()) {
            return false;
        }
        boolean compressed = (Boolean) conf.get(CONFIG.SHUFFLE_COMPRESS());
        if (compressed && !CompressionCodec$.MODULE$.supportsConcatenationOfSerializedStreams(
                CompressionCodec$.MODULE$.createCodec(conf))) {
            return false;
        }
        return !(Boolean) conf.get(CONFIG.SHUFFLE_USE_OLD_FETCH_PROTOCOL())
                && !(Boolean) conf.get(CONFIG.IO_ENCRYPTION_ENABLED());
    }
}
