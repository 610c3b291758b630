package gateway

import (
	"context"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/jsonraw"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/policy"
	"github.com/mcpgate/mcpgate/store"
)

// callInfoOf returns the downstream call that an upstream message belongs
// to, if the transport or the situation says which.
func callInfoOf(ctx context.Context) *callInfo {
	rc := mcp.RelatedCallContext(ctx)
	if rc == nil {
		// A 2026-07-28 upstream's MRTR input requests are answered inside
		// the call itself (mcp's client passes the call's context).
		ci, _ := ctx.Value(callInfoKey{}).(*callInfo)
		return ci
	}
	ci, _ := rc.Value(callInfoKey{}).(*callInfo)
	return ci
}

// sessionsOf returns the principal's downstream sessions.
func (g *Gateway) sessionsOf(principal string) []*downstreamSession {
	return g.sessions.ofPrincipal(principal)
}

// relayRequest is the admission stage of requests an upstream sends
// toward a client (sampling, elicitation, roots). They go only to a
// session of the principal the upstream session belongs to: the session
// whose call caused the request, or, outside a call, a session of that
// principal whose client declared the same capabilities. Policy decides
// (resource kind "client-request", the method as its name, the params as
// arguments) and the audit log records it, like a client's request.
func (g *Gateway) relayRequest(ctx context.Context, us *upstreamSession, method string, params jsontext.Value) (any, error) {
	u, principal := us.up, us.principal
	spec := upstreamRequests[method]
	ds := &downstreamSession{principal: principal}
	if spec == nil || spec.rule != ruleGovern {
		why := "it is not a request of any supported MCP revision"
		if spec != nil {
			why = spec.why
		}
		c := &call{ds: ds, method: method, res: policy.Resource{Kind: policy.KindClientRequest, Upstream: u.cfg.Name, Name: method}}
		return nil, g.refuse(ctx, c, outcomeRefused, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "method %q is not relayed by the gateway: %s", method, why))
	}
	switch method {
	case mcp.MethodTasksGet, mcp.MethodTasksResult, mcp.MethodTasksCancel, mcp.MethodTasksList:
		return g.relayTaskRequest(ctx, us, method, params)
	}
	c := &call{ds: ds, method: method, params: params, args: params, up: u,
		res: policy.Resource{Kind: policy.KindClientRequest, Upstream: u.cfg.Name, Name: method}}
	if method == mcp.MethodRootsList {
		switch u.rootsMode() {
		case config.RootsFixed:
			// The operator's roots, answered here; policy still decides.
			return g.govern(ctx, c, func() (any, error) { return u.fixedRoots(), nil })
		case config.RootsRelay:
		default:
			return nil, g.refuse(ctx, c, outcomeRefused, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "roots are not offered to upstream %s (its roots setting is none)", u.cfg.Name))
		}
	}
	params = g.mapRelatedTask(u, principal, params)
	target, dctx := g.relayTarget(ctx, us)
	if target == nil {
		return nil, g.refuse(ctx, c, outcomeUnknown, jsonrpc.NewError(jsonrpc.CodeInternalError, "no client session of %s that can answer %s is connected to the gateway", principal, method))
	}
	c.ds = target
	// A 2026-07-28 client is asked by MRTR: its call is parked
	// (modern_mrtr.go).
	var pc *parkedCall
	if target.modern {
		if pc = parkedOf(dctx); pc == nil {
			return nil, g.refuse(ctx, c, outcomeRefused, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "the client's request was made in %s, which has no server-to-client requests: %s is not relayed", mcp.Version20260728, method))
		}
	}
	var err error
	if c.p, err = jsonraw.Parse(params); err != nil {
		return nil, g.refuse(ctx, c, outcomeInvalid, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: %v", err))
	}
	if err := clientCan(target, method, params); err != nil {
		return nil, g.refuse(ctx, c, outcomeRefused, err)
	}
	// The request travels with the downstream call's context (so it goes on
	// that call's stream) and is cancelled if the upstream cancels it.
	dctx, cancel := context.WithCancel(dctx)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	_, asTask := c.p.Get("task")
	return g.govern(ctx, c, func() (any, error) {
		if pc != nil {
			return pc.askClient(dctx, method, params)
		}
		res, err := target.ss.CallRaw(dctx, method, params)
		if err != nil {
			return nil, err
		}
		if asTask {
			if err := g.noteClientTask(us, target, res); err != nil {
				return nil, err
			}
		}
		return res, nil
	})
}

// clientCan checks that the client of a downstream session declared what
// a relayed request needs: sampling (with tools when the request carries
// tools), elicitation in the request's mode, roots.
func clientCan(ds *downstreamSession, method string, params jsontext.Value) error {
	var caps mcp.ClientCapabilities
	if p := ds.ss.InitializeParams(); p != nil {
		caps = p.Capabilities
	}
	missing := ""
	switch method {
	case mcp.MethodSamplingCreateMessage:
		switch {
		case caps.Sampling == nil:
			missing = "sampling"
		case caps.Sampling.Tools == nil:
			if t := valueOf(params, "tools"); t != nil {
				missing = "sampling.tools"
			}
		}
	case mcp.MethodElicitationCreate:
		mode := stringOf(params, "mode")
		switch {
		case caps.Elicitation == nil:
			missing = "elicitation"
		case mode == string(mcp.ElicitationModeURL) && caps.Elicitation.URL == nil:
			missing = "elicitation.url"
		case mode != string(mcp.ElicitationModeURL) && caps.Elicitation.Form == nil && caps.Elicitation.URL != nil:
			missing = "elicitation.form"
		}
	case mcp.MethodRootsList:
		if caps.Roots == nil {
			missing = "roots"
		}
	}
	if missing == "" && valueOf(params, "task") != nil {
		var r *mcp.ClientTaskRequestsCapabilities
		if caps.Tasks != nil {
			r = caps.Tasks.Requests
		}
		switch {
		case method == mcp.MethodSamplingCreateMessage && (r == nil || r.Sampling == nil || r.Sampling.CreateMessage == nil):
			missing = "tasks.requests.sampling.createMessage"
		case method == mcp.MethodElicitationCreate && (r == nil || r.Elicitation == nil || r.Elicitation.Create == nil):
			missing = "tasks.requests.elicitation.create"
		case method == mcp.MethodRootsList:
			missing = "tasks for roots/list (no revision has it)"
		}
	}
	if missing != "" {
		return jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "the client did not declare the %s capability", missing)
	}
	return nil
}

