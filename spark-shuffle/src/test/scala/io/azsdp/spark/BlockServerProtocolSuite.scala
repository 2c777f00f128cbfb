package io.azsdp.spark

import java.io.{File, IOException}
import java.net.InetSocketAddress
import java.nio.ByteBuffer
import java.nio.file.Files
import java.util.concurrent.{ConcurrentHashMap, CountDownLatch, TimeUnit}

import io.azsdp.socket.AzSdpSocket
import io.azsdp.spark.client.{AddressResolver, AzSdpBlockStoreClient}
import io.azsdp.spark.config.ShuffleConf
import io.azsdp.spark.metrics.TransportCounters
import io.azsdp.spark.protocol.{Handshake, Wire}
import io.azsdp.spark.server.{BlockServer, BlockSource, FileSegment}
import org.apache.spark.SparkConf
import org.apache.spark.network.buffer.ManagedBuffer
import org.apache.spark.network.shuffle.BlockFetchingListener
import org.scalatest.BeforeAndAfterAll
import org.scalatest.funsuite.AnyFunSuite

/**
 * The block server and client without Spark running: exact bytes for small (batched) and large (mapped) segments,
 * per-block errors, and malformed frames answered with an error and a close, never a hang.
 */
class BlockServerProtocolSuite extends AnyFunSuite with BeforeAndAfterAll {
  private val appId = "app-protocol-test"
  private val secret = "protocol-secret"
  private val file = File.createTempFile("azsdp-blocks", ".data")
  // Block i covers sizes(i) bytes after the previous blocks; byte at offset o is (o * 31 + 7) mod 251.
  private val sizes = Seq(0, 1, 100, 40000, 65535, 65536, 300000, 5, 2 << 20)
  private val offsets = sizes.scanLeft(0L)(_ + _)
  private var server: BlockServer = _

  private def expected(i: Int): Array[Byte] =
    Array.tabulate(sizes(i))(k => (((offsets(i) + k) * 31 + 7) % 251).toByte)

  private val source = new BlockSource {
    override def resolve(blockId: String): FileSegment = blockId match {
      case s"blk_$n" if n.toIntOption.exists(i => i >= 0 && i < sizes.size) =>
        val i = n.toInt
        new FileSegment(file, offsets(i), sizes(i))
      case "gone" => throw new IOException("block gone is not on this executor")
      case other => throw new IllegalArgumentException(s"unrecognized block id '$other'")
    }
  }

  private def conf(fabric: String) = ShuffleConf.from(new SparkConf(false)
    .set(ShuffleConf.FABRIC, fabric).set(ShuffleConf.TIMEOUT_MS, "10s"))

  override def beforeAll(): Unit = {
    Files.write(file.toPath, Array.tabulate(offsets.last.toInt)(o => ((o.toLong * 31 + 7) % 251).toByte))
    server = BlockServer.start(conf("auto"), source, appId, secret)
  }

  override def afterAll(): Unit = {
    if (server != null) server.close()
    file.delete()
  }

  private final class Collector(n: Int) extends BlockFetchingListener {
    val done = new CountDownLatch(n)
    val data = new ConcurrentHashMap[String, Array[Byte]]()
    val errors = new ConcurrentHashMap[String, Throwable]()
    override def onBlockFetchSuccess(blockId: String, buf: ManagedBuffer): Unit = {
      val b = buf.nioByteBuffer()
      val a = new Array[Byte](b.remaining())
      b.get(a)
      data.put(blockId, a)
      done.countDown()
    }
    override def onBlockFetchFailure(blockId: String, e: Throwable): Unit = {
      errors.put(blockId, e)
      done.countDown()
    }
    def await(): Unit = assert(done.await(30, TimeUnit.SECONDS), "fetch did not complete")
  }

  private def client(fabric: String, withSecret: String): AzSdpBlockStoreClient = {
    val address = new InetSocketAddress("localhost", server.port())
    val resolver = new AddressResolver {
      override def resolve(executorId: String): InetSocketAddress = address
      override def invalidate(executorId: String): Unit = ()
    }
    new AzSdpBlockStoreClient(conf(fabric), resolver, appId, withSecret, null, null)
  }

