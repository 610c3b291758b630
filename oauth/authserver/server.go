// Package authserver is mcpgate's built-in OAuth 2.1 authorization server
// for MCP (revision 2025-11-25 and the ext-auth extensions).
//
// It serves RFC 8414 and OpenID Connect discovery metadata, the
// authorization endpoint (authorization code with PKCE S256 and RFC 8707
// resource indicators, RFC 9207 iss in responses) with a login page (local
// users with argon2id passwords, or an enterprise OpenID Connect provider)
// and a consent page, the token endpoint (authorization_code,
// refresh_token with rotation and reuse detection, client_credentials,
// and the RFC 7523 jwt-bearer grant with Identity Assertion JWT
// Authorization Grants from trusted identity providers), RFC 7591 dynamic
// client registration, Client ID Metadata Documents, a JWKS endpoint,
// RFC 7009 revocation and RFC 7662 introspection. Access tokens are RFC
// 9068 JWTs signed with rotating ES256 keys, with the resource as
// audience. With Options.SignInReturns it also signs users in for the
// gateway's other pages (signin.go: SignInURL, RedeemSignIn).
//
// A Server is an http.Handler for every path it serves (see Patterns), so
// it can be mounted on a mux at the issuer's path prefix. All state lives
// in a store.Store, so several replicas can share one database.
package authserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/internal/pwguard"
	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/oauth/safehttp"
	"github.com/mcpgate/mcpgate/store"
)

// Resource is a protected resource (an MCP server) that the authorization
// server issues tokens for.
type Resource struct {
	// URI is the canonical resource identifier (RFC 8707, RFC 9728
	// "resource"), e.g. https://gw.example.com/mcp.
	URI string
	// Scopes are the scopes the resource understands. A request for any
	// other scope is refused.
	Scopes []string
	// DefaultScopes are granted when a request names no scope; nil means
	// all Scopes.
	DefaultScopes []string
}

// RegistrationPolicy controls RFC 7591 dynamic client registration.
type RegistrationPolicy struct {
	// Disabled turns the registration endpoint off (it is on by default).
	Disabled bool
	// InitialAccessToken, if set, must be presented as a Bearer token to
	// register (RFC 7591 §3).
	InitialAccessToken string
	// AllowedRedirectHosts, if non-empty, restricts the hosts of
	// registered redirect URIs (loopback addresses are always allowed).
	AllowedRedirectHosts []string
	// AllowConfidential permits registering clients that authenticate
	// with private_key_jwt.
	AllowConfidential bool
	// Admission decides which registrations are admitted (AdmissionClosed
	// answers every registration with HTTP 403 and stops advertising the
	// endpoint) and which grant types dynamically registered clients may
	// obtain (by default authorization_code and refresh_token only).
	Admission AdmissionPolicy
	// RateLimit limits registrations per source address (the peer's IP
	// address, IPv6 by /64); the zero value means 10 a minute with bursts
	// of 20. Requests over the limit get HTTP 429 with Retry-After.
	RateLimit RateLimit
	// MaxClients bounds the number of dynamically registered clients
	// stored; 0 means 10,000, negative means no bound. Registrations
	// beyond it get HTTP 503 until unused ones are collected.
	MaxClients int
	// MaxMetadataBytes caps a registration request; 0 means 16 KiB.
	MaxMetadataBytes int
	// UnusedClientTTL is how long a registration that never obtained a
	// token is kept before DeleteUnusedClients (and RunSweeper) remove it;
	// 0 means 24 hours.
	UnusedClientTTL time.Duration
}

// MetadataDocumentPolicy controls Client ID Metadata Documents.
type MetadataDocumentPolicy struct {
	// Disabled turns support off (it is on by default).
	Disabled bool
	// AllowDomains, if non-empty, lists the only hosts (or parent
	// domains) whose documents are accepted.
	AllowDomains []string
	// DenyDomains lists hosts (or parent domains) that are refused.
	DenyDomains []string
	// HTTPClient fetches documents. nil means an SSRF-safe client
	// (oauth/safehttp) that refuses private, loopback, link-local and
	// metadata addresses and every redirect, with FetchTimeout.
	HTTPClient *http.Client
	// FetchTimeout bounds a fetch; 0 means 5 s.
	FetchTimeout time.Duration
	// MaxBytes caps the document; 0 means 5 KiB.
	MaxBytes int64
	// JWKSMaxBytes caps a key set fetched from a client's jwks_uri (with
	// HTTPClient, FetchTimeout and the cache bounds below, like
	// documents); 0 means 64 KiB.
	JWKSMaxBytes int64
	// MinCache and MaxCache bound the Cache-Control max-age honoured;
	// zero values mean 1 minute and 24 hours. Documents without caching
	// headers are kept for MinCache; no-store is honoured.
	MinCache, MaxCache time.Duration
	// Admission decides which metadata-document clients are admitted
	// (AdmissionClosed is Disabled; an AdmissionAllowlist is checked
	// before any fetch) and which grant types they may obtain (by default
	// authorization_code and refresh_token only).
	Admission AdmissionPolicy
}

