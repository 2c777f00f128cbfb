package io.azsdp.socket;

import io.azsdp.config.AzSdpConfig;
import io.azsdp.fabric.Bootstrap;
import io.azsdp.sdp.SdpConnection;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketAddress;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A {@link ServerSocket} that accepts AZ-SDP connections on a TCP port. The port is the rendezvous for every fabric
 * (the client names the one it wants); a client that fails its handshake is logged and skipped, it never fails
 * {@link #accept()} for the next one. {@link #getChannel()} is null.
 */
public class AzSdpServerSocket extends ServerSocket {
    private static final Logger LOG = LoggerFactory.getLogger(AzSdpServerSocket.class);

    private final Object stateLock = new Object();
    private final AzSdpConfig config;
    private ServerSocketChannel listener;
    private volatile boolean closed;
    private volatile int soTimeout;
    private boolean reuseAddress = true;
    private int receiveBufferSize = 65536;

    public AzSdpServerSocket() throws IOException {
        this(AzSdpConfig.global());
    }

    public AzSdpServerSocket(AzSdpConfig config) throws IOException {
        this.config = config;
    }

    public AzSdpServerSocket(int port) throws IOException {
        this(port, 50, null);
    }

    public AzSdpServerSocket(int port, int backlog) throws IOException {
        this(port, backlog, null);
    }

    public AzSdpServerSocket(int port, int backlog, InetAddress bindAddr) throws IOException {
        this(AzSdpConfig.global());
        bind(new InetSocketAddress(bindAddr, port), backlog);
    }

    public AzSdpConfig config() {
        return config;
    }

    @Override
    public void bind(SocketAddress endpoint) throws IOException {
        bind(endpoint, 50);
    }

    @Override
    public void bind(SocketAddress endpoint, int backlog) throws IOException {
        synchronized (stateLock) {
            if (closed) {
                throw new SocketException("Socket is closed");
            }
            if (listener != null) {
                throw new SocketException("Already bound");
            }
            if (endpoint != null && !(endpoint instanceof InetSocketAddress)) {
                throw new IllegalArgumentException("Unsupported address type");
            }
            InetSocketAddress addr = endpoint == null ? new InetSocketAddress(0) : (InetSocketAddress) endpoint;
            ServerSocketChannel ch = ServerSocketChannel.open();
            try {
                ch.socket().setReuseAddress(reuseAddress);
                ch.bind(addr, backlog < 1 ? 50 : backlog);
            } catch (IOException e) {
                ch.close();
                throw e;
            }
            listener = ch;
        }
    }

    /**
     * Waits for the next AZ-SDP connection, at most {@code SO_TIMEOUT} in all (handshakes included).
     */
    @Override
    public Socket accept() throws IOException {
        ServerSocketChannel ch;
        synchronized (stateLock) {
            if (closed) {
                throw new SocketException("Socket is closed");
            }
            if (listener == null) {
                throw new SocketException("Socket is not bound yet");
            }
            ch = listener;
        }
        int timeout = soTimeout;
        long deadline = timeout > 0 ? System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeout) : 0;
        while (true) {
            int left = 0;
            if (deadline != 0) {
                left = (int) TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
                if (left <= 0) {
                    throw new SocketTimeoutException("Accept timed out");
                }
            }
            SocketChannel sc;
            try {
                ch.socket().setSoTimeout(left);
                sc = ch.socket().accept().getChannel();
            } catch (IOException e) {
                if (closed) {
                    throw new SocketException("Socket closed");
                }
                throw e;
            }
            try {
                Bootstrap.Incoming in = Bootstrap.readRequest(sc, config.intValue(AzSdpConfig.CONNECT_TIMEOUT_MS));
                SdpConnection c = Connector.accept(in, config);
                return new AzSdpSocket(config, c);
            } catch (IOException | RuntimeException e) {
                LOG.warn("AZ-SDP server {}: connection attempt failed: {}", getLocalSocketAddress(), e.toString());
            }
        }
    }

    @Override
    public void close() throws IOException {
        synchronized (stateLock) {
            if (closed) {
                return;
            }
            closed = true;
            if (listener != null) {
                listener.close();
            }
        }
    }

    @Override
    public InetAddress getInetAddress() {
        SocketAddress a = getLocalSocketAddress();
        return a == null ? null : ((InetSocketAddress) a).getAddress();
    }

    @Override
    public int getLocalPort() {
        SocketAddress a = getLocalSocketAddress();
        return a == null ? -1 : ((InetSocketAddress) a).getPort();
    }

    @Override
    public SocketAddress getLocalSocketAddress() {
        synchronized (stateLock) {
            if (listener == null) {
                return null;
            }
            try {
                return listener.getLocalAddress();
            } catch (IOException e) {
                return null;
            }
        }
    }

    /** Always null: the listening channel is an implementation detail. */
    @Override
    public ServerSocketChannel getChannel() {
        return null;
    }

    @Override
    public boolean isBound() {
        return listener != null;
    }

    @Override
    public boolean isClosed() {
        return closed;
    }

    @Override
    public void setSoTimeout(int timeout) throws SocketException {
        if (closed) {
            throw new SocketException("Socket is closed");
        }
        if (timeout < 0) {
            throw new IllegalArgumentException("timeout < 0");
        }
        soTimeout = timeout;
    }

    @Override
    public int getSoTimeout() throws IOException {
        return soTimeout;
    }

    @Override
    public void setReuseAddress(boolean on) throws SocketException {
        reuseAddress = on;
    }

    @Override
    public boolean getReuseAddress() throws SocketException {
        return reuseAddress;
    }

    @Override
    public void setReceiveBufferSize(int size) throws SocketException {
        if (size <= 0) {
            throw new IllegalArgumentException("negative receive size");
        }
        receiveBufferSize = size;
    }

    @Override
    public int getReceiveBufferSize() throws SocketException {
        return receiveBufferSize;
    }

    @Override
    public void setPerformancePreferences(int connectionTime, int latency, int bandwidth) {
        // accepted and ignored
    }

    @Override
    public String toString() {
        return listener == null ? "AzSdpServerSocket[unbound]" : "AzSdpServerSocket[addr=" + getInetAddress()
                + ",localport=" + getLocalPort() + "]";
    }
}
