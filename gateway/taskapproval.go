package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/approval"
	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/internal/jsonraw"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/policy"
	"github.com/mcpgate/mcpgate/store"
)

// Approvals inside tasks (docs/approvals.md, "Calls that run as tasks").
//
// When policy sends a task-augmented tools/call to approval and the
// gateway has an approval service, the gateway does not answer with a
// URL elicitation error: it creates a task at once, held by the gateway
// (no upstream task behind it), in status input_required with a status
// message naming the approval and its page, and opens the approval
// request. The task belongs to its caller like every gateway task. When
// an approver approves, the gateway uses the approval and sends the call
// to the upstream: task-augmented when the upstream runs the tool as a
// task, which then takes the task over (handOver); otherwise as an
// ordinary tools/call in the background, and the task goes working →
// completed (or failed, with the upstream's error); tasks/result answers
// with the call's result.
// When an approver denies, or the approval expires, the task fails with
// the reason. Every change is recorded (task.status) and sent to the
// owner's sessions as notifications/tasks/status.
//
// This process holds at most maxHeldTasks tasks in memory at once; an
// ended one is dropped from memory when its ttl ends, or
// heldResultRetention after it ended when it has no ttl. Held tasks
// outlive the process: their call and result are kept, sealed, with their
// record (taskheld.go), and a restarted gateway holds them again.

const (
	// maxHeldTasks bounds the tasks the gateway holds at once (waiting,
	// running or ended with their result kept).
	maxHeldTasks = 1000
	// heldResultRetention is how long the result of a held task without
	// ttl is kept after it ended.
	heldResultRetention = time.Hour
	// heldPollInterval is the poll interval held tasks suggest.
	heldPollInterval = 1000
)

// lostHeldMessage explains a held task that a restarted gateway no
// longer holds.
const lostHeldMessage = "the task was lost: the gateway restarted while it held the task (waiting for approval or running); call the tool again"

// heldTask is a task held by the gateway.
type heldTask struct {
	id         string
	principal  string
	approvalID string
	up         *upstream
	profile    string
	params     jsontext.Value // the tools/call params to forward, without task
	// task is params.task when the upstream runs the tool as a task: the
	// approved call is then sent task-augmented and the task handed over
	// to the upstream (handOver); nil for a synchronous call.
	task jsontext.Value
	req  approval.Request
	// audit fields of the call's records
	clientID, session string
	args              jsontext.Value

	cancel context.CancelFunc
	done   chan struct{} // closed at a terminal status

	// Set before done is closed.
	result jsontext.Value
	err    error
	ended  time.Time
	// handedOver is set when the upstream took the task over: the
	// record now names the upstream task, and requests about it are
	// forwarded.
	handedOver bool
}

