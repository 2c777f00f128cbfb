package io.azsdp.spark

import org.apache.spark.{HashPartitioner, SparkConf}
import org.apache.spark.rdd.RDD
import org.scalatest.concurrent.Eventually
import org.scalatest.funsuite.AnyFunSuite
import org.scalatest.time.{Seconds, Span}

/**
 * Spark's shuffle operations on a two-executor cluster, every result compared with the same computation on local
 * collections, and the transport's counters compared with Spark's own remote-bytes-read task metric.
 */
abstract class ShuffleOperationsSuite(override protected val fabric: String)
  extends AnyFunSuite with LocalClusterSupport with Eventually {

  private def records: RDD[(Int, String)] =
    sc.parallelize(0 until Workload.mapPartitions, Workload.mapPartitions).flatMap(Workload.partition)

  /** Runs {@code body}, then checks its shuffle crossed AZ-SDP: our byte counters grew exactly as Spark's did. */
  private def overAzSdp[T](body: => T): T = {
    val before = executorCounters().values.map(_.fetchedBytes).sum
    val sparkBefore = remoteBytesRead.get()
    val result = body
    val after = executorCounters().values.map(_.fetchedBytes).sum
    assert(after > before, "no shuffle bytes crossed AZ-SDP")
    eventually(timeout(Span(10, Seconds))) {
      assert(remoteBytesRead.get() - sparkBefore == after - before,
        "Spark's remote bytes read differ from the bytes AZ-SDP fetched")
    }
    result
  }

  test(s"$fabric: reduceByKey") {
    val got = overAzSdp(records.mapValues(_.length.toLong).reduceByKey(_ + _, 8).collect()).toMap
    val want = Workload.local.groupMapReduce(_._1)(_._2.length.toLong)(_ + _)
    assert(got == want)
  }

  test(s"$fabric: groupByKey with one skewed key and empty partitions") {
    val grouped = records.groupByKey(new HashPartitioner(8))
    val sizes = overAzSdp(grouped.mapPartitions(it => Iterator(it.size)).collect())
    assert(sizes.count(_ == 0) >= 4, s"expected empty reduce partitions, got sizes ${sizes.mkString(",")}")
    val got = grouped.mapValues(_.toSeq.sorted).collect().toMap
    val want = Workload.local.groupMap(_._1)(_._2).map { case (k, v) => k -> v.sorted }
    assert(got == want)
    assert(got(0).size == Workload.local.count(_._1 == 0))
  }

  test(s"$fabric: sortByKey") {
    val got = overAzSdp(records.sortByKey(ascending = true, numPartitions = 6).collect())
    assert(got.map(_._1).toSeq == Workload.local.map(_._1).sorted)
    assert(got.sorted.toSeq == Workload.local.sorted)
  }

  test(s"$fabric: join") {
    val weights = sc.parallelize((0 until 1000 by 8).map(k => (k, k * 2)), 3)
    val got = overAzSdp(records.join(weights, 5).collect())
    val w = (0 until 1000 by 8).map(k => k -> k * 2).toMap
    val want = Workload.local.collect { case (k, v) if w.contains(k) => (k, (v, w(k))) }
    assert(got.sorted.toSeq == want.sorted)
  }

  test(s"$fabric: repartition") {
    val repartitioned = records.repartition(5)
    val got = overAzSdp(repartitioned.collect())
    assert(got.sorted.toSeq == Workload.local.sorted)
    assert(repartitioned.getNumPartitions == 5)
  }

  test(s"$fabric: both transfer modes were used and nothing failed") {
    val counters = executorCounters().values
    assert(counters.map(_.zcopyBlocks).sum > 0, "no block was pulled zero copy")
    assert(counters.map(_.bcopyBlocks).sum > 0, "no small block was copied")
    assert(counters.map(_.servedMappedBytes).sum > 0, "no segment was sent from its mapping")
    assert(counters.map(_.failedBlocks).sum == 0)
  }
}

class ShmShuffleOperationsSuite extends ShuffleOperationsSuite("shm")

/** Over tcp, requests above 64 KiB are streamed to temporary files (Spark's fetch-to-disk path). */
class TcpShuffleOperationsSuite extends ShuffleOperationsSuite("tcp") {
  override protected def extraConf(conf: SparkConf): SparkConf =
    conf.set("spark.network.maxRemoteBlockSizeFetchToMem", "64k")
}
