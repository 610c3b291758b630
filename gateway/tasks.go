package gateway

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/internal/jsonraw"
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
func (g *Gateway) capTaskTTL(p *jsonraw.Object) error {
	max := g.opts.MaxTaskTTL
	if max <= 0 {
		return nil
	}
	raw, _ := p.Get("task")
	task, err := jsonraw.Parse(raw)
	if err != nil || raw.Kind() != '{' {
		return fmt.Errorf("task must be an object")
	}
	maxMS := max.Milliseconds()
	if ttl, _ := task.Get("ttl"); ttl.Kind() == '0' {
		if n, err := strconv.ParseFloat(string(ttl), 64); err == nil && n <= float64(maxMS) {
			return nil
		}
	}
	if err := task.Set("ttl", jsontext.Value(strconv.FormatInt(maxMS, 10))); err != nil {
		return err
	}
	return p.Set("task", task.Bytes())
}

// mapCreatedTask records the task an upstream created and rewrites its id.
func (g *Gateway) mapCreatedTask(ctx context.Context, u *upstream, ds *downstreamSession, res jsontext.Value) (any, error) {
	principal, clientID := ds.principal, ds.clientID
	task := valueOf(res, "task")
	if task.Kind() != '{' {
		// The upstream ran the call synchronously after all.
		return res, nil
	}
	upID := stringOf(task, "taskId")
	if upID == "" {
		return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "upstream %s returned a task without an id", u.cfg.Name)
	}
	now := time.Now().UTC()
	rec := &store.GatewayTask{ID: newID(), Principal: principal, ClientID: clientID, Grant: ds.grant, Upstream: u.cfg.Name, UpstreamTaskID: upID, CreatedAt: now, UpdatedAt: now}
	rec.Status = stringOf(task, "status")
	rec.Tool = taskToolOf(ctx) // task governance
	rec.Profile = u.profileFor(ds)
	if cs := u.existing(principal, rec.Profile); cs != nil && len(u.cfg.Command) == 0 {
		saveSessionState(rec, cs) // so that a restarted gateway resumes it (taskresume.go)
	}
	if ttl := valueOf(task, "ttl"); ttl.Kind() == '0' {
		if ms, err := strconv.ParseFloat(string(ttl), 64); err == nil && ms > 0 {
			rec.ExpiresAt = now.Add(time.Duration(ms) * time.Millisecond)
		}
	}
	if err := g.taskStore.PutGatewayTask(ctx, rec); err != nil {
		// Fail closed: a task whose owner cannot be recorded is not handed out.
		return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "recording the task failed: %v", err)
	}
	profile := rec.Profile
	g.taskProfiles.Store(rec.ID, profile)
	g.creations.recorded()
	_ = g.auditAppend(ctx, &audit.Record{User: principal, Client: clientID, Session: ds.id(), Upstream: u.cfg.Name,
		Action: "task.created", Target: rec.ID, Outcome: rec.Status})
	g.watchTask(u, rec, profile, pollIntervalIn(task))
	q, err := jsontext.AppendQuote(nil, rec.ID)
	if err != nil {
		return nil, err
	}
	return jsonraw.SetPath(res, q, "task", "taskId")
}

// taskFor resolves a gateway task id for a principal.
func (g *Gateway) taskFor(ctx context.Context, principal, gid string) (*store.GatewayTask, *upstream, bool) {
	rec, err := g.taskStore.GetGatewayTask(ctx, gid)
	if err != nil || rec.Principal != principal {
		return nil, nil, false
	}
	u := g.upstreamNamed(rec.Upstream)
	return rec, u, u != nil
}

// gatewayTaskID finds the gateway id of a principal's upstream task.
func (g *Gateway) gatewayTaskID(u *upstream, principal, upID string) (string, *store.GatewayTask) {
	rec, err := g.taskStore.FindGatewayTask(context.Background(), u.cfg.Name, upID)
	if err != nil || rec.Principal != principal {
		return "", nil
	}
	return rec.ID, rec
}

