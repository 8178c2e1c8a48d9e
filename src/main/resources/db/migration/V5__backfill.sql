-- Backfill (issue 11): runs queued for a range of logical dates by `vlm-batch backfill` or the web UI,
-- and reruns of finished runs (a retry of a run's failed items from the web UI; backfill's
-- --reprocess completed) carried out by the scheduler as a new attempt over the run's items.
ALTER TABLE vlm_schedule_run DROP CONSTRAINT IF EXISTS vlm_schedule_run_trigger_check;
ALTER TABLE vlm_schedule_run ADD CONSTRAINT vlm_schedule_run_trigger_check
    CHECK (trigger IN ('schedule', 'manual', 'backfill'));

-- NULL: start the run or resume it; 'failed': a new attempt over its failed items; 'all': over every item
ALTER TABLE vlm_schedule_run ADD COLUMN rerun TEXT CHECK (rerun IN ('failed', 'all'));

-- an item's page lists the other runs that saw the same bytes
CREATE INDEX vlm_work_item_content_hash ON vlm_work_item (content_hash);
