package io.azsdp.spark.rpc;

import io.azsdp.spark.client.AddressResolver;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.InetSocketAddress;
import java.net.SocketTimeoutException;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.spark.api.plugin.PluginContext;

/**
 * An executor's view of the address table: cached, and asked of the driver on a miss. A miss is retried until the
 * lookup timeout, because a reader may want a peer whose announcement is still on its way.
 */
final class DriverAddressBook implements AddressResolver {
    private static final long RETRY_MS = 100;
    private final PluginContext ctx;
    private final long timeoutMs;
    private final Map<String, InetSocketAddress> cache = new ConcurrentHashMap<>();

    DriverAddressBook(PluginContext ctx, long timeoutMs) {
        this.ctx = ctx;
        this.timeoutMs = timeoutMs;
    }

    @Override
    public InetSocketAddress resolve(String executorId) throws IOException {
        InetSocketAddress a = cache.get(executorId);
        if (a != null) {
            return a;
        }
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (true) {
            ExecutorAddress found = ask(executorId);
            if (found != null) {
                a = new InetSocketAddress(found.host(), found.port());
                cache.put(executorId, a);
                return a;
            }
            if (System.currentTimeMillis() >= deadline) {
                throw new SocketTimeoutException("executor " + executorId + " announced no AZ-SDP block server within "
                        + timeoutMs + " ms");
            }
            try {
                Thread.sleep(RETRY_MS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new InterruptedIOException("interrupted while looking up executor " + executorId);
            }
        }
    }

    private ExecutorAddress ask(String executorId) throws IOException {
        try {
            return (ExecutorAddress) ctx.ask(new Messages.Lookup(executorId));
        } catch (IOException e) {
            throw e;
        } catch (Exception e) {
            throw new IOException("cannot ask the driver where executor " + executorId + " listens", e);
        }
    }

    @Override
    public void invalidate(String executorId) {
        cache.remove(executorId);
    }
}
