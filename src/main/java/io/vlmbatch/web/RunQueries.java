package io.vlmbatch.web;

import java.sql.Timestamp;
import java.time.Duration;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import io.vlmbatch.store.ArchiveCounts;
import io.vlmbatch.store.ItemCounts;
import io.vlmbatch.store.ItemStatus;
import io.vlmbatch.store.WorkItem;
import io.vlmbatch.store.WorkItemStore;
import org.springframework.jdbc.core.JdbcTemplate;
import tools.jackson.core.type.TypeReference;
import tools.jackson.databind.ObjectMapper;
import tools.jackson.databind.json.JsonMapper;

/**
 * What the API shows about runs, read straight from the tables: vlm_run / vlm_work_item / vlm_result
 * (the pipeline's), the Spring Batch repository, and vlm_schedule_run (the scheduler's). A run started
 * from the CLI has no schedule row; a queued run has no Batch instance yet; the list joins both.
 */
public class RunQueries {
    private static final ObjectMapper JSON = JsonMapper.builder().build();
    private static final TypeReference<Map<String, Object>> OBJECT_MAP = new TypeReference<>() {};
    /** Batch's timestamps are local date-times without a zone: shown as they are. */
    private static final String LOCAL = "'YYYY-MM-DD\"T\"HH24:MI:SS'";
    private static final String UTC = "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'";

    private final JdbcTemplate jdbc;
    private final WorkItemStore items;

    public RunQueries(JdbcTemplate jdbc, WorkItemStore items) {
        this.jdbc = jdbc;
        this.items = items;
    }

    private static String utc(String col) {
        return "to_char(" + col + " AT TIME ZONE 'UTC', " + UTC + ")";
    }

    private static String local(String col) {
        return "to_char(" + col + ", " + LOCAL + ")";
    }

    /** Runs of a job, newest logical date first, with their state and item counts. */
    public List<RunSummary> runs(String job, int limit) {
        return jdbc.query("""
                SELECT coalesce(s.logical_date, r.logical_date)::text AS "logicalDate", coalesce(s.params, r.params) AS "params",
                       s.state AS "scheduleState", s.trigger AS "trigger", s.attempt AS "attempt", s.last_error AS "lastError",
                       %s AS "intervalStart", %s AS "intervalEnd", %s AS "nextAttemptAt", s.stop_requested AS "stopRequested",
                       r.run_id AS "runId", e.job_execution_id AS "executionId", e.status AS "batchStatus",
                       %s AS "startedAt", %s AS "endedAt",
                       coalesce(c.done, 0) AS "done", coalesce(c.failed, 0) AS "failed", coalesce(c.pending, 0) AS "pending"
                FROM (SELECT * FROM vlm_schedule_run WHERE job_name = ?) s
                FULL JOIN (SELECT * FROM vlm_run WHERE job_name = ? AND retry_of IS NULL) r ON r.logical_date = s.logical_date AND r.params = s.params
                LEFT JOIN LATERAL (SELECT * FROM batch_job_execution x WHERE x.job_instance_id = r.run_id
                                   ORDER BY x.job_execution_id DESC LIMIT 1) e ON TRUE
                %s
                ORDER BY 1 DESC, 2 DESC LIMIT ?""".formatted(utc("s.interval_start"), utc("s.interval_end"),
                utc("s.next_attempt_at"), local("e.start_time"), local("e.end_time"), ItemCounts.join("r.run_id")), (rs, n) -> new RunSummary(
                rs.getString("logicalDate"), rs.getString("params"), rs.getString("scheduleState"), rs.getString("trigger"),
                rs.getObject("attempt", Integer.class), rs.getString("lastError"), rs.getString("intervalStart"),
                rs.getString("intervalEnd"), rs.getString("nextAttemptAt"), rs.getObject("stopRequested", Boolean.class),
                rs.getObject("runId", Long.class), rs.getObject("executionId", Long.class), rs.getString("batchStatus"),
                rs.getString("startedAt"), rs.getString("endedAt"), rs.getLong("done"), rs.getLong("failed"), rs.getLong("pending"),
                state(rs.getString("scheduleState"), rs.getString("batchStatus"))), job, job, limit);
    }

    /** One state word for the grid: the scheduler's when it knows the run, else Batch's. */
    static String state(String scheduleState, String batchStatus) {
        return io.vlmbatch.schedule.RunState.of(scheduleState, batchStatus);
    }