// TrustedIssuer is an identity provider whose Identity Assertion JWT
// Authorization Grants (ID-JAG) are accepted by the jwt-bearer grant.
// Trusted issuers are configuration only and are never published.
type TrustedIssuer struct {
	// Issuer is the exact iss claim.
	Issuer string
	// JWKSURL is where the issuer's signing keys are published.
	JWKSURL string
	// HTTPClient fetches the JWKS; nil means http.DefaultClient.
	HTTPClient *http.Client
	// Algorithms are the accepted JWS algorithms; nil means RS256, ES256,
	// PS256 and EdDSA.
	Algorithms []string
	// Claims maps the ID-JAG's claims to the user's identity attributes
	// (groups, roles, email, name), carried into the access token.
	Claims ClaimMapping
}

// OIDCLogin configures sign-in through an enterprise OpenID Connect
// provider.
type OIDCLogin struct {
	// Issuer is the provider's issuer URL (discovery is used).
	Issuer string
	// ClientID and ClientSecret are this server's registration at the
	// provider; the redirect URI is <issuer>/login/oidc/callback.
	ClientID, ClientSecret string
	// Scopes are requested in addition to "openid"; nil means profile
	// and email.
	Scopes []string
	// DisplayName labels the login button; default "Single sign-on".
	DisplayName string
	// SubjectClaim names the claim used as the token subject: "" or
	// "sub" for the provider's sub (prefixed with the issuer host),
	// "email" for a verified email.
	SubjectClaim string
	// Claims maps the ID token's claims to the user's identity attributes
	// (groups, roles, email, name), carried into the access tokens.
	Claims ClaimMapping
	// HTTPClient is used for discovery, token and JWKS requests; nil
	// means http.DefaultClient.
	HTTPClient *http.Client
	// OnSignIn, if set, is given the verified raw ID token of each
	// completed sign-in, with the local subject it signed in and its
	// expiry: the gateway keeps it sealed as the user's identity
	// assertion for enterprise upstream credentials (Cross App Access).
	OnSignIn func(ctx context.Context, subject, idToken, issuer string, expiry time.Time)
}

// ApproveFunc decides, without any user interaction, that an
// authorization request is approved on behalf of a subject. It returns
// ok=false to fall back to the login and consent pages. It exists for
// tests and trusted automation; never derive the subject from request
// input in production.
type ApproveFunc func(r *http.Request, client *store.Client, scopes []string) (subject string, ok bool)

// Event is something the authorization server did that an audit log
// records.
type Event struct {
	// Kind is "token.issued", "token.refused" or "client.registered".
	Kind string
	// ClientID is the client concerned ("" if unknown); Subject the token's
	// subject, for issued tokens.
	ClientID, Subject string
	// GrantType is the grant of a token request.
	GrantType string
	// Error is the OAuth error code of a refusal, Detail its description.
	Error, Detail string
}

