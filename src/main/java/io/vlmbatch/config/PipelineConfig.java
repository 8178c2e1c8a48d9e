package io.vlmbatch.config;

import io.vlmbatch.batch.AllItemsFailedCheck;
import io.vlmbatch.batch.DiscoverTasklet;
import io.vlmbatch.batch.ExportTasklet;
import io.vlmbatch.batch.IdRangePartitioner;
import io.vlmbatch.batch.InferenceWriter;
import io.vlmbatch.batch.PendingItemReader;
import io.vlmbatch.batch.PrepareProcessor;
import io.vlmbatch.batch.PreparedItem;
import io.vlmbatch.archive.PageExtractor;
import io.vlmbatch.archive.RenderSpec;
import io.vlmbatch.image.ImagePreparer;
import io.vlmbatch.inference.EmbeddedInferenceServer;
import io.vlmbatch.inference.InferenceService;
import io.vlmbatch.job.JobDefinition;
import io.vlmbatch.job.RunParameters;
import io.vlmbatch.ledger.Attempts;
import io.vlmbatch.ledger.LedgerStore;
import io.vlmbatch.ledger.RunEndpointListener;
import io.vlmbatch.run.Heartbeat;
import io.vlmbatch.run.RunLifecycle;
import io.vlmbatch.run.RunOwnerListener;
import io.vlmbatch.run.RunOwnership;
import io.vlmbatch.source.ImageFetcher;
import io.vlmbatch.source.SourceSpec;
import io.vlmbatch.source.ByteSources;
import io.vlmbatch.source.Sources;
import io.vlmbatch.store.CsvExporter;
import io.vlmbatch.store.JsonlExporter;
import io.vlmbatch.store.ResultStore;
import io.vlmbatch.store.RunStore;
import io.vlmbatch.store.WorkItem;
import io.vlmbatch.store.WorkItemStore;
import java.nio.file.Path;
import org.springframework.batch.core.configuration.annotation.StepScope;
import org.springframework.batch.core.job.Job;
import org.springframework.batch.core.job.builder.JobBuilder;
import org.springframework.batch.core.launch.JobOperator;
import org.springframework.batch.core.repository.JobRepository;
import org.springframework.batch.core.step.Step;
import org.springframework.batch.core.step.builder.StepBuilder;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Primary;
import org.springframework.core.task.SimpleAsyncTaskExecutor;
import org.springframework.transaction.PlatformTransactionManager;

/**
 * The Batch job of one job file: discover → infer (partitioned by id range over local threads) → export.
 * The JobDefinition, RunParameters and the --model folder are registered by the launcher before refresh.
 */
@Configuration(proxyBeanMethods = false)
public class PipelineConfig {
    /** Bytes read per image before giving up on it: far above any sane photo, below a memory problem. */
    public static final long MAX_IMAGE_BYTES = 256L * 1024 * 1024;

    public record ModelOption(Path dir) {}

    /** The run whose items a step works on: the retried run for a retry attempt (Attempts), else its own. */
    static final String WORK_RUN = "#{jobParameters['" + Attempts.RETRY_OF + "'] ?: jobInstanceId}";
    /** Starts, resumes and refuses runs of the job (the one lifecycle, with this context's JobOperator). */
    @Bean
    RunLifecycle runLifecycle(JobRepository repository, JobOperator operator, RunStore runs, RunOwnership ownership) {
        return new RunLifecycle(repository, operator, runs, ownership);
    }

    /**
     * Primary: in serve, the parent context holds the playground's InferenceService too. The embedded
     * server is serve's (shared by its runs and the playground) when there is one, else this run's own.
     */
    @Bean(destroyMethod = "close")
    @Primary
    InferenceService inferenceService(JobDefinition def, AppPaths paths, ModelOption model,
                                      ObjectProvider<EmbeddedInferenceServer> shared) {
        EmbeddedInferenceServer server = shared.getIfAvailable();
        if (server != null) return new InferenceService(def.inference(), server, false);
        return new InferenceService(def.inference(), new EmbeddedInferenceServer(paths.home(), model.dir(), paths.logs()), true);
    }

    @Bean(destroyMethod = "close")
    ImageFetcher imageFetcher(JobDefinition def) {
        return Sources.fetcher(def.source().s3Settings());
    }

    /** Opens listed files for pages and archive members (S3 by ranged reads). */
    @Bean(destroyMethod = "close")
    ByteSources byteSources(JobDefinition def) {
        return ByteSources.of(def.source().s3Settings());
    }

    @Bean
    Attempts attempts(org.springframework.jdbc.core.JdbcTemplate jdbc, PlatformTransactionManager tm) {
        return new Attempts(jdbc, new org.springframework.transaction.support.TransactionTemplate(tm));
    }

