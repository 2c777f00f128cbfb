package io.azsdp.socket;

import io.azsdp.config.AzSdpConfig;
import io.azsdp.sdp.SdpConnection;
import io.azsdp.sdp.TransferMode;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketAddress;
import java.net.SocketException;
import java.net.SocketOption;
import java.net.StandardSocketOptions;
import java.net.UnknownHostException;
import java.nio.channels.SocketChannel;
import java.util.Set;

/**
 * A {@link Socket} whose bytes travel over SDP on an AZ-SDP fabric. Blocking stream semantics are those of a TCP socket:
 * connect and read timeouts, half close, orderly close (every written byte is delivered, then end of stream) and
 * abortive close ({@code SO_LINGER 0}: the peer gets a reset). TCP options are accepted and remembered; they do not
 * change the fabric. {@link #getChannel()} is null, as for any socket not created by a channel; use
 * {@link #byteChannel()} to move {@code ByteBuffer}s (direct buffers may go zero copy).
 */
public class AzSdpSocket extends Socket {
    private final Object stateLock = new Object();
    private AzSdpConfig config;
    private volatile SdpConnection conn;
    private InetSocketAddress localBind;
    private InetSocketAddress localAddress;
    private InetSocketAddress remoteAddress;
    private volatile int soTimeout;
    private int linger = -1;
    private boolean tcpNoDelay = true;
    private boolean keepAlive;
    private boolean reuseAddress;
    private boolean oobInline;
    private int trafficClass;
    private int sendBufferSize = 65536;
    private int receiveBufferSize = 65536;
    private volatile boolean closed;
    private boolean inputShutdown;
    private boolean outputShutdown;
    private InputStream in;
    private OutputStream out;
    private AzSdpChannel channel;

    /** An unconnected socket with the process-wide configuration. */
    public AzSdpSocket() {
        this(AzSdpConfig.global());
    }

    /** An unconnected socket with its own configuration. */
    public AzSdpSocket(AzSdpConfig config) {
        this.config = config;
    }

    public AzSdpSocket(String host, int port) throws IOException {
        this(InetAddress.getByName(host), port);
    }

    public AzSdpSocket(InetAddress address, int port) throws IOException {
        this();
        connect(new InetSocketAddress(address, port));
    }

    public AzSdpSocket(String host, int port, InetAddress localAddr, int localPort) throws IOException {
        this();
        bind(new InetSocketAddress(localAddr, localPort));
        connect(new InetSocketAddress(host, port));
    }

    /** A connected socket made by {@link AzSdpServerSocket#accept()}. */
    AzSdpSocket(AzSdpConfig config, SdpConnection conn) {
        this.config = config;
        attach(conn);
    }

    // ------------------------------------------------------------------------------------------------ AZ-SDP

    /** Per-socket setting of any {@code azsdp.*} key; connection-level keys apply only before connect. */
    public void setAzSdpOption(String key, Object value) {
        synchronized (stateLock) {
            config = config.with(key, value);
            SdpConnection c = conn;
            if (c != null) {
                if (key.startsWith(AzSdpConfig.ZCOPY_THRESHOLD)) {
                    applyZcopyThreshold(c);
                } else if (AzSdpConfig.MODE.equals(key)) {
                    c.setMode(TransferMode.parse(config.get(key)));
                }
            }
        }
    }

    public AzSdpConfig config() {
        return config;
    }

    /** Writes at least this large go zero copy in auto mode; settable at any time. */
    public void setZcopyThreshold(int bytes) {
        setAzSdpOption(AzSdpConfig.ZCOPY_THRESHOLD, bytes);
    }

    public void setTransferMode(TransferMode mode) {
        setAzSdpOption(AzSdpConfig.MODE, mode.name().toLowerCase(java.util.Locale.ROOT));
    }

    /** The fabric this connection runs on ("shm", "tcp"), or null before connect. */
    public String fabricName() {
        SdpConnection c = conn;
        return c == null ? null : c.endpoint().fabricName();
    }

    /** The SDP connection (statistics, mode). Null before connect. */
    public SdpConnection connection() {
        return conn;
    }