// Options configures a Server. The zero value is usable but knows no
// resources, so every authorization request would be refused.
type Options struct {
	// Resources are the protected resources tokens may be issued for.
	Resources []Resource
	// AccessTokenTTL defaults to 1 hour, RefreshTokenTTL to 30 days,
	// CodeTTL to 1 minute, SessionTTL to 12 hours.
	AccessTokenTTL, RefreshTokenTTL, CodeTTL, SessionTTL time.Duration
	// KeyRotation is the age at which the signing key is replaced;
	// default 7 days.
	KeyRotation time.Duration
	// Registration controls dynamic client registration.
	Registration RegistrationPolicy
	// MetadataDocuments controls Client ID Metadata Documents.
	MetadataDocuments MetadataDocumentPolicy
	// PreRegistered decides which pre-registered clients are admitted
	// (Allow lists client ids) and which grant types they may obtain (by
	// default every grant they were registered for).
	PreRegistered AdmissionPolicy
	// IntrospectionClients are the client ids of the resource servers
	// allowed to use the RFC 7662 introspection endpoint; every other
	// client is refused (HTTP 403 unauthorized_client) without learning
	// anything about the token.
	IntrospectionClients []string
	// DisablePublicClients refuses clients that do not authenticate at
	// the token endpoint; "none" is then not advertised.
	DisablePublicClients bool
	// TrustedIssuers are the identity providers whose ID-JAGs are
	// accepted; none means the jwt-bearer grant is off.
	TrustedIssuers []TrustedIssuer
	// OIDC enables enterprise sign-in; nil means local users only.
	OIDC *OIDCLogin
	// DisableLocalLogin hides the username/password form.
	DisableLocalLogin bool
	// PasswordGuard bounds the password checks of the sign-in form
	// (concurrent hashes, failures per user name and per source address);
	// share it with other pages that check passwords. Nil means a guard
	// with pwguard's defaults for this server alone.
	PasswordGuard *pwguard.Guard
	// SignInReturns are the path prefixes on the issuer's host (for
	// example "/approvals/") that the browser sign-in endpoint
	// <issuer>/signin may return to with a one-time ticket (see
	// SignInURL and RedeemSignIn). Empty disables that endpoint.
	SignInReturns []string
	// AutoApprove, if set, may approve authorization requests without the
	// login and consent pages (tests, trusted automation).
	AutoApprove ApproveFunc
	// Admit, if set, is asked before any token is issued, for every grant;
	// an error refuses the token request (invalid_grant, with the error's
	// text). It is also asked when a user signs in (the login page shows
	// the error's text), before the consent page is shown and before an
	// authorization code is issued (access_denied, with the error's text).
	// Gateways use it to refuse revoked users and clients, and clients
	// whose changed metadata awaits re-approval.
	Admit func(ctx context.Context, subject, clientID string) error
	// OnEvent, if set, is told of every token issued or refused and every
	// client registered (for audit logs). It must not block.
	OnEvent func(ctx context.Context, e Event)
	// OnClientMetadata, if set, is told of every client registration and
	// every fetch of a Client ID Metadata Document, with the document; an
	// error refuses the client (invalid_client). Gateways use it to detect
	// clients whose redirect URIs or keys change.
	OnClientMetadata func(ctx context.Context, clientID string, doc []byte) error
	// OnClientKeys, if set, is told of the key set of every private_key_jwt
	// client authentication (inline jwks, pre-registered keys, or the keys
	// behind the client's jwks_uri as fetched) with the thumbprint of the
	// key that verified the assertion, and of every key set RecheckClient
	// fetches; an error refuses the client (invalid_client, with the
	// error's text). Gateways use it to fingerprint keys and detect key
	// swaps.
	OnClientKeys func(ctx context.Context, keys ClientKeys) error
	// Argon2 sets the password hashing cost for users created through
	// the server; nil means DefaultArgon2Params.
	Argon2 *Argon2Params
	// Logger receives diagnostics (never secrets); nil means
	// slog.Default().
	Logger *slog.Logger
	// Now overrides the clock (tests).
	Now func() time.Time
}

// Server is the authorization server. It is an http.Handler.
type Server struct {
	issuer   string
	issuerU  *url.URL
	basePath string // issuer path without trailing slash
	st       store.Store
	opts     Options
	log      *slog.Logger
	now      func() time.Time
	keys     *keySet
	mux      *http.ServeMux
	patterns []string
	cimd     *http.Client
	oidc     *oidcLogin

	idpMu   sync.Mutex
	idpKeys map[string]keyVerifier
	jwksMu  sync.Mutex
	jwksURI map[string]*remoteKeys

	dummyOnce sync.Once
	dummy     string
	// regLimit limits registrations per source address; regMu serialises
	// the storage bound's count and the creation of a client.
	regLimit *rateLimiter
	regMu    sync.Mutex
}

// dummyPasswordHash is verified against when a username is unknown.
func (s *Server) dummyPasswordHash() string {
	s.dummyOnce.Do(func() {
		s.dummy, _ = HashPassword(meta.RandomToken(16), s.opts.Argon2)
	})
	return s.dummy
}

