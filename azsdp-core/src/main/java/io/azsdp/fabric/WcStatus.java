package io.azsdp.fabric;

/** Work completion status codes (ibv_wc_status subset). */
public final class WcStatus {
    public static final int SUCCESS = 0;
    /** Local length error: an incoming SEND larger than the posted receive. */
    public static final int LOC_LEN_ERR = 1;
    /** Local protection error: a local range outside its registered region. */
    public static final int LOC_PROT_ERR = 2;
    /** Work request flushed because the endpoint is closed or broken. */
    public static final int FLUSH_ERR = 5;
    /** Remote access error: bad key or range outside the remote region. */
    public static final int REM_ACCESS_ERR = 10;
    /** The remote side failed the operation for another reason. */
    public static final int REM_OP_ERR = 11;
    /** Transport error: the peer is gone or the link failed. */
    public static final int TRANSPORT_ERR = 12;

    private WcStatus() {
    }

    public static String name(int status) {
        return switch (status) {
            case SUCCESS -> "SUCCESS";
            case LOC_LEN_ERR -> "LOC_LEN_ERR";
            case LOC_PROT_ERR -> "LOC_PROT_ERR";
            case FLUSH_ERR -> "FLUSH_ERR";
            case REM_ACCESS_ERR -> "REM_ACCESS_ERR";
            case REM_OP_ERR -> "REM_OP_ERR";
            case TRANSPORT_ERR -> "TRANSPORT_ERR";
            default -> "STATUS" + status;
        };
    }
}
