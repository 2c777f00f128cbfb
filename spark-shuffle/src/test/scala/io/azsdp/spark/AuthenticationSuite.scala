package io.azsdp.spark

import java.net.InetSocketAddress
import java.util.concurrent.{CountDownLatch, TimeUnit}
import java.util.concurrent.atomic.AtomicReference

import io.azsdp.spark.client.{AddressResolver, AzSdpBlockStoreClient}
import io.azsdp.spark.config.ShuffleConf
import io.azsdp.spark.rpc.AzSdpShufflePlugin
import org.apache.spark.SparkConf
import org.apache.spark.network.buffer.ManagedBuffer
import org.apache.spark.network.shuffle.BlockFetchingListener
import org.scalatest.funsuite.AnyFunSuite

/**
 * With spark.authenticate the executors' block servers accept only clients that prove the application's secret,
 * and even then serve nothing but the shuffle blocks Spark's resolver names.
 */
class AuthenticationSuite extends AnyFunSuite with LocalClusterSupport {
  override protected val fabric = "tcp"
  private val secret = "the-application-secret"

  override protected def extraConf(conf: SparkConf): SparkConf = conf
    .set("spark.authenticate", "true")
    .set("spark.authenticate.secret", secret)

  /** Fetches one block from an executor's block server as an outsider would; the failure message, or "data". */
  private def fetchOutcome(withSecret: String, blockId: String): String = {
    val address = AzSdpShufflePlugin.announcedAddresses().values.iterator.next()
    val resolver = new AddressResolver {
      override def resolve(executorId: String) = new InetSocketAddress(address.host, address.port)
      override def invalidate(executorId: String): Unit = ()
    }
    val client = new AzSdpBlockStoreClient(ShuffleConf.from(sc.getConf), resolver, sc.applicationId, withSecret,
      null, null)
    val outcome = new AtomicReference[String]()
    val done = new CountDownLatch(1)
    try {
      client.fetchBlocks(address.host, 0, address.executorId, Array(blockId), new BlockFetchingListener {
        override def onBlockFetchSuccess(id: String, data: ManagedBuffer): Unit = { outcome.set("data"); done.countDown() }
        override def onBlockFetchFailure(id: String, e: Throwable): Unit = { outcome.set(e.getMessage); done.countDown() }
      }, null)
      assert(done.await(30, TimeUnit.SECONDS), "the fetch neither failed nor succeeded")
    } finally client.close()
    outcome.get()
  }

  test("the shuffle runs between authenticated executors") {
    val records = sc.parallelize(0 until Workload.mapPartitions, Workload.mapPartitions).flatMap(Workload.partition)
    val got = records.mapValues(_ => 1L).reduceByKey(_ + _, 4).collect().toMap
    assert(got == Workload.local.groupMapReduce(_._1)(_ => 1L)(_ + _))
    assert(executorCounters().values.map(_.fetchedBytes).sum > 0)
  }

  test("a fetch with a wrong secret, or none, is refused") {
    assert(fetchOutcome("not-the-secret", "shuffle_0_0_0").contains("authentication failed"))
    assert(fetchOutcome(null, "shuffle_0_0_0").contains("requires spark.authenticate"))
    assert(executorCounters().values.map(_.refusedClients).sum >= 1)
  }

  test("an authenticated client gets nothing but shuffle blocks") {
    val missing = fetchOutcome(secret, "shuffle_99_0_0")
    assert(missing.contains("not on this executor"))
    assert(!missing.contains("blockmgr"), "the error leaks the executor's local paths")
    assert(fetchOutcome(secret, "rdd_0_0").contains("only shuffle blocks are served"))
    assert(fetchOutcome(secret, "../../../etc/passwd").contains("unrecognized block id"))
  }
}
