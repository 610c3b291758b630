package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mcpgate/mcpgate/store"
)

var (
	_ store.GatewaySessions = (*Store)(nil)
	_ store.UpstreamRecords = (*Store)(nil)
)

const gatewaySessionCols = `id, principal, client_id, token_id, grant_id, transport, source_addr, created_at, last_seen, ended_at, client_init`

// PutGatewaySession implements store.GatewaySessions.
func (s *Store) PutGatewaySession(ctx context.Context, gs *store.GatewaySession) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO gateway_sessions (`+gatewaySessionCols+`) VALUES (`+params(1, 11)+`)
		ON CONFLICT (id) DO UPDATE SET `+upsertSet(splitCols(gatewaySessionCols)[1:]),
		gs.ID, gs.Principal, gs.ClientID, gs.TokenID, gs.Grant, gs.Transport, gs.SourceAddr, nanos(gs.CreatedAt), nanos(gs.LastSeen), nanos(gs.EndedAt), gs.ClientInit)
	return wrap("gateway session "+gs.ID, err)
}

// TouchGatewaySession implements store.GatewaySessions.
func (s *Store) TouchGatewaySession(ctx context.Context, id string, at time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE gateway_sessions SET last_seen = $1 WHERE id = $2 AND ended_at = 0 AND last_seen < $1`, nanos(at), id)
	return wrap("gateway session "+id, err)
}

// EndGatewaySession implements store.GatewaySessions.
func (s *Store) EndGatewaySession(ctx context.Context, id string, at time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE gateway_sessions SET ended_at = $1 WHERE id = $2 AND ended_at = 0`, nanos(at), id)
	return wrap("gateway session "+id, err)
}

// EndGatewaySessionsBefore implements store.GatewaySessions.
func (s *Store) EndGatewaySessionsBefore(ctx context.Context, before, at time.Time) (int, error) {
	n, err := count(s.pool.Exec(ctx, `UPDATE gateway_sessions SET ended_at = $1 WHERE ended_at = 0 AND created_at < $2`, nanos(at), nanos(before)))
	return n, wrap("gateway sessions", err)
}

// ListGatewaySessions implements store.GatewaySessions.
func (s *Store) ListGatewaySessions(ctx context.Context, ended bool) ([]*store.GatewaySession, error) {
	q := `SELECT ` + gatewaySessionCols + ` FROM gateway_sessions WHERE ended_at = 0 ORDER BY created_at, id COLLATE "C"`
	if ended {
		q = `SELECT ` + gatewaySessionCols + ` FROM gateway_sessions ORDER BY created_at, id COLLATE "C"`
	}
	return queryAll(ctx, s.pool, "gateway sessions", scanGatewaySession, q)
}

func scanGatewaySession(r pgx.Row) (*store.GatewaySession, error) {
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
	gs, err := scanGatewaySession(s.pool.QueryRow(ctx, `SELECT `+gatewaySessionCols+` FROM gateway_sessions WHERE id = $1`, id))
	if err != nil {
		return nil, wrap("gateway session "+id, err)
	}
	return gs, nil
}

// EndIdleGatewaySessions implements store.GatewaySessions.
func (s *Store) EndIdleGatewaySessions(ctx context.Context, seenBefore, at time.Time) (int, error) {
	n, err := count(s.pool.Exec(ctx, `UPDATE gateway_sessions SET ended_at = $1 WHERE ended_at = 0 AND GREATEST(created_at, last_seen) < $2`, nanos(at), nanos(seenBefore)))
	return n, wrap("gateway sessions", err)
}

// DeleteEndedGatewaySessions implements store.GatewaySessions.
func (s *Store) DeleteEndedGatewaySessions(ctx context.Context, before time.Time) (int, error) {
	n, err := count(s.pool.Exec(ctx, `DELETE FROM gateway_sessions WHERE ended_at != 0 AND ended_at < $1`, nanos(before)))
	return n, wrap("gateway sessions", err)
}

// PutUpstreamRecords implements store.UpstreamRecords: the table is
// locked against other writers, emptied and refilled in one transaction.
func (s *Store) PutUpstreamRecords(ctx context.Context, recs []*store.UpstreamRecord) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE inventory_upstreams IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM inventory_upstreams`); err != nil {
			return err
		}
		for _, r := range recs {
			cmd, err := jsonList("upstream "+r.Name+" command", r.Command)
			if err != nil {
				return err
			}
			if _, err = tx.Exec(ctx, `INSERT INTO inventory_upstreams (name, transport, url, command, credential_type, per_user, owner, updated_at) VALUES (`+params(1, 8)+`)`,
				r.Name, r.Transport, r.URL, cmd, r.CredentialType, r.PerUser, r.Owner, nanos(r.UpdatedAt)); err != nil {
				return wrap("upstream record "+r.Name, err)
			}
		}
		return nil
	})
	return wrap("upstream records", err)
}

// ListUpstreamRecords implements store.UpstreamRecords.
func (s *Store) ListUpstreamRecords(ctx context.Context) ([]*store.UpstreamRecord, error) {
	return queryAll(ctx, s.pool, "upstream records", func(row pgx.Row) (*store.UpstreamRecord, error) {
		var r store.UpstreamRecord
		var cmd string
		var updated int64
		if err := row.Scan(&r.Name, &r.Transport, &r.URL, &cmd, &r.CredentialType, &r.PerUser, &r.Owner, &updated); err != nil {
			return nil, err
		}
		var err error
		if r.Command, err = parseList("upstream "+r.Name+" command", cmd); err != nil {
			return nil, err
		}
		r.UpdatedAt = fromNanos(updated)
		return &r, nil
	}, `SELECT name, transport, url, command, credential_type, per_user, owner, updated_at FROM inventory_upstreams ORDER BY name COLLATE "C"`)
}