// noteStatus records the status the gateway saw for a task, with an
// audit record (task.status) whose latency is the time since the task was
// created (and, for a terminal status, the digest of the result the
// gateway kept, if any), and reports whether it changed. A cancel request recorded from
// the command line (store.TaskCancelRequested) is kept until the task
// ends: a non-terminal status does not replace it, and the cancelled
// status that ends it is recorded as the operator's (operatorCancelMessage).
//
// The status and message are re-read from the store first, under
// taskStatusMu: the caller's copy of the record may be older than a cancel
// request or an end another path has recorded meanwhile. A task's first
// recorded end is final; a cancellation the gateway asked for itself
// (cancelReasons) is recorded with its reason, whoever reports it.
func (g *Gateway) noteStatus(ctx context.Context, rec *store.GatewayTask, status, message string) bool {
	g.taskStatusMu.Lock()
	defer g.taskStatusMu.Unlock()
	if cur, err := g.taskStore.GetGatewayTask(ctx, rec.ID); err == nil {
		rec.Status, rec.StatusMessage = cur.Status, cur.StatusMessage
	}
	if isTerminal(rec.Status) && rec.StatusMessage != store.TaskCancelRequested {
		return false
	}
	if status == "" || (status == rec.Status && message == rec.StatusMessage) {
		return false
	}
	if reason, ok := g.cancelReasons.Load(rec.ID); ok && status == string(mcp.TaskStatusCancelled) {
		message = reason.(string)
	}
	if rec.StatusMessage == store.TaskCancelRequested {
		if !isTerminal(status) {
			return false
		}
		if status == string(mcp.TaskStatusCancelled) {
			// The operator's cancellation, however the gateway learns
			// that it took effect (the upstream's answer, a status
			// notification, a poll): the record says who cancelled.
			message = operatorCancelMessage
		}
	}
	// The audit record first, then the task record: a gateway killed
	// between the two finds the old status in the record at its next
	// start and notes the change again (a second record of it) instead of
	// never recording it.
	now := time.Now().UTC()
	r := &audit.Record{User: rec.Principal, Client: rec.ClientID, Upstream: rec.Upstream,
		Action: actionTaskStatus, Target: rec.ID, Outcome: status, Error: message,
		LatencyMicros: now.Sub(rec.CreatedAt).Microseconds()}
	if isTerminal(status) {
		r.ResultDigest = rec.ResultDigest // kept by the watcher (taskresult.go)
	}
	_ = g.auditAppend(ctx, r)
	rec.Status, rec.StatusMessage, rec.UpdatedAt = status, message, now
	if err := g.taskStore.PutGatewayTask(ctx, rec); err != nil {
		g.logger.Warn("recording a task status", "task", rec.ID, "error", err)
	}
	g.taskStatusToListeners(rec) // modern clients (modern_listen.go)
	return true
}

func isTerminal(status string) bool {
	return mcp.TaskStatus(status).IsTerminal()
}

// lostTask builds the answer for a task its upstream no longer knows.
func lostTask(rec *store.GatewayTask) (jsontext.Value, error) {
	r := *rec
	r.Status = string(mcp.TaskStatusFailed)
	if !isLost(&r) {
		r.StatusMessage = lostTaskMessage
	}
	return taskFromRecord(&r)
}

// taskFromRecord builds a task object (as tasks/get answers) from what
// the gateway recorded of a task.
func taskFromRecord(rec *store.GatewayTask) (jsontext.Value, error) {
	var o jsonraw.Object
	for _, m := range [][2]string{
		{"taskId", rec.ID},
		{"status", rec.Status},
		{"statusMessage", rec.StatusMessage},
		{"createdAt", rec.CreatedAt.Format(time.RFC3339Nano)},
		{"lastUpdatedAt", rec.UpdatedAt.Format(time.RFC3339Nano)},
	} {
		if err := o.SetString(m[0], m[1]); err != nil {
			return nil, err
		}
	}
	ttl := jsontext.Value("null")
	if !rec.ExpiresAt.IsZero() {
		ttl = jsontext.Value(strconv.FormatInt(rec.ExpiresAt.Sub(rec.CreatedAt).Milliseconds(), 10))
	}
	if err := o.Set("ttl", ttl); err != nil {
		return nil, err
	}
	return o.Bytes(), nil
}

