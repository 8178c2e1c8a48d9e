-- The owner of a run writes a heartbeat every few seconds (io.vlmbatch.run.Heartbeat): other hosts,
-- which cannot see the owner's process, count it alive while the heartbeat is fresh.
ALTER TABLE vlm_run ADD COLUMN owner_heartbeat_at TIMESTAMPTZ;
