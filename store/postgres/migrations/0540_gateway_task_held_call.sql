-- The call a task held by the gateway waits to run (approval inside a
-- task), sealed, so that a restarted gateway keeps waiting for the
-- approval and runs the call when it is approved.
ALTER TABLE gateway_tasks ADD COLUMN held_call BYTEA;