    public Optional<RunDetail> run(long runId) {
        record Head(String job, String logicalDate, String params, boolean discovered) {}
        List<Head> heads = jdbc.query("SELECT job_name, logical_date::text, params, discovered FROM vlm_run WHERE run_id = ?",
                (rs, n) -> new Head(rs.getString(1), rs.getString(2), rs.getString(3), rs.getBoolean(4)), runId);
        if (heads.isEmpty()) return Optional.empty();
        Head head = heads.getFirst();
        record Timed(RunDetail.Execution execution, Timestamp start, Timestamp end) {}
        List<Timed> executions = jdbc.query("""
                SELECT job_execution_id, status, exit_code, exit_message, %s, %s, start_time, end_time
                FROM batch_job_execution WHERE job_instance_id = ? ORDER BY job_execution_id DESC""".formatted(
                local("start_time"), local("end_time")), (rs, n) -> new Timed(new RunDetail.Execution(rs.getLong(1),
                rs.getString(2), rs.getString(3), rs.getString(4), rs.getString(5), rs.getString(6)),
                rs.getTimestamp(7), rs.getTimestamp(8)), runId);
        ItemCounts c = items.counts(runId);
        Timed latest = executions.isEmpty() ? null : executions.getFirst();
        Double rate = null;
        Double seconds = null;
        if (latest != null && latest.start() != null) {
            LocalDateTime start = latest.start().toLocalDateTime();
            LocalDateTime end = latest.end() == null ? LocalDateTime.now() : latest.end().toLocalDateTime();
            seconds = Math.max(0.001, Duration.between(start, end).toMillis() / 1000.0);
            // Items finished by this execution (a restart resumes: earlier ones don't count toward its rate).
            Long finished = jdbc.queryForObject("""
                    SELECT count(*) FROM vlm_work_item WHERE run_id = ? AND status <> ? AND updated_at >= ?""",
                    Long.class, runId, ItemStatus.PENDING.sql(), start.atZone(java.time.ZoneId.systemDefault()).toOffsetDateTime());
            rate = finished == null ? 0 : finished / seconds;
        }
        List<RunDetail.StepRow> steps = latest == null ? List.of() : jdbc.query("""
                SELECT step_name, status, read_count, write_count, commit_count, rollback_count, exit_message, %s, %s
                FROM batch_step_execution WHERE job_execution_id = ? ORDER BY step_execution_id""".formatted(
                local("start_time"), local("end_time")), (rs, n) -> new RunDetail.StepRow(rs.getString(1), rs.getString(2),
                rs.getLong(3), rs.getLong(4), rs.getLong(5), rs.getLong(6), rs.getString(7), rs.getString(8), rs.getString(9)),
                latest.execution().id());
        List<RunDetail.Failure> failures = jdbc.query("""
                SELECT id, item_key, uri, error FROM vlm_work_item WHERE run_id = ? AND status = ? ORDER BY id LIMIT 200""",
                (rs, n) -> new RunDetail.Failure(rs.getLong(1), rs.getString(2), rs.getString(3), rs.getString(4)),
                runId, ItemStatus.FAILED.sql());
        List<String> tasks = jdbc.queryForList("""
                SELECT DISTINCT r.task FROM vlm_result r JOIN vlm_work_item w ON w.id = r.work_item_id WHERE w.run_id = ? ORDER BY 1""",
                String.class, runId);
        RunDetail.Schedule schedule = jdbc.query("""
                SELECT state, trigger, attempt, last_error, %s, %s, %s
                FROM vlm_schedule_run WHERE job_name = ? AND logical_date = ?::date AND params = ?""".formatted(
                utc("interval_start"), utc("interval_end"), utc("next_attempt_at")), (rs, n) -> new RunDetail.Schedule(
                rs.getString(1), rs.getString(2), rs.getInt(3), rs.getString(4), rs.getString(5), rs.getString(6), rs.getString(7)),
                head.job(), head.logicalDate(), head.params()).stream().findFirst().orElse(null);
        String state = state(schedule == null ? null : schedule.state(), latest == null ? null : latest.execution().status());
        return Optional.of(new RunDetail(runId, head.job(), head.logicalDate(), head.params(), head.discovered(),
                new RunDetail.Counts(c.done(), c.failed(), c.pending(), c.total()), rate, seconds,
                executions.stream().map(Timed::execution).toList(), steps, failures, tasks, schedule, state,
                ArchiveCounts.of(jdbc, runId), new RunDetail.Ledger(c.reused(), c.asked(), c.failed(), attempts(runId))));
    }

