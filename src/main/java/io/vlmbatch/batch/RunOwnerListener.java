package io.vlmbatch.batch;

import io.vlmbatch.job.RunParameters;
import io.vlmbatch.store.RunStore;
import java.net.InetAddress;
import java.net.UnknownHostException;
import org.springframework.batch.core.job.JobExecution;
import org.springframework.batch.core.listener.JobExecutionListener;

/**
 * Records the run (keyed by the Batch job instance) and which process executes it; `restart` uses the
 * owner to tell a run killed with -9 (its process is gone) from one still going.
 */
public class RunOwnerListener implements JobExecutionListener {
    private final RunStore runs;
    private final RunParameters parameters;

    public RunOwnerListener(RunStore runs, RunParameters parameters) {
        this.runs = runs;
        this.parameters = parameters;
    }

    @Override
    public void beforeJob(JobExecution execution) {
        long runId = execution.getJobInstance().getInstanceId();
        runs.ensure(runId, execution.getJobInstance().getJobName(), parameters.logicalDate(), parameters.paramsKey());
        runs.claim(runId, hostName(), ProcessHandle.current().pid());
    }

    @Override
    public void afterJob(JobExecution execution) {
        runs.release(execution.getJobInstance().getInstanceId());
    }

    public static String hostName() {
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (UnknownHostException e) {
            return "localhost";
        }
    }
}
