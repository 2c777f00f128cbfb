package io.azsdp.spark.rpc;

import java.io.Serializable;

/** Where an executor's block server listens. Keyed by executor id: in local-cluster mode all share one host. */
public record ExecutorAddress(String executorId, String host, int port) implements Serializable {
}
