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

// Memory is an in-memory Store. Records are copied on the way in and out,
// so callers may keep and modify what they pass or receive.
type Memory struct {
	mu       sync.Mutex
	users    map[string]User
	clients  map[string]Client
	codes    map[string]AuthCode
	refresh  map[string]RefreshToken
	access   map[string]AccessToken
	once     map[[2]string]time.Time
	sessions map[string]Session
	keys     map[string]SigningKey
	docs     map[string]MetadataDocument
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{
		users:    map[string]User{},
		clients:  map[string]Client{},
		codes:    map[string]AuthCode{},
		refresh:  map[string]RefreshToken{},
		access:   map[string]AccessToken{},
		once:     map[[2]string]time.Time{},
		sessions: map[string]Session{},
		keys:     map[string]SigningKey{},
		docs:     map[string]MetadataDocument{},
	}
}

func ptr[T any](v T) *T { return &v }

// CreateUser implements Store.
func (m *Memory) CreateUser(_ context.Context, u *User) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.users[u.Username]; ok {
		return fmt.Errorf("user %q: %w", u.Username, ErrExists)
	}
	m.users[u.Username] = cloneUser(*u)
	return nil
}

// cloneUser copies u's slices so that callers never share them with the
// store.
func cloneUser(u User) User {
	u.Groups, u.Roles = slices.Clone(u.Groups), slices.Clone(u.Roles)
	return u
}

// GetUser implements Store.
func (m *Memory) GetUser(_ context.Context, username string) (*User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[username]
	if !ok {
		return nil, fmt.Errorf("user %q: %w", username, ErrNotFound)
	}
	return ptr(cloneUser(u)), nil
}

// ListUsers implements Store.
func (m *Memory) ListUsers(context.Context) ([]*User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*User
	for _, k := range slices.Sorted(maps.Keys(m.users)) {
		out = append(out, ptr(cloneUser(m.users[k])))
	}
	return out, nil
}

// DeleteUser implements Store.
func (m *Memory) DeleteUser(_ context.Context, username string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.users[username]; !ok {
		return fmt.Errorf("user %q: %w", username, ErrNotFound)
	}
	delete(m.users, username)
	return nil
}

func cloneClient(c Client) Client {
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	c.GrantTypes = slices.Clone(c.GrantTypes)
	return c
}

// CreateClient implements Store.
func (m *Memory) CreateClient(_ context.Context, c *Client) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.clients[c.ID]; ok {
		return fmt.Errorf("client %q: %w", c.ID, ErrExists)
	}
	m.clients[c.ID] = cloneClient(*c)
	return nil
}

// PutClient implements Store.
func (m *Memory) PutClient(_ context.Context, c *Client) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	next := cloneClient(*c)
	if old, ok := m.clients[c.ID]; ok {
		next.Status, next.StatusBy, next.StatusAt, next.FirstUsedAt = old.Status, old.StatusBy, old.StatusAt, old.FirstUsedAt
	}
	m.clients[c.ID] = next
	return nil
}

// SetClientStatus implements Store.
func (m *Memory) SetClientStatus(_ context.Context, id, status, by string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.clients[id]
	if !ok {
		return fmt.Errorf("client %q: %w", id, ErrNotFound)
	}
	c.Status, c.StatusBy, c.StatusAt = status, by, at
	m.clients[id] = c
	return nil
}

// MarkClientUsed implements Store.
func (m *Memory) MarkClientUsed(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.clients[id]
	if !ok {
		return fmt.Errorf("client %q: %w", id, ErrNotFound)
	}
	if c.FirstUsedAt.IsZero() {
		c.FirstUsedAt = at
		m.clients[id] = c
	}
	return nil
}

// CountClients implements Store.
func (m *Memory) CountClients(_ context.Context, kind string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, c := range m.clients {
		if c.Kind == kind {
			n++
		}
	}
	return n, nil
}

// DeleteUnusedClients implements Store.
func (m *Memory) DeleteUnusedClients(_ context.Context, kind string, createdBefore time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for id, c := range m.clients {
		if c.Kind == kind && c.FirstUsedAt.IsZero() && c.Status != ClientApproved && c.CreatedAt.Before(createdBefore) {
			delete(m.clients, id)
			n++
		}
	}
	return n, nil
}

