package io.azsdp.fabric;

/** Work completion opcodes (ibv_wc_opcode subset). */
public final class Opcode {
    public static final int SEND = 0;
    public static final int RECV = 1;
    public static final int READ = 2;
    public static final int WRITE = 3;

    private Opcode() {
    }

    public static String name(int opcode) {
        return switch (opcode) {
            case SEND -> "SEND";
            case RECV -> "RECV";
            case READ -> "READ";
            case WRITE -> "WRITE";
            default -> "OP" + opcode;
        };
    }
}
