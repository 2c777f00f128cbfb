package io.azsdp.cli.bench;

import java.util.List;

/** Markdown tables padded to align, so the same text reads well on a terminal and pastes into a document. */
final class Markdown {
    private Markdown() {
    }

    static String table(List<String> header, List<List<String>> rows) {
        int[] width = new int[header.size()];
        for (int c = 0; c < width.length; c++) {
            width[c] = Math.max(3, header.get(c).length());
            for (List<String> r : rows) {
                width[c] = Math.max(width[c], r.get(c).length());
            }
        }
        StringBuilder b = new StringBuilder();
        row(b, header, width);
        b.append('|');
        for (int w : width) {
            b.append('-').append("-".repeat(w)).append("-|");
        }
        b.append('\n');
        rows.forEach(r -> row(b, r, width));
        return b.toString();
    }

    private static void row(StringBuilder b, List<String> cells, int[] width) {
        b.append('|');
        for (int c = 0; c < width.length; c++) {
            String s = cells.get(c);
            // first column (labels) left-aligned, figures right-aligned
            b.append(' ').append(c == 0 ? s + " ".repeat(width[c] - s.length()) : " ".repeat(width[c] - s.length()) + s)
                    .append(" |");
        }
        b.append('\n');
    }
}
