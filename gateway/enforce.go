package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/approval"
	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/policy"
	"github.com/mcpgate/mcpgate/principal"
	"github.com/mcpgate/mcpgate/store"
)

// CodePolicyDenied is the JSON-RPC error code of a request the gateway's
// policy refused. Its data names the deciding policies and the policy set
// version.
const CodePolicyDenied = -32003

// CodeRateLimited is the JSON-RPC error code of a request over a rate
// limit. Its data says when to retry (retryAfterMs).
const CodeRateLimited = -32005

// CodeControlFailed is the JSON-RPC error code of a request the gateway
// refused because a control could not do its part (the audit log could not
// record the decision, say): the gateway fails closed.
const CodeControlFailed = -32004

// enforced reports whether any control is configured.
func (g *Gateway) enforced() bool {
	return g.opts.Policy != nil || g.opts.Audit != nil || g.opts.Limiter != nil
}

// policyPrincipal describes a downstream session to the policy engine.
func (g *Gateway) policyPrincipal(ds *downstreamSession) policy.Principal {
	id := ds.identity
	p := policy.Principal{User: ds.principal, Session: ds.id(), Client: policy.Client{ID: ds.clientID, Name: ds.client},
		Groups: id.groups, Roles: id.roles, Email: id.email, Name: id.name}
	kind := subjectKind(ds.principal)
	switch {
	case kind == principal.KindClient:
		// A token of a client acting for itself (client credentials).
		p.User = ""
		p.Client.Registration = "m2m"
	case ds.principal == AnonymousPrincipal:
		p.User = ""
	}
	if p.Client.Registration == "" {
		p.Client.Registration = ds.registration
	}
	if kind == principal.KindFederated || id.idp != "" {
		// Enterprise users: by ID-JAG or sign-in, named by the
		// provider's sub or by a verified email.
		p.Client.Registration = "enterprise"
		p.IdP = g.idpOf(ds.principal)
		if p.IdP == "" && slices.Contains(g.configuredIssuers(), id.idp) {
			p.IdP = id.idp
		}
	}
	return p
}

// decide asks the policy engine; without one, everything is allowed.
func (g *Gateway) decide(ds *downstreamSession, action string, res policy.Resource, args jsontext.Value) policy.Decision {
	return g.decideReq(ds, action, res, args, false, nil)
}

// probe asks whether the action could be allowed on res with some
// arguments: the request has no arguments record (see policy.Request.Probe).
func (g *Gateway) probe(ds *downstreamSession, action string, res policy.Resource) policy.Decision {
	return g.decideReq(ds, action, res, nil, true, nil)
}

func (g *Gateway) decideReq(ds *downstreamSession, action string, res policy.Resource, args jsontext.Value, probe bool, task *policy.TaskContext) policy.Decision {
	if g.opts.Policy == nil {
		return policy.Decision{Allow: true}
	}
	return g.opts.Policy.Decide(&policy.Request{
		Probe:          probe,
		Principal:      g.policyPrincipal(ds),
		Action:         action,
		Resource:       res,
		Arguments:      args,
		Scopes:         ds.scopes,
		Time:           time.Now(),
		SourceAddr:     ds.sourceAddr,
		ClientMetadata: ds.clientMeta,
		Task:           task,
	})
}

type sourceAddrKey struct{}

type transportKey struct{}

// withTransport marks the request context with the transport a request
// came by (name) and the caller's IP address (for policies on
// context.source_ip), with one copy of the request.
func withTransport(name string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), transportKey{}, name)
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			ctx = context.WithValue(ctx, sourceAddrKey{}, host)
		}
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// downstreamTransport returns the transport a request came by: the HTTP
// ones mark it (withTransport); the server run on anything else is run on
// a stream, as over stdio.
func downstreamTransport(ctx context.Context) string {
	if s, _ := ctx.Value(transportKey{}).(string); s != "" {
		return s
	}
	return store.TransportStdio
}

func sourceAddr(ctx context.Context) string {
	s, _ := ctx.Value(sourceAddrKey{}).(string)
	return s
}

// deniedError is the error a client gets for a denied request.
func deniedError(action string, res policy.Resource, d policy.Decision) error {
	data, _ := json.Marshal(struct {
		Policies      []string `json:"policies,omitempty"`
		PolicyVersion string   `json:"policyVersion,omitempty"`
		Reason        string   `json:"reason,omitempty"`
	}{d.Policies, d.PolicyVersion, d.Reason})
	msg := fmt.Sprintf("%s of %s %q is denied by policy", action, res.Kind, res.Upstream+"/"+res.Name)
	if len(d.Policies) > 0 {
		msg += " " + strings.Join(d.Policies, ", ")
	}
	if d.Reason != "" {
		msg += ": " + d.Reason
	}
	return &jsonrpc.Error{Code: CodePolicyDenied, Message: msg, Data: data}
}

