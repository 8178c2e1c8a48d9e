package io.vlmbatch.faults;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import tools.jackson.databind.SerializationFeature;
import tools.jackson.databind.json.JsonMapper;

/**
 * The figures of one fault-injection experiment: written as JSON (under -Dfaults.results, default
 * the build folder's faults-results/; the runner script points it at bench/results/) and printed as a table.
 */
final class FaultReport {
    private static final JsonMapper JSON = JsonMapper.builder().enable(SerializationFeature.INDENT_OUTPUT).build();
    private final String name;
    private final Map<String, Object> fields = new LinkedHashMap<>();

    FaultReport(String name, String what) {
        this.name = name;
        fields.put("what", what);
        fields.put("machine", machine());
    }

    FaultReport put(String key, Object value) {
        fields.put(key, value);
        return this;
    }

    /** Writes faults_NAME.json and prints the rows as a table under the header. */
    Path write(List<String> header, List<List<Object>> rows) throws IOException {
        fields.put("table_columns", header);
        fields.put("table", rows);
        Path dir = Path.of(System.getProperty("faults.results",
                io.vlmbatch.testsupport.RepoPaths.buildDir().resolve("faults-results").toString()));
        Files.createDirectories(dir);
        Path file = dir.resolve("faults_" + name + ".json");
        Files.writeString(file, JSON.writeValueAsString(fields) + "\n");
        StringBuilder b = new StringBuilder("\n" + name + ": " + fields.get("what") + "\n");
        int[] widths = new int[header.size()];
        for (int i = 0; i < widths.length; i++) {
            widths[i] = header.get(i).length();
            for (List<Object> r : rows) widths[i] = Math.max(widths[i], String.valueOf(r.get(i)).length());
        }
        appendRow(b, header.stream().map(Object.class::cast).toList(), widths);
        for (List<Object> r : rows) appendRow(b, r, widths);
        fields.forEach((k, v) -> {
            if (!k.startsWith("table") && !k.equals("what")) b.append(k).append(": ").append(v).append('\n');
        });
        b.append("written to ").append(file).append('\n');
        System.out.print(b);
        return file;
    }

    private static void appendRow(StringBuilder b, List<Object> row, int[] widths) {
        for (int i = 0; i < widths.length; i++) {
            b.append(String.format("%" + widths[i] + "s", row.get(i))).append(i + 1 < widths.length ? " | " : "\n");
        }
    }

    static String machine() {
        double load = java.lang.management.ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage();
        return Runtime.getRuntime().availableProcessors() + "-core machine" + (System.getenv("CI") != null ? " (CI)" : "")
                + ", shared with other engineers' builds and tests; load average " + String.format("%.1f", load) + " at the end";
    }

    /** An integer setting of the experiment: -Dfaults.NAME, else the short CI value. */
    static int setting(String name, int ciValue) {
        return Integer.getInteger("faults." + name, ciValue);
    }
}
