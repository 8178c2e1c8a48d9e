-- Remote workers (issue 12): `vlm-batch worker` processes that run infer partitions sent through RabbitMQ.
-- Each worker beats here every few seconds; the manager of a run counts a partition as lost when the worker
-- holding it stops beating, and sends it again.
CREATE TABLE vlm_worker (
    worker_id   TEXT        PRIMARY KEY,            -- host:pid:start-millis, unique per worker process
    host        TEXT        NOT NULL,
    pid         BIGINT      NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    last_seen   TIMESTAMPTZ NOT NULL,
    stopped_at  TIMESTAMPTZ                         -- set by a worker that shut down cleanly
);

-- Every time a worker took a partition (one partition is a Batch step execution of infer-worker): which worker,
-- when, how it ended and how many items it wrote. A partition lost with its worker and sent again has two rows.
CREATE TABLE vlm_partition_run (
    id                 BIGSERIAL   PRIMARY KEY,
    step_execution_id  BIGINT      NOT NULL,
    job_execution_id   BIGINT      NOT NULL,
    run_id             BIGINT      NOT NULL,        -- the Batch job instance, as vlm_run.run_id
    partition_name     TEXT        NOT NULL,        -- infer-worker:p3
    worker_id          TEXT        NOT NULL REFERENCES vlm_worker (worker_id),
    started_at         TIMESTAMPTZ NOT NULL,
    ended_at           TIMESTAMPTZ,
    status             TEXT        NOT NULL,        -- RUNNING, then the step's end status, or LOST
    items              BIGINT      NOT NULL DEFAULT 0
);
CREATE INDEX vlm_partition_run_step ON vlm_partition_run (step_execution_id);
CREATE INDEX vlm_partition_run_run ON vlm_partition_run (run_id);
