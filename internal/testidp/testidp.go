// Package testidp is an enterprise identity provider for tests: it signs
// users in over OpenID Connect (authorization code with PKCE, ID tokens
// signed with ES256, discovery and JWKS), and at its token endpoint
// performs the RFC 8693 token exchange of enterprise-managed authorization
// ("Cross App Access"): an ID token it issued in, an Identity Assertion
// JWT Authorization Grant (ID-JAG) out, decided by a policy table of
// which user may reach which authorization server and resource.
//
// It serves on loopback only (httptest) and keeps everything in memory.
// It is a fixture, not an identity provider: there is no login page (the
// user who signs in is the login_hint of the authorization request, else
// the one set with SignInAs) and no consent.
package testidp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/oauth/meta"
)

// Defaults of Options.
const (
	// DefaultIDTokenTTL is how long ID tokens are valid.
	DefaultIDTokenTTL = 10 * time.Minute
	// DefaultIDJAGTTL is how long ID-JAGs are valid.
	DefaultIDJAGTTL = 5 * time.Minute
	// codeTTL is how long an authorization code may wait for its
	// exchange.
	codeTTL = time.Minute
	// maxCodes bounds the authorization codes waiting for their exchange.
	maxCodes = 1000
	// maxForm bounds a token request body.
	maxForm = 64 << 10
	keyID   = "testidp-1"
)

// User is a user of the identity provider.
type User struct {
	// Email is the user's (verified) email address; "" means
	// <subject>@example.test.
	Email string
	// Groups are put in the ID token's and the ID-JAG's "groups" claim.
	Groups []string
}

// Client is an application registered at the identity provider: the
// gateway, which signs users in through it and exchanges their ID tokens.
type Client struct {
	// Secret authenticates the client (client_secret_basic or
	// client_secret_post).
	Secret string
	// RedirectURIs are the redirect URIs it may use; empty allows any
	// loopback http URI.
	RedirectURIs []string
}

// Rule is one row of the policy table: Subject may obtain an ID-JAG for
// Audience (an authorization server's issuer) and Resource (an MCP
// server) with at most Scopes. "*" in Subject, Audience or Resource
// matches anything.
type Rule struct {
	Subject  string
	Audience string
	Resource string
	// Scopes are the scopes granted; a request for others is narrowed
	// to these, and none requested means all of these.
	Scopes []string
	// ClientID is the client_id claim of the ID-JAG: the requesting
	// application's identity at the audience. "" means the requesting
	// client's id at the identity provider.
	ClientID string
}

// Options configure an IdP.
type Options struct {
	Users   map[string]User   // by subject
	Clients map[string]Client // by client id
	// Policy is the table of ID-JAGs the IdP issues; the first rule
	// that matches decides. No rule: the exchange is refused with
	// access_denied, naming the policy's decision.
	Policy []Rule
	// IDTokenTTL and IDJAGTTL: zero means DefaultIDTokenTTL and
	// DefaultIDJAGTTL.
	IDTokenTTL, IDJAGTTL time.Duration
}

// Exchange is a token exchange the IdP decided, kept for tests.
type Exchange struct {
	Subject, Client, Audience, Resource string
	Granted                             bool
	// JTI is the issued ID-JAG's id; Reason why it was refused.
	JTI, Reason string
}

// IdP is a running test identity provider.
type IdP struct {
	// Issuer is the IdP's issuer URL (its http://127.0.0.1:port).
	Issuer string

	srv  *httptest.Server
	key  *ecdsa.PrivateKey
	opts Options

	mu        sync.Mutex
	signIn    string
	codes     map[string]*pendingCode
	exchanges []Exchange
}

type pendingCode struct {
	client, redirect, nonce, challenge, subject, scope string
	expires                                            time.Time
}

// Start starts an IdP on a loopback port. Close stops it.
func Start(opts *Options) (*IdP, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	p := &IdP{key: key, codes: make(map[string]*pendingCode)}
	if opts != nil {
		p.opts = *opts
	}
	if p.opts.IDTokenTTL <= 0 {
		p.opts.IDTokenTTL = DefaultIDTokenTTL
	}
	if p.opts.IDJAGTTL <= 0 {
		p.opts.IDJAGTTL = DefaultIDJAGTTL
	}
	p.srv = httptest.NewServer(p.Handler())
	p.Issuer = p.srv.URL
	return p, nil
}

