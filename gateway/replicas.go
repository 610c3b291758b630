package gateway

import (
	"context"
	"net/http"
	"time"

	"github.com/mcpgate/mcpgate/inventory"
	"github.com/mcpgate/mcpgate/mcp"
)

// Sessions on any replica (Options.SharedSessions): a request naming a
// Streamable HTTP session this process does not hold continues it when
// its record in Options.Sessions is live and belongs to the request's
// principal (adoptSession); a DELETE through any replica ends the record,
// and the other replicas drop their copy when the store announces it
// (DropSession). Upstream sessions stay per replica.

// adoptLookupTimeout bounds the store lookup of a session to adopt.
const adoptLookupTimeout = 2 * time.Second

// adoptSession is the Streamable HTTP handler's AdoptSession: it allows
// continuing session id, opened by another replica, when its record is
// live, was opened by the request's principal (the token subject, or
// AnonymousPrincipal without authentication) and is not revoked. The
// session is initialized with the protocol version the request names
// (Mcp-Protocol-Version, the latest without one); the client's
// capabilities and name given at initialize are not in the record, so an
// adopted session offers the client no server-to-client requests
// (sampling, elicitation, roots) and shows no client name.
func (g *Gateway) adoptSession(r *http.Request, id string) (*mcp.InitializeParams, bool) {
	principal := AnonymousPrincipal
	if g.opts.Principal != nil {
		if p := g.opts.Principal(r.Context()); p != "" {
			principal = p
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), adoptLookupTimeout)
	defer cancel()
	recs, err := g.opts.Sessions.ListGatewaySessions(ctx, false)
	if err != nil {
		g.logger.Warn("looking up a session to continue", "session", id, "error", err)
		return nil, false
	}
	for _, rec := range recs {
		if rec.ID != id {
			continue
		}
		if rec.Principal != principal || !rec.EndedAt.IsZero() {
			return nil, false
		}
		if rv := g.opts.Revoker; rv != nil && rv.IsRevoked(ctx, inventory.Match{User: rec.Principal, Client: rec.ClientID, Grant: rec.Grant}) {
			return nil, false
		}
		version := r.Header.Get("Mcp-Protocol-Version")
		if version == "" || !mcp.IsSupportedProtocolVersion(version) {
			version = mcp.LatestProtocolVersion
		}
		g.sessions.adopting.Store(id, struct{}{})
		return &mcp.InitializeParams{ProtocolVersion: version, ClientInfo: mcp.Implementation{Name: "", Version: ""}}, true
	}
	return nil, false
}

// sessionDeleted is the Streamable HTTP handler's SessionDeleted: the
// client ended the session, so its record ends, and the store announces
// it to the other replicas.
func (g *Gateway) sessionDeleted(id string) {
	g.sessions.write("end", func(ctx context.Context) error {
		return g.opts.Sessions.EndGatewaySession(ctx, id, time.Now().UTC())
	})
}
