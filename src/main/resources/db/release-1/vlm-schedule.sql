-- Schema version 1 (release 1), part of db/Release1Schema: never edit it; change the schema with a
-- new migration in db/migration. Idempotent, because it also completes databases made by release 1.
-- Schedule state of `vlm-batch serve`.
-- One row per job a scheduler has seen, one row per (job, data interval) that was queued, by the cron
-- or by hand. The primary key is what keeps two app instances on one database from running an
-- interval twice: whoever inserts it first owns its queueing, and launching takes a per-job
-- advisory lock (see ScheduleStore.claim).

CREATE TABLE IF NOT EXISTS vlm_schedule_job (
    job_name       TEXT PRIMARY KEY,
    registered_at  TIMESTAMPTZ NOT NULL DEFAULT now()  -- first seen: where catchup starts when the job has no start_date
);

CREATE TABLE IF NOT EXISTS vlm_schedule_run (
    job_name         TEXT        NOT NULL,
    interval_start   TIMESTAMPTZ NOT NULL,
    interval_end     TIMESTAMPTZ NOT NULL,
    logical_date     DATE        NOT NULL,          -- the run's --date (Spring Batch job parameter "date")
    params           TEXT        NOT NULL DEFAULT '', -- k=v&... (ts=... for schedules firing more than daily)
    trigger          TEXT        NOT NULL DEFAULT 'schedule' CHECK (trigger IN ('schedule', 'manual')),
    state            TEXT        NOT NULL CHECK (state IN ('queued', 'running', 'up_for_retry', 'success', 'failed', 'stopped')),
    attempt          INT         NOT NULL DEFAULT 0,  -- launches so far (1 = first try)
    next_attempt_at  TIMESTAMPTZ,                     -- for up_for_retry
    owner            TEXT,                            -- scheduler instance executing it (host/pid/random)
    heartbeat_at     TIMESTAMPTZ,                     -- refreshed by the owner; a stale one marks an orphan
    stop_requested   BOOLEAN     NOT NULL DEFAULT FALSE,
    last_error       TEXT,
    queued_at        TIMESTAMPTZ NOT NULL,
    started_at       TIMESTAMPTZ,
    ended_at         TIMESTAMPTZ,
    PRIMARY KEY (job_name, interval_start)
);
CREATE INDEX IF NOT EXISTS vlm_schedule_run_state ON vlm_schedule_run (job_name, state);
-- One row per Spring Batch run (job + logical date + params): a manual trigger and the cron never
-- queue the same run twice.
CREATE UNIQUE INDEX IF NOT EXISTS vlm_schedule_run_date ON vlm_schedule_run (job_name, logical_date, params);