// Close stops the IdP.
func (p *IdP) Close() { p.srv.Close() }

// SignInAs sets the user who signs in when an authorization request has
// no login_hint.
func (p *IdP) SignInAs(subject string) {
	p.mu.Lock()
	p.signIn = subject
	p.mu.Unlock()
}

// SetPolicy replaces the policy table.
func (p *IdP) SetPolicy(rules []Rule) {
	p.mu.Lock()
	p.opts.Policy = slices.Clone(rules)
	p.mu.Unlock()
}

// Exchanges returns the token exchanges decided so far.
func (p *IdP) Exchanges() []Exchange {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.exchanges)
}

// TokenEndpoint is the URL of the token endpoint.
func (p *IdP) TokenEndpoint() string { return p.Issuer + "/token" }

// JWKSURL is the URL of the IdP's key set.
func (p *IdP) JWKSURL() string { return p.Issuer + "/jwks" }

// Handler serves the IdP's endpoints.
func (p *IdP) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.metadata)
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", p.metadata)
	mux.HandleFunc("GET /jwks", func(rw http.ResponseWriter, r *http.Request) {
		writeJSON(rw, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &p.key.PublicKey, KeyID: keyID, Algorithm: "ES256", Use: "sig"}}})
	})
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	return mux
}

func (p *IdP) metadata(rw http.ResponseWriter, r *http.Request) {
	writeJSON(rw, http.StatusOK, map[string]any{
		"issuer":                                p.Issuer,
		"authorization_endpoint":                p.Issuer + "/authorize",
		"token_endpoint":                        p.TokenEndpoint(),
		"jwks_uri":                              p.JWKSURL(),
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"ES256"},
		"grant_types_supported":                 []string{meta.GrantTypeAuthorizationCode, meta.GrantTypeTokenExchange},
		"code_challenge_methods_supported":      []string{meta.CodeChallengeMethodS256},
		"token_endpoint_auth_methods_supported": []string{meta.AuthMethodClientSecretBasic, meta.AuthMethodClientSecretPost},
	})
}

// authorize signs the user in at once and sends the browser back with a
// code.
func (p *IdP) authorize(rw http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	clientID, redirect := q.Get("client_id"), q.Get("redirect_uri")
	c, ok := p.opts.Clients[clientID]
	if !ok {
		http.Error(rw, "unknown client_id", http.StatusBadRequest)
		return
	}
	if !redirectAllowed(c, redirect) {
		http.Error(rw, "redirect_uri is not registered for this client", http.StatusBadRequest)
		return
	}
	ru, _ := url.Parse(redirect)
	back := func(v url.Values) {
		v.Set("state", q.Get("state"))
		v.Set("iss", p.Issuer)
		ru.RawQuery = v.Encode()
		http.Redirect(rw, r, ru.String(), http.StatusFound)
	}
	if q.Get("response_type") != "code" || q.Get("code_challenge_method") != meta.CodeChallengeMethodS256 || q.Get("code_challenge") == "" {
		back(url.Values{"error": {"invalid_request"}, "error_description": {"want response_type=code with an S256 code challenge"}})
		return
	}
	p.mu.Lock()
	sub := p.signIn
	p.mu.Unlock()
	if h := q.Get("login_hint"); h != "" {
		sub = h
	}
	if _, ok := p.opts.Users[sub]; !ok {
		back(url.Values{"error": {"access_denied"}, "error_description": {fmt.Sprintf("no such user %q", sub)}})
		return
	}
	code := randomToken()
	now := time.Now()
	p.mu.Lock()
	for k, pc := range p.codes {
		if now.After(pc.expires) {
			delete(p.codes, k)
		}
	}
	full := len(p.codes) >= maxCodes
	if !full {
		p.codes[code] = &pendingCode{client: clientID, redirect: redirect, nonce: q.Get("nonce"), challenge: q.Get("code_challenge"),
			subject: sub, scope: q.Get("scope"), expires: now.Add(codeTTL)}
	}
	p.mu.Unlock()
	if full {
		back(url.Values{"error": {"temporarily_unavailable"}, "error_description": {"too many sign-ins in progress"}})
		return
	}
	back(url.Values{"code": {code}})
}

