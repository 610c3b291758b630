package gateway

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/gateway/upstreamauth"
	"github.com/mcpgate/mcpgate/inventory"
	principalpkg "github.com/mcpgate/mcpgate/principal"
	"github.com/mcpgate/mcpgate/store"
)

// CodeRevoked is the JSON-RPC error code of a request from a revoked
// user or client, or with a revoked grant.
const CodeRevoked = -32006

// connectInventory shows the inventory the gateway's sessions and tasks and
// registers the gateway's revocation hooks (close sessions, cancel tasks,
// end upstream access, drop an upstream credential) with the revoker.
// Start applies the revocations no gateway has applied yet, before the
// gateway serves, and then runs the revoker until Close, so that
// revocations recorded elsewhere (the command line, another replica) take
// effect here.
func (g *Gateway) connectInventory() {
	g.sessions.record(g.opts.Sessions, g.opts.SessionRetention, g.logger)
	if inv := g.opts.Inventory; inv != nil {
		inv.RegisterLiveSource(liveSource{g})
	}
	rv := g.opts.Revoker
	if rv == nil {
		return
	}
	rv.Register(inventory.RevocationHooks{
		CloseSessions: func(ctx context.Context, m inventory.Match) (int, error) {
			g.metrics.revocation()
			return g.CloseSessions(func(s SessionInfo) bool { return matches(m, s.Principal, s.ClientID, s.Grant, s.TokenID) }), nil
		},
		CancelTasks: func(ctx context.Context, m inventory.Match) (int, error) {
			return g.CancelTasksMatching(ctx, func(t *store.GatewayTask) bool { return matches(m, t.Principal, t.ClientID, t.Grant, "") })
		},
		EndUpstreamAccess:      g.endUpstreamAccess,
		DropUpstreamCredential: g.dropUpstreamCredential,
	})
}

// applyRevocations applies, before the gateway serves, the revocations
// recorded while no gateway ran (their tokens revoked, their tasks
// cancelled at the upstreams, their upstream grants revoked; each one
// audited), and then keeps applying those recorded elsewhere until Close.
func (g *Gateway) applyRevocations(ctx context.Context) {
	rv := g.opts.Revoker
	if rv == nil {
		return
	}
	g.revokerOnce.Do(func() {
		results, err := rv.Sync(ctx)
		if err != nil {
			g.logger.Error("applying the revocations recorded while the gateway was stopped", "error", err)
		}
		for _, res := range results {
			if err := res.Err(); err != nil {
				g.logger.Warn("applying a revocation recorded while the gateway was stopped", "kind", res.Kind, "id", res.ID, "error", err)
			} else {
				g.logger.Info("applied a revocation recorded while the gateway was stopped", "kind", res.Kind, "id", res.ID)
			}
		}
		runCtx, cancel := context.WithCancel(context.Background())
		go func() { <-g.done; cancel() }()
		go rv.Run(runCtx, func(err error) { g.logger.Warn("applying revocations", "error", err) })
	})
}

// matches reports whether a revocation applies to a principal, its
// client, and the grant and token of its session or task ("" when
// unknown).
func matches(m inventory.Match, principal, clientID, grant, tokenID string) bool {
	sub := principalpkg.Subject(principal)
	switch {
	case m.User != "" && principal == m.User:
		return true
	case m.Client != "" && (clientID == m.Client || sub.ClientID() == m.Client):
		return true
	case m.Grant != "" && (grant == m.Grant || tokenID == m.Grant):
		return true
	case m.IdP != "" && sub.FromIdP(m.IdP):
		return true
	}
	return false
}

