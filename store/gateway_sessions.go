package store

import (
	"context"
	"sort"
	"sync"
	"time"
)

// Transports of a downstream session (GatewaySession.Transport).
const (
	TransportStreamable = "streamable"
	TransportSSE        = "sse"
	TransportStdio      = "stdio"
)

// GatewaySession records a client's session with the gateway, so that the
// inventory can show who is connected, through what and since when, from
// the database (the command line, with the gateway stopped or running).
type GatewaySession struct {
	// ID is the session id ("" is not recorded).
	ID string
	// Principal is the user (token subject) or machine client the session
	// is bound to; ClientID the OAuth client of its token ("" when auth is
	// off).
	Principal string
	ClientID  string
	// TokenID is the jti of the token the session was opened with, and
	// Grant its grant (token family id, or the jti of a token without
	// family); "" when unknown.
	TokenID, Grant string
	// Transport is TransportStreamable, TransportSSE or TransportStdio.
	Transport string
	// SourceAddr is the IP address the session was opened from ("" for
	// stdio).
	SourceAddr string
	// CreatedAt is when it was opened; LastSeen when it last made a
	// request (written at most once a minute); EndedAt when it ended
	// (zero while it is live).
	CreatedAt, LastSeen, EndedAt time.Time
	// ClientInit is what the client sent in its initialize request (the
	// InitializeParams as JSON: protocol version, capabilities, client
	// information), so that another gateway process sharing the records
	// (a replica) can continue the session as the client opened it; ""
	// when unknown (sessions recorded before it was kept).
	ClientInit string
}

// GatewaySessions keeps the records of the gateway's downstream sessions.
// Implementations are safe for concurrent use.
type GatewaySessions interface {
	// PutGatewaySession creates or replaces the record of s.ID.
	PutGatewaySession(ctx context.Context, s *GatewaySession) error
	// TouchGatewaySession sets the last-seen time of a live session, if at
	// is later than the one recorded. An unknown id is not an error.
	TouchGatewaySession(ctx context.Context, id string, at time.Time) error
	// EndGatewaySession records that a session ended at at; a session
	// already ended keeps its first end. An unknown id is not an error.
	EndGatewaySession(ctx context.Context, id string, at time.Time) error
	// EndGatewaySessionsBefore ends, at at, every live session created
	// before before (those left open by a gateway process that stopped),
	// and returns how many.
	EndGatewaySessionsBefore(ctx context.Context, before, at time.Time) (int, error)
	// EndIdleGatewaySessions ends, at at, every live session whose last
	// activity (its last-seen time, else its creation) is before
	// seenBefore, and returns how many. Replicas sharing the records use
	// it instead of EndGatewaySessionsBefore: a session no process uses
	// any more ends, one another replica serves does not.
	EndIdleGatewaySessions(ctx context.Context, seenBefore, at time.Time) (int, error)
	// GetGatewaySession returns the record of session id (live or ended),
	// or ErrNotFound.
	GetGatewaySession(ctx context.Context, id string) (*GatewaySession, error)
	// ListGatewaySessions returns the records oldest first: the live ones,
	// or with ended also those that ended.
	ListGatewaySessions(ctx context.Context, ended bool) ([]*GatewaySession, error)
	// DeleteEndedGatewaySessions deletes the records of sessions that
	// ended before before, and returns how many.
	DeleteEndedGatewaySessions(ctx context.Context, before time.Time) (int, error)
}

// MemoryGatewaySessions is an in-memory GatewaySessions, for tests and for
// gateways without a data directory.
type MemoryGatewaySessions struct {
	mu       sync.Mutex
	sessions map[string]GatewaySession
}

// NewMemoryGatewaySessions returns an empty MemoryGatewaySessions.
func NewMemoryGatewaySessions() *MemoryGatewaySessions {
	return &MemoryGatewaySessions{sessions: make(map[string]GatewaySession)}
}

var _ GatewaySessions = (*MemoryGatewaySessions)(nil)

