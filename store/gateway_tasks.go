package store

import (
	"context"
	"sort"
	"sync"
	"time"
)

// GatewayTask records a task that a client started through the gateway: the
// id the gateway gave the client, the upstream task behind it and the
// principal that owns it. It outlives the process, so that a restarted
// gateway still knows whose task is whose, and can report work that was
// lost.
type GatewayTask struct {
	// ID is the task id the gateway gave the client.
	ID string
	// Principal owns the task: only it may see or act on it.
	Principal string
	// ClientID is the OAuth client through which it was started ("" when
	// auth is off).
	ClientID string
	// Grant is the grant the task was started under: the token family id,
	// or the token id of a token without family ("" when unknown or auth
	// is off). Revoking the grant cancels the task.
	Grant string
	// Upstream is the name of the upstream running the task, and
	// UpstreamTaskID the id it gave it.
	Upstream       string
	UpstreamTaskID string
	// Status and StatusMessage are the last status the gateway saw.
	Status        string
	StatusMessage string
	// CreatedAt, UpdatedAt and ExpiresAt (zero: never) are when the task
	// was created, last updated and stops being kept.
	CreatedAt, UpdatedAt, ExpiresAt time.Time

	// Task governance (policy over tasks, approvals inside tasks).

	// Tool is the tool the task runs, as the client named it ("" when
	// unknown: a record made before the gateway kept it).
	Tool string
	// ApprovalID is the approval a task held by the gateway waits for or
	// waited for ("" for a task that never needed one). A held task has
	// no UpstreamTaskID.
	ApprovalID string
	// HeldCall is the call a held task waits to run, sealed by the
	// gateway (nil once the task ended or was handed over).
	HeldCall []byte

	// Profile is the capability profile of the upstream session the task
	// runs in (the gateway's name for what the client declared).
	Profile string
	// UpstreamSession, UpstreamProtocol and UpstreamInit are the state of
	// that upstream session, so that a restarted gateway can resume it:
	// the session id, the negotiated protocol version and the upstream's
	// initialize result (JSON). Empty when not saved (stdio upstreams,
	// transports without session ids).
	UpstreamSession  string
	UpstreamProtocol string
	UpstreamInit     []byte

	// ResultSealed is the task's result (the tasks/result answer) once it
	// ended, sealed by the gateway; ResultDigest ("sha256:" and hex) and
	// ResultSize describe it. A result above the gateway's bound keeps
	// only its digest and size (ResultSealed nil).
	ResultSealed []byte
	ResultDigest string
	ResultSize   int64
}

// clone returns a copy of t that shares no memory with it.
func (t GatewayTask) clone() *GatewayTask {
	t.UpstreamInit = cloneBytes(t.UpstreamInit)
	t.ResultSealed = cloneBytes(t.ResultSealed)
	t.HeldCall = cloneBytes(t.HeldCall)
	return &t
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// Held reports whether the gateway itself holds the task (a call waiting
// for approval, or run by the gateway after it): no upstream task is
// behind it.
func (t *GatewayTask) Held() bool { return t.UpstreamTaskID == "" }

// TaskCancelRequested is the StatusMessage of a task an operator asked to
// cancel from the command line (`mcpgate tasks cancel`), recorded with
// status "cancelled": a running gateway that watches the task cancels it
// at its upstream and replaces the message with the outcome.
const TaskCancelRequested = "cancel requested by an operator (mcpgate tasks cancel); a running gateway cancels it at the upstream"

// GatewayTasks keeps the gateway's task records.
type GatewayTasks interface {
	// PutGatewayTask creates or replaces a record.
	PutGatewayTask(ctx context.Context, t *GatewayTask) error
	// GetGatewayTask returns a record by gateway id, or ErrNotFound.
	GetGatewayTask(ctx context.Context, id string) (*GatewayTask, error)
	// FindGatewayTask returns the record of an upstream task, or
	// ErrNotFound.
	FindGatewayTask(ctx context.Context, upstream, upstreamTaskID string) (*GatewayTask, error)
	// ListGatewayTasks returns a principal's records ("" for everyone's),
	// oldest first.
	ListGatewayTasks(ctx context.Context, principal string) ([]*GatewayTask, error)
	// DeleteExpiredGatewayTasks deletes records that expired before now.
	DeleteExpiredGatewayTasks(ctx context.Context, now time.Time) (int, error)
	// ListCancelRequestedGatewayTasks returns the records whose
	// StatusMessage is TaskCancelRequested: cancel requests no gateway
	// has carried out yet.
	ListCancelRequestedGatewayTasks(ctx context.Context) ([]*GatewayTask, error)
}

// MemoryGatewayTasks is an in-memory GatewayTasks, for tests and for
// gateways without a data directory.
type MemoryGatewayTasks struct {
	mu    sync.Mutex
	tasks map[string]GatewayTask
}

// NewMemoryGatewayTasks returns an empty MemoryGatewayTasks.
func NewMemoryGatewayTasks() *MemoryGatewayTasks {
	return &MemoryGatewayTasks{tasks: make(map[string]GatewayTask)}
}

var _ GatewayTasks = (*MemoryGatewayTasks)(nil)

// PutGatewayTask implements GatewayTasks.
func (m *MemoryGatewayTasks) PutGatewayTask(_ context.Context, t *GatewayTask) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tasks[t.ID] = *t.clone()
	return nil
}

