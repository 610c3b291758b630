-- The clients' sessions with the gateway (live ones have ended_at = 0),
-- and the configured upstreams as a gateway last started with them, so
-- that the inventory shows both from the database. Ended sessions are
-- deleted after a retention by the gateway's sweep.
-- Times are Unix nanoseconds (0 = unset).
CREATE TABLE gateway_sessions (
  id          TEXT PRIMARY KEY,
  principal   TEXT NOT NULL,
  client_id   TEXT NOT NULL DEFAULT '',
  token_id    TEXT NOT NULL DEFAULT '',
  grant_id    TEXT NOT NULL DEFAULT '',
  transport   TEXT NOT NULL DEFAULT '',
  source_addr TEXT NOT NULL DEFAULT '',
  created_at  BIGINT NOT NULL,
  last_seen   BIGINT NOT NULL DEFAULT 0,
  ended_at    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX gateway_sessions_ended ON gateway_sessions (ended_at, created_at);
CREATE TABLE inventory_upstreams (
  name            TEXT PRIMARY KEY,
  transport       TEXT NOT NULL DEFAULT '',
  url             TEXT NOT NULL DEFAULT '',
  command         TEXT NOT NULL DEFAULT '[]',
  credential_type TEXT NOT NULL DEFAULT '',
  per_user        BOOLEAN NOT NULL DEFAULT false,
  owner           TEXT NOT NULL DEFAULT '',
  updated_at      BIGINT NOT NULL DEFAULT 0
);