// approvalTask holds a task-augmented call that needs approval. It
// reports held = false when an approved approval was used at once (the
// call proceeds as usual, rec naming the approval).
func (g *Gateway) approvalTask(ctx context.Context, c *call, d policy.Decision, rec *audit.Record) (out any, held bool, err error) {
	svc := g.opts.Approvals
	ds := c.ds
	req := approval.Request{
		Principal: ds.principal, Client: ds.clientID, Session: ds.id(),
		Upstream: c.res.Upstream, Tool: c.res.Upstream + "/" + c.res.Name, Arguments: c.args,
		PolicyVersion: d.PolicyVersion, Policies: d.Policies, Reason: d.Reason,
	}
	if a, err := svc.Consume(ctx, &req); err == nil {
		rec.Error = fmt.Sprintf("approved by %q: approval %s, binding %s", a.Approver, a.ID, a.Binding)
		return nil, false, nil
	} else if errors.Is(err, approval.ErrDenied) {
		// As for a call without task: refused until the denial expires.
		rec.Outcome, rec.Phase = audit.OutcomeDenied, audit.PhaseDecided
		if err := g.auditAppend(ctx, rec); err != nil {
			return nil, true, err
		}
		return nil, true, &jsonrpc.Error{Code: CodePolicyDenied, Message: fmt.Sprintf("the approver denied this call of %q", req.Tool)}
	}
	if err := g.sweepHeld(); err != nil {
		return nil, true, err
	}
	params, err := jsonraw.Parse(c.p.Bytes())
	if err != nil {
		return nil, true, err
	}
	var taskParams jsontext.Value
	if g.upstreamRunsAsTask(ctx, c) {
		taskParams, _ = params.Get("task")
	}
	params.Delete("task")
	if c.rt.name != c.name {
		if err := params.SetString("name", c.rt.name); err != nil {
			return nil, true, err
		}
	}
	a, err := svc.Request(ctx, &req)
	if err != nil {
		return nil, true, &jsonrpc.Error{Code: CodeControlFailed, Message: "opening an approval request failed: " + err.Error()}
	}
	now := time.Now().UTC()
	t := &store.GatewayTask{ID: newID(), Principal: ds.principal, ClientID: ds.clientID, Grant: ds.grant,
		Upstream: c.up.cfg.Name, Tool: c.name, ApprovalID: a.ID,
		Status: string(mcp.TaskStatusInputRequired), StatusMessage: waitingMessage(a),
		CreatedAt: now, UpdatedAt: now}
	if ttl := c.taskReq.TTL; ttl > 0 {
		t.ExpiresAt = now.Add(ttl)
	}
	rec.Outcome, rec.Phase = "approval_requested", audit.PhaseDecided
	rec.Error = fmt.Sprintf("approval %s requested, binding %s; the call waits in task %s", a.ID, a.Binding, t.ID)
	if err := g.auditAppend(ctx, rec); err != nil {
		return nil, true, err
	}
	hctx, cancel := context.WithCancel(g.life)
	h := &heldTask{id: t.ID, principal: t.Principal, approvalID: a.ID, up: c.up, profile: c.up.profileFor(ds),
		params: params.Bytes(), task: taskParams, req: req, clientID: ds.clientID, session: ds.id(), args: c.args,
		cancel: cancel, done: make(chan struct{})}
	// The call is kept sealed with the record, so that a restarted
	// gateway holds the task again (taskheld.go).
	if err := g.sealHeldCall(t, h); err != nil {
		cancel()
		return nil, true, jsonrpc.NewError(jsonrpc.CodeInternalError, "keeping the held call failed: %v", err)
	}
	if err := g.taskStore.PutGatewayTask(ctx, t); err != nil {
		cancel()
		return nil, true, jsonrpc.NewError(jsonrpc.CodeInternalError, "recording the task failed: %v", err)
	}
	_ = g.auditAppend(ctx, &audit.Record{User: t.Principal, Client: t.ClientID, Session: ds.id(), Upstream: t.Upstream,
		Action: "task.created", Target: t.ID, Outcome: t.Status, Error: t.StatusMessage})
	if err := g.hold(hctx, h); err != nil {
		return nil, true, jsonrpc.NewError(jsonrpc.CodeInternalError, "%v", err)
	}
	raw, err := json.Marshal(&mcp.CreateTaskResult{Task: taskObject(t)})
	if err != nil {
		return nil, true, err
	}
	return jsontext.Value(raw), true, nil
}

// upstreamRunsAsTask reports whether the upstream of a call can run its
// tool as a task: it declares task-augmented tools/call, and the tool's
// execution.taskSupport is optional or required.
func (g *Gateway) upstreamRunsAsTask(ctx context.Context, c *call) bool {
	caps := c.up.capabilities()
	if caps == nil || caps.Tasks == nil || caps.Tasks.Requests == nil || caps.Tasks.Requests.Tools == nil || caps.Tasks.Requests.Tools.Call == nil {
		return false
	}
	cat, err := g.catalog(ctx, c.ds.principal)
	if err != nil {
		return false
	}
	for i, rt := range cat.iroute[kindTool] {
		if rt.up == c.up && rt.name == c.rt.name {
			support := mcp.TaskSupport(stringOf(valueOf(cat.items[kindTool][i], "execution"), "taskSupport"))
			return support == mcp.TaskSupportOptional || support == mcp.TaskSupportRequired
		}
	}
	return false
}

// waitingMessage is the status message of a task waiting for approval.
func waitingMessage(a *approval.Approval) string {
	return fmt.Sprintf("waiting for approval %s: an approver can approve or deny this call of %s at %s (until %s)",
		a.ID, a.Request.Tool, a.URL, a.ExpiresAt.UTC().Format(time.RFC3339))
}

