package io.vlmbatch.web;

import java.time.Duration;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.springframework.jdbc.core.JdbcTemplate;
import tools.jackson.databind.ObjectMapper;
import tools.jackson.databind.json.JsonMapper;

/**
 * What the API shows about runs, read straight from the tables: vlm_run / vlm_work_item / vlm_result
 * (the pipeline's), the Spring Batch repository, and vlm_schedule_run (the scheduler's). A run started
 * from the CLI has no schedule row; a queued run has no Batch instance yet; the list joins both.
 */
public class RunQueries {
    private static final ObjectMapper JSON = JsonMapper.builder().build();
    /** Batch's timestamps are local date-times without a zone: shown as they are. */
    private static final String LOCAL = "'YYYY-MM-DD\"T\"HH24:MI:SS'";
    private static final String UTC = "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'";

    private final JdbcTemplate jdbc;

    public RunQueries(JdbcTemplate jdbc) {
        this.jdbc = jdbc;
    }

    private static String utc(String col) {
        return "to_char(" + col + " AT TIME ZONE 'UTC', " + UTC + ")";
    }

    private static String local(String col) {
        return "to_char(" + col + ", " + LOCAL + ")";
    }

    /** Runs of a job, newest logical date first, with their state and item counts. */
    public List<Map<String, Object>> runs(String job, int limit) {
        List<Map<String, Object>> rows = jdbc.queryForList("""
                SELECT coalesce(s.logical_date, r.logical_date)::text AS "logicalDate", coalesce(s.params, r.params) AS "params",
                       s.state AS "scheduleState", s.trigger AS "trigger", s.attempt AS "attempt", s.last_error AS "lastError",
                       %s AS "intervalStart", %s AS "intervalEnd", %s AS "nextAttemptAt", s.stop_requested AS "stopRequested",
                       r.run_id AS "runId", e.job_execution_id AS "executionId", e.status AS "batchStatus",
                       %s AS "startedAt", %s AS "endedAt",
                       coalesce(c.done, 0) AS "done", coalesce(c.failed, 0) AS "failed", coalesce(c.pending, 0) AS "pending"
                FROM (SELECT * FROM vlm_schedule_run WHERE job_name = ?) s
                FULL JOIN (SELECT * FROM vlm_run WHERE job_name = ?) r ON r.logical_date = s.logical_date AND r.params = s.params
                LEFT JOIN LATERAL (SELECT * FROM batch_job_execution x WHERE x.job_instance_id = r.run_id
                                   ORDER BY x.job_execution_id DESC LIMIT 1) e ON TRUE
                LEFT JOIN LATERAL (SELECT count(*) FILTER (WHERE w.status = 'done') AS done,
                                          count(*) FILTER (WHERE w.status = 'failed') AS failed,
                                          count(*) FILTER (WHERE w.status = 'pending') AS pending
                                   FROM vlm_work_item w WHERE w.run_id = r.run_id) c ON TRUE
                ORDER BY 1 DESC, 2 DESC LIMIT ?""".formatted(utc("s.interval_start"), utc("s.interval_end"),
                utc("s.next_attempt_at"), local("e.start_time"), local("e.end_time")), job, job, limit);
        rows.forEach(r -> r.put("state", state((String) r.get("scheduleState"), (String) r.get("batchStatus"))));
        return rows;
    }

    /** One state word for the grid: the scheduler's when it knows the run, else Batch's. */
    static String state(String scheduleState, String batchStatus) {
        if (scheduleState != null) {
            if (scheduleState.equals("running") && "STOPPING".equals(batchStatus)) return "stopping";
            return scheduleState;
        }
        if (batchStatus == null) return "queued";
        return switch (batchStatus) {
            case "COMPLETED" -> "success";
            case "FAILED", "ABANDONED", "UNKNOWN" -> "failed";
            case "STOPPED" -> "stopped";
            case "STOPPING" -> "stopping";
            default -> "running";
        };
    }

