// Copyright 2026 The mcpgate Authors. All rights reserved.

package mcp

// Tasks (SEP-1686, protocol 2025-11-25): the machinery both roles share.
//
// A receiver (the server for tools/call, the client for sampling and
// elicitation) that accepts a task-augmented request creates a task in its
// TaskStore, answers with a CreateTaskResult at once, and runs the request
// in the background. The store holds the task's state and final outcome;
// a taskReceiver holds what only the running process can: the handler's
// cancellation, the channel tasks/result waits on, and the queue of the
// handler's own requests to the requestor.
//
// Lifetime of a running task's handler. The handler's context is detached
// from the request that created the task: the task outlives that request
// (and, on Streamable HTTP, the HTTP request that carried it). It is
// cancelled when
//   - the requestor cancels the task with tasks/cancel,
//   - the task's time to live elapses (the task is then gone), or
//   - the session that created the task ends, when the task is owned by
//     that session (the default). A task owned by an authenticated
//     principal (ServerOptions.TaskOwner) keeps running after its session
//     ends, so that the principal can collect the result from another
//     session.
//
// Requests a handler sends to the requestor while running as a task
// (elicitation/create, sampling/createMessage, roots/list) carry the
// related-task _meta and move the task to input_required until they are
// answered. They are delivered the way the spec describes: the requestor,
// seeing input_required, calls tasks/result, and the request travels on
// that call (on Streamable HTTP, on its SSE stream); the handler waits
// until some tasks/result of the task's owner picks it up. Notifications
// from the handler (progress, log messages, task status) carry the
// related-task _meta too (except the status notification, as the spec
// asks) and travel on a waiting tasks/result when there is one, or else
// on the session that created the task.
//
// Session-owned tasks need sessions that last: with the Streamable HTTP
// handler's Stateless option every POST is a new session, so tasks work
// there only with ServerOptions.TaskOwner (and without input_required,
// since a stateless server cannot send requests to the client).

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/jsonrpc"
)

// ErrTasksNotSupported is returned (wrapped) by the requestor helpers when
// the peer did not advertise task support for the request, or the
// negotiated protocol version has no tasks.
var ErrTasksNotSupported = errors.New("mcp: peer does not support this task operation")

// Causes of the cancellation of a task handler's context.
var (
	errTaskCancelled    = errors.New("mcp: task cancelled by the requestor")
	errTaskExpired      = errors.New("mcp: task time to live elapsed")
	errTaskSessionEnded = errors.New("mcp: the session that owns the task ended")
)

type taskCtxKey struct{}

// TaskIDFromContext returns the id of the task whose request the handler
// with context ctx is running, if it runs as a task.
func TaskIDFromContext(ctx context.Context) (string, bool) {
	if rt := taskFromContext(ctx); rt != nil {
		return rt.id, true
	}
	return "", false
}

func taskFromContext(ctx context.Context) *runningTask {
	rt, _ := ctx.Value(taskCtxKey{}).(*runningTask)
	return rt
}

// taskReceiver runs the tasks of one Server or Client.
type taskReceiver struct {
	store  TaskStore
	logger *slog.Logger

	mu      sync.Mutex
	running map[string]*runningTask
	owners  map[any]string // session -> owner id of session-bound tasks
}

func newTaskReceiver(store TaskStore, logger *slog.Logger) *taskReceiver {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &taskReceiver{store: store, logger: logger, running: make(map[string]*runningTask), owners: make(map[any]string)}
}

// sessionOwner returns the owner id that binds tasks to the session key,
// which ends when done is closed. Ids are random, so a later session can
// never inherit an earlier session's tasks.
func (r *taskReceiver) sessionOwner(key any, done <-chan struct{}) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if o, ok := r.owners[key]; ok {
		return o
	}
	o := "session:" + rand.Text()
	r.owners[key] = o
	go func() {
		<-done
		r.mu.Lock()
		delete(r.owners, key)
		r.mu.Unlock()
	}()
	return o
}

