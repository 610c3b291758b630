-- Task governance: the tool a task runs (as the client named it) and the
-- approval a gateway-held task waits for. A task held for approval has no
-- upstream task yet (upstream_task_id = ''), so the uniqueness of
-- (upstream, upstream_task_id) holds only for tasks that have one.
ALTER TABLE gateway_tasks ADD COLUMN tool TEXT NOT NULL DEFAULT '';
ALTER TABLE gateway_tasks ADD COLUMN approval_id TEXT NOT NULL DEFAULT '';
DROP INDEX gateway_tasks_upstream;
CREATE UNIQUE INDEX gateway_tasks_upstream ON gateway_tasks (upstream, upstream_task_id) WHERE upstream_task_id != '';
CREATE INDEX gateway_tasks_cancel_requested ON gateway_tasks (status_message) WHERE status = 'cancelled';
