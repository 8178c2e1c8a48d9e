package io.vlmbatch.job;

import io.vlmbatch.archive.Container;
import io.vlmbatch.archive.ExpandSpec;
import io.vlmbatch.image.ResizeSpec;
import io.vlmbatch.inference.InferenceSpec;
import io.vlmbatch.source.S3Settings;
import io.vlmbatch.source.SourceSpec;
import io.vlmbatch.template.TextTemplate;
import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.DateTimeException;
import java.time.Duration;
import java.time.LocalDate;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.error.Mark;
import org.yaml.snakeyaml.error.MarkedYAMLException;
import org.yaml.snakeyaml.error.YAMLException;
import org.yaml.snakeyaml.nodes.MappingNode;
import org.yaml.snakeyaml.nodes.Node;
import org.yaml.snakeyaml.nodes.NodeTuple;
import org.yaml.snakeyaml.nodes.ScalarNode;
import org.yaml.snakeyaml.nodes.SequenceNode;

/**
 * Reads and validates a whole job file, schedule included, with one set of value rules (booleans,
 * numbers, durations). Works on SnakeYAML's node tree rather than on plain maps so that every error
 * can name the line of the value at fault. Nothing is started before this succeeds.
 */
public final class JobFileLoader {
    private static final Pattern JOB_NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.-]{0,99}");
    private static final Pattern TASK_NAME = Pattern.compile("[a-z][a-z0-9_]{0,62}");
    /** An endpoint pool larger than this is a mistake in the file, not a deployment. */
    private static final int MAX_ENDPOINTS = 256;
    private static final Pattern KNOWN_PATH_VAR = Pattern.compile("ds|ds_nodash|prev_ds|job|params\\.[A-Za-z_][A-Za-z0-9_]*");
    /** What every item has for its prompts ({{member}}, {{page}}: its lineage, empty for a plain image); a manifest's columns come on top ({{labels}} is the task's). */
    private static final List<String> ITEM_VARS = List.of("file_name", "item_key", "uri", "member", "page");
    private static final Pattern DURATION = Pattern.compile("(\\d+)\\s*(ms|s|m|h|d)?");

    private final Path file;
    private final List<String> overrides;
    /** Nodes that came from --set rather than from the file: errors about them have no line. */
    private Set<Node> overridden = Set.of();

    private JobFileLoader(Path file, List<String> overrides) {
        this.file = file;
        this.overrides = overrides;
    }

    public static JobDefinition load(Path file) {
        return new JobFileLoader(file, List.of()).load();
    }

    /** The file with `--set key=value` overrides applied before validation (see JobOverrides). */
    public static JobDefinition load(Path file, List<String> overrides) {
        return new JobFileLoader(file, List.copyOf(overrides)).load();
    }

    private JobDefinition load() {
        Node root;
        try (Reader reader = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            // Duplicated keys are found by mapping() below: composing a node tree does not check them.
            root = new Yaml(new LoaderOptions()).compose(reader);
        } catch (NoSuchFileException e) {
            throw new JobFileException(file, 0, "", "no such file");
        } catch (MarkedYAMLException e) {
            Mark mark = e.getProblemMark() != null ? e.getProblemMark() : e.getContextMark();
            int line = mark == null ? 0 : mark.getLine() + 1;
            String what = e.getProblem() != null ? e.getProblem() : e.getMessage();
            throw new JobFileException(file, line, "", "malformed YAML: " + what.strip());
        } catch (YAMLException e) {
            throw new JobFileException(file, 0, "", "malformed YAML: " + e.getMessage());
        } catch (IOException e) {
            throw new JobFileException(file, 0, "", "cannot read: " + e.getMessage());
        }
        if (root == null) throw new JobFileException(file, 1, "", "the file is empty");
        overridden = JobOverrides.apply(file, root, overrides);
        Map<String, Node> top = mapping(root, "", Set.of("name", "schedule", "source", "resize", "tasks",
                "output", "inference", "run", "scheduling", "pdf"));

        String name = requiredString(top, "name", root, "");
        if (!JOB_NAME.matcher(name).matches()) {
            throw error(top.get("name"), "name", "must be letters, digits, '_', '.' or '-' (at most 100), got \"" + name + "\"");
        }
        ScheduleSpec schedule = schedule(top);
        SourceSpec source = source(required(top, "source", root, ""), pdfDpi(top.get("pdf")));
        ResizeSpec resize = resize(top.get("resize"));
        List<TaskSpec> tasks = tasks(required(top, "tasks", root, ""), source.manifest() != null);
        String csv = null;
        String jsonl = null;
        String documents = null;
        boolean csvRaw = false;
        if (top.containsKey("output")) {
            Map<String, Node> output = mapping(top.get("output"), "output", Set.of("csv", "csv_raw", "jsonl", "documents"));
            csv = pathTemplate(output, "csv", "output");
            csvRaw = optionalBoolean(output, "csv_raw", "output", false);
            jsonl = pathTemplate(output, "jsonl", "output");
            documents = pathTemplate(output, "documents", "output");
        }
        InferenceSpec inference = inference(top.get("inference"));
        RunSpec run = run(top.get("run"));
        return new JobDefinition(file, name, schedule, source, resize, tasks, csv, jsonl, documents, inference, run, csvRaw);
    }

    private SourceSpec source(Node node, int pdfDpi) {
        String f = "source";
        Map<String, Node> m = mapping(node, f, Set.of("folder", "manifest", "s3", "include", "exclude",
                "recursive", "endpoint", "region", "path_style", "expand", "max_pages"));
        String folder = pathTemplate(m, "folder", f);
        String manifest = pathTemplate(m, "manifest", f);
        String s3 = pathTemplate(m, "s3", f);
        int given = (folder != null ? 1 : 0) + (manifest != null ? 1 : 0) + (s3 != null ? 1 : 0);
        if (given != 1) {
            throw error(node, f, "needs exactly one of folder, manifest or s3 (found " + given + ")");
        }
        if (s3 != null && !s3.startsWith("s3://")) {
            throw error(m.get("s3"), f + ".s3", "must be an s3://bucket/prefix URI, got \"" + s3 + "\"");
        }
        List<String> include = stringOrList(m.get("include"), f + ".include");
        List<String> exclude = stringOrList(m.get("exclude"), f + ".exclude");
        boolean recursive = optionalBoolean(m, "recursive", f, true);
        S3Settings s3Settings = new S3Settings(optionalString(m, "endpoint", f, null),
                optionalString(m, "region", f, null), optionalBoolean(m, "path_style", f, false));
        ExpandSpec expand = ExpandSpec.defaults();
        if (m.containsKey("expand")) {
            try {
                expand = expand.withExpand(Container.parse(stringOrList(m.get("expand"), f + ".expand")));
            } catch (IllegalArgumentException e) {
                throw error(m.get("expand"), f + ".expand", e.getMessage());
            }
        }
        expand = expand.withMaxPages((int) optionalLong(m, "max_pages", f, ExpandSpec.DEFAULT_MAX_PAGES, 1, 1_000_000));
        return new SourceSpec(folder, manifest, s3, include, exclude, recursive, s3Settings, expand, pdfDpi);
    }

    /** {@code pdf: { dpi: N }}: render PDF pages at N dpi instead of to resize.max_side. */
    private int pdfDpi(Node node) {
        if (node == null) return 0;
        Map<String, Node> m = mapping(node, "pdf", Set.of("dpi"));
        return (int) optionalLong(m, "dpi", "pdf", 0, 1, 1200);
    }

    private ResizeSpec resize(Node node) {
        if (node == null) return new ResizeSpec(1120, 100_000_000L, "jpeg", 0.9f);
        String f = "resize";
        Map<String, Node> m = mapping(node, f, Set.of("max_side", "max_pixels", "format", "quality"));
        int maxSide = (int) optionalLong(m, "max_side", f, 1120, 28, 16384);
        long maxPixels = optionalLong(m, "max_pixels", f, 100_000_000L, 1, 10_000_000_000L);
        String format = optionalString(m, "format", f, "jpeg");
        if (!format.equals("jpeg") && !format.equals("png")) {
            throw error(m.get("format"), f + ".format", "must be jpeg or png, got \"" + format + "\"");
        }
        double quality = optionalDouble(m, "quality", f, 0.9, 0.05, 1.0);
        return new ResizeSpec(maxSide, maxPixels, format, (float) quality);
    }

    /** @param manifest the source is a manifest, whose columns are prompt variables too */
    private List<TaskSpec> tasks(Node node, boolean manifest) {
        if (!(node instanceof SequenceNode seq) || seq.getValue().isEmpty()) {
            throw error(node, "tasks", "must be a non-empty list of tasks");
        }
        List<TaskSpec> tasks = new ArrayList<>();
        Set<String> names = new HashSet<>();
        for (int i = 0; i < seq.getValue().size(); i++) {
            Node item = seq.getValue().get(i);
            String f = "tasks[" + i + "]";
            Map<String, Node> m = mapping(item, f, Set.of("name", "template", "prompt", "labels", "max_tokens",
                    "temperature", "top_p", "seed"));
            String name = requiredString(m, "name", item, f);
            if (!TASK_NAME.matcher(name).matches()) {
                throw error(m.get("name"), f + ".name", "must be lower-case letters, digits or '_', starting with a letter, got \"" + name + "\"");
            }
            if (!names.add(name)) throw error(m.get("name"), f + ".name", "duplicate task name \"" + name + "\"");
            String templateName = optionalString(m, "template", f, null);
            String inline = optionalString(m, "prompt", f, null);
            if ((templateName == null) == (inline == null)) {
                throw error(item, f, "needs exactly one of template (describe, ocr, classify or a .txt file) or prompt (inline text)");
            }
            TextTemplate template;
            if (inline != null) {
                template = new TextTemplate(name + " (inline)", inline.strip());
            } else if (TextTemplate.BUILT_IN.contains(templateName)) {
                template = TextTemplate.builtIn(templateName);
            } else {
                Path path = file.toAbsolutePath().getParent().resolve(templateName).normalize();
                if (!Files.isRegularFile(path)) {
                    throw error(m.get("template"), f + ".template", "neither a built-in template " + TextTemplate.BUILT_IN
                            + " nor a readable file (" + path + ")");
                }
                try {
                    template = TextTemplate.fromFile(path);
                } catch (IOException e) {
                    throw error(m.get("template"), f + ".template", "cannot read " + path + ": " + e.getMessage());
                }
            }
            List<String> labels = stringOrList(m.get("labels"), f + ".labels");
            if (new HashSet<>(labels).size() != labels.size() || labels.stream().anyMatch(String::isBlank)) {
                throw error(m.get("labels"), f + ".labels", "labels must be non-blank and distinct");
            }
            if ("classify".equals(templateName) && labels.isEmpty()) {
                throw error(item, f + ".labels", "the classify template needs labels: [a, b, ...]");
            }
            if (template.variables().contains("labels") && labels.isEmpty()) {
                throw error(item, f + ".labels", "the template uses {{labels}} but the task has no labels");
            }
            if (!manifest) {
                String key = inline != null ? "prompt" : "template";
                for (String v : template.variables()) {
                    if (!v.equals("labels") && !ITEM_VARS.contains(v)) {
                        throw error(m.get(key), f + "." + key, "unknown variable {{" + v + "}} in " + template.source()
                                + " (known: " + String.join(", ", ITEM_VARS) + ", labels; a manifest's columns too)");
                    }
                }
            }
            int maxTokens = (int) optionalLong(m, "max_tokens", f, labels.isEmpty() ? 256 : 16, 1, 32768);
            Double temperature = m.containsKey("temperature") ? optionalDouble(m, "temperature", f, 0, 0, 2) : null;
            Double topP = m.containsKey("top_p") ? optionalDouble(m, "top_p", f, 1, 0.0001, 1) : null;
            Long seed = m.containsKey("seed") ? optionalLong(m, "seed", f, 0, Long.MIN_VALUE, Long.MAX_VALUE) : null;
            tasks.add(new TaskSpec(name, template, labels, maxTokens, temperature, topP, seed));
        }
        return tasks;
    }

    /**
     * {@code schedule} (a cron) and {@code scheduling}: start_date, catchup, max_active_runs, retries,
     * retry_delay, timezone. No schedule = manual runs only.
     */
    private ScheduleSpec schedule(Map<String, Node> top) {
        String f = "scheduling";
        Node settings = top.get(f);
        if (top.get("schedule") == null || isNull(top.get("schedule"))) {
            if (settings != null) throw error(settings, f, "needs a schedule: (a cron expression) beside it");
            return ScheduleSpec.MANUAL;
        }
        Map<String, Node> s = settings == null || isNull(settings) ? Map.of() : mapping(settings, f,
                Set.of("start_date", "catchup", "max_active_runs", "retries", "retry_delay", "timezone"));
        ZoneId zone = ZoneId.of("UTC");
        String tz = optionalString(s, "timezone", f, null);
        if (tz != null) {
            try {
                zone = ZoneId.of(tz.strip());
            } catch (DateTimeException e) {
                throw error(s.get("timezone"), f + ".timezone", "not a time zone (e.g. UTC, Europe/Berlin): " + e.getMessage());
            }
        }
        Intervals intervals;
        try {
            intervals = Intervals.parse(optionalString(top, "schedule", "", null), zone);
        } catch (IllegalArgumentException e) {
            throw error(top.get("schedule"), "schedule", e.getMessage());
        }
        LocalDate start = null;
        String startText = optionalString(s, "start_date", f, null);
        if (startText != null) {
            try {
                start = LocalDate.parse(startText.strip());
            } catch (DateTimeException e) {
                throw error(s.get("start_date"), f + ".start_date", "must be YYYY-MM-DD, got \"" + startText + "\"");
            }
        }
        return new ScheduleSpec(intervals, start, optionalBoolean(s, "catchup", f, false),
                (int) optionalLong(s, "max_active_runs", f, 1, 1, 64),
                (int) optionalLong(s, "retries", f, 0, 0, 100),
                optionalDuration(s, "retry_delay", f, Duration.ofMinutes(5)));
    }

    private InferenceSpec inference(Node node) {
        String f = "inference";
        Map<String, Node> m = node == null ? Map.of() : mapping(node, f, Set.of("base_url", "model", "concurrency",
                "timeout_s", "retries", "backoff_ms", "api_key_env", "gpus", "down_after_s"));
        List<String> urls = baseUrls(m.get("base_url"), f + ".base_url");
        List<Integer> gpus = gpus(m.get("gpus"), f + ".gpus");
        if (gpus != null && !urls.equals(List.of(InferenceSpec.EMBEDDED))) {
            throw error(m.get("gpus"), f + ".gpus", "applies only to base_url: embedded (servers this app starts)");
        }
        return new InferenceSpec(urls, optionalString(m, "model", f, null),
                (int) optionalLong(m, "concurrency", f, 16, 1, 4096),
                Duration.ofMillis(Math.round(optionalDouble(m, "timeout_s", f, 300, 0.1, 86400) * 1000)),
                (int) optionalLong(m, "retries", f, 5, 0, 100),
                Duration.ofMillis(optionalLong(m, "backoff_ms", f, 500, 1, 600_000)),
                optionalString(m, "api_key_env", f, null), gpus,
                Duration.ofMillis(Math.round(optionalDouble(m, "down_after_s", f,
                        InferenceSpec.DEFAULT_DOWN_AFTER.toSeconds(), 1, 86400) * 1000)));
    }

    /** "embedded", one URL, or a list of distinct URLs (an endpoint pool). */
    private List<String> baseUrls(Node node, String field) {
        if (node == null || isNull(node)) return List.of(InferenceSpec.EMBEDDED);
        if (node instanceof ScalarNode s) {
            String url = s.getValue();
            if (!url.equals(InferenceSpec.EMBEDDED)) checkUrl(node, field, url);
            return List.of(url);
        }
        if (!(node instanceof SequenceNode seq) || seq.getValue().isEmpty()) {
            throw error(node, field, "must be \"embedded\", an http(s):// URL or a non-empty list of URLs");
        }
        if (seq.getValue().size() > MAX_ENDPOINTS) throw error(node, field, "lists more than " + MAX_ENDPOINTS + " URLs");
        List<String> urls = new ArrayList<>();
        for (Node n : seq.getValue()) {
            if (!(n instanceof ScalarNode s)) throw error(n, field, "must list URLs, one value each");
            checkUrl(n, field, s.getValue());
            String canonical = s.getValue().strip().replaceAll("/+$", "").replaceAll("/v1$", "");
            if (urls.stream().anyMatch(u -> u.strip().replaceAll("/+$", "").replaceAll("/v1$", "").equals(canonical))) {
                throw error(n, field, "lists " + s.getValue() + " twice");
            }
            urls.add(s.getValue());
        }
        return urls;
    }

    private void checkUrl(Node node, String field, String url) {
        if (!url.matches("https?://[^\\s/?#]+(/\\S*)?") || url.length() > 2000) {
            throw error(node, field, "must be \"embedded\" or an http(s):// URL, got \"" + abbreviate(url) + "\"");
        }
    }

    /** null (not given), ALL_GPUS for "all", else distinct device numbers. */
    private List<Integer> gpus(Node node, String field) {
        if (node == null || isNull(node)) return null;
        if (node instanceof ScalarNode s && s.getValue().equals("all")) return InferenceSpec.ALL_GPUS;
        if (!(node instanceof SequenceNode seq) || seq.getValue().isEmpty()) {
            throw error(node, field, "must be \"all\" or a non-empty list of GPU numbers, e.g. [0, 1]");
        }
        List<Integer> gpus = new ArrayList<>();
        for (Node n : seq.getValue()) {
            if (!(n instanceof ScalarNode s) || !s.getValue().matches("[0-9]{1,3}")) {
                throw error(n, field, "must list GPU numbers (0-999), got " + (n instanceof ScalarNode s2 ? "\"" + abbreviate(s2.getValue()) + "\"" : "a structure"));
            }
            int g = Integer.parseInt(s.getValue());
            if (gpus.contains(g)) throw error(n, field, "lists GPU " + g + " twice");
            gpus.add(g);
        }
        return gpus;
    }

    private static String abbreviate(String s) {
        return s.length() > 80 ? s.substring(0, 80) + "..." : s;
    }

    private RunSpec run(Node node) {
        String f = "run";
        Map<String, Node> m = node == null ? Map.of()
                : mapping(node, f, Set.of("chunk_size", "partitions", "reuse", "workers", "worker_timeout"));
        String workers = optionalString(m, "workers", f, "local");
        RunSpec.Workers where = switch (workers) {
            case "local" -> RunSpec.Workers.LOCAL;
            case "remote" -> RunSpec.Workers.REMOTE;
            default -> throw error(m.get("workers"), join(f, "workers"), "must be local or remote, got \"" + abbreviate(workers) + "\"");
        };
        int maxPartitions = where == RunSpec.Workers.REMOTE ? RunSpec.MAX_REMOTE_PARTITIONS : RunSpec.MAX_LOCAL_PARTITIONS;
        Duration timeout = optionalDuration(m, "worker_timeout", f, RunSpec.DEFAULT_WORKER_TIMEOUT);
        if (m.containsKey("worker_timeout") && where != RunSpec.Workers.REMOTE) {
            throw error(m.get("worker_timeout"), join(f, "worker_timeout"), "applies only with workers: remote");
        }
        if (timeout.compareTo(Duration.ofSeconds(5)) < 0 || timeout.compareTo(Duration.ofDays(1)) > 0) {
            throw error(m.get("worker_timeout"), join(f, "worker_timeout"), "must be between 5s and 1d, got " + timeout.toSeconds() + "s");
        }
        return new RunSpec((int) optionalLong(m, "chunk_size", f, 16, 1, 100_000),
                (int) optionalLong(m, "partitions", f, 2, 1, maxPartitions), optionalBoolean(m, "reuse", f, true), where, timeout);
    }

    // ---- node helpers: each names the field and line when the value has the wrong shape ----

    /** The entries of a mapping; an unknown or a repeated key is an error (YAML would keep the last one silently). */
    private Map<String, Node> mapping(Node node, String field, Set<String> allowed) {
        if (!(node instanceof MappingNode map)) throw error(node, field, "must be a mapping (key: value)");
        Map<String, Node> out = new LinkedHashMap<>();
        Map<String, Node> keys = new HashMap<>();
        for (NodeTuple t : map.getValue()) {
            if (!(t.getKeyNode() instanceof ScalarNode key)) throw error(t.getKeyNode(), field, "keys must be plain names");
            String k = key.getValue();
            if (!allowed.contains(k)) {
                throw error(key, join(field, k), "unknown field (allowed here: " + String.join(", ", allowed.stream().sorted().toList()) + ")");
            }
            Node first = keys.putIfAbsent(k, key);
            if (first != null) {
                throw error(key, join(field, k), "duplicated key (first on line " + (first.getStartMark().getLine() + 1)
                        + ", again on line " + (key.getStartMark().getLine() + 1) + ")");
            }
            out.put(k, t.getValueNode());
        }
        return out;
    }

    /** A path or URI that may use {{ ds }}, {{ ds_nodash }}, {{ prev_ds }}, {{ job }}, {{ params.NAME }}. */
    private String pathTemplate(Map<String, Node> m, String key, String field) {
        String value = optionalString(m, key, field, null);
        if (value == null) return null;
        for (String v : new TextTemplate(join(field, key), value).variables()) {
            if (!KNOWN_PATH_VAR.matcher(v).matches()) {
                throw error(m.get(key), join(field, key), "unknown variable {{ " + v
                        + " }} (known: ds, ds_nodash, prev_ds, job, params.NAME)");
            }
        }
        return value;
    }

    private Node required(Map<String, Node> m, String key, Node parent, String field) {
        Node n = m.get(key);
        if (n == null) throw error(parent, join(field, key), "is required");
        return n;
    }

    private String requiredString(Map<String, Node> m, String key, Node parent, String field) {
        required(m, key, parent, field);
        return optionalString(m, key, field, null);
    }

    private String optionalString(Map<String, Node> m, String key, String field, String dflt) {
        Node n = m.get(key);
        if (n == null || isNull(n)) return dflt;
        if (!(n instanceof ScalarNode s)) throw error(n, join(field, key), "must be a single value");
        if (s.getValue().isBlank()) throw error(n, join(field, key), "must not be empty");
        return s.getValue();
    }

    private long optionalLong(Map<String, Node> m, String key, String field, long dflt, long min, long max) {
        String text = optionalString(m, key, field, null);
        if (text == null) return dflt;
        long v;
        try {
            v = Long.parseLong(text.strip().replace("_", ""));
        } catch (NumberFormatException e) {
            throw error(m.get(key), join(field, key), "must be a whole number, got \"" + text + "\"");
        }
        if (v < min || v > max) throw error(m.get(key), join(field, key), "must be between " + min + " and " + max + ", got " + v);
        return v;
    }

    private double optionalDouble(Map<String, Node> m, String key, String field, double dflt, double min, double max) {
        String text = optionalString(m, key, field, null);
        if (text == null) return dflt;
        double v;
        try {
            v = Double.parseDouble(text.strip());
        } catch (NumberFormatException e) {
            throw error(m.get(key), join(field, key), "must be a number, got \"" + text + "\"");
        }
        if (!(v >= min && v <= max)) throw error(m.get(key), join(field, key), "must be between " + min + " and " + max + ", got " + v);
        return v;
    }

    private boolean optionalBoolean(Map<String, Node> m, String key, String field, boolean dflt) {
        String text = optionalString(m, key, field, null);
        if (text == null) return dflt;
        return switch (text.toLowerCase()) {
            case "true", "yes", "on" -> true;
            case "false", "no", "off" -> false;
            default -> throw error(m.get(key), join(field, key), "must be true or false, got \"" + text + "\"");
        };
    }

    /** "90" (seconds), "500ms", "30s", "5m", "2h", "1d". */
    private Duration optionalDuration(Map<String, Node> m, String key, String field, Duration dflt) {
        String text = optionalString(m, key, field, null);
        if (text == null) return dflt;
        Matcher d = DURATION.matcher(text.strip());
        if (!d.matches()) throw error(m.get(key), join(field, key), "must be a duration like 30s, 5m, 2h (got \"" + text + "\")");
        long amount;
        try {
            amount = Long.parseLong(d.group(1));
        } catch (NumberFormatException e) {
            throw error(m.get(key), join(field, key), "is too large, got \"" + text + "\"");
        }
        String unit = d.group(2) == null ? "s" : d.group(2);
        try {
            return switch (unit) {
                case "ms" -> Duration.ofMillis(amount);
                case "m" -> Duration.ofMinutes(amount);
                case "h" -> Duration.ofHours(amount);
                case "d" -> Duration.ofDays(amount);
                default -> Duration.ofSeconds(amount);
            };
        } catch (ArithmeticException e) {
            throw error(m.get(key), join(field, key), "is too large, got \"" + text + "\"");
        }
    }

    private List<String> stringOrList(Node node, String field) {
        if (node == null || isNull(node)) return List.of();
        if (node instanceof ScalarNode s) return List.of(s.getValue());
        if (!(node instanceof SequenceNode seq)) throw error(node, field, "must be a value or a list of values");
        List<String> out = new ArrayList<>();
        for (Node n : seq.getValue()) {
            if (!(n instanceof ScalarNode s)) throw error(n, field, "list entries must be single values");
            out.add(s.getValue());
        }
        return out;
    }

    private static boolean isNull(Node n) {
        return n instanceof ScalarNode s && "tag:yaml.org,2002:null".equals(s.getTag().getValue());
    }

    private static String join(String field, String key) {
        return field.isEmpty() ? key : field + "." + key;
    }

    private JobFileException error(Node node, String field, String problem) {
        if (node != null && overridden.contains(node)) return new JobFileException(file, 0, "--set " + field, problem);
        int line = node == null || node.getStartMark() == null ? 0 : node.getStartMark().getLine() + 1;
        return new JobFileException(file, line, field, problem);
    }
}
