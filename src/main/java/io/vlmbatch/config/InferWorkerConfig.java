package io.vlmbatch.config;

import io.vlmbatch.archive.PageExtractor;
import io.vlmbatch.batch.InferenceWriter;
import io.vlmbatch.batch.PendingItemReader;
import io.vlmbatch.batch.PrepareProcessor;
import io.vlmbatch.batch.PreparedItem;
import io.vlmbatch.image.ImagePreparer;
import io.vlmbatch.inference.InferenceService;
import io.vlmbatch.job.JobDefinition;
import io.vlmbatch.ledger.Attempts;
import io.vlmbatch.ledger.LedgerStore;
import io.vlmbatch.run.RunInference;
import io.vlmbatch.run.RunKeys;
import io.vlmbatch.source.ByteSources;
import io.vlmbatch.source.ImageFetcher;
import io.vlmbatch.source.Sources;
import io.vlmbatch.store.ResultStore;
import io.vlmbatch.store.WorkItem;
import io.vlmbatch.store.WorkItemStore;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.springframework.batch.core.configuration.annotation.StepScope;
import org.springframework.batch.core.job.JobInterruptedException;
import org.springframework.batch.core.repository.JobRepository;
import org.springframework.batch.core.step.Step;
import org.springframework.batch.core.step.StepExecution;
import org.springframework.batch.core.step.builder.StepBuilder;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;
import org.springframework.context.annotation.Scope;
import org.springframework.transaction.PlatformTransactionManager;

/**
 * The `infer-worker` step (one id range of a run's items: read, prepare, ask, write) and everything it
 * needs, resolved from the step execution's JobParameters alone, so that a process with no job file on
 * its command line (a remote partition worker) can execute it. Needs the database beans (CoreConfig).
 */
@Configuration(proxyBeanMethods = false)
@Import(RunInputsConfig.class)
public class InferWorkerConfig {
    /** Bytes read per image before giving up on it: far above any sane photo, below a memory problem. */
    public static final long MAX_IMAGE_BYTES = 256L * 1024 * 1024;
    public static final String STEP = "infer-worker";

    /** The run whose items a step works on: the retried run for a retry attempt (Attempts), else its own. */
    static final String WORK_RUN = "#{jobParameters['" + Attempts.RETRY_OF + "'] ?: jobInstanceId}";

    /**
     * The chunk size is the job file's, so the step is built per size on first use; the built steps share
     * the step-scoped reader, processor and writer, which bind to each step execution.
     */
    @Bean(name = {"inferWorker", STEP})
    Step inferWorker(JobRepository repository, PlatformTransactionManager tm, PendingItemReader reader,
                     PrepareProcessor processor, InferenceWriter writer) {
        Map<Integer, Step> bySize = new ConcurrentHashMap<>();
        return new Step() {
            @Override
            public String getName() {
                return STEP;
            }

            @Override
            public void execute(StepExecution execution) throws JobInterruptedException {
                int size = RunKeys.definition(execution.getJobExecution().getJobParameters()).run().chunkSize();
                bySize.computeIfAbsent(size, n -> new StepBuilder(STEP, repository)
                        .<WorkItem, PreparedItem>chunk(n)
                        .transactionManager(tm)
                        .reader(reader)
                        .processor(processor)
                        .writer(writer)
                        .build()).execute(execution);
            }
        };
    }

    @Bean(destroyMethod = "close")
    @Scope("job")
    ImageFetcher imageFetcher(JobDefinition def) {
        return Sources.fetcher(def.source().s3Settings());
    }

    /** Opens listed files for pages and archive members (S3 by ranged reads). */
    @Bean(destroyMethod = "close")
    @Scope("job")
    ByteSources byteSources(JobDefinition def) {
        return ByteSources.of(def.source().s3Settings());
    }

    @Bean
    @StepScope
    PendingItemReader reader(JobDefinition def, WorkItemStore items, @Value(WORK_RUN) Long runId,
                             @Value("#{stepExecutionContext['minId']}") Long minId,
                             @Value("#{stepExecutionContext['maxId']}") Long maxId) {
        return new PendingItemReader(items, runId, minId, maxId, Math.max(def.run().chunkSize() * 4, 64));
    }

    @Bean
    @StepScope
    PrepareProcessor processor(JobDefinition def, ImageFetcher fetcher, ByteSources files) {
        PageExtractor pages = Sources.pages(def.source(), def.resize());
        return new PrepareProcessor(fetcher, new ImagePreparer(def.resize()), def.tasks(), MAX_IMAGE_BYTES, files, pages);
    }

    @Bean
    @StepScope
    InferenceWriter writer(JobDefinition def, RunInference runInference, WorkItemStore items, ResultStore results,
                           LedgerStore ledger, @Value("#{stepExecution}") StepExecution step,
                           @Value("#{jobParameters['" + Attempts.TASK + "']}") String onlyTask) throws Exception {
        InferenceService inference = runInference.forRun(step.getJobExecution(), def.inference());
        return new InferenceWriter(inference::client, inference::model, inference::ledgerModel, def.tasks(), items, results,
                // retry --task redoes that task on purpose: its earlier answer is not copied back
                def.resize(), def.run().reuse() && onlyTask == null ? ledger : null,
                step.getJobExecution().getJobInstance().getInstanceId(), onlyTask);
    }
}
