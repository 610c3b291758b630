package console

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/approval"
	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/internal/cli/cliaudit"
	"github.com/mcpgate/mcpgate/internal/cli/policycmd"
	"github.com/mcpgate/mcpgate/inventory"
	"github.com/mcpgate/mcpgate/policy"
	"github.com/mcpgate/mcpgate/store"
)

// routes registers the API (docs/console.md lists it).
func (c *Console) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/me", c.serveMe)
	mux.HandleFunc("POST /api/signout", c.serveSignOut)
	mux.HandleFunc("GET /api/overview", c.serveOverview)
	mux.HandleFunc("GET /api/inventory", c.serveInventory)
	mux.HandleFunc("GET /api/inventory/path", c.servePath)
	mux.HandleFunc("POST /api/revoke", c.serveRevoke)
	mux.HandleFunc("POST /api/reinstate", c.serveReinstate)
	mux.HandleFunc("GET /api/audit", c.serveAudit)
	mux.HandleFunc("POST /api/audit/verify", c.serveVerify)
	mux.HandleFunc("GET /api/policies", c.servePolicies)
	mux.HandleFunc("POST /api/policies/dry-run", c.serveDryRun)
	mux.HandleFunc("GET /api/approvals", c.serveApprovals)
	mux.HandleFunc("GET /api/approvals/{id}", c.serveApproval)
	mux.HandleFunc("POST /api/approvals/{id}", c.serveDecide)
	mux.HandleFunc("GET /api/trust", c.serveTrust)
	mux.HandleFunc("POST /api/trust/tools", c.serveApproveTool)
	mux.HandleFunc("POST /api/trust/clients", c.serveDecideClient)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, http.StatusNotFound, "no such API endpoint for "+r.Method+" (docs/console.md lists them)")
	})
}

// unavailable answers 501 for a control that is not configured.
func (c *Console) unavailable(w http.ResponseWriter, what string) {
	c.fail(w, http.StatusNotImplemented, what+" is not configured on this gateway")
}

// internal answers 500, logging err.
func (c *Console) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	c.log.ErrorContext(r.Context(), "console: "+what, "error", err)
	c.fail(w, http.StatusInternalServerError, what+" failed: "+err.Error())
}

// me is GET /api/me.
type me struct {
	User       string `json:"user"`
	Role       string `json:"role"`
	CSRFToken  string `json:"csrf_token"`
	SignOutURL string `json:"sign_out_url,omitempty"`
	// May lists what the role allows: "read", "approve", "administer".
	May []string `json:"may"`
}

func (c *Console) serveMe(w http.ResponseWriter, r *http.Request) {
	u := userOf(r.Context())
	m := me{User: u.Name, Role: u.Role, CSRFToken: u.csrf, SignOutURL: c.opts.SignOutURL, May: []string{"read"}}
	if rank(u.Role) >= rank(RoleApprover) {
		m.May = append(m.May, "approve")
	}
	if rank(u.Role) >= rank(RoleAdministrator) {
		m.May = append(m.May, "administer")
	}
	writeJSON(w, http.StatusOK, m)
}

func (c *Console) serveSignOut(w http.ResponseWriter, r *http.Request) {
	c.session.Clear(w)
	c.record(r.Context(), &audit.Record{Action: ActionSignedOut})
	writeJSON(w, http.StatusOK, map[string]string{"signed_out": userOf(r.Context()).Name, "sign_out_url": c.opts.SignOutURL})
}

// overview is GET /api/overview.
type overview struct {
	Time             time.Time            `json:"time"`
	Upstreams        []upstreamHealth     `json:"upstreams"`
	Sessions         []inventory.Session  `json:"sessions"`
	Tasks            int                  `json:"tasks"`
	PerMinute        []minuteCount        `json:"per_minute"`
	PendingApprovals []*approval.Approval `json:"pending_approvals"`
	Drift            []driftAlert         `json:"drift"`
	PolicyVersion    string               `json:"policy_version,omitempty"`
}

type upstreamHealth struct {
	Name      string `json:"name"`
	Transport string `json:"transport,omitempty"`
	State     string `json:"state"`
	Error     string `json:"error,omitempty"`
	Since     string `json:"since,omitempty"`
	Tools     int    `json:"tools"`
}