func redirectAllowed(c Client, redirect string) bool {
	if len(c.RedirectURIs) > 0 {
		return slices.Contains(c.RedirectURIs, redirect)
	}
	u, err := url.Parse(redirect)
	return err == nil && u.Scheme == "http" && (u.Hostname() == "127.0.0.1" || u.Hostname() == "localhost" || u.Hostname() == "::1")
}

// token serves the authorization code grant and the token exchange.
func (p *IdP) token(rw http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(rw, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		oauthError(rw, http.StatusBadRequest, meta.ErrInvalidRequest, "%v", err)
		return
	}
	clientID, ok := p.authenticate(r)
	if !ok {
		oauthError(rw, http.StatusUnauthorized, meta.ErrInvalidClient, "client authentication failed")
		return
	}
	switch gt := r.PostForm.Get("grant_type"); gt {
	case meta.GrantTypeAuthorizationCode:
		p.codeGrant(rw, r.PostForm, clientID)
	case meta.GrantTypeTokenExchange:
		p.exchange(rw, r.PostForm, clientID)
	default:
		oauthError(rw, http.StatusBadRequest, meta.ErrUnsupportedGrantType, "grant_type %q is not supported", gt)
	}
}

// authenticate checks client_secret_basic or client_secret_post.
func (p *IdP) authenticate(r *http.Request) (string, bool) {
	id, secret, basic := r.BasicAuth()
	if basic {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	c, ok := p.opts.Clients[id]
	return id, ok && id != "" && c.Secret != "" && secret == c.Secret
}

func (p *IdP) codeGrant(rw http.ResponseWriter, f url.Values, clientID string) {
	code := f.Get("code")
	p.mu.Lock()
	pc := p.codes[code]
	delete(p.codes, code)
	p.mu.Unlock()
	switch {
	case pc == nil || time.Now().After(pc.expires):
		oauthError(rw, http.StatusBadRequest, meta.ErrInvalidGrant, "unknown or expired code")
		return
	case pc.client != clientID || pc.redirect != f.Get("redirect_uri"):
		oauthError(rw, http.StatusBadRequest, meta.ErrInvalidGrant, "the code was issued to another client or redirect URI")
		return
	case s256(f.Get("code_verifier")) != pc.challenge:
		oauthError(rw, http.StatusBadRequest, meta.ErrInvalidGrant, "PKCE verification failed")
		return
	}
	idt, err := p.IDToken(pc.subject, clientID, pc.nonce)
	if err != nil {
		oauthError(rw, http.StatusInternalServerError, meta.ErrServerError, "%v", err)
		return
	}
	writeJSON(rw, http.StatusOK, map[string]any{"access_token": randomToken(), "token_type": "Bearer",
		"expires_in": int(p.opts.IDTokenTTL / time.Second), "id_token": idt, "scope": pc.scope})
}

// IDToken returns an ID token for subject, issued to clientID, as a
// sign-in would.
func (p *IdP) IDToken(subject, clientID, nonce string) (string, error) {
	u, ok := p.opts.Users[subject]
	if !ok {
		return "", fmt.Errorf("testidp: no such user %q", subject)
	}
	now := time.Now()
	claims := map[string]any{"iss": p.Issuer, "sub": subject, "aud": clientID, "iat": now.Unix(),
		"exp": now.Add(p.opts.IDTokenTTL).Unix(), "email": email(subject, u), "email_verified": true}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	if len(u.Groups) > 0 {
		claims["groups"] = u.Groups
	}
	return p.sign("JWT", claims)
}

func email(subject string, u User) string {
	if u.Email != "" {
		return u.Email
	}
	return subject + "@example.test"
}

// exchange is the RFC 8693 token exchange: an ID token this IdP issued to
// the requesting client in, an ID-JAG out, as the policy table says.
func (p *IdP) exchange(rw http.ResponseWriter, f url.Values, clientID string) {
	for k, want := range map[string]string{
		"requested_token_type": meta.TokenTypeIDJAG,
		"subject_token_type":   meta.TokenTypeIDToken,
	} {
		if got := f.Get(k); got != want {
			oauthError(rw, http.StatusBadRequest, meta.ErrInvalidRequest, "%s is %q, want %q", k, got, want)
			return
		}
	}
	aud, res := f.Get("audience"), f.Get("resource")
	if aud == "" || res == "" {
		oauthError(rw, http.StatusBadRequest, meta.ErrInvalidRequest, "audience and resource are required")
		return
	}
	sub, err := p.verifyIDToken(f.Get("subject_token"), clientID)
	if err != nil {
		oauthError(rw, http.StatusBadRequest, meta.ErrInvalidGrant, "subject_token: %v", err)
		return
	}
	ex := Exchange{Subject: sub, Client: clientID, Audience: aud, Resource: res}
	rule := p.decide(sub, aud, res)
	if rule == nil {
		ex.Reason = fmt.Sprintf("policy: %s may not access %s at %s", sub, res, aud)
		p.record(ex)
		oauthError(rw, http.StatusBadRequest, meta.ErrAccessDenied, "%s", ex.Reason)
		return
	}
	scopes := rule.Scopes
	if want := strings.Fields(f.Get("scope")); len(want) > 0 {
		scopes = nil
		for _, s := range want {
			if slices.Contains(rule.Scopes, s) {
				scopes = append(scopes, s)
			}
		}
	}
	jagClient := rule.ClientID
	if jagClient == "" {
		jagClient = clientID
	}
	now := time.Now()
	ex.JTI, ex.Granted = randomToken(), true
	claims := map[string]any{"iss": p.Issuer, "sub": sub, "aud": aud, "client_id": jagClient, "resource": res,
		"jti": ex.JTI, "iat": now.Unix(), "exp": now.Add(p.opts.IDJAGTTL).Unix(), "email": email(sub, p.opts.Users[sub])}
	if len(scopes) > 0 {
		claims["scope"] = strings.Join(scopes, " ")
	}
	jag, err := p.sign(meta.IDJAGJWTType, claims)
	if err != nil {
		oauthError(rw, http.StatusInternalServerError, meta.ErrServerError, "%v", err)
		return
	}
	p.record(ex)
	resp := map[string]any{"access_token": jag, "issued_token_type": meta.TokenTypeIDJAG, "token_type": "N_A",
		"expires_in": int(p.opts.IDJAGTTL / time.Second)}
	if len(scopes) > 0 {
		resp["scope"] = strings.Join(scopes, " ")
	}
	writeJSON(rw, http.StatusOK, resp)
}

func (p *IdP) decide(sub, aud, res string) *Rule {
	p.mu.Lock()
	defer p.mu.Unlock()
	match := func(pattern, v string) bool { return pattern == "*" || pattern == v }
	for i := range p.opts.Policy {
		r := &p.opts.Policy[i]
		if match(r.Subject, sub) && match(r.Audience, aud) && match(r.Resource, res) {
			rc := *r
			return &rc
		}
	}
	return nil
}

func (p *IdP) record(ex Exchange) {
	p.mu.Lock()
	p.exchanges = append(p.exchanges, ex)
	p.mu.Unlock()
}

// verifyIDToken checks an ID token this IdP issued to clientID and
// returns its subject.
func (p *IdP) verifyIDToken(raw, clientID string) (string, error) {
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return "", err
	}
	payload, err := jws.Verify(&p.key.PublicKey)
	if err != nil {
		return "", fmt.Errorf("signature: %w", err)
	}
	var c struct {
		Iss string `json:"iss"`
		Sub string `json:"sub"`
		Aud string `json:"aud"`
		Exp int64  `json:"exp"`
	}
	if err := json.Unmarshal(payload, &c, json.RejectUnknownMembers(false)); err != nil {
		return "", err
	}
	switch {
	case c.Iss != p.Issuer:
		return "", fmt.Errorf("issued by %q, not this identity provider", c.Iss)
	case c.Aud != clientID:
		return "", fmt.Errorf("issued to %q, not to the requesting client", c.Aud)
	case time.Now().Unix() >= c.Exp:
		return "", fmt.Errorf("expired")
	case c.Sub == "":
		return "", fmt.Errorf("no sub")
	}
	return c.Sub, nil
}

func (p *IdP) sign(typ string, claims map[string]any) (string, error) {
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ))
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: p.key, KeyID: keyID}}, opts)
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims, json.Deterministic(true))
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func randomToken() string {
	b := make([]byte, 18)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func oauthError(rw http.ResponseWriter, status int, code, format string, args ...any) {
	writeJSON(rw, status, map[string]string{"error": code, "error_description": fmt.Sprintf(format, args...)})
}

func writeJSON(rw http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v, json.Deterministic(true))
	if err != nil {
		http.Error(rw, err.Error(), http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("Cache-Control", "no-store")
	rw.WriteHeader(status)
	rw.Write(b)
}
