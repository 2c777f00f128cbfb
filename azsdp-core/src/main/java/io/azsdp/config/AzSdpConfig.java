package io.azsdp.config;

import java.io.IOException;
import java.io.InputStream;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * Immutable configuration. Defaults come from {@code conf/azsdp.properties} (bundled in the jar), overlaid by the file
 * named in {@code -Dazsdp.config}, then by {@code azsdp.*} system properties, then per socket via {@link #with}.
 * Every value is validated when the configuration is built, and an unknown key or bad value throws
 * {@link IllegalArgumentException} naming the key.
 */
public final class AzSdpConfig {
    public static final String FABRIC = "azsdp.fabric";
    public static final String SERVER_FABRICS = "azsdp.server.fabrics";
    public static final String MODE = "azsdp.mode";
    public static final String ZCOPY_THRESHOLD = "azsdp.zcopy.threshold";
    /**
     * The threshold on the tcp fabric, where a zero-copy write (synchronous in auto mode, from the staging ring in
     * azsdp mode: pages cannot be protected there) costs round trips through the peer's process that a copy through
     * the kernel does not. Setting {@link #ZCOPY_THRESHOLD} sets it too (see {@link #put}).
     */
    public static final String ZCOPY_THRESHOLD_TCP = ZCOPY_THRESHOLD + ".tcp";
    /**
     * In azsdp mode, writes from direct buffers of at least this many bytes and below the zero-copy threshold go by
     * asynchronous zero copy too, while few azsdp-mode writes of other connections are under way (see AzsdpWrites)
     * and no read of the same connection is.
     */
    public static final String ZCOPY_SOLO_THRESHOLD = "azsdp.zcopy.soloThreshold";
    /** The same on the tcp fabric (never, as its zero-copy threshold). Setting the general key sets it too. */
    public static final String ZCOPY_SOLO_THRESHOLD_TCP = ZCOPY_SOLO_THRESHOLD + ".tcp";
    public static final String ZCOPY_MAX_ADVERTS = "azsdp.zcopy.maxAdverts";
    public static final String ZCOPY_POOL_BYTES = "azsdp.zcopy.poolBytes";
    public static final String ZCOPY_READ_CHUNK = "azsdp.zcopy.readChunk";
    public static final String ZCOPY_STAGING_BYTES = "azsdp.zcopy.stagingBytes";
    public static final String BCOPY_BUFFER_SIZE = "azsdp.bcopy.bufferSize";
    public static final String BCOPY_BUFFERS = "azsdp.bcopy.buffers";
    /**
     * The receive buffers (credits) on the shm fabric, where they cost ring space in the shared segment rather than
     * private buffers when received in place. Setting the general key sets it too.
     */
    public static final String BCOPY_BUFFERS_SHM = BCOPY_BUFFERS + ".shm";
    /** Receive messages in place where the fabric can (see Endpoint#receiveInPlace). */
    public static final String BCOPY_IN_PLACE = "azsdp.bcopy.inPlace";
    public static final String CREDITS_RESERVE = "azsdp.credits.reserve";
    public static final String CONNECT_TIMEOUT_MS = "azsdp.connect.timeoutMs";
    public static final String LIVENESS_TIMEOUT_MS = "azsdp.liveness.timeoutMs";
    public static final String CLOSE_TIMEOUT_MS = "azsdp.close.timeoutMs";
    public static final String WAIT_SPIN_MICROS = "azsdp.wait.spinMicros";
    public static final String PROTECTION = "azsdp.protection";
    public static final String PROTECTION_WARN_MS = "azsdp.protection.warnMs";
    /**
     * In azsdp mode, a write smaller than this goes by synchronous zero copy while the connection's protected sends
     * keep having to make fresh pages read-only (no send in flight or lingering range held them): protecting and
     * releasing them costs more than waiting for the peer's READ. Larger writes do so only while their protect calls
     * measure dearer than the connection's synchronous sends (see ProtectChoice). 0: always protect.
     */
    public static final String PROTECTION_SYNC_BELOW = "azsdp.protection.syncBelow";
    /** The same on the shm fabric, where the peer's READ is one local copy. Setting the general key sets it too. */
    public static final String PROTECTION_SYNC_BELOW_SHM = PROTECTION_SYNC_BELOW + ".shm";

    /** The fabrics: what a server may accept on, and the suffixes of a key's fabric variants (see #onFabric). */
    private static final List<String> FABRIC_NAMES = List.of("shm", "tcp", "rdma");

    /** System properties that share the prefix but are read elsewhere (native loader, config file location). */
    private static final Set<String> FOREIGN_KEYS = Set.of("azsdp.config", "azsdp.native.path", "azsdp.native.disable");

    /** Key → validator; the validators define the set of known keys. */
    private static final Map<String, Validator> KEYS = Map.ofEntries(
            Map.entry(FABRIC, oneOf("auto", "shm", "tcp", "rdma")),
            Map.entry(SERVER_FABRICS, listOf(FABRIC_NAMES.toArray(String[]::new))),
            Map.entry(MODE, oneOf("bcopy", "zcopy", "auto", "azsdp")),
            Map.entry(PROTECTION, oneOf("mprotect", "copy")),
            Map.entry(PROTECTION_WARN_MS, range(1, Integer.MAX_VALUE)),
            Map.entry(PROTECTION_SYNC_BELOW, range(0, Integer.MAX_VALUE)),
            Map.entry(PROTECTION_SYNC_BELOW_SHM, range(0, Integer.MAX_VALUE)),
            Map.entry(ZCOPY_THRESHOLD, range(1, Integer.MAX_VALUE)),
            Map.entry(ZCOPY_THRESHOLD_TCP, range(1, Integer.MAX_VALUE)),
            Map.entry(ZCOPY_SOLO_THRESHOLD, range(1, Integer.MAX_VALUE)),
            Map.entry(ZCOPY_SOLO_THRESHOLD_TCP, range(1, Integer.MAX_VALUE)),
            Map.entry(ZCOPY_MAX_ADVERTS, range(1, 255)),
            Map.entry(ZCOPY_POOL_BYTES, range(4096, 1 << 30)),
            Map.entry(ZCOPY_READ_CHUNK, range(4096, 1 << 30)),
            Map.entry(ZCOPY_STAGING_BYTES, range(4096, 1 << 30)),
            Map.entry(BCOPY_BUFFER_SIZE, range(64, 16 << 20)),
            Map.entry(BCOPY_BUFFERS, range(4, 4096)),
            Map.entry(BCOPY_BUFFERS_SHM, range(4, 4096)),
            Map.entry(BCOPY_IN_PLACE, oneOf("true", "false")),
            Map.entry(CREDITS_RESERVE, range(1, 16)),
            Map.entry(CONNECT_TIMEOUT_MS, range(1, Integer.MAX_VALUE)),
            Map.entry(LIVENESS_TIMEOUT_MS, range(10, Integer.MAX_VALUE)),
            Map.entry(CLOSE_TIMEOUT_MS, range(0, Integer.MAX_VALUE)),
            Map.entry(WAIT_SPIN_MICROS, range(0, 10_000)));

    private static volatile AzSdpConfig global;

    private final Map<String, String> values;

    private AzSdpConfig(Map<String, String> values) {
        this.values = Collections.unmodifiableMap(values);
        for (String key : KEYS.keySet()) {
            if (!values.containsKey(key)) {
                throw new IllegalArgumentException("missing configuration key " + key);
            }
        }
        for (String buffers : List.of(BCOPY_BUFFERS, BCOPY_BUFFERS_SHM)) {
            if (intValue(CREDITS_RESERVE) + 2 > intValue(buffers)) {
                throw new IllegalArgumentException(CREDITS_RESERVE + " must leave at least two credits for data: "
                        + CREDITS_RESERVE + "=" + intValue(CREDITS_RESERVE) + ", " + buffers + "="
                        + intValue(buffers));
            }
        }
    }

    /** The process-wide configuration: bundled defaults, the -Dazsdp.config file, then system properties. */
    public static AzSdpConfig global() {
        AzSdpConfig g = global;
        if (g == null) {
            synchronized (AzSdpConfig.class) {
                g = global;
                if (g == null) {
                    global = g = load(System.getProperties());
                }
            }
        }
        return g;
    }

    /** Builds a configuration from the bundled defaults overlaid by the {@code azsdp.*} entries of {@code props}. */
    public static AzSdpConfig load(Properties props) {
        Map<String, String> v = new TreeMap<>();
        try (InputStream in = AzSdpConfig.class.getResourceAsStream("azsdp.properties")) {
            if (in == null) {
                throw new IllegalStateException("bundled azsdp.properties missing from the class path");
            }
            overlay(v, read(in), "bundled defaults");
        } catch (IOException e) {
            throw new IllegalStateException("cannot read bundled azsdp.properties", e);
        }
        String file = props.getProperty("azsdp.config");
        if (file != null) {
            try (InputStream in = Files.newInputStream(Path.of(file))) {
                overlay(v, read(in), file);
            } catch (IOException e) {
                throw new IllegalArgumentException("azsdp.config: cannot read " + file + ": " + e.getMessage(), e);
            }
        }
        overlay(v, props, "system properties");
        return new AzSdpConfig(v);
    }

    /** A copy with one key changed (per-socket settings). */
    public AzSdpConfig with(String key, Object value) {
        Map<String, String> v = new TreeMap<>(values);
        put(v, key, String.valueOf(value), "per-socket setting");
        return new AzSdpConfig(v);
    }

    public String get(String key) {
        String s = values.get(key);
        if (s == null) {
            throw new IllegalArgumentException("unknown configuration key " + key);
        }
        return s;
    }

    public int intValue(String key) {
        return Integer.parseInt(get(key));
    }

    /** The zero-copy threshold on {@code fabric}: its own {@code azsdp.zcopy.threshold.<fabric>} if there is one. */
    public int zcopyThreshold(String fabric) {
        return onFabric(ZCOPY_THRESHOLD, fabric);
    }

    /** {@link #BCOPY_BUFFERS} on {@code fabric}: its own if there is one. */
    public int bcopyBuffers(String fabric) {
        return onFabric(BCOPY_BUFFERS, fabric);
    }

    /** {@link #ZCOPY_SOLO_THRESHOLD} on {@code fabric}: its own if there is one. */
    public int zcopySoloThreshold(String fabric) {
        return onFabric(ZCOPY_SOLO_THRESHOLD, fabric);
    }

    /** {@link #PROTECTION_SYNC_BELOW} on {@code fabric}: its own if there is one. */
    public int protectionSyncBelow(String fabric) {
        return onFabric(PROTECTION_SYNC_BELOW, fabric);
    }

    private int onFabric(String key, String fabric) {
        String own = key + "." + fabric;
        return intValue(KEYS.containsKey(own) ? own : key);
    }

    public Map<String, String> asMap() {
        return values;
    }

    private static Properties read(InputStream in) throws IOException {
        Properties p = new Properties();
        try (Reader r = new java.io.InputStreamReader(in, StandardCharsets.UTF_8)) {
            p.load(r);
        }
        return p;
    }

    /** In key order, so that a general key comes before the fabric-specific keys it sets (see {@link #put}). */
    private static void overlay(Map<String, String> target, Properties p, String source) {
        for (String key : new TreeSet<>(p.stringPropertyNames())) {
            if (key.startsWith("azsdp.") && !FOREIGN_KEYS.contains(key)) {
                put(target, key, p.getProperty(key).trim(), source);
            }
        }
    }

    private static void put(Map<String, String> target, String key, String value, String source) {
        Validator val = KEYS.get(key);
        if (val == null) {
            throw new IllegalArgumentException("unknown AZ-SDP configuration key '" + key + "' (from " + source
                    + "); known keys: " + new TreeMap<>(KEYS).keySet());
        }
        String err = val.check(value);
        if (err != null) {
            throw new IllegalArgumentException("bad value '" + value + "' for " + key + " (from " + source + "): "
                    + err);
        }
        target.put(key, value.toLowerCase(Locale.ROOT));
        // Whoever sets a general key that has fabric variants means it on every fabric, unless they also name a
        // fabric's own (which sorts after it: see overlay).
        for (String fabric : FABRIC_NAMES) {
            if (KEYS.containsKey(key + "." + fabric)) {
                target.put(key + "." + fabric, value.toLowerCase(Locale.ROOT));
            }
        }
    }

    @Override
    public String toString() {
        return "AzSdpConfig" + values;
    }

    private interface Validator {
        /** Null when valid, else what is wrong. */
        String check(String value);
    }

    private static Validator oneOf(String... allowed) {
        Set<String> set = Set.of(allowed);
        return v -> set.contains(v.toLowerCase(Locale.ROOT)) ? null : "expected one of " + String.join(", ", allowed);
    }

    private static Validator listOf(String... allowed) {
        Validator one = oneOf(allowed);
        return v -> {
            if (v.isBlank()) {
                return "expected a comma-separated list of " + String.join(", ", allowed);
            }
            for (String part : v.split(",")) {
                String err = one.check(part.trim());
                if (err != null) {
                    return "'" + part.trim() + "': " + err;
                }
            }
            return null;
        };
    }

    private static Validator range(long min, long max) {
        return v -> {
            try {
                long n = Long.parseLong(v);
                return n < min || n > max ? "expected an integer in [" + min + ", " + max + "]" : null;
            } catch (NumberFormatException e) {
                return "expected an integer in [" + min + ", " + max + "]";
            }
        };
    }
}
