package io.azsdp.spark.server;

import io.azsdp.socket.AzSdpChannel;
import io.azsdp.socket.AzSdpSocket;
import io.azsdp.spark.metrics.TransportCounters;
import io.azsdp.spark.protocol.Handshake;
import io.azsdp.spark.protocol.ProtocolException;
import io.azsdp.spark.protocol.Wire;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Serves one client connection: handshake, then requests until the client closes. Small segments are copied into
 * one batch buffer with their headers (few messages for many tiny blocks); large ones are mapped read-only and the
 * mapping itself is written, so the peer pulls the file's pages with a one-sided READ.
 */
final class ServerConnection implements Runnable {
    private static final Logger LOG = LoggerFactory.getLogger(ServerConnection.class);
    private static final int BATCH_BYTES = 64 * 1024;
    /** Largest single mapping (a segment beyond it is written as several). */
    private static final long MAX_MAPPING = 1L << 30;

    private final AzSdpSocket socket;
    private final ServerSettings settings;
    private final Consumer<ServerConnection> onClose;
    private final ByteBuffer batch = ByteBuffer.allocate(BATCH_BYTES);
    private final ByteBuffer frameLength = ByteBuffer.allocate(4);
    private AzSdpChannel ch;

    ServerConnection(AzSdpSocket socket, ServerSettings settings, Consumer<ServerConnection> onClose) {
        this.socket = socket;
        this.settings = settings;
        this.onClose = onClose;
    }

    @Override
    public void run() {
        try {
            ch = socket.byteChannel();
            socket.setSoTimeout(settings.handshakeTimeoutMs());
            String refusal = Handshake.serve(ch, settings.appId(), settings.secret());
            if (refusal != null) {
                TransportCounters.refused();
                LOG.warn("AZ-SDP shuffle: refused {}: {}", socket.getRemoteSocketAddress(), refusal);
                return;
            }
            socket.setSoTimeout(0);
            while (serveRequest()) {
                // each call answers one whole request
            }
        } catch (ProtocolException e) {
            LOG.warn("AZ-SDP shuffle: malformed input from {}: {}", socket.getRemoteSocketAddress(), e.getMessage());
            answerError(e.getMessage());
        } catch (IOException e) {
            LOG.debug("AZ-SDP shuffle connection from {} ended", socket.getRemoteSocketAddress(), e);
        } catch (RuntimeException e) {
            LOG.warn("AZ-SDP shuffle connection from {} failed", socket.getRemoteSocketAddress(), e);
        } finally {
            close();
        }
    }

    /** Reads one request and answers every block in it; false at the client's orderly end of stream. */
    private boolean serveRequest() throws IOException {
        ByteBuffer len = frameLength.clear();
        if (ch.read(len) < 0) {
            return false;
        }
        Wire.readFully(ch, len);
        int frame = len.flip().getInt();
        if (frame < 4 || frame > Wire.MAX_REQUEST_BYTES) {
            throw new ProtocolException("request frame of " + frame + " bytes (bound " + Wire.MAX_REQUEST_BYTES + ")");
        }
        ByteBuffer req = Wire.read(ch, frame);
        int count = req.getInt();
        if (count < 0 || count > Wire.MAX_BLOCKS_PER_REQUEST) {
            throw new ProtocolException("request for " + count + " blocks");
        }
        String[] ids = new String[count];
        for (int i = 0; i < count; i++) {
            ids[i] = Wire.getString(req);
        }
        if (req.hasRemaining()) {
            throw new ProtocolException(req.remaining() + " stray bytes after the block ids");
        }
        for (String id : ids) {
            serveBlock(id);
        }
        flush();
        return true;
    }

    private void serveBlock(String id) throws IOException {
        FileSegment seg;
        FileChannel file;
        try {
            seg = settings.source().resolve(id);
            file = FileChannel.open(seg.file().toPath(), StandardOpenOption.READ);
        } catch (Exception e) {
            error(e.getMessage() == null ? e.toString() : e.getMessage());
            return;
        }
        try (file) {
            if (seg.length() < settings.mapThreshold() && 9 + seg.length() <= batch.capacity()) {
                copyIntoBatch(file, seg);
            } else {
                writeMapped(file, seg);
            }
        }
    }

    /** The header and bytes of a small block, appended to the batch; on a read error only the error is sent. */
    private void copyIntoBatch(FileChannel file, FileSegment seg) throws IOException {
        if (batch.remaining() < 9 + seg.length()) {
            flush();
        }
        int start = batch.position();
        batch.put(Wire.DATA).putLong(seg.length());
        ByteBuffer data = batch.slice(batch.position(), (int) seg.length());
        try {
            for (long pos = seg.offset(); data.hasRemaining(); ) {
                int n = file.read(data, pos);
                if (n < 0) {
                    throw new EOFException("shuffle file " + seg.file().getName() + " is shorter than its index says");
                }
                pos += n;
            }
        } catch (IOException e) {
            batch.position(start);
            error("cannot read " + seg.file().getName() + ": " + e.getMessage());
            return;
        }
        batch.position(batch.position() + (int) seg.length());
        TransportCounters.served(seg.length(), false);
    }

    /**
     * Maps the segment (a file error is answered as the block's error), then writes the mappings themselves. A
     * read-only buffer goes zero copy synchronously in every mode (it cannot be protected), so each write returns once
     * the peer has read the mapping, and the mapping may be dropped.
     */
    private void writeMapped(FileChannel file, FileSegment seg) throws IOException {
        List<MappedByteBuffer> maps = new ArrayList<>();
        try {
            for (long off = 0; off < seg.length(); off += MAX_MAPPING) {
                maps.add(file.map(FileChannel.MapMode.READ_ONLY, seg.offset() + off,
                        Math.min(MAX_MAPPING, seg.length() - off)));
            }
        } catch (IOException e) {
            error("cannot map " + seg.file().getName() + ": " + e.getMessage());
            return;
        }
        if (batch.remaining() < 9) {
            flush();
        }
        // Below the threshold (too large for the batch only) the socket layer copies the mapping.
        boolean zcopy = settings.zeroCopy() && seg.length() >= settings.mapThreshold();
        batch.put(zcopy ? Wire.ZCOPY_DATA : Wire.DATA).putLong(seg.length());
        flush();
        // Counted before the write: it returns only after the peer has read the block, and the peer may look at the
        // counters as soon as it has it (the protocol suite does).
        TransportCounters.served(seg.length(), true);
        for (MappedByteBuffer m : maps) {
            Wire.writeFully(ch, m);
        }
    }

    private void error(String message) throws IOException {
        String m = Wire.clip(message);
        if (batch.remaining() < 1 + Wire.stringBytes(m)) {
            flush();
        }
        batch.put(Wire.ERROR);
        Wire.putString(batch, m);
    }

    private void flush() throws IOException {
        if (batch.position() > 0) {
            batch.flip();
            Wire.writeFully(ch, batch);
            batch.clear();
        }
    }

    /** Best effort: tell the client why its connection is being closed. */
    private void answerError(String message) {
        try {
            batch.clear();
            error(message);
            flush();
        } catch (IOException | RuntimeException e) {
            LOG.debug("could not report the protocol error", e);
        }
    }

    void close() {
        onClose.accept(this);
        try {
            socket.close();
        } catch (IOException e) {
            LOG.debug("closing a shuffle connection", e);
        }
    }
}
