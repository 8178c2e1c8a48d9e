package io.vlmbatch.batch;

import io.vlmbatch.store.CsvExporter;
import java.nio.file.Path;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.batch.core.step.StepContribution;
import org.springframework.batch.core.scope.context.ChunkContext;
import org.springframework.batch.core.step.tasklet.Tasklet;
import org.springframework.batch.infrastructure.repeat.RepeatStatus;

/** Writes the run's CSV from the database (when the job names one). */
public class ExportTasklet implements Tasklet {
    private static final Logger log = LoggerFactory.getLogger(ExportTasklet.class);

    private final CsvExporter exporter;
    private final List<String> tasks;
    private final Path csv;
    private final boolean raw;

    public ExportTasklet(CsvExporter exporter, List<String> tasks, Path csv, boolean raw) {
        this.exporter = exporter;
        this.tasks = tasks;
        this.csv = csv;
        this.raw = raw;
    }

    @Override
    public RepeatStatus execute(StepContribution contribution, ChunkContext chunkContext) throws Exception {
        if (csv == null) return RepeatStatus.FINISHED;
        long runId = chunkContext.getStepContext().getStepExecution().getJobExecution().getJobInstance().getInstanceId();
        long rows = exporter.export(runId, tasks, csv, raw);
        contribution.incrementWriteCount(rows);
        log.info("wrote {} rows to {}", rows, csv);
        return RepeatStatus.FINISHED;
    }
}
