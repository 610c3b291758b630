package upstreamauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/oauth/oauthclient"
	"github.com/mcpgate/mcpgate/store"
)

// Enterprise credentials ("enterprise", Cross App Access): for a user who
// signed in to the gateway through the enterprise identity provider, the
// gateway keeps the ID token of the sign-in sealed (KeepAssertion), and
// obtains the user's token for an upstream without any consent screen:
// the RFC 8693 token exchange at the identity provider (subject: that ID
// token; requested: an ID-JAG for the upstream's authorization server and
// the upstream as resource), then the RFC 7523 jwt-bearer grant with the
// ID-JAG at the upstream's authorization server, discovered from the
// upstream's protected resource metadata. The token is kept sealed per
// (user, upstream) like per-user tokens, and replaced by repeating the
// exchange when it is about to expire or the upstream rejects it or asks
// for more scope. The identity provider's refusal is the answer: the
// request fails with a RefusedError naming its decision; there is no
// fallback to another kind of credentials.

// AssertionKey is the upstream name under which a principal's identity
// assertion (the ID token of its sign-in through the enterprise identity
// provider) is kept, sealed, in the upstream token store. It is no valid
// upstream name.
const AssertionKey = "@idp"

// Outcomes of an ExchangeEvent.
const (
	ExchangeAsked     = "asked"
	ExchangeGranted   = "granted"
	ExchangeRefreshed = "refreshed"
	ExchangeRefused   = "refused"
)

// ExchangeEvent is one step of obtaining a principal's enterprise token
// for an upstream, for the audit log.
type ExchangeEvent struct {
	Principal, Upstream string
	// Outcome is ExchangeAsked, ExchangeGranted (a first token),
	// ExchangeRefreshed (a token replaced by a new exchange) or
	// ExchangeRefused.
	Outcome string
	// IdP is the identity provider's token endpoint.
	IdP string
	// Issuer is the issuer of the ID-JAG, when granted.
	Issuer string
	// JTI and Scope are the ID-JAG's id and the token's scope, when
	// granted.
	JTI, Scope string
	// Expiry is the token's expiry, when granted.
	Expiry time.Time
	// Error says who refused and why, when refused.
	Error string
}

// RefusedError is the answer to a request for an upstream with
// enterprise credentials when the token could not be obtained: the
// identity provider refused the exchange (ByIdP), or the upstream's
// authorization server refused the ID-JAG.
type RefusedError struct {
	Upstream string
	// ByIdP says that the identity provider refused (its decision is
	// Code and Description); otherwise the upstream's authorization
	// server did.
	ByIdP bool
	// IdP is the identity provider's token endpoint.
	IdP               string
	Code, Description string
}

func (e *RefusedError) Error() string {
	who := "the upstream's authorization server refused the identity provider's grant"
	if e.ByIdP {
		who = fmt.Sprintf("the identity provider (%s) refused access", e.IdP)
	}
	msg := fmt.Sprintf("upstream %s: %s", e.Upstream, who)
	if e.Code != "" {
		msg += ": " + e.Code
	}
	if e.Description != "" {
		msg += ": " + e.Description
	}
	return msg
}

// NoAssertionError is the answer for a principal of whom the gateway
// keeps no identity assertion: it did not sign in through the enterprise
// identity provider (or its assertion expired).
type NoAssertionError struct{ Upstream, Principal string }

func (e *NoAssertionError) Error() string {
	return fmt.Sprintf("upstream %s uses enterprise credentials: %s has no identity assertion from the enterprise identity provider; sign in to mcpgate through it again", e.Upstream, e.Principal)
}

// Enterprise reports whether credentials are of type "enterprise".
func Enterprise(cr *config.Credentials) bool {
	return cr != nil && cr.Type == config.CredentialsEnterprise
}

// KeepAssertion keeps principal's identity assertion (the raw ID token of
// its sign-in through issuer, valid until expiry), sealed, for enterprise
// credentials. Without per-user credentials it does nothing.
func (s *Service) KeepAssertion(ctx context.Context, principal, idToken, issuer string, expiry time.Time) error {
	if s.tokens == nil || principal == "" || idToken == "" {
		return nil
	}
	tk := &oauthclient.Token{AccessToken: idToken, TokenType: "id_token", Issuer: issuer, Expiry: expiry}
	sealed, err := s.sealer.Seal(principal, AssertionKey, tk)
	if err != nil {
		return err
	}
	return s.tokens.PutUpstreamToken(ctx, &store.UpstreamToken{Principal: principal, Upstream: AssertionKey, Ciphertext: sealed, UpdatedAt: time.Now()})
}