// taskStart describes a task-augmented request to run.
type taskStart struct {
	owner  string
	method string
	meta   *TaskMetadata
	// sessionDone, if set, ends the task when closed.
	sessionDone <-chan struct{}
	// notify sends a notification on the session that created the task.
	notify func(ctx context.Context, method string, params any) error
	// run runs the request and returns its result.
	run func(ctx context.Context) (any, error)
}

// runningTask is a task whose request runs in this process.
type runningTask struct {
	recv  *taskReceiver
	id    string
	owner string

	ctx    context.Context // the handler's context
	cancel context.CancelCauseFunc
	notify func(ctx context.Context, method string, params any) error

	finished   chan struct{} // closed once the task is terminal (or gone)
	finishOnce sync.Once

	// outbox carries the handler's requests to a tasks/result that
	// delivers them; notes carries notifications to a waiting tasks/result.
	outbox chan *taskMessage
	notes  chan *taskNote

	inputMu      sync.Mutex // serializes input_required bookkeeping
	waitingInput int
}

// taskMessage is a request of a task's handler to the requestor.
type taskMessage struct {
	ctx    context.Context // the handler's context for the request
	method string
	params jsontext.Value
	reply  chan taskReply
}

type taskReply struct {
	result jsontext.Value
	err    error
}

type taskNote struct {
	method string
	params jsontext.Value
}

// start creates the task, starts the request in the background and returns
// the CreateTaskResult.
func (r *taskReceiver) start(ctx context.Context, p *taskStart) (*CreateTaskResult, error) {
	var ttl time.Duration
	if p.meta != nil {
		if p.meta.TTL < 0 {
			return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid task ttl %d: it must not be negative", p.meta.TTL)
		}
		ttl = time.Duration(min(p.meta.TTL, int64(1<<62)/int64(time.Millisecond))) * time.Millisecond
	}
	rec, err := r.store.CreateTask(ctx, &NewTaskParams{Owner: p.owner, Method: p.method, TTL: ttl})
	if err != nil {
		r.logger.Warn("mcp: creating task failed", "method", p.method, "error", err)
		if errors.Is(err, ErrTooManyTasks) {
			return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "cannot create task: too many tasks")
		}
		return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "cannot create task")
	}

	// Detach from the creating request: keep its values (auth, loggers),
	// drop its cancellation and its stream association.
	base := context.WithValue(context.WithoutCancel(ctx), relatedRequestKey{}, nil)
	tctx, cancel := context.WithCancelCause(base)
	rt := &runningTask{
		recv:     r,
		id:       rec.ID,
		owner:    p.owner,
		cancel:   cancel,
		notify:   p.notify,
		finished: make(chan struct{}),
		outbox:   make(chan *taskMessage),
		notes:    make(chan *taskNote),
	}
	rt.ctx = context.WithValue(tctx, taskCtxKey{}, rt)
	r.mu.Lock()
	r.running[rt.id] = rt
	r.mu.Unlock()

	var expiry *time.Timer
	if exp := rec.ExpiresAt(); !exp.IsZero() {
		expiry = time.AfterFunc(time.Until(exp), func() {
			rt.cancel(errTaskExpired)
			rt.finish()
		})
	}
	if p.sessionDone != nil {
		go func() {
			select {
			case <-p.sessionDone:
				rt.terminate(&TaskUpdate{Status: TaskStatusCancelled, StatusMessage: "The session that created the task ended.",
					Error: jsonrpc.NewError(jsonrpc.CodeInternalError, "task cancelled: the session that created it ended")}, false)
				rt.cancel(errTaskSessionEnded)
			case <-rt.finished:
			}
		}()
	}
	r.logger.Debug("mcp: task created", "task", rec.ID, "method", p.method)
	go func() {
		defer func() {
			if expiry != nil {
				expiry.Stop()
			}
			rt.cancel(nil)
			r.mu.Lock()
			delete(r.running, rt.id)
			r.mu.Unlock()
		}()
		res, err := r.runHandler(rt.ctx, p.method, p.run)
		rt.terminate(taskOutcome(res, err), true)
	}()
	return &CreateTaskResult{Task: *rec.Task()}, nil
}

