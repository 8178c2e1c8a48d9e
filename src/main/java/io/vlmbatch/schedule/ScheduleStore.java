package io.vlmbatch.schedule;

import io.vlmbatch.job.Intervals;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Optional;
import javax.sql.DataSource;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.jdbc.core.RowMapper;
import org.springframework.jdbc.datasource.DataSourceTransactionManager;
import org.springframework.transaction.support.TransactionTemplate;

/**
 * vlm_schedule_job and vlm_schedule_run. Every state change is one conditional UPDATE, so two app
 * instances on one database agree on who runs what; launching additionally holds a per-job advisory
 * lock so that max_active_runs counts the runs of every instance.
 */
public class ScheduleStore {
    /** First key of the two-int advisory locks taken here ("vlms"); the second is hashtext(job name). */
    private static final int LOCK_NAMESPACE = 0x766c6d73;
    private static final String COLUMNS = """
            job_name, interval_start, interval_end, logical_date, params, trigger, state, attempt, next_attempt_at,
            owner, heartbeat_at, stop_requested, last_error, queued_at, started_at, ended_at, rerun""";

    private final JdbcTemplate jdbc;
    private final TransactionTemplate tx;

    public ScheduleStore(DataSource dataSource) {
        this.jdbc = new JdbcTemplate(dataSource);
        this.tx = new TransactionTemplate(new DataSourceTransactionManager(dataSource));
    }

    /** When a scheduler first saw the job (recorded now if never). */
    public Instant registeredAt(String job, Instant now) {
        jdbc.update("INSERT INTO vlm_schedule_job (job_name, registered_at) VALUES (?, ?) ON CONFLICT DO NOTHING", job, ts(now));
        return jdbc.queryForObject("SELECT registered_at FROM vlm_schedule_job WHERE job_name = ?",
                (rs, n) -> instant(rs, 1), job);
    }

    /** Start of the newest interval the cron queued: catchup goes on from there. */
    public Optional<Instant> lastScheduledStart(String job) {
        return Optional.ofNullable(jdbc.queryForObject(
                "SELECT max(interval_start) FROM vlm_schedule_run WHERE job_name = ? AND trigger = 'schedule'",
                (rs, n) -> instant(rs, 1), job));
    }

    /** Queues an interval unless a row for it exists already; true when this call created it. */
    public boolean enqueue(String job, Intervals.Interval interval, LocalDate logicalDate, String params, String trigger,
                           Instant now) {
        return jdbc.update("""
                INSERT INTO vlm_schedule_run (job_name, interval_start, interval_end, logical_date, params, trigger, state, queued_at)
                VALUES (?, ?, ?, ?, ?, ?, 'queued', ?) ON CONFLICT DO NOTHING""",
                job, ts(interval.start()), ts(interval.end()), logicalDate, params, trigger, ts(now)) == 1;
    }

    /** Queues an interval as {@link #enqueue} does, as a rerun ("failed" or "all", see ScheduledRun) when rerun is set. */
    public boolean enqueue(String job, Intervals.Interval interval, LocalDate logicalDate, String params, String trigger,
                           Instant now, String rerun) {
        return jdbc.update("""
                INSERT INTO vlm_schedule_run (job_name, interval_start, interval_end, logical_date, params, trigger, state, queued_at, rerun)
                VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?) ON CONFLICT DO NOTHING""",
                job, ts(interval.start()), ts(interval.end()), logicalDate, params, trigger, ts(now), rerun) == 1;
    }

    /**
     * Queues a finished run again as a new attempt over its failed items ("failed") or every item ("all").
     * Only a run that is not waiting or running: true when this call queued it.
     */
    public boolean rerun(String job, Instant intervalStart, String rerun, Instant now) {
        return jdbc.update("""
                UPDATE vlm_schedule_run SET state = 'queued', rerun = ?, attempt = 0, last_error = NULL, next_attempt_at = NULL,
                       ended_at = NULL, queued_at = ?
                WHERE job_name = ? AND interval_start = ? AND state IN ('success', 'failed', 'stopped')""",
                rerun, ts(now), job, ts(intervalStart)) > 0;
    }

    /** Where a run of a date stands, for backfill: the scheduler's state, or Batch's status of a CLI run (null: none). */
    public record Existing(LocalDate logicalDate, String params, String scheduleState, String batchStatus) {}

