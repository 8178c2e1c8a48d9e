package io.vlmbatch.ledger;

import io.vlmbatch.run.RunLifecycle;
import io.vlmbatch.run.RunPlan;
import org.springframework.batch.core.BatchStatus;
import org.springframework.batch.core.job.JobExecution;
import org.springframework.batch.core.job.JobInstance;
import org.springframework.batch.core.job.parameters.JobParameters;
import org.springframework.batch.core.job.parameters.JobParametersBuilder;
import org.springframework.batch.core.repository.JobRepository;

/**
 * The one way a finished run is asked again: `vlm-batch retry`, the web UI's "retry failed" and backfill's
 * rerun of completed dates all prepare an attempt here (Attempts: a Batch instance of its own, working on
 * the run's items), then reopen its items and execute it through the run lifecycle.
 */
public final class Retry {
    /** Which items an attempt asks again: the failed ones, one task of every item, or every item. */
    public record Scope(String task, boolean everyItem) {
        public static final Scope FAILED = new Scope(null, false);
        public static final Scope EVERY_ITEM = new Scope(null, true);

        public static Scope task(String name) { return new Scope(name, false); }
    }

    /**
     * A prepared attempt. refusal: why it cannot run (plan is then null or not runnable); resumed: an
     * attempt that had not completed is resumed (its items are already reopened).
     */
    public record Attempt(long runId, int number, JobParameters jobParameters, RunPlan plan, Scope scope, boolean resumed,
                          String refusal) {
        public boolean runs() { return refusal == null && plan != null && plan.runs(); }
    }

    private final JobRepository repository;
    private final RunLifecycle lifecycle;
    private final Attempts attempts;

    public Retry(JobRepository repository, RunLifecycle lifecycle, Attempts attempts) {
        this.repository = repository;
        this.lifecycle = lifecycle;
        this.attempts = attempts;
    }

    /** A new attempt of the completed run identified by {@code base}. */
    public Attempt prepare(String job, JobParameters base, Scope scope) {
        JobInstance instance = repository.getJobInstance(job, base);
        JobExecution last = instance == null ? null : repository.getLastJobExecution(instance);
        if (last == null) return refused(0, scope, "no run to retry; start one with `vlm-batch run`");
        if (last.getStatus() != BatchStatus.COMPLETED) {
            return refused(instance.getInstanceId(), scope, "the run has not completed (execution " + last.getId() + " is "
                    + last.getStatus() + "); finish it with `vlm-batch restart` before retrying its failed items");
        }
        long runId = instance.getInstanceId();
        int number = attempts.next(runId);
        JobParameters jp = parameters(base, runId, number, scope);
        RunPlan plan = lifecycle.prepare(job, jp, RunLifecycle.Intent.START, false);
        return new Attempt(runId, number, jp, plan, scope, false, plan.runs() ? null : plan.message());
    }

    /**
     * For the scheduler, which may launch a rerun more than once (a retry after a failure, a restart from
     * the UI): the newest attempt is resumed when it did not complete, else a new one is prepared.
     */
    public Attempt prepareOrResume(String job, JobParameters base, Scope scope) {
        JobInstance instance = repository.getJobInstance(job, base);
        if (instance != null) {
            int newest = attempts.next(instance.getInstanceId()) - 1;
            if (newest >= 2) {
                JobParameters jp = parameters(base, instance.getInstanceId(), newest, scope);
                RunPlan plan = lifecycle.prepare(job, jp, RunLifecycle.Intent.START_OR_RESUME, false);
                if (plan.action() == RunPlan.Action.REFUSED) {
                    return new Attempt(instance.getInstanceId(), newest, jp, plan, scope, true, plan.message());
                }
                if (plan.runs()) return new Attempt(instance.getInstanceId(), newest, jp, plan, scope, true, null);
            }
        }
        return prepare(job, base, scope);
    }

    /** Puts the attempt's items back to pending (their answers kept in the history); none for a resumed one. */
    public int reopen(Attempt a) {
        if (a.resumed()) return 0;
        return attempts.reopen(a.runId(), a.scope().task(), a.number(), a.scope().everyItem());
    }

    private static JobParameters parameters(JobParameters base, long runId, int number, Scope scope) {
        JobParametersBuilder b = new JobParametersBuilder(base).addLong(Attempts.ATTEMPT, (long) number)
                .addLong(Attempts.RETRY_OF, runId, false);
        if (scope.task() != null) b.addString(Attempts.TASK, scope.task(), false);
        return b.toJobParameters();
    }

    private static Attempt refused(long runId, Scope scope, String why) {
        return new Attempt(runId, 0, null, null, scope, false, why);
    }
}