// fixedRoots is the answer to roots/list of an upstream whose roots are
// set by the operator.
func (u *upstream) fixedRoots() *mcp.ListRootsResult {
	res := &mcp.ListRootsResult{Roots: make([]*mcp.Root, 0, len(u.cfg.FixedRoots))}
	for _, r := range u.cfg.FixedRoots {
		res.Roots = append(res.Roots, &mcp.Root{URI: r.URI, Name: r.Name})
	}
	return res
}

// relayTarget picks the downstream session for a request an upstream
// session sent: the session of the related call when known, else a
// session of the upstream session's principal whose client declared the
// capabilities the upstream session was opened with; nil if there is
// none.
func (g *Gateway) relayTarget(ctx context.Context, us *upstreamSession) (*downstreamSession, context.Context) {
	if ci := callInfoOf(ctx); ci != nil {
		if pc := parkedOf(ci.ctx); pc != nil {
			// A modern client's call, which outlives each of its
			// requests (modern_mrtr.go).
			if pc.ds.principal == us.principal {
				return pc.ds, ci.ctx
			}
			return nil, nil
		}
		if ds := g.downstream(ci.ds); ds.principal == us.principal {
			return ds, ci.ctx
		}
		return nil, nil
	}
	for _, ds := range g.sessionsOf(us.principal) {
		if us.up.profileFor(ds) == us.profile {
			return ds, context.Background()
		}
	}
	return nil, nil
}

// relayNotification forwards a notification an upstream sent.
func (g *Gateway) relayNotification(ctx context.Context, u *upstream, principal, method string, params jsontext.Value) {
	if spec := upstreamNotifications[method]; spec == nil || spec.rule != ruleGovern {
		u.logger.Debug("notification not relayed", "method", method)
		return
	}
	if !u.admitNotification(method) {
		return // over the upstream's notification rate: dropped, counted
	}
	switch method {
	case mcp.NotificationProgress:
		tok := stringOf(params, "progressToken")
		ci := g.progress.get(tok)
		if ci == nil || g.downstream(ci.ds).principal != principal {
			u.logger.Debug("progress for an unknown token", "token", tok)
			return
		}
		p, err := withValue(params, "progressToken", ci.progressToken)
		if err != nil {
			return
		}
		g.notify(ci.ctx, ci.ds, method, g.mapRelatedTask(u, principal, p))
	case mcp.NotificationMessage:
		params = g.mapRelatedTask(u, principal, params)
		if ci := callInfoOf(ctx); ci != nil {
			if !modernWantsLog(ci.ctx, params) {
				return // a modern request opts in to log messages (modern.go)
			}
			g.notify(ci.ctx, ci.ds, method, params)
			return
		}
		g.broadcast(principal, method, params, nil)
	case mcp.NotificationToolsListChanged, mcp.NotificationPromptsListChanged, mcp.NotificationResourcesListChanged:
		g.invalidate(principal)
		g.broadcast(principal, method, params, nil)
		g.listeners.notify(principal, method, "", nil) // modern clients (modern_listen.go)
	case mcp.NotificationResourcesUpdated:
		uri := stringOf(params, "uri")
		g.broadcast(principal, method, params, func(ds *downstreamSession) bool {
			return g.sessions.subscribed(ds, uri)
		})
		g.listeners.notify(principal, method, uri, params)
	case mcp.NotificationElicitationComplete:
		g.broadcast(principal, method, params, nil)
	case mcp.NotificationTasksStatus:
		gid, ref := g.gatewayTaskID(u, principal, stringOf(params, "taskId"))
		if ref == nil {
			return
		}
		p, err := withString(params, "taskId", gid)
		if err != nil {
			return
		}
		g.noteStatus(ctx, ref, stringOf(params, "status"), stringOf(params, "statusMessage"))
		g.broadcast(ref.Principal, method, p, nil)
	default:
		u.logger.Debug("notification not relayed", "method", method)
	}
}

// mapRelatedTask rewrites the related-task _meta of a message an upstream
// session of principal sent about one of its tasks to the id the gateway
// gave the client. A message about a task the gateway does not know, or
// that is not the principal's, is left as it is.
func (g *Gateway) mapRelatedTask(u *upstream, principal string, params jsontext.Value) jsontext.Value {
	raw, ok, err := jsonraw.GetPath(params, "_meta", mcp.MetaKeyRelatedTask, "taskId")
	if err != nil || !ok || raw.Kind() != '"' {
		return params
	}
	upID, err := jsontext.AppendUnquote(nil, raw)
	if err != nil {
		return params
	}
	// The task may have sent this before the gateway saw the answer that
	// created it: wait for that answer while it is on its way.
	var gid string
	var ref *store.GatewayTask
	g.creations.wait(context.Background(), u, func() bool {
		gid, ref = g.gatewayTaskID(u, principal, string(upID))
		return ref != nil
	})
	if ref == nil {
		return params
	}
	out, err := withRelatedTask(params, gid)
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
