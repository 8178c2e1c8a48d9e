package io.vlmbatch.cli;

import java.nio.file.Path;
import java.time.LocalDate;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Parses `vlm-batch run|restart|status|export ...` (see USAGE). */
public final class CommandLine {
    public static final String USAGE = """
            usage:
              vlm-batch run JOB.yaml [--date YYYY-MM-DD] [--param k=v]... [--model DIR]
              vlm-batch restart JOB.yaml (--date YYYY-MM-DD [--param k=v]... | --execution ID) [--model DIR]
              vlm-batch status [JOB.yaml | JOB-NAME]
              vlm-batch export JOB.yaml [--date YYYY-MM-DD] [--param k=v]... [--csv FILE] [--jsonl FILE]
              vlm-batch serve [--port 8080]   (scheduler, REST API and web UI: docs/web-ui.md)
              vlm-batch serve [--port 8080] [--host 127.0.0.1] [--jobs DIR] [--model DIR] [--inference-url URL]
            --date is the run's logical date (default: today); with --param it identifies the run.""";

    private CommandLine() {}

    public static Invocation parse(String[] args) {
        if (args.length == 0) throw new UsageException("no command given");
        String command = args[0];
        if (!List.of("run", "restart", "status", "export").contains(command)) {
            throw new UsageException("unknown command '" + command + "'");
        }
        List<String> positional = new ArrayList<>();
        LocalDate date = null;
        Map<String, String> params = new LinkedHashMap<>();
        Path model = null;
        Long execution = null;
        Path csv = null;
        Path jsonl = null;
        for (int i = 1; i < args.length; i++) {
            String a = args[i];
            String value = null;
            if (a.startsWith("--") && a.contains("=") && !a.startsWith("--param=")) {
                value = a.substring(a.indexOf('=') + 1);
                a = a.substring(0, a.indexOf('='));
            } else if (a.startsWith("--param=")) {
                value = a.substring("--param=".length());
                a = "--param";
            }
            if (!a.startsWith("--")) {
                positional.add(a);
                continue;
            }
            if (value == null) {
                if (i + 1 >= args.length) throw new UsageException(a + " needs a value");
                value = args[++i];
            }
            switch (a) {
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
                default -> throw new UsageException("unknown option " + a);
            }
        }
        switch (command) {
            case "status" -> {
                if (positional.size() > 1) throw new UsageException("status takes at most one job");
                if (date != null || !params.isEmpty() || model != null || execution != null || csv != null || jsonl != null) {
                    throw new UsageException("status takes no options");
                }
                if (positional.isEmpty()) return new Invocation(command, null, null, null, Map.of(), null, null, null, null);
                String job = positional.getFirst();
                boolean file = job.endsWith(".yaml") || job.endsWith(".yml");
                return new Invocation(command, file ? Path.of(job) : null, file ? null : job, null, Map.of(), null, null, null, null);
            }
            default -> {
                if (positional.size() != 1) throw new UsageException(command + " needs exactly one job file");
                if (!command.equals("restart") && execution != null) throw new UsageException("--execution is only for restart");
                if (!command.equals("export") && csv != null) throw new UsageException("--csv is only for export");
                if (!command.equals("export") && jsonl != null) throw new UsageException("--jsonl is only for export");
                if (command.equals("export") && csv == null && jsonl == null) {
                    throw new UsageException("export needs --csv FILE and/or --jsonl FILE");
                }
                if (command.equals("export") && model != null) throw new UsageException("export takes no --model");
                if (execution != null && (date != null || !params.isEmpty())) {
                    throw new UsageException("give either --execution or --date/--param, not both");
                }
                if (command.equals("restart") && execution == null && date == null) {
                    throw new UsageException("restart needs --date (the logical date of the run) or --execution ID");
                }
                if (date == null && execution == null) date = LocalDate.now();
                return new Invocation(command, Path.of(positional.getFirst()), null, date, params, model, execution, csv, jsonl);
            }
        }
    }
}