// forwardOwnTask forwards a task request of the task's owner.
func (g *Gateway) forwardOwnTask(ctx context.Context, ss *mcp.ServerSession, principal, method string, params *jsonraw.Object, gid string, rec *store.GatewayTask, u *upstream) (any, error) {
	var err error
	lost := func() (any, error) {
		if !isLost(rec) {
			g.noteStatus(ctx, rec, string(mcp.TaskStatusFailed), lostTaskMessage)
		}
		switch method {
		case mcp.MethodTasksResult:
			return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "%s", rec.StatusMessage)
		case mcp.MethodTasksCancel:
			return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "Cannot cancel task: already in terminal status 'failed' (%s)", rec.StatusMessage)
		}
		return lostTask(rec)
	}
	if isLost(rec) {
		return lost()
	}
	if res, ok, err := g.storedAnswer(method, gid, rec); ok {
		return res, err
	}
	if g.taskElsewhere(gid) {
		// Another replica follows it (replicas.go).
		return g.answerFromRecord(ctx, method, gid, rec)
	}
	cs, err := u.sessionAs(ctx, principal, g.taskProfile(ctx, u, gid))
	if err != nil {
		return nil, upstreamError(u, err)
	}
	if err := params.SetString("taskId", rec.UpstreamTaskID); err != nil {
		return nil, err
	}
	res, err := g.call(ctx, ss, cs, u, method, params.Bytes())
	if err != nil && method == mcp.MethodTasksResult && rec.ResultDigest != "" && isTerminal(rec.Status) {
		// The result was too large to keep, and the upstream no longer
		// has it: say so.
		_, _, kept := g.storedResult(rec)
		return nil, kept
	}
	if err != nil {
		var we *jsonrpc.Error
		if errors.As(err, &we) && we.Code == jsonrpc.CodeInvalidParams && !isTerminal(rec.Status) && method != mcp.MethodTasksCancel {
			// The upstream does not know a task it was running.
			return lost()
		}
		return nil, err
	}
	if method == mcp.MethodTasksResult {
		return withRelatedTask(res, gid)
	}
	// tasks/get and tasks/cancel answer with the task's fields.
	g.noteStatus(ctx, rec, stringOf(res, "status"), stringOf(res, "statusMessage"))
	return withString(res, "taskId", gid)
}

// storedAnswer answers tasks/get, tasks/result and tasks/cancel of a task
// that ended and whose result the gateway kept, from the store: from any
// session of the owner, after a restart, when the upstream forgot it. ok
// is false when the upstream is to be asked.
func (g *Gateway) storedAnswer(method, gid string, rec *store.GatewayTask) (res any, ok bool, err error) {
	if !isTerminal(rec.Status) || rec.StatusMessage == store.TaskCancelRequested || rec.ResultDigest == "" {
		return nil, false, nil
	}
	switch method {
	case mcp.MethodTasksGet:
		t, err := taskFromRecord(rec)
		return t, true, err
	case mcp.MethodTasksCancel:
		return nil, true, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "Cannot cancel task: already in terminal status '%s'", rec.Status)
	case mcp.MethodTasksResult:
		if rec.ResultSealed == nil {
			return nil, false, nil // too large to keep: the upstream may still have it
		}
		raw, _, err := g.storedResult(rec)
		if err != nil {
			return nil, true, err
		}
		raw, err = withRelatedTask(raw, gid)
		return raw, true, err
	}
	return nil, false, nil
}

// taskProfile returns the capability profile of the upstream session a
// task was created in: from taskProfiles while the task is watched, else
// from its record (the session of the request in ctx for a record made
// before the gateway kept it).
func (g *Gateway) taskProfile(ctx context.Context, u *upstream, gid string) string {
	if p, ok := g.taskProfiles.Load(gid); ok {
		return p.(string)
	}
	if rec, err := g.taskStore.GetGatewayTask(ctx, gid); err == nil && rec.Profile != "" {
		return rec.Profile
	}
	return u.profileFor(downstreamOf(ctx))
}

