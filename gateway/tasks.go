package gateway

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/policy"
	"github.com/mcpgate/mcpgate/store"
)

// Tasks created through the gateway get a gateway task id, bound to the
// principal that created them and recorded in the store, so that
// ownership holds across restarts. Clients only ever see gateway ids; a
// task id that is unknown or belongs to someone else gets the same answer.
// A task whose upstream no longer knows it (the gateway or the upstream
// restarted while it ran) ends as failed, with a message saying so.

// lostTaskMessage explains a task that was lost.
const lostTaskMessage = "the task was lost: its upstream no longer knows it (the gateway or the upstream restarted while it ran)"

// errUnknownTask is the answer for a task the caller may not see.
func errUnknownTask(id string) error {
	return jsonrpc.NewError(jsonrpc.CodeInvalidParams, "unknown task %q", id)
}

// capTaskTTL lowers a task-augmented request's ttl to the configured
// maximum (setting it when absent).
func (g *Gateway) capTaskTTL(params jsontext.Value) (jsontext.Value, error) {
	max := g.opts.MaxTaskTTL
	if max <= 0 {
		return params, nil
	}
	task, err := member(params, "task")
	if err != nil || task.Kind() != '{' {
		return params, err
	}
	maxMS := max.Milliseconds()
	if ttl, _ := member(task, "ttl"); ttl.Kind() == '0' {
		if n, err := strconv.ParseFloat(string(ttl), 64); err == nil && n <= float64(maxMS) {
			return params, nil
		}
	}
	newTask, err := setMembers(task, "ttl", jsontext.Value(strconv.FormatInt(maxMS, 10)))
	if err != nil {
		return nil, err
	}
	return setMembers(params, "task", newTask)
}

// mapCreatedTask records the task an upstream created and rewrites its id.
func (g *Gateway) mapCreatedTask(ctx context.Context, u *upstream, ds *downstreamSession, res jsontext.Value) (any, error) {
	principal, clientID := ds.principal, ds.clientID
	task, err := member(res, "task")
	if err != nil || task.Kind() != '{' {
		// The upstream ran the call synchronously after all.
		return res, nil
	}
	upID, err := stringMember(task, "taskId")
	if err != nil || upID == "" {
		return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "upstream %s returned a task without an id", u.cfg.Name)
	}
	now := time.Now().UTC()
	rec := &store.GatewayTask{ID: newID(), Principal: principal, ClientID: clientID, Upstream: u.cfg.Name, UpstreamTaskID: upID, CreatedAt: now, UpdatedAt: now}
	rec.Status, _ = stringMember(task, "status")
	if ttl, _ := member(task, "ttl"); ttl.Kind() == '0' {
		if ms, err := strconv.ParseFloat(string(ttl), 64); err == nil && ms > 0 {
			rec.ExpiresAt = now.Add(time.Duration(ms) * time.Millisecond)
		}
	}
	if err := g.taskStore.PutGatewayTask(ctx, rec); err != nil {
		// Fail closed: a task whose owner cannot be recorded is not handed out.
		return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "recording the task failed: %v", err)
	}
	g.taskProfiles.Store(rec.ID, u.profileFor(ds))
	g.creations.recorded()
	_ = g.auditAppend(ctx, &audit.Record{User: principal, Client: clientID, Session: ds.id(), Upstream: u.cfg.Name,
		Action: "task.created", Target: rec.ID, Outcome: rec.Status})
	newTask, err := setMembers(task, "taskId", rec.ID)
	if err != nil {
		return nil, err
	}
	return setMembers(res, "task", newTask)
}

// taskFor resolves a gateway task id for a principal.
func (g *Gateway) taskFor(ctx context.Context, principal, gid string) (*store.GatewayTask, *upstream, bool) {
	rec, err := g.taskStore.GetGatewayTask(ctx, gid)
	if err != nil || rec.Principal != principal {
		return nil, nil, false
	}
	u := g.byName[rec.Upstream]
	return rec, u, u != nil
}

// gatewayTaskID finds the gateway id of an upstream task.
func (g *Gateway) gatewayTaskID(u *upstream, upID string) (string, *store.GatewayTask) {
	rec, err := g.taskStore.FindGatewayTask(context.Background(), u.cfg.Name, upID)
	if err != nil {
		return "", nil
	}
	return rec.ID, rec
}

// noteStatus records the status the gateway saw for a task.
func (g *Gateway) noteStatus(ctx context.Context, rec *store.GatewayTask, status, message string) {
	if status == "" || (status == rec.Status && message == rec.StatusMessage) {
		return
	}
	rec.Status, rec.StatusMessage, rec.UpdatedAt = status, message, time.Now().UTC()
	if err := g.taskStore.PutGatewayTask(ctx, rec); err != nil {
		g.logger.Warn("recording a task status", "task", rec.ID, "error", err)
	}
	_ = g.auditAppend(ctx, &audit.Record{User: rec.Principal, Client: rec.ClientID, Upstream: rec.Upstream,
		Action: "task.status", Target: rec.ID, Outcome: status, Error: message})
}

func isTerminal(status string) bool {
	return mcp.TaskStatus(status).IsTerminal()
}

