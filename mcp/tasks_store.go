// Copyright 2026 The mcpgate Authors. All rights reserved.

package mcp

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/jsonrpc"
)

// Errors reported by TaskStore implementations. Implementations return them
// (possibly wrapped) so that sessions can map them to the errors the spec
// asks for.
var (
	// ErrTaskNotFound reports a task that does not exist, has expired, or
	// belongs to another owner. The three cases are deliberately
	// indistinguishable.
	ErrTaskNotFound = errors.New("task not found")
	// ErrTaskTerminal reports an update of a task that is already in a
	// terminal status (completed, failed or cancelled).
	ErrTaskTerminal = errors.New("task is already in a terminal status")
	// ErrInvalidTaskCursor reports a tasks/list cursor the store did not
	// issue.
	ErrInvalidTaskCursor = errors.New("invalid task cursor")
	// ErrTooManyTasks reports that an owner reached the store's limit of
	// tasks.
	ErrTooManyTasks = errors.New("too many tasks")
)

// A TaskStore keeps the state of tasks: their status, timestamps, time to
// live and final outcome. It holds no running code; the session that runs a
// task's request updates the store as the request progresses. The
// in-memory implementation is NewMemoryTaskStore; durable implementations
// (SQLite, PostgreSQL) satisfy the same interface.
//
// Every method takes the task's owner. A task that does not exist, whose
// time to live has elapsed, or that another owner created must be reported
// as ErrTaskNotFound, so that nobody can learn about other owners' tasks.
// Records passed in and returned are copies: the store never retains or
// shares the caller's values. Implementations must be safe for concurrent
// use.
type TaskStore interface {
	// CreateTask stores a new task in status working and returns it. The
	// store chooses the task id (unique, unguessable), the actual time to
	// live (bounding the requested one) and the suggested poll interval.
	CreateTask(ctx context.Context, params *NewTaskParams) (*TaskRecord, error)
	// GetTask returns the owner's task.
	GetTask(ctx context.Context, owner, taskID string) (*TaskRecord, error)
	// UpdateTask changes the status (and status message) of the owner's
	// task and sets its last-updated time. A terminal status must come with
	// the outcome (Result or Error). It returns ErrTaskTerminal if the task
	// is already terminal: terminal tasks never change.
	UpdateTask(ctx context.Context, owner, taskID string, update *TaskUpdate) (*TaskRecord, error)
	// ListTasks returns up to limit of the owner's tasks in creation order,
	// starting after cursor ("" for the start), and the cursor of the next
	// page ("" when there are no more). An unknown cursor is
	// ErrInvalidTaskCursor.
	ListTasks(ctx context.Context, owner, cursor string, limit int) (tasks []*TaskRecord, next string, err error)
	// DeleteExpiredTasks deletes every task whose time to live elapsed at
	// or before now, and reports how many it deleted.
	DeleteExpiredTasks(ctx context.Context, now time.Time) (int, error)
}

// NewTaskParams describe a task to create.
type NewTaskParams struct {
	// Owner is who may see and act on the task: a session or an
	// authenticated principal.
	Owner string
	// Method is the method of the request the task runs (tools/call,
	// sampling/createMessage, elicitation/create).
	Method string
	// TTL is the requested time to live from creation; zero asks for the
	// store's default.
	TTL time.Duration
}

// TaskUpdate is a change of a task's status.
type TaskUpdate struct {
	// Status is the new status.
	Status TaskStatus
	// StatusMessage is the new status message ("" clears it).
	StatusMessage string
	// Result is the raw JSON result of the task's request, for a terminal
	// status reached with a result.
	Result jsontext.Value
	// Error is the JSON-RPC error of the task's request, for a terminal
	// status reached with an error.
	Error *jsonrpc.Error
}

