// Copyright 2026 The mcpgate Authors. All rights reserved.

package mcp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/internal/schematest"
	"github.com/mcpgate/mcpgate/jsonrpc"
)

// wireRecorder records every message both sides send, to validate them
// against the schema and check the spec's _meta rules.
type wireRecorder struct {
	mu      sync.Mutex
	invalid []string                              // messages containing one of these are sent invalid on purpose
	sent    map[string]map[jsonrpc.ID]sentRequest // side -> id -> request
	msgs    []wireMessage
}

type sentRequest struct {
	method string
	task   bool   // the params have a task field
	taskID string // the taskId param of tasks/*
}

type wireMessage struct {
	side    string
	method  string // of the request, or of the request a response answers
	msg     jsonrpc.Message
	data    []byte
	request sentRequest
}

func newWireRecorder() *wireRecorder {
	return &wireRecorder{sent: map[string]map[jsonrpc.ID]sentRequest{"client": {}, "server": {}}}
}

func (r *wireRecorder) record(side string, msg jsonrpc.Message) {
	data, err := jsonrpc.EncodeMessage(msg)
	if err != nil {
		panic(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	m := wireMessage{side: side, msg: msg, data: data}
	switch v := msg.(type) {
	case *jsonrpc.Request:
		m.method = v.Method
		var p struct {
			Task   *TaskMetadata `json:"task"`
			TaskID string        `json:"taskId"`
		}
		_ = json.Unmarshal(v.Params, &p)
		m.request = sentRequest{method: v.Method, task: p.Task != nil, taskID: p.TaskID}
		if !v.IsNotification() {
			r.sent[side][v.ID] = m.request
		}
	case *jsonrpc.Response:
		peer := "client"
		if side == "client" {
			peer = "server"
		}
		m.request = r.sent[peer][v.ID]
		m.method = m.request.method
	}
	r.msgs = append(r.msgs, m)
}

func (r *wireRecorder) messages() []wireMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

var taskRequestDefs = map[string]string{
	MethodInitialize:            "InitializeRequest",
	MethodToolsCall:             "CallToolRequest",
	MethodTasksGet:              "GetTaskRequest",
	MethodTasksResult:           "GetTaskPayloadRequest",
	MethodTasksList:             "ListTasksRequest",
	MethodTasksCancel:           "CancelTaskRequest",
	MethodElicitationCreate:     "ElicitRequest",
	MethodSamplingCreateMessage: "CreateMessageRequest",
	NotificationTasksStatus:     "TaskStatusNotification",
	NotificationProgress:        "ProgressNotification",
}

// resultDef returns the definition of the result of req. A receiver that
// does not take the request as a task answers it normally.
func resultDef(req sentRequest, result jsontext.Value) string {
	switch req.method {
	case MethodToolsCall, MethodSamplingCreateMessage, MethodElicitationCreate:
		var probe struct {
			Task jsontext.Value `json:"task"`
		}
		_ = json.Unmarshal(result, &probe)
		if req.task && len(probe.Task) > 0 {
			return "CreateTaskResult"
		}
		return map[string]string{MethodToolsCall: "CallToolResult", MethodSamplingCreateMessage: "CreateMessageResult", MethodElicitationCreate: "ElicitResult"}[req.method]
	case MethodTasksGet:
		return "GetTaskResult"
	case MethodTasksResult:
		return "GetTaskPayloadResult"
	case MethodTasksList:
		return "ListTasksResult"
	case MethodTasksCancel:
		return "CancelTaskResult"
	case MethodInitialize:
		return "InitializeResult"
	}
	return ""
}

// validate checks every recorded message against the schema and the
// related-task rules.
func (r *wireRecorder) validate(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	invalid := slices.Clone(r.invalid)
	r.mu.Unlock()
messages:
	for _, m := range r.messages() {
		for _, s := range invalid {
			if strings.Contains(string(m.data), s) {
				continue messages
			}
		}
		if err := schematest.Check("JSONRPCMessage", m.data); err != nil {
			t.Errorf("%s sent an invalid message: %v\n%s", m.side, err, m.data)
		}
		switch v := m.msg.(type) {
		case *jsonrpc.Request:
			if def := taskRequestDefs[v.Method]; def != "" {
				if err := schematest.Check(def, m.data); err != nil {
					t.Errorf("%s sent an invalid %s: %v\n%s", m.side, def, err, m.data)
				}
			}
			if hasRelatedTask(v.Params) && (v.Method == NotificationTasksStatus || strings.HasPrefix(v.Method, "tasks/")) {
				t.Errorf("%s sent %s with related-task _meta: %s", m.side, v.Method, m.data)
			}
		case *jsonrpc.Response:
			if v.Error != nil {
				if err := schematest.Check("JSONRPCErrorResponse", m.data); err != nil {
					t.Errorf("%s sent an invalid error response: %v\n%s", m.side, err, m.data)
				}
				continue
			}
			if def := resultDef(m.request, v.Result); def != "" {
				if err := schematest.Check(def, v.Result); err != nil {
					t.Errorf("%s answered %s with an invalid %s: %v\n%s", m.side, m.method, def, err, v.Result)
				}
			}
			switch m.method {
			case MethodTasksResult:
				var res struct {
					Meta Meta `json:"_meta"`
				}
				_ = json.Unmarshal(v.Result, &res)
				if id, ok := res.Meta.RelatedTask(); !ok || id != m.request.taskID {
					t.Errorf("tasks/result response without the related-task _meta of %q: %s", m.request.taskID, v.Result)
				}
			case MethodTasksGet, MethodTasksList, MethodTasksCancel:
				if hasRelatedTask(v.Result) {
					t.Errorf("%s result with related-task _meta: %s", m.method, v.Result)
				}
			}
		}
	}
}

func hasRelatedTask(obj jsontext.Value) bool {
	var p struct {
		Meta Meta `json:"_meta"`
	}
	_ = json.Unmarshal(obj, &p)
	_, ok := p.Meta.RelatedTask()
	return ok
}

type recTransport struct {
	Transport
	rec  *wireRecorder
	side string
}

func (t *recTransport) Connect(ctx context.Context) (Connection, error) {
	c, err := t.Transport.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &recConn{Connection: c, rec: t.rec, side: t.side}, nil
}

type recConn struct {
	Connection
	rec  *wireRecorder
	side string
}

func (c *recConn) Write(ctx context.Context, msg jsonrpc.Message) error {
	c.rec.record(c.side, msg)
	return c.Connection.Write(ctx, msg)
}

// connectTasks connects a client to s over recorded in-memory transports;
// every message is validated when the test ends.
func connectTasks(t *testing.T, s *Server, copts *ClientOptions) (*ClientSession, *ServerSession, *wireRecorder) {
	t.Helper()
	rec := newWireRecorder()
	ct, st := NewInMemoryTransports()
	ctx := context.Background()
	ss, err := s.Connect(ctx, &recTransport{st, rec, "server"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := NewClient(&Implementation{Name: "task-client", Version: "1.0"}, copts).Connect(ctx, &recTransport{ct, rec, "client"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cs.Close()
		ss.Close()
		rec.validate(t)
	})
	return cs, ss, rec
}

// recordingStore records the status updates that reach the store.
type recordingStore struct {
	TaskStore
	mu      sync.Mutex
	updates map[string][]TaskStatus
}

func newRecordingStore(opts *MemoryTaskStoreOptions) *recordingStore {
	return &recordingStore{TaskStore: NewMemoryTaskStore(opts), updates: map[string][]TaskStatus{}}
}

func (s *recordingStore) UpdateTask(ctx context.Context, owner, id string, u *TaskUpdate) (*TaskRecord, error) {
	rec, err := s.TaskStore.UpdateTask(ctx, owner, id, u)
	if err == nil {
		s.mu.Lock()
		s.updates[id] = append(s.updates[id], u.Status)
		s.mu.Unlock()
	}
	return rec, err
}

func (s *recordingStore) history(id string) []TaskStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.updates[id])
}

// taskFixture is a server with tools for exercising tasks.
type taskFixture struct {
	server  *Server
	store   *recordingStore
	release chan struct{} // closed to let "gate" finish
	started chan string   // ids of tasks whose "gate" or "ask" handler started
	ended   chan error    // causes of "gate" handlers that were cancelled
	elicits chan *ElicitResult
}

func newTaskFixture(t *testing.T, storeOpts *MemoryTaskStoreOptions, opts *ServerOptions) *taskFixture {
	f := &taskFixture{
		store:   newRecordingStore(storeOpts),
		release: make(chan struct{}),
		started: make(chan string, 100),
		ended:   make(chan error, 100),
		elicits: make(chan *ElicitResult, 10),
	}
	if opts == nil {
		opts = &ServerOptions{}
	}
	opts.TaskStore = f.store
	s := NewServer(&Implementation{Name: "task-server", Version: "1.0"}, opts)
	optional := &ToolExecution{TaskSupport: TaskSupportOptional}
	text := func(s string) *CallToolResult { return &CallToolResult{Content: []Content{&TextContent{Text: s}}} }
	s.AddTool(&Tool{Name: "gate", Execution: optional}, func(ctx context.Context, req *CallToolRequest) (*CallToolResult, error) {
		id, _ := TaskIDFromContext(ctx)
		f.started <- id
		select {
		case <-f.release:
			return text("done " + id), nil
		case <-ctx.Done():
			f.ended <- context.Cause(ctx)
			return nil, ctx.Err()
		}
	})
	s.AddTool(&Tool{Name: "required", Execution: &ToolExecution{TaskSupport: TaskSupportRequired}}, func(ctx context.Context, req *CallToolRequest) (*CallToolResult, error) {
		return text("required ran"), nil
	})
	s.AddTool(&Tool{Name: "plain"}, func(ctx context.Context, req *CallToolRequest) (*CallToolResult, error) {
		return text("plain ran"), nil
	})
	s.AddTool(&Tool{Name: "forbidden", Execution: &ToolExecution{TaskSupport: TaskSupportForbidden}}, func(ctx context.Context, req *CallToolRequest) (*CallToolResult, error) {
		return text("forbidden ran"), nil
	})
	s.AddTool(&Tool{Name: "toolerr", Execution: optional}, func(ctx context.Context, req *CallToolRequest) (*CallToolResult, error) {
		return nil, errors.New("the tool broke")
	})
	s.AddTool(&Tool{Name: "rpcerr", Execution: optional}, func(ctx context.Context, req *CallToolRequest) (*CallToolResult, error) {
		return nil, jsonrpc.NewError(-32050, "custom protocol failure")
	})
	s.AddTool(&Tool{Name: "ask", Execution: optional}, func(ctx context.Context, req *CallToolRequest) (*CallToolResult, error) {
		id, _ := TaskIDFromContext(ctx)
		f.started <- id
		if err := req.Progress(ctx, 1, 2, "asking"); err != nil {
			return nil, err
		}
		res, err := req.Session.Elicit(ctx, &ElicitParams{Message: "Your name?", RequestedSchema: &ElicitationSchema{
			Properties: map[string]PrimitiveSchemaDefinition{"name": {Type: "string"}},
			Required:   []string{"name"},
		}})
		if err != nil {
			return nil, err
		}
		f.elicits <- res
		return text(fmt.Sprintf("hello %v", res.Content["name"])), nil
	})
	f.server = s
	return f
}

func wantRPCError(t *testing.T, err error, code int64, contains string) *jsonrpc.Error {
	t.Helper()
	var we *jsonrpc.Error
	if !errors.As(err, &we) {
		t.Fatalf("error = %v, want JSON-RPC error %d", err, code)
	}
	if we.Code != code || !strings.Contains(we.Message, contains) {
		t.Fatalf("error = %d %q, want %d containing %q", we.Code, we.Message, code, contains)
	}
	return we
}

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting")
		panic("unreachable")
	}
}