    /** The runs of a job with a logical date in [from, to] that the scheduler or Batch knows (retry attempts left out). */
    public List<Existing> existing(String job, LocalDate from, LocalDate to) {
        return jdbc.query("""
                SELECT coalesce(s.logical_date, r.logical_date), coalesce(s.params, r.params), s.state, e.status
                FROM (SELECT * FROM vlm_schedule_run WHERE job_name = ? AND logical_date BETWEEN ? AND ?) s
                FULL JOIN (SELECT * FROM vlm_run WHERE job_name = ? AND logical_date BETWEEN ? AND ? AND retry_of IS NULL) r
                     ON r.logical_date = s.logical_date AND r.params = s.params
                LEFT JOIN LATERAL (SELECT x.status FROM batch_job_execution x WHERE x.job_instance_id = r.run_id
                                   ORDER BY x.job_execution_id DESC LIMIT 1) e ON TRUE""",
                (rs, n) -> new Existing(rs.getObject(1, LocalDate.class), rs.getString(2), rs.getString(3), rs.getString(4)),
                job, from, to, job, from, to);
    }

    /**
     * Marks as running, for {@code owner}, the oldest runs of the job that may start now (queued, or
     * waiting for a retry whose time has come) while fewer than maxActive run. Returns nothing when
     * another instance holds the job's lock this very moment: it is deciding, and the next tick retries.
     */
    public List<ScheduledRun> claim(String job, int maxActive, Instant now, String owner) {
        return tx.execute(s -> {
            Boolean locked = jdbc.queryForObject("SELECT pg_try_advisory_xact_lock(?, hashtext(?))", Boolean.class,
                    LOCK_NAMESPACE, job);
            if (!Boolean.TRUE.equals(locked)) return List.of();
            Integer running = jdbc.queryForObject(
                    "SELECT count(*) FROM vlm_schedule_run WHERE job_name = ? AND state = 'running'", Integer.class, job);
            int free = maxActive - (running == null ? 0 : running);
            if (free <= 0) return List.of();
            return jdbc.query("""
                    UPDATE vlm_schedule_run SET state = 'running', owner = ?, attempt = attempt + 1, heartbeat_at = ?,
                           started_at = ?, ended_at = NULL, next_attempt_at = NULL, stop_requested = FALSE
                    WHERE job_name = ? AND interval_start IN (
                        SELECT interval_start FROM vlm_schedule_run
                        WHERE job_name = ? AND (state = 'queued' OR (state = 'up_for_retry' AND next_attempt_at <= ?))
                        ORDER BY interval_start LIMIT ?)
                    RETURNING\s""" + COLUMNS, ROW, owner, ts(now), ts(now), job, job, ts(now), free);
        });
    }

    /**
     * Records how a launch ended, if {@code owner} still owns it. A failure with retries left waits
     * retryDelay as up_for_retry; otherwise the run is failed (or stopped).
     */
    public void finish(ScheduledRun run, String owner, RunOutcome outcome, Instant now, int retries, Duration retryDelay) {
        String state = switch (outcome.state()) {
            case SUCCESS -> "success";
            case STOPPED -> "stopped";
            case FAILED -> run.attempt() <= retries ? "up_for_retry" : "failed";
        };
        jdbc.update("""
                UPDATE vlm_schedule_run SET state = ?, last_error = ?, ended_at = ?, owner = NULL, heartbeat_at = NULL,
                       next_attempt_at = ?, stop_requested = FALSE, rerun = CASE WHEN ? = 'success' THEN NULL ELSE rerun END
                WHERE job_name = ? AND interval_start = ? AND owner = ? AND state = 'running'""",
                state, outcome.error(), ts(now), state.equals("up_for_retry") ? ts(now.plus(retryDelay)) : null, state,
                run.jobName(), ts(run.intervalStart()), owner);
    }

    /** The owner is alive: its running rows are not orphans. */
    public void heartbeat(String owner, Instant now) {
        jdbc.update("UPDATE vlm_schedule_run SET heartbeat_at = ? WHERE owner = ? AND state = 'running'", ts(now), owner);
    }