// driftAlert is a client or tool that waits for an administrator.
type driftAlert struct {
	Kind     string `json:"kind"` // client or tool
	ID       string `json:"id"`
	Upstream string `json:"upstream,omitempty"`
	Tool     string `json:"tool,omitempty"`
	State    string `json:"state"` // pending, changed, pending admission
	Detail   string `json:"detail,omitempty"`
}

// overviewMinutes is how many minutes the overview counts.
const overviewMinutes = 30

func (c *Console) serveOverview(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	o := overview{Time: c.now().UTC(), Upstreams: []upstreamHealth{}, Sessions: []inventory.Session{}, PendingApprovals: []*approval.Approval{}, Drift: []driftAlert{}}
	if inv := c.opts.Inventory; inv != nil {
		g, err := inv.Graph(ctx)
		if err != nil {
			c.internal(w, r, "reading the inventory", err)
			return
		}
		for _, u := range g.Upstreams {
			h := upstreamHealth{Name: u.Name, Transport: u.Transport, State: "unknown", Tools: len(u.Tools)}
			if s := u.State; s != nil {
				h.State, h.Error = s.State, s.LastError
				if !s.UpdatedAt.IsZero() {
					h.Since = s.UpdatedAt.UTC().Format(time.RFC3339)
				}
			}
			o.Upstreams = append(o.Upstreams, h)
		}
		o.Sessions = append(o.Sessions, g.Sessions...)
		o.Tasks = len(g.Tasks)
		o.Drift = drift(g)
	}
	if st := c.opts.AuditStore; st != nil {
		pm, err := perMinute(ctx, st, c.now(), overviewMinutes)
		if err != nil {
			c.internal(w, r, "reading the audit log", err)
			return
		}
		o.PerMinute = pm
	}
	if svc := c.opts.Approvals; svc != nil {
		p, err := svc.Pending(ctx)
		if err != nil {
			c.internal(w, r, "reading pending approvals", err)
			return
		}
		o.PendingApprovals = append(o.PendingApprovals, p...)
	}
	if e := c.opts.Policy; e != nil {
		o.PolicyVersion = e.Version()
	}
	writeJSON(w, http.StatusOK, o)
}

// drift lists the clients and tools of g that wait for an
// administrator: clients pending admission or whose trust objects
// changed, tools new (held) or changed.
func drift(g *inventory.Graph) []driftAlert {
	out := []driftAlert{}
	for _, cl := range g.Clients {
		switch {
		case cl.Revoked || cl.Admission == store.ClientRefused:
		case cl.Admission == store.ClientPending:
			out = append(out, driftAlert{Kind: "client", ID: cl.ID, State: "pending admission", Detail: cl.Name})
		case cl.Flagged:
			var what []string
			for _, d := range cl.Drift {
				what = append(what, d.What)
			}
			out = append(out, driftAlert{Kind: "client", ID: cl.ID, State: "changed", Detail: "changed: " + cmp.Or(strings.Join(what, ", "), "metadata")})
		}
	}
	for _, u := range g.Upstreams {
		for _, t := range u.Tools {
			switch st := inventory.ApprovalState(t); st {
			case "pending", "changed":
				out = append(out, driftAlert{Kind: "tool", ID: u.Name + "/" + t.Name, Upstream: u.Name, Tool: t.Name, State: st, Detail: "sha256 " + t.Digest})
			}
		}
	}
	return out
}

// inventoryKinds are the values of GET /api/inventory?kind=, as
// `mcpgate inventory list --kind` takes them.
var inventoryKinds = []string{"users", "clients", "upstreams", "sessions", "grants", "tasks", "credentials", "idps", "revocations"}

