package io.vlmbatch.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDate;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The one parser of `vlm-batch COMMAND ...` for every command, serve included. Options take their value
 * as the next word or after '='; --force is the only flag; `--help` (or -h) on any command prints its
 * usage.
 */
public final class CommandLine {
    /** One command: its usage text and the options it takes. */
    private record Spec(String usage, Set<String> options) {}

    private static final Map<String, Spec> COMMANDS = new LinkedHashMap<>();

    static {
        COMMANDS.put("run", new Spec("vlm-batch run JOB.yaml [--date YYYY-MM-DD] [--param k=v]... [--model DIR]",
                Set.of("--date", "--param", "--model")));
        COMMANDS.put("restart", new Spec(
                "vlm-batch restart JOB.yaml (--date YYYY-MM-DD [--param k=v]... | --execution ID) [--model DIR] [--force]",
                Set.of("--date", "--param", "--model", "--execution", "--force")));
        COMMANDS.put("status", new Spec("vlm-batch status [JOB.yaml | JOB-NAME]", Set.of()));
        COMMANDS.put("export", new Spec("vlm-batch export JOB.yaml [--date YYYY-MM-DD] [--param k=v]... [--csv FILE] [--jsonl FILE]",
                Set.of("--date", "--param", "--csv", "--jsonl")));
        COMMANDS.put("plan", new Spec("vlm-batch plan JOB.yaml [--date YYYY-MM-DD] [--param k=v]... [--model DIR] [--json]",
                Set.of("--date", "--param", "--model", "--json")));
        COMMANDS.put("retry", new Spec(
                "vlm-batch retry JOB.yaml --date YYYY-MM-DD [--param k=v]... [--task NAME] [--set key=value]... [--model DIR]",
                Set.of("--date", "--param", "--model", "--task", "--set")));
        COMMANDS.put("backfill", new Spec(
                "vlm-batch backfill JOB.yaml --from YYYY-MM-DD --to YYYY-MM-DD [--reprocess none|failed|completed] [--model DIR]",
                Set.of("--from", "--to", "--reprocess", "--model")));
        COMMANDS.put("serve", new Spec(
                "vlm-batch serve [--port 8080] [--host 127.0.0.1] [--jobs DIR] [--model DIR] [--inference-url URL] [--spring.x=v | --vlm.x=v ...]",
                Set.of("--port", "--host", "--jobs", "--model", "--inference-url")));
        COMMANDS.put("worker", new Spec(
                "vlm-batch worker [--concurrency N] [--queue NAME] [--model DIR] [--spring.rabbitmq.host=H ...]",
                Set.of("--concurrency", "--queue", "--model")));
    }

    private static final String NOTES = """
            --date is the run's logical date (default: today); with --param it identifies the run.
            --force takes a run over from an owner that still looks alive (it says which).
            plan: what a run would ask (and reuse from earlier runs) and its estimated GPU time, without running it.
            retry: asks the failed items of a run again (--task: one task of every item), with --set overrides of
              the job file (--set tasks.caption.max_tokens=512); the run's outputs then show the latest answers.
            backfill: runs every logical date of --from..--to (both included) in this process, at most the job's
              max_active_runs at once: the dates of its schedule's runs (hourly: 24 a day, weekly: one a week), one a
              day for a job without a schedule; at most 366 runs. --reprocess none (default) skips dates that have a
              run; failed also resumes failed or stopped ones; completed also reruns completed ones (a new attempt
              over every item: only what changed is asked).
            serve: the scheduler, REST API and web UI (docs/web-ui.md); --host other than loopback requires
              VLM_WEB_USER / VLM_WEB_PASSWORD; --jobs is the folder of job files (default: jobs); --inference-url
              is the playground's OpenAI-compatible server (default: the embedded vlmserve).
            worker: runs infer partitions of jobs with run.workers: remote, sent through RabbitMQ (SPRING_RABBITMQ_HOST,
              _PORT, _USERNAME, _PASSWORD) against the shared PostgreSQL (SPRING_DATASOURCE_*); --concurrency
              partitions at once (default 2); docs/deployment.md.""";

    /** Settings serve passes straight to Spring (as --name=value) for experts. */
    private static final List<String> SPRING_PREFIXES = List.of("--spring.", "--vlm.", "--server.", "--management.");

    private CommandLine() {}

    /** Usage of every command. */
    public static String usage() {
        StringBuilder b = new StringBuilder("usage:\n");
        COMMANDS.values().forEach(s -> b.append("  ").append(s.usage()).append('\n'));
        return b.append(NOTES).toString();
    }