// taskObject is the spec's Task for a record.
func taskObject(t *store.GatewayTask) mcp.Task {
	o := mcp.Task{TaskID: t.ID, Status: mcp.TaskStatus(t.Status), StatusMessage: t.StatusMessage,
		CreatedAt: t.CreatedAt.Format(time.RFC3339Nano), LastUpdatedAt: t.UpdatedAt.Format(time.RFC3339Nano),
		PollInterval: heldPollInterval}
	if !t.ExpiresAt.IsZero() {
		ms := t.ExpiresAt.Sub(t.CreatedAt).Milliseconds()
		o.TTL = &ms
	}
	return o
}

// sweepHeld forgets ended held tasks whose results are no longer kept,
// and refuses a new one when maxHeldTasks are held.
func (g *Gateway) sweepHeld() error {
	g.taskGov.mu.Lock()
	defer g.taskGov.mu.Unlock()
	now := time.Now()
	for id, h := range g.taskGov.held {
		select {
		case <-h.done:
		default:
			continue
		}
		rec, err := g.taskStore.GetGatewayTask(context.Background(), id)
		keep := err == nil && ((!rec.ExpiresAt.IsZero() && rec.ExpiresAt.After(now)) ||
			(rec.ExpiresAt.IsZero() && now.Sub(h.ended) < heldResultRetention))
		if !keep {
			delete(g.taskGov.held, id)
			delete(g.taskGov.heldByApproval, h.approvalID)
		}
	}
	if len(g.taskGov.held) >= maxHeldTasks {
		return jsonrpc.NewError(jsonrpc.CodeInternalError, "the gateway holds too many tasks waiting for approval (%d); try again later", maxHeldTasks)
	}
	return nil
}

// hold registers h and starts waiting for its approval (runHeld, with
// ctx, which h.cancel ends).
func (g *Gateway) hold(ctx context.Context, h *heldTask) error {
	g.taskGov.mu.Lock()
	if g.taskGov.held == nil {
		g.taskGov.held, g.taskGov.heldByApproval = map[string]*heldTask{}, map[string]string{}
	}
	g.taskGov.held[h.id] = h
	g.taskGov.heldByApproval[h.approvalID] = h.id
	g.taskGov.mu.Unlock()
	g.watcher.mu.Lock()
	if g.watcher.closed {
		g.watcher.mu.Unlock()
		h.cancel()
		return errors.New("the gateway is closing")
	}
	g.watcher.wg.Add(1)
	g.watcher.mu.Unlock()
	go func() {
		defer g.watcher.wg.Done()
		g.runHeld(ctx, h)
	}()
	return nil
}

// heldOf returns the held task of a gateway task id, or nil.
func (g *Gateway) heldOf(id string) *heldTask {
	g.taskGov.mu.Lock()
	defer g.taskGov.mu.Unlock()
	return g.taskGov.held[id]
}