// TaskRecord is a task as a TaskStore keeps it.
type TaskRecord struct {
	// ID is the task id.
	ID string
	// Owner is who may see and act on the task.
	Owner string
	// Method is the method of the request the task runs.
	Method string
	// Status is the current status.
	Status TaskStatus
	// StatusMessage describes the current status.
	StatusMessage string
	// CreatedAt is when the task was created.
	CreatedAt time.Time
	// LastUpdatedAt is when the task's status last changed.
	LastUpdatedAt time.Time
	// TTL is the time to live from creation; zero means unlimited.
	TTL time.Duration
	// PollInterval is the suggested interval between polls; zero means no
	// suggestion.
	PollInterval time.Duration
	// Result is the raw JSON result of the task's request, once the task
	// is terminal and the request produced a result.
	Result jsontext.Value
	// Error is the JSON-RPC error of the task's request, once the task is
	// terminal and the request failed with a protocol error (or was
	// cancelled).
	Error *jsonrpc.Error
}

// taskTimeLayout is the ISO 8601 (RFC 3339) layout of task timestamps.
const taskTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// Task returns the wire form of the record.
func (r *TaskRecord) Task() *Task {
	t := &Task{
		TaskID:        r.ID,
		Status:        r.Status,
		StatusMessage: r.StatusMessage,
		CreatedAt:     r.CreatedAt.UTC().Format(taskTimeLayout),
		LastUpdatedAt: r.LastUpdatedAt.UTC().Format(taskTimeLayout),
		PollInterval:  r.PollInterval.Milliseconds(),
	}
	if r.TTL > 0 {
		ms := r.TTL.Milliseconds()
		t.TTL = &ms
	}
	return t
}

// ExpiresAt returns when the task's time to live elapses (the zero time for
// an unlimited one).
func (r *TaskRecord) ExpiresAt() time.Time {
	if r.TTL <= 0 {
		return time.Time{}
	}
	return r.CreatedAt.Add(r.TTL)
}

// clone returns a deep copy of r.
func (r *TaskRecord) clone() *TaskRecord {
	c := *r
	c.Result = slices.Clone(r.Result)
	if r.Error != nil {
		e := *r.Error
		e.Data = slices.Clone(r.Error.Data)
		c.Error = &e
	}
	return &c
}

// MemoryTaskStoreOptions configure NewMemoryTaskStore. The zero value is
// valid.
type MemoryTaskStoreOptions struct {
	// DefaultTTL is the time to live of tasks whose requestor asked for
	// none. Zero means one hour.
	DefaultTTL time.Duration
	// MaxTTL bounds the time to live a requestor may ask for. Zero means 24
	// hours. Tasks never live longer; unlimited lifetimes are not granted.
	MaxTTL time.Duration
	// PollInterval is the polling interval suggested to requestors. Zero
	// means one second; a negative value suggests none.
	PollInterval time.Duration
	// MaxTasksPerOwner, if positive, bounds the unexpired tasks one owner
	// may hold; CreateTask then fails with ErrTooManyTasks.
	MaxTasksPerOwner int
	// Now returns the current time. Nil means time.Now (tests set it).
	Now func() time.Time
}

// NewMemoryTaskStore returns a TaskStore that keeps tasks in memory. Tasks
// are deleted once their time to live has elapsed: lazily when they are
// looked up, and in sweeps of the whole store at most once a minute during
// CreateTask (or when DeleteExpiredTasks is called).
func NewMemoryTaskStore(opts *MemoryTaskStoreOptions) TaskStore {
	s := &memoryTaskStore{tasks: make(map[string]*memTask), owners: make(map[string]*ownerTasks)}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.DefaultTTL <= 0 {
		s.opts.DefaultTTL = time.Hour
	}
	if s.opts.MaxTTL <= 0 {
		s.opts.MaxTTL = 24 * time.Hour
	}
	if s.opts.DefaultTTL > s.opts.MaxTTL {
		s.opts.DefaultTTL = s.opts.MaxTTL
	}
	switch {
	case s.opts.PollInterval == 0:
		s.opts.PollInterval = time.Second
	case s.opts.PollInterval < 0:
		s.opts.PollInterval = 0
	}
	if s.opts.Now == nil {
		s.opts.Now = time.Now
	}
	return s
}

