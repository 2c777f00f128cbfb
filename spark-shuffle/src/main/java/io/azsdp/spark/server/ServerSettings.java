package io.azsdp.spark.server;

/**
 * What every connection of a block server shares. {@code mapThreshold}: segments at least this long are mapped and
 * written straight from the mapping, which goes zero copy unless {@code zeroCopy} is off (bcopy mode);
 * {@code handshakeTimeoutMs} bounds a client that connects and stays silent.
 */
record ServerSettings(BlockSource source, String appId, String secret, int mapThreshold, boolean zeroCopy,
                      int handshakeTimeoutMs) {
}