// runHandler runs fn, turning a panic into an internal error.
func (r *taskReceiver) runHandler(ctx context.Context, method string, fn func(context.Context) (any, error)) (res any, err error) {
	defer func() {
		if p := recover(); p != nil {
			r.logger.Error("mcp: task handler panicked", "method", method, "panic", p)
			err = jsonrpc.NewError(jsonrpc.CodeInternalError, "internal error in %s", method)
		}
	}()
	return fn(ctx)
}

// taskOutcome turns a request's result or error into the terminal update
// of its task. A tool result with isError fails the task, as the spec
// says; its result is still what tasks/result returns.
func taskOutcome(res any, err error) *TaskUpdate {
	if err != nil {
		we := toWireError(err)
		return &TaskUpdate{Status: TaskStatusFailed, StatusMessage: we.Message, Error: we}
	}
	raw, merr := marshalResult(res)
	if merr != nil {
		msg := "encoding the task's result: " + merr.Error()
		return &TaskUpdate{Status: TaskStatusFailed, StatusMessage: msg, Error: jsonrpc.NewError(jsonrpc.CodeInternalError, "%s", msg)}
	}
	if r, ok := res.(*CallToolResult); ok && r != nil && r.IsError {
		return &TaskUpdate{Status: TaskStatusFailed, StatusMessage: toolErrorText(r), Result: raw}
	}
	return &TaskUpdate{Status: TaskStatusCompleted, Result: raw}
}

// toolErrorText summarizes a failed tool result for a status message.
func toolErrorText(r *CallToolResult) string {
	var b strings.Builder
	for _, c := range r.Content {
		if t, ok := c.(*TextContent); ok {
			if b.Len() > 0 {
				b.WriteString("\n")
			}
			b.WriteString(t.Text)
		}
	}
	if b.Len() == 0 {
		return "The tool reported an error."
	}
	return b.String()
}

// terminate moves the task to a terminal status, unless it already is
// terminal (a cancelled task stays cancelled whatever its handler does).
// With notify set it tells the requestor.
func (rt *runningTask) terminate(u *TaskUpdate, notify bool) {
	defer rt.finish()
	rec, err := rt.recv.store.UpdateTask(context.WithoutCancel(rt.ctx), rt.owner, rt.id, u)
	if err != nil {
		if !errors.Is(err, ErrTaskTerminal) && !errors.Is(err, ErrTaskNotFound) {
			rt.recv.logger.Warn("mcp: storing task outcome failed", "task", rt.id, "error", err)
		}
		return
	}
	rt.recv.logger.Debug("mcp: task finished", "task", rt.id, "status", rec.Status)
	if notify {
		rt.statusChanged(rec)
	}
}

// finish wakes every tasks/result waiting for the task.
func (rt *runningTask) finish() { rt.finishOnce.Do(func() { close(rt.finished) }) }

// statusChanged sends notifications/tasks/status (without related-task
// _meta, as the spec asks).
func (rt *runningTask) statusChanged(rec *TaskRecord) {
	raw, err := json.Marshal(&TaskStatusNotificationParams{Task: *rec.Task()})
	if err != nil {
		return
	}
	rt.sendNote(context.WithoutCancel(rt.ctx), NotificationTasksStatus, raw, nil)
}

