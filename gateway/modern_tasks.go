package gateway

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/internal/jsonraw"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
)

// The Tasks extension (io.modelcontextprotocol/tasks) for modern clients,
// mapped onto the gateway's own tasks.
//
// A modern client that declares the extension and calls a tool whose
// upstream definition allows tasks (execution.taskSupport optional or
// required) gets a gateway task: the call is forwarded as a 2025-11-25
// task-augmented tools/call, so it passes the same task policy
// (context.task, @max_task_ttl, @max_concurrent_tasks), is recorded with
// the same owner binding (the principal, its client and grant) and
// followed by the same watcher as a legacy client's task. The client gets
// the extension's CreateTaskResult (resultType "task") with the gateway's
// task id. tasks/get and tasks/cancel pass the same admission entries as
// their legacy counterparts (the task must be the principal's: another
// principal's task is unknown); tasks/get inlines the result of a
// completed task (fetched as tasks/result) or the error of a failed one.
// tasks/update is refused: the gateway does not relay input to tasks of
// modern clients yet.

// modernTaskCall decides whether a modern tools/call becomes a gateway
// task: the client declares the extension and the tool allows tasks. It
// adds the legacy task augmentation to the params when it does.
func (g *Gateway) modernTaskCall(ctx context.Context, ds *downstreamSession, p *jsonraw.Object) error {
	m := mcp.RequestMetaFromContext(ctx)
	if m == nil {
		return nil
	}
	name, _, _ := p.String("name")
	support := g.toolTaskSupport(ctx, ds.principal, name)
	if support == "" || support == string(mcp.TaskSupportForbidden) {
		return nil
	}
	if !hasTasksExtension(ctx) {
		if support == string(mcp.TaskSupportRequired) {
			return mcp.MissingCapabilityError(tasksExtensionCaps(),
				"tool %q runs only as a task: the client must declare the %s extension", name, mcp.ExtensionTasks)
		}
		return nil
	}
	return p.Set("task", jsontext.Value("{}"))
}

// hasTasksExtension reports whether the modern request ctx belongs to
// declares the Tasks extension.
func hasTasksExtension(ctx context.Context) bool {
	m := mcp.RequestMetaFromContext(ctx)
	if m == nil {
		return false
	}
	_, ok := m.ClientCapabilities.Extensions[mcp.ExtensionTasks]
	return ok
}

func tasksExtensionCaps() *mcp.ClientCapabilities {
	return &mcp.ClientCapabilities{Extensions: map[string]jsontext.Value{mcp.ExtensionTasks: jsontext.Value("{}")}}
}

// missingTasksExtension is the -32021 error of a task method from a
// client that did not declare the extension.
func missingTasksExtension(method string) error {
	return mcp.MissingCapabilityError(tasksExtensionCaps(), "%s needs the %s extension, which the client did not declare", method, mcp.ExtensionTasks)
}

// toolTaskSupport returns the execution.taskSupport of a tool of the
// principal's catalogue ("" when unknown or absent).
func (g *Gateway) toolTaskSupport(ctx context.Context, principal, name string) string {
	raw := g.catalogTool(ctx, principal, name)
	if raw == nil {
		return ""
	}
	v, ok, _ := jsonraw.GetPath(raw, "execution", "taskSupport")
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return ""
	}
	return s
}

// catalogTool returns a tool of the principal's catalogue, as listed, or
// nil.
func (g *Gateway) catalogTool(ctx context.Context, principal, name string) jsontext.Value {
	cat, err := g.catalog(ctx, principal)
	if err != nil || name == "" {
		return nil
	}
	for _, raw := range cat.items[kindTool] {
		if stringOf(raw, "name") == name {
			return raw
		}
	}
	return nil
}