// runHeld waits for the approval of a held task and carries out the
// decision.
func (g *Gateway) runHeld(ctx context.Context, h *heldTask) {
	svc := g.opts.Approvals
	a, err := svc.Wait(ctx, h.approvalID)
	if err != nil {
		if ctx.Err() == nil {
			g.endHeld(h, mcp.TaskStatusFailed, "waiting for the approval failed: "+err.Error(), nil, err)
		}
		return
	}
	switch a.Status {
	case approval.StatusApproved:
	case approval.StatusDenied:
		msg := fmt.Sprintf("denied by approver %q (approval %s)", a.Approver, a.ID)
		if a.Note != "" {
			msg += ": " + a.Note
		}
		g.endHeld(h, mcp.TaskStatusFailed, msg, nil, &jsonrpc.Error{Code: CodePolicyDenied, Message: "the approver denied this call of " + h.req.Tool + ": " + msg})
		return
	default:
		msg := fmt.Sprintf("approval %s %s before an approver approved it", a.ID, a.Status)
		g.endHeld(h, mcp.TaskStatusFailed, msg, nil, &jsonrpc.Error{Code: CodePolicyDenied, Message: msg})
		return
	}
	used, err := svc.Consume(ctx, &h.req)
	if err != nil {
		msg := fmt.Sprintf("approval %s could not be used: %v", a.ID, err)
		g.endHeld(h, mcp.TaskStatusFailed, msg, nil, &jsonrpc.Error{Code: CodePolicyDenied, Message: msg})
		return
	}
	if !g.moveHeld(h, mcp.TaskStatusWorking, fmt.Sprintf("approved by %q (approval %s); running", used.Approver, used.ID)) {
		return
	}
	base := audit.Record{User: h.principal, Client: h.clientID, Session: h.session, Upstream: h.up.cfg.Name,
		Action: mcp.MethodToolsCall, Target: h.req.Tool, Decision: audit.DecisionApprovalRequired,
		PolicyVersion: h.req.PolicyVersion, Policies: h.req.Policies, Args: h.args}
	decided := base
	decided.Phase, decided.Outcome = audit.PhaseDecided, "approved"
	decided.Error = fmt.Sprintf("approved by %q: approval %s, binding %s; run for task %s", used.Approver, used.ID, used.Binding, h.id)
	if err := g.auditAppend(ctx, &decided); err != nil {
		g.endHeld(h, mcp.TaskStatusFailed, err.Error(), nil, err)
		return
	}
	if h.task != nil {
		g.handOver(ctx, h, base)
		return
	}
	start := time.Now()
	res, err := g.runHeldCall(ctx, h)
	done := base
	done.Phase, done.Outcome, done.LatencyMicros = audit.PhaseCompleted, audit.OutcomeOK, time.Since(start).Microseconds()
	if err != nil {
		done.Outcome, done.Error = audit.OutcomeError, err.Error()
	} else {
		done.Result = res
	}
	_ = g.auditAppend(context.WithoutCancel(ctx), &done)
	if ctx.Err() != nil {
		return // cancelled: endHeld ran already
	}
	if err != nil {
		g.endHeld(h, mcp.TaskStatusFailed, "the call failed: "+err.Error(), nil, err)
		return
	}
	g.endHeld(h, mcp.TaskStatusCompleted, "", res, nil)
}

// handOver sends an approved call to an upstream that runs the tool as a
// task, task-augmented, and hands the task over: the record gets the
// upstream's task id, the watcher follows it, and requests about it are
// forwarded from then on. An upstream that answers with a plain result
// completes the task with it.
func (g *Gateway) handOver(ctx context.Context, h *heldTask, base audit.Record) {
	start := time.Now()
	res, err := g.runHeldCallAs(ctx, h, h.task)
	done := base
	done.Phase, done.Outcome, done.LatencyMicros = audit.PhaseCompleted, audit.OutcomeOK, time.Since(start).Microseconds()
	if err != nil {
		done.Outcome, done.Error = audit.OutcomeError, err.Error()
	} else {
		done.Result = res
	}
	_ = g.auditAppend(context.WithoutCancel(ctx), &done)
	if ctx.Err() != nil {
		return
	}
	task := valueOf(res, "task")
	switch {
	case err != nil:
		g.endHeld(h, mcp.TaskStatusFailed, "the call failed: "+err.Error(), nil, err)
		return
	case task.Kind() != '{':
		g.endHeld(h, mcp.TaskStatusCompleted, "", res, nil)
		return
	}
	upID := stringOf(task, "taskId")
	if upID == "" {
		err := jsonrpc.NewError(jsonrpc.CodeInternalError, "upstream %s returned a task without an id", h.up.cfg.Name)
		g.endHeld(h, mcp.TaskStatusFailed, err.Error(), nil, err)
		return
	}
	g.taskGov.mu.Lock()
	defer g.taskGov.mu.Unlock()
	select {
	case <-h.done:
		return // cancelled meanwhile
	default:
	}
	bg := context.WithoutCancel(ctx)
	rec, err := g.taskStore.GetGatewayTask(bg, h.id)
	if err != nil {
		g.logger.Warn("handing a held task over to its upstream", "task", h.id, "error", err)
		return
	}
	rec.UpstreamTaskID, rec.Profile, rec.HeldCall = upID, h.profile, nil
	g.taskProfiles.Store(rec.ID, h.profile)
	status, msg := stringOf(task, "status"), stringOf(task, "statusMessage")
	if !g.noteStatus(bg, rec, status, msg) {
		if err := g.taskStore.PutGatewayTask(bg, rec); err != nil {
			g.logger.Warn("handing a held task over to its upstream", "task", h.id, "error", err)
		}
	}
	h.handedOver, h.ended = true, time.Now()
	close(h.done)
	delete(g.taskGov.held, h.id)
	delete(g.taskGov.heldByApproval, h.approvalID)
	g.watchTask(h.up, rec, h.profile, pollIntervalIn(task))
	if raw, err := json.Marshal(&mcp.TaskStatusNotificationParams{Task: taskObject(rec)}); err == nil {
		g.broadcast(rec.Principal, mcp.NotificationTasksStatus, raw, nil)
	}
}

