package io.azsdp.spark.server;

import java.io.IOException;

/** Names the file segment of a block the server may send; anything else is refused by throwing. */
public interface BlockSource {
    /**
     * @throws IllegalArgumentException the id is malformed or not a block this server serves
     * @throws IOException the block is not (or no longer) on this executor
     */
    FileSegment resolve(String blockId) throws IOException;
}
