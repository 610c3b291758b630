-- Tasks clients started through the gateway, with their owners, so that a
-- restarted gateway still enforces ownership and reports lost work.
-- Times are Unix nanoseconds (0 = unset).
CREATE TABLE gateway_tasks (
  id               TEXT PRIMARY KEY,
  principal        TEXT NOT NULL,
  client_id        TEXT NOT NULL DEFAULT '',
  upstream         TEXT NOT NULL,
  upstream_task_id TEXT NOT NULL,
  status           TEXT NOT NULL DEFAULT '',
  status_message   TEXT NOT NULL DEFAULT '',
  created_at       BIGINT NOT NULL,
  updated_at       BIGINT NOT NULL,
  expires_at       BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX gateway_tasks_upstream ON gateway_tasks (upstream, upstream_task_id);
CREATE INDEX gateway_tasks_principal ON gateway_tasks (principal, created_at);
