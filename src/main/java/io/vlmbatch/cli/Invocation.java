package io.vlmbatch.cli;

import java.nio.file.Path;
import java.time.LocalDate;
import java.util.List;
import java.util.Map;

/**
 * A parsed command line. Fields a command does not take are null. force: restart --force; json: plan
 * --json; task and sets: retry --task NAME and its --set key=value overrides of the job file.
 */
public record Invocation(String command, Path jobFile, String jobName, LocalDate date, Map<String, String> params,
                         Path model, Long executionId, Path csv, boolean force, boolean json, String task, List<String> sets) {
    public Invocation {
        sets = sets == null ? List.of() : List.copyOf(sets);
    }

    public Invocation(String command, Path jobFile, String jobName, LocalDate date, Map<String, String> params,
                      Path model, Long executionId, Path csv, boolean force) {
        this(command, jobFile, jobName, date, params, model, executionId, csv, force, false, null, List.of());
    }
}
