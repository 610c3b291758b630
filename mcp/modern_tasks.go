package mcp

import (
	"context"
	"crypto/rand"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/jsonrpc"
)

// The Tasks extension of revision 2026-07-28 (io.modelcontextprotocol/tasks,
// SEP-2663), server side.
//
// The server decides which calls become tasks: a tool handler calls
// ServerSession.StartTask, and if the tool supports tasks
// (Tool.Execution.TaskSupport optional or required) and the request's client
// declared the extension, the client is answered at once with a
// CreateTaskResult (resultType "task") while the handler keeps running in
// the background. Before StartTask the handler may gather input through
// multi round-trip requests; after it, RequestInput parks the task in
// input_required and waits for the client's tasks/update. The client polls
// tasks/get (the final result or error is inlined there) and may
// tasks/cancel. In a legacy session, or for a client without the extension,
// StartTask does nothing and the call completes synchronously.
//
// Tasks are kept in memory, bound to the caller that created them (the
// principal of the request, see WithPrincipal): another caller is told the
// task does not exist.

// ExtensionTasks is the identifier of the Tasks extension of revision
// 2026-07-28, which replaces the core tasks of 2025-11-25.
const ExtensionTasks = "io.modelcontextprotocol/tasks"

// MethodTasksUpdate is the Tasks extension's method for client input to a
// task.
const MethodTasksUpdate = "tasks/update"

// ResultTypeTask is the resultType of a CreateTaskResult.
const ResultTypeTask = "task"

// Bounds of the extension's tasks.
const (
	// DefaultExtensionTaskTTL is how long a task is kept after it was
	// created.
	DefaultExtensionTaskTTL = time.Hour
	// DefaultExtensionTaskPollInterval is the polling interval suggested
	// to clients.
	DefaultExtensionTaskPollInterval = 250 * time.Millisecond
	// MaxExtensionTasks bounds the tasks one server keeps; creating one
	// more first drops expired ones, then fails with -32603.
	MaxExtensionTasks = 10000
)

// Extension task statuses.
const (
	extWorking       = "working"
	extInputRequired = "input_required"
	extCompleted     = "completed"
	extFailed        = "failed"
	extCancelled     = "cancelled"
)

// extTask is one task of the extension.
type extTask struct {
	id      string
	owner   string
	created time.Time
	ttl     time.Duration

	mu       sync.Mutex
	status   string
	updated  time.Time
	result   jsontext.Value
	err      *jsonrpc.Error
	pending  map[string]*InputRequest
	answers  map[string]jsontext.Value
	answered chan struct{} // closed when the last pending request is answered
	cancel   context.CancelFunc
}

func (t *extTask) terminal() bool {
	return t.status == extCompleted || t.status == extFailed || t.status == extCancelled
}

// wire is the task's state as tasks/get (detailed) or a CreateTaskResult
// (not detailed) shows it.
func (t *extTask) wire(detailed bool) map[string]any {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]any{
		"taskId":         t.id,
		"status":         t.status,
		"createdAt":      t.created.UTC().Format(time.RFC3339Nano),
		"lastUpdatedAt":  t.updated.UTC().Format(time.RFC3339Nano),
		"ttlMs":          t.ttl.Milliseconds(),
		"pollIntervalMs": DefaultExtensionTaskPollInterval.Milliseconds(),
	}
	if !detailed {
		out["resultType"] = ResultTypeTask
		return out
	}
	switch t.status {
	case extCompleted:
		out["result"] = t.result
	case extFailed:
		out["error"] = wireError(t.err)
	case extInputRequired:
		out["inputRequests"] = t.pending
	}
	return out
}

// finish records the handler's outcome, unless the task already ended.
func (t *extTask) finish(res any, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.terminal() {
		return
	}
	t.updated = time.Now()
	if err != nil {
		t.status, t.err = extFailed, toWireError(err)
		return
	}
	raw, merr := marshalResult(res)
	if merr == nil {
		raw, merr = amendComplete(raw)
	}
	if merr != nil {
		t.status, t.err = extFailed, jsonrpc.NewError(jsonrpc.CodeInternalError, "encoding result: %v", merr)
		return
	}
	t.status, t.result = extCompleted, raw
}