    /** The retry attempts of a run, newest first. */
    private List<RunDetail.Attempt> attempts(long runId) {
        return jdbc.query("""
                SELECT r.attempt, r.run_id, e.status, p.parameter_value, %s, %s
                FROM vlm_run r
                LEFT JOIN LATERAL (SELECT * FROM batch_job_execution x WHERE x.job_instance_id = r.run_id
                                   ORDER BY x.job_execution_id DESC LIMIT 1) e ON TRUE
                LEFT JOIN batch_job_execution_params p ON p.job_execution_id = e.job_execution_id AND p.parameter_name = ?
                WHERE r.retry_of = ? ORDER BY r.attempt DESC""".formatted(local("e.start_time"), local("e.end_time")),
                (rs, n) -> new RunDetail.Attempt(rs.getInt(1), rs.getLong(2), rs.getString(3), rs.getString(4), rs.getString(5),
                        rs.getString(6)), io.vlmbatch.ledger.Attempts.TASK, runId);
    }

    public record ResultFilter(ItemStatus status, String task, String label, String q) {}

    /**
     * A page of a run's results with every task's answer, filtered; the matching pages of one document
     * make one entry (see {@link ResultsPage}).
     */
    public ResultsPage results(long runId, ResultFilter f, int page, int size) {
        StringBuilder where = new StringBuilder("w.run_id = ?");
        List<Object> args = new ArrayList<>(List.of(runId));
        if (f.status() != null) {
            where.append(" AND w.status = ?");
            args.add(f.status().sql());
        }
        if (f.task() != null && f.label() == null) {
            where.append(" AND EXISTS (SELECT 1 FROM vlm_result r WHERE r.work_item_id = w.id AND r.task = ?)");
            args.add(f.task());
        }
        if (f.label() != null) {
            where.append(" AND EXISTS (SELECT 1 FROM vlm_result r WHERE r.work_item_id = w.id AND btrim(r.answer) = ?");
            args.add(f.label());
            if (f.task() != null) {
                where.append(" AND r.task = ?");
                args.add(f.task());
            }
            where.append(")");
        }
        if (f.q() != null) {
            String like = "%" + f.q().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%";
            where.append(" AND (w.item_key ILIKE ? OR w.error ILIKE ? OR EXISTS (SELECT 1 FROM vlm_result r WHERE r.work_item_id = w.id AND r.answer ILIKE ?))");
            args.add(like);
            args.add(like);
            args.add(like);
        }
        // Pages of one document (same file and member, numbered) group together; anything else stands alone.
        String entries = """
                SELECT min(w.id) AS id, bool_or(w.page IS NOT NULL) AS doc, count(*) AS n,
                       count(*) FILTER (WHERE w.status = 'done') AS done, count(*) FILTER (WHERE w.status = 'failed') AS failed,
                       count(*) FILTER (WHERE w.status = 'pending') AS pending
                FROM vlm_work_item w WHERE %s GROUP BY w.uri, w.member, CASE WHEN w.page IS NULL THEN w.id END""".formatted(where);
        long[] totals = jdbc.queryForObject("SELECT count(*), count(*) FILTER (WHERE doc) FROM (" + entries + ") e",
                (rs, n) -> new long[] {rs.getLong(1), rs.getLong(2)}, args.toArray());
        List<Object> pageArgs = new ArrayList<>(args);
        pageArgs.add(size);
        pageArgs.add((long) page * size);
        record Entry(long id, boolean doc, long n, long done, long failed, long pending) {}
        List<Entry> shown = jdbc.query(entries + " ORDER BY 1 LIMIT ? OFFSET ?", (rs, n) -> new Entry(rs.getLong(1),
                rs.getBoolean(2), rs.getLong(3), rs.getLong(4), rs.getLong(5), rs.getLong(6)), pageArgs.toArray());
        List<ResultsPage.Item> items = new ArrayList<>();
        if (!shown.isEmpty()) {
            List<Object> ids = new ArrayList<>(shown.stream().map(Entry::id).toList());
            Map<Long, ResultsPage.Item> byId = new HashMap<>();
            for (ResultsPage.Item it : items("w.id IN (" + String.join(",", Collections.nCopies(ids.size(), "?")) + ")",
                    ids, "w.id")) {
                byId.put(it.id(), it);
            }
            for (Entry e : shown) {
                ResultsPage.Item it = byId.get(e.id());
                if (it == null) continue; // the run's items are frozen, but be safe against a concurrent delete
                items.add(e.doc() ? it.withDocument(new ResultsPage.Document(documentName(it.itemKey()), e.n(), e.done(),
                        e.failed(), e.pending())) : it);
            }
        }
        return new ResultsPage(totals[0], page, size, items, totals[1]);
    }