// modernCreatedTask turns the 2025-11-25 CreateTaskResult the gateway
// made ({"task":{...}} with the gateway's id) into the extension's.
func modernCreatedTask(res any) (any, error) {
	raw, ok := res.(jsontext.Value)
	if !ok {
		return res, nil
	}
	task := valueOf(raw, "task")
	if task.Kind() != '{' {
		return res, nil // the upstream ran the call synchronously
	}
	out := modernTaskState(task)
	out["resultType"] = "task"
	return out, nil
}

// modernTaskState is a 2025-11-25 task object in the extension's form.
func modernTaskState(task jsontext.Value) map[string]any {
	out := map[string]any{
		"taskId": stringOf(task, "taskId"),
		"status": stringOf(task, "status"),
	}
	for _, k := range []string{"createdAt", "lastUpdatedAt", "statusMessage"} {
		if s := stringOf(task, k); s != "" {
			out[k] = s
		}
	}
	for legacy, modern := range map[string]string{"ttl": "ttlMs", "pollInterval": "pollIntervalMs"} {
		if v := valueOf(task, legacy); v.Kind() == '0' {
			if n, err := strconv.ParseFloat(string(v), 64); err == nil {
				out[modern] = int64(n)
			}
		}
	}
	return out
}

// modernTaskAnswer adapts the answer of tasks/get or tasks/cancel for a
// modern client.
func (g *Gateway) modernTaskAnswer(ctx context.Context, c *call, res any, err error) (any, error) {
	if c.method == mcp.MethodTasksCancel {
		// The extension acknowledges with an empty result, also for a
		// task that already ended (the task is the principal's: resolve
		// checked it).
		var we *jsonrpc.Error
		if err != nil && !(errors.As(err, &we) && we.Code == jsonrpc.CodeInvalidParams && strings.HasPrefix(we.Message, "Cannot cancel task")) {
			return nil, err
		}
		return struct{}{}, nil
	}
	if err != nil {
		return nil, err
	}
	raw, ok := res.(jsontext.Value)
	if !ok {
		b, merr := json.Marshal(res)
		if merr != nil {
			return nil, merr
		}
		raw = b
	}
	out := modernTaskState(raw)
	if out["status"] == string(mcp.TaskStatusInputRequired) {
		if reqs := g.taskInputs(ctx, c); reqs != nil {
			out["inputRequests"] = reqs
		}
	}
	switch out["status"] {
	case string(mcp.TaskStatusCompleted), string(mcp.TaskStatusFailed):
		// The outcome, inlined: fetched as the legacy tasks/result.
		p, perr := jsonraw.Parse(jsontext.Value(`{}`))
		if perr != nil {
			return nil, perr
		}
		if perr := p.SetString("taskId", c.name); perr != nil {
			return nil, perr
		}
		r, rerr := g.taskResultFor(ctx, c, p)
		var we *jsonrpc.Error
		switch {
		case rerr == nil:
			// A tool error is a completed task whose result has
			// isError, in the extension.
			out["status"] = string(mcp.TaskStatusCompleted)
			out["result"] = withoutRelatedTask(r)
		case errors.As(rerr, &we):
			out["status"] = string(mcp.TaskStatusFailed)
			m := map[string]any{"code": we.Code, "message": we.Message}
			if len(we.Data) > 0 {
				m["data"] = we.Data
			}
			out["error"] = m
		case rerr != nil:
			return nil, rerr
		}
	}
	return out, nil
}

// taskResultFor fetches a task's outcome as tasks/result does.
func (g *Gateway) taskResultFor(ctx context.Context, c *call, p *jsonraw.Object) (any, error) {
	if c.task.Held() {
		rc := *c
		rc.method, rc.p = mcp.MethodTasksResult, p
		return g.heldTaskRequest(ctx, &rc)
	}
	return g.forwardOwnTask(ctx, c.ds.ss, c.ds.principal, mcp.MethodTasksResult, p, c.name, c.task, c.up)
}

