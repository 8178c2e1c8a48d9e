package io.vlmbatch.batch;

import io.vlmbatch.store.CsvExporter;
import io.vlmbatch.store.JsonlExporter;
import java.nio.file.Path;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.batch.core.step.StepContribution;
import org.springframework.batch.core.scope.context.ChunkContext;
import org.springframework.batch.core.step.tasklet.Tasklet;
import org.springframework.batch.infrastructure.repeat.RepeatStatus;

/** Writes the run's CSV, items JSONL and documents JSONL from the database (those the job names). */
public class ExportTasklet implements Tasklet {
    private static final Logger log = LoggerFactory.getLogger(ExportTasklet.class);

    private final CsvExporter exporter;
    private final JsonlExporter jsonlExporter;
    private final List<String> tasks;
    private final Path csv;
    private final Path jsonl;
    private final Path documents;
    private final boolean raw;

    public ExportTasklet(CsvExporter exporter, List<String> tasks, Path csv) {
        this(exporter, null, tasks, csv, null, null, false);
    }

    public ExportTasklet(CsvExporter exporter, JsonlExporter jsonlExporter, List<String> tasks, Path csv, Path jsonl,
                         Path documents) {
        this(exporter, jsonlExporter, tasks, csv, jsonl, documents, false);
    }

    /** @param raw CSV cells exactly as stored (output.csv_raw), formula-like ones not neutralised */
    public ExportTasklet(CsvExporter exporter, JsonlExporter jsonlExporter, List<String> tasks, Path csv, Path jsonl,
                         Path documents, boolean raw) {
        this.exporter = exporter;
        this.jsonlExporter = jsonlExporter;
        this.tasks = tasks;
        this.csv = csv;
        this.jsonl = jsonl;
        this.documents = documents;
        this.raw = raw;
    }

    @Override
    public RepeatStatus execute(StepContribution contribution, ChunkContext chunkContext) throws Exception {
        long runId = chunkContext.getStepContext().getStepExecution().getJobExecution().getJobInstance().getInstanceId();
        if (csv != null) {
            long rows = exporter.export(runId, tasks, csv, raw);
            contribution.incrementWriteCount(rows);
            log.info("wrote {} rows to {}", rows, csv);
        }
        if (jsonl != null) {
            log.info("wrote {} items to {}", jsonlExporter.exportItems(runId, tasks, jsonl), jsonl);
        }
        if (documents != null) {
            log.info("wrote {} documents to {}", jsonlExporter.exportDocuments(runId, tasks, documents), documents);
        }
        return RepeatStatus.FINISHED;
    }
}
