package io.azsdp.spark.rpc;

import java.io.Serializable;

/** What executors ask the driver plugin (Java-serialized by Spark's RPC). */
final class Messages {
    private Messages() {
    }

    /** An executor's block server is up; the reply (true) means the driver knows it. */
    record Announce(ExecutorAddress address) implements Serializable {
    }

    /** Where is this executor's block server? Reply: its {@link ExecutorAddress}, or null while unknown. */
    record Lookup(String executorId) implements Serializable {
    }
}
