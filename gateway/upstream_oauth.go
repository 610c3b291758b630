package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/gateway/upstreamauth"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/store"
)

// OAuth upstream credentials ("oauth_client_credentials", "oauth_user"
// and "enterprise") are package upstreamauth's. This file connects it to the
// gateway: its options, what it is told of an upstream, what the gateway
// does when a user has authorized it, and routing a name that a per-user
// upstream may serve once authorized.

// newUpstreamAuth prepares OAuth upstream credentials.
func (g *Gateway) newUpstreamAuth() *upstreamauth.Service {
	opts := &upstreamauth.Options{
		Logger:     g.logger,
		HTTPClient: g.opts.HTTPClient,
		Done:       g.done,
		Hooks:      upstreamauth.Hooks{OnAuthorized: g.upstreamAuthorized, OnExchange: g.upstreamExchange},
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = g.upstreamClient
	}
	for _, u := range g.upstreamList() {
		opts.PerUser = opts.PerUser || u.perUser()
	}
	g.perUserAuth = opts.PerUser
	if !opts.PerUser {
		return upstreamauth.New(opts)
	}
	opts.KeyPath = g.opts.UpstreamTokenKey
	opts.Tokens = g.opts.UpstreamTokens
	opts.BaseURL = strings.TrimRight(g.cfg.PublicURL, "/")
	if opts.BaseURL == "" && g.cfg.Listen != "" {
		opts.BaseURL = "http://" + g.cfg.Listen
	}
	switch {
	case g.auth != nil:
		// Under the issuer path, so that the browser sends the
		// authorization server's session cookie, which says who the user
		// is.
		opts.BaseURL = g.auth.Server.Issuer()
		opts.Hooks.BrowserPrincipal = upstreamauth.SessionCookiePrincipal(g.auth.Store)
	case g.opts.Principal == nil:
		// Callers are not authenticated: every browser is theirs.
		opts.Hooks.BrowserPrincipal = func(*http.Request) (string, error) { return AnonymousPrincipal, nil }
	}
	// Otherwise an outside authenticator names callers, and the gateway
	// cannot tell who a browser is: per-user authorization cannot
	// complete.
	return upstreamauth.New(opts)
}

// perUser reports whether the upstream's sessions need each principal's
// own consent.
func (u *upstream) perUser() bool { return upstreamauth.PerUser(u.cfg.Credentials) }

// authUpstream describes u to package upstreamauth.
func (u *upstream) authUpstream() upstreamauth.Upstream {
	return upstreamauth.Upstream{Name: u.cfg.Name, URL: u.cfg.URL, Credentials: u.cfg.Credentials, Logger: u.logger}
}

// oauthHTTPClient returns the HTTP client for an upstream whose
// credentials are OAuth: the gateway's own client credentials, or the
// principal's own consent ("oauth_user"), which callers who are not
// signed in cannot give.
func (u *upstream) oauthHTTPClient(ctx context.Context, base *http.Client, principal string) (*http.Client, error) {
	if u.perUser() && principal == AnonymousPrincipal && u.g.auth != nil {
		return nil, fmt.Errorf("upstream %s: per-user authorization: sessions are opened for signed-in users only", u.cfg.Name)
	}
	return u.g.upAuth.HTTPClient(ctx, u.authUpstream(), base, principal)
}

// upstreamAuthorized lets the principal's sessions use the upstream once
// the principal has authorized the gateway there: the session may connect
// at once, the catalogue is rebuilt, and the clients are told that the
// elicitation is complete and that the tool list changed.
func (g *Gateway) upstreamAuthorized(principal string, up upstreamauth.Upstream, elicitationID string) {
	if u := g.upstreamNamed(up.Name); u != nil {
		u.mu.Lock()
		for _, us := range u.sessions {
			if us.principal != principal {
				continue
			}
			us.mu.Lock()
			us.failures, us.retryAt, us.lastErr = 0, time.Time{}, nil
			us.mu.Unlock()
		}
		u.mu.Unlock()
	}
	g.invalidate(principal)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, ds := range g.sessionsOf(principal) {
		if ds.ss.ProtocolVersion() < mcp.Version20251125 {
			continue
		}
		if err := ds.ss.NotifyElicitationComplete(ctx, elicitationID); err != nil {
			g.logger.Debug("notifying elicitation complete", "error", err)
		}
		g.notify(ctx, ds.ss, mcp.NotificationToolsListChanged, nil)
	}
	g.listeners.notify(principal, mcp.NotificationToolsListChanged, "", nil) // modern clients (modern_listen.go)
}

