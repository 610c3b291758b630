-- Gateway: per-user OAuth tokens for upstream MCP servers ("oauth_user"
-- credentials). Only ciphertext is stored: the gateway seals each token
-- with AES-256-GCM under a key kept outside the database (in the data
-- directory), bound to its (principal, upstream) row.
-- Times are Unix nanoseconds.
CREATE TABLE upstream_tokens (
  principal  TEXT NOT NULL,
  upstream   TEXT NOT NULL,
  ciphertext BYTEA NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (principal, upstream)
);
