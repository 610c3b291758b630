-- Controls layer: requests for human approval of tool calls. Times are
-- Unix nanoseconds (0 = unset). A row is pending until an approver
-- decides; an approved row is consumed by exactly one call. Expiry is not
-- stored as a state: readers compare expires_at with the current time.
CREATE TABLE approvals (
  id             TEXT PRIMARY KEY,
  binding        TEXT NOT NULL,
  principal      TEXT NOT NULL,
  client         TEXT NOT NULL DEFAULT '',
  session        TEXT NOT NULL DEFAULT '',
  upstream       TEXT NOT NULL DEFAULT '',
  tool           TEXT NOT NULL,
  arguments      BYTEA,
  policy_version TEXT NOT NULL DEFAULT '',
  policies       TEXT NOT NULL DEFAULT '',
  reason         TEXT NOT NULL DEFAULT '',
  status         TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'consumed')),
  approver       TEXT NOT NULL DEFAULT '',
  note           TEXT NOT NULL DEFAULT '',
  created_at     BIGINT NOT NULL,
  expires_at     BIGINT NOT NULL,
  decided_at     BIGINT NOT NULL DEFAULT 0,
  consumed_at    BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX approvals_binding ON approvals (binding, created_at);
CREATE INDEX approvals_status ON approvals (status, created_at);
CREATE INDEX approvals_expires ON approvals (expires_at);
