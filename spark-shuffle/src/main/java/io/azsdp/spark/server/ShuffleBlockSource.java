package io.azsdp.spark.server;

import java.io.File;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.SparkEnv;
import org.apache.spark.network.buffer.FileSegmentManagedBuffer;
import org.apache.spark.network.buffer.ManagedBuffer;
import org.apache.spark.storage.BlockId;
import org.apache.spark.storage.ShuffleBlockBatchId;
import org.apache.spark.storage.ShuffleBlockId;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.Option;

/**
 * Resolves block ids through this executor's shuffle block resolver (Spark's index/data file layout). Only shuffle
 * block and batch ids are accepted, and the segment must lie in one of the block manager's local directories, so
 * no request can name any other file.
 */
public final class ShuffleBlockSource implements BlockSource {
    private static final Logger LOG = LoggerFactory.getLogger(ShuffleBlockSource.class);
    private volatile List<Path> localDirs;

    @Override
    public FileSegment resolve(String blockId) throws IOException {
        BlockId id;
        try {
            id = BlockId.apply(blockId);
        } catch (Exception e) {
            throw new IllegalArgumentException("unrecognized block id '" + blockId + "'");
        }
        if (!(id instanceof ShuffleBlockId) && !(id instanceof ShuffleBlockBatchId)) {
            throw new IllegalArgumentException("only shuffle blocks are served, not " + blockId);
        }
        SparkEnv env = SparkEnv.get();
        if (env == null) {
            throw new IOException("executor is shutting down");
        }
        ManagedBuffer data;
        try {
            data = env.shuffleManager().shuffleBlockResolver().getBlockData(id, Option.empty());
        } catch (Exception e) {
            // Scala code throws IOExceptions undeclared. The cause names local paths: logged here, not sent to the client.
            LOG.debug("resolving {}", blockId, e);
            throw new IOException("block " + blockId + " is not on this executor");
        }
        if (!(data instanceof FileSegmentManagedBuffer segment)) {
            throw new IOException("block " + blockId + " is not a file segment");
        }
        Path file = segment.getFile().toPath().toAbsolutePath().normalize();
        if (!inLocalDirs(env, file)) {
            throw new SecurityException("block " + blockId + " resolves outside the executor's local directories");
        }
        return new FileSegment(segment.getFile(), segment.getOffset(), segment.getLength());
    }

    private boolean inLocalDirs(SparkEnv env, Path file) {
        List<Path> dirs = localDirs;
        if (dirs == null) {
            dirs = new ArrayList<>();
            for (File d : env.blockManager().diskBlockManager().localDirs()) {
                dirs.add(d.toPath().toAbsolutePath().normalize());
            }
            localDirs = dirs;
        }
        for (Path d : dirs) {
            if (file.startsWith(d)) {
                return true;
            }
        }
        return false;
    }
}
