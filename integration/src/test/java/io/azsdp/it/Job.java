package io.azsdp.it;

import java.io.DataInputStream;
import java.io.IOException;
import java.net.Socket;
import java.nio.ByteBuffer;

/**
 * What a client asks the serving peer to do on one connection: the first {@value #SIZE} bytes the client writes (they
 * count in the transfer counters like any other bytes).
 *
 * @param op           {@link #STREAM}, {@link #SOURCE} or {@link #SINK_STALL}
 * @param id           the client's name for the connection, echoed in the peer's RESULT line
 * @param seed         the client's stream is {@code seed}, the peer's is {@code seed + 1}
 * @param peerReceives bytes the peer reads
 * @param peerSends    bytes the peer writes
 * @param maxMessage   largest write (segment) in either direction; reads are bounded by it too
 */
record Job(int op, int id, long seed, long peerReceives, long peerSends, int maxMessage) {
    static final int MAGIC = 0x415A4954; // 'AZIT'
    static final int SIZE = 40;

    /** Both directions at once; the peer then prints its RESULT and closes (orderly). */
    static final int STREAM = 1;
    /** The peer writes its stream until the connection breaks and reads nothing after the job. */
    static final int SOURCE = 2;
    /** The peer reads {@code peerReceives} bytes, prints STALLED, and then never reads again. */
    static final int SINK_STALL = 3;

    /**
     * Both directions at once like {@link #STREAM}, but the peer reads only with 8 KiB direct-buffer channel reads
     * (each one a zero-copy READ of an advert, acknowledged by its own RdmaRdCompl). RESULT, then an orderly close.
     */
    static final int STREAM_SMALL_DIRECT_READS = 4;
    static final int SMALL_DIRECT_READ = 8192;

    void writeTo(Socket s) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(SIZE).putInt(MAGIC).putInt(op).putInt(id).putInt(maxMessage).putLong(seed)
                .putLong(peerReceives).putLong(peerSends);
        s.getOutputStream().write(b.array());
    }

    static Job readFrom(Socket s) throws IOException {
        byte[] a = new byte[SIZE];
        new DataInputStream(s.getInputStream()).readFully(a);
        ByteBuffer b = ByteBuffer.wrap(a);
        if (b.getInt() != MAGIC) {
            throw new IOException("bad job header " + java.util.HexFormat.of().formatHex(a));
        }
        int op = b.getInt();
        int id = b.getInt();
        int maxMessage = b.getInt();
        return new Job(op, id, b.getLong(), b.getLong(), b.getLong(), maxMessage);
    }

    long clientSeed() {
        return seed;
    }

    long peerSeed() {
        return seed + 1;
    }
}
