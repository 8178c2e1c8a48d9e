package io.vlmbatch.run;

import io.vlmbatch.store.RunStore;
import java.time.LocalDate;
import org.springframework.batch.core.job.JobExecution;
import org.springframework.batch.core.job.parameters.JobParameters;
import org.springframework.batch.core.listener.JobExecutionListener;

/**
 * Records the run (keyed by the Batch job instance) and makes this process its owner for as long as
 * the execution lasts, heartbeat included; RunLifecycle reads the owner to tell a live run from a dead one.
 */
public class RunOwnerListener implements JobExecutionListener {
    private final RunStore runs;
    private final RunOwnership ownership;
    private final Heartbeat heartbeat;

    public RunOwnerListener(RunStore runs, RunOwnership ownership, Heartbeat heartbeat) {
        this.runs = runs;
        this.ownership = ownership;
        this.heartbeat = heartbeat;
    }

    @Override
    public void beforeJob(JobExecution execution) {
        long runId = execution.getJobInstance().getInstanceId();
        JobParameters jp = execution.getJobParameters();
        LocalDate date = RunKeys.logicalDate(jp);
        runs.ensure(runId, execution.getJobInstance().getJobName(), date, RunKeys.runParameters(jp).paramsKey());
        runs.claim(runId, ownership.host(), ownership.pid());
        heartbeat.add(execution);
    }

    @Override
    public void afterJob(JobExecution execution) {
        long runId = execution.getJobInstance().getInstanceId();
        heartbeat.remove(runId);
        runs.release(runId, ownership.host(), ownership.pid());
    }
}
