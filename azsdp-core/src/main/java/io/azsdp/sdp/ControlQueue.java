package io.azsdp.sdp;

import java.net.SocketException;

/**
 * Control messages waiting for a credit or a send buffer: message ids and their one argument, FIFO. Consecutive
 * RdmaRdCompl for the same advert (keyed by its SrcAvail mseq) are merged into one, so the queue holds at most one per
 * advert being read plus a few singletons (credit update, DisConn, SrcAvailCancel, SendSM), however many READs complete
 * while no credit is free. No allocation after construction.
 */
final class ControlQueue {
    /** Key of a message that is never merged. */
    static final long UNMERGEABLE = Long.MIN_VALUE;

    private final int[] mid;
    private final int[] arg;
    private final long[] key;
    private int head;
    private int count;

    ControlQueue(int capacity) {
        mid = new int[capacity];
        arg = new int[capacity];
        key = new long[capacity];
    }

    int size() {
        return count;
    }

    boolean isEmpty() {
        return count == 0;
    }

    /** Adds {@code n} to the last message when it has the same id and key (not UNMERGEABLE); true when it did. */
    boolean mergeIntoLast(int id, long k, int n) {
        if (count == 0 || k == UNMERGEABLE) {
            return false;
        }
        int tail = (head + count - 1) % mid.length;
        if (mid[tail] != id || key[tail] != k) {
            return false;
        }
        arg[tail] += n;
        return true;
    }

    void add(int id, int a, long k) throws SocketException {
        if (count == mid.length) {
            throw new SocketException("control queue overflow");
        }
        int i = (head + count) % mid.length;
        mid[i] = id;
        arg[i] = a;
        key[i] = k;
        count++;
    }

    int headMid() {
        return mid[head];
    }

    int headArg() {
        return arg[head];
    }

    void pop() {
        head = (head + 1) % mid.length;
        count--;
    }

    void clear() {
        count = 0;
    }
}
