-- Which revocations a gateway has applied (closed sessions, cancelled
-- tasks, ended upstream access), so that one recorded while no gateway ran
-- is applied at the next start, and what applying it did.
ALTER TABLE revocations ADD COLUMN applied_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE revocations ADD COLUMN applied_note TEXT NOT NULL DEFAULT '';
