package io.vlmbatch.cli;

import java.nio.file.Path;
import java.time.LocalDate;
import java.util.Map;

/** A parsed command line. Fields a command does not take are null. jsonl: export --jsonl (one object per item). */
public record Invocation(String command, Path jobFile, String jobName, LocalDate date, Map<String, String> params,
                         Path model, Long executionId, Path csv, Path jsonl) {}