func (c *Console) serveInventory(w http.ResponseWriter, r *http.Request) {
	inv := c.opts.Inventory
	if inv == nil {
		c.unavailable(w, "the inventory")
		return
	}
	kind := r.URL.Query().Get("kind")
	if kind != "" && !slices.Contains(inventoryKinds, kind) {
		c.fail(w, http.StatusBadRequest, fmt.Sprintf("unknown kind %q (want one of %s)", kind, strings.Join(inventoryKinds, ", ")))
		return
	}
	g, err := inv.Graph(r.Context())
	if err != nil {
		c.internal(w, r, "reading the inventory", err)
		return
	}
	var v any = g
	switch kind {
	case "users":
		v = g.Users
	case "clients":
		v = g.Clients
	case "upstreams":
		v = g.Upstreams
	case "sessions":
		v = g.Sessions
	case "grants":
		v = g.Grants
	case "tasks":
		v = g.Tasks
	case "credentials":
		v = g.Credentials
	case "idps":
		v = g.IdentityProviders
	case "revocations":
		v = g.Revocations
	}
	writeJSON(w, http.StatusOK, v)
}

// servePath is GET /api/inventory/path?kind=K&id=ID: the walk of
// `mcpgate inventory show KIND ID`.
func (c *Console) servePath(w http.ResponseWriter, r *http.Request) {
	inv := c.opts.Inventory
	if inv == nil {
		c.unavailable(w, "the inventory")
		return
	}
	q := r.URL.Query()
	g, err := inv.Graph(r.Context())
	if err != nil {
		c.internal(w, r, "reading the inventory", err)
		return
	}
	n, err := g.Walk(q.Get("kind"), q.Get("id"))
	if err != nil {
		c.fail(w, http.StatusNotFound, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, n)
}

// revocation is the body of POST /api/revoke and /api/reinstate.
type revocation struct {
	Kind   string `json:"kind"`
	ID     string `json:"id"`
	Reason string `json:"reason,omitempty"`
}

// revocationKinds are the kinds of identity that can be revoked.
var revocationKinds = []string{store.RevokeUser, store.RevokeClient, store.RevokeGrant, store.RevokeUpstreamCredential, store.RevokeIdP}

func (c *Console) readRevocation(w http.ResponseWriter, r *http.Request) (*revocation, bool) {
	if !c.allowed(w, r, RoleAdministrator, "revoking and reinstating") {
		return nil, false
	}
	if c.opts.Revoker == nil {
		c.unavailable(w, "revocation")
		return nil, false
	}
	var b revocation
	if !c.readJSON(w, r, &b) {
		return nil, false
	}
	if _, err := inventory.ParseKind(b.Kind, b.ID); err != nil {
		c.fail(w, http.StatusBadRequest, fmt.Sprintf("%v (kind is one of %s)", err, strings.Join(revocationKinds, ", ")))
		return nil, false
	}
	if len(b.Reason) > 2000 {
		c.fail(w, http.StatusBadRequest, "the reason is longer than 2000 bytes")
		return nil, false
	}
	return &b, true
}

// serveRevoke revokes an identity with the gateway's own revoker, as
// `mcpgate revoke KIND ID` does from the database (the running gateway
// ends the identity's sessions, tasks and upstream access at once), and
// records admin.revocation.
func (c *Console) serveRevoke(w http.ResponseWriter, r *http.Request) {
	b, ok := c.readRevocation(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	res, err := c.opts.Revoker.RevokeWithReason(ctx, b.Kind, b.ID, by(ctx), b.Reason)
	if res == nil && err != nil {
		c.fail(w, http.StatusInternalServerError, "revocation failed: "+err.Error())
		return
	}
	rec := &audit.Record{Action: cliaudit.ActionRevocation, Target: b.Kind + ":" + b.ID,
		Error: fmt.Sprintf("%s %s revoked; reason %q (recorded as by %q)", b.Kind, b.ID, b.Reason, by(ctx))}
	if b.Kind == store.RevokeUpstreamCredential {
		rec.Upstream, _, _ = strings.Cut(b.ID, "/")
	}
	if err != nil {
		rec.Outcome, rec.Error = audit.OutcomeError, rec.Error+"; incomplete: "+err.Error()
	}
	aerr := c.record(ctx, rec)
	out := map[string]any{"revoked": b.Kind + ":" + b.ID, "summary": res.Summary(), "notes": res.Notes()}
	switch {
	case err != nil:
		out["error"] = "revocation incomplete: " + err.Error()
		writeJSON(w, http.StatusInternalServerError, out)
	case aerr != nil:
		out["error"] = "revoked, but not recorded in the audit log: " + aerr.Error()
		writeJSON(w, http.StatusInternalServerError, out)
	default:
		writeJSON(w, http.StatusOK, out)
	}
}

// serveReinstate lifts a revocation, as `mcpgate reinstate KIND ID`
// does, and records admin.revocation.lifted.
func (c *Console) serveReinstate(w http.ResponseWriter, r *http.Request) {
	b, ok := c.readRevocation(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	if err := c.opts.Revoker.Reinstate(ctx, b.Kind, b.ID, by(ctx)); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			c.fail(w, http.StatusNotFound, fmt.Sprintf("%s %q is not revoked", b.Kind, b.ID))
			return
		}
		c.internal(w, r, "reinstating", err)
		return
	}
	rec := &audit.Record{Action: cliaudit.ActionRevocationLifted, Target: b.Kind + ":" + b.ID,
		Error: fmt.Sprintf("revocation of %s %s lifted (recorded as by %q)", b.Kind, b.ID, by(ctx))}
	if b.Kind == store.RevokeUpstreamCredential {
		rec.Upstream, _, _ = strings.Cut(b.ID, "/")
	}
	if err := c.record(ctx, rec); err != nil {
		c.fail(w, http.StatusInternalServerError, "reinstated, but not recorded in the audit log: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"reinstated": b.Kind + ":" + b.ID})
}

// serveAudit is GET /api/audit: a search of the newest records.
func (c *Console) serveAudit(w http.ResponseWriter, r *http.Request) {
	st := c.opts.AuditStore
	if st == nil {
		c.unavailable(w, "the audit log")
		return
	}
	q, err := parseAuditQuery(r)
	if err != nil {
		c.fail(w, http.StatusBadRequest, err.Error())
		return
	}
	res, err := searchAudit(r.Context(), st, q)
	if err != nil {
		c.internal(w, r, "reading the audit log", err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// parseAuditQuery reads the query parameters principal, tool, action,
// decision, outcome, since, until (RFC 3339), limit and scan.
func parseAuditQuery(r *http.Request) (*auditQuery, error) {
	v := r.URL.Query()
	q := &auditQuery{Principal: v.Get("principal"), Tool: v.Get("tool"), Action: v.Get("action"),
		Decision: v.Get("decision"), Outcome: v.Get("outcome")}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if s := v.Get(f.name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return nil, fmt.Errorf("%s: want an RFC 3339 time such as 2026-01-02T15:04:05Z: %v", f.name, err)
			}
			*f.dst = t
		}
	}
	for _, f := range []struct {
		name string
		dst  *int
		max  int
	}{{"limit", &q.Limit, MaxAuditLimit}, {"scan", &q.Scan, MaxAuditScan}} {
		if s := v.Get(f.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > f.max {
				return nil, fmt.Errorf("%s: want a number from 1 to %d", f.name, f.max)
			}
			*f.dst = n
		}
	}
	return q, nil
}

// verifyResult is the answer of POST /api/audit/verify.
type verifyResult struct {
	OK                bool           `json:"ok"`
	Records           int            `json:"records"`
	Checkpoints       int            `json:"checkpoints"`
	LastSeq           uint64         `json:"last_seq"`
	LastCheckpointSeq uint64         `json:"last_checkpoint_seq"`
	Unanchored        uint64         `json:"unanchored"`
	SignaturesChecked bool           `json:"signatures_checked"`
	KeyID             string         `json:"key_id,omitempty"`
	FirstBad          *audit.Problem `json:"first_bad,omitempty"`
	Message           string         `json:"message"`
}

// serveVerify checks the whole chain and its checkpoints with the log's
// public key (audit.Verify, as `mcpgate audit verify` does) and records
// the result.
func (c *Console) serveVerify(w http.ResponseWriter, r *http.Request) {
	st := c.opts.AuditStore
	if st == nil {
		c.unavailable(w, "the audit log")
		return
	}
	ctx := r.Context()
	var res verifyResult
	var pub []byte
	if l := c.opts.Audit; l != nil {
		if k := l.PublicKey(); k != nil {
			pub = k
			res.KeyID = audit.KeyID(k)
		}
	}
	rep, err := audit.Verify(ctx, st, pub)
	if err != nil {
		c.internal(w, r, "verifying the audit log", err)
		return
	}
	res = verifyResult{OK: rep.OK, Records: rep.Records, Checkpoints: rep.Checkpoints, LastSeq: rep.LastSeq,
		LastCheckpointSeq: rep.LastCheckpointSeq, Unanchored: rep.Unanchored, SignaturesChecked: rep.SignaturesChecked,
		KeyID: res.KeyID, FirstBad: rep.FirstBad}
	rec := &audit.Record{Action: ActionAuditVerified}
	if rep.FirstBad != nil {
		res.Message = "audit log FAILED verification: " + rep.FirstBad.String()
		rec.Outcome = audit.OutcomeError
	} else {
		res.Message = fmt.Sprintf("audit log OK: %d records, %d checkpoints", rep.Records, rep.Checkpoints)
		if rep.LastCheckpointSeq > 0 {
			res.Message += fmt.Sprintf(", last signed checkpoint at record %d", rep.LastCheckpointSeq)
		}
		if rep.Unanchored > 0 {
			res.Message += fmt.Sprintf("; the last %d records are not yet covered by a signed checkpoint", rep.Unanchored)
		}
	}
	rec.Error = res.Message
	c.record(ctx, rec)
	writeJSON(w, http.StatusOK, res)
}

// policies is GET /api/policies.
type policies struct {
	Configured bool     `json:"configured"`
	Version    string   `json:"version,omitempty"`
	Count      int      `json:"count"`
	Paths      []string `json:"paths"`
	// History is the records of the audit log that name the policy
	// version in force, newest first: config.loaded at each start,
	// config.reload at each configuration reload, policy.changed at each
	// reload of the policy files (within the search bound).
	History []*audit.Record `json:"history"`
	// OnDisk is the policy files as they are now, with their version.
	OnDisk *onDisk `json:"on_disk"`
}

func (c *Console) servePolicies(w http.ResponseWriter, r *http.Request) {
	p := policies{Paths: slices.Clone(c.opts.PolicyPaths), History: []*audit.Record{}}
	if p.Paths == nil {
		p.Paths = []string{}
	}
	if e := c.opts.Policy; e != nil {
		p.Configured, p.Version, p.Count = true, e.Version(), e.Len()
		p.OnDisk = readPolicyFiles(c.opts.PolicyPaths)
	}
	if st := c.opts.AuditStore; st != nil {
		res, err := searchAudit(r.Context(), st, &auditQuery{prefixes: []string{"policy.", "config."}, Limit: 50, Scan: MaxAuditScan})
		if err != nil {
			c.internal(w, r, "reading the audit log", err)
			return
		}
		p.History = res.Records
	}
	writeJSON(w, http.StatusOK, p)
}

// dryRun is the body of POST /api/policies/dry-run: the request to
// decide, as `mcpgate policy test` takes it.
type dryRun struct {
	// Principal is a user name; Client, ClientName and Registration the
	// client acting for them (registration "m2m" and no principal for a
	// client on its own).
	Principal    string `json:"principal"`
	Client       string `json:"client,omitempty"`
	ClientName   string `json:"client_name,omitempty"`
	Registration string `json:"registration,omitempty"`
	// Groups, Roles and Email are the user's attributes; a local user's
	// are read from the store when none are given.
	Groups []string `json:"groups,omitempty"`
	Roles  []string `json:"roles,omitempty"`
	Email  string   `json:"email,omitempty"`
	// Action is the MCP method (default tools/call).
	Action string `json:"action,omitempty"`
	// Tool is "<upstream>/<name>" of a tool, prompt or completion;
	// Upstream and URI name a resource (resources/read). Resource, when
	// set, takes their place with any resource of `mcpgate policy test
	// --resource` (an entity such as Task::"id", or the bare form the
	// action implies).
	Tool     string `json:"tool,omitempty"`
	Resource string `json:"resource,omitempty"`
	Upstream string `json:"upstream,omitempty"`
	URI      string `json:"uri,omitempty"`
	// Arguments is a JSON object.
	Arguments jsontext.Value `json:"arguments,omitempty"`
	// Scopes are the token's scopes; SourceIP the caller's address.
	Scopes   []string `json:"scopes,omitempty"`
	SourceIP string   `json:"source_ip,omitempty"`
}

// dryRunResult is the decision, as `mcpgate policy test --json` prints
// it.
type dryRunResult struct {
	Decision        string   `json:"decision"`
	RequireApproval bool     `json:"require_approval"`
	Reason          string   `json:"reason"`
	Policies        []string `json:"policies"`
	Errors          []string `json:"errors,omitempty"`
	PolicyVersion   string   `json:"policy_version"`
}

// serveDryRun decides a request with the policies in force
// (policy.Engine.Decide) without acting on it.
func (c *Console) serveDryRun(w http.ResponseWriter, r *http.Request) {
	e := c.opts.Policy
	if e == nil {
		c.unavailable(w, "policy")
		return
	}
	var b dryRun
	if !c.readJSON(w, r, &b) {
		return
	}
	req, err := c.policyRequest(r, &b)
	if err != nil {
		c.fail(w, http.StatusBadRequest, err.Error())
		return
	}
	d := e.Decide(req)
	out := dryRunResult{Decision: audit.DecisionDeny, RequireApproval: d.RequireApproval, Reason: d.Reason,
		Policies: d.Policies, Errors: d.Errors, PolicyVersion: d.PolicyVersion}
	if d.Allow {
		out.Decision = audit.DecisionAllow
		if d.RequireApproval {
			out.Decision = audit.DecisionApprovalRequired
		}
	}
	if out.Policies == nil {
		out.Policies = []string{}
	}
	writeJSON(w, http.StatusOK, out)
}

// policyRequest builds the policy request of a dry run with
// policycmd.BuildRequest, as `mcpgate policy test` does; a local user's
// groups, roles and email are read from the store when the body gives
// none.
func (c *Console) policyRequest(r *http.Request, b *dryRun) (*policy.Request, error) {
	if b.Principal == "" && b.Client == "" {
		return nil, errors.New("name a principal (a user) or a client")
	}
	req, err := policycmd.BuildRequest(b.spec())
	if err != nil {
		return nil, err
	}
	p := &req.Principal
	if st := c.opts.Store; st != nil && p.User != "" && b.Groups == nil && b.Roles == nil && b.Email == "" {
		if u, err := st.GetUser(r.Context(), p.User); err == nil {
			p.Groups, p.Roles, p.Email = u.Groups, u.Roles, u.Email
		}
	}
	return req, nil
}

// spec is the dry run as policycmd.RequestSpec: the resource is
// Resource, else URI (with Upstream), else Tool; the action defaults to
// tools/call.
func (b *dryRun) spec() *policycmd.RequestSpec {
	return &policycmd.RequestSpec{
		Principal: b.Principal, Client: b.Client, ClientName: b.ClientName, Registration: b.Registration,
		Groups: b.Groups, Roles: b.Roles, Email: b.Email,
		Action:   cmp.Or(b.Action, "tools/call"),
		Resource: cmp.Or(b.Resource, b.URI, b.Tool), Upstream: b.Upstream,
		Arguments: b.Arguments, Scopes: b.Scopes, SourceIP: b.SourceIP,
	}
}

// pendingApproval is an approval with its arguments as approvers read
// them (approval.ArgumentsText): exactly what the approval is bound to,
// with invisible characters escaped, so that nothing is lost by a
// browser's JSON parsing (large numbers) or hidden on the page.
type pendingApproval struct {
	*approval.Approval `json:",inline"`
	ArgumentsText      string `json:"arguments_text"`
	ArgumentsNote      string `json:"arguments_note,omitempty"`
}

func withText(as []*approval.Approval) []pendingApproval {
	out := make([]pendingApproval, 0, len(as))
	for _, a := range as {
		p := pendingApproval{Approval: a}
		p.ArgumentsText, p.ArgumentsNote = approval.ArgumentsText(a.Request.Arguments)
		out = append(out, p)
	}
	return out
}

// approvalsView is GET /api/approvals.
type approvalsView struct {
	Pending []pendingApproval `json:"pending"`
	// History is the approval.decided records of the audit log, newest
	// first (at most 100).
	History []*audit.Record `json:"history"`
}

func (c *Console) serveApprovals(w http.ResponseWriter, r *http.Request) {
	svc := c.opts.Approvals
	if svc == nil {
		c.unavailable(w, "approvals")
		return
	}
	v := approvalsView{History: []*audit.Record{}}
	p, err := svc.Pending(r.Context())
	if err != nil {
		c.internal(w, r, "reading pending approvals", err)
		return
	}
	v.Pending = withText(p)
	if st := c.opts.AuditStore; st != nil {
		res, err := searchAudit(r.Context(), st, &auditQuery{Action: approval.ActionDecided, Limit: 100})
		if err != nil {
			c.internal(w, r, "reading the audit log", err)
			return
		}
		v.History = res.Records
	}
	writeJSON(w, http.StatusOK, v)
}

func (c *Console) serveApproval(w http.ResponseWriter, r *http.Request) {
	svc := c.opts.Approvals
	if svc == nil {
		c.unavailable(w, "approvals")
		return
	}
	a, err := svc.Get(r.Context(), r.PathValue("id"))
	if errors.Is(err, approval.ErrNotFound) {
		c.fail(w, http.StatusNotFound, "no approval request with this id")
		return
	}
	if err != nil {
		c.internal(w, r, "reading the approval", err)
		return
	}
	writeJSON(w, http.StatusOK, withText([]*approval.Approval{a})[0])
}

// decision is the body of POST /api/approvals/{id}.
type decision struct {
	Decision string `json:"decision"` // approve or deny
	Note     string `json:"note,omitempty"`
}

// serveDecide records an approver's decision (approval.Service.Decide,
// as the approval pages do; it records approval.decided).
func (c *Console) serveDecide(w http.ResponseWriter, r *http.Request) {
	if !c.allowed(w, r, RoleApprover, "deciding approvals") {
		return
	}
	svc := c.opts.Approvals
	if svc == nil {
		c.unavailable(w, "approvals")
		return
	}
	var b decision
	if !c.readJSON(w, r, &b) {
		return
	}
	var approve bool
	switch b.Decision {
	case "approve":
		approve = true
	case "deny":
	default:
		c.fail(w, http.StatusBadRequest, `decision must be "approve" or "deny"`)
		return
	}
	note := strings.TrimSpace(b.Note)
	if len(note) > approval.MaxNoteLength {
		c.fail(w, http.StatusBadRequest, fmt.Sprintf("the note is longer than %d bytes", approval.MaxNoteLength))
		return
	}
	ctx := r.Context()
	id := r.PathValue("id")
	err := svc.Decide(ctx, id, userOf(ctx).Name, approve, note)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, map[string]string{"id": id, "decision": b.Decision})
	case errors.Is(err, approval.ErrNotFound):
		c.fail(w, http.StatusNotFound, "no approval request with this id")
	case errors.Is(err, approval.ErrSelfApproval):
		c.fail(w, http.StatusForbidden, "you cannot decide on your own request; another approver must")
	case errors.Is(err, approval.ErrExpired):
		c.fail(w, http.StatusGone, "the request expired before a decision was made")
	case errors.Is(err, approval.ErrDecided):
		c.fail(w, http.StatusConflict, "someone already decided on this request")
	default:
		c.internal(w, r, "recording the decision", err)
	}
}

// trustView is GET /api/trust: what waits for an administrator.
type trustView struct {
	Waiting []driftAlert       `json:"waiting"`
	Clients []inventory.Client `json:"clients"`
}

func (c *Console) serveTrust(w http.ResponseWriter, r *http.Request) {
	inv := c.opts.Inventory
	if inv == nil {
		c.unavailable(w, "the inventory")
		return
	}
	g, err := inv.Graph(r.Context())
	if err != nil {
		c.internal(w, r, "reading the inventory", err)
		return
	}
	v := trustView{Waiting: drift(g), Clients: []inventory.Client{}}
	for _, cl := range g.Clients {
		if cl.Admission == store.ClientPending || cl.Flagged {
			v.Clients = append(v.Clients, cl)
		}
	}
	writeJSON(w, http.StatusOK, v)
}

// toolApproval is the body of POST /api/trust/tools.
type toolApproval struct {
	Upstream string `json:"upstream"`
	Tool     string `json:"tool"`
}

// serveApproveTool approves a tool's current definition
// (inventory.ApproveTool, as `mcpgate inventory approve-tool`) and
// records admin.tool.approved.
func (c *Console) serveApproveTool(w http.ResponseWriter, r *http.Request) {
	if !c.allowed(w, r, RoleAdministrator, "approving tools") {
		return
	}
	inv := c.opts.Inventory
	if inv == nil {
		c.unavailable(w, "the inventory")
		return
	}
	var b toolApproval
	if !c.readJSON(w, r, &b) {
		return
	}
	ctx := r.Context()
	if err := inv.ApproveTool(ctx, b.Upstream, b.Tool, by(ctx)); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			c.fail(w, http.StatusNotFound, fmt.Sprintf("upstream %s has no tool %q in the inventory", b.Upstream, b.Tool))
			return
		}
		c.internal(w, r, "approving the tool", err)
		return
	}
	detail := "tool definition approved"
	if ist, ok := c.opts.Store.(store.InventoryStore); ok {
		if tr, err := ist.GetToolRecord(ctx, b.Upstream, b.Tool); err == nil {
			detail += ": sha256 " + tr.Digest
		}
	}
	detail += fmt.Sprintf(" (recorded as by %q)", by(ctx))
	if err := c.record(ctx, &audit.Record{Action: cliaudit.ActionToolApproved, Upstream: b.Upstream, Target: b.Upstream + "/" + b.Tool, Error: detail}); err != nil {
		c.fail(w, http.StatusInternalServerError, "approved, but not recorded in the audit log: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"approved": b.Upstream + "/" + b.Tool, "detail": detail})
}

// clientDecision is the body of POST /api/trust/clients.
type clientDecision struct {
	ClientID string `json:"client_id"`
	Decision string `json:"decision"` // approve or refuse
	Reason   string `json:"reason,omitempty"`
}

// serveDecideClient approves or refuses a client, as `mcpgate client
// approve|refuse` does: the admission status is stored; approving also
// approves its current trust objects in the inventory (as `inventory
// approve-client`); refusing revokes its live tokens. It records
// admin.client.approved or admin.client.refused.
func (c *Console) serveDecideClient(w http.ResponseWriter, r *http.Request) {
	if !c.allowed(w, r, RoleAdministrator, "approving and refusing clients") {
		return
	}
	st := c.opts.Store
	if st == nil {
		c.unavailable(w, "the identity store")
		return
	}
	var b clientDecision
	if !c.readJSON(w, r, &b) {
		return
	}
	status := store.ClientApproved
	switch b.Decision {
	case "approve":
	case "refuse":
		status = store.ClientRefused
	default:
		c.fail(w, http.StatusBadRequest, `decision must be "approve" or "refuse"`)
		return
	}
	ctx := r.Context()
	who := by(ctx)
	d, err := inventory.DecideClient(ctx, st, c.opts.Inventory, b.ClientID, status, who, b.Reason, c.now)
	if errors.Is(err, store.ErrNotFound) {
		c.fail(w, http.StatusNotFound, fmt.Sprintf("no client %q", b.ClientID))
		return
	}
	if err != nil {
		c.internal(w, r, "recording the decision", err)
		return
	}
	actErr, detail := d.Err, d.Detail
	rec := cliaudit.ClientDecisionRecord(b.ClientID, status, detail, who, actErr != nil)
	aerr := c.record(ctx, rec)
	switch {
	case actErr != nil:
		c.fail(w, http.StatusInternalServerError, actErr.Error())
	case aerr != nil:
		c.fail(w, http.StatusInternalServerError, "done, but not recorded in the audit log: "+aerr.Error())
	default:
		writeJSON(w, http.StatusOK, map[string]string{"client_id": b.ClientID, "status": status, "detail": detail})
	}
}
