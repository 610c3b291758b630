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

// Stored states of an approval. An approval whose ExpiresAt has passed
// while it was pending or approved keeps its stored state; readers decide
// that it has expired by comparing ExpiresAt with the current time.
const (
	// ApprovalPending waits for an approver.
	ApprovalPending = "pending"
	// ApprovalApproved was approved and not yet used.
	ApprovalApproved = "approved"
	// ApprovalDenied was denied.
	ApprovalDenied = "denied"
	// ApprovalConsumed was approved and then used once.
	ApprovalConsumed = "consumed"
)

// ErrApprovalState reports a state change (decide, consume) refused
// because the approval is not in the state the change requires, or has
// expired. The stored record is returned alongside it.
var ErrApprovalState = errors.New("store: approval is not in the required state")

// ApprovalRecord is one stored request for human approval of a tool call.
// The approval package computes every field; the store keeps them as
// given (Arguments byte for byte, times to the nanosecond).
type ApprovalRecord struct {
	// ID is the approval's unguessable identifier (it appears in the
	// approval page's URL).
	ID string
	// Binding is the hex digest of (principal, tool, canonical arguments,
	// policy version) that a later call must match.
	Binding string
	// Principal is the user (or machine client) whose call needs approval.
	Principal string
	// Client and Session identify where the call came from.
	Client, Session string
	// Upstream is the upstream server that serves Tool.
	Upstream string
	// Tool is the tool name as the caller sees it.
	Tool string
	// Arguments are the call's arguments as raw JSON (nil when absent).
	Arguments []byte
	// PolicyVersion is the hash of the policy set that required approval.
	PolicyVersion string
	// Policies are the ids of the policies that required approval.
	Policies []string
	// Reason is the explanation shown to the approver.
	Reason string
	// Status is one of ApprovalPending, ApprovalApproved, ApprovalDenied,
	// ApprovalConsumed.
	Status string
	// Approver is who decided ("" while pending).
	Approver string
	// Note is the approver's comment.
	Note string
	// CreatedAt is when approval was requested.
	CreatedAt time.Time
	// ExpiresAt is when the approval stops being decidable or usable.
	ExpiresAt time.Time
	// DecidedAt is when an approver decided (zero while pending).
	DecidedAt time.Time
	// ConsumedAt is when the approved call was made (zero until then).
	ConsumedAt time.Time
}

// CloneApprovalRecord returns a deep copy of a.
func CloneApprovalRecord(a *ApprovalRecord) *ApprovalRecord {
	c := *a
	c.Arguments = bytes.Clone(a.Arguments)
	c.Policies = slices.Clone(a.Policies)
	return &c
}

// Approvals stores approval requests and their decisions. Every state
// change is a compare-and-set on the stored state, atomic also across
// processes sharing one database. Implementations are safe for concurrent
// use.
type Approvals interface {
	// CreateApproval stores a, which must be ApprovalPending, unless an
	// approval with the same Binding is pending and unexpired at now; then
	// it stores nothing and returns that one with created false. The
	// check and the insert are atomic. An ID already in use gives an error
	// wrapping ErrExists.
	CreateApproval(ctx context.Context, a *ApprovalRecord, now time.Time) (stored *ApprovalRecord, created bool, err error)
	// GetApproval returns the approval with the given ID or an error
	// wrapping ErrNotFound.
	GetApproval(ctx context.Context, id string) (*ApprovalRecord, error)
	// FindApprovals returns every approval with the given binding, newest
	// (by CreatedAt, then ID) first.
	FindApprovals(ctx context.Context, binding string) ([]*ApprovalRecord, error)
	// PendingApprovals returns the approvals that are pending and
	// unexpired at now, oldest first.
	PendingApprovals(ctx context.Context, now time.Time) ([]*ApprovalRecord, error)
	// DecideApproval atomically moves a pending approval that is
	// unexpired at now to status (ApprovalApproved or ApprovalDenied),
	// recording approver, note and DecidedAt = now, and returns the
	// updated record. If the approval is not pending or has expired it
	// changes nothing and returns the stored record with an error wrapping
	// ErrApprovalState; an unknown id gives ErrNotFound.
	DecideApproval(ctx context.Context, id, status, approver, note string, now time.Time) (*ApprovalRecord, error)
	// ConsumeApproval atomically moves an approved approval that is
	// unexpired at now to ApprovalConsumed with ConsumedAt = now and
	// returns the updated record. Exactly one of any number of concurrent
	// calls succeeds. Otherwise it changes nothing and returns the stored
	// record with an error wrapping ErrApprovalState; an unknown id gives
	// ErrNotFound.
	ConsumeApproval(ctx context.Context, id string, now time.Time) (*ApprovalRecord, error)
	// DeleteApprovalsExpiredBefore removes the approvals whose ExpiresAt
	// is before t, in any state, and returns how many it removed.
	DeleteApprovalsExpiredBefore(ctx context.Context, t time.Time) (int, error)
}