// upstreamAuthRequired explains a request for an item the principal's
// catalogue does not have: when an upstream that could offer it (its
// prefix matches, for tools and prompts) waits for the principal's
// authorization, the answer is a URLElicitationRequiredError for it;
// otherwise notFound is returned unchanged.
func (g *Gateway) upstreamAuthRequired(ctx context.Context, principal string, k itemKind, key string, notFound error) error {
	var je *jsonrpc.Error
	if !errors.As(notFound, &je) || (je.Code != jsonrpc.CodeInvalidParams && je.Code != jsonrpc.CodeResourceNotFound) {
		return notFound
	}
	var elicitations []*mcp.ElicitParams
	var refused error
	for _, u := range g.upstreamList() {
		if !u.perUser() || (kindInfo[k].prefixed && !strings.HasPrefix(key, u.prefix)) {
			continue
		}
		if _, err := u.session(ctx, principal); err != nil {
			elicitations = append(elicitations, upstreamauth.Elicitations(err)...)
			if je := enterpriseRefusal(err); je != nil && refused == nil {
				refused = je
			}
		}
	}
	if len(elicitations) == 0 {
		if refused != nil {
			return refused
		}
		return notFound
	}
	data, err := json.Marshal(&mcp.URLElicitationRequiredErrorData{Elicitations: elicitations})
	if err != nil {
		return notFound
	}
	return &jsonrpc.Error{Code: jsonrpc.CodeURLElicitationRequired, Message: fmt.Sprintf("%s may be offered by an upstream that needs your authorization", key), Data: data}
}

// enterpriseRefusal returns the JSON-RPC error for a request whose
// upstream session could not be opened because its enterprise
// credentials were refused (by the identity provider, or the upstream's
// authorization server) or cannot be asked for (no identity assertion),
// or nil for other errors. Its message names who refused and their
// decision.
func enterpriseRefusal(err error) *jsonrpc.Error {
	var re *upstreamauth.RefusedError
	var na *upstreamauth.NoAssertionError
	switch {
	case errors.As(err, &re):
		data, _ := json.Marshal(struct {
			Upstream    string `json:"upstream"`
			RefusedBy   string `json:"refusedBy"`
			IdP         string `json:"idp,omitempty"`
			Error       string `json:"error,omitempty"`
			Description string `json:"errorDescription,omitempty"`
		}{re.Upstream, refusedBy(re), re.IdP, re.Code, re.Description})
		return &jsonrpc.Error{Code: CodePolicyDenied, Message: re.Error(), Data: data}
	case errors.As(err, &na):
		return &jsonrpc.Error{Code: CodePolicyDenied, Message: na.Error()}
	}
	return nil
}

func refusedBy(re *upstreamauth.RefusedError) string {
	if re.ByIdP {
		return "identity_provider"
	}
	return "authorization_server"
}

// upstreamExchange records a step of obtaining a principal's enterprise
// token for an upstream in the audit log (action
// "upstream.token_exchange"; target the identity provider's token
// endpoint; outcome asked, granted, refreshed or refused).
func (g *Gateway) upstreamExchange(ctx context.Context, ev upstreamauth.ExchangeEvent) {
	r := &audit.Record{Action: ActionTokenExchange, User: ev.Principal, Upstream: ev.Upstream, Target: ev.IdP, Outcome: ev.Outcome}
	switch ev.Outcome {
	case upstreamauth.ExchangeRefused:
		r.Decision, r.Error = audit.DecisionDeny, ev.Error
	case upstreamauth.ExchangeGranted, upstreamauth.ExchangeRefreshed:
		r.Decision = audit.DecisionAllow
		r.Error = fmt.Sprintf("ID-JAG jti %s; scope %q; expires %s", ev.JTI, ev.Scope, ev.Expiry.UTC().Format(time.RFC3339))
	}
	if err := g.auditAppend(ctx, r); err != nil {
		g.logger.Error("auditing an upstream token exchange", "upstream", ev.Upstream, "error", err)
	}
	g.recordEnterpriseCredential(ctx, ev)
}

// recordEnterpriseCredential keeps the inventory's record of a principal's
// enterprise credential for an upstream in step with an exchange: which
// identity provider vouched, with which ID-JAG, for what scope and until
// when; a refusal removes it.
func (g *Gateway) recordEnterpriseCredential(ctx context.Context, ev upstreamauth.ExchangeEvent) {
	inv := g.opts.Inventory
	if inv == nil {
		return
	}
	var err error
	switch ev.Outcome {
	case upstreamauth.ExchangeGranted, upstreamauth.ExchangeRefreshed:
		idp := ev.Issuer
		if idp == "" {
			idp = ev.IdP
		}
		err = inv.RecordUpstreamCredential(ctx, &store.UpstreamCredential{Principal: ev.Principal, Upstream: ev.Upstream,
			Kind: config.CredentialsEnterprise, Scope: ev.Scope, ExpiresAt: ev.Expiry, LastUsed: time.Now(), IdP: idp, GrantID: ev.JTI})
	case upstreamauth.ExchangeRefused:
		err = inv.ForgetUpstreamCredential(ctx, ev.Principal, ev.Upstream)
	}
	if err != nil {
		g.logger.Warn("recording an enterprise upstream credential in the inventory", "upstream", ev.Upstream, "error", err)
	}
}

// ActionTokenExchange is the audit action of the steps of obtaining a
// principal's enterprise token for an upstream.
const ActionTokenExchange = "upstream.token_exchange"

// KeepAssertion keeps the ID token of a principal's sign-in through the
// enterprise identity provider, sealed, for upstreams with enterprise
// credentials. It does nothing when no upstream has per-user credentials.
func (g *Gateway) KeepAssertion(ctx context.Context, principal, idToken, issuer string, expiry time.Time) error {
	return g.upAuth.KeepAssertion(ctx, principal, idToken, issuer, expiry)
}
