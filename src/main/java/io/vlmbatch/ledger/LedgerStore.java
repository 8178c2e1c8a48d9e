package io.vlmbatch.ledger;

import java.util.Collection;
import java.util.HashMap;
import java.util.Map;
import org.springframework.jdbc.core.JdbcTemplate;

/**
 * Finds answers that can be reused: a done result of any earlier run, of any job, whose item had the
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

    public Map<Key, Answer> find(Collection<Key> keys) {
        Map<Key, Answer> found = new HashMap<>();
        if (keys.isEmpty()) return found;
        String[] hashes = keys.stream().map(Key::contentHash).toArray(String[]::new);
        String[] prints = keys.stream().map(Key::fingerprint).toArray(String[]::new);
        jdbc.query("""
                SELECT DISTINCT ON (r.content_hash, r.fingerprint) r.content_hash, r.fingerprint, r.answer, r.model,
                       r.prompt_tokens, r.completion_tokens, coalesce(r.reused_from_run, w.run_id)
                FROM vlm_result r JOIN vlm_work_item w ON w.id = r.work_item_id
                WHERE r.status = 'done' AND (r.content_hash, r.fingerprint) IN (SELECT * FROM unnest(?::text[], ?::text[]))
                ORDER BY r.content_hash, r.fingerprint, r.updated_at DESC""", rs -> {
            found.put(new Key(rs.getString(1), rs.getString(2)), new Answer(rs.getString(3), rs.getString(4),
                    (Integer) rs.getObject(5), (Integer) rs.getObject(6), rs.getLong(7)));
        }, hashes, prints);
        return found;
    }
}
