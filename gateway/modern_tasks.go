package gateway

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

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
