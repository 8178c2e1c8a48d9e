package io.vlmbatch.cli;

import java.nio.file.Path;
import java.time.LocalDate;
import java.util.List;
import java.util.Map;

/**
 * A parsed command line. Fields a command does not take are null (or empty). jsonl: export --jsonl (one
 * object per item); force: restart --force; springArgs: serve's settings as Spring arguments; help: print
 * the command's usage and stop; json: plan --json; task and sets: retry --task NAME and its --set
 * key=value overrides of the job file; range: backfill's --from, --to and --reprocess.
 */
public record Invocation(String command, Path jobFile, String jobName, LocalDate date, Map<String, String> params,
                         Path model, Long executionId, Path csv, Path jsonl, boolean force, List<String> springArgs, boolean help,
                         boolean json, String task, List<String> sets, Range range) {
    /** backfill: the logical dates from..to (both included) and the reprocess mode (none, failed, completed). */
    public record Range(LocalDate from, LocalDate to, String reprocess) {}

    public Invocation(String command, Path jobFile, String jobName, LocalDate date, Map<String, String> params,
                      Path model, Long executionId, Path csv, Path jsonl, boolean force, List<String> springArgs, boolean help,
                      boolean json, String task, List<String> sets) {
        this(command, jobFile, jobName, date, params, model, executionId, csv, jsonl, force, springArgs, help, json, task, sets, null);
    }

    public Invocation {
        sets = sets == null ? List.of() : List.copyOf(sets);
    }

    public Invocation(String command, Path jobFile, String jobName, LocalDate date, Map<String, String> params,
                      Path model, Long executionId, Path csv, Path jsonl, boolean force, List<String> springArgs, boolean help) {
        this(command, jobFile, jobName, date, params, model, executionId, csv, jsonl, force, springArgs, help, false, null, List.of());
    }

    static Invocation help(String command) {
        return new Invocation(command, null, null, null, Map.of(), null, null, null, null, false, List.of(), true);
    }

    static Invocation status(Path jobFile, String jobName) {
        return new Invocation("status", jobFile, jobName, null, Map.of(), null, null, null, null, false, List.of(), false);
    }

    static Invocation serve(List<String> springArgs) {
        return new Invocation("serve", null, null, null, Map.of(), null, null, null, null, false, List.copyOf(springArgs), false);
    }
}
