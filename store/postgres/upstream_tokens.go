package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/mcpgate/mcpgate/store"
)

var _ store.UpstreamTokenStore = (*Store)(nil)

// PutUpstreamToken implements store.UpstreamTokenStore.
func (s *Store) PutUpstreamToken(ctx context.Context, t *store.UpstreamToken) error {
	if err := store.CheckUpstreamToken(t); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO upstream_tokens (principal, upstream, ciphertext, updated_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (principal, upstream) DO UPDATE SET ciphertext = excluded.ciphertext, updated_at = excluded.updated_at`,
		t.Principal, t.Upstream, t.Ciphertext, ts(t.UpdatedAt))
	return wrap(fmt.Sprintf("upstream token of %q for %q", t.Principal, t.Upstream), err)
}

// GetUpstreamToken implements store.UpstreamTokenStore.
func (s *Store) GetUpstreamToken(ctx context.Context, principal, upstream string) (*store.UpstreamToken, error) {
	t, err := scanUpstreamToken(s.pool.QueryRow(ctx, `SELECT principal, upstream, ciphertext, updated_at FROM upstream_tokens WHERE principal = $1 AND upstream = $2`, principal, upstream))
	if err != nil {
		return nil, wrap(fmt.Sprintf("upstream token of %q for %q", principal, upstream), err)
	}
	return t, nil
}

// DeleteUpstreamToken implements store.UpstreamTokenStore.
func (s *Store) DeleteUpstreamToken(ctx context.Context, principal, upstream string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM upstream_tokens WHERE principal = $1 AND upstream = $2`, principal, upstream)
	return wrap(fmt.Sprintf("upstream token of %q for %q", principal, upstream), err)
}

// ListUpstreamTokens implements store.UpstreamTokenStore.
func (s *Store) ListUpstreamTokens(ctx context.Context, principal string) ([]*store.UpstreamToken, error) {
	return queryAll(ctx, s.pool, "upstream tokens", scanUpstreamToken, `SELECT principal, upstream, ciphertext, updated_at FROM upstream_tokens
		WHERE $1 = '' OR principal = $1 ORDER BY principal COLLATE "C", upstream COLLATE "C"`, principal)
}

func scanUpstreamToken(r pgx.Row) (*store.UpstreamToken, error) {
	var t store.UpstreamToken
	var updated int64
	if err := r.Scan(&t.Principal, &t.Upstream, &t.Ciphertext, &updated); err != nil {
		return nil, err
	}
	t.UpdatedAt = fromTS(updated)
	return &t, nil
}