  for (fabric <- Seq("shm", "tcp")) {
    test(s"$fabric: every block arrives intact, small ones batched and large ones mapped") {
      val c = client(fabric, secret)
      val before = TransportCounters.snapshot()
      try {
        val ids = (sizes.indices.map(i => s"blk_$i") ++ Seq("gone", "blk_99", "rdd_1_2", "blk_3")).toArray
        val got = new Collector(ids.length)
        c.fetchBlocks("ignored", 0, "exec-1", ids, got, null)
        got.await()
        for (i <- sizes.indices) assert(got.data.get(s"blk_$i").sameElements(expected(i)), s"blk_$i")
        assert(got.data.get("blk_3").sameElements(expected(3)))
        assert(got.errors.get("gone").getMessage.contains("not on this executor"))
        assert(got.errors.get("blk_99").getMessage.contains("unrecognized block id"))
        assert(got.errors.get("rdd_1_2").getMessage.contains("unrecognized block id"))
        // The connection survived the per-block errors: a second fetch reuses it.
        val again = new Collector(1)
        c.fetchBlocks("ignored", 0, "exec-1", Array("blk_6"), again, null)
        again.await()
        assert(again.data.get("blk_6").sameElements(expected(6)))
        val after = TransportCounters.snapshot()
        // 11 blocks (blk_3 twice, blk_6 again). At or above the threshold: pulled by READ. Below it but too large
        // for the 64 KiB batch: mapped, then copied by the socket layer.
        val large = sizes.count(_ >= 65536) + 1
        assert(after.zcopyBlocks - before.zcopyBlocks == large, "large blocks pulled by one-sided READ")
        assert(after.bcopyBlocks - before.bcopyBlocks == sizes.size + 2 - large, "small blocks copied")
        assert(after.servedMappedBytes - before.servedMappedBytes ==
          sizes.filter(s => s >= 65536 || s + 9 > 65536).map(_.toLong).sum + sizes(6))
      } finally c.close()
    }

    test(s"$fabric: a wrong secret is refused before any block is read") {
      val c = client(fabric, "not-the-secret")
      try {
        val got = new Collector(1)
        c.fetchBlocks("ignored", 0, "exec-1", Array("blk_2"), got, null)
        got.await()
        assert(got.data.isEmpty)
        assert(got.errors.get("blk_2").getMessage.contains("authentication failed"))
      } finally c.close()
    }
  }

  /** A raw connection past the handshake, for sending frames the client never would. */
  private def rawConnection(): AzSdpSocket = {
    val s = new AzSdpSocket(conf("tcp").socketConfig())
    s.connect(new InetSocketAddress("localhost", server.port()), 10000)
    s.setSoTimeout(10000)
    Handshake.connect(s.byteChannel(), appId, secret)
    s
  }

  private def errorThenClose(s: AzSdpSocket): String = {
    val ch = s.byteChannel()
    assert(Wire.read(ch, 1).get() == Wire.ERROR)
    val message = Wire.readString(ch)
    assert(ch.read(ByteBuffer.allocate(1)) == -1, "the server keeps a connection that sent a malformed frame")
    message
  }

  test("an oversized request frame is answered with an error and a close") {
    val s = rawConnection()
    try {
      Wire.writeFully(s.byteChannel(), ByteBuffer.allocate(4).putInt(Wire.MAX_REQUEST_BYTES + 1).flip())
      assert(errorThenClose(s).contains("request frame"))
    } finally s.close()
  }

  test("a string running past its frame is answered with an error and a close") {
    val s = rawConnection()
    try {
      val frame = ByteBuffer.allocate(14).putInt(10).putInt(1).putShort(500.toShort).putInt(0).flip()
      Wire.writeFully(s.byteChannel(), frame)
      assert(errorThenClose(s).contains("exceeds the frame"))
    } finally s.close()
  }

  test("a client speaking another protocol is dropped") {
    val s = new AzSdpSocket(conf("tcp").socketConfig())
    try {
      s.connect(new InetSocketAddress("localhost", server.port()), 10000)
      s.setSoTimeout(10000)
      val ch = s.byteChannel()
      Wire.read(ch, 6 + Wire.NONCE_BYTES)
      Wire.writeFully(ch, ByteBuffer.wrap("GET / HTTP/1.1\r\n\r\n".getBytes("US-ASCII")))
      assert(errorThenClose(s).contains("bad magic"))
    } finally s.close()
  }
}
