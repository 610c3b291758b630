package sqlite

import (
	"context"

	"github.com/mcpgate/mcpgate/store"
)

var _ store.UpstreamStates = (*Store)(nil)

// PutUpstreamStates implements store.UpstreamStates.
func (s *Store) PutUpstreamStates(ctx context.Context, recs []*store.UpstreamStateRecord) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return wrap("upstream states", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if _, err = tx.ExecContext(ctx, `DELETE FROM upstream_states`); err != nil {
		return wrap("upstream states", err)
	}
	for _, r := range recs {
		if _, err = tx.ExecContext(ctx, `INSERT INTO upstream_states (name, state, since, failures, last_error, retry_at, updated_at) VALUES (?,?,?,?,?,?,?)`,
			r.Name, r.State, nanos(r.Since), r.Failures, r.LastError, nanos(r.RetryAt), nanos(r.UpdatedAt)); err != nil {
			return wrap("upstream state "+r.Name, err)
		}
	}
	return wrap("upstream states", tx.Commit())
}

// ListUpstreamStates implements store.UpstreamStates.
func (s *Store) ListUpstreamStates(ctx context.Context) ([]*store.UpstreamStateRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, state, since, failures, last_error, retry_at, updated_at FROM upstream_states ORDER BY name`)
	if err != nil {
		return nil, wrap("upstream states", err)
	}
	defer rows.Close()
	var out []*store.UpstreamStateRecord
	for rows.Next() {
		var r store.UpstreamStateRecord
		var since, retry, updated int64
		if err := rows.Scan(&r.Name, &r.State, &since, &r.Failures, &r.LastError, &retry, &updated); err != nil {
			return nil, wrap("upstream states", err)
		}
		r.Since, r.RetryAt, r.UpdatedAt = fromNanos(since), fromNanos(retry), fromNanos(updated)
		out = append(out, &r)
	}
	return out, wrap("upstream states", rows.Err())
}
