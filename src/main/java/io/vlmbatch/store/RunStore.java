package io.vlmbatch.store;

import java.sql.Date;
import java.time.Duration;
import java.time.LocalDate;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.springframework.jdbc.core.JdbcTemplate;

/**
 * The vlm_run table: one row per Spring Batch job instance (job name + logical date + params), with the
 * process that is executing it and that process's last heartbeat, so a killed run can be told from one
 * still going.
 */
public class RunStore {
    /** heartbeatAge: by the database's clock (one clock for every host), null when none was recorded. */
    public record Owner(String host, long pid, Duration heartbeatAge) {}

    public record RunRow(long runId, String jobName, LocalDate logicalDate, String params, Long executionId,
                         String status, java.time.LocalDateTime started, java.time.LocalDateTime ended,
                         long done, long failed, long pending, long reused) {}

    private final JdbcTemplate jdbc;

    public RunStore(JdbcTemplate jdbc) {
        this.jdbc = jdbc;
    }

    public void ensure(long runId, String jobName, LocalDate logicalDate, String params) {
        jdbc.update("""
                INSERT INTO vlm_run (run_id, job_name, logical_date, params) VALUES (?, ?, ?, ?)
                ON CONFLICT (run_id) DO NOTHING""", runId, jobName, Date.valueOf(logicalDate), params);
    }

    public void claim(long runId, String host, long pid) {
        jdbc.update("UPDATE vlm_run SET owner_host = ?, owner_pid = ?, owner_heartbeat_at = now() WHERE run_id = ?",
                host, pid, runId);
    }

    /**
     * Makes host/pid the owner only if the owner is still {@code expected} (null: none): of two processes
     * taking over one dead run at once, exactly one wins.
     */
    public boolean takeOver(long runId, Owner expected, String host, long pid) {
        return jdbc.update("""
                UPDATE vlm_run SET owner_host = ?, owner_pid = ?, owner_heartbeat_at = now()
                WHERE run_id = ? AND owner_host IS NOT DISTINCT FROM ? AND owner_pid IS NOT DISTINCT FROM ?""",
                host, pid, runId, expected == null ? null : expected.host(), expected == null ? null : expected.pid()) == 1;
    }

    /** Clears the owner, unless another process has taken the run over meanwhile. */
    public void release(long runId, String host, long pid) {
        jdbc.update("""
                UPDATE vlm_run SET owner_host = NULL, owner_pid = NULL, owner_heartbeat_at = NULL
                WHERE run_id = ? AND owner_host = ? AND owner_pid = ?""", runId, host, pid);
    }

    /** Refreshes the heartbeat of those of the given runs that host/pid still owns; returns them. */
    public Set<Long> beat(Collection<Long> runIds, String host, long pid) {
        return new HashSet<>(jdbc.queryForList("""
                UPDATE vlm_run SET owner_heartbeat_at = now()
                WHERE run_id = ANY (?) AND owner_host = ? AND owner_pid = ? RETURNING run_id""", Long.class,
                runIds.toArray(Long[]::new), host, pid));
    }

    public Optional<Owner> owner(long runId) {
        return jdbc.query("""
                SELECT owner_host, owner_pid, (extract(epoch FROM now() - owner_heartbeat_at) * 1000)::bigint
                FROM vlm_run WHERE run_id = ? AND owner_pid IS NOT NULL""", (rs, n) -> {
            long ms = rs.getLong(3);
            Duration age = rs.wasNull() ? null : Duration.ofMillis(Math.max(0, ms));
            return new Owner(rs.getString(1), rs.getLong(2), age);
        }, runId).stream().findFirst();
    }

    public boolean discovered(long runId) {
        return Boolean.TRUE.equals(jdbc.queryForObject("SELECT discovered FROM vlm_run WHERE run_id = ?", Boolean.class, runId));
    }

    public void markDiscovered(long runId) {
        markDiscovered(runId, 0);
    }

    /** @param membersSkipped archive members of unknown type the listing left out (they have no work item) */
    public void markDiscovered(long runId, long membersSkipped) {
        jdbc.update("UPDATE vlm_run SET discovered = TRUE, members_skipped = ? WHERE run_id = ?", membersSkipped, runId);
    }

    /** Documents (distinct file + member with numbered pages), their pages, and members skipped at discovery. */
    public ArchiveCounts archiveCounts(long runId) {
        return ArchiveCounts.of(jdbc, runId);
    }

    /** Runs (newest first) with their latest execution and item counts; jobName null = every job. */
    public List<RunRow> list(String jobName, int limit) {
        return jdbc.query("""
                SELECT r.run_id, r.job_name, r.logical_date, r.params, e.job_execution_id, e.status, e.start_time, e.end_time,
                       c.done, c.failed, c.pending, c.reused
                FROM vlm_run r
                LEFT JOIN LATERAL (SELECT * FROM batch_job_execution x WHERE x.job_instance_id = r.run_id
                                   ORDER BY x.job_execution_id DESC LIMIT 1) e ON TRUE
                %s
                WHERE (?::text IS NULL OR r.job_name = ?) AND r.retry_of IS NULL
                ORDER BY r.logical_date DESC, r.run_id DESC LIMIT ?""".formatted(ItemCounts.join("r.run_id")),
                (rs, n) -> new RunRow(rs.getLong(1), rs.getString(2), rs.getDate(3).toLocalDate(), rs.getString(4),
                        (Long) rs.getObject(5), rs.getString(6),
                        rs.getTimestamp(7) == null ? null : rs.getTimestamp(7).toLocalDateTime(),
                        rs.getTimestamp(8) == null ? null : rs.getTimestamp(8).toLocalDateTime(),
                        rs.getLong(9), rs.getLong(10), rs.getLong(11), rs.getLong(12)),
                jobName, jobName, limit);
    }
}