// listTasks lists the principal's tasks, with their current state from
// their upstreams; tasks an upstream no longer knows are listed as failed.
// Tasks policy does not let the principal see (tasks/list on the task)
// are left out.
func (g *Gateway) listTasks(ctx context.Context, ds *downstreamSession) (*listResult, error) {
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
	// What each upstream session reports, by upstream task id. Tasks live
	// in the upstream session (capability profile) they were created in.
	key := func(rec *store.GatewayTask) string {
		return sessionKey(rec.Upstream, g.taskProfile(ctx, g.upstreamNamed(rec.Upstream), rec.ID))
	}
	live := map[string]map[string]jsontext.Value{}
	for _, rec := range recs {
		u := g.upstreamNamed(rec.Upstream)
		if u == nil || rec.Held() || g.taskElsewhere(rec.ID) {
			continue
		}
		k := key(rec)
		if _, done := live[k]; done {
			continue
		}
		cs, err := u.sessionAs(ctx, principal, g.taskProfile(ctx, u, rec.ID))
		if err != nil {
			continue
		}
		live[k] = g.upstreamTasks(ctx, u, cs)
	}
	raws := make([]jsontext.Value, 0, len(recs))
	for _, rec := range recs {
		if g.upstreamNamed(rec.Upstream) == nil {
			continue
		}
		if rec.Held() {
			// Held by the gateway (taskapproval.go).
			if t := g.heldTaskListed(ctx, rec); t != nil {
				raws = append(raws, t)
			}
			continue
		}
		if g.taskElsewhere(rec.ID) {
			// Another replica follows it: as it last recorded it.
			if t, err := taskFromRecord(rec); err == nil {
				raws = append(raws, t)
			}
			continue
		}
		m, known := live[key(rec)]
		if t, ok := m[rec.UpstreamTaskID]; ok {
			if t, err := withString(t, "taskId", rec.ID); err == nil {
				raws = append(raws, t)
			}
			continue
		}
		if known && m != nil && !isTerminal(rec.Status) {
			g.noteStatus(ctx, rec, string(mcp.TaskStatusFailed), lostTaskMessage)
		}
		if isLost(rec) {
			if t, err := lostTask(rec); err == nil {
				raws = append(raws, t)
			}
		} else if rec.ResultDigest != "" && isTerminal(rec.Status) {
			// Ended, and forgotten by its upstream: the gateway kept it.
			if t, err := taskFromRecord(rec); err == nil {
				raws = append(raws, t)
			}
		}
	}
	var page jsonraw.Object
	if err := page.Set("tasks", jsonraw.JoinArray(raws)); err != nil {
		return nil, err
	}
	return &listResult{page: page.Bytes(), shown: len(raws), hidden: hidden}, nil
}

// maxTaskListPages and maxTaskListItems bound the pages of one
// upstream's tasks/list the gateway reads (for a client's tasks/list, or
// the watcher's shared polling) and the tasks it keeps from them.
const (
	maxTaskListPages = 100
	maxTaskListItems = 100000
)

// upstreamTasks lists the tasks an upstream session reports, by upstream
// task id; nil when they cannot be known (an error, a repeated cursor, too
// many pages or tasks), so that no task is declared lost on that account.
func (g *Gateway) upstreamTasks(ctx context.Context, u *upstream, cs *mcp.ClientSession) map[string]jsontext.Value {
	m := map[string]jsontext.Value{}
	seen := map[string]bool{}
	cursor := ""
	for range maxTaskListPages {
		p := jsontext.Value("{}")
		if cursor != "" {
			p, _ = withString(nil, "cursor", cursor)
		}
		res, err := cs.CallRaw(ctx, mcp.MethodTasksList, p)
		if err != nil {
			u.logger.Debug("tasks/list", "error", err)
			return nil
		}
		tasks, _ := jsonraw.Elements(valueOf(res, "tasks"))
		for _, t := range tasks {
			m[stringOf(t, "taskId")] = t
		}
		if len(m) > maxTaskListItems {
			u.logger.Warn("tasks/list: the upstream lists more tasks than the gateway reads", "tasks", maxTaskListItems)
			return nil
		}
		next := stringOf(res, "nextCursor")
		if next == "" {
			return m
		}
		if seen[next] {
			u.logger.Warn("tasks/list: the upstream repeated a cursor", "cursor", next)
			return nil
		}
		seen[next] = true
		cursor = next
	}
	u.logger.Warn("tasks/list: the upstream has more pages than the gateway reads", "pages", maxTaskListPages)
	return nil
}
