package gateway

import (
	"context"
	"errors"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/internal/jsonraw"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/store"
)

// Tasks of modern upstreams for modern clients.
//
// A modern client that declares the Tasks extension reaches a modern
// upstream's tasks through the gateway's own task ids: the upstream
// session declares the extension too (profile letter "X"), the call goes
// upstream without the 2025-11-25 augmentation (the gateway never adds
// one toward a modern upstream), its MRTR rounds pass through
// (modern_passthrough.go), and the CreateTaskResult it may end with is
// recorded as a gateway task exactly like a 2025-11-25 task (owner,
// task.created, the watcher, which polls tasks/get and keeps the result
// tasks/get inlines). tasks/get, tasks/update and tasks/cancel of such a
// task are admitted as for any task (the principal's own only), then sent
// to the upstream with its task id, and the answer comes back with the
// gateway's: the upstream's inputRequests keys are passed through, each
// admitted as a relayed request is.

// modernUpstreamTask sends a modern client's tools/call that may become
// a task to a modern upstream, and records the task it becomes.
func (g *Gateway) modernUpstreamTask(ctx context.Context, c *call, cs *mcp.ClientSession, u *upstream) (any, error) {
	c.p.Delete("task")
	res, err := g.passthroughCall(ctx, c, cs, u, c.encode())
	if err != nil {
		return nil, err
	}
	if stringOf(res, "resultType") != mcp.ResultTypeTask {
		return res, nil
	}
	return g.mapModernTask(ctx, c, u, res)
}

// mapModernTask records the task a modern upstream made of a modern
// client's call as a gateway task, and answers with the gateway's id. A
// task made of anything but tools/call is an error of the upstream.
func (g *Gateway) mapModernTask(ctx context.Context, c *call, u *upstream, res jsontext.Value) (any, error) {
	if c.method != mcp.MethodToolsCall {
		return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "upstream %s answered %s with a task, which only tools/call may", u.cfg.Name, c.method)
	}
	if taskToolOf(ctx) == "" {
		ctx = withTaskTool(ctx, c.name) // the task's tool, for task policy
	}
	legacy, err := legacyCreatedTask(res)
	if err != nil {
		return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "upstream %s sent an invalid task: %v", u.cfg.Name, err)
	}
	out, err := g.mapCreatedTask(ctx, u, c.ds, legacy)
	if err != nil {
		return nil, err
	}
	return modernCreatedTask(out)
}

// legacyCreatedTask is the extension's CreateTaskResult in the
// 2025-11-25 form ({"task":{...}}) mapCreatedTask records.
func legacyCreatedTask(res jsontext.Value) (jsontext.Value, error) {
	t, err := jsonraw.Parse(jsontext.Value(`{}`))
	if err != nil {
		return nil, err
	}
	for _, k := range []string{"taskId", "status", "statusMessage", "createdAt", "lastUpdatedAt"} {
		if v := valueOf(res, k); v != nil {
			if err := t.Set(k, v); err != nil {
				return nil, err
			}
		}
	}
	for modern, legacy := range map[string]string{"ttlMs": "ttl", "pollIntervalMs": "pollInterval"} {
		if v := valueOf(res, modern); v != nil {
			if err := t.Set(legacy, v); err != nil {
				return nil, err
			}
		}
	}
	return wrapValue("task", t.Bytes())
}

// modernTaskSession returns the modern upstream session of the task c
// names, or nil when its upstream speaks 2025-11-25 (or the gateway holds
// the task itself).
func (g *Gateway) modernTaskSession(ctx context.Context, c *call) *mcp.ClientSession {
	if c.task == nil || c.up == nil || c.task.Held() || isLost(c.task) {
		return nil
	}
	cs, err := c.up.sessionAs(ctx, c.ds.principal, g.taskProfile(ctx, c.up, c.name))
	if err != nil || !isModernSession(cs) {
		return nil
	}
	return cs
}

// passTaskRequest sends a modern client's tasks/get, tasks/update or
// tasks/cancel of a modern upstream's task to that upstream, with the
// upstream's task id, and answers with the gateway's.
func (g *Gateway) passTaskRequest(ctx context.Context, c *call, cs *mcp.ClientSession) (any, error) {
	p, err := jsonraw.Parse(c.encode())
	if err != nil {
		return nil, err
	}
	p.Delete("requestState")
	if c.method == mcp.MethodTasksUpdate && len(c.mrtr.responses) > 0 {
		b, err := json.Marshal(c.mrtr.responses, json.Deterministic(true))
		if err != nil {
			return nil, err
		}
		if err := p.Set("inputResponses", b); err != nil {
			return nil, err
		}
	}
	if err := p.SetString("taskId", c.task.UpstreamTaskID); err != nil {
		return nil, err
	}
	res, err := g.call(mcp.WithRawInterimResults(ctx), c.ds.ss, cs, c.up, c.method, p.Bytes())
	if err != nil {
		var we *jsonrpc.Error
		if errors.As(err, &we) && we.Code == jsonrpc.CodeInvalidParams && c.method == mcp.MethodTasksGet {
			// The upstream no longer knows the task.
			g.noteStatus(ctx, c.task, string(mcp.TaskStatusFailed), lostTaskMessage)
		}
		return nil, err
	}
	if c.method != mcp.MethodTasksGet {
		return res, nil
	}
	if reqs := valueOf(res, "inputRequests"); reqs.Kind() == '{' {
		var m map[string]jsontext.Value
		if err := json.Unmarshal(reqs, &m); err == nil {
			if len(m) > maxInputRequests {
				return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "a task of upstream %s asks for %d inputs (the gateway relays at most %d)", c.up.cfg.Name, len(m), maxInputRequests)
			}
			own, err := g.admitInputs(ctx, c, c.up, m)
			if err != nil {
				return nil, err
			}
			if len(own) > 0 {
				return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "a task of upstream %s asks for roots, which the gateway answers itself only during a call", c.up.cfg.Name)
			}
		}
	}
	if s := stringOf(res, "status"); s != "" && s != c.task.Status {
		g.noteStatus(ctx, c.task, s, stringOf(res, "statusMessage"))
	}
	return withString(res, "taskId", c.name)
}

// fetchModernResult keeps the outcome of a modern upstream's task that
// ended: tasks/get inlines it (result or error), there is no
// tasks/result.
func (g *Gateway) fetchModernResult(ctx context.Context, cs *mcp.ClientSession, rec *store.GatewayTask) error {
	cctx, cancel := context.WithTimeout(ctx, watchCallTimeout)
	defer cancel()
	params, _ := withString(nil, "taskId", rec.UpstreamTaskID)
	res, err := cs.CallRaw(cctx, mcp.MethodTasksGet, params)
	if err != nil {
		return err
	}
	var kept jsontext.Value
	switch {
	case valueOf(res, "result") != nil:
		kept, err = wrapValue("result", valueOf(res, "result"))
	case valueOf(res, "error") != nil:
		kept, err = wrapValue("error", valueOf(res, "error"))
	default:
		return errors.New("the upstream's tasks/get of a task that ended inlines no result")
	}
	if err != nil {
		return err
	}
	return g.keepResult(rec, kept)
}
