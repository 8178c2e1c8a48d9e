package io.vlmbatch.cli;

import io.vlmbatch.config.PipelineJobs;
import io.vlmbatch.inference.InferenceService;
import io.vlmbatch.job.JobDefinition;
import io.vlmbatch.job.RunParameters;
import io.vlmbatch.ledger.Attempts;
import io.vlmbatch.ledger.Retry;
import io.vlmbatch.run.RunInference;
import io.vlmbatch.run.RunKeys;
import io.vlmbatch.run.RunLifecycle;
import io.vlmbatch.run.RunPlan;
import io.vlmbatch.store.ItemCounts;
import io.vlmbatch.store.WorkItemStore;
import java.io.PrintStream;
import org.springframework.batch.core.BatchStatus;
import org.springframework.batch.core.job.JobExecution;
import org.springframework.batch.core.job.parameters.JobParameters;
import org.springframework.batch.core.repository.JobRepository;

/**
 * `vlm-batch retry JOB --date D [--task NAME] [--set key=value]...`: a new attempt over the failed items
 * of that run (or one task of every item), with the job file as overridden. The attempt is a run of its
 * own for the lifecycle (started, restarted, recovered like any), working on the retried run's items, so
 * the run's CSV and `export` show the latest answers; the answers it replaces go to vlm_result_history.
 */
public class RetryCommand {
    private final JobDefinition def;
    private final RunParameters params;
    private final JobRepository repository;
    private final RunLifecycle lifecycle;
    private final PipelineJobs jobs;
    private final RunInference inference;
    private final Attempts attempts;
    private final WorkItemStore items;
    private final PrintStream out = System.out;

    public RetryCommand(JobDefinition def, RunParameters params, JobRepository repository, RunLifecycle lifecycle, PipelineJobs jobs,
                        RunInference inference, Attempts attempts, WorkItemStore items) {
        this.def = def;
        this.params = params;
        this.repository = repository;
        this.lifecycle = lifecycle;
        this.jobs = jobs;
        this.inference = inference;
        this.attempts = attempts;
        this.items = items;
    }

    public int execute(Invocation inv) throws Exception {
        String what = "job " + def.name() + " for " + params.logicalDate() + (params.params().isEmpty() ? "" : " [" + params.paramsKey() + "]");
        // the attempt's job file is the run's with --set applied: job.sets carries them, so a restart of
        // the attempt reads the same
        Retry retry = new Retry(repository, lifecycle, attempts);
        Retry.Attempt a = retry.prepare(def.name(), RunKeys.launchParameters(def, inv.sets(), params),
                inv.task() == null ? Retry.Scope.FAILED : Retry.Scope.task(inv.task()));
        if (!a.runs()) {
            if (a.runId() == 0) System.err.println("no run of " + what + " to retry; start one with `vlm-batch run`");
            else System.err.println(what + (a.number() > 0 ? ", attempt " + a.number() : "") + ": " + a.refusal());
            return 1;
        }
        long runId = a.runId();
        int attempt = a.number();
        JobParameters jp = a.jobParameters();
        // before any item is reopened: a missing server changes nothing
        InferenceService service = inference.start(def.name(), jp, def.inference());
        try {
            return attempt(inv, what, runId, attempt, jp, a.plan(), service, retry.reopen(a));
        } finally {
            inference.release(def.name(), jp);
        }
    }

    private int attempt(Invocation inv, String what, long runId, int attempt, JobParameters jp, RunPlan plan,
                        InferenceService service, int reopened) throws Exception {
        out.println("retrying " + what + ": attempt " + attempt + " asks " + reopened + " item" + (reopened == 1 ? "" : "s") + " again"
                + (inv.task() == null ? " (the failed ones)" : " for task " + inv.task())
                + (inv.sets().isEmpty() ? "" : " with " + String.join(", ", inv.sets())));
        JobExecution execution = lifecycle.execute(plan, jobs.jobFor(def.name()), jp);
        String summary = service.summary();
        if (summary != null) out.println("inference: " + summary);
        ItemCounts c = items.counts(runId);
        out.printf("%s, attempt %d: %s (execution %d): %d images, %d done, %d failed, %d pending%n", what, attempt,
                execution.getStatus(), execution.getId(), c.total(), c.done(), c.failed(), c.pending());
        if (execution.getStatus() == BatchStatus.COMPLETED) return 0;
        io.vlmbatch.run.Errors.distinctCauses(execution.getAllFailureExceptions()).forEach(cause -> System.err.println("error: " + cause));
        return 1;
    }
}
