-- PostgreSQL announces changes to the other replicas with NOTIFY (its
-- migration of this number); SQLite has one gateway process and nothing to
-- announce: the number is kept so that the two lists match.
SELECT 1;
