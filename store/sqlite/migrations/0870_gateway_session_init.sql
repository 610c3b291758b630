-- What the client sent in its initialize request (InitializeParams as
-- JSON), kept with the session's record so that another replica sharing
-- the database continues the session with the client's capabilities and
-- protocol version ('' for sessions recorded before this migration).
ALTER TABLE gateway_sessions ADD COLUMN client_init TEXT NOT NULL DEFAULT '';