// runHeldCall sends the held call to its upstream.
func (g *Gateway) runHeldCall(ctx context.Context, h *heldTask) (jsontext.Value, error) {
	return g.runHeldCallAs(ctx, h, nil)
}

// runHeldCallAs sends the held call to its upstream, task-augmented with
// task when it is not nil.
func (g *Gateway) runHeldCallAs(ctx context.Context, h *heldTask, task jsontext.Value) (jsontext.Value, error) {
	cs, err := h.up.sessionAs(ctx, h.principal, h.profile)
	if err != nil {
		return nil, upstreamError(h.up, err)
	}
	params := h.params
	if task != nil {
		if params, err = withValue(params, "task", task); err != nil {
			return nil, err
		}
	}
	res, err := cs.CallRaw(ctx, mcp.MethodToolsCall, params)
	if err != nil {
		return nil, upstreamError(h.up, err)
	}
	return res, nil
}

// moveHeld records a non-terminal status of a held task and tells its
// owner; it reports false when the task already ended (cancelled).
func (g *Gateway) moveHeld(h *heldTask, status mcp.TaskStatus, msg string) bool {
	g.taskGov.mu.Lock()
	defer g.taskGov.mu.Unlock()
	select {
	case <-h.done:
		return false
	default:
	}
	g.noteHeld(h.id, status, msg)
	return true
}

// endHeld ends a held task (unless it ended already), keeping its result
// or error for tasks/result.
func (g *Gateway) endHeld(h *heldTask, status mcp.TaskStatus, msg string, res jsontext.Value, err error) bool {
	g.taskGov.mu.Lock()
	defer g.taskGov.mu.Unlock()
	select {
	case <-h.done:
		return false
	default:
	}
	h.result, h.err, h.ended = res, err, time.Now()
	// The record first, so that whoever waits on done finds it ended.
	g.endHeldRecord(h, status)
	g.noteHeld(h.id, status, msg)
	close(h.done)
	h.cancel()
	return true
}

// noteHeld records a held task's status (task.status) and sends it to
// the owner's sessions.
func (g *Gateway) noteHeld(id string, status mcp.TaskStatus, msg string) {
	ctx := context.Background()
	rec, err := g.taskStore.GetGatewayTask(ctx, id)
	if err != nil {
		g.logger.Warn("a held task's record", "task", id, "error", err)
		return
	}
	if rec.StatusMessage == store.TaskCancelRequested && status != mcp.TaskStatusCancelled {
		return
	}
	if !g.noteStatus(ctx, rec, string(status), msg) {
		return
	}
	raw, err := json.Marshal(&mcp.TaskStatusNotificationParams{Task: taskObject(rec)})
	if err == nil {
		g.broadcast(rec.Principal, mcp.NotificationTasksStatus, raw, nil)
	}
}

// cancelHeld cancels a held task (an owner's tasks/cancel, an operator,
// a revocation). It reports whether the task was still running.
func (g *Gateway) cancelHeld(rec *store.GatewayTask, msg string) bool {
	if h := g.heldOf(rec.ID); h != nil {
		return g.endHeld(h, mcp.TaskStatusCancelled, msg, nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "the task was cancelled: %s", msg))
	}
	// Not held by this process (a restart): record the cancellation.
	if isTerminal(rec.Status) && rec.StatusMessage != store.TaskCancelRequested {
		return false
	}
	g.noteStatus(context.Background(), rec, string(mcp.TaskStatusCancelled), msg)
	return true
}

