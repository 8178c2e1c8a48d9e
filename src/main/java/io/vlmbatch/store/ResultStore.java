package io.vlmbatch.store;

import io.vlmbatch.inference.ChatResult;
import java.sql.Types;
import java.util.ArrayList;
import java.util.List;
import org.springframework.jdbc.core.JdbcTemplate;

/** The vlm_result table: one row per (work item, task), upserted so that a redone chunk never duplicates. */
public class ResultStore {
    private final JdbcTemplate jdbc;

    public ResultStore(JdbcTemplate jdbc) {
        this.jdbc = jdbc;
    }

    /**
     * PostgreSQL text cannot hold U+0000, which a model may well emit (the tiny random one does); it is
     * the one character not stored as answered, replaced by U+FFFD.
     */
    static String storable(String s) {
        return s == null || s.indexOf('\u0000') < 0 ? s : s.replace('\u0000', '\uFFFD');
    }

    public void upsert(long workItemId, List<TaskOutcome> outcomes) {
        List<Object[]> rows = new ArrayList<>();
        for (TaskOutcome o : outcomes) {
            ChatResult r = o.result();
            rows.add(new Object[] {workItemId, o.task(), r.ok() ? "done" : "failed", storable(r.answer()), storable(r.error()), r.model(),
                    r.promptTokens(), r.completionTokens(), (int) Math.min(r.latencyMs(), Integer.MAX_VALUE), r.attempts(),
                    o.contentHash(), o.fingerprint(), o.reusedFromRun()});
        }
        jdbc.batchUpdate("""
                INSERT INTO vlm_result (work_item_id, task, status, answer, error, model, prompt_tokens,
                                        completion_tokens, latency_ms, attempts, content_hash, fingerprint, reused_from_run)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (work_item_id, task) DO UPDATE SET status = EXCLUDED.status, answer = EXCLUDED.answer,
                    error = EXCLUDED.error, model = EXCLUDED.model, prompt_tokens = EXCLUDED.prompt_tokens,
                    completion_tokens = EXCLUDED.completion_tokens, latency_ms = EXCLUDED.latency_ms,
                    attempts = EXCLUDED.attempts, content_hash = EXCLUDED.content_hash, fingerprint = EXCLUDED.fingerprint,
                    reused_from_run = EXCLUDED.reused_from_run, updated_at = now()""", rows,
                new int[] {Types.BIGINT, Types.VARCHAR, Types.VARCHAR, Types.VARCHAR, Types.VARCHAR, Types.VARCHAR,
                        Types.INTEGER, Types.INTEGER, Types.INTEGER, Types.INTEGER, Types.VARCHAR, Types.VARCHAR, Types.BIGINT});
    }
}
