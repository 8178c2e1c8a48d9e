-- vlm-batch tables: one row per run, one row per image of a run (frozen by the discover step),
-- one row per (image, task) result. Idempotent: the app applies it at every start.
-- The Spring Batch job repository tables come from spring-batch-core's schema-postgresql.sql,
-- which the app applies when BATCH_JOB_INSTANCE is missing.

CREATE TABLE IF NOT EXISTS vlm_run (
    run_id        BIGINT PRIMARY KEY,            -- = BATCH_JOB_INSTANCE.JOB_INSTANCE_ID (job name + logical date + params)
    job_name      TEXT        NOT NULL,
    logical_date  DATE        NOT NULL,
    params        TEXT        NOT NULL DEFAULT '',
    discovered    BOOLEAN     NOT NULL DEFAULT FALSE, -- true once the work-item list is complete and frozen
    owner_host    TEXT,                          -- process currently executing the run, to tell a killed run
    owner_pid     BIGINT,                        -- from a live one before `restart` recovers it
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS vlm_run_job ON vlm_run (job_name, logical_date);

CREATE TABLE IF NOT EXISTS vlm_work_item (
    id          BIGSERIAL PRIMARY KEY,
    run_id      BIGINT      NOT NULL REFERENCES vlm_run (run_id) ON DELETE CASCADE,
    item_key    TEXT        NOT NULL,
    uri         TEXT        NOT NULL,
    metadata    JSONB       NOT NULL DEFAULT '{}'::jsonb,
    status      TEXT        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
    error       TEXT,
    width       INT,
    height      INT,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (run_id, item_key)
);
-- The infer step pages through pending items of one run by id range.
CREATE INDEX IF NOT EXISTS vlm_work_item_pending ON vlm_work_item (run_id, id) WHERE status = 'pending';

CREATE TABLE IF NOT EXISTS vlm_result (
    work_item_id      BIGINT      NOT NULL REFERENCES vlm_work_item (id) ON DELETE CASCADE,
    task              TEXT        NOT NULL,
    status            TEXT        NOT NULL CHECK (status IN ('done', 'failed')),
    answer            TEXT,                      -- raw answer of the model
    error             TEXT,
    model             TEXT,
    prompt_tokens     INT,
    completion_tokens INT,
    latency_ms        INT,
    attempts          INT,
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (work_item_id, task)
);

-- Schedule state of `vlm-batch serve` (idempotent; applied when the scheduler starts).
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
