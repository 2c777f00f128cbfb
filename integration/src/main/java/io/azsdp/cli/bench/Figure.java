package io.azsdp.cli.bench;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
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

    /**
     * The median of several rounds of one measurement (each round the same figures, the first one deciding): that
     * round's figures, each note listing every round's first figure; the first failed round if any failed.
     */
    static List<Figure> median(List<List<Figure>> rounds) {
        for (List<Figure> r : rounds) {
            for (Figure f : r) {
                if (!f.ok()) {
                    return r;
                }
            }
        }
        List<List<Figure>> sorted = new ArrayList<>(rounds);
        sorted.sort(Comparator.comparingDouble(r -> r.get(0).value()));
        List<Figure> m = sorted.get((sorted.size() - 1) / 2);
        if (rounds.size() == 1) {
            return m;
        }
        StringBuilder all = new StringBuilder();
        for (List<Figure> r : rounds) {
            all.append(all.length() == 0 ? "" : " ").append(String.format(Locale.ROOT, "%.3f", r.get(0).value()));
        }
        String by = m.size() > 1 ? " (by " + m.get(0).test + ")" : "";
        List<Figure> out = new ArrayList<>();
        for (Figure f : m) {
            out.add(new Figure(f.test, f.fabric, f.mode, f.size, f.conns, f.value, f.unit, true,
                    f.note + "; median of " + rounds.size() + " rounds" + by + ": " + all));
        }
        return out;
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
