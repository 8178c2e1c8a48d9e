package io.vlmbatch.web;

import io.vlmbatch.store.ArchiveCounts;
import java.util.List;

/**
 * One run as GET /api/runs/{runId} shows it: its counts, Batch executions (newest first) and the steps of
 * the newest, failed items with their reasons, the tasks answered so far, the scheduler's row (null for
 * a CLI run) and one state word. imagesPerSecond and elapsedSeconds: of the newest execution, null
 * before it starts. archives: documents, their pages and archive members skipped (all zero for a run
 * over plain images). ledger: what the item ledger saved and the run's retry attempts.
 */
public record RunDetail(long runId, String job, String logicalDate, String params, boolean discovered, Counts counts,
                        Double imagesPerSecond, Double elapsedSeconds, List<Execution> executions, List<StepRow> steps,
                        List<Failure> failures, List<String> tasks, Schedule schedule, String state,
                        ArchiveCounts archives, Ledger ledger) {

    /**
     * reused: done items whose every answer was copied from an earlier run (no request); asked: done items
     * for which at least one request was sent; failed: items with a reason. attempts: retries, newest first.
     */
    public record Ledger(long reused, long asked, long failed, List<Attempt> attempts) {}

    /** A retry attempt of the run (2, 3, ...): its own Batch instance, the status of its newest execution. */
    public record Attempt(int attempt, long attemptRunId, String status, String task, String startedAt, String endedAt) {}

    public record Counts(long done, long failed, long pending, long total) {}

    public record Execution(long id, String status, String exitCode, String exitMessage, String startedAt, String endedAt) {}

    public record StepRow(String name, String status, long read, long written, long commits, long rollbacks,
                          String exitMessage, String startedAt, String endedAt) {}

    public record Failure(long itemId, String itemKey, String uri, String error) {}

    public record Schedule(String state, String trigger, int attempt, String lastError, String intervalStart,
                           String intervalEnd, String nextAttemptAt) {}
}
