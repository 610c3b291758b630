package gateway

import (
	"context"
	"sync"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/internal/jsonraw"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/policy"
)

// Tasks upstreams start toward clients.
//
// An upstream whose client declared task-augmented sampling or elicitation
// (tasks.requests) may send sampling/createMessage or elicitation/create
// with a task; the client answers with a task it runs. The upstream then
// asks about that task (tasks/get, tasks/result, tasks/cancel, tasks/list)
// and the client reports its status (notifications/tasks/status). The
// gateway relays all of it between the one upstream session that created
// the task and the one client session that runs it, and nowhere else:
// clientTasks remembers which is which. Every relayed request passes the
// admission stage like the request that created the task.

// maxClientTasks bounds the client tasks the gateway remembers per
// upstream session; past it, new task-augmented requests are refused.
const maxClientTasks = 1024

// clientTask is a task a client runs for an upstream session.
type clientTask struct {
	us *upstreamSession
	ds *downstreamSession
	id string // the client's task id (the gateway does not rename it)
	// ended is set once the task was seen in a terminal status; an ended
	// task is kept (for tasks/result) until room is needed.
	ended bool
}

// clientTasks remembers the tasks clients run for upstream sessions.
type clientTasks struct {
	mu   sync.Mutex
	byUp map[*upstreamSession]map[string]*clientTask
}

func (ct *clientTasks) add(t *clientTask) bool {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	if ct.byUp == nil {
		ct.byUp = make(map[*upstreamSession]map[string]*clientTask)
	}
	m := ct.byUp[t.us]
	if m == nil {
		m = make(map[string]*clientTask)
		ct.byUp[t.us] = m
	}
	if len(m) >= maxClientTasks {
		for id, old := range m {
			if old.ended || isDone(old.ds) {
				delete(m, id)
			}
		}
	}
	if len(m) >= maxClientTasks {
		return false
	}
	m[t.id] = t
	return true
}

func isDone(ds *downstreamSession) bool {
	select {
	case <-ds.ss.Done():
		return true
	default:
		return false
	}
}

// end marks a task as ended.
func (ct *clientTasks) end(t *clientTask) {
	ct.mu.Lock()
	t.ended = true
	ct.mu.Unlock()
}

// get returns the task id runs for us, if its client session is still
// connected.
func (ct *clientTasks) get(us *upstreamSession, id string) *clientTask {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	t := ct.byUp[us][id]
	if t == nil {
		return nil
	}
	if isDone(t.ds) {
		delete(ct.byUp[us], id)
		return nil
	}
	return t
}

// ofUpstream returns the tasks clients run for us.
func (ct *clientTasks) ofUpstream(us *upstreamSession) []*clientTask {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	out := make([]*clientTask, 0, len(ct.byUp[us]))
	for _, t := range ct.byUp[us] {
		out = append(out, t)
	}
	return out
}

// ofClient finds the task id a client session runs (for its status
// notifications).
func (ct *clientTasks) ofClient(ds *downstreamSession, id string) *clientTask {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	for _, m := range ct.byUp {
		if t := m[id]; t != nil && t.ds.ss == ds.ss {
			return t
		}
	}
	return nil
}

func (ct *clientTasks) remove(t *clientTask) {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	delete(ct.byUp[t.us], t.id)
}

// noteClientTask remembers the task a client created for a relayed
// task-augmented request.
func (g *Gateway) noteClientTask(us *upstreamSession, ds *downstreamSession, res jsontext.Value) error {
	id := stringOf(valueOf(res, "task"), "taskId")
	if id == "" {
		return nil // the client ran it at once
	}
	if !g.clientTasks.add(&clientTask{us: us, ds: ds, id: id}) {
		return jsonrpc.NewError(jsonrpc.CodeInternalError, "too many tasks run by clients for this upstream session (at most %d)", maxClientTasks)
	}
	return nil
}

// relayTaskRequest relays tasks/get, tasks/result, tasks/cancel and
// tasks/list an upstream session sends about the tasks clients run for
// it.
func (g *Gateway) relayTaskRequest(ctx context.Context, us *upstreamSession, method string, params jsontext.Value) (any, error) {
	u := us.up
	c := &call{ds: &downstreamSession{principal: us.principal}, method: method, params: params, args: params, up: u,
		res: policy.Resource{Kind: policy.KindClientRequest, Upstream: u.cfg.Name, Name: method}}
	if method == mcp.MethodTasksList {
		return g.govern(ctx, c, func() (any, error) { return g.listClientTasks(ctx, us) })
	}
	id := stringOf(params, "taskId")
	t := g.clientTasks.get(us, id)
	if t == nil {
		return nil, g.refuse(ctx, c, outcomeUnknown, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "unknown task %q", id))
	}
	c.ds = t.ds
	return g.govern(ctx, c, func() (any, error) {
		res, err := t.ds.ss.CallRaw(ctx, method, params)
		if err != nil {
			return nil, err
		}
		switch {
		case method == mcp.MethodTasksResult:
			g.clientTasks.remove(t)
		case isTerminal(stringOf(res, "status")):
			g.clientTasks.end(t)
		}
		return res, nil
	})
}

// listClientTasks lists the tasks clients run for us: each client's own
// tasks/list, filtered to the tasks of this upstream session.
func (g *Gateway) listClientTasks(ctx context.Context, us *upstreamSession) (jsontext.Value, error) {
	mine := map[*downstreamSession]map[string]bool{}
	for _, t := range g.clientTasks.ofUpstream(us) {
		if mine[t.ds] == nil {
			mine[t.ds] = map[string]bool{}
		}
		mine[t.ds][t.id] = true
	}
	var out []jsontext.Value
	for ds, ids := range mine {
		res, err := ds.ss.CallRaw(ctx, mcp.MethodTasksList, jsontext.Value("{}"))
		if err != nil {
			continue
		}
		tasks, _ := jsonraw.Elements(valueOf(res, "tasks"))
		for _, t := range tasks {
			if ids[stringOf(t, "taskId")] {
				out = append(out, t)
			}
		}
	}
	return withValue(nil, "tasks", jsonraw.JoinArray(out))
}

// clientTaskStatus relays a client's notifications/tasks/status to the
// upstream session its task runs for, if any.
func (g *Gateway) clientTaskStatus(ctx context.Context, ds *downstreamSession, params jsontext.Value) {
	t := g.clientTasks.ofClient(ds, stringOf(params, "taskId"))
	if t == nil {
		return
	}
	t.us.mu.Lock()
	cs := t.us.cs
	t.us.mu.Unlock()
	if cs == nil {
		return
	}
	c := &call{ds: ds, method: mcp.NotificationTasksStatus, res: policy.Resource{Kind: policy.KindClientRequest, Upstream: t.us.up.cfg.Name, Name: mcp.NotificationTasksStatus}}
	_, _ = g.govern(ctx, c, func() (any, error) {
		if isTerminal(stringOf(params, "status")) {
			g.clientTasks.end(t)
		}
		return nil, cs.Notify(ctx, mcp.NotificationTasksStatus, params)
	})
}
