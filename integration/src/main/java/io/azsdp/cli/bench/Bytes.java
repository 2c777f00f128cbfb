package io.azsdp.cli.bench;

/** Sizes as people read them: 64, 4K, 1M (binary units). */
final class Bytes {
    private Bytes() {
    }

    static String human(long n) {
        if (n >= 1 << 30 && n % (1 << 30) == 0) {
            return (n >> 30) + "G";
        }
        if (n >= 1 << 20 && n % (1 << 20) == 0) {
            return (n >> 20) + "M";
        }
        if (n >= 1 << 10 && n % (1 << 10) == 0) {
            return (n >> 10) + "K";
        }
        return Long.toString(n);
    }
}
