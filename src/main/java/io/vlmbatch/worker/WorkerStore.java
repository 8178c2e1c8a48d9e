package io.vlmbatch.worker;

import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.function.Predicate;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.transaction.support.TransactionTemplate;

/**
 * The workers' rows: who is alive (vlm_worker, beaten every few seconds) and which worker took which
 * partition (vlm_partition_run). A partition is one step execution of the worker step; claiming it is the
 * one rule that keeps two workers off the same partition, whatever the broker delivers twice.
 */
public class WorkerStore {
    /** What a claim found: the claim to run under, or why the request is dropped. */
    public sealed interface Claim {
        record Taken(long claimId, boolean takenOver) implements Claim {}
        record Finished(String status) implements Claim {}
        record HeldBy(String workerId) implements Claim {}
    }

    public record PartitionRun(long stepExecutionId, String partitionName, String workerId, String status, long items) {}

    /** lastSeen: seconds since the worker's last heartbeat; stopped: it shut down cleanly. */
    public record WorkerRow(String workerId, String host, long pid, long partitions, long items, long lost, long lastSeen, boolean stopped) {}

    private final JdbcTemplate jdbc;
    private final TransactionTemplate tx;

    public WorkerStore(JdbcTemplate jdbc, TransactionTemplate tx) {
        this.jdbc = jdbc;
        this.tx = tx;
    }

    public void register(String workerId, String host, long pid) {
        jdbc.update("""
                INSERT INTO vlm_worker (worker_id, host, pid, started_at, last_seen) VALUES (?, ?, ?, now(), now())
                ON CONFLICT (worker_id) DO UPDATE SET last_seen = now(), stopped_at = NULL""", workerId, host, pid);
    }

    public void beat(String workerId) {
        jdbc.update("UPDATE vlm_worker SET last_seen = now() WHERE worker_id = ?", workerId);
    }

    public void stopped(String workerId) {
        jdbc.update("UPDATE vlm_worker SET stopped_at = now(), last_seen = now() WHERE worker_id = ?", workerId);
    }

    /** A worker holding a partition, as its row names it. */
    public record Holder(String workerId, String host, long pid) {}

    /**
     * Takes a partition for a worker, unless its step execution already ended or a live worker holds it. A
     * holder whose heartbeat is older than staleAfter, that stopped, or that deadHere knows to be gone (a
     * process of this host that no longer exists) has lost it: its row ends as LOST and this worker takes
     * over. Serialized per partition by an advisory lock on the step execution id.
     */
    public Claim claim(long stepExecutionId, String workerId, Duration staleAfter, Predicate<Holder> deadHere) {
        return tx.execute(status -> {
            jdbc.queryForObject("SELECT pg_advisory_xact_lock(?)", Object.class, stepExecutionId);
            List<String> step = jdbc.queryForList("SELECT status FROM batch_step_execution WHERE step_execution_id = ?",
                    String.class, stepExecutionId);
            if (step.isEmpty()) return new Claim.Finished("MISSING");
            String stepStatus = step.getFirst();
            if (!stepStatus.equals("STARTING") && !stepStatus.equals("STARTED")) return new Claim.Finished(stepStatus);
            List<Holder> holders = jdbc.query("""
                    SELECT w.worker_id, w.host, w.pid FROM vlm_partition_run p JOIN vlm_worker w ON w.worker_id = p.worker_id
                    WHERE p.step_execution_id = ? AND p.ended_at IS NULL AND w.stopped_at IS NULL
                      AND w.last_seen > now() - make_interval(secs => ?)""",
                    (rs, i) -> new Holder(rs.getString(1), rs.getString(2), rs.getLong(3)), stepExecutionId, seconds(staleAfter));
            for (Holder h : holders) {
                if (!deadHere.test(h)) return new Claim.HeldBy(h.workerId());
            }
            int lost = jdbc.update("""
                    UPDATE vlm_partition_run SET ended_at = now(), status = 'LOST'
                    WHERE step_execution_id = ? AND ended_at IS NULL""", stepExecutionId);
            Long id = jdbc.queryForObject("""
                    INSERT INTO vlm_partition_run (step_execution_id, job_execution_id, run_id, partition_name, worker_id, started_at, status)
                    SELECT s.step_execution_id, s.job_execution_id, e.job_instance_id, s.step_name, ?, now(), 'RUNNING'
                    FROM batch_step_execution s JOIN batch_job_execution e ON e.job_execution_id = s.job_execution_id
                    WHERE s.step_execution_id = ?
                    RETURNING id""", Long.class, workerId, stepExecutionId);
            return new Claim.Taken(id, lost > 0);
        });
    }

    public void finish(long claimId, String status, long items) {
        jdbc.update("UPDATE vlm_partition_run SET ended_at = now(), status = ?, items = ? WHERE id = ?", status, items, claimId);
    }

