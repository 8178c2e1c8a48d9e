package io.vlmbatch.ledger;

import io.vlmbatch.inference.InferenceSpec;
import java.util.function.Supplier;
import org.springframework.batch.core.job.JobExecution;
import org.springframework.batch.core.listener.JobExecutionListener;

/** Records on the run which endpoint and model it asks (the key `plan` estimates GPU time by), and for a retry attempt the run it retries. */
public class RunEndpointListener implements JobExecutionListener {
    private final LedgerStore ledger;
    private final String endpoint;
    private final Supplier<String> model;

    public RunEndpointListener(LedgerStore ledger, String endpoint, Supplier<String> model) {
        this.ledger = ledger;
        this.endpoint = endpoint;
        this.model = model;
    }

    /** The endpoint as runs record it: the embedded server's port changes from run to run, its name does not. */
    public static String endpointKey(InferenceSpec spec) {
        return spec.embedded() ? "embedded" : spec.baseUrl();
    }

    @Override
    public void beforeJob(JobExecution execution) {
        long runId = execution.getJobInstance().getInstanceId();
        ledger.recordEndpoint(runId, endpoint, model.get());
        Long retryOf = execution.getJobParameters().getLong(Attempts.RETRY_OF);
        Long attempt = execution.getJobParameters().getLong(Attempts.ATTEMPT);
        if (retryOf != null && attempt != null) ledger.recordAttempt(runId, retryOf, attempt.intValue());
    }
}
