package io.vlmbatch.cli;

import java.nio.file.Path;
import java.time.LocalDate;
import java.util.Map;

/** A parsed command line. Fields a command does not take are null. force: restart --force; json: plan --json. */
public record Invocation(String command, Path jobFile, String jobName, LocalDate date, Map<String, String> params,
                         Path model, Long executionId, Path csv, boolean force, boolean json) {
    public Invocation(String command, Path jobFile, String jobName, LocalDate date, Map<String, String> params,
                      Path model, Long executionId, Path csv, boolean force) {
        this(command, jobFile, jobName, date, params, model, executionId, csv, force, false);
    }
}