// CheckApprovalRecord reports whether a may be stored by CreateApproval.
func CheckApprovalRecord(a *ApprovalRecord) error {
	switch {
	case a == nil:
		return errors.New("store: nil approval")
	case a.ID == "":
		return errors.New("store: approval without id")
	case a.Binding == "":
		return fmt.Errorf("approval %q: no binding", a.ID)
	case a.Status != ApprovalPending:
		return fmt.Errorf("approval %q: new approval has status %q, want %q", a.ID, a.Status, ApprovalPending)
	case a.ExpiresAt.IsZero():
		return fmt.Errorf("approval %q: no expiry", a.ID)
	}
	return nil
}

// ApprovalsMemory is an in-memory Approvals for tests and
// single-process use. Nothing survives the process.
type ApprovalsMemory struct {
	mu        sync.Mutex
	approvals map[string]*ApprovalRecord
}

var _ Approvals = (*ApprovalsMemory)(nil)

// NewApprovalsMemory returns an empty in-memory approval store.
func NewApprovalsMemory() *ApprovalsMemory {
	return &ApprovalsMemory{approvals: make(map[string]*ApprovalRecord)}
}

// CreateApproval implements Approvals.
func (m *ApprovalsMemory) CreateApproval(ctx context.Context, a *ApprovalRecord, now time.Time) (*ApprovalRecord, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	if err := CheckApprovalRecord(a); err != nil {
		return nil, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var existing *ApprovalRecord
	for _, o := range m.approvals {
		if o.Binding == a.Binding && o.Status == ApprovalPending && o.ExpiresAt.After(now) {
			if existing == nil || approvalOlder(o, existing) {
				existing = o
			}
		}
	}
	if existing != nil {
		return CloneApprovalRecord(existing), false, nil
	}
	if _, ok := m.approvals[a.ID]; ok {
		return nil, false, fmt.Errorf("approval %q: %w", a.ID, ErrExists)
	}
	c := CloneApprovalRecord(a)
	m.approvals[a.ID] = c
	return CloneApprovalRecord(c), true, nil
}

// approvalOlder orders approvals by CreatedAt, then ID.
func approvalOlder(a, b *ApprovalRecord) bool {
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c < 0
	}
	return a.ID < b.ID
}

// GetApproval implements Approvals.
func (m *ApprovalsMemory) GetApproval(ctx context.Context, id string) (*ApprovalRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.approvals[id]
	if !ok {
		return nil, fmt.Errorf("approval %q: %w", id, ErrNotFound)
	}
	return CloneApprovalRecord(a), nil
}

func (m *ApprovalsMemory) list(keep func(*ApprovalRecord) bool, newestFirst bool) []*ApprovalRecord {
	var out []*ApprovalRecord
	for _, a := range m.approvals {
		if keep(a) {
			out = append(out, CloneApprovalRecord(a))
		}
	}
	slices.SortFunc(out, func(a, b *ApprovalRecord) int {
		c := cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
		if newestFirst {
			return -c
		}
		return c
	})
	return out
}

// FindApprovals implements Approvals.
func (m *ApprovalsMemory) FindApprovals(ctx context.Context, binding string) ([]*ApprovalRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.list(func(a *ApprovalRecord) bool { return a.Binding == binding }, true), nil
}

// PendingApprovals implements Approvals.
func (m *ApprovalsMemory) PendingApprovals(ctx context.Context, now time.Time) ([]*ApprovalRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.list(func(a *ApprovalRecord) bool { return a.Status == ApprovalPending && a.ExpiresAt.After(now) }, false), nil
}

// DecideApproval implements Approvals.
func (m *ApprovalsMemory) DecideApproval(ctx context.Context, id, status, approver, note string, now time.Time) (*ApprovalRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if status != ApprovalApproved && status != ApprovalDenied {
		return nil, fmt.Errorf("approval %q: decision %q is neither %q nor %q", id, status, ApprovalApproved, ApprovalDenied)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.approvals[id]
	if !ok {
		return nil, fmt.Errorf("approval %q: %w", id, ErrNotFound)
	}
	if a.Status != ApprovalPending || !a.ExpiresAt.After(now) {
		return CloneApprovalRecord(a), fmt.Errorf("approval %q is %s (expires %s): %w", id, a.Status, a.ExpiresAt.UTC().Format(time.RFC3339), ErrApprovalState)
	}
	a.Status, a.Approver, a.Note, a.DecidedAt = status, approver, note, now
	return CloneApprovalRecord(a), nil
}

// ConsumeApproval implements Approvals.
func (m *ApprovalsMemory) ConsumeApproval(ctx context.Context, id string, now time.Time) (*ApprovalRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.approvals[id]
	if !ok {
		return nil, fmt.Errorf("approval %q: %w", id, ErrNotFound)
	}
	if a.Status != ApprovalApproved || !a.ExpiresAt.After(now) {
		return CloneApprovalRecord(a), fmt.Errorf("approval %q is %s (expires %s): %w", id, a.Status, a.ExpiresAt.UTC().Format(time.RFC3339), ErrApprovalState)
	}
	a.Status, a.ConsumedAt = ApprovalConsumed, now
	return CloneApprovalRecord(a), nil
}

// DeleteApprovalsExpiredBefore implements Approvals.
func (m *ApprovalsMemory) DeleteApprovalsExpiredBefore(ctx context.Context, t time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for id, a := range m.approvals {
		if a.ExpiresAt.Before(t) {
			delete(m.approvals, id)
			n++
		}
	}
	return n, nil
}
