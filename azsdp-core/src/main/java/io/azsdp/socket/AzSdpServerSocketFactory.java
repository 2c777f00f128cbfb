package io.azsdp.socket;

import io.azsdp.config.AzSdpConfig;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import javax.net.ServerSocketFactory;

/** Server sockets over AZ-SDP, for code that takes a {@link ServerSocketFactory}. */
public class AzSdpServerSocketFactory extends ServerSocketFactory {
    private final AzSdpConfig config;

    public AzSdpServerSocketFactory() {
        this(AzSdpConfig.global());
    }

    public AzSdpServerSocketFactory(AzSdpConfig config) {
        this.config = config;
    }

    @Override
    public ServerSocket createServerSocket() throws IOException {
        return new AzSdpServerSocket(config);
    }

    @Override
    public ServerSocket createServerSocket(int port) throws IOException {
        return createServerSocket(port, 50, null);
    }

    @Override
    public ServerSocket createServerSocket(int port, int backlog) throws IOException {
        return createServerSocket(port, backlog, null);
    }

    @Override
    public ServerSocket createServerSocket(int port, int backlog, InetAddress ifAddress) throws IOException {
        AzSdpServerSocket s = new AzSdpServerSocket(config);
        try {
            s.bind(new InetSocketAddress(ifAddress, port), backlog);
            return s;
        } catch (IOException | RuntimeException e) {
            s.close();
            throw e;
        }
    }
}