    /** The pages of the document one page of which is itemId, in page order; empty when it is no page of this run. */
    public Optional<ResultsPage> documentPages(long runId, long itemId, int page, int size) {
        List<Map<String, Object>> doc = jdbc.queryForList(
                "SELECT uri, member FROM vlm_work_item WHERE run_id = ? AND id = ? AND page IS NOT NULL", runId, itemId);
        if (doc.isEmpty()) return Optional.empty();
        String where = "w.run_id = ? AND w.uri = ? AND w.member = ? AND w.page IS NOT NULL";
        List<Object> args = List.of(runId, doc.getFirst().get("uri"), doc.getFirst().get("member"));
        Long total = jdbc.queryForObject("SELECT count(*) FROM vlm_work_item w WHERE " + where, Long.class, args.toArray());
        List<Object> pageArgs = new ArrayList<>(args);
        pageArgs.add(size);
        pageArgs.add((long) page * size);
        return Optional.of(new ResultsPage(total == null ? 0 : total, page, size,
                items(where, pageArgs, "w.page, w.id LIMIT ? OFFSET ?"), 0));
    }

    /** A page's key without its "#pN": the document's key (the page suffix is always last). */
    static String documentName(String pageKey) {
        return pageKey.replaceFirst("#p[0-9]+$", "");
    }

    private List<ResultsPage.Item> items(String where, List<Object> args, String orderAndLimit) {
        return jdbc.query("""
                SELECT w.id, w.item_key, w.uri, w.status, w.error, w.width, w.height, w.metadata::text,
                       coalesce(jsonb_object_agg(r.task, jsonb_build_object('answer', r.answer, 'status', r.status, 'error', r.error,
                                'latencyMs', r.latency_ms)) FILTER (WHERE r.task IS NOT NULL), '{}')::text, w.member, w.page
                FROM vlm_work_item w LEFT JOIN vlm_result r ON r.work_item_id = w.id
                WHERE %s GROUP BY w.id ORDER BY %s""".formatted(where, orderAndLimit), (rs, n) -> new ResultsPage.Item(
                rs.getLong(1), rs.getString(2), rs.getString(3), rs.getString(4), rs.getString(5),
                rs.getObject(6, Integer.class), rs.getObject(7, Integer.class),
                JSON.readValue(rs.getString(8), OBJECT_MAP), JSON.readValue(rs.getString(9), OBJECT_MAP),
                rs.getString(10), rs.getObject(11, Integer.class), null), args.toArray());
    }

    /** Runs of other items with the same bytes an item page lists. */
    static final int OTHER_RUNS = 50;