// New returns an authorization server for issuer (an absolute http(s) URL
// without query or fragment; its path is the prefix the server is mounted
// at). The store holds all state.
func New(ctx context.Context, issuer string, st store.Store, opts *Options) (*Server, error) {
	if st == nil {
		return nil, errors.New("authserver: nil store")
	}
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("authserver: issuer %q must be an absolute http(s) URL without query, fragment or user info", issuer)
	}
	s := &Server{issuer: issuer, issuerU: u, basePath: strings.TrimSuffix(u.EscapedPath(), "/"), st: st, idpKeys: map[string]keyVerifier{}, jwksURI: map[string]*remoteKeys{}}
	if opts != nil {
		s.opts = *opts
	}
	o := &s.opts
	if o.PasswordGuard == nil {
		o.PasswordGuard = pwguard.New(nil)
	}
	setDefault(&o.AccessTokenTTL, time.Hour)
	setDefault(&o.RefreshTokenTTL, 30*24*time.Hour)
	setDefault(&o.CodeTTL, time.Minute)
	setDefault(&o.SessionTTL, 12*time.Hour)
	setDefault(&o.KeyRotation, 7*24*time.Hour)
	setDefault(&o.MetadataDocuments.FetchTimeout, 5*time.Second)
	setDefault(&o.MetadataDocuments.MinCache, time.Minute)
	setDefault(&o.MetadataDocuments.MaxCache, 24*time.Hour)
	if o.MetadataDocuments.MaxBytes <= 0 {
		o.MetadataDocuments.MaxBytes = 5 << 10
	}
	if o.MetadataDocuments.JWKSMaxBytes <= 0 {
		o.MetadataDocuments.JWKSMaxBytes = 64 << 10
	}
	setDefault(&o.Registration.UnusedClientTTL, 24*time.Hour)
	if o.Registration.MaxClients == 0 {
		o.Registration.MaxClients = 10000
	}
	if o.Registration.MaxMetadataBytes <= 0 {
		o.Registration.MaxMetadataBytes = maxRegistrationBytes
	}
	for _, p := range []struct {
		where string
		p     *AdmissionPolicy
	}{{"MetadataDocuments.Admission", &o.MetadataDocuments.Admission}, {"Registration.Admission", &o.Registration.Admission}, {"PreRegistered", &o.PreRegistered}} {
		if err := validAdmission(p.where, p.p); err != nil {
			return nil, err
		}
	}
	if o.MetadataDocuments.Disabled {
		o.MetadataDocuments.Admission.Mode = AdmissionClosed
	}
	s.regLimit = newRateLimiter(o.Registration.RateLimit)
	for i, r := range o.Resources {
		if err := validResourceURI(r.URI); err != nil {
			return nil, fmt.Errorf("authserver: resource %d: %w", i, err)
		}
	}
	for _, ti := range o.TrustedIssuers {
		if ti.Issuer == "" || ti.JWKSURL == "" {
			return nil, errors.New("authserver: trusted issuer needs Issuer and JWKSURL")
		}
	}
	s.log = o.Logger
	if s.log == nil {
		s.log = slog.Default()
	}
	s.now = o.Now
	if s.now == nil {
		s.now = time.Now
	}
	s.cimd = o.MetadataDocuments.HTTPClient
	if s.cimd == nil {
		s.cimd = safehttp.NewClient(&safehttp.Options{NoRedirects: true, Timeout: o.MetadataDocuments.FetchTimeout})
	}
	s.keys = &keySet{st: st, rotateAfter: o.KeyRotation, keepFor: o.AccessTokenTTL + time.Hour, now: s.now}
	if _, _, err := s.keys.current(ctx); err != nil {
		return nil, fmt.Errorf("authserver: signing keys: %w", err)
	}
	if o.OIDC != nil {
		if s.oidc, err = newOIDCLogin(ctx, s, o.OIDC); err != nil {
			return nil, fmt.Errorf("authserver: %w", err)
		}
	}
	s.routes()
	return s, nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// Issuer returns the issuer identifier.
func (s *Server) Issuer() string { return s.issuer }

// endpoint returns the absolute URL of a path under the issuer.
func (s *Server) endpoint(p string) string {
	return strings.TrimSuffix(s.issuer, "/") + p
}

// Patterns returns the ServeMux patterns the server answers, for
// mounting on a shared mux: every endpoint under the issuer path and the
// well-known metadata URIs at the origin root.
func (s *Server) Patterns() []string {
	return slices.Clone(s.patterns)
}