    /**
     * Running rows whose owner stopped beating (its process died) go back to the queue as a failed
     * attempt: up_for_retry now if retries remain (the retry resumes the Batch run), else failed.
     * The caller passes the job's retries; rows of jobs no longer known are failed.
     */
    public int releaseOrphans(String job, Instant now, Duration timeout, int retries) {
        return jdbc.update("""
                UPDATE vlm_schedule_run SET
                    state = CASE WHEN attempt <= ? THEN 'up_for_retry' ELSE 'failed' END,
                    next_attempt_at = CASE WHEN attempt <= ? THEN ? END,
                    last_error = 'its scheduler (' || owner || ') stopped while it ran', owner = NULL, heartbeat_at = NULL,
                    ended_at = ?
                WHERE job_name = ? AND state = 'running' AND heartbeat_at < ?""",
                retries, retries, ts(now), ts(now), job, ts(now.minus(timeout)));
    }

    public List<String> runningOwners() {
        return jdbc.queryForList("SELECT DISTINCT owner FROM vlm_schedule_run WHERE state = 'running' AND owner IS NOT NULL", String.class);
    }

    /** Makes an owner's runs orphans at once (its process is known to be dead). */
    public void expire(String owner) {
        jdbc.update("UPDATE vlm_schedule_run SET heartbeat_at = '-infinity' WHERE owner = ? AND state = 'running'", owner);
    }

    /** A stop asked for from the API: a waiting run stops at once, a running one when its owner sees the flag. */
    public boolean requestStop(String job, Instant intervalStart, Instant now) {
        int waiting = jdbc.update("""
                UPDATE vlm_schedule_run SET state = 'stopped', ended_at = ?, last_error = 'stopped by request', next_attempt_at = NULL
                WHERE job_name = ? AND interval_start = ? AND state IN ('queued', 'up_for_retry')""", ts(now), job, ts(intervalStart));
        if (waiting > 0) return true;
        return jdbc.update("UPDATE vlm_schedule_run SET stop_requested = TRUE WHERE job_name = ? AND interval_start = ? AND state = 'running'",
                job, ts(intervalStart)) > 0;
    }

    public List<ScheduledRun> stopRequests(String owner) {
        return jdbc.query("SELECT " + COLUMNS + " FROM vlm_schedule_run WHERE owner = ? AND state = 'running' AND stop_requested",
                ROW, owner);
    }

    /** Puts a failed or stopped run back in the queue (a restart from the UI/API): it resumes where it stopped. */
    public boolean requeue(String job, Instant intervalStart) {
        return jdbc.update("""
                UPDATE vlm_schedule_run SET state = 'queued', attempt = 0, last_error = NULL, next_attempt_at = NULL, ended_at = NULL
                WHERE job_name = ? AND interval_start = ? AND state IN ('failed', 'stopped')""", job, ts(intervalStart)) > 0;
    }

    public Optional<ScheduledRun> find(String job, Instant intervalStart) {
        return jdbc.query("SELECT " + COLUMNS + " FROM vlm_schedule_run WHERE job_name = ? AND interval_start = ?",
                ROW, job, ts(intervalStart)).stream().findFirst();
    }

    public Optional<ScheduledRun> findByDate(String job, LocalDate date, String params) {
        return jdbc.query("SELECT " + COLUMNS + " FROM vlm_schedule_run WHERE job_name = ? AND logical_date = ? AND params = ?",
                ROW, job, date, params).stream().findFirst();
    }

    /** Newest first. */
    public List<ScheduledRun> list(String job, int limit) {
        return jdbc.query("SELECT " + COLUMNS + " FROM vlm_schedule_run WHERE job_name = ? ORDER BY interval_start DESC LIMIT ?",
                ROW, job, limit);
    }

    public List<ScheduledRun> all() {
        return jdbc.query("SELECT " + COLUMNS + " FROM vlm_schedule_run ORDER BY job_name, interval_start", ROW);
    }

    private static final RowMapper<ScheduledRun> ROW = (rs, n) -> new ScheduledRun(rs.getString(1), instant(rs, 2),
            instant(rs, 3), rs.getObject(4, LocalDate.class), rs.getString(5), rs.getString(6), rs.getString(7), rs.getInt(8),
            instant(rs, 9), rs.getString(10), instant(rs, 11), rs.getBoolean(12), rs.getString(13), instant(rs, 14),
            instant(rs, 15), instant(rs, 16), rs.getString(17));

    static OffsetDateTime ts(Instant i) {
        return i == null ? null : OffsetDateTime.ofInstant(i, ZoneOffset.UTC);
    }

    static Instant instant(ResultSet rs, int col) throws SQLException {
        OffsetDateTime t = rs.getObject(col, OffsetDateTime.class);
        return t == null ? null : t.toInstant();
    }
}