// auditAppend records an audit record; failure to record fails the
// request (the audit log itself decides whether to fail open).
func (g *Gateway) auditAppend(ctx context.Context, r *audit.Record) error {
	ctx, appended := g.noteRecord(ctx, r) // metrics and traces (tracing.go)
	if g.opts.Audit == nil {
		return nil
	}
	err := g.opts.Audit.Append(context.WithoutCancel(ctx), r)
	appended(err)
	if err != nil {
		return &jsonrpc.Error{Code: CodeControlFailed, Message: "the gateway could not record this request in its audit log, so it was not forwarded: " + err.Error()}
	}
	return nil
}

// checkApproval lets a call that needs approval through only with an
// approved, unused approval for exactly this principal, tool, arguments and
// policy version. Otherwise it opens (or reuses) an approval request and
// sends the caller to its page with a URL-mode elicitation error.
func (g *Gateway) checkApproval(ctx context.Context, ds *downstreamSession, res policy.Resource, args jsontext.Value, d policy.Decision, rec *audit.Record) error {
	svc := g.opts.Approvals
	if svc == nil {
		rec.Outcome, rec.Phase = "denied", "decided"
		_ = g.auditAppend(ctx, rec)
		return &jsonrpc.Error{Code: CodePolicyDenied, Message: fmt.Sprintf("%s %q needs approval, and this gateway has no approval service: refused", res.Kind, res.Upstream+"/"+res.Name)}
	}
	req := &approval.Request{
		Principal: ds.principal, Client: ds.clientID, Session: ds.id(),
		Upstream: res.Upstream, Tool: res.Upstream + "/" + res.Name, Arguments: args,
		PolicyVersion: d.PolicyVersion, Policies: d.Policies, Reason: d.Reason,
	}
	if a, err := svc.Consume(ctx, req); err == nil {
		// The call's own records name the approval it used; the
		// approver's decision is the approval.decided record with that
		// approval id as target.
		rec.Error = fmt.Sprintf("approved by %q: approval %s, binding %s", a.Approver, a.ID, a.Binding)
		return nil
	} else if errors.Is(err, approval.ErrDenied) {
		rec.Outcome, rec.Phase = "denied", "decided"
		_ = g.auditAppend(ctx, rec)
		return &jsonrpc.Error{Code: CodePolicyDenied, Message: fmt.Sprintf("the approver denied this call of %q", req.Tool)}
	}
	a, err := svc.Request(ctx, req)
	if err != nil {
		return &jsonrpc.Error{Code: CodeControlFailed, Message: "opening an approval request failed: " + err.Error()}
	}
	rec.Outcome, rec.Phase = "approval_requested", "decided"
	rec.Error = fmt.Sprintf("approval %s requested, binding %s", a.ID, a.Binding)
	if err := g.auditAppend(ctx, rec); err != nil {
		return err
	}
	data, _ := json.Marshal(&mcp.URLElicitationRequiredErrorData{Elicitations: []*mcp.ElicitParams{{
		Mode:          mcp.ElicitationModeURL,
		ElicitationID: a.ID,
		URL:           a.URL,
		Message:       fmt.Sprintf("Calling %s needs approval. An approver can approve it at this page; then call it again with the same arguments.", req.Tool),
	}}})
	return &jsonrpc.Error{Code: mcp.CodeURLElicitationRequired, Message: "this call needs approval", Data: data}
}

// ApprovalDecided tells the principal's sessions that the approval they
// were sent to was decided (as notifications/elicitation/complete), so
// that they can retry. Wire it to approval.Options.OnDecision.
func (g *Gateway) ApprovalDecided(a *approval.Approval) {
	params, err := withString(nil, "elicitationId", a.ID)
	if err != nil {
		return
	}
	g.broadcast(a.Request.Principal, mcp.NotificationElicitationComplete, params, nil)
}

// visible reports whether the principal may see a catalogue item: policy
// lets it list the item (the list action, the item, no arguments), and
// lets it act on the item with some arguments (the item's call action,
// asked without an arguments record: a denial that depends on arguments
// is indeterminate, and leaves the item visible). So what a
// principal sees is what it can call, and what it cannot call in any way
// it does not see.
func (g *Gateway) visible(ds *downstreamSession, k itemKind, rt route) bool {
	if g.opts.Policy == nil {
		return true
	}
	res := policy.Resource{Kind: kindInfo[k].policyKind, Upstream: rt.up.cfg.Name, Name: rt.name}
	if !g.decide(ds, kindInfo[k].listMethod, res, nil).Allow {
		return false
	}
	act := kindInfo[k].callMethod
	if act == "" {
		return true
	}
	d := g.probe(ds, act, res)
	return d.Allow || d.Indeterminate
}

// idpOf names the trusted identity provider a federated subject comes
// from, or "".
func (g *Gateway) idpOf(subject string) string {
	return principal.Subject(subject).IdP(g.configuredIssuers())
}
