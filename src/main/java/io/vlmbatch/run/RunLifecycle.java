package io.vlmbatch.run;

import io.vlmbatch.store.RunStore;
import io.vlmbatch.store.RunStore.Owner;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.time.LocalDateTime;
import org.springframework.batch.core.BatchStatus;
import org.springframework.batch.core.ExitStatus;
import org.springframework.batch.core.job.Job;
import org.springframework.batch.core.job.JobExecution;
import org.springframework.batch.core.job.JobInstance;
import org.springframework.batch.core.job.parameters.JobParameters;
import org.springframework.batch.core.launch.JobOperator;
import org.springframework.batch.core.repository.JobRepository;
import org.springframework.batch.core.step.StepExecution;
import org.springframework.dao.OptimisticLockingFailureException;

/**
 * The one place that starts, restarts, recovers and refuses runs: the CLI (run / restart), the
 * scheduler and, through it, the REST API all go through prepare + execute. The rule: a run whose
 * owner is alive (RunOwnership) is never taken over, unless an operator forces it.
 */
public final class RunLifecycle {
    /** What the caller asks for. */
    public enum Intent {
        /** `run`: a new run; one that exists is done (completed) or refused (resume it with restart). */
        START,
        /** `restart`: resume an existing run. */
        RESUME,
        /** the scheduler: start the run, or resume it when it exists. */
        START_OR_RESUME
    }

    /** Half a second apart: well past the old owner's heartbeat interval (5 s by default). */
    private static final int RECOVER_ATTEMPTS = 40;

    private final JobRepository repository;
    private final JobOperator operator;
    private final RunStore runs;
    private final RunOwnership ownership;

    public RunLifecycle(JobRepository repository, JobOperator operator, RunStore runs, RunOwnership ownership) {
        this.repository = repository;
        this.operator = operator;
        this.runs = runs;
        this.ownership = ownership;
    }

    /** Decides what to do for the run of {@code jobName} identified by {@code jp}. Reads only. */
    public RunPlan prepare(String jobName, JobParameters jp, Intent intent, boolean force) {
        JobInstance instance = repository.getJobInstance(jobName, jp);
        JobExecution last = instance == null ? null : repository.getLastJobExecution(instance);
        if (last == null) {
            return intent == Intent.RESUME ? RunPlan.refused(RunPlan.Refusal.NO_RUN, null, "no run to restart") : RunPlan.start();
        }
        return prepare(last, intent, force);
    }

    /** `restart --execution ID`: resumes the newest execution of that execution's run. */
    public RunPlan prepare(JobExecution named, boolean force) {
        JobExecution newest = repository.getLastJobExecution(named.getJobInstance());
        return prepare(newest == null ? named : newest, Intent.RESUME, force);
    }

    private RunPlan prepare(JobExecution last, Intent intent, boolean force) {
        if (last.getStatus() == BatchStatus.COMPLETED) return RunPlan.done(last);
        if (last.getStatus() == BatchStatus.ABANDONED) {
            return RunPlan.refused(RunPlan.Refusal.ABANDONED, last, "execution " + last.getId() + " was abandoned and cannot be restarted");
        }
        if (intent == Intent.START) {
            return RunPlan.refused(RunPlan.Refusal.EXISTS, last, "the run exists with status " + last.getStatus()
                    + " (execution " + last.getId() + ")");
        }
        if (last.getStatus() == BatchStatus.UNKNOWN) {
            return new RunPlan(RunPlan.Action.RESTART, last, null, false, false, null, List.of("execution " + last.getId()
                    + " ended UNKNOWN (its end could not be written: the database went away); marking it FAILED before restarting"));
        }
        if (!last.isRunning()) return new RunPlan(RunPlan.Action.RESTART, last, null, false, false, null, List.of());
        // Left running: by a live process (refuse), a dead one (recover), or one the operator overrides.
        Optional<Owner> owner = runs.owner(last.getJobInstance().getInstanceId());
        List<String> notes = new ArrayList<>();
        boolean alive = owner.isPresent() && ownership.alive(owner.get());
        if (alive) {
            String who = RunOwnership.describe(owner.get());
            if (!force) {
                return RunPlan.refused(RunPlan.Refusal.OWNER_ALIVE, last, "execution " + last.getId()
                        + " is still running (" + who + "); stop it before restarting, or override with restart --force");
            }
            notes.add("--force: taking execution " + last.getId() + " over from its live owner (" + who
                    + "); it stops at its next heartbeat, else it is marked FAILED after " + ownership.staleAfter().toSeconds() + " s");
        } else {
            notes.add("execution " + last.getId() + " was left " + last.getStatus() + " by a process that is gone"
                    + owner.map(o -> " (" + RunOwnership.describe(o) + ")").orElse("") + "; marking it FAILED before restarting");
        }
        return new RunPlan(RunPlan.Action.RESTART, last, owner.orElse(null), true, alive, null, List.copyOf(notes));
    }

