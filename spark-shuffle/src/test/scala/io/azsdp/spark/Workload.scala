package io.azsdp.spark

/**
 * The records the suites shuffle, generated the same way on executors and locally: a third of them under key 0 (the
 * skewed key), the rest spread over 250 keys that are all multiples of 4 (so most of 8 hash partitions stay empty),
 * and every fourth map partition empty.
 */
object Workload {
  val mapPartitions = 8
  val perPartition = 8000

  def isEmptyPartition(p: Int): Boolean = p % 4 == 3

  def record(i: Int): (Int, String) = {
    val key = if (i % 3 == 0) 0 else 4 * (i % 250)
    (key, s"v$i-${(i.toLong * 2654435761L) % 1000003}")
  }

  def partition(p: Int): Iterator[(Int, String)] =
    if (isEmptyPartition(p)) Iterator.empty
    else (p * perPartition until (p + 1) * perPartition).iterator.map(record)

  lazy val local: Seq[(Int, String)] = (0 until mapPartitions).flatMap(partition)
}