// lostTask builds the answer for a task its upstream no longer knows.
func lostTask(rec *store.GatewayTask) (jsontext.Value, error) {
	return setMembers(nil,
		"taskId", rec.ID,
		"status", string(mcp.TaskStatusFailed),
		"statusMessage", lostTaskMessage,
		"createdAt", rec.CreatedAt.Format(time.RFC3339Nano),
		"lastUpdatedAt", rec.UpdatedAt.Format(time.RFC3339Nano),
		"ttl", jsontext.Value("null"))
}

// forwardOwnTask forwards a task request of the task's owner.
func (g *Gateway) forwardOwnTask(ctx context.Context, ss *mcp.ServerSession, principal, method string, params jsontext.Value, gid string, rec *store.GatewayTask, u *upstream) (any, error) {
	var err error
	lost := func() (any, error) {
		g.noteStatus(ctx, rec, string(mcp.TaskStatusFailed), lostTaskMessage)
		switch method {
		case mcp.MethodTasksResult:
			return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "%s", lostTaskMessage)
		case mcp.MethodTasksCancel:
			return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "Cannot cancel task: already in terminal status 'failed' (%s)", lostTaskMessage)
		}
		return lostTask(rec)
	}
	if rec.Status == string(mcp.TaskStatusFailed) && rec.StatusMessage == lostTaskMessage {
		return lost()
	}
	// The task lives in the upstream session it was created in.
	profile := u.profileFor(downstreamOf(ctx))
	if p, ok := g.taskProfiles.Load(gid); ok {
		profile = p.(string)
	}
	cs, err := u.sessionAs(ctx, principal, profile)
	if err != nil {
		return nil, upstreamError(u, err)
	}
	if params, err = setMembers(params, "taskId", rec.UpstreamTaskID); err != nil {
		return nil, err
	}
	res, err := g.call(ctx, ss, cs, u, method, params)
	if err != nil {
		var we *jsonrpc.Error
		if errors.As(err, &we) && we.Code == jsonrpc.CodeInvalidParams && !isTerminal(rec.Status) && method != mcp.MethodTasksCancel {
			// The upstream does not know a task it was running.
			return lost()
		}
		return nil, err
	}
	if method == mcp.MethodTasksResult {
		return rewriteRelatedTask(res, gid)
	}
	// tasks/get and tasks/cancel answer with the task's fields.
	status, _ := stringMember(res, "status")
	msg, _ := stringMember(res, "statusMessage")
	g.noteStatus(ctx, rec, status, msg)
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

// listTasks lists the principal's tasks, with their current state from
// their upstreams; tasks an upstream no longer knows are listed as failed.
// Tasks policy does not let the principal see (tasks/list on the task)
// are left out.
func (g *Gateway) listTasks(ctx context.Context, ds *downstreamSession, params jsontext.Value) (*listResult, error) {
	principal := ds.principal
	all, err := g.taskStore.ListGatewayTasks(ctx, principal)
	if err != nil {
		return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "listing tasks: %v", err)
	}
	recs := all[:0:0]
	hidden := 0
	for _, rec := range all {
		if g.opts.Policy != nil && !g.decide(ds, mcp.MethodTasksList, policy.Resource{Kind: policy.KindTask, Upstream: rec.Upstream, Name: rec.ID}, nil).Allow {
			hidden++
			continue
		}
		recs = append(recs, rec)
	}
	// What each upstream reports, by upstream task id.
	live := map[string]map[string]jsontext.Value{}
	for _, rec := range recs {
		if _, done := live[rec.Upstream]; done {
			continue
		}
		u := g.byName[rec.Upstream]
		if u == nil {
			continue
		}
		cs, err := u.session(ctx, principal)
		if err != nil {
			continue
		}
		m := map[string]jsontext.Value{}
		cursor := ""
		for {
			p := jsontext.Value("{}")
			if cursor != "" {
				p, _ = setMembers(nil, "cursor", cursor)
			}
			res, err := cs.CallRaw(ctx, mcp.MethodTasksList, p)
			if err != nil {
				u.logger.Debug("tasks/list", "error", err)
				m = nil // unknown: do not declare its tasks lost
				break
			}
			arr, _ := member(res, "tasks")
			tasks, _ := arrayElements(arr)
			for _, t := range tasks {
				id, _ := stringMember(t, "taskId")
				m[id] = t
			}
			next, _ := stringMember(res, "nextCursor")
			if next == "" || next == cursor {
				break
			}
			cursor = next
		}
		live[rec.Upstream] = m
	}
	raws := make([]jsontext.Value, 0, len(recs))
	for _, rec := range recs {
		m, known := live[rec.Upstream]
		if t, ok := m[rec.UpstreamTaskID]; ok {
			if t, err := setMembers(t, "taskId", rec.ID); err == nil {
				raws = append(raws, t)
			}
			continue
		}
		if known && m != nil && !isTerminal(rec.Status) {
			g.noteStatus(ctx, rec, string(mcp.TaskStatusFailed), lostTaskMessage)
		}
		if rec.Status == string(mcp.TaskStatusFailed) && rec.StatusMessage == lostTaskMessage {
			if t, err := lostTask(rec); err == nil {
				raws = append(raws, t)
			}
		}
	}
	page, err := setMembers(nil, "tasks", joinArray(raws))
	if err != nil {
		return nil, err
	}
	return &listResult{page: page, shown: len(raws), hidden: hidden}, nil
}
