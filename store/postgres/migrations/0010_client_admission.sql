-- Client admission: an administrator's decision on a client (pending,
-- approved, refused; '' when the configuration of its registration path
-- decides alone), who made it and when, and when the client first
-- obtained a token (0 = never), so that registrations never used can be
-- collected. Times are Unix nanoseconds (0 = unset).
ALTER TABLE clients ADD COLUMN status TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN status_by TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN status_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN first_used_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX clients_kind_unused ON clients(kind, first_used_at, created_at);
