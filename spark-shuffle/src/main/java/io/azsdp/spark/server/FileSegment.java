package io.azsdp.spark.server;

import java.io.File;

/** A byte range of a file: where one shuffle block (or a batch of contiguous ones) lives. */
public record FileSegment(File file, long offset, long length) {
}