// withoutRelatedTask removes the related-task _meta key from an inlined
// result (the task is the one asked about).
func withoutRelatedTask(r any) any {
	raw, ok := r.(jsontext.Value)
	if !ok {
		return r
	}
	meta, err := jsonraw.Parse(valueOf(raw, "_meta"))
	if err != nil {
		return r
	}
	if _, ok := meta.Get(mcp.MetaKeyRelatedTask); !ok {
		return r
	}
	meta.Delete(mcp.MetaKeyRelatedTask)
	o, err := jsonraw.Parse(raw)
	if err != nil {
		return r
	}
	if meta.Len() == 0 {
		o.Delete("_meta")
	} else if o.Set("_meta", meta.Bytes()) != nil {
		return r
	}
	return o.Bytes()
}

// Input for tasks of modern clients.
//
// A 2025-11-25 upstream task that needs input sends its request
// (elicitation, sampling, roots) on the stream of a tasks/result call.
// When a modern owner's tasks/get finds the task input_required, the
// gateway makes that tasks/result call itself, in the background, as a
// parked call (modern_mrtr.go): the upstream's request passes relay
// admission, is kept, and is shown by tasks/get as the task's
// inputRequests; tasks/update brings the answer, which is the upstream
// request's result. The same bounds apply as to parked calls (the
// principal's count, the TTL); one collector per task at a time.

// taskCollectors are the tasks/result calls in progress for modern
// owners' tasks, by gateway task id.
type taskCollectors struct {
	mu sync.Mutex
	by map[string]*parkedCall
}

// taskInputWait bounds how long a tasks/get waits for the upstream's
// request once it started the collector.
const taskInputWait = 5 * time.Second

