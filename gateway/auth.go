package gateway

import (
	"context"
	"net/http"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/oauth/authserver"
	"github.com/mcpgate/mcpgate/oauth/resource"
	"github.com/mcpgate/mcpgate/store"
)

// ScopeTools is the scope the built-in authorization server offers for
// using the gateway's MCP endpoint.
const ScopeTools = "mcp:tools"

// Auth is the built-in authorization server and the resource server that
// protects the gateway's MCP endpoints (auth "oauth"). Tokens are issued by
// Server at <public URL>/oauth and must be bound to <public URL>/mcp with
// scope ScopeTools. Server's hooks should be the gateway's (Hooks).
type Auth struct {
	// Server is the authorization server; Handler mounts it.
	Server *authserver.Server
	// Resource verifies bearer tokens on /mcp and /sse and serves the
	// protected-resource metadata.
	Resource *resource.Resource
	// Store is the identity store Server uses: the gateway reads clients'
	// registered metadata and the browser sign-in sessions from it.
	Store store.Store
}

// tokenPrincipal names the caller by the subject of its verified token.
func tokenPrincipal(ctx context.Context) string {
	if p, ok := resource.PrincipalFromContext(ctx); ok && p.Subject != "" {
		return p.Subject
	}
	return ""
}

// authEvent records what the authorization server did in the audit log.
func (g *Gateway) authEvent(ctx context.Context, e authserver.Event) {
	r := &audit.Record{Action: e.Kind, Client: e.ClientID, User: e.Subject, Target: e.ClientID, Outcome: audit.OutcomeOK, Error: e.Detail}
	if e.Kind == "token.refused" {
		r.Outcome, r.Decision = "refused", audit.DecisionDeny
		if e.Error != "" {
			r.Error = e.Error + ": " + e.Detail
		}
	}
	if err := g.auditAppend(ctx, r); err != nil {
		g.logger.Error("auditing an authorization event", "kind", e.Kind, "error", err)
	}
}

// tokenScopes are the scopes of the caller's verified token, if any.
func tokenScopes(ctx context.Context) []string {
	if p, ok := resource.PrincipalFromContext(ctx); ok {
		return p.Scopes
	}
	return nil
}

// tokenClientID is the OAuth client of the caller's verified token, if any.
func tokenClientID(ctx context.Context) string {
	if p, ok := resource.PrincipalFromContext(ctx); ok {
		return p.ClientID
	}
	return ""
}

// tokenGrant returns the jti of the caller's verified token and the grant
// it belongs to: its token family in the identity store, or the jti itself
// for a token without family (client credentials) or unknown to the store.
func (g *Gateway) tokenGrant(ctx context.Context) (tokenID, grant string) {
	p, ok := resource.PrincipalFromContext(ctx)
	if !ok || p.TokenID == "" {
		return "", ""
	}
	if g.auth != nil && g.auth.Store != nil {
		if t, err := g.auth.Store.GetAccessToken(ctx, p.TokenID); err == nil && t.FamilyID != "" {
			return p.TokenID, t.FamilyID
		}
	}
	return p.TokenID, p.TokenID
}

// protect adds the OAuth endpoints to mux and returns h protected by the
// resource server.
func (a *Auth) protect(mux *http.ServeMux, h http.Handler) http.Handler {
	a.Server.Mount(mux)
	a.Resource.Mount(mux)
	return a.Resource.Middleware(h)
}
