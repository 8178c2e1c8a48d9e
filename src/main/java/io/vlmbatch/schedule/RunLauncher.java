package io.vlmbatch.schedule;

import io.vlmbatch.job.JobDefinition;
import java.time.LocalDate;
import java.util.function.Consumer;

/**
 * Executes one run of a job for the scheduler, off the caller's thread, and reports how it ended
 * through {@code done} (exactly once). A run whose Spring Batch instance already exists is resumed.
 */
public interface RunLauncher {
    interface Handle {
        /** Asks the run to stop at its next chunk boundary; it then reports STOPPED. */
        void stop();
    }

    /** @param previousLogicalDate the previous interval's logical date ({{ prev_ds }}), or null for "the day before" */
    Handle launch(JobDefinition job, ScheduledRun run, LocalDate previousLogicalDate, Consumer<RunOutcome> done);
}