    /** A channel over this socket, for ByteBuffer I/O; direct buffers may be transferred zero copy. */
    public AzSdpChannel byteChannel() throws IOException {
        synchronized (stateLock) {
            checkConnected();
            if (channel == null) {
                channel = new AzSdpChannel(this);
            }
            return channel;
        }
    }

    SdpConnection requireConnection() throws IOException {
        SdpConnection c = conn;
        if (closed) {
            throw new SocketException("Socket is closed");
        }
        if (c == null) {
            throw new SocketException("Socket is not connected");
        }
        return c;
    }

    private void attach(SdpConnection c) {
        conn = c;
        localAddress = c.endpoint().localAddress();
        remoteAddress = c.endpoint().remoteAddress();
        applyZcopyThreshold(c);
        c.setMode(TransferMode.parse(config.get(AzSdpConfig.MODE)));
    }

    /** The threshold of the connection's own fabric (see AzSdpConfig#zcopyThreshold). */
    private void applyZcopyThreshold(SdpConnection c) {
        c.setZcopyThreshold(config.zcopyThreshold(c.endpoint().fabricName()));
    }

    private void checkConnected() throws SocketException {
        if (closed) {
            throw new SocketException("Socket is closed");
        }
        if (conn == null) {
            throw new SocketException("Socket is not connected");
        }
    }

    // ------------------------------------------------------------------------------------------------ connect

    @Override
    public void connect(SocketAddress endpoint) throws IOException {
        connect(endpoint, 0);
    }

    @Override
    public void connect(SocketAddress endpoint, int timeout) throws IOException {
        if (endpoint == null) {
            throw new IllegalArgumentException("connect: The address can't be null");
        }
        if (timeout < 0) {
            throw new IllegalArgumentException("connect: timeout can't be negative");
        }
        if (!(endpoint instanceof InetSocketAddress isa)) {
            throw new IllegalArgumentException("Unsupported address type");
        }
        if (isa.isUnresolved()) {
            throw new UnknownHostException(isa.getHostName());
        }
        AzSdpConfig cfg;
        InetSocketAddress bindTo;
        synchronized (stateLock) {
            if (closed) {
                throw new SocketException("Socket is closed");
            }
            if (conn != null) {
                throw new SocketException("already connected");
            }
            cfg = config;
            bindTo = localBind;
        }
        SdpConnection c = Connector.connect(isa, bindTo, cfg, timeout);
        synchronized (stateLock) {
            if (closed) {
                c.abort();
                throw new SocketException("Socket closed during connect");
            }
            attach(c);
        }
    }

    @Override
    public void bind(SocketAddress bindpoint) throws IOException {
        synchronized (stateLock) {
            if (closed) {
                throw new SocketException("Socket is closed");
            }
            if (localBind != null || conn != null) {
                throw new SocketException("Already bound");
            }
            if (bindpoint != null && !(bindpoint instanceof InetSocketAddress)) {
                throw new IllegalArgumentException("Unsupported address type");
            }
            localBind = bindpoint == null ? new InetSocketAddress(0) : (InetSocketAddress) bindpoint;
        }
    }

    // ------------------------------------------------------------------------------------------------ addresses

    @Override
    public InetAddress getInetAddress() {
        return remoteAddress == null ? null : remoteAddress.getAddress();
    }

    @Override
    public InetAddress getLocalAddress() {
        if (localAddress != null) {
            return localAddress.getAddress();
        }
        return localBind != null ? localBind.getAddress() : new InetSocketAddress(0).getAddress();
    }

    @Override
    public int getPort() {
        return remoteAddress == null ? 0 : remoteAddress.getPort();
    }

    @Override
    public int getLocalPort() {
        if (localAddress != null) {
            return localAddress.getPort();
        }
        return localBind != null ? localBind.getPort() : -1;
    }

    @Override
    public SocketAddress getRemoteSocketAddress() {
        return remoteAddress;
    }

    @Override
    public SocketAddress getLocalSocketAddress() {
        return localAddress != null ? localAddress : localBind;
    }

    /** Always null: this socket is not backed by a {@link SocketChannel}. */
    @Override
    public SocketChannel getChannel() {
        return null;
    }