// ForgetAssertion drops principal's identity assertion and its enterprise
// tokens for every upstream: no exchange is made for it again until it
// signs in again.
func (s *Service) ForgetAssertion(ctx context.Context, principal string) error {
	if s.tokens == nil {
		return nil
	}
	return s.tokens.DeleteUpstreamToken(ctx, principal, AssertionKey)
}

// assertion returns principal's identity assertion, or a NoAssertionError.
func (s *Service) assertion(ctx context.Context, up Upstream, principal string) (string, error) {
	rec, err := s.tokens.GetUpstreamToken(ctx, principal, AssertionKey)
	if errors.Is(err, store.ErrNotFound) {
		return "", &NoAssertionError{Upstream: up.Name, Principal: principal}
	}
	if err != nil {
		return "", fmt.Errorf("upstream %s: loading the identity assertion of %s: %w", up.Name, principal, err)
	}
	tk, err := s.sealer.Open(principal, AssertionKey, rec.Ciphertext)
	if err != nil || (!tk.Expiry.IsZero() && !time.Now().Before(tk.Expiry)) {
		return "", &NoAssertionError{Upstream: up.Name, Principal: principal}
	}
	return tk.AccessToken, nil
}

// entLock returns the lock that serialises the exchanges of one
// (principal, upstream).
func (s *Service) entLock(principal, upstream string) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entLocks == nil {
		s.entLocks = make(map[[2]string]*sync.Mutex)
	}
	k := [2]string{principal, upstream}
	l := s.entLocks[k]
	if l == nil {
		l = new(sync.Mutex)
		s.entLocks[k] = l
	}
	return l
}

// enterpriseToken returns principal's token for up: the stored one while
// it is good (not expiring, not the rejected one, covering want), else a
// new one from a fresh exchange. want is a scope the upstream asked for
// ("" means the configured or discovered one).
func (s *Service) enterpriseToken(ctx context.Context, up Upstream, principal string, rejected *oauthclient.Token, want string) (*oauthclient.Token, error) {
	l := s.entLock(principal, up.Name)
	l.Lock()
	defer l.Unlock()
	cur, err := s.loadToken(ctx, up, principal)
	if err != nil {
		return nil, err
	}
	if cur != nil && !cur.Expired(time.Now()) && (rejected == nil || cur.AccessToken != rejected.AccessToken) && covers(cur.Scope, want) {
		return cur, nil
	}
	scope := want
	if cur != nil && want != "" {
		scope = union(cur.Scope, want) // step-up keeps what was granted
	}
	tk, err := s.exchange(ctx, up, principal, scope, cur != nil)
	if err != nil {
		if cur != nil {
			s.forget(ctx, up, principal)
		}
		return nil, err
	}
	if err := s.saveToken(ctx, up, principal, tk); err != nil {
		return nil, err
	}
	return tk, nil
}

