package io.vlmbatch.schedule;

import io.vlmbatch.config.BatchConfig;
import io.vlmbatch.config.PipelineConfig;
import io.vlmbatch.inference.InferenceService;
import io.vlmbatch.job.JobDefinition;
import io.vlmbatch.job.RunParameters;
import io.vlmbatch.ledger.Attempts;
import io.vlmbatch.ledger.Retry;
import io.vlmbatch.run.Errors;
import io.vlmbatch.run.RunKeys;
import io.vlmbatch.run.RunLifecycle;
import io.vlmbatch.run.RunPlan;
import io.vlmbatch.run.RunRefusedException;
import java.nio.file.Path;
import java.time.LocalDate;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.batch.core.job.Job;
import org.springframework.batch.core.job.JobExecution;
import org.springframework.batch.core.job.parameters.JobParameters;
import org.springframework.batch.core.launch.JobOperator;
import org.springframework.batch.core.repository.JobRepository;
import org.springframework.context.ApplicationContext;
import org.springframework.context.annotation.AnnotationConfigApplicationContext;

/**
 * Runs a job the way `vlm-batch run` / `restart` do, inside the serve process: each run gets a child
 * Spring context holding the pipeline's own configuration (BatchConfig + PipelineConfig, with the job
 * definition and run parameters registered as the CLI registers them), on top of the serve context's
 * database. The child has its own JobOperator whose registry holds only this run's Job, so two runs of
 * one job can execute side by side, and restart finds the right job.
 *
 * Starting, resuming and refusing follow RunLifecycle, as for `vlm-batch run` / `restart`: a run whose
 * Batch instance exists already is resumed, unless its owner is alive (wherever it runs).
 */
public final class BatchRunLauncher implements RunLauncher {
    private static final Logger log = LoggerFactory.getLogger(BatchRunLauncher.class);

    private final ApplicationContext parent;
    private final Path modelDir;
    private final Map<String, AnnotationConfigApplicationContext> running = new ConcurrentHashMap<>();

    /** @param modelDir serve's --model (for jobs with the embedded inference server), or null */
    public BatchRunLauncher(ApplicationContext parent, Path modelDir) {
        this.parent = parent;
        this.modelDir = modelDir;
    }

    @Override
    public Handle launch(JobDefinition def, ScheduledRun run, LocalDate previousLogicalDate, Consumer<RunOutcome> done) {
        RunParameters params = new RunParameters(run.logicalDate(), run.paramMap(), previousLogicalDate);
        AnnotationConfigApplicationContext ctx = new AnnotationConfigApplicationContext();
        ctx.setParent(parent);
        ctx.setDisplayName("run " + def.name() + " " + run.logicalDate());
        ctx.getBeanFactory().registerSingleton("jobDefinition", def);
        ctx.getBeanFactory().registerSingleton("runParameters", params);
        ctx.getBeanFactory().registerSingleton("modelOption", new PipelineConfig.ModelOption(modelDir));
        // Batch's configuration looks these up by name in its own context only; registered as plain
        // singletons they are shared, not owned: closing the run's context leaves them open.
        ctx.getBeanFactory().registerSingleton("dataSource", parent.getBean("dataSource"));
        ctx.getBeanFactory().registerSingleton("transactionManager", parent.getBean("transactionManager"));
        ctx.register(BatchConfig.class, PipelineConfig.class);
        String key = def.name() + "@" + run.intervalStart();
        JobParameters base = RunKeys.jobParameters(params);
        // the parameters of what executes: an attempt's (set once prepared) for a rerun, else the run's
        java.util.concurrent.atomic.AtomicReference<JobParameters> executing = new java.util.concurrent.atomic.AtomicReference<>(base);
        Thread.ofPlatform().name("run-" + def.name() + "-" + run.logicalDate()).start(() -> {
            RunOutcome outcome;
            try {
                running.put(key, ctx);
                ctx.refresh();
                outcome = run.rerun() == null ? execute(ctx, def, base) : rerun(ctx, def, base, run.rerun(), executing);
            } catch (Exception | LinkageError e) {
                log.warn("run of {} for {} failed: {}", def.name(), run.logicalDate(), Errors.rootMessage(e));
                outcome = RunOutcome.failed(Errors.rootMessage(e));
            } finally {
                running.remove(key);
                try {
                    ctx.close();
                } catch (RuntimeException e) {
                    log.warn("closing the run context of {}: {}", def.name(), e.toString());
                }
            }
            done.accept(outcome);
        });
        return () -> {
            try {
                if (!ctx.isActive()) return;
                JobRepository repo = ctx.getBean(JobRepository.class);
                JobExecution last = repo.getLastJobExecution(def.name(), executing.get());
                if (last != null && last.isRunning()) ctx.getBean(JobOperator.class).stop(last);
            } catch (Exception e) {
                log.warn("could not stop {} for {}: {}", def.name(), run.logicalDate(), e.toString());
            }
        };
    }