// taskInputs returns the requests a modern owner's input_required task
// waits for (nil if none), starting the collector if it is not running
// (and then waiting up to taskInputWait for its first request).
func (g *Gateway) taskInputs(ctx context.Context, c *call) map[string]*mcp.InputRequest {
	tc := &g.collectors
	tc.mu.Lock()
	if tc.by == nil {
		tc.by = make(map[string]*parkedCall)
	}
	pc := tc.by[c.name]
	started := pc == nil
	if started {
		pc = g.startCollector(ctx, c)
		if pc == nil {
			tc.mu.Unlock()
			return nil
		}
		tc.by[c.name] = pc
	}
	tc.mu.Unlock()
	deadline := time.NewTimer(taskInputWait)
	defer deadline.Stop()
	for {
		g.parking.mu.Lock()
		ask := pc.pending
		g.parking.mu.Unlock()
		if ask != nil {
			return map[string]*mcp.InputRequest{ask.key: {Method: ask.method, Params: ask.params}}
		}
		if !started {
			return nil // an answered request: the task goes on
		}
		select {
		case <-pc.changed:
		case <-deadline.C:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// startCollector calls tasks/result upstream for a modern owner's task,
// as a parked call whose events a pump goroutine records. Called with
// g.collectors.mu held.
func (g *Gateway) startCollector(ctx context.Context, c *call) *parkedCall {
	cs, err := c.up.sessionAs(ctx, c.ds.principal, g.taskProfile(ctx, c.up, c.name))
	if err != nil {
		return nil
	}
	params, err := json.Marshal(map[string]string{"taskId": c.task.UpstreamTaskID})
	if err != nil {
		return nil
	}
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	pc := &parkedCall{id: newID(), principal: c.ds.principal, method: mcp.MethodTasksUpdate, target: c.name, ds: c.ds,
		events: make(chan parkEvent, 8), cancel: cancel, changed: make(chan struct{}, 1)}
	bctx = context.WithValue(bctx, parkedCallKey{}, pc)
	go func() {
		_, err := g.call(bctx, c.ds.ss, cs, c.up, mcp.MethodTasksResult, params)
		pc.events <- parkEvent{err: err}
	}()
	go g.pumpCollector(pc)
	return pc
}

// pumpCollector records a collector's events: a request parks it (shown
// by tasks/get), the end of the tasks/result call forgets it.
func (g *Gateway) pumpCollector(pc *parkedCall) {
	defer func() {
		g.parking.done(pc)
		pc.cancel()
		g.collectors.mu.Lock()
		if g.collectors.by[pc.target] == pc {
			delete(g.collectors.by, pc.target)
		}
		g.collectors.mu.Unlock()
	}()
	for ev := range pc.events {
		if ev.ask == nil {
			return
		}
		if err := g.parking.park(pc, ev.ask); err != nil {
			return
		}
		select {
		case pc.changed <- struct{}{}:
		default:
		}
	}
}

// modernTaskUpdate serves tasks/update: the task must be the principal's
// (and visible to it, as for tasks/get); the answers go to the requests
// its collector holds.
func (g *Gateway) modernTaskUpdate(ctx context.Context, c *call) (any, error) {
	if err := resolveTask(g, ctx, c); err != nil {
		var re *refusal
		if errors.As(err, &re) {
			return nil, g.refuse(ctx, c, re.outcome, re.err)
		}
		return nil, g.refuse(ctx, c, outcomeUnknown, err)
	}
	// Answering a task's requests is decided as reading the task.
	gc := *c
	gc.method = mcp.MethodTasksGet
	d := g.decideCall(&gc)
	rec := &audit.Record{User: c.ds.principal, Client: c.ds.clientID, Upstream: c.res.Upstream, Action: c.method, Target: c.name,
		PolicyVersion: d.PolicyVersion, Policies: d.Policies, Decision: audit.DecisionAllow, Phase: audit.PhaseDecided}
	if !d.Allow {
		rec.Decision, rec.Outcome = audit.DecisionDeny, audit.OutcomeDenied
		_ = g.auditAppend(ctx, rec)
		return nil, deniedError(mcp.MethodTasksGet, c.res, d)
	}
	if err := g.auditAppend(ctx, rec); err != nil {
		return nil, err
	}
	if cs := g.modernTaskSession(ctx, c); cs != nil {
		// A modern upstream's task: the answers go to it, under its own
		// keys (modern_upstream_tasks.go).
		res, err := g.passTaskRequest(ctx, c, cs)
		done := &audit.Record{User: rec.User, Client: rec.Client, Upstream: rec.Upstream, Action: rec.Action, Target: rec.Target,
			Decision: rec.Decision, PolicyVersion: rec.PolicyVersion, Policies: rec.Policies, Phase: audit.PhaseCompleted, Outcome: audit.OutcomeOK}
		if err != nil {
			done.Outcome, done.Error = audit.OutcomeError, err.Error()
		}
		_ = g.auditAppend(ctx, done)
		return res, err
	}
	g.collectors.mu.Lock()
	pc := g.collectors.by[c.name]
	g.collectors.mu.Unlock()
	delivered := 0
	if pc != nil {
		g.parking.mu.Lock()
		ask := pc.pending
		answer, ok := c.mrtr.responses[ask.keyOrEmpty()]
		if ask != nil && ok && answer.Kind() != 'n' {
			pc.pending = nil
			pc.timer.Stop()
		} else {
			ask = nil
		}
		g.parking.mu.Unlock()
		if ask != nil {
			ask.answer <- answer
			delivered++
		}
	}
	done := &audit.Record{User: rec.User, Client: rec.Client, Upstream: rec.Upstream, Action: rec.Action, Target: rec.Target,
		Decision: rec.Decision, PolicyVersion: rec.PolicyVersion, Policies: rec.Policies, Phase: audit.PhaseCompleted, Outcome: audit.OutcomeOK}
	if delivered == 0 {
		done.Outcome = "ignored"
		done.Error = "no request of the task waits for these answers"
	}
	_ = g.auditAppend(ctx, done)
	return struct{}{}, nil
}

// keyOrEmpty is the ask's key, "" for nil.
func (a *inputAsk) keyOrEmpty() string {
	if a == nil {
		return ""
	}
	return a.key
}
