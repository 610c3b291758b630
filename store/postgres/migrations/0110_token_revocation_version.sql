-- A counter that changes whenever an access token is revoked, by any
-- process (the gateway, the command line, another replica): resource
-- servers cache verified tokens and poll it to drop their caches, instead
-- of querying access_tokens on every request. On PostgreSQL the trigger
-- also sends the new version on the channel mcpgate_token_revocation
-- (NOTIFY, delivered at commit), so that listeners are told at once.
CREATE TABLE token_revocation_version (
  id      BIGINT PRIMARY KEY CHECK (id = 1),
  version BIGINT NOT NULL
);
INSERT INTO token_revocation_version (id, version) VALUES (1, 0);
CREATE FUNCTION access_tokens_revoked() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v BIGINT;
BEGIN
  UPDATE token_revocation_version SET version = version + 1 WHERE id = 1 RETURNING version INTO v;
  PERFORM pg_notify('mcpgate_token_revocation', v::text);
  RETURN NULL;
END;
$$;

CREATE TRIGGER access_tokens_revoked AFTER UPDATE OF revoked ON access_tokens
FOR EACH ROW WHEN (NEW.revoked IS DISTINCT FROM OLD.revoked)
EXECUTE FUNCTION access_tokens_revoked();
