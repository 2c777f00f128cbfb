package io.azsdp.socket;

import io.azsdp.config.AzSdpConfig;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import javax.net.SocketFactory;

/** Client sockets over AZ-SDP, for code that takes a {@link SocketFactory}. */
public class AzSdpSocketFactory extends SocketFactory {
    private final AzSdpConfig config;

    public AzSdpSocketFactory() {
        this(AzSdpConfig.global());
    }

    public AzSdpSocketFactory(AzSdpConfig config) {
        this.config = config;
    }

    @Override
    public Socket createSocket() {
        return new AzSdpSocket(config);
    }

    @Override
    public Socket createSocket(String host, int port) throws IOException {
        return createSocket(InetAddress.getByName(host), port);
    }

    @Override
    public Socket createSocket(InetAddress host, int port) throws IOException {
        return connected(new AzSdpSocket(config), null, host, port);
    }

    @Override
    public Socket createSocket(String host, int port, InetAddress localHost, int localPort) throws IOException {
        return createSocket(InetAddress.getByName(host), port, localHost, localPort);
    }

    @Override
    public Socket createSocket(InetAddress address, int port, InetAddress localAddress, int localPort)
            throws IOException {
        return connected(new AzSdpSocket(config), new InetSocketAddress(localAddress, localPort), address, port);
    }

    private static Socket connected(AzSdpSocket s, InetSocketAddress local, InetAddress host, int port)
            throws IOException {
        try {
            if (local != null) {
                s.bind(local);
            }
            s.connect(new InetSocketAddress(host, port));
            return s;
        } catch (IOException | RuntimeException e) {
            s.close();
            throw e;
        }
    }
}
