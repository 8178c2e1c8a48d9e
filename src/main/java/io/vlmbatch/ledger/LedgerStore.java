package io.vlmbatch.ledger;

import java.util.Collection;
import java.util.HashMap;
import java.util.Map;
import org.springframework.jdbc.core.JdbcTemplate;

/**
 * Finds answers that can be reused: a done result of any other run, of any job, whose item had the
 * same content hash and whose task had the same fingerprint. The newest one wins; the run it is credited
 * to is the run that asked the server (a reused answer reused again still points at the original).
 */
public class LedgerStore {
    /** The ledger's key: the bytes and the question. */
    public record Key(String contentHash, String fingerprint) {}

    /** A stored answer, with the run whose request produced it. */
    public record Answer(String answer, String model, Integer promptTokens, Integer completionTokens, long sourceRunId) {}

    private final JdbcTemplate jdbc;

    public LedgerStore(JdbcTemplate jdbc) {
        this.jdbc = jdbc;
    }

    /**
     * @param currentRun the run asking, whose own answers are not reused (-1: none): a copy of a file within
     *                   one run is asked like the original, so what a run sends does not depend on how its
     *                   items fall into chunks and partitions, and `plan` can say it exactly
     */
    public Map<Key, Answer> find(Collection<Key> keys, long currentRun) {
        Map<Key, Answer> found = new HashMap<>();
        if (keys.isEmpty()) return found;
        String[] hashes = keys.stream().map(Key::contentHash).toArray(String[]::new);
        String[] prints = keys.stream().map(Key::fingerprint).toArray(String[]::new);
        jdbc.query("""
                SELECT DISTINCT ON (r.content_hash, r.fingerprint) r.content_hash, r.fingerprint, r.answer, r.model,
                       r.prompt_tokens, r.completion_tokens, coalesce(r.reused_from_run, w.run_id)
                FROM vlm_result r JOIN vlm_work_item w ON w.id = r.work_item_id
                WHERE r.status = 'done' AND w.run_id <> ?
                  AND (r.content_hash, r.fingerprint) IN (SELECT * FROM unnest(?::text[], ?::text[]))
                ORDER BY r.content_hash, r.fingerprint, r.updated_at DESC""", rs -> {
            found.put(new Key(rs.getString(1), rs.getString(2)), new Answer(rs.getString(3), rs.getString(4),
                    (Integer) rs.getObject(5), (Integer) rs.getObject(6), rs.getLong(7)));
        }, currentRun, hashes, prints);
        return found;
    }

    /**
     * Completed runs a rate averages: enough that one odd run does not decide the estimate, few enough
     * that it follows a server that got faster or slower. `vlm-batch plan` and the job page both use it.
     */
    public static final int RATE_RUNS = 5;

    /**
     * Requests per second measured on the last {@link #RATE_RUNS} completed runs that sent requests to this
     * endpoint and model: answers asked (not reused) over the wall time of their infer steps.
     */
    public Rate rate(String endpoint, String model) {
        return jdbc.query("""
                WITH recent AS (
                    SELECT r.run_id,
                           (SELECT count(*) FROM vlm_result x JOIN vlm_work_item w ON w.id = x.work_item_id
                            WHERE w.run_id = r.run_id AND x.reused_from_run IS NULL) AS requests,
                           (SELECT sum(extract(epoch FROM s.end_time - s.start_time)) FROM batch_step_execution s
                            JOIN batch_job_execution e ON e.job_execution_id = s.job_execution_id
                            WHERE e.job_instance_id = r.run_id AND s.step_name = 'infer' AND s.end_time IS NOT NULL) AS seconds
                    FROM vlm_run r
                    WHERE r.inference_endpoint = ? AND r.inference_model = ?
                      AND EXISTS (SELECT 1 FROM batch_job_execution e WHERE e.job_instance_id = r.run_id AND e.status = 'COMPLETED')
                    ORDER BY r.created_at DESC)
                SELECT count(*), coalesce(sum(requests), 0), coalesce(sum(seconds), 0)
                FROM (SELECT * FROM recent WHERE requests > 0 AND seconds > 0 LIMIT ?) t""", rs -> {
            rs.next();
            return new Rate(rs.getInt(1), rs.getLong(2), rs.getDouble(3));
        }, endpoint, model, RATE_RUNS);
    }

    /** What a run asks: recorded when it starts, for {@link #rate}. */
    public void recordEndpoint(long runId, String endpoint, String model) {
        jdbc.update("UPDATE vlm_run SET inference_endpoint = ?, inference_model = ? WHERE run_id = ?", endpoint, model, runId);
    }

    /** Marks a run as attempt {@code attempt} of retrying {@code retryOf} (Attempts). */
    public void recordAttempt(long runId, long retryOf, int attempt) {
        jdbc.update("UPDATE vlm_run SET retry_of = ?, attempt = ? WHERE run_id = ?", retryOf, attempt, runId);
    }

    /** The model last recorded for this endpoint (a plan for an embedded server not started yet), or null. */
    public String lastModel(String endpoint) {
        return jdbc.query("""
                SELECT inference_model FROM vlm_run WHERE inference_endpoint = ? AND inference_model IS NOT NULL
                ORDER BY created_at DESC LIMIT 1""", rs -> rs.next() ? rs.getString(1) : null, endpoint);
    }

    /** runs: how many runs the figure comes from (0: none, no estimate). */
    public record Rate(int runs, long requests, double seconds) {
        public boolean known() { return runs > 0 && requests > 0 && seconds > 0; }

        public double secondsPerRequest() { return seconds / requests; }
    }
}
