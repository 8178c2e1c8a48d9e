-- The item ledger (issue 11): what each item's bytes were and what each answer was asked with, so a
-- later run can reuse a done answer instead of asking the server again.
ALTER TABLE vlm_work_item ADD COLUMN content_hash TEXT;      -- SHA-256 hex of the bytes (a page: document bytes + page number); set when prepared
ALTER TABLE vlm_work_item ADD COLUMN reused BOOLEAN NOT NULL DEFAULT FALSE; -- every task's answer was reused, no request sent

ALTER TABLE vlm_result ADD COLUMN content_hash TEXT;         -- copied from the item, so the lookup needs no join to find candidates
ALTER TABLE vlm_result ADD COLUMN fingerprint TEXT;          -- SHA-256 hex of model, final prompt, labels, sampling, resize
ALTER TABLE vlm_result ADD COLUMN reused_from_run BIGINT;    -- the run whose request produced this answer; NULL when asked in this run

CREATE INDEX vlm_result_ledger ON vlm_result (content_hash, fingerprint) WHERE status = 'done';

-- where a run sent its requests, so `plan` can estimate from the rate of earlier runs on the same endpoint and model
ALTER TABLE vlm_run ADD COLUMN inference_endpoint TEXT;      -- the base URL, or "embedded"
ALTER TABLE vlm_run ADD COLUMN inference_model TEXT;         -- the model the server reported
