-- Audit layer: the hash-chained audit log and its signed checkpoints.
-- Times are Unix nanoseconds. Rows are append-only; the triggers refuse
-- accidental UPDATE and DELETE (tampering by someone who can drop them is
-- what `mcpgate audit verify` detects).
CREATE TABLE audit_records (
  seq               BIGINT PRIMARY KEY,
  time              BIGINT NOT NULL,
  principal_user    TEXT NOT NULL DEFAULT '',
  principal_client  TEXT NOT NULL DEFAULT '',
  principal_session TEXT NOT NULL DEFAULT '',
  upstream          TEXT NOT NULL DEFAULT '',
  action            TEXT NOT NULL DEFAULT '',
  target            TEXT NOT NULL DEFAULT '',
  decision          TEXT NOT NULL DEFAULT '',
  policy_version    TEXT NOT NULL DEFAULT '',
  policies          TEXT NOT NULL DEFAULT '',
  args_digest       TEXT NOT NULL DEFAULT '',
  result_digest     TEXT NOT NULL DEFAULT '',
  args              BYTEA,
  result            BYTEA,
  outcome           TEXT NOT NULL DEFAULT '',
  error             TEXT NOT NULL DEFAULT '',
  latency_us        BIGINT NOT NULL DEFAULT 0,
  phase             TEXT NOT NULL DEFAULT '',
  prev_hash         TEXT NOT NULL,
  hash              TEXT NOT NULL
);

CREATE INDEX audit_records_time ON audit_records (time);

CREATE FUNCTION audit_records_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit records are append-only';
END;
$$;

CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records
FOR EACH ROW EXECUTE FUNCTION audit_records_append_only();

CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records
FOR EACH ROW EXECUTE FUNCTION audit_records_append_only();

CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records
FOR EACH STATEMENT EXECUTE FUNCTION audit_records_append_only();

CREATE TABLE audit_checkpoints (
  seq       BIGINT PRIMARY KEY,
  hash      TEXT NOT NULL,
  signature BYTEA NOT NULL,
  key_id    TEXT NOT NULL,
  time      BIGINT NOT NULL
);
