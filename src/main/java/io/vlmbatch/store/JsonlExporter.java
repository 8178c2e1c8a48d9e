package io.vlmbatch.store;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.transaction.support.TransactionTemplate;
import tools.jackson.core.type.TypeReference;
import tools.jackson.databind.ObjectMapper;
import tools.jackson.databind.json.JsonMapper;

/**
 * Writes a run's results as JSON Lines from the database, in two shapes:
 * <ul>
 * <li>{@link #exportItems}: one object per work item (image, page or member) in discovery order, with its
 *     lineage ({@code source_uri}, {@code member}, {@code page}), status, error, every task's answer
 *     and the failed tasks' errors, and the manifest metadata;</li>
 * <li>{@link #exportDocuments}: one object per source document (a file, or a document inside an archive),
 *     with each task's page answers in page order, so the text of a whole scanned letter is in one place.</li>
 * </ul>
 * Written whole or not at all ({@link AtomicFileWriter}).
 */
public class JsonlExporter {
    private static final ObjectMapper JSON = JsonMapper.builder().build();
    private static final TypeReference<Map<String, String>> STRING_MAP = new TypeReference<>() {};

    private final JdbcTemplate jdbc;
    private final TransactionTemplate tx;

    public JsonlExporter(JdbcTemplate jdbc, TransactionTemplate tx) {
        this.jdbc = jdbc;
        this.tx = tx;
    }

    /** One row of the items query: an item with its answers and task errors. */
    private record Row(String key, String sourceUri, String member, Integer page, String status, String error,
                       Map<String, String> metadata, Map<String, String> answers, Map<String, String> taskErrors) {}

    /** @return the number of items written */
    public long exportItems(long runId, List<String> tasks, Path out) throws IOException {
        return AtomicFileWriter.write(out, w -> {
            long[] n = {0};
            rows(runId, "w.id", row -> {
                Map<String, Object> o = new LinkedHashMap<>();
                o.put("item_key", row.key());
                o.put("source_uri", row.sourceUri());
                o.put("member", row.member());
                o.put("page", row.page());
                o.put("status", row.status());
                o.put("error", row.error());
                Map<String, String> answers = new LinkedHashMap<>();
                tasks.forEach(t -> answers.put(t, row.answers().get(t)));
                o.put("answers", answers);
                Map<String, String> errors = new LinkedHashMap<>();
                tasks.forEach(t -> {
                    if (row.taskErrors().get(t) != null) {
                        errors.put(t, row.taskErrors().get(t));
                    }
                });
                o.put("task_errors", errors);
                o.put("metadata", row.metadata());
                line(w, o);
                n[0]++;
            });
            return n[0];
        });
    }

    /**
     * One record per document: the items sharing a listed file and member path, pages in order. Fields:
     * {@code document} (the item key without its page), lineage, {@code pages}, {@code status} (done when
     * every page is done, failed when none is, else partial), per task the list of page answers
     * ({@code null} for a page without one), and the failed pages with their errors.
     *
     * @return the number of documents written
     */
    public long exportDocuments(long runId, List<String> tasks, Path out) throws IOException {
        return AtomicFileWriter.write(out, w -> {
            long[] n = {0};
            List<Row> doc = new ArrayList<>();
            rows(runId, "w.uri, w.member, w.page NULLS FIRST, w.id", row -> {
                if (!doc.isEmpty() && !(doc.getFirst().sourceUri().equals(row.sourceUri())
                        && doc.getFirst().member().equals(row.member()))) {
                    line(w, document(doc, tasks));
                    n[0]++;
                    doc.clear();
                }
                doc.add(row);
            });
            if (!doc.isEmpty()) {
                line(w, document(doc, tasks));
                n[0]++;
            }
            return n[0];
        });
    }

    private static Map<String, Object> document(List<Row> pages, List<String> tasks) {
        Row first = pages.getFirst();
        Map<String, Object> o = new LinkedHashMap<>();
        o.put("document", first.page() == null ? first.key() : first.key().replaceFirst("#p\\d+$", ""));
        o.put("source_uri", first.sourceUri());
        o.put("member", first.member());
        o.put("pages", pages.size());
        long done = pages.stream().filter(p -> p.status().equals("done")).count();
        o.put("status", done == pages.size() ? "done" : done == 0 && pages.stream().noneMatch(p -> p.status().equals("pending"))
                ? "failed" : "partial");
        Map<String, List<String>> answers = new LinkedHashMap<>();
        for (String t : tasks) {
            List<String> perPage = new ArrayList<>();
            pages.forEach(p -> perPage.add(p.answers().get(t)));
            answers.put(t, perPage);
        }
        o.put("answers", answers);
        List<Map<String, Object>> failures = new ArrayList<>();
        for (Row p : pages) {
            if (p.error() != null) {
                Map<String, Object> f = new LinkedHashMap<>();
                f.put("page", p.page());
                f.put("error", p.error());
                failures.add(f);
            }
        }
        o.put("failed_pages", failures);
        o.put("metadata", first.metadata());
        return o;
    }

    private void rows(long runId, String order, java.util.function.Consumer<Row> sink) {
        // A cursor (fetch size inside a transaction) keeps memory flat for million-row runs.
        tx.executeWithoutResult(status -> jdbc.query(con -> {
            var ps = con.prepareStatement("""
                    SELECT w.item_key, w.uri, w.member, w.page, w.status, w.error, w.metadata::text,
                           coalesce(jsonb_object_agg(r.task, r.answer) FILTER (WHERE r.task IS NOT NULL), '{}')::text,
                           coalesce(jsonb_object_agg(r.task, r.error) FILTER (WHERE r.task IS NOT NULL), '{}')::text
                    FROM vlm_work_item w LEFT JOIN vlm_result r ON r.work_item_id = w.id
                    WHERE w.run_id = ? GROUP BY w.id ORDER BY\s""" + order);
            ps.setLong(1, runId);
            ps.setFetchSize(1000);
            return ps;
        }, rs -> {
            sink.accept(new Row(rs.getString(1), rs.getString(2), rs.getString(3), (Integer) rs.getObject(4),
                    rs.getString(5), rs.getString(6), JSON.readValue(rs.getString(7), STRING_MAP),
                    JSON.readValue(rs.getString(8), STRING_MAP), JSON.readValue(rs.getString(9), STRING_MAP)));
        }));
    }

    private static void line(Writer w, Map<String, Object> o) {
        try {
            w.write(JSON.writeValueAsString(o));
            w.write('\n');
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