// Mount registers the server on mux under Patterns.
func (s *Server) Mount(mux *http.ServeMux) {
	for _, p := range s.Patterns() {
		mux.Handle(p, s)
	}
}

// ServeHTTP implements http.Handler; r.URL.Path is the full path (do not
// strip the issuer prefix).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	s.mux.ServeHTTP(w, r)
}

func (s *Server) wellKnownPaths() []string {
	b := s.basePath
	return []string{
		"/.well-known/" + meta.WellKnownAuthorizationServer + b,
		"/.well-known/" + meta.WellKnownOpenIDConfiguration + b,
		b + "/.well-known/" + meta.WellKnownOpenIDConfiguration,
	}
}

func (s *Server) routes() {
	m := http.NewServeMux()
	handle := func(p string, h http.HandlerFunc) {
		if slices.Contains(s.patterns, p) {
			return
		}
		s.patterns = append(s.patterns, p)
		m.HandleFunc(p, h)
	}
	for _, p := range s.wellKnownPaths() {
		handle(p, s.handleMetadata)
	}
	b := s.basePath
	handle(b+"/authorize", s.handleAuthorize)
	handle(b+"/login", s.handleLogin)
	handle(b+"/consent", s.handleConsent)
	handle(b+"/logout", s.handleLogout)
	if len(s.opts.SignInReturns) > 0 {
		handle(b+"/signin", s.handleSignIn)
	}
	if s.oidc != nil {
		handle(b+"/login/oidc", s.handleOIDCStart)
		handle(b+"/login/oidc/callback", s.handleOIDCCallback)
	}
	handle(b+"/token", s.handleToken)
	handle(b+"/jwks", s.handleJWKS)
	handle(b+"/revoke", s.handleRevoke)
	handle(b+"/introspect", s.handleIntrospect)
	if !s.opts.Registration.Disabled {
		handle(b+"/register", s.handleRegister)
	}
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, &meta.Error{Code: "not_found", Description: "no such endpoint: " + r.URL.Path})
	})
	s.mux = m
}

// authMethods returns the supported token endpoint auth methods.
func (s *Server) authMethods() []string {
	m := []string{meta.AuthMethodClientSecretBasic, meta.AuthMethodClientSecretPost, meta.AuthMethodPrivateKeyJWT}
	if !s.opts.DisablePublicClients {
		m = append(m, meta.AuthMethodNone)
	}
	return m
}

func (s *Server) grantTypes() []string {
	g := []string{meta.GrantTypeAuthorizationCode, meta.GrantTypeRefreshToken, meta.GrantTypeClientCredentials}
	if len(s.opts.TrustedIssuers) > 0 {
		g = append(g, meta.GrantTypeJWTBearer)
	}
	return g
}

// signingAlgs are the JWS algorithms accepted for private_key_jwt.
var signingAlgs = []string{"ES256", "ES384", "RS256", "PS256", "EdDSA"}

// Metadata returns the RFC 8414 authorization server metadata.
func (s *Server) Metadata() *meta.AuthorizationServerMetadata {
	m := &meta.AuthorizationServerMetadata{
		Issuer:                            s.issuer,
		AuthorizationEndpoint:             s.endpoint("/authorize"),
		TokenEndpoint:                     s.endpoint("/token"),
		JWKSURI:                           s.endpoint("/jwks"),
		ResponseTypesSupported:            []string{meta.ResponseTypeCode},
		ResponseModesSupported:            []string{"query"},
		GrantTypesSupported:               s.grantTypes(),
		TokenEndpointAuthMethodsSupported: s.authMethods(),
		TokenEndpointAuthSigningAlgValuesSupported: signingAlgs,
		RevocationEndpoint:                         s.endpoint("/revoke"),
		RevocationEndpointAuthMethodsSupported:     s.authMethods(),
		IntrospectionEndpoint:                      s.endpoint("/introspect"),
		IntrospectionEndpointAuthMethodsSupported:  []string{meta.AuthMethodClientSecretBasic, meta.AuthMethodClientSecretPost, meta.AuthMethodPrivateKeyJWT},
		CodeChallengeMethodsSupported:              []string{meta.CodeChallengeMethodS256},
		AuthorizationResponseIssParameterSupported: true,
		ClientIDMetadataDocumentSupported:          !s.pathClosed(store.ClientMetadataDocument),
		SubjectTypesSupported:                      []string{"public"},
		IDTokenSigningAlgValuesSupported:           []string{"ES256"},
	}
	if len(s.opts.TrustedIssuers) > 0 {
		m.AuthorizationGrantProfilesSupported = []string{meta.GrantProfileIDJAG}
	}
	if !s.opts.Registration.Disabled && !s.pathClosed(store.ClientDynamic) {
		m.RegistrationEndpoint = s.endpoint("/register")
	}
	var scopes []string
	for _, r := range s.opts.Resources {
		for _, sc := range r.Scopes {
			if !slices.Contains(scopes, sc) {
				scopes = append(scopes, sc)
			}
		}
	}
	m.ScopesSupported = scopes
	return m
}