// GetClient implements Store.
func (m *Memory) GetClient(_ context.Context, id string) (*Client, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.clients[id]
	if !ok {
		return nil, fmt.Errorf("client %q: %w", id, ErrNotFound)
	}
	return ptr(cloneClient(c)), nil
}

// ListClients implements Store.
func (m *Memory) ListClients(context.Context) ([]*Client, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*Client
	for _, k := range slices.Sorted(maps.Keys(m.clients)) {
		out = append(out, ptr(cloneClient(m.clients[k])))
	}
	return out, nil
}

// DeleteClient implements Store.
func (m *Memory) DeleteClient(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.clients[id]; !ok {
		return fmt.Errorf("client %q: %w", id, ErrNotFound)
	}
	delete(m.clients, id)
	return nil
}

// CreateAuthCode implements Store.
func (m *Memory) CreateAuthCode(_ context.Context, c *AuthCode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.codes[c.CodeHash]; ok {
		return fmt.Errorf("authorization code: %w", ErrExists)
	}
	m.codes[c.CodeHash] = *c
	return nil
}

// ConsumeAuthCode implements Store.
func (m *Memory) ConsumeAuthCode(_ context.Context, codeHash string, now time.Time) (*AuthCode, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.codes[codeHash]
	if !ok {
		return nil, fmt.Errorf("authorization code: %w", ErrNotFound)
	}
	if !c.UsedAt.IsZero() {
		return ptr(c), fmt.Errorf("authorization code: %w", ErrConsumed)
	}
	c.UsedAt = now
	m.codes[codeHash] = c
	return ptr(c), nil
}

// CreateRefreshToken implements Store.
func (m *Memory) CreateRefreshToken(_ context.Context, t *RefreshToken) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.refresh[t.TokenHash]; ok {
		return fmt.Errorf("refresh token: %w", ErrExists)
	}
	m.refresh[t.TokenHash] = *t
	return nil
}

// RotateRefreshToken implements Store.
func (m *Memory) RotateRefreshToken(_ context.Context, oldHash string, next *RefreshToken, now time.Time) (*RefreshToken, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.refresh[oldHash]
	if !ok {
		return nil, fmt.Errorf("refresh token: %w", ErrNotFound)
	}
	if old.Revoked {
		return ptr(old), fmt.Errorf("refresh token: %w", ErrRevoked)
	}
	if !old.UsedAt.IsZero() {
		return ptr(old), fmt.Errorf("refresh token: %w", ErrConsumed)
	}
	if _, ok := m.refresh[next.TokenHash]; ok {
		return nil, fmt.Errorf("refresh token: %w", ErrExists)
	}
	old.UsedAt = now
	m.refresh[oldHash] = old
	m.refresh[next.TokenHash] = *next
	return ptr(old), nil
}

// GetRefreshToken implements Store.
func (m *Memory) GetRefreshToken(_ context.Context, tokenHash string) (*RefreshToken, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.refresh[tokenHash]
	if !ok {
		return nil, fmt.Errorf("refresh token: %w", ErrNotFound)
	}
	return ptr(t), nil
}

// RevokeRefreshToken implements Store.
func (m *Memory) RevokeRefreshToken(_ context.Context, tokenHash string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.refresh[tokenHash]
	if !ok {
		return fmt.Errorf("refresh token: %w", ErrNotFound)
	}
	t.Revoked = true
	m.refresh[tokenHash] = t
	return nil
}

// RecordAccessToken implements Store.
func (m *Memory) RecordAccessToken(_ context.Context, t *AccessToken) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.access[t.ID]; ok {
		return fmt.Errorf("access token %q: %w", t.ID, ErrExists)
	}
	m.access[t.ID] = *t
	return nil
}

// GetAccessToken implements Store.
func (m *Memory) GetAccessToken(_ context.Context, id string) (*AccessToken, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.access[id]
	if !ok {
		return nil, fmt.Errorf("access token: %w", ErrNotFound)
	}
	return ptr(t), nil
}

// RevokeAccessToken implements Store.
func (m *Memory) RevokeAccessToken(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.access[id]
	if !ok {
		return fmt.Errorf("access token: %w", ErrNotFound)
	}
	t.Revoked = true
	m.access[id] = t
	return nil
}

// IsAccessTokenRevoked implements Store.
func (m *Memory) IsAccessTokenRevoked(_ context.Context, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.access[id].Revoked, nil
}