type memoryTaskStore struct {
	opts MemoryTaskStoreOptions

	mu        sync.Mutex
	seq       uint64
	tasks     map[string]*memTask
	owners    map[string]*ownerTasks
	nextSweep time.Time
}

type memTask struct {
	seq uint64
	rec TaskRecord
}

// ownerTasks are one owner's tasks in creation (seq) order.
type ownerTasks struct {
	list []*memTask
}

func (s *memoryTaskStore) CreateTask(ctx context.Context, p *NewTaskParams) (*TaskRecord, error) {
	if p == nil || p.Owner == "" {
		return nil, errors.New("mcp: task store: a task needs an owner")
	}
	ttl := p.TTL
	if ttl <= 0 {
		ttl = s.opts.DefaultTTL
	}
	ttl = min(ttl, s.opts.MaxTTL)
	id := rand.Text()
	now := s.opts.Now()

	s.mu.Lock()
	defer s.mu.Unlock()
	if !now.Before(s.nextSweep) {
		s.deleteExpiredLocked(now)
		s.nextSweep = now.Add(time.Minute)
	}
	ot := s.owners[p.Owner]
	if ot == nil {
		ot = &ownerTasks{}
		s.owners[p.Owner] = ot
	}
	if max := s.opts.MaxTasksPerOwner; max > 0 && len(ot.list) >= max {
		// Expired tasks do not count.
		s.deleteExpiredLocked(now)
		if ot = s.owners[p.Owner]; ot == nil {
			ot = &ownerTasks{}
			s.owners[p.Owner] = ot
		}
		if len(ot.list) >= max {
			return nil, fmt.Errorf("mcp: task store: owner holds %d tasks: %w", len(ot.list), ErrTooManyTasks)
		}
	}
	s.seq++
	t := &memTask{seq: s.seq, rec: TaskRecord{
		ID:            id,
		Owner:         p.Owner,
		Method:        p.Method,
		Status:        TaskStatusWorking,
		CreatedAt:     now,
		LastUpdatedAt: now,
		TTL:           ttl,
		PollInterval:  s.opts.PollInterval,
	}}
	s.tasks[id] = t
	ot.list = append(ot.list, t)
	return t.rec.clone(), nil
}

// lookupLocked returns the owner's unexpired task, deleting it if expired.
func (s *memoryTaskStore) lookupLocked(owner, id string, now time.Time) (*memTask, error) {
	t, ok := s.tasks[id]
	if !ok || t.rec.Owner != owner {
		return nil, ErrTaskNotFound
	}
	if exp := t.rec.ExpiresAt(); !exp.IsZero() && !now.Before(exp) {
		s.deleteLocked(t)
		return nil, ErrTaskNotFound
	}
	return t, nil
}

func (s *memoryTaskStore) GetTask(ctx context.Context, owner, id string) (*TaskRecord, error) {
	now := s.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.lookupLocked(owner, id, now)
	if err != nil {
		return nil, err
	}
	return t.rec.clone(), nil
}

func (s *memoryTaskStore) UpdateTask(ctx context.Context, owner, id string, u *TaskUpdate) (*TaskRecord, error) {
	if err := checkTaskUpdate(u); err != nil {
		return nil, err
	}
	now := s.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.lookupLocked(owner, id, now)
	if err != nil {
		return nil, err
	}
	if t.rec.Status.IsTerminal() {
		return t.rec.clone(), fmt.Errorf("mcp: task %s is %s: %w", id, t.rec.Status, ErrTaskTerminal)
	}
	t.rec.Status = u.Status
	t.rec.StatusMessage = u.StatusMessage
	t.rec.LastUpdatedAt = now
	if u.Status.IsTerminal() {
		t.rec.Result = slices.Clone(u.Result)
		if u.Error != nil {
			e := *u.Error
			e.Data = slices.Clone(u.Error.Data)
			t.rec.Error = &e
		}
	}
	return t.rec.clone(), nil
}

