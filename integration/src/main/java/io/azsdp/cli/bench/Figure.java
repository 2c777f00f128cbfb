package io.azsdp.cli.bench;

import java.util.Locale;

/**
 * One measured figure, or one that failed (timed out, broke, or did not verify): {@code value} is NaN then and
 * {@code note} says why. {@code conns} is the number of concurrent connections.
 */
public record Figure(String test, String fabric, String mode, int size, int conns, double value, String unit,
                     boolean ok, String note) {

    static Figure ok(Key k, String test, double value, String unit, String note) {
        return new Figure(test, k.t().fabric(), k.t().mode(), k.size(), k.conns(), value, unit, true, note);
    }

    static Figure failed(Key k, String why) {
        return new Figure(k.test(), k.t().fabric(), k.t().mode(), k.size(), k.conns(), Double.NaN, "", false, why);
    }

    String series() {
        return fabric + "/" + mode;
    }

    /** The machine-readable line (verified figures only), or a FAILED line naming the reason. */
    String line() {
        String id = String.format(Locale.ROOT, "test=%s fabric=%s mode=%s size=%d conns=%d", test, fabric, mode, size,
                conns);
        return ok ? String.format(Locale.ROOT, "RESULT %s value=%.4f unit=%s", id, value, unit)
                : "FAILED " + id + " reason=" + note;
    }

    /** What a figure is about before it is measured. */
    record Key(String test, Transport t, int size, int conns) {
        @Override
        public String toString() {
            return test + " " + t.label() + " size=" + size + " conns=" + conns;
        }
    }
}
