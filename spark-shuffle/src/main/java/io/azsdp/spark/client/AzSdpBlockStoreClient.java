package io.azsdp.spark.client;

import io.azsdp.socket.AzSdpChannel;
import io.azsdp.spark.config.ShuffleConf;
import io.azsdp.spark.metrics.TransportCounters;
import io.azsdp.spark.protocol.ProtocolException;
import io.azsdp.spark.protocol.RefusedException;
import io.azsdp.spark.protocol.Wire;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.spark.network.buffer.ManagedBuffer;
import org.apache.spark.network.buffer.NioManagedBuffer;
import org.apache.spark.network.shuffle.BlockFetchingListener;
import org.apache.spark.network.shuffle.BlockStoreClient;
import org.apache.spark.network.shuffle.DownloadFile;
import org.apache.spark.network.shuffle.DownloadFileManager;
import org.apache.spark.network.shuffle.DownloadFileWritableChannel;
import org.apache.spark.network.shuffle.checksum.Cause;
import org.apache.spark.network.util.TransportConf;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Spark's block client over AZ-SDP: {@link #fetchBlocks} answers the listener block by block as the bytes arrive,
 * so {@code ShuffleBlockFetcherIterator} keeps its retry, checksum, metrics and memory accounting. Blocks are read
 * into direct buffers of their exact size (a large one is pulled by one-sided READ straight into it) or, when Spark
 * asks for it, streamed to a temporary file.
 */
public final class AzSdpBlockStoreClient extends BlockStoreClient {
    private static final Logger LOG = LoggerFactory.getLogger(AzSdpBlockStoreClient.class);
    private static final int DOWNLOAD_CHUNK = 1 << 20;

    private final PeerPool pool;
    private final ExecutorService fetchers;
    private final BlockStoreClient corruptionDiagnosis;

    /**
     * @param secret the application's secret when {@code spark.authenticate} is on, else null
     * @param corruptionDiagnosis Spark's own client, asked for the cause of a corrupt block (null: not diagnosed)
     */
    public AzSdpBlockStoreClient(ShuffleConf conf, AddressResolver resolver, String appId, String secret,
                                 TransportConf transportConf, BlockStoreClient corruptionDiagnosis) {
        this.pool = new PeerPool(conf, resolver, appId, secret);
        this.appId = appId;
        this.transportConf = transportConf;
        this.corruptionDiagnosis = corruptionDiagnosis;
        AtomicInteger n = new AtomicInteger();
        this.fetchers = Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, "azsdp-shuffle-fetch-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
    }

    @Override
    public void fetchBlocks(String host, int port, String execId, String[] blockIds, BlockFetchingListener listener,
                            DownloadFileManager downloadFileManager) {
        fetchers.execute(() -> fetch(execId, blockIds, listener, downloadFileManager));
    }

    private void fetch(String execId, String[] ids, BlockFetchingListener listener, DownloadFileManager files) {
        int next = 0;
        boolean retried = false;
        while (next < ids.length) {
            PeerConnection c;
            try {
                c = pool.acquire(execId);
            } catch (IOException | RuntimeException e) {
                fail(execId, ids, next, listener, e);
                return;
            }
            try {
                while (next < ids.length) {
                    int asked = c.request(ids, next);
                    for (int end = next + asked; next < end; next++) {
                        receive(c, ids[next], listener, files);
                    }
                }
                pool.release(execId, c);
            } catch (IOException | RuntimeException e) {
                pool.discard(execId, c);
                // A pooled connection may have been closed by the server while idle: one more try on a fresh one.
                if (!retried && c.reused() && !(e instanceof RefusedException) && !(e instanceof ProtocolException)) {
                    retried = true;
                    LOG.debug("retrying on a new connection to executor {}", execId, e);
                    continue;
                }
                fail(execId, ids, next, listener, e);
                return;
            }
        }
    }

    /** Reads one block's answer and hands it to the listener. */
    private void receive(PeerConnection c, String id, BlockFetchingListener listener, DownloadFileManager files)
            throws IOException {
        AzSdpChannel ch = c.channel();
        byte status = Wire.read(ch, 1).get();
        if (status == Wire.ERROR) {
            String message = Wire.readString(ch);
            TransportCounters.fetchFailed(1);
            listener.onBlockFetchFailure(id, new IOException("block server " + c.address() + " cannot serve "
                    + id + ": " + message));
            return;
        }
        if (status != Wire.DATA && status != Wire.ZCOPY_DATA) {
            throw new ProtocolException("unexpected block status " + status + " from " + c.address());
        }
        long length = Wire.read(ch, 8).getLong();
        if (length < 0) {
            throw new ProtocolException("negative block length from " + c.address());
        }
        ManagedBuffer block;
        if (files != null) {
            block = download(ch, length, files);
        } else if (length > Integer.MAX_VALUE) {
            throw new ProtocolException("block " + id + " of " + length + " bytes cannot be held in memory");
        } else {
            ByteBuffer data = ByteBuffer.allocateDirect((int) length);
            Wire.readFully(ch, data);
            block = new NioManagedBuffer(data.flip());
        }
        TransportCounters.fetched(length, status == Wire.ZCOPY_DATA);
        listener.onBlockFetchSuccess(id, block);
    }

    /** Streams a block too large for memory into a temporary file that Spark cleans up. */
    private ManagedBuffer download(AzSdpChannel ch, long length, DownloadFileManager files) throws IOException {
        DownloadFile file = files.createTempFile(transportConf);
        DownloadFileWritableChannel out = file.openForWriting();
        ManagedBuffer result;
        try {
            ByteBuffer chunk = ByteBuffer.allocateDirect(DOWNLOAD_CHUNK);
            for (long left = length; left > 0; left -= chunk.limit()) {
                chunk.clear().limit((int) Math.min(chunk.capacity(), left));
                Wire.readFully(ch, chunk);
                Wire.writeFully(out, chunk.flip());
            }
            result = out.closeAndRead();
        } catch (IOException | RuntimeException e) {
            out.close();
            file.delete();
            throw e;
        }
        if (!files.registerTempFileToClean(file)) {
            file.delete();
        }
        return result;
    }

    private static void fail(String execId, String[] ids, int from, BlockFetchingListener listener, Throwable e) {
        LOG.warn("AZ-SDP shuffle fetch of {} block(s) from executor {} failed: {}", ids.length - from, execId,
                e.toString());
        TransportCounters.fetchFailed(ids.length - from);
        for (int i = from; i < ids.length; i++) {
            listener.onBlockFetchFailure(ids[i], e);
        }
    }

    /** Checksum diagnosis of a corrupt block stays with Spark's own service, which still runs on every executor. */
    @Override
    public Cause diagnoseCorruption(String host, int port, String execId, int shuffleId, long mapId, int reduceId,
                                    long checksum, String algorithm) {
        if (corruptionDiagnosis == null) {
            return Cause.UNKNOWN_ISSUE;
        }
        return corruptionDiagnosis.diagnoseCorruption(host, port, execId, shuffleId, mapId, reduceId, checksum,
                algorithm);
    }

    @Override
    public void close() {
        fetchers.shutdownNow();
        pool.close();
    }
}