// RevokeFamily implements Store.
func (m *Memory) RevokeFamily(_ context.Context, familyID string) (int, error) {
	if familyID == "" {
		return 0, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for k, t := range m.refresh {
		if t.FamilyID == familyID && !t.Revoked {
			t.Revoked = true
			m.refresh[k] = t
			n++
		}
	}
	for k, t := range m.access {
		if t.FamilyID == familyID && !t.Revoked {
			t.Revoked = true
			m.access[k] = t
			n++
		}
	}
	return n, nil
}

// UseOnce implements Store.
func (m *Memory) UseOnce(_ context.Context, namespace, id string, expiresAt, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{namespace, id}
	if exp, ok := m.once[k]; ok && exp.After(now) {
		return fmt.Errorf("%s %q: %w", namespace, id, ErrReplay)
	}
	m.once[k] = expiresAt
	return nil
}

// CreateSession implements Store.
func (m *Memory) CreateSession(_ context.Context, s *Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.sessions[s.IDHash]; ok {
		return fmt.Errorf("session: %w", ErrExists)
	}
	m.sessions[s.IDHash] = *s
	return nil
}

// GetSession implements Store.
func (m *Memory) GetSession(_ context.Context, idHash string, now time.Time) (*Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[idHash]
	if !ok || !s.ExpiresAt.After(now) {
		return nil, fmt.Errorf("session: %w", ErrNotFound)
	}
	return ptr(s), nil
}

// DeleteSession implements Store.
func (m *Memory) DeleteSession(_ context.Context, idHash string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.sessions, idHash)
	return nil
}

// AddSigningKey implements Store.
func (m *Memory) AddSigningKey(_ context.Context, k *SigningKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.keys[k.ID]; ok {
		return fmt.Errorf("signing key %q: %w", k.ID, ErrExists)
	}
	m.keys[k.ID] = *k
	return nil
}

// ListSigningKeys implements Store.
func (m *Memory) ListSigningKeys(context.Context) ([]*SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*SigningKey
	for _, k := range m.keys {
		out = append(out, ptr(k))
	}
	slices.SortFunc(out, func(a, b *SigningKey) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

// RetireSigningKey implements Store.
func (m *Memory) RetireSigningKey(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[id]
	if !ok {
		return fmt.Errorf("signing key %q: %w", id, ErrNotFound)
	}
	k.RetiredAt = at
	m.keys[id] = k
	return nil
}

// DeleteSigningKey implements Store.
func (m *Memory) DeleteSigningKey(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.keys[id]; !ok {
		return fmt.Errorf("signing key %q: %w", id, ErrNotFound)
	}
	delete(m.keys, id)
	return nil
}

// PutMetadataDocument implements Store.
func (m *Memory) PutMetadataDocument(_ context.Context, d *MetadataDocument) (*MetadataDocument, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := *d
	if old, ok := m.docs[d.URL]; ok {
		n.PreviousDigest, n.ChangedAt = old.PreviousDigest, old.ChangedAt
		if old.Digest != d.Digest {
			n.PreviousDigest, n.ChangedAt = old.Digest, d.FetchedAt
		}
	}
	m.docs[d.URL] = n
	return ptr(n), nil
}

// GetMetadataDocument implements Store.
func (m *Memory) GetMetadataDocument(_ context.Context, url string) (*MetadataDocument, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.docs[url]
	if !ok {
		return nil, fmt.Errorf("metadata document: %w", ErrNotFound)
	}
	return ptr(d), nil
}

// DeleteExpired implements Store.
func (m *Memory) DeleteExpired(_ context.Context, now time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for k, c := range m.codes {
		if !c.ExpiresAt.After(now) {
			delete(m.codes, k)
			n++
		}
	}
	for k, t := range m.refresh {
		if !t.ExpiresAt.After(now) {
			delete(m.refresh, k)
			n++
		}
	}
	for k, t := range m.access {
		if !t.ExpiresAt.After(now) {
			delete(m.access, k)
			n++
		}
	}
	for k, exp := range m.once {
		if !exp.After(now) {
			delete(m.once, k)
			n++
		}
	}
	for k, s := range m.sessions {
		if !s.ExpiresAt.After(now) {
			delete(m.sessions, k)
			n++
		}
	}
	return n, nil
}

// Close implements Store.
func (m *Memory) Close() error { return nil }
