package store

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// InventoryMemory is an in-memory InventoryStore for tests and
// single-process use. Nothing survives the process.
type InventoryMemory struct {
	mu          sync.Mutex
	clients     map[string]*ClientRecord
	tools       map[[2]string]*ToolRecord
	creds       map[[2]string]*UpstreamCredential
	idps        map[string]*IdentityProvider
	revocations map[[2]string]*Revocation
}

var (
	_ InventoryStore = (*InventoryMemory)(nil)
	_ GrantLister    = (*Memory)(nil)
)

// NewInventoryMemory returns an empty in-memory inventory store.
func NewInventoryMemory() *InventoryMemory {
	return &InventoryMemory{
		clients:     map[string]*ClientRecord{},
		tools:       map[[2]string]*ToolRecord{},
		creds:       map[[2]string]*UpstreamCredential{},
		idps:        map[string]*IdentityProvider{},
		revocations: map[[2]string]*Revocation{},
	}
}

// PutClientRecord implements InventoryStore.
func (m *InventoryMemory) PutClientRecord(ctx context.Context, r *ClientRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clients[r.ClientID] = CloneClientRecord(r)
	return nil
}

// GetClientRecord implements InventoryStore.
func (m *InventoryMemory) GetClientRecord(_ context.Context, clientID string) (*ClientRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.clients[clientID]
	if !ok {
		return nil, fmt.Errorf("client record %q: %w", clientID, ErrNotFound)
	}
	return CloneClientRecord(r), nil
}

// ListClientRecords implements InventoryStore.
func (m *InventoryMemory) ListClientRecords(context.Context) ([]*ClientRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*ClientRecord
	for _, k := range slices.Sorted(maps.Keys(m.clients)) {
		out = append(out, CloneClientRecord(m.clients[k]))
	}
	return out, nil
}

// PutToolRecords implements InventoryStore.
func (m *InventoryMemory) PutToolRecords(ctx context.Context, recs []*ToolRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range recs {
		m.tools[[2]string{r.Upstream, r.Name}] = ptr(*r)
	}
	return nil
}

// GetToolRecord implements InventoryStore.
func (m *InventoryMemory) GetToolRecord(_ context.Context, upstream, name string) (*ToolRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.tools[[2]string{upstream, name}]
	if !ok {
		return nil, fmt.Errorf("tool record %s/%s: %w", upstream, name, ErrNotFound)
	}
	return ptr(*r), nil
}

func compareKeys(a, b [2]string) int {
	if c := cmp.Compare(a[0], b[0]); c != 0 {
		return c
	}
	return cmp.Compare(a[1], b[1])
}

// ListToolRecords implements InventoryStore.
func (m *InventoryMemory) ListToolRecords(_ context.Context, upstream string) ([]*ToolRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*ToolRecord
	for _, k := range slices.SortedFunc(maps.Keys(m.tools), compareKeys) {
		if upstream == "" || k[0] == upstream {
			out = append(out, ptr(*m.tools[k]))
		}
	}
	return out, nil
}

// PutUpstreamCredential implements InventoryStore.
func (m *InventoryMemory) PutUpstreamCredential(ctx context.Context, c *UpstreamCredential) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.creds[[2]string{c.Principal, c.Upstream}] = ptr(*c)
	return nil
}

// ListUpstreamCredentials implements InventoryStore.
func (m *InventoryMemory) ListUpstreamCredentials(context.Context) ([]*UpstreamCredential, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*UpstreamCredential
	for _, k := range slices.SortedFunc(maps.Keys(m.creds), compareKeys) {
		out = append(out, ptr(*m.creds[k]))
	}
	return out, nil
}

// DeleteUpstreamCredential implements InventoryStore.
func (m *InventoryMemory) DeleteUpstreamCredential(_ context.Context, principal, upstream string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{principal, upstream}
	if _, ok := m.creds[k]; !ok {
		return fmt.Errorf("upstream credential %s/%s: %w", upstream, principal, ErrNotFound)
	}
	delete(m.creds, k)
	return nil
}

// PutIdentityProvider implements InventoryStore.
func (m *InventoryMemory) PutIdentityProvider(ctx context.Context, p *IdentityProvider) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := *p
	if old, ok := m.idps[p.Issuer]; ok && !old.CreatedAt.IsZero() {
		n.CreatedAt = old.CreatedAt
	}
	m.idps[p.Issuer] = &n
	return nil
}

// ListIdentityProviders implements InventoryStore.
func (m *InventoryMemory) ListIdentityProviders(context.Context) ([]*IdentityProvider, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*IdentityProvider
	for _, k := range slices.Sorted(maps.Keys(m.idps)) {
		out = append(out, ptr(*m.idps[k]))
	}
	return out, nil
}

// PutRevocation implements InventoryStore.
func (m *InventoryMemory) PutRevocation(ctx context.Context, r *Revocation) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.revocations[[2]string{r.Kind, r.ID}] = ptr(*r)
	return nil
}

// MarkRevocationApplied implements InventoryStore.
func (m *InventoryMemory) MarkRevocationApplied(_ context.Context, kind, id string, at time.Time, note string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.revocations[[2]string{kind, id}]
	if !ok {
		return fmt.Errorf("revocation %s %q: %w", kind, id, ErrNotFound)
	}
	r.AppliedAt, r.AppliedNote = at, note
	return nil
}

// ListRevocations implements InventoryStore.
func (m *InventoryMemory) ListRevocations(context.Context) ([]*Revocation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*Revocation
	for _, k := range slices.SortedFunc(maps.Keys(m.revocations), compareKeys) {
		out = append(out, ptr(*m.revocations[k]))
	}
	return out, nil
}

// DeleteRevocation implements InventoryStore.
func (m *InventoryMemory) DeleteRevocation(_ context.Context, kind, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{kind, id}
	if _, ok := m.revocations[k]; !ok {
		return fmt.Errorf("revocation %s %q: %w", kind, id, ErrNotFound)
	}
	delete(m.revocations, k)
	return nil
}

// ListAccessTokens implements GrantLister.
func (m *Memory) ListAccessTokens(_ context.Context, now time.Time) ([]*AccessToken, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*AccessToken
	for _, k := range slices.Sorted(maps.Keys(m.access)) {
		if t := m.access[k]; !t.Revoked && t.ExpiresAt.After(now) {
			out = append(out, ptr(t))
		}
	}
	return out, nil
}

// ListRefreshTokens implements GrantLister.
func (m *Memory) ListRefreshTokens(_ context.Context, now time.Time) ([]*RefreshToken, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*RefreshToken
	for _, t := range m.refresh {
		if !t.Revoked && t.UsedAt.IsZero() && t.ExpiresAt.After(now) {
			out = append(out, ptr(t))
		}
	}
	slices.SortFunc(out, func(a, b *RefreshToken) int {
		return compareKeys([2]string{a.FamilyID, a.TokenHash}, [2]string{b.FamilyID, b.TokenHash})
	})
	return out, nil
}
