package io.vlmbatch.store;

import io.vlmbatch.source.SourceItem;
import java.util.List;
import java.util.Map;
import org.springframework.jdbc.core.JdbcTemplate;
import tools.jackson.core.type.TypeReference;
import tools.jackson.databind.ObjectMapper;
import tools.jackson.databind.json.JsonMapper;

/** The vlm_work_item table: the frozen list of images of a run and where each one stands. */
public class WorkItemStore {
    private static final ObjectMapper JSON = JsonMapper.builder().build();
    private static final TypeReference<Map<String, String>> STRING_MAP = new TypeReference<>() {};

    private final JdbcTemplate jdbc;

    public WorkItemStore(JdbcTemplate jdbc) {
        this.jdbc = jdbc;
    }

    /**
     * Adds discovered items; an item already there (same key in this run) is left as it is. An item the
     * source refused while listing (encrypted PDF, archive bomb...) goes in as failed with its reason.
     */
    public void insert(long runId, List<SourceItem> items) {
        jdbc.batchUpdate("""
                INSERT INTO vlm_work_item (run_id, item_key, uri, metadata, member, page, status, error)
                VALUES (?, ?, ?, ?::jsonb, ?, ?, ?, ?)
                ON CONFLICT (run_id, item_key) DO NOTHING""", items, items.size(), (ps, item) -> {
            ps.setLong(1, runId);
            ps.setString(2, item.itemKey());
            ps.setString(3, item.uri());
            ps.setString(4, JSON.writeValueAsString(item.metadata() == null ? Map.of() : item.metadata()));
            ps.setString(5, item.member());
            ps.setObject(6, item.page(), java.sql.Types.INTEGER);
            ps.setString(7, item.failure() == null ? "pending" : "failed");
            ps.setString(8, ResultStore.storable(item.failure()));
        });
    }

    /** Smallest and largest item id of the run, or null when it has no items. */
    public long[] idRange(long runId) {
        return jdbc.query("SELECT min(id), max(id) FROM vlm_work_item WHERE run_id = ?", rs -> {
            rs.next();
            long min = rs.getLong(1);
            return rs.wasNull() ? null : new long[] {min, rs.getLong(2)};
        }, runId);
    }

    /** Pending items with afterId < id <= maxId, in id order (keyset paging: safe while statuses change). */
    public List<WorkItem> pending(long runId, long afterId, long maxId, int limit) {
        return jdbc.query("""
                SELECT id, run_id, item_key, uri, metadata::text, member, page FROM vlm_work_item
                WHERE run_id = ? AND status = 'pending' AND id > ? AND id <= ? ORDER BY id LIMIT ?""",
                (rs, n) -> new WorkItem(rs.getLong(1), rs.getLong(2), rs.getString(3), rs.getString(4),
                        JSON.readValue(rs.getString(5), STRING_MAP), rs.getString(6), (Integer) rs.getObject(7)),
                runId, afterId, maxId, limit);
    }

    public void finish(long id, String status, String error, Integer width, Integer height) {
        jdbc.update("UPDATE vlm_work_item SET status = ?, error = ?, width = ?, height = ?, updated_at = now() WHERE id = ?",
                status, ResultStore.storable(error), width, height, id);
    }

    public ItemCounts counts(long runId) {
        return jdbc.query("""
                SELECT count(*) FILTER (WHERE status = 'done'), count(*) FILTER (WHERE status = 'failed'),
                       count(*) FILTER (WHERE status = 'pending')
                FROM vlm_work_item WHERE run_id = ?""", rs -> {
            rs.next();
            return new ItemCounts(rs.getLong(1), rs.getLong(2), rs.getLong(3));
        }, runId);
    }
}
