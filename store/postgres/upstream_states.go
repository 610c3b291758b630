package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/mcpgate/mcpgate/store"
)

var _ store.UpstreamStates = (*Store)(nil)

// PutUpstreamStates implements store.UpstreamStates: the table is locked
// (against other writers, not readers), emptied and refilled in one
// transaction.
func (s *Store) PutUpstreamStates(ctx context.Context, recs []*store.UpstreamStateRecord) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE upstream_states IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM upstream_states`); err != nil {
			return err
		}
		for _, r := range recs {
			if _, err := tx.Exec(ctx, `INSERT INTO upstream_states (name, state, since, failures, last_error, retry_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
				r.Name, r.State, nanos(r.Since), r.Failures, r.LastError, nanos(r.RetryAt), nanos(r.UpdatedAt)); err != nil {
				return wrap("upstream state "+r.Name, err)
			}
		}
		return nil
	})
	return wrap("upstream states", err)
}

// ListUpstreamStates implements store.UpstreamStates.
func (s *Store) ListUpstreamStates(ctx context.Context) ([]*store.UpstreamStateRecord, error) {
	return queryAll(ctx, s.pool, "upstream states", func(row pgx.Row) (*store.UpstreamStateRecord, error) {
		var r store.UpstreamStateRecord
		var since, retry, updated int64
		if err := row.Scan(&r.Name, &r.State, &since, &r.Failures, &r.LastError, &retry, &updated); err != nil {
			return nil, err
		}
		r.Since, r.RetryAt, r.UpdatedAt = fromNanos(since), fromNanos(retry), fromNanos(updated)
		return &r, nil
	}, `SELECT name, state, since, failures, last_error, retry_at, updated_at FROM upstream_states ORDER BY name COLLATE "C"`)
}
