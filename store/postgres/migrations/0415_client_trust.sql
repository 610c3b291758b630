-- Drift of client trust objects: the canonical digest of the metadata
-- document, the keys behind jwks_uri (current and approved), and a short
-- history of changes (a JSON array, times in Unix nanoseconds).
ALTER TABLE inventory_clients ADD COLUMN document_digest TEXT NOT NULL DEFAULT '';
ALTER TABLE inventory_clients ADD COLUMN approved_document_digest TEXT NOT NULL DEFAULT '';
ALTER TABLE inventory_clients ADD COLUMN remote_keys_uri TEXT NOT NULL DEFAULT '';
ALTER TABLE inventory_clients ADD COLUMN remote_key_thumbprints TEXT NOT NULL DEFAULT '[]';
ALTER TABLE inventory_clients ADD COLUMN approved_remote_key_thumbprints TEXT NOT NULL DEFAULT '[]';
ALTER TABLE inventory_clients ADD COLUMN remote_keys_fetched_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE inventory_clients ADD COLUMN remote_keys_approved_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE inventory_clients ADD COLUMN history TEXT NOT NULL DEFAULT '[]';