// amendComplete marks an inlined result as complete.
func amendComplete(raw jsontext.Value) (jsontext.Value, error) {
	members, err := objectMembers(raw)
	if err != nil {
		return nil, err
	}
	for _, m := range members {
		if m.name == "resultType" {
			return raw, nil
		}
	}
	return appendObject(nil, append(members, member{"resultType", jsontext.Value(`"complete"`)})), nil
}

// wireError is the JSON-RPC error object of e.
func wireError(e *jsonrpc.Error) map[string]any {
	m := map[string]any{"code": e.Code, "message": e.Message}
	if len(e.Data) > 0 {
		m["data"] = e.Data
	}
	return m
}

// extTaskStore is a server's extension tasks.
type extTaskStore struct {
	mu    sync.Mutex
	tasks map[string]*extTask
}

func (s *extTaskStore) create(owner string, now time.Time) (*extTask, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tasks == nil {
		s.tasks = make(map[string]*extTask)
	}
	if len(s.tasks) >= MaxExtensionTasks {
		for id, t := range s.tasks {
			if now.Sub(t.created) > t.ttl {
				delete(s.tasks, id)
			}
		}
		if len(s.tasks) >= MaxExtensionTasks {
			return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "too many tasks (at most %d): try again later", MaxExtensionTasks)
		}
	}
	t := &extTask{id: rand.Text(), owner: owner, created: now, updated: now, ttl: DefaultExtensionTaskTTL, status: extWorking}
	s.tasks[t.id] = t
	return t, nil
}

// get returns the caller's live task with the id.
func (s *extTaskStore) get(id, owner string, now time.Time) *extTask {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tasks[id]
	if t == nil || t.owner != owner {
		return nil
	}
	if now.Sub(t.created) > t.ttl {
		delete(s.tasks, id)
		return nil
	}
	return t
}

// escalation is how a task-capable call in progress hands its task to the
// request that waits for it.
type escalation struct {
	ch      chan *extTask
	created jsontext.Value // the CreateTaskResult, encoded when the task was created
}

// clientHasTasksExtension reports whether the request's client declared the
// Tasks extension.
func clientHasTasksExtension(c ClientCapabilities) bool {
	_, ok := c.Extensions[ExtensionTasks]
	return ok
}

func missingTasksExtension(format string, args ...any) *jsonrpc.Error {
	return MissingCapabilityError(&ClientCapabilities{Extensions: map[string]jsontext.Value{ExtensionTasks: jsontext.Value("{}")}}, format, args...)
}

// StartTask turns the tools/call being served into a task of the Tasks
// extension: the client gets a CreateTaskResult now, the handler keeps
// running and its result is kept for tasks/get. It does nothing (and
// returns nil) when the call cannot become a task: in a legacy session,
// for a tool that does not support tasks, or when the client did not
// declare the extension.
func (ss *ServerSession) StartTask(ctx context.Context) error {
	m := modernFrom(ctx)
	if m == nil || m.esc == nil || m.task != nil {
		return nil
	}
	t, err := ss.server.extTasks.create(m.principal, ss.server.now())
	if err != nil {
		return err
	}
	m.task = t
	m.esc.created = mustMarshal(t.wire(false))
	m.esc.ch <- t // the receiver reads created after this
	return nil
}