    /**
     * Closes the open claims of partitions whose step execution has ended: a worker killed after Spring Batch
     * recorded its partition's end but before it recorded its own (finish) leaves its claim open, and no one
     * takes that partition again. The claim takes the step's status, end time and write count.
     */
    public int settleEnded(List<Long> stepExecutionIds) {
        if (stepExecutionIds.isEmpty()) return 0;
        return jdbc.update("""
                UPDATE vlm_partition_run p SET ended_at = COALESCE(s.end_time, now()), status = s.status, items = s.write_count
                FROM batch_step_execution s
                WHERE s.step_execution_id = p.step_execution_id AND p.step_execution_id = ANY (?::bigint[])
                  AND p.ended_at IS NULL AND s.status NOT IN ('STARTING', 'STARTED', 'STOPPING')""", array(stepExecutionIds));
    }

    /**
     * Partitions among stepExecutionIds that a worker started and then went silent on: the step execution is
     * still running, and no live worker holds it (its holder's heartbeat is older than staleAfter, or it
     * stopped). Marks their open claims LOST and returns the step execution ids.
     */
    public List<Long> takeLost(List<Long> stepExecutionIds, Duration staleAfter) {
        if (stepExecutionIds.isEmpty()) return List.of();
        String ids = array(stepExecutionIds);
        return tx.execute(status -> {
            List<Long> lost = jdbc.queryForList("""
                    SELECT p.step_execution_id FROM vlm_partition_run p
                    JOIN vlm_worker w ON w.worker_id = p.worker_id
                    JOIN batch_step_execution s ON s.step_execution_id = p.step_execution_id
                    WHERE p.step_execution_id = ANY (?::bigint[]) AND p.ended_at IS NULL AND s.status IN ('STARTING', 'STARTED')
                      AND (w.stopped_at IS NOT NULL OR w.last_seen <= now() - make_interval(secs => ?))""",
                    Long.class, ids, seconds(staleAfter));
            for (Long id : lost) {
                jdbc.update("UPDATE vlm_partition_run SET ended_at = now(), status = 'LOST' WHERE step_execution_id = ? AND ended_at IS NULL", id);
            }
            return lost;
        });
    }

    /** Step executions among ids that no worker has taken yet (their request is queued, or was lost with the broker). */
    public List<Long> unclaimed(List<Long> stepExecutionIds) {
        if (stepExecutionIds.isEmpty()) return List.of();
        return jdbc.queryForList("""
                SELECT s.step_execution_id FROM batch_step_execution s
                WHERE s.step_execution_id = ANY (?::bigint[]) AND s.status IN ('STARTING', 'STARTED')
                  AND NOT EXISTS (SELECT 1 FROM vlm_partition_run p WHERE p.step_execution_id = s.step_execution_id AND p.ended_at IS NULL)""",
                Long.class, array(stepExecutionIds));
    }

    /** How many times a partition was lost with its worker. */
    public int losses(long stepExecutionId) {
        Integer n = jdbc.queryForObject("SELECT count(*) FROM vlm_partition_run WHERE step_execution_id = ? AND status = 'LOST'",
                Integer.class, stepExecutionId);
        return n == null ? 0 : n;
    }

    /** Per worker that took partitions of a run: partitions it finished, items it wrote, partitions lost with it. */
    public List<WorkerRow> workersOfRun(long runId) {
        return jdbc.query("""
                SELECT w.worker_id, w.host, w.pid,
                       count(*) FILTER (WHERE p.status NOT IN ('LOST', 'RUNNING')) AS partitions,
                       coalesce(sum(p.items), 0) AS items,
                       count(*) FILTER (WHERE p.status = 'LOST') AS lost,
                       floor(extract(epoch FROM now() - w.last_seen))::bigint AS last_seen, w.stopped_at IS NOT NULL AS stopped
                FROM vlm_partition_run p JOIN vlm_worker w ON w.worker_id = p.worker_id
                WHERE p.run_id = ?
                GROUP BY w.worker_id, w.host, w.pid, w.stopped_at, w.last_seen
                ORDER BY w.host, w.pid, w.worker_id""",
                (rs, i) -> new WorkerRow(rs.getString(1), rs.getString(2), rs.getLong(3), rs.getLong(4), rs.getLong(5), rs.getLong(6),
                        rs.getLong(7), rs.getBoolean(8)), runId);
    }

    public List<PartitionRun> partitionRuns(long runId) {
        return jdbc.query("""
                SELECT step_execution_id, partition_name, worker_id, status, items FROM vlm_partition_run WHERE run_id = ? ORDER BY id""",
                (rs, i) -> new PartitionRun(rs.getLong(1), rs.getString(2), rs.getString(3), rs.getString(4), rs.getLong(5)), runId);
    }

    public Optional<Long> anyLiveWorker(Duration staleAfter) {
        return jdbc.queryForList("""
                SELECT count(*) FROM vlm_worker WHERE stopped_at IS NULL AND last_seen > now() - make_interval(secs => ?)""",
                Long.class, seconds(staleAfter)).stream().findFirst().filter(n -> n > 0);
    }

    /** A bigint[] literal of ids (numbers only, so nothing to escape). */
    private static String array(List<Long> ids) {
        StringBuilder b = new StringBuilder("{");
        for (int i = 0; i < ids.size(); i++) b.append(i == 0 ? "" : ",").append(ids.get(i).longValue());
        return b.append('}').toString();
    }

    private static double seconds(Duration d) {
        return d.toMillis() / 1000.0;
    }
}
