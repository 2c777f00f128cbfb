package io.azsdp.fabric.shm;

import io.azsdp.fabric.Endpoint;
import io.azsdp.fabric.Fabric;
import io.azsdp.fabric.FabricOptions;
import io.azsdp.nativeio.NativeLib;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * Same-host fabric: one shared memfd segment per connection (message rings and region tables, see {@link ShmSegment}),
 * futex doorbells, and cross-memory attach (process_vm_readv/writev) for one-sided operations.
 *
 * <p>Handshake on the bootstrap channel, big-endian, every read bounded by {@code connectTimeoutMs}:
 * <pre>
 * both ways:         HELLO   i32 'AZSH' | i32 version | i32 pid | i32 maxMessageSize | i32 maxPostedRecvs | i32 maxRegions
 * client -> server:  SEGMENT i32 'AZSG' | i32 memfd number (in the client) | i64 size
 * server -> client:  ACK     i32 status (0 ok) | u16 length + UTF-8 reason when not ok
 * </pre>
 * The client creates and initialises the segment, the server maps it through {@code /proc/<clientPid>/fd/<fd>} and
 * checks it against what both announced; the client then closes the memfd, so the memory lives exactly as long as the
 * two mappings (nothing to clean up after a crash). The channel is closed once the handshake is over.
 */
public final class ShmFabric implements Fabric {
    private static final int HELLO_MAGIC = 0x415A5348; // 'AZSH'
    private static final int SEGMENT_MAGIC = 0x415A5347; // 'AZSG'
    private static final int VERSION = 1;
    private static final int HELLO_SIZE = 24;
    private static final int SEGMENT_SIZE = 16;
    private static final int ACK_OK = 0;
    private static final int ACK_FAILED = 1;

    public ShmFabric() {
    }

    @Override
    public String name() {
        return "shm";
    }

    @Override
    public String unavailableReason() {
        return NativeLib.isAvailable() ? null : "native library unavailable: " + NativeLib.unavailableReason();
    }

    @Override
    public Endpoint connect(SocketChannel channel, FabricOptions options) throws IOException {
        return handshake(channel, options, true);
    }

    @Override
    public Endpoint accept(SocketChannel channel, FabricOptions options) throws IOException {
        return handshake(channel, options, false);
    }

    private Endpoint handshake(SocketChannel channel, FabricOptions options, boolean client) throws IOException {
        try (channel) {
            String why = unavailableReason();
            if (why != null) {
                throw new IOException("shm fabric unavailable: " + why);
            }
            ShmSegment.Params mine = new ShmSegment.Params(options.maxMessageSize(), options.maxPostedRecvs(),
                    options.maxRegions());
            mine.check("local");
            InetSocketAddress local = (InetSocketAddress) channel.getLocalAddress();
            InetSocketAddress remote = (InetSocketAddress) channel.getRemoteAddress();
            Wire wire = new Wire(channel, options.connectTimeoutMs());
            try {
                return client ? clientSide(wire, mine, options, local, remote)
                        : serverSide(wire, mine, options, local, remote);
            } catch (SocketTimeoutException e) {
                throw new SocketTimeoutException("shm handshake with " + remote + " timed out after "
                        + options.connectTimeoutMs() + " ms");
            }
        }
    }

    private static ShmEndpoint clientSide(Wire wire, ShmSegment.Params mine, FabricOptions options,
                                          InetSocketAddress local, InetSocketAddress remote) throws IOException {
        int pid = NativeLib.pid();
        wire.writeHello(pid, mine);
        Hello server = wire.readHello();
        ShmSegment.Layout layout = new ShmSegment.Layout(mine, server.params, NativeLib.pageSize());
        int fd = NativeLib.memfdCreate("azsdp-shm", layout.size);
        if (fd < 0) {
            throw new IOException("shm: memfd_create of " + layout.size + " bytes failed (errno " + -fd + ")");
        }
        ShmSegment seg = null;
        boolean ok = false;
        try {
            seg = ShmSegment.create(Path.of("/proc/self/fd/" + fd), layout, pid, server.pid);
            wire.writeSegment(fd, layout.size);
            wire.readAck();
            ShmEndpoint ep = new ShmEndpoint(seg, 0, options, local, remote);
            ok = true;
            return ep;
        } finally {
            NativeLib.close(fd); // the server has mapped it (or failed); our mapping keeps the memory
            if (!ok && seg != null) {
                seg.setState(0, ShmSegment.STATE_ABORTED); // in case the server did map it and returned an endpoint
                seg.release();
            }
        }
    }

