package sqlite

import (
	"context"
	"fmt"

	"github.com/mcpgate/mcpgate/store"
)

var _ store.UpstreamTokenStore = (*Store)(nil)

// PutUpstreamToken implements store.UpstreamTokenStore.
func (s *Store) PutUpstreamToken(ctx context.Context, t *store.UpstreamToken) error {
	if err := store.CheckUpstreamToken(t); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO upstream_tokens (principal, upstream, ciphertext, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (principal, upstream) DO UPDATE SET ciphertext = excluded.ciphertext, updated_at = excluded.updated_at`,
		t.Principal, t.Upstream, t.Ciphertext, ts(t.UpdatedAt))
	return wrap(fmt.Sprintf("upstream token of %q for %q", t.Principal, t.Upstream), err)
}

// GetUpstreamToken implements store.UpstreamTokenStore.
func (s *Store) GetUpstreamToken(ctx context.Context, principal, upstream string) (*store.UpstreamToken, error) {
	t, err := scanUpstreamToken(s.db.QueryRowContext(ctx, `SELECT principal, upstream, ciphertext, updated_at FROM upstream_tokens WHERE principal = ? AND upstream = ?`, principal, upstream))
	if err != nil {
		return nil, wrap(fmt.Sprintf("upstream token of %q for %q", principal, upstream), err)
	}
	return t, nil
}

// DeleteUpstreamToken implements store.UpstreamTokenStore.
func (s *Store) DeleteUpstreamToken(ctx context.Context, principal, upstream string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM upstream_tokens WHERE principal = ? AND upstream = ?`, principal, upstream)
	return wrap(fmt.Sprintf("upstream token of %q for %q", principal, upstream), err)
}

// ListUpstreamTokens implements store.UpstreamTokenStore.
func (s *Store) ListUpstreamTokens(ctx context.Context, principal string) ([]*store.UpstreamToken, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT principal, upstream, ciphertext, updated_at FROM upstream_tokens
		WHERE ? = '' OR principal = ? ORDER BY principal, upstream`, principal, principal)
	if err != nil {
		return nil, wrap("upstream tokens", err)
	}
	defer rows.Close()
	var out []*store.UpstreamToken
	for rows.Next() {
		t, err := scanUpstreamToken(rows)
		if err != nil {
			return nil, wrap("upstream tokens", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("upstream tokens", err)
	}
	return out, nil
}

func scanUpstreamToken(r scanner) (*store.UpstreamToken, error) {
	var t store.UpstreamToken
	var updated int64
	if err := r.Scan(&t.Principal, &t.Upstream, &t.Ciphertext, &updated); err != nil {
		return nil, err
	}
	t.UpdatedAt = fromTS(updated)
	return &t, nil
}
