-- Inventory: client records (metadata snapshots, approved baselines,
-- first/last seen), upstream tool fingerprints, per-user upstream
-- credentials (metadata only, never secrets), trusted identity providers
-- and durable revocations. Times are Unix nanoseconds (0 = unset); lists
-- are JSON arrays of strings.
CREATE TABLE inventory_clients (
  client_id                TEXT PRIMARY KEY,
  metadata                 TEXT NOT NULL DEFAULT '',
  metadata_digest          TEXT NOT NULL DEFAULT '',
  redirect_uris            TEXT NOT NULL DEFAULT '[]',
  key_thumbprints          TEXT NOT NULL DEFAULT '[]',
  jwks_uri                 TEXT NOT NULL DEFAULT '',
  approved_redirect_uris   TEXT NOT NULL DEFAULT '[]',
  approved_key_thumbprints TEXT NOT NULL DEFAULT '[]',
  approved_jwks_uri        TEXT NOT NULL DEFAULT '',
  changed                  BOOLEAN NOT NULL DEFAULT false,
  changed_at               BIGINT NOT NULL DEFAULT 0,
  approved_at              BIGINT NOT NULL DEFAULT 0,
  approved_by              TEXT NOT NULL DEFAULT '',
  first_seen               BIGINT NOT NULL DEFAULT 0,
  last_seen                BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE inventory_tools (
  upstream            TEXT NOT NULL,
  name                TEXT NOT NULL,
  definition          TEXT NOT NULL,
  digest              TEXT NOT NULL,
  approved_definition TEXT NOT NULL DEFAULT '',
  approved_digest     TEXT NOT NULL DEFAULT '',
  changed             BOOLEAN NOT NULL DEFAULT false,
  removed             BOOLEAN NOT NULL DEFAULT false,
  first_seen          BIGINT NOT NULL DEFAULT 0,
  last_seen           BIGINT NOT NULL DEFAULT 0,
  changed_at          BIGINT NOT NULL DEFAULT 0,
  approved_at         BIGINT NOT NULL DEFAULT 0,
  approved_by         TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (upstream, name)
);

CREATE TABLE inventory_upstream_credentials (
  principal  TEXT NOT NULL,
  upstream   TEXT NOT NULL,
  kind       TEXT NOT NULL DEFAULT '',
  scope      TEXT NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL DEFAULT 0,
  expires_at BIGINT NOT NULL DEFAULT 0,
  last_used  BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (principal, upstream)
);

CREATE TABLE inventory_identity_providers (
  issuer     TEXT PRIMARY KEY,
  name       TEXT NOT NULL DEFAULT '',
  kind       TEXT NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE revocations (
  kind   TEXT NOT NULL,
  id     TEXT NOT NULL,
  revoked_by TEXT NOT NULL DEFAULT '',
  reason TEXT NOT NULL DEFAULT '',
  at     BIGINT NOT NULL,
  PRIMARY KEY (kind, id)
);
