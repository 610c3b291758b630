package store

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// UpstreamStateRecord is the state of a running gateway's own session
// with one upstream (gateway.UpstreamState), as the gateway last wrote it,
// so that the inventory, run in another process, can show it.
type UpstreamStateRecord struct {
	// Name is the upstream's configured name.
	Name string
	// State is "connecting", "ready", "backoff", "circuit_open",
	// "per_user", or "stopped" (written when the gateway stops).
	State string
	// Since is when the upstream entered State.
	Since time.Time `json:",omitzero"`
	// Failures counts consecutive failures.
	Failures int `json:",omitempty"`
	// LastError is the last failure, if any.
	LastError string `json:",omitempty"`
	// RetryAt is when the next attempt is due (backoff, circuit_open).
	RetryAt time.Time `json:",omitzero"`
	// UpdatedAt is when the gateway wrote the record.
	UpdatedAt time.Time
}

// UpstreamStates keeps the upstream states. UpstreamStatesMemory and the
// SQLite store implement it.
type UpstreamStates interface {
	// PutUpstreamStates replaces every record with recs: upstreams not
	// in recs are removed.
	PutUpstreamStates(ctx context.Context, recs []*UpstreamStateRecord) error
	// ListUpstreamStates returns every record sorted by name.
	ListUpstreamStates(ctx context.Context) ([]*UpstreamStateRecord, error)
}

// UpstreamStatesMemory is an in-memory UpstreamStates.
type UpstreamStatesMemory struct {
	mu   sync.Mutex
	recs []*UpstreamStateRecord
}

var _ UpstreamStates = (*UpstreamStatesMemory)(nil)

// PutUpstreamStates implements UpstreamStates.
func (m *UpstreamStatesMemory) PutUpstreamStates(_ context.Context, recs []*UpstreamStateRecord) error {
	out := make([]*UpstreamStateRecord, 0, len(recs))
	for _, r := range recs {
		c := *r
		out = append(out, &c)
	}
	slices.SortFunc(out, func(a, b *UpstreamStateRecord) int { return strings.Compare(a.Name, b.Name) })
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs = out
	return nil
}

// ListUpstreamStates implements UpstreamStates.
func (m *UpstreamStatesMemory) ListUpstreamStates(context.Context) ([]*UpstreamStateRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*UpstreamStateRecord, 0, len(m.recs))
	for _, r := range m.recs {
		c := *r
		out = append(out, &c)
	}
	return out, nil
}
