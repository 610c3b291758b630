package gateway

import (
	"context"
	"fmt"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/approval"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/store"
)

// A task held by the gateway for an approval (taskapproval.go) outlives
// the gateway process: the call it waits to run is kept sealed in its
// record (store.GatewayTask.HeldCall, with the key of stored results), so
// that a restarted gateway keeps waiting for the approval and runs the
// call when an approver approves it, and the result of a call the gateway
// ran is kept like an upstream task's (taskresult.go). A task that was
// running its approved call when the gateway stopped ends as failed: the
// gateway cannot know whether the upstream carried the call out, and does
// not run it twice.

// restartRunningHeldMessage explains a held task whose approved call was
// running when the gateway stopped.
const restartRunningHeldMessage = "the gateway restarted while it ran the approved call: whether the upstream carried it out is unknown, and it is not run twice; call the tool again if needed"

// heldCall is what a held task needs to run its call.
type heldCall struct {
	Params   jsontext.Value   `json:"params"`
	Task     jsontext.Value   `json:"task,omitzero"`
	Request  approval.Request `json:"request"`
	ClientID string           `json:"client_id,omitzero"`
	Session  string           `json:"session,omitzero"`
	Args     jsontext.Value   `json:"args,omitzero"`
	Profile  string           `json:"profile,omitzero"`
}

// heldCallBinding binds a sealed held call to its task, apart from the
// task's result (sealed for the task id alone).
func heldCallBinding(taskID string) string { return taskID + "\x00held call" }

// sealHeldCall keeps h's call, sealed, in rec.
func (g *Gateway) sealHeldCall(rec *store.GatewayTask, h *heldTask) error {
	plain, err := json.Marshal(&heldCall{Params: h.params, Task: h.task, Request: h.req,
		ClientID: h.clientID, Session: h.session, Args: h.args, Profile: h.profile})
	if err != nil {
		return err
	}
	rec.HeldCall, err = g.results.seal(heldCallBinding(rec.ID), rec.Principal, plain)
	return err
}

// endHeldRecord clears the held call of a held task that ended (or was
// handed over) and keeps the result or error of a call the gateway ran.
func (g *Gateway) endHeldRecord(h *heldTask, status mcp.TaskStatus) {
	ctx := context.Background()
	rec, err := g.taskStore.GetGatewayTask(ctx, h.id)
	if err != nil {
		return
	}
	rec.HeldCall = nil
	var res jsontext.Value
	switch {
	case status == mcp.TaskStatusCompleted && h.result != nil:
		res, err = wrapValue("result", h.result)
	case h.err != nil:
		var we *jsonrpc.Error
		if e, ok := h.err.(*jsonrpc.Error); ok {
			we = e
		} else {
			we = jsonrpc.NewError(jsonrpc.CodeInternalError, "%v", h.err)
		}
		if res, err = jsonrpcErrorObject(we); err == nil {
			res, err = wrapValue("error", res)
		}
	}
	if err == nil && res != nil {
		// Kept once the status is terminal (noteHeld writes it next).
		err = g.keepResult(rec, res)
	}
	if err != nil {
		g.logger.Warn("keeping a held task's result", "task", h.id, "error", err)
	}
	if err := g.taskStore.PutGatewayTask(ctx, rec); err != nil {
		g.logger.Warn("recording a held task", "task", h.id, "error", err)
	}
}

// resumeHeld takes back, at start-up, the tasks a previous gateway held:
// one waiting for its approval waits again (and runs its call when
// approved), one running its approved call, or without a kept call, ends
// as failed with the reason.
func (g *Gateway) resumeHeld(ctx context.Context) {
	recs, err := g.taskStore.ListGatewayTasks(ctx, "")
	if err != nil {
		g.logger.Warn("resuming held tasks", "error", err)
		return
	}
	now := time.Now()
	for _, rec := range recs {
		if !rec.Held() || isTerminal(rec.Status) || (!rec.ExpiresAt.IsZero() && rec.ExpiresAt.Before(now)) {
			continue
		}
		if rec.StatusMessage == store.TaskCancelRequested {
			g.noteStatus(ctx, rec, string(mcp.TaskStatusCancelled), operatorCancelMessage)
			continue
		}
		why := lostHeldMessage
		if rec.Status == string(mcp.TaskStatusInputRequired) && rec.HeldCall != nil && g.opts.Approvals != nil {
			if err := g.rehold(rec); err == nil {
				continue
			} else {
				why = fmt.Sprintf("%s (%v)", lostHeldMessage, err)
			}
		} else if rec.Status == string(mcp.TaskStatusWorking) {
			why = restartRunningHeldMessage
		}
		rec.HeldCall = nil
		g.noteStatus(ctx, rec, string(mcp.TaskStatusFailed), why)
	}
}

// rehold holds again the task of rec, waiting for its approval.
func (g *Gateway) rehold(rec *store.GatewayTask) error {
	plain, err := g.results.open(heldCallBinding(rec.ID), rec.Principal, rec.HeldCall)
	if err != nil {
		return err
	}
	var c heldCall
	if err := json.Unmarshal(plain, &c); err != nil {
		return fmt.Errorf("the kept call does not decode: %w", err)
	}
	u := g.upstreamNamed(rec.Upstream)
	if u == nil {
		return fmt.Errorf("its upstream %q is no longer configured", rec.Upstream)
	}
	hctx, cancel := context.WithCancel(g.life)
	h := &heldTask{id: rec.ID, principal: rec.Principal, approvalID: rec.ApprovalID, up: u, profile: c.Profile,
		params: c.Params, task: c.Task, req: c.Request, clientID: c.ClientID, session: c.Session, args: c.Args,
		cancel: cancel, done: make(chan struct{})}
	if err := g.hold(hctx, h); err != nil {
		return err
	}
	g.logger.Info("holding a task again after a restart", "task", rec.ID, "approval", rec.ApprovalID)
	return nil
}
