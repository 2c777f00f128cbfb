package io.azsdp.spark

import java.util.concurrent.ConcurrentLinkedQueue

import scala.jdk.CollectionConverters._

import org.apache.spark.scheduler.{SparkListener, SparkListenerStageSubmitted, SparkListenerTaskEnd}
import org.apache.spark.{FetchFailed, SparkConf, TaskContext}
import org.scalatest.funsuite.AnyFunSuite

/**
 * An executor dies in the middle of the reduce stage, taking its map outputs with it. The reducers fetching from it
 * must fail with a fetch failure (not hang), Spark recomputes the lost map outputs, and the results are exact.
 */
class ExecutorLossSuite extends AnyFunSuite with LocalClusterSupport {
  override protected val fabric = "shm"

  override protected def extraConf(conf: SparkConf): SparkConf = conf
    .set("spark.shuffle.azsdp.timeoutMs", "10s")
    .set("spark.shuffle.azsdp.lookupTimeoutMs", "10s")

  test("an executor killed during the reduce stage: fetch failure, recomputation, exact results") {
    val fetchFailures = new ConcurrentLinkedQueue[String]()
    val stageAttempts = new ConcurrentLinkedQueue[(Int, Int)]()
    sc.addSparkListener(new SparkListener {
      override def onTaskEnd(end: SparkListenerTaskEnd): Unit = end.reason match {
        case f: FetchFailed => fetchFailures.add(f.toErrorString)
        case _ =>
      }
      override def onStageSubmitted(s: SparkListenerStageSubmitted): Unit =
        stageAttempts.add((s.stageInfo.stageId, s.stageInfo.attemptNumber()))
    })

    val records = sc.parallelize(0 until Workload.mapPartitions, Workload.mapPartitions).flatMap(Workload.partition)
    val got = records.mapValues(_.length.toLong).reduceByKey(_ + _, 6)
      .mapPartitionsWithIndex { (p, it) =>
        val ctx = TaskContext.get()
        // The first attempt of reduce partition 0 kills its executor (no shutdown hooks, like a crash) while the
        // other executor's reducers are fetching; later attempts run normally.
        if (p == 0 && ctx.stageAttemptNumber() == 0 && ctx.attemptNumber() == 0) {
          Thread.sleep(300)
          Runtime.getRuntime.halt(1)
        }
        it
      }
      .collect().toMap

    assert(got == Workload.local.groupMapReduce(_._1)(_._2.length.toLong)(_ + _))
    assert(!fetchFailures.isEmpty, "no reducer reported a fetch failure")
    assert(stageAttempts.asScala.exists(_._2 > 0), "no stage was resubmitted")
  }
}