    private static ShmEndpoint serverSide(Wire wire, ShmSegment.Params mine, FabricOptions options,
                                          InetSocketAddress local, InetSocketAddress remote) throws IOException {
        int pid = NativeLib.pid();
        wire.writeHello(pid, mine);
        Hello client = wire.readHello();
        ShmSegment.Layout layout = new ShmSegment.Layout(client.params, mine, NativeLib.pageSize());
        ByteBuffer msg = wire.read(SEGMENT_SIZE);
        int magic = msg.getInt();
        int fd = msg.getInt();
        long size = msg.getLong();
        ShmSegment seg;
        try {
            if (magic != SEGMENT_MAGIC) {
                throw new IOException("shm handshake: bad segment message magic 0x" + Integer.toHexString(magic));
            }
            if (fd < 0) {
                throw new IOException("shm handshake: bad memfd number " + fd);
            }
            seg = ShmSegment.attach(Path.of("/proc/" + client.pid + "/fd/" + fd), size, layout, client.pid, pid);
        } catch (IOException e) {
            wire.tryNak(e.getMessage());
            throw e;
        }
        boolean ok = false;
        try {
            ShmEndpoint ep = new ShmEndpoint(seg, 1, options, local, remote);
            wire.writeInt(ACK_OK);
            ok = true;
            return ep;
        } finally {
            if (!ok) {
                seg.setState(1, ShmSegment.STATE_ABORTED);
                seg.release();
            }
        }
    }

    private record Hello(int pid, ShmSegment.Params params) {
    }

    /** Small fixed-size messages on the blocking channel; reads go through the socket's stream so SO_TIMEOUT holds. */
    private static final class Wire {
        private final SocketChannel channel;
        private final InputStream in;
        private final int timeoutMs;
        private final long deadline;

        Wire(SocketChannel channel, int timeoutMs) throws IOException {
            if (!channel.isBlocking()) {
                channel.configureBlocking(true);
            }
            this.channel = channel;
            this.in = channel.socket().getInputStream();
            this.timeoutMs = timeoutMs;
            this.deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        }

        ByteBuffer read(int n) throws IOException {
            byte[] b = new byte[n];
            int off = 0;
            while (off < n) {
                if (timeoutMs > 0) { // 0: no bound, as for SO_TIMEOUT
                    long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
                    if (left <= 0) {
                        throw new SocketTimeoutException();
                    }
                    channel.socket().setSoTimeout((int) Math.min(Integer.MAX_VALUE, left));
                }
                int r = in.read(b, off, n - off);
                if (r < 0) {
                    throw new EOFException("shm handshake: connection closed by the peer");
                }
                off += r;
            }
            return ByteBuffer.wrap(b);
        }

        void write(ByteBuffer b) throws IOException {
            b.flip();
            while (b.hasRemaining()) {
                channel.write(b);
            }
        }

        void writeInt(int v) throws IOException {
            write(ByteBuffer.allocate(4).putInt(v));
        }

        void writeHello(int pid, ShmSegment.Params p) throws IOException {
            write(ByteBuffer.allocate(HELLO_SIZE).putInt(HELLO_MAGIC).putInt(VERSION).putInt(pid)
                    .putInt(p.maxMessage()).putInt(p.maxPostedRecvs()).putInt(p.maxRegions()));
        }

        Hello readHello() throws IOException {
            ByteBuffer b = read(HELLO_SIZE);
            int magic = b.getInt();
            if (magic != HELLO_MAGIC) {
                throw new IOException("shm handshake: bad magic 0x" + Integer.toHexString(magic)
                        + " (the peer does not speak the shm fabric)");
            }
            int version = b.getInt();
            if (version != VERSION) {
                throw new IOException("shm handshake: unsupported version " + version + " (we speak " + VERSION + ")");
            }
            int pid = b.getInt();
            if (pid <= 0) {
                throw new IOException("shm handshake: bad peer pid " + pid);
            }
            ShmSegment.Params p = new ShmSegment.Params(b.getInt(), b.getInt(), b.getInt());
            p.check("peer");
            return new Hello(pid, p);
        }

        void writeSegment(int fd, long size) throws IOException {
            write(ByteBuffer.allocate(SEGMENT_SIZE).putInt(SEGMENT_MAGIC).putInt(fd).putLong(size));
        }

        void readAck() throws IOException {
            int status = read(4).getInt();
            if (status == ACK_OK) {
                return;
            }
            if (status != ACK_FAILED) {
                throw new IOException("shm handshake: bad acknowledgement " + status);
            }
            int len = read(2).getShort() & 0xffff;
            String reason = new String(read(len).array(), StandardCharsets.UTF_8);
            throw new IOException("shm handshake rejected by the server: " + reason);
        }

        /** Best effort: the client gets a reason instead of a bare EOF. */
        void tryNak(String reason) {
            try {
                byte[] r = String.valueOf(reason).getBytes(StandardCharsets.UTF_8);
                int len = Math.min(r.length, 1024);
                write(ByteBuffer.allocate(6 + len).putInt(ACK_FAILED).putShort((short) len).put(r, 0, len));
            } catch (IOException | RuntimeException ignored) {
                // the failure we are reporting is the interesting one
            }
        }
    }
}