    /** Usage of one command (all of them for an unknown name). */
    public static String usage(String command) {
        Spec s = COMMANDS.get(command);
        return s == null ? usage() : "usage: " + s.usage() + "\n" + NOTES;
    }

    public static Invocation parse(String[] args) {
        if (args.length == 0) throw new UsageException("no command given");
        String command = args[0];
        if (command.equals("--help") || command.equals("-h") || command.equals("help")) return Invocation.help(null);
        Spec spec = COMMANDS.get(command);
        if (spec == null) throw new UsageException("unknown command '" + command + "'");
        // asking for help wins over whatever else the line holds
        for (int i = 1; i < args.length; i++) {
            if (args[i].equals("--help") || args[i].equals("-h")) return Invocation.help(command);
        }
        Parsed p = new Parsed();
        for (int i = 1; i < args.length; i++) {
            String a = args[i];
            if (!a.startsWith("-")) {
                p.positional.add(a);
                continue;
            }
            String value = null;
            int eq = a.indexOf('=');
            if (a.startsWith("--") && eq > 0) {
                value = a.substring(eq + 1);
                a = a.substring(0, eq);
            }
            if ((command.equals("serve") || command.equals("worker")) && SPRING_PREFIXES.stream().anyMatch(a::startsWith)) {
                if (value == null) throw new UsageException(a + " needs =value");
                p.springArgs.add(a + "=" + value);
                continue;
            }
            if (!spec.options().contains(a)) throw new UsageException("unknown option " + a + " for " + command);
            if (a.equals("--force")) {
                if (value != null) throw new UsageException("--force takes no value");
                p.force = true;
                continue;
            }
            if (a.equals("--json")) {
                if (value != null) throw new UsageException("--json takes no value");
                p.json = true;
                continue;
            }
            if (value == null) {
                if (i + 1 >= args.length) throw new UsageException(a + " needs a value");
                value = args[++i];
            }
            p.option(a, value);
        }
        return switch (command) {
            case "status" -> status(p);
            case "serve" -> serve(p);
            case "worker" -> worker(p);
            default -> pipeline(command, p);
        };
    }

    /** What the loop collects, before the command's own rules. */
    private static final class Parsed {
        final List<String> positional = new ArrayList<>();
        final Map<String, String> params = new LinkedHashMap<>();
        final List<String> springArgs = new ArrayList<>();
        LocalDate date;
        Path model;
        Long execution;
        Path csv;
        Path jsonl;
        boolean force;
        boolean json;
        String task;
        final List<String> sets = new ArrayList<>();
        LocalDate from;
        LocalDate to;
        String reprocess;

        void option(String name, String value) {
            switch (name) {
                case "--date" -> {
                    try {
                        date = LocalDate.parse(value);
                    } catch (DateTimeParseException e) {
                        throw new UsageException("--date must be YYYY-MM-DD, got '" + value + "'");
                    }
                }
                case "--param" -> {
                    int eq = value.indexOf('=');
                    if (eq <= 0) throw new UsageException("--param must be key=value, got '" + value + "'");
                    String key = value.substring(0, eq);
                    if (!key.matches("[A-Za-z_][A-Za-z0-9_]*")) throw new UsageException("--param key must be a plain name, got '" + key + "'");
                    params.put(key, value.substring(eq + 1));
                }
                case "--from" -> from = date("--from", value);
                case "--to" -> to = date("--to", value);
                case "--reprocess" -> {
                    if (!List.of("none", "failed", "completed").contains(value)) {
                        throw new UsageException("--reprocess must be none, failed or completed, got '" + shorten(value) + "'");
                    }
                    reprocess = value;
                }
                case "--model" -> model = Path.of(value);
                case "--execution" -> {
                    try {
                        execution = Long.parseLong(value);
                    } catch (NumberFormatException e) {
                        throw new UsageException("--execution must be a number, got '" + value + "'");
                    }
                }
                case "--csv" -> csv = Path.of(value);
                case "--jsonl" -> jsonl = Path.of(value);
                case "--task" -> {
                    if (!value.matches("[a-z][a-z0-9_]{0,62}")) throw new UsageException("--task must be a task name, got '" + value + "'");
                    task = value;
                }
                case "--set" -> {
                    if (value.indexOf('=') <= 0) throw new UsageException("--set must be key=value, got '" + value + "'");
                    sets.add(value);
                }
                case "--port" -> {
                    int port;
                    try {
                        port = Integer.parseInt(value);
                    } catch (NumberFormatException e) {
                        throw new UsageException("--port must be a number, got '" + value + "'");
                    }
                    if (port < 0 || port > 65535) throw new UsageException("--port must be 0..65535");
                    springArgs.add("--server.port=" + port);
                }
                case "--host" -> springArgs.add("--server.address=" + value);
                case "--jobs" -> {
                    if (!Files.isDirectory(Path.of(value))) throw new UsageException("--jobs " + value + " is not a folder");
                    springArgs.add("--vlm.jobs-dir=" + value);
                }
                case "--concurrency" -> {
                    int n;
                    try {
                        n = Integer.parseInt(value);
                    } catch (NumberFormatException e) {
                        throw new UsageException("--concurrency must be a number, got '" + value + "'");
                    }
                    if (n < 1 || n > 256) throw new UsageException("--concurrency must be 1..256");
                    springArgs.add("--vlm.worker.concurrency=" + n);
                }
                case "--queue" -> {
                    if (!value.matches("[A-Za-z0-9._-]{1,200}")) {
                        throw new UsageException("--queue must be 1-200 letters, digits, '.', '_' or '-'");
                    }
                    springArgs.add("--vlm.worker.queue=" + value);
                }
                case "--inference-url" -> {
                    if (!value.matches("https?://\\S+")) throw new UsageException("--inference-url must be an http(s):// URL");
                    springArgs.add("--vlm.playground.base-url=" + value);
                }
                default -> throw new IllegalStateException(name);
            }
        }
    }

