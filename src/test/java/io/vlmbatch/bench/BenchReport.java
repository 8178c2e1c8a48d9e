package io.vlmbatch.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What every Java bench reports: a fixed-width table on stdout and a JSON file under bench/results/
 * (a header of what was measured where, then one object per row on its own line, so that a reader can
 * also pick rows out with a line-wise pattern, as ArchivePagesBench does with pipeline_overhead.json).
 */
final class BenchReport {
    private BenchReport() {}

    /** One table column: its header, width, and printf conversion of its values ("s", "d", ".2f"...). */
    record Column(String header, int width, String conversion) {}

    /** A number written with a fixed count of decimals, as the earlier results files hold it. */
    record Fixed(double value, int decimals) {}

    static Fixed fixed(double value, int decimals) {
        return new Fixed(value, decimals);
    }

    /** The first column left-aligned, the others right-aligned, one space apart. */
    static void printTable(List<Column> columns, List<Object[]> rows) {
        StringBuilder head = new StringBuilder(), row = new StringBuilder();
        for (int i = 0; i < columns.size(); i++) {
            Column c = columns.get(i);
            String align = i == 0 ? "-" : "";
            String sep = i == 0 ? "" : " ";
            head.append(sep).append('%').append(align).append(c.width()).append('s');
            row.append(sep).append('%').append(align).append(c.width()).append(c.conversion());
        }
        System.out.printf(Locale.ROOT, head + "%n", columns.stream().map(Column::header).toArray());
        for (Object[] values : rows) System.out.printf(Locale.ROOT, row + "%n", values);
    }

    /** The header fields every results file starts with; callers add their own after these. */
    static Map<String, Object> header(String benchmark, String description) {
        Map<String, Object> header = new LinkedHashMap<>();
        header.put("benchmark", benchmark);
        header.put("description", description);
        header.put("cores", Runtime.getRuntime().availableProcessors());
        header.put("cpu", cpuModel());
        header.put("java", Runtime.version().toString());
        return header;
    }

    /** One results row from key, value, key, value...; the values as write takes them. */
    static Map<String, Object> row(Object... keysAndValues) {
        if (keysAndValues.length % 2 != 0) throw new IllegalArgumentException("a key without a value");
        Map<String, Object> row = new LinkedHashMap<>();
        for (int i = 0; i < keysAndValues.length; i += 2) row.put((String) keysAndValues[i], keysAndValues[i + 1]);
        return row;
    }

    /** Writes {header..., "results": [rows]} to file and says so on stdout. */
    static void write(Path file, Map<String, Object> header, List<Map<String, Object>> rows) throws IOException {
        Files.createDirectories(file.getParent());
        StringBuilder b = new StringBuilder("{\n");
        header.forEach((k, v) -> b.append("  ").append(quote(k)).append(": ").append(value(v)).append(",\n"));
        b.append("  \"results\": [\n");
        for (int i = 0; i < rows.size(); i++) {
            b.append("    {");
            String sep = "";
            for (Map.Entry<String, Object> e : rows.get(i).entrySet()) {
                b.append(sep).append(quote(e.getKey())).append(": ").append(value(e.getValue()));
                sep = ", ";
            }
            b.append('}').append(i + 1 < rows.size() ? "," : "").append('\n');
        }
        b.append("  ]\n}\n");
        Files.writeString(file, b.toString());
        System.out.println("wrote " + file);
    }

    static String cpuModel() {
        try {
            return Files.readAllLines(Path.of("/proc/cpuinfo")).stream().filter(l -> l.startsWith("model name"))
                    .findFirst().map(l -> l.substring(l.indexOf(':') + 1).trim()).orElse("unknown CPU");
        } catch (IOException e) {
            return "unknown CPU";
        }
    }

    private static String value(Object v) {
        return switch (v) {
            case Fixed f -> String.format(Locale.ROOT, "%." + f.decimals() + "f", f.value());
            case Integer i -> i.toString();
            case Long l -> l.toString();
            case String s -> quote(s);
            default -> throw new IllegalArgumentException("not a results value: " + v.getClass().getName());
        };
    }

    private static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        return b.append('"').toString();
    }
}
