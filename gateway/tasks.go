package gateway

import (
	"context"
	"sort"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
)

// Tasks created through the gateway get a gateway task id, bound to the
// principal that created them. Clients only ever see gateway ids; a task id
// that is unknown or belongs to someone else gets the same answer.

// errUnknownTask is the answer for a task the caller may not see.
func errUnknownTask(id string) error {
	return jsonrpc.NewError(jsonrpc.CodeInvalidParams, "unknown task %q", id)
}

// mapCreatedTask records the task an upstream created and rewrites its id.
func (g *Gateway) mapCreatedTask(u *upstream, principal string, res jsontext.Value) (any, error) {
	task, err := member(res, "task")
	if err != nil || task.Kind() != '{' {
		// The upstream ran the call synchronously after all.
		return res, nil
	}
	upID, err := stringMember(task, "taskId")
	if err != nil || upID == "" {
		return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "upstream %s returned a task without an id", u.cfg.Name)
	}
	gid := newID()
	g.mu.Lock()
	g.tasks[gid] = &taskRef{up: u, id: upID, principal: principal}
	g.mu.Unlock()
	newTask, err := setMembers(task, "taskId", gid)
	if err != nil {
		return nil, err
	}
	return setMembers(res, "task", newTask)
}

// creatingTasks reports whether a task-augmented call to u is in flight.
func (g *Gateway) creatingTasks(u *upstream) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.pendingTasks[u] > 0
}

// taskFor resolves a gateway task id for a principal.
func (g *Gateway) taskFor(principal, gid string) (*taskRef, string, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ref := g.tasks[gid]
	if ref == nil || ref.principal != principal {
		return nil, "", false
	}
	return ref, gid, true
}

// gatewayTaskID finds the gateway id of an upstream task.
func (g *Gateway) gatewayTaskID(u *upstream, upID string) (string, *taskRef) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for gid, ref := range g.tasks {
		if ref.up == u && ref.id == upID {
			return gid, ref
		}
	}
	return "", nil
}

// forwardTask forwards tasks/get, tasks/result and tasks/cancel.
func (g *Gateway) forwardTask(ctx context.Context, ss *mcp.ServerSession, principal, method string, params jsontext.Value) (any, error) {
	gid, err := stringMember(params, "taskId")
	if err != nil || gid == "" {
		return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "%s: taskId is required", method)
	}
	ref, gid, ok := g.taskFor(principal, gid)
	if !ok {
		return nil, errUnknownTask(gid)
	}
	cs, err := ref.up.session(ctx, principal)
	if err != nil {
		return nil, upstreamError(ref.up, err)
	}
	if params, err = setMembers(params, "taskId", ref.id); err != nil {
		return nil, err
	}
	res, err := g.call(ctx, ss, cs, ref.up, method, params)
	if err != nil {
		return nil, err
	}
	if method == mcp.MethodTasksResult {
		return rewriteRelatedTask(res, gid)
	}
	// tasks/get and tasks/cancel answer with the task's fields.
	return setMembers(res, "taskId", gid)
}

// rewriteRelatedTask replaces the task id in a result's related-task _meta.
func rewriteRelatedTask(res jsontext.Value, gid string) (jsontext.Value, error) {
	meta, err := member(res, "_meta")
	if err != nil || meta.Kind() != '{' {
		return res, nil
	}
	rel, _ := member(meta, mcp.MetaKeyRelatedTask)
	if rel.Kind() != '{' {
		return res, nil
	}
	newRel, err := setMembers(rel, "taskId", gid)
	if err != nil {
		return nil, err
	}
	newMeta, err := setMembers(meta, mcp.MetaKeyRelatedTask, newRel)
	if err != nil {
		return nil, err
	}
	return setMembers(res, "_meta", newMeta)
}

// listTasks merges the principal's tasks from every upstream.
func (g *Gateway) listTasks(ctx context.Context, principal string, params jsontext.Value) (any, error) {
	if c, _ := stringMember(params, "cursor"); c != "" {
		return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid cursor")
	}
	g.mu.Lock()
	ups := map[*upstream]bool{}
	for _, ref := range g.tasks {
		if ref.principal == principal {
			ups[ref.up] = true
		}
	}
	g.mu.Unlock()
	type item struct {
		created string
		raw     jsontext.Value
	}
	var items []item
	for _, u := range g.upstreams {
		if !ups[u] {
			continue
		}
		cs, err := u.session(ctx, principal)
		if err != nil {
			continue
		}
		cursor := ""
		for {
			p := jsontext.Value("{}")
			if cursor != "" {
				p, _ = setMembers(nil, "cursor", cursor)
			}
			res, err := cs.CallRaw(ctx, mcp.MethodTasksList, p)
			if err != nil {
				u.logger.Debug("tasks/list", "error", err)
				break
			}
			arr, _ := member(res, "tasks")
			tasks, _ := arrayElements(arr)
			for _, t := range tasks {
				upID, _ := stringMember(t, "taskId")
				gid, ref := g.gatewayTaskID(u, upID)
				if ref == nil || ref.principal != principal {
					continue
				}
				t, err := setMembers(t, "taskId", gid)
				if err != nil {
					continue
				}
				created, _ := stringMember(t, "createdAt")
				items = append(items, item{created, t})
			}
			next, _ := stringMember(res, "nextCursor")
			if next == "" || next == cursor {
				break
			}
			cursor = next
		}
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].created < items[j].created })
	raws := make([]jsontext.Value, len(items))
	for i, it := range items {
		raws[i] = it.raw
	}
	return setMembers(nil, "tasks", joinArray(raws))
}
