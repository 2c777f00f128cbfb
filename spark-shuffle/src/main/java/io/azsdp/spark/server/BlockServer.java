package io.azsdp.spark.server;

import io.azsdp.spark.config.ShuffleConf;
import io.azsdp.socket.AzSdpServerSocket;
import io.azsdp.socket.AzSdpSocket;
import java.io.Closeable;
import java.io.IOException;
import java.net.BindException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An executor's AZ-SDP block server: accepts connections on every fabric and serves each on its own thread (a
 * connection carries one request at a time; readers open a few per peer for parallelism).
 */
public final class BlockServer implements Closeable {
    private static final Logger LOG = LoggerFactory.getLogger(BlockServer.class);
    /** Successive ports tried when a fixed port is taken (several executors per host). */
    private static final int PORT_ATTEMPTS = 16;

    private final AzSdpServerSocket server;
    private final ServerSettings settings;
    private final Set<ServerConnection> open = ConcurrentHashMap.newKeySet();
    private final Thread acceptor;
    private volatile boolean closed;

    private BlockServer(AzSdpServerSocket server, ServerSettings settings) {
        this.server = server;
        this.settings = settings;
        this.acceptor = new Thread(this::acceptLoop, "azsdp-shuffle-acceptor-" + server.getLocalPort());
        acceptor.setDaemon(true);
    }

    /**
     * Binds and starts serving. {@code secret} null means no authentication; {@code appId} is always checked so a
     * client of another application is refused.
     */
    public static BlockServer start(ShuffleConf conf, BlockSource source, String appId, String secret)
            throws IOException {
        AzSdpServerSocket socket = bind(conf);
        BlockServer s = new BlockServer(socket, new ServerSettings(source, appId, secret, conf.zcopyThreshold(),
                !"bcopy".equals(conf.mode()), conf.timeoutMs()));
        s.acceptor.start();
        LOG.info("AZ-SDP shuffle block server on port {} (authentication {})", socket.getLocalPort(),
                secret != null ? "on" : "off");
        return s;
    }

    private static AzSdpServerSocket bind(ShuffleConf conf) throws IOException {
        int attempts = conf.port() == 0 ? 1 : PORT_ATTEMPTS;
        BindException last = null;
        for (int i = 0; i < attempts; i++) {
            AzSdpServerSocket s = new AzSdpServerSocket(conf.socketConfig());
            try {
                s.bind(new InetSocketAddress(conf.port() == 0 ? 0 : conf.port() + i));
                return s;
            } catch (BindException e) {
                s.close();
                last = e;
            }
        }
        throw last;
    }

    public int port() {
        return server.getLocalPort();
    }

    private void acceptLoop() {
        while (!closed) {
            Socket s;
            try {
                s = server.accept();
            } catch (IOException e) {
                if (!closed) {
                    LOG.warn("AZ-SDP shuffle block server stops accepting: {}", e.toString());
                }
                return;
            }
            ServerConnection c = new ServerConnection((AzSdpSocket) s, settings, open::remove);
            open.add(c);
            if (closed) {
                c.close();
                return;
            }
            Thread t = new Thread(c, "azsdp-shuffle-serve-" + s.getRemoteSocketAddress());
            t.setDaemon(true);
            t.start();
        }
    }

    @Override
    public void close() {
        closed = true;
        try {
            server.close();
        } catch (IOException e) {
            LOG.debug("closing the block server socket", e);
        }
        for (ServerConnection c : open) {
            c.close();
        }
    }
}
