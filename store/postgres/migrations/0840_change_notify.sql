-- Changes that every replica must apply at once are announced with NOTIFY
-- on the channel mcpgate_change, at the commit of the changing
-- transaction, whoever made them (a replica, the command line, SQL). The
-- payload names what changed: 'revocations' (a revocation recorded or
-- lifted), 'clients' (a client added, approved, refused or removed;
-- its inventory record changed or approved), or 'session_ended:' and the
-- id of a downstream session that ended. Identical payloads of one
-- transaction are delivered once.
CREATE FUNCTION mcpgate_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('mcpgate_change', TG_ARGV[0]);
  RETURN NULL;
END;
$$;

CREATE TRIGGER revocations_changed AFTER INSERT OR DELETE ON revocations
FOR EACH STATEMENT EXECUTE FUNCTION mcpgate_notify_change('revocations');

CREATE TRIGGER clients_changed AFTER INSERT OR UPDATE OR DELETE ON clients
FOR EACH STATEMENT EXECUTE FUNCTION mcpgate_notify_change('clients');

CREATE TRIGGER inventory_clients_changed AFTER INSERT OR UPDATE OR DELETE ON inventory_clients
FOR EACH STATEMENT EXECUTE FUNCTION mcpgate_notify_change('clients');

CREATE FUNCTION gateway_session_ended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('mcpgate_change', 'session_ended:' || NEW.id);
  RETURN NULL;
END;
$$;

CREATE TRIGGER gateway_sessions_ended AFTER UPDATE OF ended_at ON gateway_sessions
FOR EACH ROW WHEN (OLD.ended_at = 0 AND NEW.ended_at <> 0)
EXECUTE FUNCTION gateway_session_ended();
