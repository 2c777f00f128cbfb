package io.azsdp.sdp;

import java.net.SocketException;

/** The peer broke the SDP protocol (malformed frame, sequence or credit violation); the connection is aborted. */
public final class SdpProtocolException extends SocketException {
    public SdpProtocolException(String message) {
        super("SDP protocol violation: " + message);
    }
}