// PutGatewaySession implements GatewaySessions.
func (m *MemoryGatewaySessions) PutGatewaySession(_ context.Context, s *GatewaySession) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sessions[s.ID] = *s
	return nil
}

// TouchGatewaySession implements GatewaySessions.
func (m *MemoryGatewaySessions) TouchGatewaySession(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.sessions[id]; ok && s.EndedAt.IsZero() && at.After(s.LastSeen) {
		s.LastSeen = at
		m.sessions[id] = s
	}
	return nil
}

// EndGatewaySession implements GatewaySessions.
func (m *MemoryGatewaySessions) EndGatewaySession(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.sessions[id]; ok && s.EndedAt.IsZero() {
		s.EndedAt = at
		m.sessions[id] = s
	}
	return nil
}

// EndGatewaySessionsBefore implements GatewaySessions.
func (m *MemoryGatewaySessions) EndGatewaySessionsBefore(_ context.Context, before, at time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for id, s := range m.sessions {
		if s.EndedAt.IsZero() && s.CreatedAt.Before(before) {
			s.EndedAt = at
			m.sessions[id] = s
			n++
		}
	}
	return n, nil
}

// EndIdleGatewaySessions implements GatewaySessions.
func (m *MemoryGatewaySessions) EndIdleGatewaySessions(_ context.Context, seenBefore, at time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for id, s := range m.sessions {
		if s.EndedAt.IsZero() && s.LastActive().Before(seenBefore) {
			s.EndedAt = at
			m.sessions[id] = s
			n++
		}
	}
	return n, nil
}

// GetGatewaySession implements GatewaySessions.
func (m *MemoryGatewaySessions) GetGatewaySession(_ context.Context, id string) (*GatewaySession, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok {
		return nil, ErrNotFound
	}
	return &s, nil
}

// LastActive is when the session was last seen, else when it was created.
func (s *GatewaySession) LastActive() time.Time {
	if s.LastSeen.After(s.CreatedAt) {
		return s.LastSeen
	}
	return s.CreatedAt
}

// ListGatewaySessions implements GatewaySessions.
func (m *MemoryGatewaySessions) ListGatewaySessions(_ context.Context, ended bool) ([]*GatewaySession, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*GatewaySession
	for _, s := range m.sessions {
		if ended || s.EndedAt.IsZero() {
			out = append(out, &s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// DeleteEndedGatewaySessions implements GatewaySessions.
func (m *MemoryGatewaySessions) DeleteEndedGatewaySessions(_ context.Context, before time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for id, s := range m.sessions {
		if !s.EndedAt.IsZero() && s.EndedAt.Before(before) {
			delete(m.sessions, id)
			n++
		}
	}
	return n, nil
}

// UpstreamRecord describes a configured upstream server as the gateway
// last started with it, so that the inventory can show it from the
// database. It holds no secret: the credential's type, never its value.
type UpstreamRecord struct {
	// Name is the upstream's configured name.
	Name string
	// Transport is "stdio", "streamable", "sse" or "auto" (HTTP, whichever
	// the server speaks).
	Transport string
	// URL is a remote upstream's endpoint (without user information or
	// query); Command a stdio upstream's program and arguments.
	URL     string
	Command []string
	// CredentialType is how the gateway authenticates to it ("none",
	// "header", "bearer", "oauth_client_credentials", "oauth_user", ...);
	// PerUser reports credentials held for each user ("oauth_user").
	CredentialType string
	PerUser        bool
	// Owner is who is responsible for it, as configured ("" if none).
	Owner string
	// UpdatedAt is when a gateway last recorded it.
	UpdatedAt time.Time
}

// UpstreamRecords keeps the upstream records. Memory (InventoryMemory)
// and the SQLite store implement it.
type UpstreamRecords interface {
	// PutUpstreamRecords replaces every record with recs: upstreams no
	// longer configured are removed.
	PutUpstreamRecords(ctx context.Context, recs []*UpstreamRecord) error
	// ListUpstreamRecords returns every record sorted by name.
	ListUpstreamRecords(ctx context.Context) ([]*UpstreamRecord, error)
}