// endUpstreamAccess ends what the principals a revocation matches hold at
// the upstreams: their upstream sessions (and the stdio processes run for
// them), and their per-user upstream grants, revoked at the upstream's
// authorization server (RFC 7009) where it offers that. A grant's
// revocation leaves them: they are the user's, shared by the user's other
// grants. It runs after the tasks were cancelled.
func (g *Gateway) endUpstreamAccess(ctx context.Context, m inventory.Match) (int, error) {
	if m.Grant != "" {
		inventory.Note(ctx, "upstream sessions and per-user upstream grants belong to the user, not to one grant: kept")
		return 0, nil
	}
	match := func(principal string) bool { return matches(m, principal, "", "", "") }
	n := 0
	var errs []error
	if tokens := g.upAuth.Tokens(); tokens != nil {
		all, err := tokens.ListUpstreamTokens(ctx, "")
		if err != nil {
			errs = append(errs, fmt.Errorf("listing per-user upstream tokens: %w", err))
		}
		for _, t := range all {
			if !match(t.Principal) {
				continue
			}
			if t.Upstream == upstreamauth.AssertionKey {
				if err := g.upAuth.ForgetAssertion(ctx, t.Principal); err != nil {
					errs = append(errs, err)
				}
				inventory.Note(ctx, "%s: the identity assertion kept for enterprise upstream credentials is deleted", t.Principal)
				continue
			}
			u := g.upstreamNamed(t.Upstream)
			if u == nil {
				continue
			}
			ok, err := g.revokeUpstreamGrant(ctx, u, t.Principal)
			if ok {
				n++
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, u := range g.upstreamList() {
		n += u.closeSessions(match)
	}
	return n, errors.Join(errs...)
}

// revokeUpstreamGrant revokes principal's per-user grant at u's
// authorization server and forgets the token, noting the outcome on the
// revocation. It reports whether there was a grant.
func (g *Gateway) revokeUpstreamGrant(ctx context.Context, u *upstream, principal string) (bool, error) {
	outcome, err := g.upAuth.RevokeGrant(ctx, u.authUpstream(), principal)
	switch {
	case err != nil:
		inventory.Note(ctx, "%s/%s: the upstream grant could not be revoked at the upstream's authorization server (the stored token is deleted): %v", u.cfg.Name, principal, err)
		return true, fmt.Errorf("upstream %s: %w", u.cfg.Name, err)
	case outcome == upstreamauth.GrantRevoked:
		inventory.Note(ctx, "%s/%s: upstream grant revoked at the upstream's authorization server (RFC 7009)", u.cfg.Name, principal)
	case outcome == upstreamauth.GrantDropped:
		if inv := g.opts.Inventory; inv != nil {
			if err := inv.ForgetUpstreamCredential(ctx, principal, u.cfg.Name); err != nil {
				u.logger.Warn("forgetting an enterprise upstream credential in the inventory", "error", err)
			}
		}
		inventory.Note(ctx, "%s/%s: the enterprise upstream token is deleted (a new one needs a new exchange at the identity provider)", u.cfg.Name, principal)
	case outcome == upstreamauth.GrantNotRevocable:
		inventory.Note(ctx, "%s/%s: the upstream grant could not be revoked: the upstream's authorization server offers no revocation endpoint; it stays live there until it expires (the stored token is deleted)", u.cfg.Name, principal)
	default:
		return false, nil
	}
	return true, nil
}

// dropUpstreamCredential ends a principal's use of its credential for an
// upstream: its tasks there are cancelled, the grant is revoked at the
// upstream's authorization server, the token forgotten and the upstream
// sessions closed.
func (g *Gateway) dropUpstreamCredential(ctx context.Context, principal, upstream string) error {
	u := g.upstreamNamed(upstream)
	if u == nil {
		return fmt.Errorf("unknown upstream %q", upstream)
	}
	if _, err := g.CancelTasksMatching(ctx, func(t *store.GatewayTask) bool { return t.Principal == principal && t.Upstream == upstream }); err != nil {
		u.logger.Warn("cancelling tasks of a revoked upstream credential", "principal", principal, "error", err)
	}
	_, err := g.revokeUpstreamGrant(ctx, u, principal)
	u.closeSession(principal)
	return err
}

// revoked reports whether a downstream session's identity is revoked.
func (g *Gateway) revoked(ctx context.Context, ds *downstreamSession) bool {
	rv := g.opts.Revoker
	if rv == nil {
		return false
	}
	m := inventory.Match{User: ds.principal, Client: ds.clientID, Grant: ds.grant, IdP: ds.identity.idp}
	if c := principalpkg.Subject(ds.principal).ClientID(); c != "" {
		m.User, m.Client = "", c
	}
	return rv.IsRevoked(ctx, m)
}

// msgRevokedAccount is the authorization server's answer, at sign-in,
// consent and the token endpoint, for a revoked user.
const msgRevokedAccount = "this account has been revoked by an administrator"

// admit is the authorization server's check before it issues a token.
func (g *Gateway) admit(ctx context.Context, subject, clientID string) error {
	if rv := g.opts.Revoker; rv != nil {
		m := inventory.Match{User: subject, Client: clientID}
		if c := principalpkg.Subject(subject).ClientID(); c != "" {
			m.User = ""
			m.Client = c
		}
		switch {
		case m.User != "" && rv.RevokedIdP(ctx, m.User) != "":
			return fmt.Errorf("the identity provider %s that vouched for this account has been revoked by an administrator: its sign-ins and assertions are refused", rv.RevokedIdP(ctx, m.User))
		case m.User != "" && rv.IsRevoked(ctx, inventory.Match{User: m.User}):
			return errors.New(msgRevokedAccount)
		case rv.IsRevoked(ctx, m):
			return errors.New("this client has been revoked by an administrator")
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

// recordUpstreams records the configured upstreams in the inventory:
// transport, URL (without user information, query or fragment) or
// command, credential type (never its value) and owner.
func (g *Gateway) recordUpstreams(ctx context.Context) {
	inv := g.opts.Inventory
	if inv == nil {
		return
	}
	recs := make([]*store.UpstreamRecord, 0, len(g.upstreamList()))
	for _, u := range g.upstreamList() {
		c := u.cfg
		r := &store.UpstreamRecord{Name: c.Name, Owner: c.Owner, CredentialType: "none", PerUser: u.perUser()}
		if c.Credentials != nil && c.Credentials.Type != "" {
			r.CredentialType = c.Credentials.Type
		}
		switch {
		case len(c.Command) > 0:
			r.Transport, r.Command = store.TransportStdio, slices.Clone(c.Command)
		default:
			r.Transport = cmp.Or(c.Transport, "auto")
			if pu, err := url.Parse(c.URL); err == nil {
				pu.User, pu.RawQuery, pu.ForceQuery, pu.Fragment, pu.RawFragment = nil, "", false, "", ""
				r.URL = pu.String()
			}
		}
		recs = append(recs, r)
	}
	if err := inv.RecordUpstreams(ctx, recs); err != nil {
		g.logger.Warn("recording the upstreams in the inventory", "error", err)
	}
}

// liveSource shows the inventory the gateway's sessions and tasks.
type liveSource struct{ g *Gateway }

func (l liveSource) Sessions() []inventory.Session {
	var out []inventory.Session
	for _, ds := range l.g.sessions.all() {
		s := ds.info()
		if ds.recordID != "" {
			s.ID = ds.recordID // as the session records name it
		}
		out = append(out, inventory.Session{ID: s.ID, Principal: s.Principal, ClientID: s.ClientID, Grant: s.Grant, TokenID: s.TokenID,
			Transport: s.Transport, SourceAddr: s.SourceAddr, Created: s.Created, LastSeen: s.Created})
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
		out = append(out, inventory.TaskOf(t))
	}
	return out
}

// Inventory returns the identity inventory the gateway was given (nil if
// none).
func (g *Gateway) Inventory() *inventory.Inventory { return g.opts.Inventory }

// Revoker returns the revoker the gateway was given (nil if none).
func (g *Gateway) Revoker() *inventory.Revoker { return g.opts.Revoker }