// heldTaskRequest answers tasks/get, tasks/result and tasks/cancel on a
// held task.
func (g *Gateway) heldTaskRequest(ctx context.Context, c *call) (any, error) {
	rec := c.task
	h := g.heldOf(rec.ID)
	if h == nil {
		if cur, err := g.taskStore.GetGatewayTask(ctx, rec.ID); err == nil {
			if !cur.Held() {
				return g.forwardHandedOver(ctx, c) // taken over meanwhile
			}
			rec = cur
		}
		if !isTerminal(rec.Status) {
			// A restarted gateway no longer holds it.
			g.noteStatus(ctx, rec, string(mcp.TaskStatusFailed), lostHeldMessage)
		}
	}
	switch c.method {
	case mcp.MethodTasksGet:
		return g.heldTaskNow(ctx, rec)
	case mcp.MethodTasksCancel:
		if isTerminal(rec.Status) {
			return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "Cannot cancel task: already in terminal status '%s'", rec.Status)
		}
		if !g.cancelHeld(rec, "cancelled by its owner (tasks/cancel)") {
			if cur, err := g.taskStore.GetGatewayTask(ctx, rec.ID); err == nil {
				return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "Cannot cancel task: already in terminal status '%s'", cur.Status)
			}
		}
		return g.heldTaskNow(ctx, rec)
	}
	// tasks/result blocks until the task ends.
	if h == nil {
		// Ended before a restart: its result was kept (taskheld.go).
		if res, ok, err := g.storedResult(rec); ok {
			if err != nil {
				return nil, err
			}
			return withRelatedTask(res, rec.ID)
		}
		if rec.Status == string(mcp.TaskStatusFailed) {
			return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "%s", rec.StatusMessage)
		}
		return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "the task's result is no longer available (the gateway restarted or the result expired); task status %s", rec.Status)
	}
	select {
	case <-h.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if h.handedOver {
		return g.forwardHandedOver(ctx, c)
	}
	if h.err != nil {
		var we *jsonrpc.Error
		if errors.As(h.err, &we) {
			return nil, we
		}
		return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "%v", h.err)
	}
	var meta jsonraw.Object
	if err := meta.SetString("taskId", rec.ID); err != nil {
		return nil, err
	}
	return jsonraw.SetPath(h.result, meta.Bytes(), "_meta", mcp.MetaKeyRelatedTask)
}

// forwardHandedOver forwards a request about a task the upstream took
// over while the request waited.
func (g *Gateway) forwardHandedOver(ctx context.Context, c *call) (any, error) {
	rec, u, ok := g.taskFor(ctx, c.ds.principal, c.task.ID)
	if !ok || rec.Held() {
		return nil, errUnknownTask(c.task.ID)
	}
	return g.forwardOwnTask(ctx, c.ds.ss, c.ds.principal, c.method, c.p, rec.ID, rec, u)
}

// heldTaskNow answers with the current record of a held task.
func (g *Gateway) heldTaskNow(ctx context.Context, rec *store.GatewayTask) (any, error) {
	if cur, err := g.taskStore.GetGatewayTask(ctx, rec.ID); err == nil {
		rec = cur
	}
	raw, err := json.Marshal(taskObject(rec))
	if err != nil {
		return nil, err
	}
	return jsontext.Value(raw), nil
}

// heldTaskListed is the tasks/list entry of a held task.
func (g *Gateway) heldTaskListed(ctx context.Context, rec *store.GatewayTask) jsontext.Value {
	if g.heldOf(rec.ID) == nil {
		if cur, err := g.taskStore.GetGatewayTask(ctx, rec.ID); err == nil {
			rec = cur // maybe taken over by its upstream meanwhile
		}
		if rec.Held() && !isTerminal(rec.Status) {
			g.noteStatus(ctx, rec, string(mcp.TaskStatusFailed), lostHeldMessage)
		}
	}
	raw, err := json.Marshal(taskObject(rec))
	if err != nil {
		return nil
	}
	return raw
}
