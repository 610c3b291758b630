package gateway

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/inventory"
	principalpkg "github.com/mcpgate/mcpgate/principal"
	"github.com/mcpgate/mcpgate/store"
)

// CodeRevoked is the JSON-RPC error code of a request from a revoked
// user or client, or with a revoked grant.
const CodeRevoked = -32006

// connectInventory shows the inventory the gateway's sessions and tasks,
// registers the gateway's revocation hooks (close sessions, cancel tasks,
// drop an upstream credential) with the revoker, and runs the revoker until
// Close, so that revocations recorded elsewhere (the command line, another
// replica) take effect here.
func (g *Gateway) connectInventory() {
	if inv := g.opts.Inventory; inv != nil {
		inv.RegisterLiveSource(liveSource{g})
	}
	rv := g.opts.Revoker
	if rv == nil {
		return
	}
	rv.Register(inventory.RevocationHooks{
		CloseSessions: func(ctx context.Context, m inventory.Match) (int, error) {
			return g.CloseSessions(func(s SessionInfo) bool { return matches(m, s.Principal, s.ClientID) }), nil
		},
		CancelTasks: func(ctx context.Context, m inventory.Match) (int, error) {
			return g.CancelTasksMatching(ctx, func(t *store.GatewayTask) bool { return matches(m, t.Principal, t.ClientID) })
		},
		DropUpstreamCredential: func(ctx context.Context, principal, upstream string) error {
			u := g.byName[upstream]
			if u == nil {
				return fmt.Errorf("unknown upstream %q", upstream)
			}
			if err := g.upAuth.Forget(ctx, u.authUpstream(), principal); err != nil {
				u.logger.Warn("deleting a per-user token", "principal", principal, "error", err)
			}
			u.closeSession(principal)
			return nil
		},
	})
	runCtx, cancel := context.WithCancel(context.Background())
	go func() { <-g.done; cancel() }()
	go rv.Run(runCtx, func(err error) { g.logger.Warn("applying revocations", "error", err) })
}

// matches reports whether a revocation applies to a principal and client.
func matches(m inventory.Match, principal, clientID string) bool {
	sub := principalpkg.Subject(principal)
	switch {
	case m.User != "" && principal == m.User:
		return true
	case m.Client != "" && (clientID == m.Client || sub.ClientID() == m.Client):
		return true
	case m.IdP != "" && sub.FromIdP(m.IdP):
		return true
	}
	return false
}

// revoked reports whether a downstream session's identity is revoked.
func (g *Gateway) revoked(ctx context.Context, ds *downstreamSession) bool {
	rv := g.opts.Revoker
	if rv == nil {
		return false
	}
	m := inventory.Match{User: ds.principal, Client: ds.clientID}
	if c := principalpkg.Subject(ds.principal).ClientID(); c != "" {
		m = inventory.Match{Client: c}
	}
	return rv.IsRevoked(ctx, m)
}

// admit is the authorization server's check before it issues a token.
func (g *Gateway) admit(ctx context.Context, subject, clientID string) error {
	if rv := g.opts.Revoker; rv != nil {
		m := inventory.Match{User: subject, Client: clientID}
		if c := principalpkg.Subject(subject).ClientID(); c != "" {
			m.User = ""
			m.Client = c
		}
		if rv.IsRevoked(ctx, m) {
			return errors.New("this user or client has been revoked")
		}
	}
	if inv := g.opts.Inventory; inv != nil && clientID != "" && inv.IsClientBlocked(ctx, clientID) {
		return errors.New("this client's metadata changed and awaits re-approval by an administrator")
	}
	return nil
}

// clientMetadata is told of every client registration and metadata
// document fetch by the authorization server.
func (g *Gateway) clientMetadata(ctx context.Context, clientID string, doc []byte) error {
	inv := g.opts.Inventory
	if inv == nil {
		return nil
	}
	if _, err := inv.RecordClientMetadata(ctx, clientID, doc); err != nil {
		return fmt.Errorf("recording client metadata: %w", err)
	}
	if inv.IsClientBlocked(ctx, clientID) {
		return errors.New("this client's metadata changed (redirect URIs or keys) and awaits re-approval by an administrator")
	}
	return nil
}