    @Bean
    Job vlmJob(JobDefinition def, JobRepository repository, RunStore runs, RunOwnership ownership, Heartbeat heartbeat,
               WorkItemStore items, LedgerStore ledger, InferenceService inference, Step discover, Step infer, Step export) {
        return new JobBuilder(def.name(), repository)
                .listener(new RunOwnerListener(runs, ownership, heartbeat))
                .listener(new AllItemsFailedCheck(items))
                .listener(new RunEndpointListener(ledger, RunEndpointListener.endpointKey(def.inference()), inference::ledgerModel))
                .start(discover).next(infer).next(export)
                .build();
    }

    /** The job's source with this run's {{ ds }}, {{ params.x }}... filled in (the run and `plan` list the same). */
    public static SourceSpec renderedSource(JobDefinition def, RunParameters params) {
        SourceSpec s = def.source();
        return s.withLocations(params.render(s.folder(), def.name()), params.render(s.manifest(), def.name()),
                params.render(s.s3(), def.name()));
    }

    @Bean
    Step discover(JobDefinition def, RunParameters params, JobRepository repository, PlatformTransactionManager tm,
                  RunStore runs, WorkItemStore items) {
        SourceSpec rendered = renderedSource(def, params);
        return new StepBuilder("discover", repository)
                .tasklet(new DiscoverTasklet(() -> Sources.open(rendered, def.baseDir()), runs, items), tm)
                .build();
    }

    @Bean
    Step infer(JobDefinition def, JobRepository repository, Step inferWorker, IdRangePartitioner partitioner) {
        SimpleAsyncTaskExecutor threads = new SimpleAsyncTaskExecutor("infer-");
        threads.setConcurrencyLimit(def.run().partitions());
        return new StepBuilder("infer", repository)
                .partitioner("infer-worker", partitioner)
                .step(inferWorker)
                .gridSize(def.run().partitions())
                .taskExecutor(threads)
                .build();
    }

    @Bean
    @StepScope
    IdRangePartitioner partitioner(WorkItemStore items, @Value(WORK_RUN) Long runId) {
        return new IdRangePartitioner(items, runId);
    }

    @Bean
    Step inferWorker(JobDefinition def, JobRepository repository, PlatformTransactionManager tm,
                     PendingItemReader reader, ImageFetcher fetcher, ByteSources files, InferenceWriter writer) {
        PageExtractor pages = new PageExtractor(def.source().expand(),
                new RenderSpec(def.resize().maxSide(), def.source().pdfDpi(), def.resize().maxPixels()));
        return new StepBuilder("infer-worker", repository)
                .<WorkItem, PreparedItem>chunk(def.run().chunkSize())
                .transactionManager(tm)
                .reader(reader)
                .processor(new PrepareProcessor(fetcher, new ImagePreparer(def.resize()), def.tasks(), MAX_IMAGE_BYTES,
                        files, pages))
                .writer(writer)
                .build();
    }

    @Bean
    @StepScope
    InferenceWriter writer(JobDefinition def, InferenceService inference, WorkItemStore items, ResultStore results,
                           LedgerStore ledger, @Value("#{jobInstanceId}") Long instanceId,
                           @Value("#{jobParameters['" + Attempts.TASK + "']}") String onlyTask) {
        return new InferenceWriter(inference::client, inference::model, inference::ledgerModel, def.tasks(), items, results,
                // retry --task redoes that task on purpose: its earlier answer is not copied back
                def.resize(), def.run().reuse() && onlyTask == null ? ledger : null, instanceId, onlyTask);
    }

    @Bean
    @StepScope
    PendingItemReader reader(JobDefinition def, WorkItemStore items, @Value(WORK_RUN) Long runId,
                             @Value("#{stepExecutionContext['minId']}") Long minId,
                             @Value("#{stepExecutionContext['maxId']}") Long maxId) {
        return new PendingItemReader(items, runId, minId, maxId, Math.max(def.run().chunkSize() * 4, 64));
    }

    @Bean
    Step export(JobDefinition def, RunParameters params, JobRepository repository, PlatformTransactionManager tm,
                CsvExporter exporter, JsonlExporter jsonlExporter) {
        Path csv = def.csv() == null ? null : def.baseDir().resolve(params.render(def.csv(), def.name())).normalize();
        Path jsonl = def.jsonl() == null ? null : def.baseDir().resolve(params.render(def.jsonl(), def.name())).normalize();
        Path documents = def.documents() == null ? null
                : def.baseDir().resolve(params.render(def.documents(), def.name())).normalize();
        return new StepBuilder("export", repository)
                .tasklet(new ExportTasklet(exporter, jsonlExporter, def.taskNames(), csv, jsonl, documents, def.csvRaw()), tm)
                .build();
    }
}