    // ------------------------------------------------------------------------------------------------ streams

    @Override
    public InputStream getInputStream() throws IOException {
        synchronized (stateLock) {
            checkConnected();
            if (inputShutdown) {
                throw new SocketException("Socket input is shutdown");
            }
            if (in == null) {
                in = new SdpInputStream(this);
            }
            return in;
        }
    }

    @Override
    public OutputStream getOutputStream() throws IOException {
        synchronized (stateLock) {
            checkConnected();
            if (outputShutdown) {
                throw new SocketException("Socket output is shutdown");
            }
            if (out == null) {
                out = new SdpOutputStream(this);
            }
            return out;
        }
    }

    int readTimeout() {
        return soTimeout;
    }

    // ------------------------------------------------------------------------------------------------ options

    @Override
    public void setTcpNoDelay(boolean on) throws SocketException {
        checkNotClosed();
        tcpNoDelay = on;
    }

    @Override
    public boolean getTcpNoDelay() throws SocketException {
        checkNotClosed();
        return tcpNoDelay;
    }

    @Override
    public void setSoLinger(boolean on, int lingerSeconds) throws SocketException {
        checkNotClosed();
        if (on && lingerSeconds < 0) {
            throw new IllegalArgumentException("invalid value for SO_LINGER");
        }
        linger = on ? Math.min(lingerSeconds, 65535) : -1;
    }

    @Override
    public int getSoLinger() throws SocketException {
        checkNotClosed();
        return linger;
    }

    @Override
    public void sendUrgentData(int data) throws IOException {
        throw new SocketException("Urgent data not supported by AZ-SDP");
    }

    @Override
    public void setOOBInline(boolean on) throws SocketException {
        checkNotClosed();
        oobInline = on;
    }

    @Override
    public boolean getOOBInline() throws SocketException {
        checkNotClosed();
        return oobInline;
    }

    @Override
    public void setSoTimeout(int timeout) throws SocketException {
        checkNotClosed();
        if (timeout < 0) {
            throw new IllegalArgumentException("timeout can't be negative");
        }
        soTimeout = timeout;
    }

    @Override
    public int getSoTimeout() throws SocketException {
        checkNotClosed();
        return soTimeout;
    }

    @Override
    public void setSendBufferSize(int size) throws SocketException {
        checkNotClosed();
        if (size <= 0) {
            throw new IllegalArgumentException("negative send size");
        }
        sendBufferSize = size;
    }

    @Override
    public int getSendBufferSize() throws SocketException {
        checkNotClosed();
        return sendBufferSize;
    }

    @Override
    public void setReceiveBufferSize(int size) throws SocketException {
        checkNotClosed();
        if (size <= 0) {
            throw new IllegalArgumentException("invalid receive size");
        }
        receiveBufferSize = size;
    }

    @Override
    public int getReceiveBufferSize() throws SocketException {
        checkNotClosed();
        return receiveBufferSize;
    }

    @Override
    public void setKeepAlive(boolean on) throws SocketException {
        checkNotClosed();
        keepAlive = on;
    }

    @Override
    public boolean getKeepAlive() throws SocketException {
        checkNotClosed();
        return keepAlive;
    }

    @Override
    public void setTrafficClass(int tc) throws SocketException {
        checkNotClosed();
        if (tc < 0 || tc > 255) {
            throw new IllegalArgumentException("tc is not in range 0 -- 255");
        }
        trafficClass = tc;
    }

    @Override
    public int getTrafficClass() throws SocketException {
        return trafficClass;
    }

    @Override
    public void setReuseAddress(boolean on) throws SocketException {
        checkNotClosed();
        reuseAddress = on;
    }

    @Override
    public boolean getReuseAddress() throws SocketException {
        checkNotClosed();
        return reuseAddress;
    }

    @Override
    public void setPerformancePreferences(int connectionTime, int latency, int bandwidth) {
        // accepted and ignored, as by the JDK's own sockets
    }