// GetGatewayTask implements GatewayTasks.
func (m *MemoryGatewayTasks) GetGatewayTask(_ context.Context, id string) (*GatewayTask, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tasks[id]
	if !ok {
		return nil, ErrNotFound
	}
	return t.clone(), nil
}

// FindGatewayTask implements GatewayTasks.
func (m *MemoryGatewayTasks) FindGatewayTask(_ context.Context, upstream, upstreamTaskID string) (*GatewayTask, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range m.tasks {
		if upstreamTaskID != "" && t.Upstream == upstream && t.UpstreamTaskID == upstreamTaskID {
			return t.clone(), nil
		}
	}
	return nil, ErrNotFound
}

// ListGatewayTasks implements GatewayTasks.
func (m *MemoryGatewayTasks) ListGatewayTasks(_ context.Context, principal string) ([]*GatewayTask, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*GatewayTask
	for _, t := range m.tasks {
		if principal == "" || t.Principal == principal {
			out = append(out, t.clone())
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

// DeleteExpiredGatewayTasks implements GatewayTasks.
func (m *MemoryGatewayTasks) DeleteExpiredGatewayTasks(_ context.Context, now time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for id, t := range m.tasks {
		if !t.ExpiresAt.IsZero() && t.ExpiresAt.Before(now) {
			delete(m.tasks, id)
			n++
		}
	}
	return n, nil
}

// ListCancelRequestedGatewayTasks implements GatewayTasks.
func (m *MemoryGatewayTasks) ListCancelRequestedGatewayTasks(_ context.Context) ([]*GatewayTask, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*GatewayTask
	for _, t := range m.tasks {
		if t.Status == "cancelled" && t.StatusMessage == TaskCancelRequested {
			out = append(out, &t)
		}
	}
	return out, nil
}

// GatewayTaskCounter is implemented by GatewayTasks stores that can count
// their records by status without reading them (metrics read it at every
// scrape).
type GatewayTaskCounter interface {
	// CountGatewayTasks returns the number of records not expired at now,
	// by status.
	CountGatewayTasks(ctx context.Context, now time.Time) (map[string]int, error)
}

var _ GatewayTaskCounter = (*MemoryGatewayTasks)(nil)

// CountGatewayTasks implements GatewayTaskCounter.
func (m *MemoryGatewayTasks) CountGatewayTasks(_ context.Context, now time.Time) (map[string]int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]int)
	for _, t := range m.tasks {
		if t.ExpiresAt.IsZero() || !t.ExpiresAt.Before(now) {
			out[t.Status]++
		}
	}
	return out, nil
}