// eventually polls cond until it holds or 5s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestTaskCapabilities(t *testing.T) {
	f := newTaskFixture(t, nil, nil)
	cs, ss, _ := connectTasks(t, f.server, &ClientOptions{
		CreateMessageHandler: func(context.Context, *CreateMessageRequest) (*CreateMessageResult, error) { return nil, nil },
		ElicitationHandler:   func(context.Context, *ElicitRequest) (*ElicitResult, error) { return nil, nil },
	})
	sc := cs.InitializeResult().Capabilities.Tasks
	if sc == nil || sc.List == nil || sc.Cancel == nil || sc.Requests == nil || sc.Requests.Tools == nil || sc.Requests.Tools.Call == nil {
		t.Errorf("server tasks capabilities = %+v", sc)
	}
	cc := ss.InitializeParams().Capabilities.Tasks
	if cc == nil || cc.List == nil || cc.Cancel == nil || cc.Requests.Sampling == nil || cc.Requests.Sampling.CreateMessage == nil || cc.Requests.Elicitation == nil || cc.Requests.Elicitation.Create == nil {
		t.Errorf("client tasks capabilities = %+v", cc)
	}
	var tools []*Tool
	for tool, err := range cs.Tools(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		tools = append(tools, tool)
	}
	for _, tool := range tools {
		if tool.Name == "required" && (tool.Execution == nil || tool.Execution.TaskSupport != TaskSupportRequired) {
			t.Errorf("tool %q execution = %+v", tool.Name, tool.Execution)
		}
	}
}

func TestToolTaskCompleted(t *testing.T) {
	f := newTaskFixture(t, &MemoryTaskStoreOptions{PollInterval: 20 * time.Millisecond}, nil)
	var notesMu sync.Mutex
	var notes []TaskStatusNotificationParams
	cs, _, _ := connectTasks(t, f.server, &ClientOptions{
		TaskStatusHandler: func(_ context.Context, _ *ClientSession, p *TaskStatusNotificationParams) {
			notesMu.Lock()
			notes = append(notes, *p)
			notesMu.Unlock()
		},
	})
	ctx := context.Background()

	before := time.Now().UTC().Add(-time.Second)
	created, err := cs.CallToolAsTask(ctx, &CallToolParams{Name: "gate"}, &TaskMetadata{TTL: 60000})
	if err != nil {
		t.Fatal(err)
	}
	task := created.Task
	if task.Status != TaskStatusWorking || task.TTL == nil || *task.TTL != 60000 || task.PollInterval != 20 {
		t.Errorf("created task = %+v", task)
	}
	for _, ts := range []string{task.CreatedAt, task.LastUpdatedAt} {
		tm, err := time.Parse(time.RFC3339, ts)
		if err != nil || tm.Before(before) || tm.After(time.Now().Add(time.Second)) {
			t.Errorf("timestamp %q: %v", ts, err)
		}
	}
	if id := recv(t, f.started); id != task.TaskID {
		t.Errorf("handler sees task id %q, want %q", id, task.TaskID)
	}
	got, err := cs.GetTask(ctx, &GetTaskParams{TaskID: task.TaskID})
	if err != nil || got.Status != TaskStatusWorking || got.TaskID != task.TaskID || got.CreatedAt != task.CreatedAt {
		t.Fatalf("GetTask = %+v, %v", got, err)
	}

	// tasks/result blocks until the task is terminal.
	type payload struct {
		res *CallToolResult
		err error
	}
	done := make(chan payload, 1)
	go func() {
		res, err := cs.GetTaskResult(ctx, &GetTaskPayloadParams{TaskID: task.TaskID})
		done <- payload{res, err}
	}()
	select {
	case p := <-done:
		t.Fatalf("tasks/result returned before the task finished: %+v", p)
	case <-time.After(50 * time.Millisecond):
	}
	close(f.release)
	p := recv(t, done)
	if p.err != nil {
		t.Fatal(p.err)
	}
	if textOf(t, p.res) != "done "+task.TaskID || p.res.IsError {
		t.Errorf("result = %+v", p.res)
	}
	if id, ok := p.res.Meta.RelatedTask(); !ok || id != task.TaskID {
		t.Errorf("result _meta = %v", p.res.Meta)
	}
	final, err := cs.GetTask(ctx, &GetTaskParams{TaskID: task.TaskID})
	if err != nil || final.Status != TaskStatusCompleted || final.CreatedAt != task.CreatedAt {
		t.Fatalf("final = %+v, %v", final, err)
	}
	// Results can be retrieved again while the task lives.
	var again CallToolResult
	if err := cs.WaitTask(ctx, task.TaskID, &again); err != nil || textOf(t, &again) != "done "+task.TaskID {
		t.Errorf("WaitTask after completion = %+v, %v", again, err)
	}
	if h := f.store.history(task.TaskID); !slices.Equal(h, []TaskStatus{TaskStatusCompleted}) {
		t.Errorf("status history = %v", h)
	}
	eventually(t, "completed notification", func() bool {
		notesMu.Lock()
		defer notesMu.Unlock()
		for _, n := range notes {
			if n.TaskID == task.TaskID && n.Status == TaskStatusCompleted {
				return n.CreatedAt == task.CreatedAt && n.TTL != nil && *n.TTL == 60000
			}
		}
		return false
	})
}