// exchange runs the token exchange at the identity provider and the
// jwt-bearer grant at the upstream's authorization server, reporting each
// step to Hooks.OnExchange.
func (s *Service) exchange(ctx context.Context, up Upstream, principal, sc string, again bool) (*oauthclient.Token, error) {
	cr := up.Credentials
	ev := ExchangeEvent{Principal: principal, Upstream: up.Name, IdP: cr.IdPTokenURL}
	report := func(outcome string, err error) {
		ev.Outcome = outcome
		if err != nil {
			ev.Error = err.Error()
		}
		if s.hooks.OnExchange != nil {
			s.hooks.OnExchange(ctx, ev)
		}
	}
	idToken, err := s.assertion(ctx, up, principal)
	if err != nil {
		report(ExchangeRefused, err)
		return nil, err
	}
	d, err := s.discovery(ctx, up)
	if err != nil {
		report(ExchangeRefused, err)
		return nil, err
	}
	if sc == "" {
		sc = scope(up, d)
	}
	idpSecret, err := config.ReadSecret(cr.IdPClientSecretEnv, cr.IdPClientSecretFile)
	if err != nil {
		err = fmt.Errorf("upstream %s: the client secret at the identity provider: %w", up.Name, err)
		report(ExchangeRefused, err)
		return nil, err
	}
	client, err := configuredClient(up)
	if err != nil {
		report(ExchangeRefused, err)
		return nil, err
	}
	report(ExchangeAsked, nil)
	ent := &oauthclient.Enterprise{
		IDToken:          func(context.Context) (string, error) { return idToken, nil },
		IdPTokenEndpoint: cr.IdPTokenURL,
		IdPClient:        &oauthclient.ClientAuth{ClientID: cr.IdPClientID, ClientSecret: idpSecret},
	}
	jag, err := oauthclient.RequestIDJAG(ctx, s.httpc, d, ent, sc)
	if err != nil {
		err = refusal(up, cr.IdPTokenURL, true, err)
		report(ExchangeRefused, err)
		return nil, err
	}
	ev.JTI, ev.Issuer = jag.JTI, jag.Issuer
	if sc == "" {
		sc = jag.Scope
	}
	tk, err := oauthclient.JWTBearer(ctx, s.asClient(up), d, client, jag.Assertion, sc)
	if err != nil {
		err = refusal(up, cr.IdPTokenURL, false, err)
		report(ExchangeRefused, err)
		return nil, err
	}
	tk.Grant = jag.Info()
	ev.Scope, ev.Expiry = tk.Scope, tk.Expiry
	if again {
		report(ExchangeRefreshed, nil)
	} else {
		report(ExchangeGranted, nil)
	}
	return tk, nil
}

// refusal makes err a RefusedError when it carries an OAuth error.
func refusal(up Upstream, idp string, byIdP bool, err error) error {
	var oe *meta.Error
	if !errors.As(err, &oe) {
		return fmt.Errorf("upstream %s: %w", up.Name, err)
	}
	return &RefusedError{Upstream: up.Name, ByIdP: byIdP, IdP: idp, Code: oe.Code, Description: oe.Description}
}

// covers reports whether granted includes every scope of want.
func covers(granted, want string) bool {
	have := strings.Fields(granted)
	for _, s := range strings.Fields(want) {
		if !slices.Contains(have, s) {
			return false
		}
	}
	return true
}

// union returns the scopes of a and b, each once.
func union(a, b string) string {
	out := strings.Fields(a)
	for _, s := range strings.Fields(b) {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return strings.Join(out, " ")
}

// enterpriseTransport adds the principal's enterprise token to requests
// for the upstream. A token the upstream rejects is replaced by a new
// exchange, once; a 403 insufficient_scope is answered the same way with
// the scope the upstream asked for (step-up).
type enterpriseTransport struct {
	base      http.RoundTripper
	s         *Service
	up        Upstream
	principal string
	origin    string

	mu sync.Mutex
	tk *oauthclient.Token
}

func (t *enterpriseTransport) token(ctx context.Context, rejected *oauthclient.Token, want string) (*oauthclient.Token, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tk != nil && rejected == nil && want == "" && !t.tk.Expired(time.Now()) {
		return t.tk, nil
	}
	tk, err := t.s.enterpriseToken(ctx, t.up, t.principal, rejected, want)
	if err != nil {
		t.tk = nil
		return nil, err
	}
	t.tk = tk
	return tk, nil
}

func (t *enterpriseTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !sameOrigin(t.origin, req) {
		return t.base.RoundTrip(req)
	}
	tk, err := t.token(req.Context(), nil, "")
	if err != nil {
		return nil, err
	}
	resp, err := t.base.RoundTrip(withBearer(req, tk.AccessToken))
	if err != nil || !replayable(req) {
		return resp, err
	}
	var want string
	switch resp.StatusCode {
	case http.StatusUnauthorized:
	case http.StatusForbidden:
		ch, _ := meta.ParseBearerChallenge(resp.Header)
		if ch == nil || ch.Error != "insufficient_scope" || ch.Scope == "" || covers(tk.Scope, ch.Scope) {
			return resp, nil
		}
		want = ch.Scope
	default:
		return resp, nil
	}
	discardBody(resp)
	rejected := tk
	if tk, err = t.token(req.Context(), rejected, want); err != nil {
		return nil, err
	}
	r2, err := retryRequest(req)
	if err != nil {
		return nil, err
	}
	return t.base.RoundTrip(withBearer(r2, tk.AccessToken))
}