    private static LocalDate date(String option, String value) {
        try {
            return LocalDate.parse(value);
        } catch (DateTimeParseException e) {
            throw new UsageException(option + " must be YYYY-MM-DD, got '" + shorten(value) + "'");
        }
    }

    private static String shorten(String value) {
        return value.length() > 40 ? value.substring(0, 40) + "…" : value;
    }

    private static Invocation status(Parsed p) {
        if (p.positional.size() > 1) throw new UsageException("status takes at most one job");
        if (p.positional.isEmpty()) return Invocation.status(null, null);
        String job = p.positional.getFirst();
        boolean file = job.endsWith(".yaml") || job.endsWith(".yml");
        return Invocation.status(file ? Path.of(job) : null, file ? null : job);
    }

    private static Invocation serve(Parsed p) {
        if (!p.positional.isEmpty()) throw new UsageException("serve takes no job file (it runs the jobs of --jobs DIR)");
        // serve's --model reaches the embedded inference server of its jobs and the playground
        if (p.model != null) p.springArgs.add("--vlm.model-dir=" + p.model);
        return Invocation.serve(p.springArgs);
    }

    private static Invocation worker(Parsed p) {
        if (!p.positional.isEmpty()) throw new UsageException("worker takes no job file (each partition names its run's job file)");
        if (p.model != null) p.springArgs.add("--vlm.model-dir=" + p.model.toAbsolutePath());
        return new Invocation("worker", null, null, null, java.util.Map.of(), null, null, null, null, false, List.copyOf(p.springArgs), false);
    }

    private static Invocation pipeline(String command, Parsed p) {
        if (p.positional.size() != 1) throw new UsageException(command + " needs exactly one job file");
        if (command.equals("export") && p.csv == null && p.jsonl == null) {
            throw new UsageException("export needs --csv FILE and/or --jsonl FILE");
        }
        if (p.execution != null && (p.date != null || !p.params.isEmpty())) {
            throw new UsageException("give either --execution or --date/--param, not both");
        }
        if (command.equals("restart") && p.execution == null && p.date == null) {
            throw new UsageException("restart needs --date (the logical date of the run) or --execution ID");
        }
        if (command.equals("retry") && p.date == null) throw new UsageException("retry needs --date (the logical date of the run)");
        Invocation.Range range = null;
        if (command.equals("backfill")) {
            if (p.from == null || p.to == null) throw new UsageException("backfill needs --from and --to (logical dates, both included)");
            if (p.to.isBefore(p.from)) throw new UsageException("--to " + p.to + " is before --from " + p.from);
            range = new Invocation.Range(p.from, p.to, p.reprocess == null ? "none" : p.reprocess);
        }
        LocalDate date = p.date == null && p.execution == null ? LocalDate.now() : p.date;
        return new Invocation(command, Path.of(p.positional.getFirst()), null, date, p.params, p.model, p.execution, p.csv,
                p.jsonl, p.force, List.of(), false, p.json, p.task, p.sets, range);
    }
}
