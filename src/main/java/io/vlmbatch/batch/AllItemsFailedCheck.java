package io.vlmbatch.batch;

import io.vlmbatch.store.ItemCounts;
import io.vlmbatch.store.WorkItemStore;
import org.springframework.batch.core.BatchStatus;
import org.springframework.batch.core.ExitStatus;
import org.springframework.batch.core.job.JobExecution;
import org.springframework.batch.core.listener.JobExecutionListener;

/**
 * A run whose steps all completed but in which every item failed produced nothing: it ends FAILED (the
 * CLI exits 1, the scheduler retries or reports it) instead of passing as a success. Its CSV is still
 * written, with each item's reason.
 */
public class AllItemsFailedCheck implements JobExecutionListener {
    private final WorkItemStore items;

    public AllItemsFailedCheck(WorkItemStore items) {
        this.items = items;
    }

    @Override
    public void afterJob(JobExecution execution) {
        if (execution.getStatus() != BatchStatus.COMPLETED) return;
        ItemCounts c = items.counts(execution.getJobInstance().getInstanceId());
        if (c.failed() == 0 || c.done() > 0 || c.pending() > 0) return;
        String why = "every item failed (" + c.failed() + " of " + c.total() + "); the reasons are in vlm_work_item.error and the CSV";
        execution.setStatus(BatchStatus.FAILED);
        execution.setExitStatus(ExitStatus.FAILED.addExitDescription(why));
        execution.addFailureException(new IllegalStateException(why));
    }
}
