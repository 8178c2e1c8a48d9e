-- Archive members that discovery skipped because they are neither an image nor an expandable container
-- (a README.txt inside a ZIP): they have no work item, so the run keeps their count for its summary.
-- NULL for runs discovered before this column existed.
ALTER TABLE vlm_run ADD COLUMN members_skipped BIGINT;
