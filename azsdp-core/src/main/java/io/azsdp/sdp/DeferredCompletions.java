package io.azsdp.sdp;

import java.io.IOException;
import java.util.Arrays;

/**
 * Completions a provider delivered inline while the connection's lock was held by the posting thread. They are replayed
 * in arrival order before that thread releases the lock or waits, so a handler never runs in the middle of another
 * state change. Grows only if a burst exceeds its capacity; no allocation otherwise.
 */
final class DeferredCompletions {
    /** Where replayed completions go. */
    interface Sink {
        void completion(int opcode, long wrId, int byteLen, int status);

        void disconnect(IOException cause);
    }

    private int[] op = new int[32];
    private long[] wr = new long[32];
    private int[] len = new int[32];
    private int[] status = new int[32];
    private int count;
    private boolean disconnect;
    private IOException cause;

    void add(int opcode, long wrId, int byteLen, int st) {
        if (count == op.length) {
            int n = op.length * 2;
            op = Arrays.copyOf(op, n);
            wr = Arrays.copyOf(wr, n);
            len = Arrays.copyOf(len, n);
            status = Arrays.copyOf(status, n);
        }
        op[count] = opcode;
        wr[count] = wrId;
        len[count] = byteLen;
        status[count] = st;
        count++;
    }

    void addDisconnect(IOException c) {
        disconnect = true;
        cause = c;
    }

    /**
     * Replays everything, including completions deferred while replaying, the disconnect last. Returns true when there
     * was anything to replay.
     */
    boolean drainTo(Sink sink) {
        if (count == 0 && !disconnect) {
            return false;
        }
        for (int i = 0; i < count; i++) {
            sink.completion(op[i], wr[i], len[i], status[i]);
        }
        count = 0;
        if (disconnect) {
            disconnect = false;
            sink.disconnect(cause);
        }
        return true;
    }
}
