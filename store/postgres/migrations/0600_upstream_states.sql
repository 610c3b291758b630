-- The state of a running gateway's own session with each upstream
-- (connecting, ready, backoff, circuit_open, per_user, stopped), written
-- by the gateway when a state changes, so that `mcpgate inventory` (another
-- process) shows it. Times are Unix nanoseconds (0 = unset).
CREATE TABLE upstream_states (
  name       TEXT PRIMARY KEY,
  state      TEXT NOT NULL,
  since      BIGINT NOT NULL DEFAULT 0,
  failures   BIGINT NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  retry_at   BIGINT NOT NULL DEFAULT 0,
  updated_at BIGINT NOT NULL DEFAULT 0
);
