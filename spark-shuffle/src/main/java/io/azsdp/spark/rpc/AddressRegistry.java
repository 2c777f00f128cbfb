package io.azsdp.spark.rpc;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.spark.api.plugin.DriverPlugin;

/** The driver's table of executor id → block server address. */
final class AddressRegistry implements DriverPlugin {
    private static volatile AddressRegistry active;
    private final Map<String, ExecutorAddress> addresses = new ConcurrentHashMap<>();

    AddressRegistry() {
        active = this;
    }

    @Override
    public Object receive(Object message) {
        if (message instanceof Messages.Announce a) {
            addresses.put(a.address().executorId(), a.address());
            return Boolean.TRUE;
        }
        if (message instanceof Messages.Lookup l) {
            return addresses.get(l.executorId());
        }
        throw new IllegalArgumentException("unexpected message " + message);
    }

    @Override
    public void shutdown() {
        addresses.clear();
        if (active == this) {
            active = null;
        }
    }

    /** The addresses announced to this driver so far (empty when no application runs here). */
    static Map<String, ExecutorAddress> announced() {
        AddressRegistry r = active;
        return r == null ? Map.of() : Map.copyOf(r.addresses);
    }
}
