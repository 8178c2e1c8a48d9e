package io.vlmbatch.config;

import io.vlmbatch.batch.AllItemsFailedCheck;
import io.vlmbatch.batch.DiscoverTasklet;
import io.vlmbatch.batch.ExportTasklet;
import io.vlmbatch.batch.IdRangePartitioner;
import io.vlmbatch.job.JobDefinition;
import io.vlmbatch.job.RunParameters;
import io.vlmbatch.ledger.Attempts;
import io.vlmbatch.ledger.LedgerStore;
import io.vlmbatch.ledger.RunEndpointListener;
import io.vlmbatch.run.Heartbeat;
import io.vlmbatch.run.RunInference;
import io.vlmbatch.run.RunLifecycle;
import io.vlmbatch.run.RunOwnerListener;
import io.vlmbatch.run.RunOwnership;
import io.vlmbatch.source.SourceSpec;
import io.vlmbatch.source.Sources;
import io.vlmbatch.store.CsvExporter;
import io.vlmbatch.store.JsonlExporter;
import io.vlmbatch.store.RunStore;
import io.vlmbatch.store.WorkItemStore;
import java.nio.file.Path;
import java.util.List;
import org.springframework.batch.core.configuration.JobRegistry;
import org.springframework.batch.core.configuration.annotation.JobScope;
import org.springframework.batch.core.configuration.annotation.StepScope;
import org.springframework.batch.core.job.JobExecution;
import org.springframework.batch.core.launch.JobOperator;
import org.springframework.batch.core.listener.JobExecutionListener;
import org.springframework.batch.core.partition.PartitionHandler;
import org.springframework.batch.core.partition.support.TaskExecutorPartitionHandler;
import org.springframework.batch.core.repository.JobRepository;
import org.springframework.batch.core.step.Step;
import org.springframework.batch.core.step.builder.StepBuilder;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;
import org.springframework.core.task.SimpleAsyncTaskExecutor;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.transaction.PlatformTransactionManager;
import org.springframework.transaction.support.TransactionTemplate;

/**
 * The pipeline: discover → infer (partitioned by id range) → export, one Job per job file name
 * (PipelineJobs) over shared steps. What the steps do comes from the run's JobParameters (job.file,
 * date, params: RunKeys), bound late in job- and step-scoped beans, so one context runs any job file.
 */
@Configuration(proxyBeanMethods = false)
@Import({InferWorkerConfig.class, RemotePartitioningConfig.class})
public class PipelineConfig {

    /** Starts, resumes and refuses runs of the job (the one lifecycle, with this context's JobOperator). */
    @Bean
    RunLifecycle runLifecycle(JobRepository repository, JobOperator operator, RunStore runs, RunOwnership ownership) {
        return new RunLifecycle(repository, operator, runs, ownership);
    }

    @Bean
    Attempts attempts(JdbcTemplate jdbc, PlatformTransactionManager tm) {
        return new Attempts(jdbc, new TransactionTemplate(tm));
    }

    @Bean
    PipelineJobs pipelineJobs(JobRepository repository, JobRegistry registry, RunStore runs, RunOwnership ownership,
                              Heartbeat heartbeat, WorkItemStore items, RunEndpointListener endpointListener,
                              RunInference inference, Step discover, Step infer, Step export) {
        JobExecutionListener closeInference = new JobExecutionListener() {
            @Override
            public void afterJob(JobExecution execution) {
                inference.jobEnded(execution);
            }
        };
        return new PipelineJobs(repository, registry,
                List.of(new RunOwnerListener(runs, ownership, heartbeat), new AllItemsFailedCheck(items), endpointListener, closeInference),
                List.of(discover, infer, export));
    }

    @Bean
    @JobScope
    RunEndpointListener runEndpointListener(JobDefinition def, LedgerStore ledger, RunInference inference,
                                            @Value("#{jobExecution}") JobExecution execution) {
        return new RunEndpointListener(ledger, RunEndpointListener.endpointKey(def.inference()), () -> {
            try {
                return inference.forRun(execution, def.inference()).ledgerModel();
            } catch (RuntimeException e) {
                throw e;
            } catch (Exception e) {
                throw new IllegalStateException(e.getMessage(), e);
            }
        });
    }

    /** The job's source with this run's {{ ds }}, {{ params.x }}... filled in (the run and `plan` list the same). */
    public static SourceSpec renderedSource(JobDefinition def, RunParameters params) {
        SourceSpec s = def.source();
        return s.withLocations(params.render(s.folder(), def.name()), params.render(s.manifest(), def.name()),
                params.render(s.s3(), def.name()));
    }

    @Bean
    Step discover(JobRepository repository, PlatformTransactionManager tm, DiscoverTasklet discoverTasklet) {
        return new StepBuilder("discover", repository).tasklet(discoverTasklet, tm).build();
    }

    @Bean
    @StepScope
    DiscoverTasklet discoverTasklet(JobDefinition def, RunParameters params, RunStore runs, WorkItemStore items) {
        SourceSpec rendered = renderedSource(def, params);
        return new DiscoverTasklet(() -> Sources.open(rendered, def.baseDir()), runs, items);
    }

    @Bean
    Step infer(JobRepository repository, IdRangePartitioner partitioner, PartitionHandler inferPartitionHandler) {
        return new StepBuilder("infer", repository)
                .partitioner(InferWorkerConfig.STEP, partitioner)
                .partitionHandler(inferPartitionHandler)
                .build();
    }

    /**
     * Runs the job file's run.partitions id ranges on as many local threads, or with run.workers: remote
     * sends them to `vlm-batch worker` processes through RabbitMQ (RemotePartitioningConfig). Job-scoped
     * for the grid size and the choice.
     */
    @Bean
    @JobScope
    PartitionHandler inferPartitionHandler(JobDefinition def, Step inferWorker, RemotePartitioningConfig.RemotePartitions remote)
            throws Exception {
        if (def.run().remote()) return remote.handler(def);
        SimpleAsyncTaskExecutor threads = new SimpleAsyncTaskExecutor("infer-");
        threads.setConcurrencyLimit(def.run().partitions());
        TaskExecutorPartitionHandler handler = new TaskExecutorPartitionHandler();
        handler.setStep(inferWorker);
        handler.setGridSize(def.run().partitions());
        handler.setTaskExecutor(threads);
        return handler;
    }

    @Bean
    @StepScope
    IdRangePartitioner partitioner(WorkItemStore items, @Value(InferWorkerConfig.WORK_RUN) Long runId) {
        return new IdRangePartitioner(items, runId);
    }

    @Bean
    Step export(JobRepository repository, PlatformTransactionManager tm, ExportTasklet exportTasklet) {
        return new StepBuilder("export", repository).tasklet(exportTasklet, tm).build();
    }

    @Bean
    @StepScope
    ExportTasklet exportTasklet(JobDefinition def, RunParameters params, CsvExporter exporter, JsonlExporter jsonlExporter) {
        Path csv = def.csv() == null ? null : def.baseDir().resolve(params.render(def.csv(), def.name())).normalize();
        Path jsonl = def.jsonl() == null ? null : def.baseDir().resolve(params.render(def.jsonl(), def.name())).normalize();
        Path documents = def.documents() == null ? null
                : def.baseDir().resolve(params.render(def.documents(), def.name())).normalize();
        return new ExportTasklet(exporter, jsonlExporter, def.taskNames(), csv, jsonl, documents, def.csvRaw());
    }
}
