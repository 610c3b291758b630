// Package tasktest provides an MCP server whose "steps" tool runs as a
// long task that moves through several statuses, for tests and
// benchmarks of the gateway's task handling. The server records every
// status change of its tasks, with the time the task store gave it.
package tasktest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/mcp"
)

// Change is one status change of a task at the server.
type Change struct {
	TaskID  string
	Status  mcp.TaskStatus
	Message string
	At      time.Time // the task's lastUpdatedAt
}

// Server is the MCP server and what it records.
type Server struct {
	// MCP is the server to serve.
	MCP *mcp.Server
	// Gate, if set, makes each step of a task wait for a value from it
	// instead of the step's duration.
	Gate chan struct{}

	store *recordingStore
}

// StepsArgs are the arguments of the "steps" tool: Steps working
// statuses ("step i of n"), Every milliseconds apart (unless Gate is
// set), then a completed result "done after n steps".
type StepsArgs struct {
	Steps int `json:"steps"`
	Every int `json:"every_ms"`
}

// New returns a server whose tasks suggest pollInterval (zero: the mcp
// default).
func New(pollInterval time.Duration) *Server {
	s := &Server{store: &recordingStore{TaskStore: mcp.NewMemoryTaskStore(&mcp.MemoryTaskStoreOptions{PollInterval: pollInterval}), owners: map[string]string{}}}
	s.MCP = mcp.NewServer(&mcp.Implementation{Name: "tasktest", Version: "1"}, &mcp.ServerOptions{TaskStore: s.store})
	s.MCP.AddTool(&mcp.Tool{Name: "steps", InputSchema: jsontext.Value(`{"type":"object","properties":{"steps":{"type":"integer"},"every_ms":{"type":"integer"}}}`),
		Execution: &mcp.ToolExecution{TaskSupport: mcp.TaskSupportOptional}}, s.steps)
	return s
}

func (s *Server) steps(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	var a StepsArgs
	if len(req.Params.Arguments) > 0 {
		if err := json.Unmarshal(req.Params.Arguments, &a); err != nil {
			return nil, err
		}
	}
	a.Steps = min(max(a.Steps, 0), 100)
	id, isTask := mcp.TaskIDFromContext(ctx)
	for i := 1; i <= a.Steps; i++ {
		if err := s.wait(ctx, time.Duration(a.Every)*time.Millisecond); err != nil {
			return nil, err
		}
		if isTask {
			if _, err := s.store.UpdateTask(ctx, s.store.owner(id), id, &mcp.TaskUpdate{Status: mcp.TaskStatusWorking, StatusMessage: fmt.Sprintf("step %d of %d", i, a.Steps)}); err != nil {
				return nil, err
			}
		}
	}
	if err := s.wait(ctx, time.Duration(a.Every)*time.Millisecond); err != nil {
		return nil, err
	}
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf("done after %d steps", a.Steps)}}}, nil
}

func (s *Server) wait(ctx context.Context, d time.Duration) error {
	if s.Gate != nil {
		select {
		case <-s.Gate:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Changes returns the status changes recorded so far, in order.
func (s *Server) Changes() []Change {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	return append([]Change(nil), s.store.changes...)
}

// Reads returns how often the task store was read: GetTask calls (every
// tasks/get and tasks/result, and the server's own reads) and ListTasks
// calls (one per tasks/list page).
func (s *Server) Reads() (gets, lists int64) {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	return s.store.gets, s.store.lists
}

// recordingStore is a TaskStore that records status changes, the owner of
// each task, and how often it is read.
type recordingStore struct {
	mcp.TaskStore
	mu          sync.Mutex
	owners      map[string]string
	changes     []Change
	gets, lists int64
}

func (r *recordingStore) owner(id string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.owners[id]
}

func (r *recordingStore) note(rec *mcp.TaskRecord) {
	r.changes = append(r.changes, Change{TaskID: rec.ID, Status: rec.Status, Message: rec.StatusMessage, At: rec.LastUpdatedAt})
}

func (r *recordingStore) CreateTask(ctx context.Context, p *mcp.NewTaskParams) (*mcp.TaskRecord, error) {
	rec, err := r.TaskStore.CreateTask(ctx, p)
	if err == nil {
		r.mu.Lock()
		r.owners[rec.ID] = p.Owner
		r.note(rec)
		r.mu.Unlock()
	}
	return rec, err
}

func (r *recordingStore) UpdateTask(ctx context.Context, owner, id string, u *mcp.TaskUpdate) (*mcp.TaskRecord, error) {
	rec, err := r.TaskStore.UpdateTask(ctx, owner, id, u)
	if err == nil {
		r.mu.Lock()
		r.note(rec)
		r.mu.Unlock()
	}
	return rec, err
}

func (r *recordingStore) GetTask(ctx context.Context, owner, id string) (*mcp.TaskRecord, error) {
	r.mu.Lock()
	r.gets++
	r.mu.Unlock()
	return r.TaskStore.GetTask(ctx, owner, id)
}

func (r *recordingStore) ListTasks(ctx context.Context, owner, cursor string, limit int) ([]*mcp.TaskRecord, string, error) {
	r.mu.Lock()
	r.lists++
	r.mu.Unlock()
	return r.TaskStore.ListTasks(ctx, owner, cursor, limit)
}