func TestToolTaskFailed(t *testing.T) {
	f := newTaskFixture(t, nil, nil)
	cs, _, _ := connectTasks(t, f.server, nil)
	ctx := context.Background()

	// A tool result with isError fails the task; tasks/result returns it.
	created, err := cs.CallToolAsTask(ctx, &CallToolParams{Name: "toolerr"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var res CallToolResult
	if err := cs.WaitTask(ctx, created.Task.TaskID, &res); err != nil {
		t.Fatal(err)
	}
	if !res.IsError || textOf(t, &res) != "the tool broke" {
		t.Errorf("result = %+v", res)
	}
	got, _ := cs.GetTask(ctx, &GetTaskParams{TaskID: created.Task.TaskID})
	if got.Status != TaskStatusFailed || got.StatusMessage != "the tool broke" {
		t.Errorf("task = %+v", got)
	}

	// A protocol error fails the task; tasks/result returns the same error
	// the call would have returned.
	direct, directErr := cs.CallTool(ctx, &CallToolParams{Name: "rpcerr"})
	if directErr == nil {
		t.Fatalf("direct call = %+v", direct)
	}
	created, err = cs.CallToolAsTask(ctx, &CallToolParams{Name: "rpcerr"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = cs.WaitTask(ctx, created.Task.TaskID, nil)
	wantRPCError(t, err, -32050, "custom protocol failure")
	if err.Error() != directErr.Error() {
		t.Errorf("task error %v differs from direct error %v", err, directErr)
	}
	got, _ = cs.GetTask(ctx, &GetTaskParams{TaskID: created.Task.TaskID})
	if got.Status != TaskStatusFailed || got.StatusMessage != "custom protocol failure" {
		t.Errorf("task = %+v", got)
	}
	if h := f.store.history(created.Task.TaskID); !slices.Equal(h, []TaskStatus{TaskStatusFailed}) {
		t.Errorf("status history = %v", h)
	}
}

func TestToolTaskCancel(t *testing.T) {
	f := newTaskFixture(t, nil, nil)
	cs, _, _ := connectTasks(t, f.server, nil)
	ctx := context.Background()

	created, err := cs.CallToolAsTask(ctx, &CallToolParams{Name: "gate"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := created.Task.TaskID
	recv(t, f.started)
	// A tasks/result waiting for the task is released by the cancellation.
	waitErr := make(chan error, 1)
	go func() { waitErr <- cs.WaitTask(ctx, id, nil) }()

	cancelled, err := cs.CancelTask(ctx, &CancelTaskParams{TaskID: id})
	if err != nil {
		t.Fatal(err)
	}
	if cancelled.Status != TaskStatusCancelled || cancelled.TaskID != id || cancelled.StatusMessage == "" {
		t.Errorf("cancel result = %+v", cancelled)
	}
	if cause := recv(t, f.ended); !errors.Is(cause, errTaskCancelled) {
		t.Errorf("handler context cause = %v", cause)
	}
	if err := recv(t, waitErr); err == nil || !strings.Contains(err.Error(), "cancelled") {
		t.Errorf("tasks/result of cancelled task = %v", err)
	}
	got, _ := cs.GetTask(ctx, &GetTaskParams{TaskID: id})
	if got.Status != TaskStatusCancelled {
		t.Errorf("task after cancel = %+v", got)
	}
	// Cancelling a terminal task is -32602.
	_, err = cs.CancelTask(ctx, &CancelTaskParams{TaskID: id})
	wantRPCError(t, err, jsonrpc.CodeInvalidParams, "already in terminal status 'cancelled'")

	// A completed task cannot be cancelled either, and stays completed.
	close(f.release)
	created, _ = cs.CallToolAsTask(ctx, &CallToolParams{Name: "gate"}, nil)
	if err := cs.WaitTask(ctx, created.Task.TaskID, nil); err != nil {
		t.Fatal(err)
	}
	_, err = cs.CancelTask(ctx, &CancelTaskParams{TaskID: created.Task.TaskID})
	wantRPCError(t, err, jsonrpc.CodeInvalidParams, "already in terminal status 'completed'")
	if got, _ := cs.GetTask(ctx, &GetTaskParams{TaskID: created.Task.TaskID}); got.Status != TaskStatusCompleted {
		t.Errorf("completed task after cancel attempt = %+v", got)
	}
	// Unknown tasks.
	_, err = cs.CancelTask(ctx, &CancelTaskParams{TaskID: "nope"})
	wantRPCError(t, err, jsonrpc.CodeInvalidParams, "Task not found")
	_, err = cs.CancelTask(ctx, &CancelTaskParams{})
	wantRPCError(t, err, jsonrpc.CodeInvalidParams, "taskId")
	// The first task's history: cancelled, and nothing after.
	if h := f.store.history(id); !slices.Equal(h, []TaskStatus{TaskStatusCancelled}) {
		t.Errorf("status history = %v", h)
	}
}

func TestToolTaskCancelKeepsCancelled(t *testing.T) {
	// A handler that ignores cancellation and completes leaves the task
	// cancelled.
	f := newTaskFixture(t, nil, nil)
	finish := make(chan struct{})
	finished := make(chan struct{})
	f.server.AddTool(&Tool{Name: "stubborn", Execution: &ToolExecution{TaskSupport: TaskSupportOptional}}, func(ctx context.Context, req *CallToolRequest) (*CallToolResult, error) {
		defer close(finished)
		<-finish
		return &CallToolResult{Content: []Content{&TextContent{Text: "finished anyway"}}}, nil
	})
	cs, _, _ := connectTasks(t, f.server, nil)
	ctx := context.Background()
	created, err := cs.CallToolAsTask(ctx, &CallToolParams{Name: "stubborn"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CancelTask(ctx, &CancelTaskParams{TaskID: created.Task.TaskID}); err != nil {
		t.Fatal(err)
	}
	close(finish)
	<-finished
	time.Sleep(20 * time.Millisecond)
	got, _ := cs.GetTask(ctx, &GetTaskParams{TaskID: created.Task.TaskID})
	if got.Status != TaskStatusCancelled {
		t.Errorf("status = %s, want cancelled", got.Status)
	}
}

func TestToolTaskTTL(t *testing.T) {
	f := newTaskFixture(t, &MemoryTaskStoreOptions{MaxTTL: time.Minute, DefaultTTL: 30 * time.Second}, nil)
	cs, _, _ := connectTasks(t, f.server, nil)
	ctx := context.Background()

	for _, tt := range []struct {
		req, want int64
	}{{0, 30000}, {1000, 1000}, {10_000_000, 60000}} {
		created, err := cs.CallToolAsTask(ctx, &CallToolParams{Name: "toolerr"}, &TaskMetadata{TTL: tt.req})
		if err != nil {
			t.Fatal(err)
		}
		if created.Task.TTL == nil || *created.Task.TTL != tt.want {
			t.Errorf("ttl %d: granted %v, want %d", tt.req, created.Task.TTL, tt.want)
		}
	}
	// A negative ttl is invalid.
	_, err := cs.CallToolAsTask(ctx, &CallToolParams{Name: "gate"}, &TaskMetadata{TTL: -5})
	wantRPCError(t, err, jsonrpc.CodeInvalidParams, "ttl")

	// A running task whose ttl elapses is gone, and its handler cancelled.
	created, err := cs.CallToolAsTask(ctx, &CallToolParams{Name: "gate"}, &TaskMetadata{TTL: 100})
	if err != nil {
		t.Fatal(err)
	}
	recv(t, f.started)
	waitErr := make(chan error, 1)
	go func() {
		_, err := cs.GetTaskPayload(ctx, &GetTaskPayloadParams{TaskID: created.Task.TaskID})
		waitErr <- err
	}()
	if cause := recv(t, f.ended); !errors.Is(cause, errTaskExpired) {
		t.Errorf("handler context cause = %v", cause)
	}
	unknown := func(err error) {
		t.Helper()
		we := wantRPCError(t, err, jsonrpc.CodeInvalidParams, "Task not found")
		_, uerr := cs.GetTask(ctx, &GetTaskParams{TaskID: "never-existed"})
		if uerr.Error() != we.Error() {
			t.Errorf("expired task error %q differs from unknown task error %q", we, uerr)
		}
	}
	unknown(recv(t, waitErr))
	_, err = cs.GetTask(ctx, &GetTaskParams{TaskID: created.Task.TaskID})
	unknown(err)
	_, err = cs.GetTaskPayload(ctx, &GetTaskPayloadParams{TaskID: created.Task.TaskID})
	unknown(err)
	_, err = cs.CancelTask(ctx, &CancelTaskParams{TaskID: created.Task.TaskID})
	unknown(err)
	for task, err := range cs.Tasks(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if task.TaskID == created.Task.TaskID {
			t.Error("expired task is listed")
		}
	}

	// A completed task expires too.
	close(f.release)
	created, _ = cs.CallToolAsTask(ctx, &CallToolParams{Name: "gate"}, &TaskMetadata{TTL: 80})
	if _, err := cs.GetTaskPayload(ctx, &GetTaskPayloadParams{TaskID: created.Task.TaskID}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	_, err = cs.GetTask(ctx, &GetTaskParams{TaskID: created.Task.TaskID})
	unknown(err)
}

func TestToolTaskInputRequired(t *testing.T) {
	f := newTaskFixture(t, &MemoryTaskStoreOptions{PollInterval: 10 * time.Millisecond}, nil)
	elicited := make(chan *ElicitRequest, 1)
	progress := make(chan *ProgressNotificationParams, 1)
	var notesMu sync.Mutex
	var notes []TaskStatus
	cs, _, rec := connectTasks(t, f.server, &ClientOptions{
		ElicitationHandler: func(ctx context.Context, req *ElicitRequest) (*ElicitResult, error) {
			elicited <- req
			return &ElicitResult{Action: ElicitActionAccept, Content: map[string]any{"name": "Ada"}}, nil
		},
		ProgressHandler: func(_ context.Context, _ *ClientSession, p *ProgressNotificationParams) { progress <- p },
		TaskStatusHandler: func(_ context.Context, _ *ClientSession, p *TaskStatusNotificationParams) {
			notesMu.Lock()
			notes = append(notes, p.Status)
			notesMu.Unlock()
		},
	})
	ctx := context.Background()
	params := &CallToolParams{Name: "ask"}
	params.Meta.SetProgressToken("tok-1")
	created, err := cs.CallToolAsTask(ctx, params, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := created.Task.TaskID
	recv(t, f.started)
	p := recv(t, progress)
	if rt, ok := p.Meta.RelatedTask(); !ok || rt != id || p.ProgressToken != "tok-1" {
		t.Errorf("progress notification = %+v", p)
	}

	// Polling finds input_required; the elicitation waits for tasks/result.
	var seen []TaskStatus
	polled, err := cs.PollTask(ctx, id, func(t *Task) { seen = append(seen, t.Status) })
	if err != nil {
		t.Fatal(err)
	}
	if polled.Status != TaskStatusInputRequired || seen[len(seen)-1] != TaskStatusInputRequired {
		t.Fatalf("polled = %+v, seen %v", polled, seen)
	}
	select {
	case req := <-elicited:
		t.Fatalf("elicitation delivered before tasks/result: %+v", req)
	case <-time.After(50 * time.Millisecond):
	}
	for _, m := range rec.messages() {
		if m.method == MethodElicitationCreate {
			t.Fatal("elicitation/create sent before tasks/result")
		}
	}

	var res CallToolResult
	if err := cs.WaitTask(ctx, id, &res); err != nil {
		t.Fatal(err)
	}
	if textOf(t, &res) != "hello Ada" {
		t.Errorf("result = %+v", res)
	}
	req := recv(t, elicited)
	if rt, ok := req.Params.Meta.RelatedTask(); !ok || rt != id {
		t.Errorf("elicitation _meta = %v", req.Params.Meta)
	}
	// The client's answer carries the related task too.
	if er := recv(t, f.elicits); er == nil {
		t.Error("no elicitation result")
	} else if rt, ok := er.Meta.RelatedTask(); !ok || rt != id {
		t.Errorf("elicitation result _meta = %v", er.Meta)
	}
	// The elicitation travelled while tasks/result was pending.
	var resultReq, resultResp, elicitReq int = -1, -1, -1
	for i, m := range rec.messages() {
		switch {
		case m.side == "client" && m.method == MethodTasksResult && resultReq < 0:
			if _, ok := m.msg.(*jsonrpc.Request); ok {
				resultReq = i
			}
		case m.side == "server" && m.method == MethodElicitationCreate:
			elicitReq = i
		case m.side == "server" && m.method == MethodTasksResult:
			if _, ok := m.msg.(*jsonrpc.Response); ok && resultResp < 0 {
				resultResp = i
			}
		}
	}
	if !(resultReq >= 0 && resultReq < elicitReq && elicitReq < resultResp) {
		t.Errorf("order: tasks/result request %d, elicitation %d, tasks/result response %d", resultReq, elicitReq, resultResp)
	}
	want := []TaskStatus{TaskStatusInputRequired, TaskStatusWorking, TaskStatusCompleted}
	if h := f.store.history(id); !slices.Equal(h, want) {
		t.Errorf("status history = %v, want %v", h, want)
	}
	eventually(t, "status notifications", func() bool {
		notesMu.Lock()
		defer notesMu.Unlock()
		s := slices.Clone(notes)
		slices.Sort(s)
		w := slices.Clone(want)
		slices.Sort(w)
		return slices.Equal(s, w)
	})
}

func TestTaskPollInterval(t *testing.T) {
	const interval = 40 * time.Millisecond
	f := newTaskFixture(t, &MemoryTaskStoreOptions{PollInterval: interval}, nil)
	cs, _, _ := connectTasks(t, f.server, nil)
	ctx := context.Background()
	created, err := cs.CallToolAsTask(ctx, &CallToolParams{Name: "gate"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if created.Task.PollInterval != interval.Milliseconds() {
		t.Errorf("pollInterval = %d", created.Task.PollInterval)
	}
	recv(t, f.started)
	time.AfterFunc(5*interval, func() { close(f.release) })
	var times []time.Time
	task, err := cs.PollTask(ctx, created.Task.TaskID, func(*Task) { times = append(times, time.Now()) })
	if err != nil {
		t.Fatal(err)
	}
	if task.Status != TaskStatusCompleted {
		t.Errorf("final status %s", task.Status)
	}
	elapsed := times[len(times)-1].Sub(times[0])
	if len(times) < 3 || len(times) > int(elapsed/interval)+1 {
		t.Errorf("%d polls in %v at interval %v", len(times), elapsed, interval)
	}
	for i := 1; i < len(times); i++ {
		if d := times[i].Sub(times[i-1]); d < interval-5*time.Millisecond {
			t.Errorf("poll %d came %v after the previous one, before the %v interval", i, d, interval)
		}
	}
	// A cancelled context stops polling.
	created, _ = cs.CallToolAsTask(ctx, &CallToolParams{Name: "toolerr"}, nil)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := cs.PollTask(cctx, created.Task.TaskID, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("PollTask with cancelled context = %v", err)
	}
}

func TestTaskOwnerIsolation(t *testing.T) {
	f := newTaskFixture(t, nil, nil)
	alice, _, _ := connectTasks(t, f.server, nil)
	bob, _, _ := connectTasks(t, f.server, nil)
	ctx := context.Background()
	created, err := alice.CallToolAsTask(ctx, &CallToolParams{Name: "gate"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := created.Task.TaskID
	recv(t, f.started)

	_, unknownErr := bob.GetTask(ctx, &GetTaskParams{TaskID: "no-such-task"})
	wantRPCError(t, unknownErr, jsonrpc.CodeInvalidParams, "Task not found")
	same := func(what string, err error) {
		t.Helper()
		if err == nil || err.Error() != unknownErr.Error() {
			t.Errorf("%s of another session's task: %v, want %v", what, err, unknownErr)
		}
	}
	_, err = bob.GetTask(ctx, &GetTaskParams{TaskID: id})
	same("tasks/get", err)
	_, err = bob.GetTaskPayload(ctx, &GetTaskPayloadParams{TaskID: id})
	same("tasks/result", err)
	_, err = bob.CancelTask(ctx, &CancelTaskParams{TaskID: id})
	same("tasks/cancel", err)
	list, err := bob.ListTasks(ctx, nil)
	if err != nil || len(list.Tasks) != 0 {
		t.Errorf("bob's list = %+v, %v", list, err)
	}
	list, err = alice.ListTasks(ctx, nil)
	if err != nil || len(list.Tasks) != 1 || list.Tasks[0].TaskID != id {
		t.Errorf("alice's list = %+v, %v", list, err)
	}
	if got, err := alice.GetTask(ctx, &GetTaskParams{TaskID: id}); err != nil || got.Status != TaskStatusWorking {
		t.Errorf("alice's task = %+v, %v", got, err)
	}

	// Closing the session that owns a task cancels it.
	alice.Close()
	if cause := recv(t, f.ended); !errors.Is(cause, errTaskSessionEnded) {
		t.Errorf("handler cause = %v", cause)
	}
	eventually(t, "cancelled on session end", func() bool {
		return slices.Equal(f.store.history(id), []TaskStatus{TaskStatusCancelled})
	})
}

func TestTaskOwnerPrincipal(t *testing.T) {
	// With TaskOwner, tasks belong to a principal (here the client's name):
	// they survive their session and are visible to its other sessions.
	f := newTaskFixture(t, nil, &ServerOptions{
		TaskOwner: func(ctx context.Context, ss *ServerSession) string {
			return "user:" + ss.InitializeParams().ClientInfo.Name
		},
	})
	ctx := context.Background()
	first, _, _ := connectTasks(t, f.server, nil)
	created, err := first.CallToolAsTask(ctx, &CallToolParams{Name: "gate"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	recv(t, f.started)
	first.Close()

	second, _, _ := connectTasks(t, f.server, nil)
	if got, err := second.GetTask(ctx, &GetTaskParams{TaskID: created.Task.TaskID}); err != nil || got.Status != TaskStatusWorking {
		t.Fatalf("task from another session of the principal = %+v, %v", got, err)
	}
	close(f.release)
	var res CallToolResult
	if err := second.WaitTask(ctx, created.Task.TaskID, &res); err != nil || textOf(t, &res) != "done "+created.Task.TaskID {
		t.Errorf("result = %+v, %v", res, err)
	}

	// Revoking the principal cancels its running tasks.
	f.release = make(chan struct{})
	created2, err := second.CallToolAsTask(ctx, &CallToolParams{Name: "gate"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	recv(t, f.started)
	if n, err := f.server.CancelOwnerTasks(ctx, "user:someone-else", ""); n != 0 || err != nil {
		t.Errorf("CancelOwnerTasks of another principal = %d, %v", n, err)
	}
	if n, err := f.server.CancelOwnerTasks(ctx, "user:task-client", "access revoked"); n != 1 || err != nil {
		t.Errorf("CancelOwnerTasks = %d, %v", n, err)
	}
	if cause := recv(t, f.ended); !errors.Is(cause, errTaskCancelled) {
		t.Errorf("cause = %v", cause)
	}
	if got, _ := second.GetTask(ctx, &GetTaskParams{TaskID: created2.Task.TaskID}); got.Status != TaskStatusCancelled || got.StatusMessage != "access revoked" {
		t.Errorf("revoked task = %+v", got)
	}

	// Another principal sees nothing.
	other := NewClient(&Implementation{Name: "someone-else", Version: "1"}, nil)
	ct, st := NewInMemoryTransports()
	ss, _ := f.server.Connect(ctx, st, nil)
	cs, err := other.Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cs.Close(); ss.Close() }()
	_, err = cs.GetTask(ctx, &GetTaskParams{TaskID: created.Task.TaskID})
	wantRPCError(t, err, jsonrpc.CodeInvalidParams, "Task not found")
}

func TestTaskListPagination(t *testing.T) {
	f := newTaskFixture(t, nil, &ServerOptions{PageSize: 2})
	cs, _, _ := connectTasks(t, f.server, nil)
	ctx := context.Background()
	var ids []string
	for range 5 {
		created, err := cs.CallToolAsTask(ctx, &CallToolParams{Name: "toolerr"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, created.Task.TaskID)
	}
	first, err := cs.ListTasks(ctx, nil)
	if err != nil || len(first.Tasks) != 2 || first.NextCursor == "" {
		t.Fatalf("first page = %+v, %v", first, err)
	}
	var got []string
	for task, err := range cs.Tasks(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, task.TaskID)
	}
	if !slices.Equal(got, ids) {
		t.Errorf("listed %v, want %v", got, ids)
	}
	_, err = cs.ListTasks(ctx, &ListTasksParams{Cursor: "not-a-cursor"})
	wantRPCError(t, err, jsonrpc.CodeInvalidParams, "cursor")
}

func TestToolTaskSupport(t *testing.T) {
	f := newTaskFixture(t, nil, nil)
	close(f.release)
	cs, _, _ := connectTasks(t, f.server, nil)
	ctx := context.Background()
	tests := []struct {
		tool     string
		task     bool
		wantCode int64  // 0: success
		wantText string // of the (task) result
	}{
		{"plain", true, jsonrpc.CodeMethodNotFound, ""},
		{"forbidden", true, jsonrpc.CodeMethodNotFound, ""},
		{"plain", false, 0, "plain ran"},
		{"forbidden", false, 0, "forbidden ran"},
		{"required", false, jsonrpc.CodeMethodNotFound, ""},
		{"required", true, 0, "required ran"},
		{"gate", true, 0, "done "},
		{"gate", false, 0, "done "},
		{"missing", true, jsonrpc.CodeInvalidParams, ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/task=%v", tt.tool, tt.task), func(t *testing.T) {
			var res *CallToolResult
			var err error
			if tt.task {
				var created *CreateTaskResult
				created, err = cs.CallToolAsTask(ctx, &CallToolParams{Name: tt.tool}, nil)
				if err == nil {
					res = new(CallToolResult)
					err = cs.WaitTask(ctx, created.Task.TaskID, res)
				}
			} else {
				res, err = cs.CallTool(ctx, &CallToolParams{Name: tt.tool})
			}
			if tt.wantCode != 0 {
				if jsonrpc.ErrorCode(err) != tt.wantCode {
					t.Fatalf("err = %v, want code %d", err, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(textOf(t, res), tt.wantText) {
				t.Errorf("result = %q", textOf(t, res))
			}
		})
	}
}

func TestTaskVersionGating(t *testing.T) {
	f := newTaskFixture(t, nil, nil)
	close(f.release)
	cs, _, _ := connectTasks(t, f.server, &ClientOptions{
		ProtocolVersion:    Version20250618,
		ElicitationHandler: func(context.Context, *ElicitRequest) (*ElicitResult, error) { return nil, nil },
	})
	ctx := context.Background()
	if cs.ProtocolVersion() != Version20250618 || cs.InitializeResult().Capabilities.Tasks != nil {
		t.Fatalf("version %s, tasks capability %+v", cs.ProtocolVersion(), cs.InitializeResult().Capabilities.Tasks)
	}
	if _, err := cs.CallToolAsTask(ctx, &CallToolParams{Name: "gate"}, nil); !errors.Is(err, ErrTasksNotSupported) {
		t.Errorf("CallToolAsTask below 2025-11-25 = %v", err)
	}
	if _, err := cs.GetTask(ctx, &GetTaskParams{TaskID: "x"}); !errors.Is(err, ErrTasksNotSupported) {
		t.Errorf("GetTask below 2025-11-25 = %v", err)
	}
	// The server does not know tasks/* below 2025-11-25.
	for _, m := range []string{MethodTasksGet, MethodTasksResult, MethodTasksList, MethodTasksCancel} {
		_, err := cs.CallRaw(ctx, m, jsontext.Value(`{"taskId":"x"}`))
		if jsonrpc.ErrorCode(err) != jsonrpc.CodeMethodNotFound {
			t.Errorf("%s below 2025-11-25: %v", m, err)
		}
	}
	// A task field is ignored: the call runs normally.
	raw, err := cs.CallRaw(ctx, MethodToolsCall, jsontext.Value(`{"name":"gate","task":{"ttl":1000}}`))
	if err != nil {
		t.Fatal(err)
	}
	var res CallToolResult
	if err := json.Unmarshal(raw, &res); err != nil || !strings.HasPrefix(textOf(t, &res), "done") {
		t.Errorf("tools/call with task below 2025-11-25 = %s, %v", raw, err)
	}
	// Required tools run normally for older clients.
	if res, err := cs.CallTool(ctx, &CallToolParams{Name: "required"}); err != nil || textOf(t, res) != "required ran" {
		t.Errorf("required tool below 2025-11-25 = %+v, %v", res, err)
	}
}

func TestToolTaskIgnoredWithoutCapability(t *testing.T) {
	// A server whose tools are all forbidden does not declare
	// tasks.requests.tools.call, so it processes task-augmented calls
	// normally; tasks/list and tasks/cancel are not supported.
	s := NewServer(&Implementation{Name: "s", Version: "1"}, nil)
	s.AddTool(&Tool{Name: "plain"}, func(context.Context, *CallToolRequest) (*CallToolResult, error) {
		return &CallToolResult{Content: []Content{&TextContent{Text: "ran"}}}, nil
	})
	cs, _, rec := connectTasks(t, s, nil)
	ctx := context.Background()
	if c := cs.InitializeResult().Capabilities.Tasks; c != nil {
		t.Fatalf("tasks capability = %+v", c)
	}
	raw, err := cs.CallRaw(ctx, MethodToolsCall, jsontext.Value(`{"name":"plain","task":{}}`))
	if err != nil || !strings.Contains(string(raw), `"ran"`) {
		t.Errorf("task-augmented call = %s, %v", raw, err)
	}
	for _, m := range []string{MethodTasksList, MethodTasksCancel} {
		if _, err := cs.CallRaw(ctx, m, jsontext.Value(`{"taskId":"x"}`)); jsonrpc.ErrorCode(err) != jsonrpc.CodeMethodNotFound {
			t.Errorf("%s: %v", m, err)
		}
	}
	_, err = cs.CallRaw(ctx, MethodTasksGet, jsontext.Value(`{"taskId":"x"}`))
	wantRPCError(t, err, jsonrpc.CodeInvalidParams, "Task not found")
	rec.mu.Lock()
	rec.invalid = append(rec.invalid, `"taskId":7`)
	rec.mu.Unlock()
	_, err = cs.CallRaw(ctx, MethodTasksGet, jsontext.Value(`{"taskId":7}`))
	wantRPCError(t, err, jsonrpc.CodeInvalidParams, "invalid params")
}

// clientTaskFixture is a client whose sampling and elicitation handlers
// wait to be released.
type clientTaskFixture struct {
	opts     *ClientOptions
	store    *recordingStore
	release  chan struct{}
	started  chan string
	ended    chan error
	failNext chan bool
}

func newClientTaskFixture(storeOpts *MemoryTaskStoreOptions) *clientTaskFixture {
	f := &clientTaskFixture{
		store:    newRecordingStore(storeOpts),
		release:  make(chan struct{}),
		started:  make(chan string, 10),
		ended:    make(chan error, 10),
		failNext: make(chan bool, 10),
	}
	wait := func(ctx context.Context) error {
		id, _ := TaskIDFromContext(ctx)
		f.started <- id
		select {
		case <-f.release:
			return nil
		case <-ctx.Done():
			f.ended <- context.Cause(ctx)
			return ctx.Err()
		}
	}
	f.opts = &ClientOptions{
		TaskStore: f.store,
		CreateMessageHandler: func(ctx context.Context, req *CreateMessageRequest) (*CreateMessageResult, error) {
			if err := wait(ctx); err != nil {
				return nil, err
			}
			select {
			case <-f.failNext:
				return nil, jsonrpc.NewError(-32051, "model refused")
			default:
			}
			return &CreateMessageResult{Role: RoleAssistant, Content: []Content{&TextContent{Text: "sampled"}}, Model: "m1"}, nil
		},
		ElicitationHandler: func(ctx context.Context, req *ElicitRequest) (*ElicitResult, error) {
			if err := wait(ctx); err != nil {
				return nil, err
			}
			return &ElicitResult{Action: ElicitActionAccept, Content: map[string]any{"ok": true}}, nil
		},
	}
	return f
}

func samplingParams() *CreateMessageParams {
	return &CreateMessageParams{MaxTokens: 10, Messages: []*SamplingMessage{{Role: RoleUser, Content: []Content{&TextContent{Text: "hi"}}}}}
}

func TestClientTaskSampling(t *testing.T) {
	cf := newClientTaskFixture(&MemoryTaskStoreOptions{PollInterval: 10 * time.Millisecond})
	statuses := make(chan TaskStatusNotificationParams, 10)
	s := NewServer(&Implementation{Name: "s", Version: "1"}, &ServerOptions{
		NotificationHandler: func(_ context.Context, _ *ServerSession, method string, params jsontext.Value) {
			var p TaskStatusNotificationParams
			if method == NotificationTasksStatus && json.Unmarshal(params, &p) == nil {
				statuses <- p
			}
		},
	})
	_, ss, _ := connectTasks(t, s, cf.opts)
	ctx := context.Background()

	created, err := ss.CreateMessageAsTask(ctx, samplingParams(), &TaskMetadata{TTL: 30000})
	if err != nil {
		t.Fatal(err)
	}
	id := created.Task.TaskID
	if created.Task.Status != TaskStatusWorking || *created.Task.TTL != 30000 || created.Task.PollInterval != 10 {
		t.Errorf("created = %+v", created.Task)
	}
	if got := recv(t, cf.started); got != id {
		t.Errorf("handler task id %q, want %q", got, id)
	}
	got, err := ss.GetClientTask(ctx, &GetTaskParams{TaskID: id})
	if err != nil || got.Status != TaskStatusWorking {
		t.Fatalf("GetClientTask = %+v, %v", got, err)
	}
	list, err := ss.ListClientTasks(ctx, nil)
	if err != nil || len(list.Tasks) != 1 || list.Tasks[0].TaskID != id {
		t.Errorf("ListClientTasks = %+v, %v", list, err)
	}
	time.AfterFunc(30*time.Millisecond, func() { close(cf.release) })
	var res CreateMessageResult
	if err := ss.WaitClientTask(ctx, id, &res); err != nil {
		t.Fatal(err)
	}
	if res.Model != "m1" || len(res.Content) != 1 {
		t.Errorf("result = %+v", res)
	}
	if rt, ok := res.Meta.RelatedTask(); !ok || rt != id {
		t.Errorf("result _meta = %v", res.Meta)
	}
	raw, err := ss.ClientTaskPayload(ctx, &GetTaskPayloadParams{TaskID: id})
	if err != nil || !strings.Contains(string(raw), MetaKeyRelatedTask) {
		t.Errorf("payload = %s, %v", raw, err)
	}
	final, _ := ss.GetClientTask(ctx, &GetTaskParams{TaskID: id})
	if final.Status != TaskStatusCompleted {
		t.Errorf("final = %+v", final)
	}
	if h := cf.store.history(id); !slices.Equal(h, []TaskStatus{TaskStatusCompleted}) {
		t.Errorf("history = %v", h)
	}
	// The client told the server of the change.
	if n := recv(t, statuses); n.TaskID != id || n.Status != TaskStatusCompleted || len(n.Meta) != 0 {
		t.Errorf("status notification = %+v", n)
	}
	var all []string
	for task, err := range ss.ClientTasks(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, task.TaskID)
	}
	if !slices.Equal(all, []string{id}) {
		t.Errorf("ClientTasks = %v", all)
	}

	// A handler error fails the task with that error.
	cf.failNext <- true
	created, err = ss.CreateMessageAsTask(ctx, samplingParams(), nil)
	if err != nil {
		t.Fatal(err)
	}
	recv(t, cf.started)
	err = ss.WaitClientTask(ctx, created.Task.TaskID, nil)
	wantRPCError(t, err, -32051, "model refused")
	failed, _ := ss.GetClientTask(ctx, &GetTaskParams{TaskID: created.Task.TaskID})
	if failed.Status != TaskStatusFailed || failed.StatusMessage != "model refused" {
		t.Errorf("failed task = %+v", failed)
	}
}

func TestClientTaskElicitationCancel(t *testing.T) {
	cf := newClientTaskFixture(nil)
	s := NewServer(&Implementation{Name: "s", Version: "1"}, nil)
	cs, ss, _ := connectTasks(t, s, cf.opts)
	ctx := context.Background()
	params := &ElicitParams{Message: "ok?", RequestedSchema: &ElicitationSchema{Properties: map[string]PrimitiveSchemaDefinition{"ok": {Type: "boolean"}}}}
	created, err := ss.ElicitAsTask(ctx, params, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := created.Task.TaskID
	recv(t, cf.started)
	res, err := ss.CancelClientTask(ctx, &CancelTaskParams{TaskID: id})
	if err != nil || res.Status != TaskStatusCancelled {
		t.Fatalf("CancelClientTask = %+v, %v", res, err)
	}
	if cause := recv(t, cf.ended); !errors.Is(cause, errTaskCancelled) {
		t.Errorf("handler cause = %v", cause)
	}
	_, err = ss.CancelClientTask(ctx, &CancelTaskParams{TaskID: id})
	wantRPCError(t, err, jsonrpc.CodeInvalidParams, "already in terminal status 'cancelled'")
	_, err = ss.ClientTaskPayload(ctx, &GetTaskPayloadParams{TaskID: id})
	wantRPCError(t, err, jsonrpc.CodeInternalError, "cancelled")
	_, err = ss.GetClientTask(ctx, &GetTaskParams{TaskID: "unknown"})
	wantRPCError(t, err, jsonrpc.CodeInvalidParams, "Task not found")

	// A completed elicitation task cannot be cancelled.
	close(cf.release)
	created, _ = ss.ElicitAsTask(ctx, params, nil)
	var er ElicitResult
	if err := ss.WaitClientTask(ctx, created.Task.TaskID, &er); err != nil || er.Action != ElicitActionAccept || er.Content["ok"] != true {
		t.Fatalf("elicitation = %+v, %v", er, err)
	}
	_, err = ss.CancelClientTask(ctx, &CancelTaskParams{TaskID: created.Task.TaskID})
	wantRPCError(t, err, jsonrpc.CodeInvalidParams, "already in terminal status 'completed'")

	// Closing the session cancels the client's running tasks.
	cf.release = make(chan struct{})
	created, _ = ss.ElicitAsTask(ctx, params, nil)
	recv(t, cf.started)
	cs.Close()
	if cause := recv(t, cf.ended); !errors.Is(cause, errTaskSessionEnded) {
		t.Errorf("handler cause after close = %v", cause)
	}
	eventually(t, "cancelled on close", func() bool {
		return slices.Equal(cf.store.history(created.Task.TaskID), []TaskStatus{TaskStatusCancelled})
	})
}

func TestClientTaskTTL(t *testing.T) {
	cf := newClientTaskFixture(nil)
	s := NewServer(&Implementation{Name: "s", Version: "1"}, nil)
	_, ss, _ := connectTasks(t, s, cf.opts)
	ctx := context.Background()
	created, err := ss.CreateMessageAsTask(ctx, samplingParams(), &TaskMetadata{TTL: 60})
	if err != nil {
		t.Fatal(err)
	}
	recv(t, cf.started)
	if cause := recv(t, cf.ended); !errors.Is(cause, errTaskExpired) {
		t.Errorf("cause = %v", cause)
	}
	_, err = ss.GetClientTask(ctx, &GetTaskParams{TaskID: created.Task.TaskID})
	wantRPCError(t, err, jsonrpc.CodeInvalidParams, "Task not found")
}

func TestClientTaskGating(t *testing.T) {
	ctx := context.Background()
	s := NewServer(&Implementation{Name: "s", Version: "1"}, nil)

	// No handlers: no tasks capability.
	_, ss, _ := connectTasks(t, s, nil)
	if _, err := ss.CreateMessageAsTask(ctx, samplingParams(), nil); err == nil {
		t.Error("CreateMessageAsTask to a client without sampling succeeded")
	}
	if _, err := ss.GetClientTask(ctx, &GetTaskParams{TaskID: "x"}); !errors.Is(err, ErrTasksNotSupported) {
		t.Errorf("GetClientTask = %v", err)
	}
	// The client answers tasks/* with -32601 when it has no tasks.
	if err := ss.eng.call(ctx, MethodTasksGet, &GetTaskParams{TaskID: "x"}, nil); jsonrpc.ErrorCode(err) != jsonrpc.CodeMethodNotFound {
		t.Errorf("tasks/get to a client without tasks = %v", err)
	}

	// Below 2025-11-25.
	cf := newClientTaskFixture(nil)
	close(cf.release)
	old := *cf.opts
	old.ProtocolVersion = Version20250326
	_, ss, _ = connectTasks(t, s, &old)
	if _, err := ss.CreateMessageAsTask(ctx, samplingParams(), nil); !errors.Is(err, ErrTasksNotSupported) {
		t.Errorf("CreateMessageAsTask below 2025-11-25 = %v", err)
	}
	if _, err := ss.ElicitAsTask(ctx, &ElicitParams{Message: "m", RequestedSchema: &ElicitationSchema{}}, nil); !errors.Is(err, ErrTasksNotSupported) {
		t.Errorf("ElicitAsTask below 2025-11-25 = %v", err)
	}
	// A task-augmented request is then processed normally.
	p := samplingParams()
	p.Task = &TaskMetadata{}
	var res CreateMessageResult
	if err := ss.eng.call(ctx, MethodSamplingCreateMessage, p, &res); err != nil || res.Model != "m1" {
		t.Errorf("task-augmented sampling below 2025-11-25 = %+v, %v", res, err)
	}
	if err := ss.eng.call(ctx, MethodTasksList, &ListTasksParams{}, nil); jsonrpc.ErrorCode(err) != jsonrpc.CodeMethodNotFound {
		t.Errorf("tasks/list below 2025-11-25 = %v", err)
	}

	// A client that advertises tasks without elicitation.create processes
	// task-augmented elicitation normally.
	cf2 := newClientTaskFixture(nil)
	close(cf2.release)
	noElicit := *cf2.opts
	noElicit.Capabilities = &ClientCapabilities{Tasks: &ClientTasksCapabilities{Requests: &ClientTaskRequestsCapabilities{
		Sampling: &SamplingTaskCapabilities{CreateMessage: &TaskRequestCapability{}},
	}}}
	_, ss, _ = connectTasks(t, s, &noElicit)
	if _, err := ss.ElicitAsTask(ctx, &ElicitParams{Message: "m", RequestedSchema: &ElicitationSchema{}}, nil); !errors.Is(err, ErrTasksNotSupported) {
		t.Errorf("ElicitAsTask without elicitation.create = %v", err)
	}
	ep := &ElicitParams{Message: "m", RequestedSchema: &ElicitationSchema{}, Task: &TaskMetadata{}}
	var er ElicitResult
	if err := ss.eng.call(ctx, MethodElicitationCreate, ep, &er); err != nil || er.Action != ElicitActionAccept {
		t.Errorf("task-augmented elicitation without capability = %+v, %v", er, err)
	}
	// tasks/list and tasks/cancel are not advertised by that client.
	if _, err := ss.ListClientTasks(ctx, nil); !errors.Is(err, ErrTasksNotSupported) {
		t.Errorf("ListClientTasks = %v", err)
	}
	if _, err := ss.CancelClientTask(ctx, &CancelTaskParams{TaskID: "x"}); !errors.Is(err, ErrTasksNotSupported) {
		t.Errorf("CancelClientTask = %v", err)
	}
	if err := ss.eng.call(ctx, MethodTasksCancel, &CancelTaskParams{TaskID: "x"}, nil); jsonrpc.ErrorCode(err) != jsonrpc.CodeMethodNotFound {
		t.Errorf("tasks/cancel to a client without the capability = %v", err)
	}
	// But sampling tasks work.
	created, err := ss.CreateMessageAsTask(ctx, samplingParams(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ss.WaitClientTask(ctx, created.Task.TaskID, &res); err != nil || res.Model != "m1" {
		t.Errorf("sampling task = %+v, %v", res, err)
	}
}

func BenchmarkToolTaskRoundTrip(b *testing.B) {
	s := NewServer(&Implementation{Name: "s", Version: "1"}, &ServerOptions{TaskStore: NewMemoryTaskStore(&MemoryTaskStoreOptions{PollInterval: time.Millisecond})})
	s.AddTool(&Tool{Name: "t", Execution: &ToolExecution{TaskSupport: TaskSupportOptional}}, func(context.Context, *CallToolRequest) (*CallToolResult, error) {
		return &CallToolResult{Content: []Content{&TextContent{Text: "ok"}}}, nil
	})
	ct, st := NewInMemoryTransports()
	ctx := context.Background()
	ss, _ := s.Connect(ctx, st, nil)
	cs, err := NewClient(&Implementation{Name: "c", Version: "1"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { cs.Close(); ss.Close() }()
	b.ReportAllocs()
	for b.Loop() {
		created, err := cs.CallToolAsTask(ctx, &CallToolParams{Name: "t"}, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := cs.GetTaskResult(ctx, &GetTaskPayloadParams{TaskID: created.Task.TaskID}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestToolTaskInputRequiredHTTP(t *testing.T) {
	// Over Streamable HTTP the tools/call request ends at once; the
	// elicitation of the running task travels on the client's tasks/result.
	for _, jsonResponse := range []bool{false, true} {
		t.Run(fmt.Sprintf("jsonResponse=%v", jsonResponse), func(t *testing.T) {
			f := newTaskFixture(t, &MemoryTaskStoreOptions{PollInterval: 10 * time.Millisecond}, nil)
			h := NewStreamableHTTPHandler(func(*http.Request) *Server { return f.server }, &StreamableHTTPOptions{JSONResponse: jsonResponse})
			ts := httptest.NewServer(h)
			t.Cleanup(func() { h.Close(); ts.Close() })
			elicited := make(chan *ElicitRequest, 1)
			c := NewClient(&Implementation{Name: "http-client", Version: "1"}, &ClientOptions{
				ElicitationHandler: func(ctx context.Context, req *ElicitRequest) (*ElicitResult, error) {
					elicited <- req
					return &ElicitResult{Action: ElicitActionAccept, Content: map[string]any{"name": "Grace"}}, nil
				},
			})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cs, err := c.Connect(ctx, &StreamableClientTransport{Endpoint: ts.URL}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			created, err := cs.CallToolAsTask(ctx, &CallToolParams{Name: "ask"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			recv(t, f.started)
			polled, err := cs.PollTask(ctx, created.Task.TaskID, nil)
			if err != nil || polled.Status != TaskStatusInputRequired {
				t.Fatalf("PollTask = %+v, %v", polled, err)
			}
			var res CallToolResult
			if err := cs.WaitTask(ctx, created.Task.TaskID, &res); err != nil {
				t.Fatal(err)
			}
			if textOf(t, &res) != "hello Grace" {
				t.Errorf("result = %+v", res)
			}
			if req := recv(t, elicited); func() bool { id, ok := req.Params.Meta.RelatedTask(); return !ok || id != created.Task.TaskID }() {
				t.Errorf("elicitation _meta = %v", req.Params.Meta)
			}
			want := []TaskStatus{TaskStatusInputRequired, TaskStatusWorking, TaskStatusCompleted}
			if h := f.store.history(created.Task.TaskID); !slices.Equal(h, want) {
				t.Errorf("history = %v, want %v", h, want)
			}
		})
	}
}

func TestToolTaskPanic(t *testing.T) {
	f := newTaskFixture(t, nil, nil)
	f.server.AddTool(&Tool{Name: "panics", Execution: &ToolExecution{TaskSupport: TaskSupportOptional}}, func(context.Context, *CallToolRequest) (*CallToolResult, error) {
		panic("boom")
	})
	cs, _, _ := connectTasks(t, f.server, nil)
	ctx := context.Background()
	created, err := cs.CallToolAsTask(ctx, &CallToolParams{Name: "panics"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cs.GetTaskPayload(ctx, &GetTaskPayloadParams{TaskID: created.Task.TaskID})
	wantRPCError(t, err, jsonrpc.CodeInternalError, "internal error in tools/call")
	if got, _ := cs.GetTask(ctx, &GetTaskParams{TaskID: created.Task.TaskID}); got.Status != TaskStatusFailed {
		t.Errorf("status = %s", got.Status)
	}
	// The session survives.
	if err := cs.Ping(ctx); err != nil {
		t.Error(err)
	}
}
