package io.vlmbatch.schedule;

import io.vlmbatch.job.JobFileException;
import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.DateTimeException;
import java.time.Duration;
import java.time.LocalDate;
import java.time.ZoneId;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.nodes.MappingNode;
import org.yaml.snakeyaml.nodes.Node;
import org.yaml.snakeyaml.nodes.NodeTuple;
import org.yaml.snakeyaml.nodes.ScalarNode;

/**
 * Reads a job file's {@code schedule} (the cron) and {@code scheduling} section:
 * <pre>
 * schedule: "0 2 * * *"
 * scheduling: { start_date: 2026-01-01, catchup: true, max_active_runs: 1, retries: 2, retry_delay: 5m, timezone: UTC }
 * </pre>
 * The rest of the file is the pipeline's JobFileLoader's business; it must have accepted the file first.
 * Errors name the file, line and field, like the loader's.
 */
public final class ScheduleReader {
    private static final Set<String> KEYS = Set.of("start_date", "catchup", "max_active_runs", "retries", "retry_delay", "timezone");
    private static final Pattern DURATION = Pattern.compile("(\\d+)\\s*(ms|s|m|h|d)?");

    private final Path file;

    private ScheduleReader(Path file) {
        this.file = file;
    }

    public static ScheduleSpec read(Path file) {
        return new ScheduleReader(file).read();
    }

    private ScheduleSpec read() {
        Node root;
        try (Reader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            root = new Yaml(new LoaderOptions()).compose(r);
        } catch (IOException e) {
            throw new JobFileException(file, 0, "", "cannot read: " + e.getMessage());
        }
        Map<String, Node> top = root instanceof MappingNode m ? entries(m) : Map.of();
        Node cronNode = top.get("schedule");
        Node settingsNode = top.get("scheduling");
        if (cronNode == null) {
            if (settingsNode != null) throw error(settingsNode, "scheduling", "needs a schedule: (a cron expression) beside it");
            return ScheduleSpec.MANUAL;
        }
        Map<String, Node> s = Map.of();
        if (settingsNode != null) {
            if (!(settingsNode instanceof MappingNode m)) throw error(settingsNode, "scheduling", "must be a mapping (key: value)");
            s = entries(m);
            for (Map.Entry<String, Node> e : s.entrySet()) {
                if (!KEYS.contains(e.getKey())) {
                    throw error(e.getValue(), "scheduling." + e.getKey(), "unknown field (allowed here: "
                            + String.join(", ", KEYS.stream().sorted().toList()) + ")");
                }
            }
        }
        ZoneId zone = ZoneId.of("UTC");
        if (s.containsKey("timezone")) {
            try {
                zone = ZoneId.of(scalar(s.get("timezone"), "scheduling.timezone"));
            } catch (DateTimeException e) {
                throw error(s.get("timezone"), "scheduling.timezone", "not a time zone (e.g. UTC, Europe/Berlin): " + e.getMessage());
            }
        }
        Intervals intervals;
        try {
            intervals = Intervals.parse(scalar(cronNode, "schedule"), zone);
        } catch (IllegalArgumentException e) {
            throw error(cronNode, "schedule", e.getMessage());
        }
        LocalDate start = null;
        if (s.containsKey("start_date")) {
            try {
                start = LocalDate.parse(scalar(s.get("start_date"), "scheduling.start_date"));
            } catch (DateTimeException e) {
                throw error(s.get("start_date"), "scheduling.start_date", "must be YYYY-MM-DD");
            }
        }
        boolean catchup = bool(s, "catchup", false);
        int maxActive = integer(s, "max_active_runs", 1, 1, 64);
        int retries = integer(s, "retries", 0, 0, 100);
        Duration delay = s.containsKey("retry_delay") ? duration(s.get("retry_delay"), "scheduling.retry_delay") : Duration.ofMinutes(5);
        return new ScheduleSpec(intervals, start, catchup, maxActive, retries, delay);
    }

    private Map<String, Node> entries(MappingNode m) {
        Map<String, Node> out = new LinkedHashMap<>();
        for (NodeTuple t : m.getValue()) {
            if (t.getKeyNode() instanceof ScalarNode k) out.put(k.getValue(), t.getValueNode());
        }
        return out;
    }

    private String scalar(Node n, String field) {
        if (!(n instanceof ScalarNode s) || s.getValue().isBlank()) throw error(n, field, "must be a single non-empty value");
        return s.getValue().strip();
    }

    private boolean bool(Map<String, Node> s, String key, boolean dflt) {
        if (!s.containsKey(key)) return dflt;
        String v = scalar(s.get(key), "scheduling." + key);
        if (v.equalsIgnoreCase("true")) return true;
        if (v.equalsIgnoreCase("false")) return false;
        throw error(s.get(key), "scheduling." + key, "must be true or false, got \"" + v + "\"");
    }

    private int integer(Map<String, Node> s, String key, int dflt, int min, int max) {
        if (!s.containsKey(key)) return dflt;
        String v = scalar(s.get(key), "scheduling." + key);
        try {
            int i = Integer.parseInt(v);
            if (i < min || i > max) throw error(s.get(key), "scheduling." + key, "must be between " + min + " and " + max + ", got " + i);
            return i;
        } catch (NumberFormatException e) {
            throw error(s.get(key), "scheduling." + key, "must be a whole number, got \"" + v + "\"");
        }
    }

    /** "90" (seconds), "500ms", "30s", "5m", "2h", "1d". */
    private Duration duration(Node n, String field) {
        String v = scalar(n, field);
        Matcher m = DURATION.matcher(v);
        if (!m.matches()) throw error(n, field, "must be a duration like 30s, 5m, 2h (got \"" + v + "\")");
        long amount = Long.parseLong(m.group(1));
        String unit = m.group(2) == null ? "s" : m.group(2);
        return switch (unit) {
            case "ms" -> Duration.ofMillis(amount);
            case "m" -> Duration.ofMinutes(amount);
            case "h" -> Duration.ofHours(amount);
            case "d" -> Duration.ofDays(amount);
            default -> Duration.ofSeconds(amount);
        };
    }

    private JobFileException error(Node n, String field, String problem) {
        return new JobFileException(file, n == null ? 0 : n.getStartMark().getLine() + 1, field, problem);
    }
}