    /**
     * A live owner that lost its run stops its execution at its next heartbeat and chunk boundary;
     * waiting for that (at most the stale timeout) spares both processes writing to one execution.
     */
    private JobExecution awaitStop(JobExecution last) throws InterruptedException {
        long deadline = System.nanoTime() + ownership.staleAfter().toNanos();
        while (last.isRunning() && System.nanoTime() < deadline) {
            Thread.sleep(500);
            last = repository.getLastJobExecution(last.getJobInstance());
        }
        return last;
    }

    /**
     * Marks a run's execution FAILED. After a forced takeover its old owner may still be writing to it
     * until its next heartbeat tells it to stop; Batch's version check then refuses our update, so it is
     * tried again on a fresh copy (recover skips the steps it already marked).
     */
    private JobExecution recover(JobExecution last) throws InterruptedException {
        for (int attempt = 1; ; attempt++) {
            try {
                return operator.recover(last);
            } catch (OptimisticLockingFailureException e) {
                if (attempt == RECOVER_ATTEMPTS) throw e;
                Thread.sleep(500);
                last = repository.getLastJobExecution(last.getJobInstance());
            }
        }
    }

    /**
     * UNKNOWN is how Spring Batch ends an execution whose chunk transaction it could not finish, the
     * database having gone away, and it refuses to restart one. Here that is safe: a chunk's results and
     * item statuses commit or vanish together in PostgreSQL's transaction, and a restart asks again only
     * for the items the ledger does not hold as done. So the execution and its UNKNOWN steps (partitions
     * included, and those left STARTED) are marked FAILED, which Batch restarts.
     */
    private void failUnknown(JobExecution last) {
        for (StepExecution step : last.getStepExecutions()) {
            // a partition whose end could not be written either is still STARTED, which Batch takes for running
            if (step.getStatus() != BatchStatus.UNKNOWN && !step.getStatus().isRunning()) continue;
            step.setStatus(BatchStatus.FAILED);
            step.setExitStatus(ExitStatus.FAILED.addExitDescription("UNKNOWN at its end (the database went away); marked FAILED to restart"));
            if (step.getEndTime() == null) step.setEndTime(LocalDateTime.now());
            repository.update(step);
        }
        last.setStatus(BatchStatus.FAILED);
        if (last.getEndTime() == null) last.setEndTime(LocalDateTime.now());
        repository.update(last);
    }

    /**
     * Executes a START or RESTART plan on this thread until the execution ends. Taking a run over is
     * a compare-and-set on its owner, so of two processes recovering one dead run only one goes on.
     * For RESTART, {@code jp} must identify the previous execution's run (RunKeys.relaunchParameters).
     */
    public JobExecution execute(RunPlan plan, Job job, JobParameters jp) throws Exception {
        return switch (plan.action()) {
            case START -> operator.start(job, jp);
            case RESTART -> {
                JobExecution last = plan.previous();
                if (plan.recover()) {
                    long runId = last.getJobInstance().getInstanceId();
                    if (plan.takeOverFrom() != null
                            && !runs.takeOver(runId, plan.takeOverFrom(), ownership.host(), ownership.pid())) {
                        // it finished, released the run or another process took it over since prepare
                        throw new RunRefusedException("the owner of execution " + last.getId()
                                + " changed meanwhile; run the command again to see where the run stands");
                    }
                    if (plan.forced()) last = awaitStop(last);
                    if (last.isRunning()) last = recover(last);
                }
                if (last.getStatus() == BatchStatus.UNKNOWN) failUnknown(last);
                // start with the caller's parameters (the run's identity with the job file as given now) rather
                // than restart(last), which reuses the old execution's and looks the job up by name
                yield operator.start(job, jp);
            }
            default -> throw new IllegalStateException("nothing to execute: " + plan.action());
        };
    }
}