func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSON(w, http.StatusMethodNotAllowed, errInvalidRequest("use GET"))
		return
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	writeJSON(w, http.StatusOK, s.Metadata())
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSON(w, http.StatusMethodNotAllowed, errInvalidRequest("use GET"))
		return
	}
	set, err := s.keys.jwks(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := json.Marshal(set)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "max-age=300")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	_, _ = w.Write(body)
}

// VerifySignature checks a JWS signed by this server's keys and returns
// its payload. It lets a co-hosted resource server verify tokens without
// fetching the JWKS over HTTP.
func (s *Server) VerifySignature(ctx context.Context, token string) ([]byte, error) {
	return s.keys.verify(ctx, token)
}

// IsRevoked reports whether the access token with the given jti was
// revoked (for a co-hosted resource server).
func (s *Server) IsRevoked(ctx context.Context, jti string) (bool, error) {
	return s.st.IsAccessTokenRevoked(ctx, jti)
}

// DeleteExpired removes expired codes, tokens, sessions and replay
// records from the store; run it periodically.
func (s *Server) DeleteExpired(ctx context.Context) (int, error) {
	return s.st.DeleteExpired(ctx, s.now())
}

// resource returns the known resource named by uri.
func (s *Server) resource(uri string) (*Resource, bool) {
	for i := range s.opts.Resources {
		if s.opts.Resources[i].URI == uri {
			return &s.opts.Resources[i], true
		}
	}
	// Accept an uppercase scheme/host spelling of a known resource.
	if n, err := normalizeResource(uri); err == nil {
		for i := range s.opts.Resources {
			if m, _ := normalizeResource(s.opts.Resources[i].URI); m == n {
				return &s.opts.Resources[i], true
			}
		}
	}
	return nil, false
}

func validResourceURI(s string) error {
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("resource %q is not an absolute URI", s)
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return fmt.Errorf("resource %q must not contain a fragment", s)
	}
	return nil
}

func normalizeResource(s string) (string, error) {
	if err := validResourceURI(s); err != nil {
		return "", err
	}
	u, _ := url.Parse(s)
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	return u.String(), nil
}

// checkResource resolves a resource parameter; it is required.
func (s *Server) checkResource(uri string) (*Resource, error) {
	if uri == "" {
		return nil, errInvalidTarget("the resource parameter is required (RFC 8707); name the MCP server's canonical URI")
	}
	if err := validResourceURI(uri); err != nil {
		return nil, errInvalidTarget("%v", err)
	}
	res, ok := s.resource(uri)
	if !ok {
		return nil, errInvalidTarget("resource %q is not served by this authorization server", uri)
	}
	return res, nil
}

// grantScopes works out the scopes to grant for a request: requested
// scopes must all be known to the resource and allowed to the client;
// with none requested the resource's default scopes the client may have.
func (s *Server) grantScopes(res *Resource, client *store.Client, requested string) ([]string, error) {
	req, err := splitScope(requested)
	if err != nil {
		return nil, err
	}
	var allowed []string
	if client != nil && client.Scope != "" {
		allowed = strings.Fields(client.Scope)
	}
	if len(req) == 0 {
		def := res.DefaultScopes
		if def == nil {
			def = res.Scopes
		}
		var out []string
		for _, sc := range def {
			if allowed == nil || slices.Contains(allowed, sc) {
				out = append(out, sc)
			}
		}
		return out, nil
	}
	var out []string
	for _, sc := range req {
		if !slices.Contains(res.Scopes, sc) {
			return nil, errInvalidScope("scope %q is not supported by resource %s", sc, res.URI)
		}
		if allowed != nil && !slices.Contains(allowed, sc) {
			return nil, errInvalidScope("client is not allowed scope %q", sc)
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out, nil
}
