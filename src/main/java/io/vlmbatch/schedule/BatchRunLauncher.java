package io.vlmbatch.schedule;

import io.vlmbatch.config.PipelineJobs;
import io.vlmbatch.inference.InferenceService;
import io.vlmbatch.job.JobDefinition;
import io.vlmbatch.job.RunParameters;
import io.vlmbatch.ledger.Retry;
import io.vlmbatch.run.Errors;
import io.vlmbatch.run.RunInference;
import io.vlmbatch.run.RunKeys;
import io.vlmbatch.run.RunLifecycle;
import io.vlmbatch.run.RunPlan;
import io.vlmbatch.run.RunRefusedException;
import java.time.LocalDate;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.batch.core.job.JobExecution;
import org.springframework.batch.core.job.parameters.JobParameters;
import org.springframework.batch.core.launch.JobOperator;
import org.springframework.batch.core.repository.JobRepository;

/**
 * Runs a job the way `vlm-batch run` / `restart` do, inside the serve process and its one context: the
 * run's job file and identity travel in its JobParameters (RunKeys), and the pipeline's job- and
 * step-scoped beans bind to them, so runs of any job, or two runs of one job, execute side by side.
 *
 * Starting, resuming and refusing follow RunLifecycle, as for `vlm-batch run` / `restart`: a run whose
 * Batch instance exists already is resumed, unless its owner is alive (wherever it runs).
 */
public final class BatchRunLauncher implements RunLauncher {
    private static final Logger log = LoggerFactory.getLogger(BatchRunLauncher.class);

    private final RunLifecycle lifecycle;
    private final PipelineJobs jobs;
    private final RunInference inference;
    private final JobRepository repository;
    private final JobOperator operator;
    private final Retry retry;

    /** @param retry how a rerun (a row whose rerun is set: "Retry failed", backfill's --reprocess completed) is prepared */
    public BatchRunLauncher(RunLifecycle lifecycle, PipelineJobs jobs, RunInference inference, JobRepository repository,
                            JobOperator operator, Retry retry) {
        this.lifecycle = lifecycle;
        this.jobs = jobs;
        this.inference = inference;
        this.repository = repository;
        this.operator = operator;
        this.retry = retry;
    }

    @Override
    public Handle launch(JobDefinition def, ScheduledRun run, LocalDate previousLogicalDate, Consumer<RunOutcome> done) {
        RunParameters params = new RunParameters(run.logicalDate(), run.paramMap(), previousLogicalDate);
        JobParameters jp = RunKeys.launchParameters(def, List.of(), params);
        // the parameters of what executes: an attempt's (set once prepared) for a rerun, else the run's
        AtomicReference<JobParameters> executing = new AtomicReference<>(jp);
        Thread.ofPlatform().name("run-" + def.name() + "-" + run.logicalDate()).start(() -> {
            RunOutcome outcome;
            try {
                outcome = run.rerun() == null ? execute(def, jp) : rerun(def, jp, run.rerun(), executing);
            } catch (Exception | LinkageError e) {
                log.warn("run of {} for {} failed: {}", def.name(), run.logicalDate(), Errors.rootMessage(e));
                outcome = RunOutcome.failed(Errors.rootMessage(e));
            }
            done.accept(outcome);
        });
        return () -> {
            try {
                JobExecution last = repository.getLastJobExecution(def.name(), executing.get());
                if (last != null && last.isRunning()) operator.stop(last);
            } catch (Exception e) {
                log.warn("could not stop {} for {}: {}", def.name(), run.logicalDate(), e.toString());
            }
        };
    }

    private RunOutcome execute(JobDefinition def, JobParameters launch) throws Exception {
        RunPlan plan = lifecycle.prepare(def.name(), launch, RunLifecycle.Intent.START_OR_RESUME, false);
        switch (plan.action()) {
            case ALREADY_DONE -> {
                return RunOutcome.success();
            }
            case REFUSED -> {
                return RunOutcome.failed(plan.message());
            }
            default -> plan.notes().forEach(n -> log.warn("{}: {}", def.name(), n));
        }
        // a resumed run keeps its own parameters; its job file is read anew
        JobParameters jp = plan.action() == RunPlan.Action.RESTART
                ? RunKeys.relaunchParameters(plan.previous().getJobParameters(), def.file()) : launch;
        inference.start(def.name(), jp, def.inference());
        JobExecution execution;
        try {
            execution = lifecycle.execute(plan, jobs.jobFor(def.name()), jp);
        } catch (RunRefusedException e) {
            return RunOutcome.failed(e.getMessage());
        } finally {
            inference.release(def.name(), jp);
        }
        return outcome(execution);
    }

    /** A new attempt over the run's failed items or every item (Retry), or the resumption of one that did not complete. */
    private RunOutcome rerun(JobDefinition def, JobParameters launch, String which, AtomicReference<JobParameters> executing)
            throws Exception {
        Retry.Attempt attempt = retry.prepareOrResume(def.name(), launch, which.equals("all") ? Retry.Scope.EVERY_ITEM : Retry.Scope.FAILED);
        if (!attempt.runs()) return RunOutcome.failed(attempt.refusal());
        attempt.plan().notes().forEach(n -> log.warn("{}: {}", def.name(), n));
        JobParameters jp = attempt.plan().action() == RunPlan.Action.RESTART
                ? RunKeys.relaunchParameters(attempt.plan().previous().getJobParameters(), def.file()) : attempt.jobParameters();
        executing.set(jp);
        inference.start(def.name(), jp, def.inference()); // before any item is reopened: a missing server changes nothing
        try {
            int reopened = retry.reopen(attempt);
            log.info("{}: attempt {} of the run for {} {} ({} item(s) reopened)", def.name(), attempt.number(),
                    RunKeys.logicalDate(launch), attempt.resumed() ? "resumed" : "started", reopened);
            return outcome(lifecycle.execute(attempt.plan(), jobs.jobFor(def.name()), jp));
        } catch (RunRefusedException e) {
            return RunOutcome.failed(e.getMessage());
        } finally {
            inference.release(def.name(), jp);
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
    public List<InferenceService> inferenceServices() {
        return inference.running();
    }
}
