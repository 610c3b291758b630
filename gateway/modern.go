package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/internal/jsonraw"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
)

// Modern clients (revision 2026-07-28).
//
// A modern request has no session: the mcp library serves it on a
// throwaway ServerSession and hands it to the same admission stage as a
// legacy request (Gateway.handle), with the request's envelope
// (mcp.RequestMetaFromContext). The gateway builds a downstream record
// for that one request (modernDownstream): the principal comes from the
// caller's bearer token exactly as for a legacy session's initialize
// (AnonymousPrincipal with auth none), the client capabilities from the
// envelope. So a modern tools/call is decided by the same policy action,
// limited by the same rate limits and overload bounds, and written to the
// audit log as the same records as a legacy one; only the Session field
// of its records is empty.
//
// The library answers server/discover (from Gateway.capabilities, see
// modernCapabilities), refuses the methods 2026-07-28 removed (-32601),
// checks the envelope and headers, and adds resultType, the server's
// identity and the cache hints (modernCacheHints) to every result.
//
// Upstream sessions are shared as for legacy clients: one per principal
// and capability profile, the profile read from the envelope's client
// capabilities (upstream.profileFor reads the throwaway session's
// initialize params, which the library fills from the envelope).

// modernCacheHints are the cache hints of modern results: every list and
// read depends on the principal (policy filters it), so no shared cache
// may keep it, and a client should ask again (ttlMs 0).
func modernCacheHints(string) mcp.CacheHints {
	return mcp.CacheHints{Scope: mcp.CacheScopePrivate, TTL: 0}
}

// modernCapabilities are the capabilities server/discover announces: those
// the upstreams offer, as for a legacy initialize (subscriptions/listen
// is fed from upstreams' notifications: modern_listen.go). Core tasks
// become the Tasks extension (the library converts them; modern_tasks.go).
func (g *Gateway) modernCapabilities() mcp.ServerCapabilities {
	caps := g.mergedCapabilities()
	// A modern upstream offers the Tasks extension rather than core
	// tasks; its tasks reach modern clients (modern_upstream_tasks.go).
	for _, u := range g.upstreamList() {
		if uc := u.capabilities(); uc != nil {
			if _, ok := uc.Extensions[mcp.ExtensionTasks]; ok {
				caps.Extensions = map[string]jsontext.Value{mcp.ExtensionTasks: jsontext.Value("{}")}
				break
			}
		}
	}
	return caps
}

// isModern reports whether ctx belongs to a modern request.
func isModern(ctx context.Context) bool { return mcp.RequestMetaFromContext(ctx) != nil }

// modernDownstream returns the downstream record of one modern request:
// who the caller is (from the bearer token, as capabilities does for a
// legacy session), on the request's throwaway session. It is not
// registered as a session: it lives as long as the request (see
// sessionRegistry.serving).
func (g *Gateway) modernDownstream(ctx context.Context, ss *mcp.ServerSession) *downstreamSession {
	principal := AnonymousPrincipal
	if g.opts.Principal != nil {
		if p := g.opts.Principal(ctx); p != "" {
			principal = p
		}
	}
	ds := &downstreamSession{ss: ss, principal: principal, clientID: tokenClientID(ctx), created: time.Now().UTC(), modern: true}
	if m := mcp.RequestMetaFromContext(ctx); m != nil && m.ClientInfo != nil {
		ds.client = m.ClientInfo.Name
	}
	ds.scopes = tokenScopes(ctx)
	ds.identity = tokenIdentity(ctx)
	ds.sourceAddr = sourceAddr(ctx)
	ds.transport = downstreamTransport(ctx)
	ds.tokenID, ds.grant = g.tokenGrant(ctx)
	if g.auth != nil && ds.clientID != "" {
		if c, err := g.auth.Store.GetClient(ctx, ds.clientID); err == nil {
			ds.registration = c.Kind
			if c.Metadata != "" {
				var m map[string]any
				if json.Unmarshal([]byte(c.Metadata), &m) == nil {
					ds.clientMeta = m
				}
			}
		}
	}
	return ds
}

// requestDownstream returns the downstream record a client request comes
// from, and a function to call when the request is done: a legacy
// session's record, or a modern request's own, known to the registry
// while the request is served (so that progress and relayed messages of
// its upstream call find their principal).
func (g *Gateway) requestDownstream(ctx context.Context, ss *mcp.ServerSession) (*downstreamSession, func()) {
	if !isModern(ctx) {
		return g.downstream(ss), func() {}
	}
	ds := g.modernDownstream(ctx, ss)
	return ds, g.sessions.serving(ds)
}

