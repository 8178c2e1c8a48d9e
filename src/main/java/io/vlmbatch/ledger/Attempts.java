package io.vlmbatch.ledger;

import org.springframework.batch.core.job.JobExecution;
import org.springframework.batch.core.job.parameters.JobParameters;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.transaction.support.TransactionTemplate;

/**
 * Retry attempts. An attempt is a Batch job instance of its own (the run's parameters plus an identifying
 * "attempt" number), so the one lifecycle starts, restarts and recovers it like any run; it works on the
 * items of the run it retries ("retry.of"), so outputs of that run show the latest answers, and the
 * answers it replaces are kept in vlm_result_history.
 */
public class Attempts {
    public static final String ATTEMPT = "attempt";
    public static final String RETRY_OF = "retry.of";
    public static final String TASK = "retry.task";

    private final JdbcTemplate jdbc;
    private final TransactionTemplate tx;

    public Attempts(JdbcTemplate jdbc, TransactionTemplate tx) {
        this.jdbc = jdbc;
        this.tx = tx;
    }

    /** The run whose items an execution works on: the retried run for an attempt, else its own. */
    public static long workRunId(JobExecution execution) {
        Long of = execution.getJobParameters().getLong(RETRY_OF);
        return of != null ? of : execution.getJobInstance().getInstanceId();
    }

    /** The task an attempt is limited to, or null for every task. */
    public static String task(JobParameters jp) {
        return jp.getString(TASK);
    }

    /** The number the next attempt of this run gets (the run itself is attempt 1). */
    public int next(long runId) {
        Integer max = jdbc.queryForObject("SELECT max(attempt) FROM vlm_run WHERE retry_of = ?", Integer.class, runId);
        return max == null ? 2 : max + 1;
    }

    /**
     * Puts the items an attempt asks again back to pending, in one transaction, after copying the answers
     * it will replace into the history: the failed items (task null), or every item for one task.
     * @return how many items were put back
     */
    public int reopen(long runId, String task, int attempt) {
        return reopen(runId, task, attempt, false);
    }

    /**
     * As {@link #reopen(long, String, int)}; everyItem: every item of the run with all its tasks (a rerun
     * of a completed run, whose unchanged answers the ledger then copies back without a request).
     */
    public int reopen(long runId, String task, int attempt, boolean everyItem) {
        return tx.execute(status -> {
            String which = task == null && !everyItem ? "w.status = 'failed'" : "TRUE";
            jdbc.update("""
                    INSERT INTO vlm_result_history (work_item_id, task, replaced_by_attempt, status, answer, error, model,
                        prompt_tokens, completion_tokens, latency_ms, attempts, fingerprint, reused_from_run, answered_at)
                    SELECT r.work_item_id, r.task, ?, r.status, r.answer, r.error, r.model, r.prompt_tokens, r.completion_tokens,
                           r.latency_ms, r.attempts, r.fingerprint, r.reused_from_run, r.updated_at
                    FROM vlm_result r JOIN vlm_work_item w ON w.id = r.work_item_id
                    WHERE w.run_id = ? AND %s AND (?::text IS NULL OR r.task = ?)
                    ON CONFLICT DO NOTHING""".formatted(which), attempt, runId, task, task);
            return jdbc.update("UPDATE vlm_work_item w SET status = 'pending', updated_at = now() WHERE w.run_id = ? AND " + which
                    + " AND w.status <> 'pending'", runId);
        });
    }
}