// sendNote sends a notification related to the task: on a waiting
// tasks/result if there is one, otherwise through direct (or, if nil, the
// session that created the task).
func (rt *runningTask) sendNote(ctx context.Context, method string, params jsontext.Value, direct func(ctx context.Context, method string, params any) error) error {
	select {
	case rt.notes <- &taskNote{method: method, params: params}:
		return nil
	default:
	}
	if direct == nil {
		direct = rt.notify
	}
	if direct == nil {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return direct(wctx, method, params)
}

// ask sends a request of the task's handler to the requestor: the task is
// input_required until the answer arrives. The request waits for a
// tasks/result of the task to carry it.
func (rt *runningTask) ask(ctx context.Context, method string, params jsontext.Value) (jsontext.Value, error) {
	m := &taskMessage{ctx: ctx, method: method, params: params, reply: make(chan taskReply, 1)}
	rt.needInput(1, method)
	defer rt.needInput(-1, method)
	select {
	case rt.outbox <- m:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-m.reply:
		return r.result, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// needInput counts the handler's unanswered requests, moving the task to
// input_required when the first is sent and back to working when the last
// is answered.
func (rt *runningTask) needInput(delta int, method string) {
	rt.inputMu.Lock()
	defer rt.inputMu.Unlock()
	rt.waitingInput += delta
	var u *TaskUpdate
	switch {
	case delta > 0 && rt.waitingInput == 1:
		u = &TaskUpdate{Status: TaskStatusInputRequired, StatusMessage: "Waiting for the requestor to answer " + method + "."}
	case delta < 0 && rt.waitingInput == 0:
		u = &TaskUpdate{Status: TaskStatusWorking}
	default:
		return
	}
	rec, err := rt.recv.store.UpdateTask(context.WithoutCancel(rt.ctx), rt.owner, rt.id, u)
	if err != nil {
		return // terminal or gone: nothing to report
	}
	rt.statusChanged(rec)
}

func (r *taskReceiver) lookup(id string) *runningTask {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running[id]
}

// cancelOwner cancels the owner's tasks that are running in this process.
func (r *taskReceiver) cancelOwner(ctx context.Context, owner, message string) (int, error) {
	r.mu.Lock()
	var rts []*runningTask
	for _, rt := range r.running {
		if rt.owner == owner {
			rts = append(rts, rt)
		}
	}
	r.mu.Unlock()
	n := 0
	var errs []error
	for _, rt := range rts {
		rec, err := r.store.UpdateTask(ctx, owner, rt.id, &TaskUpdate{
			Status:        TaskStatusCancelled,
			StatusMessage: message,
			Error:         jsonrpc.NewError(jsonrpc.CodeInternalError, "task cancelled: %s", message),
		})
		if err != nil {
			if !errors.Is(err, ErrTaskTerminal) && !errors.Is(err, ErrTaskNotFound) {
				errs = append(errs, err)
			}
			continue
		}
		rt.cancel(errTaskCancelled)
		rt.statusChanged(rec)
		rt.finish()
		n++
	}
	return n, errors.Join(errs...)
}

// taskNotFound is the error for unknown, expired and other owners' tasks.
func taskNotFound() *jsonrpc.Error {
	return jsonrpc.NewError(jsonrpc.CodeInvalidParams, "Failed to retrieve task: Task not found")
}

// storeError maps a store error to the JSON-RPC error the spec asks for.
func (r *taskReceiver) storeError(op string, err error) error {
	switch {
	case errors.Is(err, ErrTaskNotFound):
		return taskNotFound()
	case errors.Is(err, ErrInvalidTaskCursor):
		return jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid cursor")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	r.logger.Warn("mcp: task store failed", "op", op, "error", err)
	return jsonrpc.NewError(jsonrpc.CodeInternalError, "%s failed: internal error", op)
}

func requireTaskID(id string) error {
	if id == "" {
		return jsonrpc.NewError(jsonrpc.CodeInvalidParams, "taskId is required")
	}
	return nil
}

// get answers tasks/get.
func (r *taskReceiver) get(ctx context.Context, owner string, params jsontext.Value) (any, error) {
	var p GetTaskParams
	if err := unmarshalParams(params, &p); err != nil {
		return nil, err
	}
	if err := requireTaskID(p.TaskID); err != nil {
		return nil, err
	}
	rec, err := r.store.GetTask(ctx, owner, p.TaskID)
	if err != nil {
		return nil, r.storeError(MethodTasksGet, err)
	}
	return &GetTaskResult{Task: *rec.Task()}, nil
}

// list answers tasks/list.
func (r *taskReceiver) list(ctx context.Context, owner string, params jsontext.Value, pageSize int) (any, error) {
	var p ListTasksParams
	if err := unmarshalParams(params, &p); err != nil {
		return nil, err
	}
	recs, next, err := r.store.ListTasks(ctx, owner, p.Cursor, pageSize)
	if err != nil {
		return nil, r.storeError(MethodTasksList, err)
	}
	res := &ListTasksResult{Tasks: make([]*Task, len(recs)), NextCursor: next}
	for i, rec := range recs {
		res.Tasks[i] = rec.Task()
	}
	return res, nil
}

// cancelTask answers tasks/cancel.
func (r *taskReceiver) cancelTask(ctx context.Context, owner string, params jsontext.Value) (any, error) {
	var p CancelTaskParams
	if err := unmarshalParams(params, &p); err != nil {
		return nil, err
	}
	if err := requireTaskID(p.TaskID); err != nil {
		return nil, err
	}
	rec, err := r.store.GetTask(ctx, owner, p.TaskID)
	if err != nil {
		return nil, r.storeError(MethodTasksCancel, err)
	}
	if rec.Status.IsTerminal() {
		return nil, cannotCancel(rec.Status)
	}
	upd, err := r.store.UpdateTask(ctx, owner, p.TaskID, &TaskUpdate{
		Status:        TaskStatusCancelled,
		StatusMessage: "The task was cancelled by request.",
		Error:         jsonrpc.NewError(jsonrpc.CodeInternalError, "task cancelled by request"),
	})
	if errors.Is(err, ErrTaskTerminal) {
		// The task finished between the two calls.
		status := TaskStatusCompleted
		if upd != nil {
			status = upd.Status
		} else if again, gerr := r.store.GetTask(ctx, owner, p.TaskID); gerr == nil {
			status = again.Status
		}
		return nil, cannotCancel(status)
	}
	if err != nil {
		return nil, r.storeError(MethodTasksCancel, err)
	}
	rec = upd
	if rt := r.lookup(p.TaskID); rt != nil {
		rt.cancel(errTaskCancelled)
		rt.statusChanged(rec)
		rt.finish()
	}
	r.logger.Debug("mcp: task cancelled", "task", p.TaskID)
	return &CancelTaskResult{Task: *rec.Task()}, nil
}

func cannotCancel(status TaskStatus) error {
	return jsonrpc.NewError(jsonrpc.CodeInvalidParams, "Cannot cancel task: already in terminal status '%s'", status)
}

// taskDeliverer sends a request, or a notification, on the session of a
// tasks/result call (with ctx, which carries that call's stream).
type taskDeliverer struct {
	call   func(ctx context.Context, method string, params jsontext.Value) (jsontext.Value, error)
	notify func(ctx context.Context, method string, params any) error
}

// result answers tasks/result: it blocks until the task is terminal, then
// returns exactly what the task's request returned (its result with the
// related-task _meta, or its JSON-RPC error). While it waits it carries
// the task's requests and notifications to the requestor.
func (r *taskReceiver) result(ctx context.Context, owner string, params jsontext.Value, d taskDeliverer) (any, error) {
	var p GetTaskPayloadParams
	if err := unmarshalParams(params, &p); err != nil {
		return nil, err
	}
	if err := requireTaskID(p.TaskID); err != nil {
		return nil, err
	}
	for {
		rec, err := r.store.GetTask(ctx, owner, p.TaskID)
		if err != nil {
			return nil, r.storeError(MethodTasksResult, err)
		}
		if rec.Status.IsTerminal() {
			return taskPayload(rec)
		}
		rt := r.lookup(p.TaskID)
		if rt == nil {
			// Not running here (another process, or this one restarted):
			// poll the store.
			d := rec.PollInterval
			if d <= 0 {
				d = time.Second
			}
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			}
			continue
		}
		select {
		case <-rt.finished:
		case m := <-rt.outbox:
			// The request must outlive this call if the call ends early,
			// and travel on this call's stream: cancellation from the
			// handler, values (stream, related request) from ctx.
			dctx := valuesFrom{Context: m.ctx, values: ctx}
			go func() {
				res, err := d.call(dctx, m.method, m.params)
				m.reply <- taskReply{res, err}
			}()
		case n := <-rt.notes:
			if err := d.notify(ctx, n.method, n.params); err != nil {
				r.logger.Debug("mcp: task notification failed", "task", rt.id, "method", n.method, "error", err)
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// taskPayload returns the final outcome of a terminal task.
func taskPayload(rec *TaskRecord) (any, error) {
	if rec.Error != nil {
		return nil, rec.Error
	}
	raw, err := setRelatedTaskMeta(rec.Result, rec.ID)
	if err != nil {
		return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "stored task result is not a JSON object")
	}
	return raw, nil
}

// valuesFrom is a context with the cancellation of one context and the
// values of another.
type valuesFrom struct {
	context.Context
	values context.Context
}

func (c valuesFrom) Value(key any) any { return c.values.Value(key) }

// setRelatedTaskMeta returns the JSON object obj with the related-task
// entry for taskID in its _meta (other members and _meta entries kept).
func setRelatedTaskMeta(obj jsontext.Value, taskID string) (jsontext.Value, error) {
	if len(obj) == 0 {
		obj = jsontext.Value("{}")
	}
	related, err := json.Marshal(&RelatedTaskMetadata{TaskID: taskID})
	if err != nil {
		return nil, err
	}
	dec := jsontext.NewDecoder(bytes.NewReader(obj))
	var out bytes.Buffer
	enc := jsontext.NewEncoder(&out)
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, err
	}
	if tok.Kind() != '{' {
		return nil, fmt.Errorf("mcp: related-task _meta: want a JSON object, have %v", tok.Kind())
	}
	if err := enc.WriteToken(jsontext.BeginObject); err != nil {
		return nil, err
	}
	found := false
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			return nil, err
		}
		name := tok.Clone() // ReadValue voids tok
		val, err := dec.ReadValue()
		if err != nil {
			return nil, err
		}
		if err := enc.WriteToken(name); err != nil {
			return nil, err
		}
		if name.String() == "_meta" {
			found = true
			var m map[string]jsontext.Value
			if err := json.Unmarshal(val, &m); err != nil {
				return nil, fmt.Errorf("mcp: related-task _meta: %w", err)
			}
			if m == nil {
				m = make(map[string]jsontext.Value, 1)
			}
			m[MetaKeyRelatedTask] = related
			if val, err = json.Marshal(m, json.Deterministic(true)); err != nil {
				return nil, err
			}
		}
		if err := enc.WriteValue(val); err != nil {
			return nil, err
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, err
	}
	if !found {
		if err := enc.WriteToken(jsontext.String("_meta")); err != nil {
			return nil, err
		}
		meta, _ := json.Marshal(map[string]jsontext.Value{MetaKeyRelatedTask: related})
		if err := enc.WriteValue(meta); err != nil {
			return nil, err
		}
	}
	if err := enc.WriteToken(jsontext.EndObject); err != nil {
		return nil, err
	}
	return jsontext.Value(bytes.TrimSpace(out.Bytes())), nil
}

// taskRequestor holds the requestor side of tasks for one session: how to
// call the peer, and what the peer supports.
type taskRequestor struct {
	call func(ctx context.Context, method string, params, result any) error
	// caps returns whether the negotiated version has tasks, and the
	// peer's list and cancel support.
	caps func() (tasks, list, cancel bool)
}

func (q taskRequestor) check(method string) error {
	tasks, list, cancel := q.caps()
	switch {
	case !tasks:
		return fmt.Errorf("%s: %w", method, ErrTasksNotSupported)
	case method == MethodTasksList && !list:
		return fmt.Errorf("%s: %w", method, ErrTasksNotSupported)
	case method == MethodTasksCancel && !cancel:
		return fmt.Errorf("%s: %w", method, ErrTasksNotSupported)
	}
	return nil
}

// create sends a task-augmented request and checks that a task was made.
func (q taskRequestor) create(ctx context.Context, method string, params any) (*CreateTaskResult, error) {
	res := new(CreateTaskResult)
	if err := q.call(ctx, method, params, res); err != nil {
		return nil, err
	}
	if res.Task.TaskID == "" {
		return nil, fmt.Errorf("mcp: %s: the peer answered without creating a task", method)
	}
	return res, nil
}

func (q taskRequestor) get(ctx context.Context, p *GetTaskParams) (*GetTaskResult, error) {
	if err := q.check(MethodTasksGet); err != nil {
		return nil, err
	}
	res := new(GetTaskResult)
	if err := q.call(ctx, MethodTasksGet, p, res); err != nil {
		return nil, err
	}
	return res, nil
}

func (q taskRequestor) payload(ctx context.Context, p *GetTaskPayloadParams) (jsontext.Value, error) {
	if err := q.check(MethodTasksResult); err != nil {
		return nil, err
	}
	var res jsontext.Value
	if err := q.call(ctx, MethodTasksResult, p, &res); err != nil {
		return nil, err
	}
	return res, nil
}

func (q taskRequestor) list(ctx context.Context, p *ListTasksParams) (*ListTasksResult, error) {
	if err := q.check(MethodTasksList); err != nil {
		return nil, err
	}
	if p == nil {
		p = &ListTasksParams{}
	}
	res := new(ListTasksResult)
	if err := q.call(ctx, MethodTasksList, p, res); err != nil {
		return nil, err
	}
	return res, nil
}

func (q taskRequestor) cancelTask(ctx context.Context, p *CancelTaskParams) (*CancelTaskResult, error) {
	if err := q.check(MethodTasksCancel); err != nil {
		return nil, err
	}
	res := new(CancelTaskResult)
	if err := q.call(ctx, MethodTasksCancel, p, res); err != nil {
		return nil, err
	}
	return res, nil
}

// Bounds of the polling interval requestors use: the receiver's
// suggestion, or defaultPollInterval without one, never below
// minPollInterval.
const (
	defaultPollInterval = time.Second
	minPollInterval     = 10 * time.Millisecond
)

// poll polls tasks/get, honouring the task's pollInterval, until the task
// is terminal or input_required, and returns its last state. onStatus, if
// set, sees every state polled.
func (q taskRequestor) poll(ctx context.Context, taskID string, onStatus func(*Task)) (*Task, error) {
	for {
		// A request whose response is already buffered can win the race
		// with a cancelled context; check it first so a cancelled caller
		// always stops.
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		res, err := q.get(ctx, &GetTaskParams{TaskID: taskID})
		if err != nil {
			return nil, err
		}
		t := &res.Task
		if onStatus != nil {
			onStatus(t)
		}
		if t.Status.IsTerminal() || t.Status == TaskStatusInputRequired {
			return t, nil
		}
		d := defaultPollInterval
		if t.PollInterval > 0 {
			d = time.Duration(min(t.PollInterval, int64(time.Hour/time.Millisecond))) * time.Millisecond
		}
		d = max(d, minPollInterval)
		timer := time.NewTimer(d)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		}
	}
}

// wait polls until the task is terminal or needs input, then retrieves its
// result with tasks/result (which carries the task's requests while the
// task needs input), and decodes it into result if not nil. A tasks/result
// that times out is retried after polling again.
func (q taskRequestor) wait(ctx context.Context, taskID string, result any) error {
	for {
		if _, err := q.poll(ctx, taskID, nil); err != nil {
			return err
		}
		raw, err := q.payload(ctx, &GetTaskPayloadParams{TaskID: taskID})
		if err != nil {
			if ctx.Err() == nil && jsonrpc.ErrorCode(err) == jsonrpc.CodeRequestTimeout {
				continue
			}
			return err
		}
		if result == nil {
			return nil
		}
		if err := json.Unmarshal(raw, result); err != nil {
			return fmt.Errorf("mcp: decoding result of task %s: %w", taskID, err)
		}
		return nil
	}
}
