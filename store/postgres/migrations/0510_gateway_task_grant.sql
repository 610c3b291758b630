-- The grant each task was started under (token family id, or the id of a
-- token without family), so that revoking a grant cancels its tasks.
ALTER TABLE gateway_tasks ADD COLUMN grant_id TEXT NOT NULL DEFAULT '';