    @Override
    @SuppressWarnings("unchecked")
    public <T> Socket setOption(SocketOption<T> name, T value) throws IOException {
        if (name == StandardSocketOptions.TCP_NODELAY) {
            setTcpNoDelay((Boolean) value);
        } else if (name == StandardSocketOptions.SO_LINGER) {
            int v = (Integer) value;
            setSoLinger(v >= 0, Math.max(v, 0));
        } else if (name == StandardSocketOptions.SO_KEEPALIVE) {
            setKeepAlive((Boolean) value);
        } else if (name == StandardSocketOptions.SO_SNDBUF) {
            setSendBufferSize((Integer) value);
        } else if (name == StandardSocketOptions.SO_RCVBUF) {
            setReceiveBufferSize((Integer) value);
        } else if (name == StandardSocketOptions.SO_REUSEADDR) {
            setReuseAddress((Boolean) value);
        } else if (name == StandardSocketOptions.IP_TOS) {
            setTrafficClass((Integer) value);
        } else {
            throw new UnsupportedOperationException("'" + name + "' not supported");
        }
        return this;
    }

    @Override
    @SuppressWarnings("unchecked")
    public <T> T getOption(SocketOption<T> name) throws IOException {
        Object v;
        if (name == StandardSocketOptions.TCP_NODELAY) {
            v = getTcpNoDelay();
        } else if (name == StandardSocketOptions.SO_LINGER) {
            v = getSoLinger();
        } else if (name == StandardSocketOptions.SO_KEEPALIVE) {
            v = getKeepAlive();
        } else if (name == StandardSocketOptions.SO_SNDBUF) {
            v = getSendBufferSize();
        } else if (name == StandardSocketOptions.SO_RCVBUF) {
            v = getReceiveBufferSize();
        } else if (name == StandardSocketOptions.SO_REUSEADDR) {
            v = getReuseAddress();
        } else if (name == StandardSocketOptions.IP_TOS) {
            v = getTrafficClass();
        } else {
            throw new UnsupportedOperationException("'" + name + "' not supported");
        }
        return (T) v;
    }

    @Override
    public Set<SocketOption<?>> supportedOptions() {
        return Set.of(StandardSocketOptions.TCP_NODELAY, StandardSocketOptions.SO_LINGER,
                StandardSocketOptions.SO_KEEPALIVE, StandardSocketOptions.SO_SNDBUF, StandardSocketOptions.SO_RCVBUF,
                StandardSocketOptions.SO_REUSEADDR, StandardSocketOptions.IP_TOS);
    }

    private void checkNotClosed() throws SocketException {
        if (closed) {
            throw new SocketException("Socket is closed");
        }
    }

    // ------------------------------------------------------------------------------------------------ close

    /** Orderly close, or abortive with {@code SO_LINGER 0}. Idempotent. */
    @Override
    public void close() throws IOException {
        SdpConnection c;
        synchronized (stateLock) {
            if (closed) {
                return;
            }
            closed = true;
            c = conn;
        }
        if (c != null) {
            if (linger == 0) {
                c.abort();
            } else {
                c.close();
            }
        }
    }

    @Override
    public void shutdownInput() throws IOException {
        synchronized (stateLock) {
            checkConnected();
            if (inputShutdown) {
                throw new SocketException("Socket input is already shutdown");
            }
            inputShutdown = true;
        }
        conn.shutdownInput();
    }

    @Override
    public void shutdownOutput() throws IOException {
        synchronized (stateLock) {
            checkConnected();
            if (outputShutdown) {
                throw new SocketException("Socket output is already shutdown");
            }
            outputShutdown = true;
        }
        conn.shutdownOutput();
    }

    @Override
    public boolean isConnected() {
        return conn != null;
    }

    @Override
    public boolean isBound() {
        return conn != null || localBind != null;
    }

    @Override
    public boolean isClosed() {
        return closed;
    }

    @Override
    public boolean isInputShutdown() {
        return inputShutdown;
    }

    @Override
    public boolean isOutputShutdown() {
        return outputShutdown;
    }

    @Override
    public String toString() {
        SdpConnection c = conn;
        if (c == null) {
            return "AzSdpSocket[unconnected]";
        }
        return "AzSdpSocket[fabric=" + c.endpoint().fabricName() + ",addr=" + getInetAddress() + ",port="
                + getPort() + ",localport=" + getLocalPort() + "]";
    }
}