// recordTools tells the inventory an upstream's complete tool list (the
// tools without a name, and repeats of a name, left out).
func (g *Gateway) recordTools(ctx context.Context, u *upstream, tools []jsontext.Value) {
	inv := g.opts.Inventory
	if inv == nil {
		return
	}
	changes, err := inv.RecordTools(ctx, u.cfg.Name, wellFormedTools(tools))
	if err != nil {
		u.logger.Warn("recording tool definitions", "error", err)
		return
	}
	for _, c := range changes {
		switch {
		case c.Kind == inventory.ToolNew:
			u.logger.Warn("new tool hidden until an administrator approves it", "tool", c.Tool)
		case c.Flagged && c.Blocked:
			u.logger.Warn("tool definition changed since it was approved; listed with its approved definition, calls refused", "tool", c.Tool)
		case c.Flagged:
			u.logger.Warn("tool definition changed since it was approved", "tool", c.Tool, "blocked", false)
		}
	}
}

// toolBlocked refuses a tool that the inventory holds; it is toolAdmitted
// (trust.go), kept under its old name for the call path.
func (g *Gateway) toolBlocked(ctx context.Context, upstream, tool string) error {
	return g.toolAdmitted(ctx, upstream, tool)
}

// inventoryEvent records inventory and revocation events in the audit log.
func (g *Gateway) inventoryEvent(e inventory.Event) {
	target := e.Client
	if e.Tool != "" {
		target = e.Upstream + "/" + e.Tool
	} else if target == "" {
		target = e.User
	}
	outcome := audit.OutcomeOK
	switch {
	case e.Pending:
		outcome = audit.OutcomePending
	case e.Blocked:
		outcome = "blocked"
	case e.Flagged:
		outcome = "flagged"
	}
	r := &audit.Record{Action: e.Kind, Target: target, Upstream: e.Upstream, User: e.By, Outcome: outcome, Error: e.Detail}
	if e.Revocation != nil {
		r.Action = "revocation"
	}
	if err := g.auditAppend(context.Background(), r); err != nil {
		g.logger.Error("auditing an inventory event", "kind", e.Kind, "error", err)
	}
	if e.Kind == inventory.EventToolApproved {
		// Called with the inventory's lock held: refresh the catalogues
		// without waiting for it.
		go g.toolTrustChanged()
	}
}

// liveSource shows the inventory the gateway's sessions and tasks.
type liveSource struct{ g *Gateway }

func (l liveSource) Sessions() []inventory.Session {
	var out []inventory.Session
	for _, s := range l.g.Sessions() {
		out = append(out, inventory.Session{ID: s.ID, Principal: s.Principal, ClientID: s.ClientID, Created: s.Created, LastSeen: s.Created})
	}
	return out
}

func (l liveSource) UpstreamSessions() []inventory.UpstreamSession {
	var out []inventory.UpstreamSession
	for _, s := range l.g.UpstreamSessions() {
		if s.Connected {
			out = append(out, inventory.UpstreamSession{Upstream: s.Upstream, Principal: s.Principal, CredentialKind: s.Credential, Connected: s.Since})
		}
	}
	return out
}

func (l liveSource) Tasks() []inventory.Task {
	recs, err := l.g.taskStore.ListGatewayTasks(context.Background(), "")
	if err != nil {
		return nil
	}
	out := make([]inventory.Task, 0, len(recs))
	for _, t := range recs {
		out = append(out, inventory.Task{ID: t.ID, Owner: t.Principal, ClientID: t.ClientID, Upstream: t.Upstream, Status: t.Status, Created: t.CreatedAt})
	}
	return out
}

// Inventory returns the identity inventory the gateway was given (nil if
// none).
func (g *Gateway) Inventory() *inventory.Inventory { return g.opts.Inventory }

// Revoker returns the revoker the gateway was given (nil if none).
func (g *Gateway) Revoker() *inventory.Revoker { return g.opts.Revoker }