    public Optional<Map<String, Object>> run(long runId) {
        List<Map<String, Object>> rows = jdbc.queryForList("""
                SELECT r.run_id AS "runId", r.job_name AS "job", r.logical_date::text AS "logicalDate", r.params AS "params",
                       r.discovered AS "discovered"
                FROM vlm_run r WHERE r.run_id = ?""", runId);
        if (rows.isEmpty()) return Optional.empty();
        Map<String, Object> run = rows.getFirst();
        String job = (String) run.get("job");
        List<Map<String, Object>> executions = jdbc.queryForList("""
                SELECT job_execution_id AS "id", status AS "status", exit_code AS "exitCode", exit_message AS "exitMessage",
                       %s AS "startedAt", %s AS "endedAt", start_time AS start_raw, end_time AS end_raw
                FROM batch_job_execution WHERE job_instance_id = ? ORDER BY job_execution_id DESC""".formatted(
                local("start_time"), local("end_time")), runId);
        Map<String, Object> counts = jdbc.queryForMap("""
                SELECT count(*) FILTER (WHERE status = 'done') AS "done", count(*) FILTER (WHERE status = 'failed') AS "failed",
                       count(*) FILTER (WHERE status = 'pending') AS "pending", count(*) AS "total"
                FROM vlm_work_item WHERE run_id = ?""", runId);
        run.put("counts", counts);
        Map<String, Object> latest = executions.isEmpty() ? null : executions.getFirst();
        double seconds = 0;
        if (latest != null && latest.get("start_raw") != null) {
            LocalDateTime start = ((java.sql.Timestamp) latest.get("start_raw")).toLocalDateTime();
            LocalDateTime end = latest.get("end_raw") == null ? LocalDateTime.now()
                    : ((java.sql.Timestamp) latest.get("end_raw")).toLocalDateTime();
            seconds = Math.max(0.001, Duration.between(start, end).toMillis() / 1000.0);
            // Items finished by this execution (a restart resumes: earlier ones don't count toward its rate).
            Long finished = jdbc.queryForObject("""
                    SELECT count(*) FROM vlm_work_item WHERE run_id = ? AND status <> 'pending' AND updated_at >= ?""",
                    Long.class, runId, start.atZone(java.time.ZoneId.systemDefault()).toOffsetDateTime());
            run.put("imagesPerSecond", finished == null ? 0 : finished / seconds);
            run.put("elapsedSeconds", seconds);
        }
        executions.forEach(e -> {
            e.remove("start_raw");
            e.remove("end_raw");
        });
        run.put("executions", executions);
        run.put("steps", latest == null ? List.of() : jdbc.queryForList("""
                SELECT step_name AS "name", status AS "status", read_count AS "read", write_count AS "written",
                       commit_count AS "commits", rollback_count AS "rollbacks", exit_message AS "exitMessage",
                       %s AS "startedAt", %s AS "endedAt"
                FROM batch_step_execution WHERE job_execution_id = ? ORDER BY step_execution_id""".formatted(
                local("start_time"), local("end_time")), latest.get("id")));
        run.put("failures", jdbc.queryForList("""
                SELECT id AS "itemId", item_key AS "itemKey", uri AS "uri", error AS "error"
                FROM vlm_work_item WHERE run_id = ? AND status = 'failed' ORDER BY id LIMIT 200""", runId));
        run.put("tasks", jdbc.queryForList("""
                SELECT DISTINCT r.task FROM vlm_result r JOIN vlm_work_item w ON w.id = r.work_item_id WHERE w.run_id = ? ORDER BY 1""",
                String.class, runId));
        List<Map<String, Object>> schedule = jdbc.queryForList("""
                SELECT state AS "state", trigger AS "trigger", attempt AS "attempt", last_error AS "lastError",
                       %s AS "intervalStart", %s AS "intervalEnd", %s AS "nextAttemptAt"
                FROM vlm_schedule_run WHERE job_name = ? AND logical_date = ?::date AND params = ?""".formatted(
                utc("interval_start"), utc("interval_end"), utc("next_attempt_at")), job, run.get("logicalDate"), run.get("params"));
        run.put("schedule", schedule.isEmpty() ? null : schedule.getFirst());
        run.put("state", state(schedule.isEmpty() ? null : (String) schedule.getFirst().get("state"),
                latest == null ? null : (String) latest.get("status")));
        return Optional.of(run);
    }

    public record ResultFilter(String status, String task, String label, String q) {}

    /** A page of a run's images with every task's answer, filtered. */
    public Map<String, Object> results(long runId, ResultFilter f, int page, int size) {
        StringBuilder where = new StringBuilder("w.run_id = ?");
        List<Object> args = new ArrayList<>(List.of(runId));
        if (f.status() != null) {
            where.append(" AND w.status = ?");
            args.add(f.status());
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
        Long total = jdbc.queryForObject("SELECT count(*) FROM vlm_work_item w WHERE " + where, Long.class, args.toArray());
        List<Object> pageArgs = new ArrayList<>(args);
        pageArgs.add(size);
        pageArgs.add((long) page * size);
        List<Map<String, Object>> items = jdbc.query("""
                SELECT w.id, w.item_key, w.uri, w.status, w.error, w.width, w.height, w.metadata::text,
                       coalesce(jsonb_object_agg(r.task, jsonb_build_object('answer', r.answer, 'status', r.status, 'error', r.error,
                                'latencyMs', r.latency_ms)) FILTER (WHERE r.task IS NOT NULL), '{}')::text
                FROM vlm_work_item w LEFT JOIN vlm_result r ON r.work_item_id = w.id
                WHERE %s GROUP BY w.id ORDER BY w.id LIMIT ? OFFSET ?""".formatted(where), (rs, n) -> {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("id", rs.getLong(1));
            m.put("itemKey", rs.getString(2));
            m.put("uri", rs.getString(3));
            m.put("status", rs.getString(4));
            m.put("error", rs.getString(5));
            m.put("width", rs.getObject(6));
            m.put("height", rs.getObject(7));
            m.put("metadata", JSON.readValue(rs.getString(8), Map.class));
            m.put("answers", JSON.readValue(rs.getString(9), Map.class));
            return m;
        }, pageArgs.toArray());
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("total", total);
        out.put("page", page);
        out.put("size", size);
        out.put("items", items);
        return out;
    }

    /** The source URI of one image of a run (never a path from the request: only what discovery stored). */
    public Optional<String> itemUri(long runId, long itemId) {
        return jdbc.queryForList("SELECT uri FROM vlm_work_item WHERE run_id = ? AND id = ?", String.class, runId, itemId)
                .stream().findFirst();
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

    public Optional<Map<String, Object>> runByDate(String job, LocalDate date, String params) {
        return jdbc.queryForList("SELECT run_id AS \"runId\" FROM vlm_run WHERE job_name = ? AND logical_date = ? AND params = ?",
                job, date, params).stream().findFirst();
    }
}
