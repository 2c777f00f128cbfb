package io.azsdp.cli.bench;

/**
 * Where a benchmark server listens: the AZ-SDP port and the two baseline ports. A server started with
 * {@code bench --server host:port} uses port, port+1 (plain Java TCP) and port+2 (NIO).
 */
public record Endpoints(String host, int azsdp, int javatcp, int nio) {
    /** {@code host:port} with the baselines on the next two ports. */
    static Endpoints parse(String hostPort) {
        int colon = hostPort.lastIndexOf(':');
        if (colon <= 0) {
            throw new IllegalArgumentException("expected host:port, got '" + hostPort + "'");
        }
        int port = Integer.parseInt(hostPort.substring(colon + 1));
        int next = port == 0 ? 0 : 1;
        return new Endpoints(hostPort.substring(0, colon), port, port + next, port + 2 * next);
    }
}
