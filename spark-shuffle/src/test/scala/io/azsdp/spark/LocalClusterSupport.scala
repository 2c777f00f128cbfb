package io.azsdp.spark

import java.util.concurrent.atomic.AtomicLong

import io.azsdp.spark.config.ShuffleConf
import io.azsdp.spark.metrics.TransportCounters
import io.azsdp.spark.rpc.AzSdpShufflePlugin
import io.azsdp.spark.shuffle.AzSdpShuffleManager
import org.apache.spark.scheduler.{SparkListener, SparkListenerTaskEnd}
import org.apache.spark.{SparkConf, SparkContext, SparkEnv}
import org.scalatest.concurrent.{Signaler, TimeLimitedTests}
import org.scalatest.time.{Minutes, Span}
import org.scalatest.{BeforeAndAfterAll, TestSuite}

/**
 * A real cluster: local-cluster[2,1,1024] runs two executors in their own JVMs (started by Spark's worker with the
 * test class path from SPARK_DIST_CLASSPATH), and reducers read host-local blocks over the network, i.e. over
 * AZ-SDP, because spark.shuffle.readHostLocalDisk is off.
 */
trait LocalClusterSupport extends BeforeAndAfterAll with TimeLimitedTests { this: TestSuite =>
  /** Nothing may hang: a test still running after this is failed, its Spark jobs cancelled. */
  override val timeLimit: Span = Span(3, Minutes)
  override val defaultTestSignaler: Signaler = (testThread: Thread) => {
    if (sc != null) sc.cancelAllJobs()
    testThread.interrupt()
  }

  protected var sc: SparkContext = _
  /** Remote bytes read by all finished tasks, as Spark's task metrics report them. */
  protected val remoteBytesRead = new AtomicLong()

  protected def fabric: String

  protected def extraConf(conf: SparkConf): SparkConf = conf

  protected def clusterConf: SparkConf = new SparkConf()
    .setMaster("local-cluster[2,1,1024]")
    .setAppName(getClass.getSimpleName)
    .set("spark.shuffle.manager", classOf[AzSdpShuffleManager].getName)
    .set("spark.plugins", classOf[AzSdpShufflePlugin].getName)
    .set("spark.shuffle.readHostLocalDisk", "false")
    .set("spark.shuffle.service.enabled", "false")
    .set("spark.executor.extraJavaOptions", sys.props.getOrElse("spark.test.jvmArgs", ""))
    .set(ShuffleConf.FABRIC, fabric)
    .set(ShuffleConf.TIMEOUT_MS, "30s")
    // Small enough that the suites' larger blocks are mapped and pulled zero copy, the rest batched and copied.
    .set(ShuffleConf.ZCOPY_THRESHOLD, "16k")

  override def beforeAll(): Unit = {
    super.beforeAll()
    sc = new SparkContext(extraConf(clusterConf))
    sc.addSparkListener(new SparkListener {
      override def onTaskEnd(end: SparkListenerTaskEnd): Unit =
        if (end.taskMetrics != null) remoteBytesRead.addAndGet(end.taskMetrics.shuffleReadMetrics.remoteBytesRead)
    })
    awaitExecutors(2)
  }

  override def afterAll(): Unit = {
    try if (sc != null) sc.stop() finally super.afterAll()
  }

  protected def awaitExecutors(n: Int): Unit = {
    val deadline = System.nanoTime() + 120L * 1000 * 1000 * 1000
    // The driver is listed among the executors.
    while (sc.statusTracker.getExecutorInfos.length < n + 1) {
      assert(System.nanoTime() < deadline, s"$n executors did not register within 120 s")
      Thread.sleep(100)
    }
  }

  /** The transport counters of every live executor, keyed by executor id (small tasks until all have answered). */
  protected def executorCounters(): Map[String, TransportCounters.Snapshot] = {
    val expected = sc.statusTracker.getExecutorInfos.length - 1
    var seen = Map.empty[String, TransportCounters.Snapshot]
    var attempts = 0
    while (seen.size < expected && attempts < 20) {
      attempts += 1
      seen ++= sc.parallelize(1 to 16, 16)
        .map(_ => (SparkEnv.get.executorId, TransportCounters.snapshot()))
        .collect()
        .groupBy(_._1).map { case (id, s) => id -> s.maxBy(_._2.fetchedBytes)._2 }
    }
    assert(seen.size >= expected, s"only executors ${seen.keys} answered the counter probe")
    seen
  }
}
