package io.azsdp.sdp;

import java.net.SocketException;

/**
 * Control messages waiting for a credit or a send buffer: message ids and their one argument, FIFO. Consecutive
 * RdmaRdCompl, whose byte counts add up, are merged while the sum fits in 32 bits, so the queue holds few of them and
 * a few singletons (credit update, DisConn, SrcAvailCancel, SendSM), however many READs complete while no credit is
 * free. No allocation after construction.
 */
final class ControlQueue {
    private final int[] mid;
    private final int[] arg;
    private int head;
    private int count;

    ControlQueue(int capacity) {
        mid = new int[capacity];
        arg = new int[capacity];
    }

    int size() {
        return count;
    }

    boolean isEmpty() {
        return count == 0;
    }

    /** Adds {@code n} bytes to the last message when it is an RdmaRdCompl and the sum fits; true if so. */
    boolean mergeAck(int n) {
        if (count == 0) {
            return false;
        }
        int tail = (head + count - 1) % mid.length;
        if (mid[tail] != Bsdh.MID_RDMA_RD_COMPL || arg[tail] > Integer.MAX_VALUE - n) {
            return false;
        }
        arg[tail] += n;
        return true;
    }

    void add(int id, int a) throws SocketException {
        if (count == mid.length) {
            throw new SocketException("control queue overflow");
        }
        int i = (head + count) % mid.length;
        mid[i] = id;
        arg[i] = a;
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
