package sqlite

import (
	"context"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

var (
	_ store.GatewaySessions = (*Store)(nil)
	_ store.UpstreamRecords = (*Store)(nil)
)

const gatewaySessionCols = `id, principal, client_id, token_id, grant_id, transport, source_addr, created_at, last_seen, ended_at, client_init`

// PutGatewaySession implements store.GatewaySessions.
func (s *Store) PutGatewaySession(ctx context.Context, gs *store.GatewaySession) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO gateway_sessions (`+gatewaySessionCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT (id) DO UPDATE SET principal=excluded.principal, client_id=excluded.client_id, token_id=excluded.token_id,
		grant_id=excluded.grant_id, transport=excluded.transport, source_addr=excluded.source_addr, created_at=excluded.created_at,
		last_seen=excluded.last_seen, ended_at=excluded.ended_at, client_init=excluded.client_init`,
		gs.ID, gs.Principal, gs.ClientID, gs.TokenID, gs.Grant, gs.Transport, gs.SourceAddr, nanos(gs.CreatedAt), nanos(gs.LastSeen), nanos(gs.EndedAt), gs.ClientInit)
	return wrap("gateway session "+gs.ID, err)
}

// TouchGatewaySession implements store.GatewaySessions.
func (s *Store) TouchGatewaySession(ctx context.Context, id string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE gateway_sessions SET last_seen = ? WHERE id = ? AND ended_at = 0 AND last_seen < ?`, nanos(at), id, nanos(at))
	return wrap("gateway session "+id, err)
}

// EndGatewaySession implements store.GatewaySessions.
func (s *Store) EndGatewaySession(ctx context.Context, id string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE gateway_sessions SET ended_at = ? WHERE id = ? AND ended_at = 0`, nanos(at), id)
	return wrap("gateway session "+id, err)
}

// EndGatewaySessionsBefore implements store.GatewaySessions.
func (s *Store) EndGatewaySessionsBefore(ctx context.Context, before, at time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE gateway_sessions SET ended_at = ? WHERE ended_at = 0 AND created_at < ?`, nanos(at), nanos(before))
	if err != nil {
		return 0, wrap("gateway sessions", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// ListGatewaySessions implements store.GatewaySessions.
func (s *Store) ListGatewaySessions(ctx context.Context, ended bool) ([]*store.GatewaySession, error) {
	q := `SELECT ` + gatewaySessionCols + ` FROM gateway_sessions WHERE ended_at = 0 ORDER BY created_at, id`
	if ended {
		q = `SELECT ` + gatewaySessionCols + ` FROM gateway_sessions ORDER BY created_at, id`
	}
	rows, err := s.db.QueryContext(ctx, q)
	if err != nil {
		return nil, wrap("gateway sessions", err)
	}
	defer rows.Close()
	var out []*store.GatewaySession
	for rows.Next() {
		gs, err := scanGatewaySession(rows)
		if err != nil {
			return nil, wrap("gateway sessions", err)
		}
		out = append(out, gs)
	}
	return out, wrap("gateway sessions", rows.Err())
}

func scanGatewaySession(r scanner) (*store.GatewaySession, error) {
	var gs store.GatewaySession
	var created, seen, ended int64
	if err := r.Scan(&gs.ID, &gs.Principal, &gs.ClientID, &gs.TokenID, &gs.Grant, &gs.Transport, &gs.SourceAddr, &created, &seen, &ended, &gs.ClientInit); err != nil {
		return nil, err
	}
	gs.CreatedAt, gs.LastSeen, gs.EndedAt = fromNanos(created), fromNanos(seen), fromNanos(ended)
	return &gs, nil
}

// GetGatewaySession implements store.GatewaySessions.
func (s *Store) GetGatewaySession(ctx context.Context, id string) (*store.GatewaySession, error) {
	gs, err := scanGatewaySession(s.db.QueryRowContext(ctx, `SELECT `+gatewaySessionCols+` FROM gateway_sessions WHERE id = ?`, id))
	if err != nil {
		return nil, wrap("gateway session "+id, err)
	}
	return gs, nil
}

// EndIdleGatewaySessions implements store.GatewaySessions.
func (s *Store) EndIdleGatewaySessions(ctx context.Context, seenBefore, at time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE gateway_sessions SET ended_at = ? WHERE ended_at = 0 AND MAX(created_at, last_seen) < ?`, nanos(at), nanos(seenBefore))
	if err != nil {
		return 0, wrap("gateway sessions", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// DeleteEndedGatewaySessions implements store.GatewaySessions.
func (s *Store) DeleteEndedGatewaySessions(ctx context.Context, before time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM gateway_sessions WHERE ended_at != 0 AND ended_at < ?`, nanos(before))
	if err != nil {
		return 0, wrap("gateway sessions", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// PutUpstreamRecords implements store.UpstreamRecords.
func (s *Store) PutUpstreamRecords(ctx context.Context, recs []*store.UpstreamRecord) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return wrap("upstream records", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if _, err = tx.ExecContext(ctx, `DELETE FROM inventory_upstreams`); err != nil {
		return wrap("upstream records", err)
	}
	for _, r := range recs {
		cmd, err := jsonList("upstream "+r.Name+" command", r.Command)
		if err != nil {
			return err
		}
		perUser := 0
		if r.PerUser {
			perUser = 1
		}
		if _, err = tx.ExecContext(ctx, `INSERT INTO inventory_upstreams (name, transport, url, command, credential_type, per_user, owner, updated_at) VALUES (?,?,?,?,?,?,?,?)`,
			r.Name, r.Transport, r.URL, cmd, r.CredentialType, perUser, r.Owner, nanos(r.UpdatedAt)); err != nil {
			return wrap("upstream record "+r.Name, err)
		}
	}
	return wrap("upstream records", tx.Commit())
}

// ListUpstreamRecords implements store.UpstreamRecords.
func (s *Store) ListUpstreamRecords(ctx context.Context) ([]*store.UpstreamRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, transport, url, command, credential_type, per_user, owner, updated_at FROM inventory_upstreams ORDER BY name`)
	if err != nil {
		return nil, wrap("upstream records", err)
	}
	defer rows.Close()
	var out []*store.UpstreamRecord
	for rows.Next() {
		var r store.UpstreamRecord
		var cmd string
		var perUser int
		var updated int64
		if err := rows.Scan(&r.Name, &r.Transport, &r.URL, &cmd, &r.CredentialType, &perUser, &r.Owner, &updated); err != nil {
			return nil, wrap("upstream records", err)
		}
		if r.Command, err = parseList("upstream "+r.Name+" command", cmd); err != nil {
			return nil, err
		}
		r.PerUser, r.UpdatedAt = perUser != 0, fromNanos(updated)
		out = append(out, &r)
	}
	return out, wrap("upstream records", rows.Err())
}