// modernOnlyMeta are the _meta keys of the modern envelope: they describe
// the client's request to the gateway, and are not passed on to upstreams
// (which get the gateway's own upstream sessions).
var modernOnlyMeta = []string{mcp.MetaProtocolVersion, mcp.MetaClientCapabilities, mcp.MetaClientInfo, mcp.MetaLogLevel}

// stripModernParams removes from a modern request's params what concerns
// only the client and the gateway: the envelope's _meta keys and the MRTR
// members (inputResponses, requestState), which the gateway reads itself.
// A "task" member (2025-11-25 task augmentation, not part of 2026-07-28)
// is dropped too: the call runs synchronously.
func stripModernParams(p *jsonraw.Object) error {
	p.Delete("inputResponses")
	p.Delete("requestState")
	p.Delete("task")
	raw, ok := p.Get("_meta")
	if !ok || raw.Kind() != '{' {
		return nil
	}
	meta, err := jsonraw.Parse(raw)
	if err != nil {
		return err
	}
	for _, k := range modernOnlyMeta {
		meta.Delete(k)
	}
	if meta.Len() == 0 {
		p.Delete("_meta")
		return nil
	}
	return p.Set("_meta", meta.Bytes())
}

// approvalInputKey is the key of the approval's input request in an
// input_required result.
const approvalInputKey = "mcpgate/approval"

// approvalStatePrefix starts the requestState of an approval's input
// request; the rest is the approval id, for the client's information.
const approvalStatePrefix = "mcpgate-approval."

// approvalAsInput turns the answer to a call that needs approval into the
// form a modern client expects: the legacy -32042 error (a URL-mode
// elicitation the user must complete) becomes an input_required result
// whose input request is that URL-mode elicitation. The client completes
// it, then retries with the same params; the retry passes admission again
// and consumes the approval exactly as a legacy client's second call does
// (the approval service, not requestState, says whether it was granted).
// A client that did not declare URL-mode elicitation gets the error.
func approvalAsInput(ds *downstreamSession, out any, err error) (any, error) {
	var we *jsonrpc.Error
	if !ds.modern || !errors.As(err, &we) || we.Code != mcp.CodeURLElicitationRequired {
		return out, err
	}
	if p := ds.ss.InitializeParams(); p == nil || p.Capabilities.Elicitation == nil || p.Capabilities.Elicitation.URL == nil {
		return out, err
	}
	var data mcp.URLElicitationRequiredErrorData
	if json.Unmarshal(we.Data, &data) != nil || len(data.Elicitations) != 1 {
		return out, err
	}
	e := data.Elicitations[0]
	return &mcp.InputRequiredResult{
		ResultType:    mcp.ResultTypeInputRequired,
		InputRequests: map[string]*mcp.InputRequest{approvalInputKey: {Method: mcp.MethodElicitationCreate, Params: e}},
		// Opaque to the client; the gateway keeps nothing in it (the
		// approval service holds the approval, bound to the principal,
		// tool and arguments).
		RequestState: approvalStatePrefix + e.ElicitationID,
	}, nil
}

// modernWantsLog reports whether a log message of an upstream may go to
// the request ctx belongs to: always for a legacy session (its level was
// passed on with logging/setLevel); for a modern request only if its
// envelope set io.modelcontextprotocol/logLevel, at or above that level.
func modernWantsLog(ctx context.Context, params jsontext.Value) bool {
	m := mcp.RequestMetaFromContext(ctx)
	if m == nil {
		return true
	}
	if m.LogLevel == "" {
		return false
	}
	return mcp.LoggingLevel(stringOf(params, "level")).Enabled(m.LogLevel)
}

// toolInputSchema is the inputSchema of a tool of the caller's catalogue,
// for the library's check of Mcp-Param-* headers (x-mcp-header) of a
// modern tools/call. ctx is the HTTP request's.
func (g *Gateway) toolInputSchema(ctx context.Context, name string) jsontext.Value {
	principal := AnonymousPrincipal
	if g.opts.Principal != nil {
		if p := g.opts.Principal(ctx); p != "" {
			principal = p
		}
	}
	return valueOf(g.catalogTool(ctx, principal, name), "inputSchema")
}