// serveTaskCapable runs a tools/call that may become a task: the handler
// runs on its own goroutine; the request returns its result, or a
// CreateTaskResult as soon as the handler calls StartTask.
func (ss *ServerSession) serveTaskCapable(ctx context.Context, m *modernRequest, req *jsonrpc.Request, round *inputRound) (any, error) {
	m.esc = &escalation{ch: make(chan *extTask, 1)}
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel) // until the call becomes a task
	type outcome struct {
		res any
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		var o outcome
		defer func() {
			if p := recover(); p != nil {
				ss.server.opts.Logger.Error("mcp: tool handler panicked", "method", req.Method, "panic", p)
				o = outcome{nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "internal error in %s", req.Method)}
			}
			done <- o
		}()
		o.res, o.err = serverMethods[req.Method].fn(ss, hctx, req.Params)
	}()
	select {
	case o := <-done:
		stop()
		cancel()
		return ss.server.inputOrResult(m, req, round, o.res, o.err)
	case t := <-m.esc.ch:
		stop()
		t.mu.Lock()
		t.cancel = cancel
		t.mu.Unlock()
		go func() {
			o := <-done
			t.finish(o.res, o.err)
			cancel()
		}()
		return m.esc.created, nil
	}
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v, json.Deterministic(true))
	if err != nil {
		panic(err) // maps of strings and numbers always encode
	}
	return b
}

// taskInput waits, in a task, for the client's answers to reqs through
// tasks/update.
func (t *extTask) input(ctx context.Context, reqs map[string]*InputRequest, known map[string]jsontext.Value) (map[string]jsontext.Value, error) {
	out := make(map[string]jsontext.Value, len(reqs))
	t.mu.Lock()
	missing := map[string]*InputRequest{}
	for k, r := range reqs {
		if v, ok := known[k]; ok && v.Kind() != 'n' {
			out[k] = v
		} else if v, ok := t.answers[k]; ok {
			out[k] = v
		} else {
			missing[k] = r
		}
	}
	if len(missing) == 0 {
		t.mu.Unlock()
		return out, nil
	}
	if t.terminal() {
		t.mu.Unlock()
		return nil, errTaskEnded
	}
	t.pending = maps.Clone(missing) // update deletes answered keys from it
	t.answered = make(chan struct{})
	t.status = extInputRequired
	t.updated = time.Now()
	ch := t.answered
	t.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for k := range missing {
		out[k] = t.answers[k]
	}
	return out, nil
}

// update records the client's answers; unknown keys are ignored.
func (t *extTask) update(answers map[string]jsontext.Value) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.status != extInputRequired {
		return
	}
	for k, v := range answers {
		if _, ok := t.pending[k]; !ok {
			continue
		}
		if t.answers == nil {
			t.answers = make(map[string]jsontext.Value)
		}
		t.answers[k] = slices.Clone(v) // v may alias the request's pooled buffer
		delete(t.pending, k)
	}
	if len(t.pending) == 0 {
		t.pending = nil
		t.status = extWorking
		t.updated = time.Now()
		close(t.answered)
	}
}

// taskParams are the params of tasks/get, tasks/update and tasks/cancel.
type taskParams struct {
	TaskID         string                    `json:"taskId"`
	InputResponses map[string]jsontext.Value `json:"inputResponses"`
}

// serveTasksExtension serves tasks/get, tasks/update and tasks/cancel.
func (ss *ServerSession) serveTasksExtension(ctx context.Context, m *modernRequest, req *jsonrpc.Request) (any, error) {
	if !clientHasTasksExtension(m.meta.ClientCapabilities) {
		return nil, missingTasksExtension("%s needs the %s extension, which the client did not declare", req.Method, ExtensionTasks)
	}
	var p taskParams
	if err := unmarshalParams(req.Params, &p); err != nil {
		return nil, err
	}
	if p.TaskID == "" {
		return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "%s: taskId is required", req.Method)
	}
	t := ss.server.extTasks.get(p.TaskID, m.principal, ss.server.now())
	if t == nil {
		return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "%s: unknown task %q", req.Method, p.TaskID)
	}
	switch req.Method {
	case MethodTasksGet:
		return t.wire(true), nil
	case MethodTasksUpdate:
		t.update(p.InputResponses)
		return struct{}{}, nil
	default: // tasks/cancel
		t.mu.Lock()
		if !t.terminal() {
			t.status = extCancelled
			t.updated = time.Now()
			if t.cancel != nil {
				t.cancel()
			}
		}
		t.mu.Unlock()
		return struct{}{}, nil
	}
}

// errTaskEnded is returned to a handler waiting for input when its task
// ends first.
var errTaskEnded = errors.New("mcp: the task ended")
