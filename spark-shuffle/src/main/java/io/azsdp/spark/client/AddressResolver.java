package io.azsdp.spark.client;

import java.io.IOException;
import java.net.InetSocketAddress;

/** Where an executor's block server listens (host and port: executors may share a host). */
public interface AddressResolver {
    InetSocketAddress resolve(String executorId) throws IOException;

    /** Forgets a cached address after a connection to it failed, so the next fetch asks again. */
    void invalidate(String executorId);
}
