-- Schema version 1 (release 1), part of db/Release1Schema: never edit it; change the schema with a
-- new migration in db/migration. Idempotent, because it also completes databases made by release 1.
-- vlm-batch tables: one row per run, one row per image of a run (frozen by the discover step),
-- one row per (image, task) result. The Spring Batch job repository tables come from
-- spring-batch-core's schema-postgresql.sql, applied by the same migration.

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