    /** One item of a run and its answers across attempts and runs (ItemHistory), or empty when the run has no such item. */
    public Optional<ItemHistory> itemHistory(long runId, long itemId) {
        record Head(String job, String date, String key, String uri, String status, String error, String hash) {}
        List<Head> heads = jdbc.query("""
                SELECT v.job_name, v.logical_date::text, w.item_key, w.uri, w.status, w.error, w.content_hash
                FROM vlm_work_item w JOIN vlm_run v ON v.run_id = w.run_id WHERE w.run_id = ? AND w.id = ?""",
                (rs, n) -> new Head(rs.getString(1), rs.getString(2), rs.getString(3), rs.getString(4), rs.getString(5),
                        rs.getString(6), rs.getString(7)), runId, itemId);
        if (heads.isEmpty()) return Optional.empty();
        Head h = heads.getFirst();
        List<ItemHistory.Answer> replaced = jdbc.query("""
                SELECT task, status, answer, error, model, reused_from_run, replaced_by_attempt, %s
                FROM vlm_result_history WHERE work_item_id = ? ORDER BY replaced_by_attempt, task""".formatted(utc("answered_at")),
                (rs, n) -> new ItemHistory.Answer(rs.getString(1), rs.getString(2), rs.getString(3), rs.getString(4), rs.getString(5),
                        rs.getObject(6, Long.class), rs.getObject(7, Integer.class), rs.getString(8)), itemId);
        List<ItemHistory.Seen> others = h.hash() == null ? List.of() : jdbc.query("""
                SELECT w.run_id, v.job_name, v.logical_date::text, w.id, w.item_key, w.status
                FROM vlm_work_item w JOIN vlm_run v ON v.run_id = w.run_id
                WHERE w.content_hash = ? AND w.id <> ? ORDER BY w.run_id DESC, w.id LIMIT ?""",
                (rs, n) -> new ItemHistory.Seen(rs.getLong(1), rs.getString(2), rs.getString(3), rs.getLong(4), rs.getString(5),
                        rs.getString(6), List.of()), h.hash(), itemId, OTHER_RUNS);
        List<Long> ids = new ArrayList<>(List.of(itemId));
        others.forEach(o -> ids.add(o.itemId()));
        Map<Long, List<ItemHistory.Answer>> answers = new java.util.HashMap<>();
        jdbc.query("""
                SELECT work_item_id, task, status, answer, error, model, reused_from_run, %s
                FROM vlm_result WHERE work_item_id = ANY(?::bigint[]) ORDER BY work_item_id, task""".formatted(utc("updated_at")), rs -> {
            answers.computeIfAbsent(rs.getLong(1), k -> new ArrayList<>()).add(new ItemHistory.Answer(rs.getString(2),
                    rs.getString(3), rs.getString(4), rs.getString(5), rs.getString(6), rs.getObject(7, Long.class), null,
                    rs.getString(8)));
        }, (Object) ids.toArray(Long[]::new));
        List<ItemHistory.Seen> seen = others.stream().map(o -> new ItemHistory.Seen(o.runId(), o.job(), o.logicalDate(), o.itemId(),
                o.itemKey(), o.status(), answers.getOrDefault(o.itemId(), List.of()))).toList();
        return Optional.of(new ItemHistory(runId, h.job(), h.date(), itemId, h.key(), h.uri(), h.status(), h.error(), h.hash(),
                answers.getOrDefault(itemId, List.of()), replaced, seen));
    }

    /** The source URI of one image of a run (never a path from the request: only what discovery stored). */
    public Optional<String> itemUri(long runId, long itemId) {
        return itemLineage(runId, itemId).map(WorkItem::uri);
    }

    /** One item of a run with its lineage (file, member, page), as discovery stored it. */
    public Optional<WorkItem> itemLineage(long runId, long itemId) {
        return jdbc.query("SELECT id, run_id, item_key, uri, member, page FROM vlm_work_item WHERE run_id = ? AND id = ?",
                (rs, n) -> new WorkItem(rs.getLong(1), rs.getLong(2), rs.getString(3), rs.getString(4), Map.of(),
                        rs.getString(5), rs.getObject(6, Integer.class)), runId, itemId).stream().findFirst();
    }

    public Optional<String> jobOfRun(long runId) {
        return jdbc.queryForList("SELECT job_name FROM vlm_run WHERE run_id = ?", String.class, runId).stream().findFirst();
    }

    /** Finished item counts per job, task and result status (for metrics). */
    public List<Map<String, Object>> resultCounts() {
        return jdbc.queryForList("""
                SELECT v.job_name AS job, r.task AS task, r.status AS status, count(*) AS n
                FROM vlm_result r JOIN vlm_work_item w ON w.id = r.work_item_id JOIN vlm_run v ON v.run_id = w.run_id
                GROUP BY 1, 2, 3""");
    }

    /** Batch's status of a run's newest execution, or null when it has none. */
    public String batchStatus(long runId) {
        return jdbc.queryForList("""
                SELECT status FROM batch_job_execution WHERE job_instance_id = ? ORDER BY job_execution_id DESC LIMIT 1""",
                String.class, runId).stream().findFirst().orElse(null);
    }

    /** The run id of a job's run for a date and params, if it ever started. */
    public Optional<Long> runByDate(String job, LocalDate date, String params) {
        return jdbc.queryForList("SELECT run_id FROM vlm_run WHERE job_name = ? AND logical_date = ? AND params = ? AND retry_of IS NULL",
                Long.class, job, date, params).stream().findFirst();
    }
}
