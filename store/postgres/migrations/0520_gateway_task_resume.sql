-- What a restarted gateway needs to take its tasks back: the capability
-- profile and the state of the upstream session each task runs in (HTTP
-- upstreams: session id, protocol version, initialize result as JSON),
-- and the task's result once it ended, sealed (AES-256-GCM, the key in the
-- data directory), with its SHA-256 digest and size. A result above the
-- gateway's bound keeps only its digest and size (result_sealed empty).
ALTER TABLE gateway_tasks ADD COLUMN profile TEXT NOT NULL DEFAULT '';
ALTER TABLE gateway_tasks ADD COLUMN upstream_session TEXT NOT NULL DEFAULT '';
ALTER TABLE gateway_tasks ADD COLUMN upstream_protocol TEXT NOT NULL DEFAULT '';
ALTER TABLE gateway_tasks ADD COLUMN upstream_init BYTEA;
ALTER TABLE gateway_tasks ADD COLUMN result_sealed BYTEA;
ALTER TABLE gateway_tasks ADD COLUMN result_digest TEXT NOT NULL DEFAULT '';
ALTER TABLE gateway_tasks ADD COLUMN result_size BIGINT NOT NULL DEFAULT 0;
