package io.vlmbatch.web;

/**
 * One run of a job in the API's list (GET /api/jobs/{job}/runs, and a job's lastRun): what the scheduler
 * knows of it (null for a CLI run), what Batch knows (null while queued), its item counts and one state word.
 */
public record RunSummary(String logicalDate, String params, String scheduleState, String trigger, Integer attempt,
                         String lastError, String intervalStart, String intervalEnd, String nextAttemptAt,
                         Boolean stopRequested, Long runId, Long executionId, String batchStatus, String startedAt,
                         String endedAt, long done, long failed, long pending, String state) {}
