package io.vlmbatch.run;

import io.vlmbatch.store.RunStore.Owner;
import java.util.List;
import org.springframework.batch.core.job.JobExecution;

/**
 * What RunLifecycle decided for one request, before anything is executed; the caller prints the notes
 * and, for START or RESTART, starts what the run needs (the inference server) and calls execute.
 *
 * @param previous the run's newest execution (null for START)
 * @param takeOverFrom for RESTART of an execution left running: the owner recorded for it (null: none)
 * @param recover whether the previous execution was left running (its process is gone, or is overridden)
 * @param forced whether its owner is alive and overridden (restart --force)
 * @param refusal why nothing will run (REFUSED only)
 * @param notes what the caller should tell the user (takeover, recovery, refusal)
 */
public record RunPlan(Action action, JobExecution previous, Owner takeOverFrom, boolean recover, boolean forced,
                      Refusal refusal, List<String> notes) {
    public enum Action { START, RESTART, ALREADY_DONE, REFUSED }

    public enum Refusal {
        /** `run` of a run that exists and did not complete: it is resumed with restart. */
        EXISTS,
        /** restart of a run that never started. */
        NO_RUN,
        ABANDONED,
        /** its owner is alive (and no --force). */
        OWNER_ALIVE
    }

    static RunPlan start() {
        return new RunPlan(Action.START, null, null, false, false, null, List.of());
    }

    static RunPlan done(JobExecution last) {
        return new RunPlan(Action.ALREADY_DONE, last, null, false, false, null, List.of());
    }

    static RunPlan refused(Refusal why, JobExecution last, String note) {
        return new RunPlan(Action.REFUSED, last, null, false, false, why, List.of(note));
    }

    public boolean runs() {
        return action == Action.START || action == Action.RESTART;
    }

    public String message() {
        return String.join("; ", notes);
    }
}
