package io.azsdp.fabric.shm;

import io.azsdp.fabric.CompletionHandler;

/**
 * Completions produced by posting threads (SEND, READ, WRITE complete inline), delivered in the order the work was
 * performed without holding any endpoint lock during the callback: work is done and its completion queued under the
 * endpoint's lock, then the poster drains outside it. Only one thread drains at a time; a post made from inside a
 * callback (or by another thread meanwhile) just queues, and the active drainer delivers it next. Fixed arrays, grown
 * only if callbacks ever nest deeper than the initial capacity.
 */
final class InlineCompletions {
    private int[] opcodes = new int[16];
    private long[] wrIds = new long[16];
    private int[] lengths = new int[16];
    private int[] statuses = new int[16];
    private int head;
    private int size;
    private boolean draining;

    synchronized void add(int opcode, long wrId, int byteLen, int status) {
        if (size == opcodes.length) {
            grow();
        }
        int i = (head + size) & (opcodes.length - 1);
        opcodes[i] = opcode;
        wrIds[i] = wrId;
        lengths[i] = byteLen;
        statuses[i] = status;
        size++;
    }

    private void grow() {
        int n = opcodes.length;
        int[] o = new int[n * 2];
        long[] w = new long[n * 2];
        int[] l = new int[n * 2];
        int[] s = new int[n * 2];
        for (int k = 0; k < size; k++) {
            int i = (head + k) & (n - 1);
            o[k] = opcodes[i];
            w[k] = wrIds[i];
            l[k] = lengths[i];
            s[k] = statuses[i];
        }
        opcodes = o;
        wrIds = w;
        lengths = l;
        statuses = s;
        head = 0;
    }

    /**
     * Delivers queued completions unless another drain is active. A handler exception does not stop delivery of the
     * others; the first one is rethrown to the poster at the end.
     */
    void drain(CompletionHandler handler) {
        synchronized (this) {
            if (draining) {
                return;
            }
            draining = true;
        }
        Throwable failure = null;
        for (;;) {
            int opcode;
            long wrId;
            int byteLen;
            int status;
            synchronized (this) {
                if (size == 0) {
                    draining = false;
                    break;
                }
                opcode = opcodes[head];
                wrId = wrIds[head];
                byteLen = lengths[head];
                status = statuses[head];
                head = (head + 1) & (opcodes.length - 1);
                size--;
            }
            try {
                if (handler != null) {
                    handler.onCompletion(opcode, wrId, byteLen, status);
                }
            } catch (Throwable t) {
                if (failure == null) {
                    failure = t;
                }
            }
        }
        if (failure instanceof RuntimeException re) {
            throw re;
        }
        if (failure instanceof Error err) {
            throw err;
        }
        if (failure != null) {
            throw new IllegalStateException("completion handler failed", failure);
        }
    }
}
