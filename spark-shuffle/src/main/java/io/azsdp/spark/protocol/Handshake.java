package io.azsdp.spark.protocol;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * Challenge-response authentication of a client: the proof is HMAC-SHA256(secret, nonce ‖ appId), so the secret
 * never crosses the wire and a recorded proof is worthless for another connection (fresh nonce each time).
 */
public final class Handshake {
    private static final SecureRandom RANDOM = new SecureRandom();

    private Handshake() {
    }

    /**
     * Server side: greets, checks the client's application id and, when {@code secret} is not null, its proof.
     * Answers the verdict; returns null when the client is accepted, else the reason it was refused.
     */
    public static String serve(ByteChannel ch, String appId, String secret) throws IOException {
        byte[] nonce = new byte[Wire.NONCE_BYTES];
        RANDOM.nextBytes(nonce);
        ByteBuffer greet = ByteBuffer.allocate(6 + nonce.length);
        greet.putInt(Wire.MAGIC).put(Wire.VERSION).put((byte) (secret != null ? 1 : 0)).put(nonce).flip();
        Wire.writeFully(ch, greet);

        ByteBuffer head = Wire.read(ch, 5);
        if (head.getInt() != Wire.MAGIC || head.get() != Wire.VERSION) {
            throw new ProtocolException("not an AZ-SDP shuffle client (bad magic or version)");
        }
        String clientApp = Wire.readString(ch);
        int n = Short.toUnsignedInt(Wire.read(ch, 2).getShort());
        if (n > Wire.MAX_STRING_BYTES) {
            throw new ProtocolException("proof of " + n + " bytes");
        }
        byte[] proof = new byte[n];
        Wire.read(ch, n).get(proof);

        String refusal = null;
        if (!clientApp.equals(appId)) {
            refusal = "client belongs to application " + clientApp + ", this server to " + appId;
        } else if (secret != null && !MessageDigest.isEqual(proof, proof(secret, nonce, appId))) {
            refusal = "authentication failed: the client did not prove the application's secret";
        }
        ByteBuffer verdict = ByteBuffer.allocate(1 + Wire.stringBytes(refusal == null ? "" : refusal));
        verdict.put(refusal == null ? Wire.OK : Wire.REFUSED);
        Wire.putString(verdict, refusal == null ? "" : refusal);
        Wire.writeFully(ch, verdict.flip());
        return refusal;
    }

    /** Client side: answers the greeting with the proof; throws {@link RefusedException} when refused. */
    public static void connect(ByteChannel ch, String appId, String secret) throws IOException {
        ByteBuffer greet = Wire.read(ch, 6 + Wire.NONCE_BYTES);
        if (greet.getInt() != Wire.MAGIC || greet.get() != Wire.VERSION) {
            throw new ProtocolException("not an AZ-SDP shuffle block server (bad magic or version)");
        }
        boolean authRequired = greet.get() != 0;
        byte[] nonce = new byte[Wire.NONCE_BYTES];
        greet.get(nonce);
        if (authRequired && secret == null) {
            throw new RefusedException("the block server requires spark.authenticate but this client has no secret");
        }
        byte[] proof = secret == null ? new byte[0] : proof(secret, nonce, appId);
        ByteBuffer hello = ByteBuffer.allocate(5 + Wire.stringBytes(appId) + 2 + proof.length);
        hello.putInt(Wire.MAGIC).put(Wire.VERSION);
        Wire.putString(hello, appId);
        hello.putShort((short) proof.length).put(proof).flip();
        Wire.writeFully(ch, hello);

        byte verdict = Wire.read(ch, 1).get();
        String message = Wire.readString(ch);
        if (verdict != Wire.OK) {
            throw new RefusedException("block server refused the connection: " + message);
        }
    }

    static byte[] proof(String secret, byte[] nonce, String appId) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(secret.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
            mac.update(nonce);
            return mac.doFinal(appId.getBytes(StandardCharsets.UTF_8));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 unavailable", e);
        }
    }
}
