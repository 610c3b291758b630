package gateway

import (
	"context"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/policy"
)

// callInfoOf returns the downstream call that an upstream message belongs
// to, if the transport or the situation says which.
func callInfoOf(ctx context.Context) *callInfo {
	rc := mcp.RelatedCallContext(ctx)
	if rc == nil {
		return nil
	}
	ci, _ := rc.Value(callInfoKey{}).(*callInfo)
	return ci
}

// sessionsOf returns the principal's downstream sessions.
func (g *Gateway) sessionsOf(principal string) []*downstreamSession {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*downstreamSession, 0, len(g.byPrincipal[principal]))
	for _, ds := range g.byPrincipal[principal] {
		out = append(out, ds)
	}
	return out
}

// relayRequest forwards a request an upstream sent (sampling, elicitation,
// roots) to the client whose call caused it, on that call's stream, and
// returns the client's answer.
func (g *Gateway) relayRequest(ctx context.Context, u *upstream, principal, method string, params jsontext.Value) (any, error) {
	switch method {
	case mcp.MethodSamplingCreateMessage, mcp.MethodElicitationCreate, mcp.MethodRootsList:
	default:
		return nil, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "method %q is not relayed by the gateway", method)
	}
	params = g.mapRelatedTask(u, params)
	target, dctx := g.relayTarget(ctx, principal)
	if target == nil {
		return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "no client session of %s is connected to answer %s", principal, method)
	}
	// The request travels with the downstream call's context (so it goes on
	// that call's stream) and is cancelled if the upstream cancels it.
	dctx, cancel := context.WithCancel(dctx)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	forward := func() (any, error) {
		res, err := target.CallRaw(dctx, method, params)
		if err != nil {
			return nil, err
		}
		return res, nil
	}
	if g.enforced() {
		// Upstream-to-client requests pass policy and the audit log too;
		// their params are the arguments policies see.
		return g.controlledCall(ctx, g.session(target), method, policy.Resource{Kind: "client-request", Upstream: u.cfg.Name, Name: method}, params, forward)
	}
	return forward()
}

// relayTarget picks the downstream session for something an upstream sent:
// the session of the related call when known, else any session of the
// principal.
func (g *Gateway) relayTarget(ctx context.Context, principal string) (*mcp.ServerSession, context.Context) {
	if ci := callInfoOf(ctx); ci != nil {
		return ci.ds, ci.ctx
	}
	for _, ds := range g.sessionsOf(principal) {
		return ds.ss, context.Background()
	}
	return nil, nil
}

// relayNotification forwards a notification an upstream sent.
func (g *Gateway) relayNotification(ctx context.Context, u *upstream, principal, method string, params jsontext.Value) {
	switch method {
	case mcp.NotificationProgress:
		tok, _ := stringMember(params, "progressToken")
		g.mu.Lock()
		ci := g.progress_[tok]
		g.mu.Unlock()
		if ci == nil {
			u.logger.Debug("progress for an unknown token", "token", tok)
			return
		}
		p, err := setMembers(params, "progressToken", ci.progressToken)
		if err != nil {
			return
		}
		g.notify(ci.ctx, ci.ds, method, g.mapRelatedTask(u, p))
	case mcp.NotificationMessage:
		params = g.mapRelatedTask(u, params)
		if ci := callInfoOf(ctx); ci != nil {
			g.notify(ci.ctx, ci.ds, method, params)
			return
		}
		g.broadcast(principal, method, params, nil)
	case mcp.NotificationToolsListChanged, mcp.NotificationPromptsListChanged, mcp.NotificationResourcesListChanged:
		g.invalidate(principal)
		g.broadcast(principal, method, params, nil)
	case mcp.NotificationResourcesUpdated:
		uri, _ := stringMember(params, "uri")
		g.broadcast(principal, method, params, func(ds *downstreamSession) bool {
			g.mu.Lock()
			defer g.mu.Unlock()
			return ds.subs[uri]
		})
	case mcp.NotificationElicitationComplete:
		g.broadcast(principal, method, params, nil)
	case mcp.NotificationTasksStatus:
		upID, _ := stringMember(params, "taskId")
		gid, ref := g.gatewayTaskID(u, upID)
		if ref == nil {
			return
		}
		p, err := setMembers(params, "taskId", gid)
		if err != nil {
			return
		}
		status, _ := stringMember(params, "status")
		msg, _ := stringMember(params, "statusMessage")
		g.noteStatus(ctx, ref, status, msg)
		g.broadcast(ref.Principal, method, p, nil)
	default:
		u.logger.Debug("notification not relayed", "method", method)
	}
}

// mapRelatedTask rewrites the related-task _meta of a message an upstream
// sent about one of its tasks to the id the gateway gave the client. A
// message about a task the gateway does not know is left as it is.
func (g *Gateway) mapRelatedTask(u *upstream, params jsontext.Value) jsontext.Value {
	meta, err := member(params, "_meta")
	if err != nil || meta.Kind() != '{' {
		return params
	}
	rel, _ := member(meta, mcp.MetaKeyRelatedTask)
	if rel.Kind() != '{' {
		return params
	}
	upID, _ := stringMember(rel, "taskId")
	gid, ref := g.gatewayTaskID(u, upID)
	// The task may have sent this before the gateway saw the answer that
	// created it: give that answer a moment to arrive.
	for i := 0; ref == nil && i < 50 && g.creatingTasks(u); i++ {
		time.Sleep(10 * time.Millisecond)
		gid, ref = g.gatewayTaskID(u, upID)
	}
	if ref == nil {
		return params
	}
	newRel, err := setMembers(rel, "taskId", gid)
	if err != nil {
		return params
	}
	newMeta, err := setMembers(meta, mcp.MetaKeyRelatedTask, newRel)
	if err != nil {
		return params
	}
	out, err := setMembers(params, "_meta", newMeta)
	if err != nil {
		return params
	}
	return out
}

func (g *Gateway) notify(ctx context.Context, ss *mcp.ServerSession, method string, params jsontext.Value) {
	if err := ss.Notify(ctx, method, params); err != nil {
		g.logger.Debug("relaying notification", "method", method, "error", err)
	}
}

// broadcast sends a notification to the principal's sessions that pass
// the filter (all when it is nil).
func (g *Gateway) broadcast(principal, method string, params jsontext.Value, filter func(*downstreamSession) bool) {
	for _, ds := range g.sessionsOf(principal) {
		if filter == nil || filter(ds) {
			g.notify(context.Background(), ds.ss, method, params)
		}
	}
}
