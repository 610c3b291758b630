package store

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// UpstreamToken is one principal's OAuth token for one upstream MCP server,
// obtained by the gateway with the principal's consent ("oauth_user"
// credentials). The store only ever sees it sealed: Ciphertext is produced
// and opened by the gateway with a key the store does not hold.
type UpstreamToken struct {
	// Principal is the gateway user the token belongs to.
	Principal string
	// Upstream is the name of the upstream the token is for.
	Upstream string
	// Ciphertext is the sealed token (nonce and AEAD output).
	Ciphertext []byte
	// UpdatedAt is when the token was last stored (obtained or
	// refreshed).
	UpdatedAt time.Time
}

// UpstreamTokenStore keeps the sealed per-user upstream tokens, one per
// (principal, upstream). Implementations are safe for concurrent use.
type UpstreamTokenStore interface {
	// PutUpstreamToken creates or replaces the token of (t.Principal,
	// t.Upstream).
	PutUpstreamToken(ctx context.Context, t *UpstreamToken) error
	// GetUpstreamToken returns the token of (principal, upstream), or an
	// error wrapping ErrNotFound.
	GetUpstreamToken(ctx context.Context, principal, upstream string) (*UpstreamToken, error)
	// DeleteUpstreamToken removes the token of (principal, upstream);
	// removing a missing token is not an error.
	DeleteUpstreamToken(ctx context.Context, principal, upstream string) error
	// ListUpstreamTokens returns the tokens of one principal ordered by
	// upstream name (all principals when principal is empty, ordered by
	// principal then upstream).
	ListUpstreamTokens(ctx context.Context, principal string) ([]*UpstreamToken, error)
}

// CheckUpstreamToken reports what is wrong with a token about to be
// stored, or nil.
func CheckUpstreamToken(t *UpstreamToken) error {
	switch {
	case t == nil:
		return errors.New("store: nil upstream token")
	case t.Principal == "":
		return errors.New("store: upstream token without principal")
	case t.Upstream == "":
		return errors.New("store: upstream token without upstream")
	case len(t.Ciphertext) == 0:
		return fmt.Errorf("store: upstream token of %q for %q has no ciphertext", t.Principal, t.Upstream)
	}
	return nil
}

// UpstreamTokensMemory is an in-memory UpstreamTokenStore for tests and
// single-process use. Nothing survives the process.
type UpstreamTokensMemory struct {
	mu     sync.Mutex
	tokens map[[2]string]*UpstreamToken
}

var _ UpstreamTokenStore = (*UpstreamTokensMemory)(nil)

// NewUpstreamTokensMemory returns an empty in-memory upstream token store.
func NewUpstreamTokensMemory() *UpstreamTokensMemory {
	return &UpstreamTokensMemory{tokens: make(map[[2]string]*UpstreamToken)}
}

func cloneUpstreamToken(t *UpstreamToken) *UpstreamToken {
	c := *t
	c.Ciphertext = bytes.Clone(t.Ciphertext)
	return &c
}

// PutUpstreamToken implements UpstreamTokenStore.
func (m *UpstreamTokensMemory) PutUpstreamToken(ctx context.Context, t *UpstreamToken) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := CheckUpstreamToken(t); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tokens[[2]string{t.Principal, t.Upstream}] = cloneUpstreamToken(t)
	return nil
}

// GetUpstreamToken implements UpstreamTokenStore.
func (m *UpstreamTokensMemory) GetUpstreamToken(ctx context.Context, principal, upstream string) (*UpstreamToken, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[[2]string{principal, upstream}]
	if !ok {
		return nil, fmt.Errorf("upstream token of %q for %q: %w", principal, upstream, ErrNotFound)
	}
	return cloneUpstreamToken(t), nil
}

// DeleteUpstreamToken implements UpstreamTokenStore.
func (m *UpstreamTokensMemory) DeleteUpstreamToken(ctx context.Context, principal, upstream string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.tokens, [2]string{principal, upstream})
	return nil
}

// ListUpstreamTokens implements UpstreamTokenStore.
func (m *UpstreamTokensMemory) ListUpstreamTokens(ctx context.Context, principal string) ([]*UpstreamToken, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	out := make([]*UpstreamToken, 0, len(m.tokens))
	for k, t := range m.tokens {
		if principal == "" || k[0] == principal {
			out = append(out, cloneUpstreamToken(t))
		}
	}
	m.mu.Unlock()
	sortUpstreamTokens(out)
	return out, nil
}

func sortUpstreamTokens(ts []*UpstreamToken) {
	slices.SortFunc(ts, func(a, b *UpstreamToken) int {
		return cmp.Or(cmp.Compare(a.Principal, b.Principal), cmp.Compare(a.Upstream, b.Upstream))
	})
}
