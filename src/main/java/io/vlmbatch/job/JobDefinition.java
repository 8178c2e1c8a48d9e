package io.vlmbatch.job;

import io.vlmbatch.image.ResizeSpec;
import io.vlmbatch.inference.InferenceSpec;
import io.vlmbatch.source.SourceSpec;
import java.nio.file.Path;
import java.util.List;

/**
 * A validated job file. Strings in source and csv may hold {{ ds }}, {{ ds_nodash }}, {{ prev_ds }},
 * {{ job }} and {{ params.x }}, rendered per run (so may output.jsonl, one JSON object per item, and
 * output.documents, one per source document); relative paths are relative to the job file's folder.
 * schedule is {@link ScheduleSpec#MANUAL} for a job without a cron.
 */
public record JobDefinition(Path file, String name, ScheduleSpec schedule, SourceSpec source, ResizeSpec resize,
                            List<TaskSpec> tasks, String csv, String jsonl, String documents, InferenceSpec inference,
                            RunSpec run, boolean csvRaw) {

    /** csvRaw (output.csv_raw): cells as stored, without neutralising formula-like ones (see CsvExporter). */
    public JobDefinition(Path file, String name, ScheduleSpec schedule, SourceSpec source, ResizeSpec resize,
                         List<TaskSpec> tasks, String csv, String jsonl, String documents, InferenceSpec inference, RunSpec run) {
        this(file, name, schedule, source, resize, tasks, csv, jsonl, documents, inference, run, false);
    }

    public Path baseDir() {
        Path parent = file.toAbsolutePath().getParent();
        return parent == null ? Path.of("").toAbsolutePath() : parent;
    }

    public List<String> taskNames() {
        return tasks.stream().map(TaskSpec::name).toList();
    }
}
