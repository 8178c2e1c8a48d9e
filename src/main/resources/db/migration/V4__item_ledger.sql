-- The item ledger (issue 11): what each item's bytes were and what each answer was asked with, so a
-- later run can reuse a done answer instead of asking the server again.
ALTER TABLE vlm_work_item ADD COLUMN content_hash TEXT;      -- SHA-256 hex of the bytes (a page: document bytes + page number); set when prepared
ALTER TABLE vlm_work_item ADD COLUMN reused BOOLEAN;        -- TRUE: every task's answer was reused, no request sent

ALTER TABLE vlm_result ADD COLUMN content_hash TEXT;         -- copied from the item, so the lookup needs no join to find candidates
ALTER TABLE vlm_result ADD COLUMN fingerprint TEXT;          -- SHA-256 hex of model, final prompt, labels, sampling, resize
ALTER TABLE vlm_result ADD COLUMN reused_from_run BIGINT;    -- the run whose request produced this answer; NULL when asked in this run

CREATE INDEX vlm_result_ledger ON vlm_result (content_hash, fingerprint) WHERE status = 'done';

-- where a run sent its requests, so `plan` can estimate from the rate of earlier runs on the same endpoint and model
ALTER TABLE vlm_run ADD COLUMN inference_endpoint TEXT;      -- the base URL, or "embedded"
ALTER TABLE vlm_run ADD COLUMN inference_model TEXT;         -- the model the server reported

-- retry: an attempt is its own Batch job instance working on the items of the run it retries
ALTER TABLE vlm_run ADD COLUMN retry_of BIGINT;              -- the run whose failed items this attempt asks again; NULL for a run itself
ALTER TABLE vlm_run ADD COLUMN attempt INT;                 -- of an attempt: 2, 3, ... (NULL: the run itself, attempt 1)

-- answers an attempt replaced, so earlier attempts stay readable; vlm_result holds the latest
CREATE TABLE vlm_result_history (
    work_item_id      BIGINT      NOT NULL REFERENCES vlm_work_item (id) ON DELETE CASCADE,
    task              TEXT        NOT NULL,
    replaced_by_attempt INT       NOT NULL,
    status            TEXT        NOT NULL,
    answer            TEXT,
    error             TEXT,
    model             TEXT,
    prompt_tokens     INT,
    completion_tokens INT,
    latency_ms        INT,
    attempts          INT,
    fingerprint       TEXT,
    reused_from_run   BIGINT,
    answered_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (work_item_id, task, replaced_by_attempt)
);
