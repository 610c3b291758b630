-- Identity layer: users, OAuth clients, codes, tokens, replay cache,
-- sessions, signing keys and fetched client metadata documents.
-- Times are Unix nanoseconds (0 = unset).
CREATE TABLE users (
  username      TEXT PRIMARY KEY,
  password_hash TEXT NOT NULL,
  created_at    BIGINT NOT NULL
);

CREATE TABLE clients (
  id            TEXT PRIMARY KEY,
  kind          TEXT NOT NULL,
  name          TEXT NOT NULL DEFAULT '',
  secret_hash   TEXT NOT NULL DEFAULT '',
  redirect_uris TEXT NOT NULL DEFAULT '[]',
  grant_types   TEXT NOT NULL DEFAULT '[]',
  auth_method   TEXT NOT NULL DEFAULT '',
  scope         TEXT NOT NULL DEFAULT '',
  jwks          TEXT NOT NULL DEFAULT '',
  jwks_uri      TEXT NOT NULL DEFAULT '',
  metadata      TEXT NOT NULL DEFAULT '',
  created_at    BIGINT NOT NULL
);

CREATE TABLE auth_codes (
  code_hash      TEXT PRIMARY KEY,
  client_id      TEXT NOT NULL,
  subject        TEXT NOT NULL,
  redirect_uri   TEXT NOT NULL,
  code_challenge TEXT NOT NULL,
  resource       TEXT NOT NULL,
  scope          TEXT NOT NULL,
  family_id      TEXT NOT NULL,
  expires_at     BIGINT NOT NULL,
  used_at        BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE refresh_tokens (
  token_hash TEXT PRIMARY KEY,
  family_id  TEXT NOT NULL,
  client_id  TEXT NOT NULL,
  subject    TEXT NOT NULL,
  resource   TEXT NOT NULL,
  scope      TEXT NOT NULL,
  expires_at BIGINT NOT NULL,
  used_at    BIGINT NOT NULL DEFAULT 0,
  revoked    BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);

CREATE TABLE access_tokens (
  id         TEXT PRIMARY KEY,
  family_id  TEXT NOT NULL,
  client_id  TEXT NOT NULL,
  subject    TEXT NOT NULL,
  resource   TEXT NOT NULL,
  scope      TEXT NOT NULL,
  issued_at  BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  revoked    BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX access_tokens_family ON access_tokens(family_id);

CREATE TABLE used_once (
  namespace  TEXT NOT NULL,
  id         TEXT NOT NULL,
  expires_at BIGINT NOT NULL,
  PRIMARY KEY (namespace, id)
);

CREATE TABLE sessions (
  id_hash    TEXT PRIMARY KEY,
  kind       TEXT NOT NULL,
  subject    TEXT NOT NULL,
  data       TEXT NOT NULL,
  expires_at BIGINT NOT NULL
);

CREATE TABLE signing_keys (
  id          TEXT PRIMARY KEY,
  algorithm   TEXT NOT NULL,
  private_jwk TEXT NOT NULL,
  created_at  BIGINT NOT NULL,
  retired_at  BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE metadata_documents (
  url             TEXT PRIMARY KEY,
  body            TEXT NOT NULL,
  digest          TEXT NOT NULL,
  previous_digest TEXT NOT NULL DEFAULT '',
  fetched_at      BIGINT NOT NULL,
  changed_at      BIGINT NOT NULL DEFAULT 0,
  expires_at      BIGINT NOT NULL
);