    private RunOutcome execute(AnnotationConfigApplicationContext ctx, JobDefinition def, JobParameters jp) throws Exception {
        RunLifecycle lifecycle = ctx.getBean(RunLifecycle.class);
        RunPlan plan = lifecycle.prepare(def.name(), jp, RunLifecycle.Intent.START_OR_RESUME, false);
        switch (plan.action()) {
            case ALREADY_DONE -> {
                return RunOutcome.success();
            }
            case REFUSED -> {
                return RunOutcome.failed(plan.message());
            }
            default -> plan.notes().forEach(n -> log.warn("{}: {}", def.name(), n));
        }
        ctx.getBean(InferenceService.class).start();
        JobExecution execution;
        try {
            execution = lifecycle.execute(plan, ctx.getBean(Job.class), jp);
        } catch (RunRefusedException e) {
            return RunOutcome.failed(e.getMessage());
        }
        return outcome(execution);
    }

    /** A new attempt over the run's failed items or every item (Retry), or the resumption of one that did not complete. */
    private RunOutcome rerun(AnnotationConfigApplicationContext ctx, JobDefinition def, JobParameters base, String which,
                             java.util.concurrent.atomic.AtomicReference<JobParameters> executing) throws Exception {
        Retry retry = new Retry(ctx.getBean(JobRepository.class), ctx.getBean(RunLifecycle.class), ctx.getBean(Attempts.class));
        Retry.Attempt attempt = retry.prepareOrResume(def.name(), base, which.equals("all") ? Retry.Scope.EVERY_ITEM : Retry.Scope.FAILED);
        if (!attempt.runs()) return RunOutcome.failed(attempt.refusal());
        attempt.plan().notes().forEach(n -> log.warn("{}: {}", def.name(), n));
        ctx.getBean(InferenceService.class).start(); // before any item is reopened: a missing server changes nothing
        int reopened = retry.reopen(attempt);
        log.info("{}: attempt {} of the run for {} {} ({} item(s) reopened)", def.name(), attempt.number(),
                RunKeys.logicalDate(base), attempt.resumed() ? "resumed" : "started", reopened);
        executing.set(attempt.jobParameters());
        try {
            return outcome(ctx.getBean(RunLifecycle.class).execute(attempt.plan(), ctx.getBean(Job.class), attempt.jobParameters()));
        } catch (RunRefusedException e) {
            return RunOutcome.failed(e.getMessage());
        }
    }

    private static RunOutcome outcome(JobExecution execution) {
        return switch (execution.getStatus()) {
            case COMPLETED -> RunOutcome.success();
            case STOPPED, STOPPING -> RunOutcome.stopped();
            default -> RunOutcome.failed(execution.getAllFailureExceptions().stream().map(Errors::rootMessage)
                    .findFirst().orElse("the run ended " + execution.getStatus()));
        };
    }

    /** Inference services of the runs executing now (for metrics). */
    public java.util.List<InferenceService> inferenceServices() {
        return running.values().stream().filter(AnnotationConfigApplicationContext::isActive)
                .flatMap(c -> {
                    try {
                        return java.util.stream.Stream.of(c.getBean(InferenceService.class));
                    } catch (RuntimeException e) {
                        return java.util.stream.Stream.empty();
                    }
                }).toList();
    }
}
