-- A counter that changes whenever an access token is revoked, by any
-- process (the gateway, the command line, another replica): resource
-- servers cache verified tokens and poll it to drop their caches, instead
-- of querying access_tokens on every request.
CREATE TABLE token_revocation_version (
  id      INTEGER PRIMARY KEY CHECK (id = 1),
  version INTEGER NOT NULL
);
INSERT INTO token_revocation_version (id, version) VALUES (1, 0);
CREATE TRIGGER access_tokens_revoked AFTER UPDATE OF revoked ON access_tokens
WHEN NEW.revoked <> OLD.revoked
BEGIN
  UPDATE token_revocation_version SET version = version + 1 WHERE id = 1;
END;