// checkTaskUpdate checks that an update is well formed: a known status, and
// exactly one outcome for terminal statuses.
func checkTaskUpdate(u *TaskUpdate) error {
	if u == nil {
		return errors.New("mcp: task store: nil update")
	}
	switch u.Status {
	case TaskStatusWorking, TaskStatusInputRequired:
		if len(u.Result) > 0 || u.Error != nil {
			return fmt.Errorf("mcp: task store: status %s cannot carry an outcome", u.Status)
		}
	case TaskStatusCompleted, TaskStatusFailed, TaskStatusCancelled:
		if (len(u.Result) > 0) == (u.Error != nil) {
			return fmt.Errorf("mcp: task store: status %s needs exactly one of a result and an error", u.Status)
		}
	default:
		return fmt.Errorf("mcp: task store: unknown task status %q", u.Status)
	}
	return nil
}

func (s *memoryTaskStore) ListTasks(ctx context.Context, owner, cursor string, limit int) ([]*TaskRecord, string, error) {
	var after uint64
	if cursor != "" {
		var err error
		if after, err = decodeTaskCursor(cursor); err != nil {
			return nil, "", err
		}
	}
	if limit <= 0 {
		limit = 100
	}
	now := s.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if after > s.seq {
		return nil, "", ErrInvalidTaskCursor
	}
	ot := s.owners[owner]
	if ot == nil {
		return []*TaskRecord{}, "", nil
	}
	i, _ := slices.BinarySearchFunc(ot.list, after+1, func(t *memTask, seq uint64) int {
		switch {
		case t.seq < seq:
			return -1
		case t.seq > seq:
			return 1
		}
		return 0
	})
	out := make([]*TaskRecord, 0, min(limit, len(ot.list)-i))
	var last uint64
	for ; i < len(ot.list); i++ {
		t := ot.list[i]
		if exp := t.rec.ExpiresAt(); !exp.IsZero() && !now.Before(exp) {
			continue
		}
		if len(out) == limit {
			return out, encodeTaskCursor(last), nil
		}
		out = append(out, t.rec.clone())
		last = t.seq
	}
	return out, "", nil
}

func (s *memoryTaskStore) DeleteExpiredTasks(ctx context.Context, now time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deleteExpiredLocked(now), nil
}

func (s *memoryTaskStore) deleteExpiredLocked(now time.Time) int {
	n := 0
	for owner, ot := range s.owners {
		kept := ot.list[:0]
		for _, t := range ot.list {
			if exp := t.rec.ExpiresAt(); !exp.IsZero() && !now.Before(exp) {
				delete(s.tasks, t.rec.ID)
				n++
				continue
			}
			kept = append(kept, t)
		}
		clear(ot.list[len(kept):])
		ot.list = kept
		if len(kept) == 0 {
			delete(s.owners, owner)
		}
	}
	return n
}

func (s *memoryTaskStore) deleteLocked(t *memTask) {
	delete(s.tasks, t.rec.ID)
	ot := s.owners[t.rec.Owner]
	if ot == nil {
		return
	}
	if i := slices.Index(ot.list, t); i >= 0 {
		ot.list = slices.Delete(ot.list, i, i+1)
	}
	if len(ot.list) == 0 {
		delete(s.owners, t.rec.Owner)
	}
}

// Task cursors are "t" followed by the decimal sequence number of the last
// task returned, base64url-encoded.
func encodeTaskCursor(seq uint64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("t" + strconv.FormatUint(seq, 10)))
}

func decodeTaskCursor(c string) (uint64, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) < 2 || b[0] != 't' {
		return 0, ErrInvalidTaskCursor
	}
	n, err := strconv.ParseUint(string(b[1:]), 10, 64)
	if err != nil || n == 0 {
		return 0, ErrInvalidTaskCursor
	}
	return n, nil
}
