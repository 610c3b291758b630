// Package resource makes an HTTP handler an OAuth 2.1 protected resource
// for MCP: it serves RFC 9728 protected resource metadata at the
// path-inserted well-known URI and verifies bearer tokens (signature,
// expiry, audience = this resource's canonical URI, revocation, scopes),
// answering failures with RFC 6750 / RFC 9728 challenges.
//
// Tokens can be checked locally as JWTs against a key source (a JWKS URL
// or a co-hosted authorization server) or remotely through RFC 7662
// introspection. The verified Principal is put in the request context
// (PrincipalFromContext) and the Authorization header is removed before
// the protected handler runs, so the token is never forwarded.
package resource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/oauth/meta"
)

// Principal is the verified identity behind a request.
type Principal struct {
	// Subject is the token's sub (a user, or the client for client
	// credentials).
	Subject string
	// ClientID is the OAuth client the token was issued to.
	ClientID string
	// Scopes are the granted scopes.
	Scopes []string
	// TokenID is the token's jti (empty if the token has none).
	TokenID string
	// Issuer is the authorization server that issued the token.
	Issuer string
	// ExpiresAt is when the token expires.
	ExpiresAt time.Time
	// Groups, Roles, Email and Name are the user's identity attributes
	// from the token's claims ("groups", "roles", "email", "name"), as
	// the identity provider that vouched for the user or the local user
	// store gave them; empty when the token carries none. Groups and
	// Roles are sorted and free of duplicates.
	Groups, Roles []string
	Email, Name   string
	// IdP is the issuer of the enterprise identity provider that vouched
	// for the user (claim "idp"), "" for local users and clients.
	IdP string
}

// HasScopes reports whether every scope in want was granted.
func (p *Principal) HasScopes(want ...string) bool {
	for _, s := range want {
		if !slices.Contains(p.Scopes, s) {
			return false
		}
	}
	return true
}

type principalKey struct{}

// PrincipalFromContext returns the principal verified by the middleware.
func PrincipalFromContext(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok
}

// ContextWithPrincipal returns ctx carrying p (for tests and for
// transports that authenticate otherwise).
func ContextWithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// TokenVerifier checks an access token presented to this resource.
// Implementations return an error wrapping ErrInvalidToken for tokens
// that must be refused with 401.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (*Principal, error)
}

// ErrInvalidToken is wrapped by verifier errors for bad, expired,
// revoked or foreign tokens.
var ErrInvalidToken = errors.New("invalid token")

// Options configures a protected resource.
type Options struct {
	// AuthorizationServers are the issuers listed in the metadata
	// (required for MCP).
	AuthorizationServers []string
	// ScopesSupported are listed in the metadata.
	ScopesSupported []string
	// RequiredScopes are needed for every request; handlers may ask for
	// more with RequireScopes or InsufficientScope.
	RequiredScopes []string
	// ResourceName is the human-readable name in the metadata.
	ResourceName string
	// ResourceDocumentation is a URL in the metadata.
	ResourceDocumentation string
	// Logger receives refusals (never tokens); nil means slog.Default().
	Logger *slog.Logger
}

// Resource is one protected resource.
type Resource struct {
	uri      string
	metaURL  string
	metaPath string
	verifier TokenVerifier
	opts     Options
	log      *slog.Logger
}

// New returns a protected resource whose canonical URI (RFC 8707, e.g.
// https://gw.example.com/mcp) is uri, checking tokens with v.
func New(uri string, v TokenVerifier, opts *Options) (*Resource, error) {
	u, err := url.Parse(uri)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" || strings.Contains(uri, "#") {
		return nil, fmt.Errorf("resource: %q is not an absolute URI without fragment", uri)
	}
	if v == nil {
		return nil, errors.New("resource: nil TokenVerifier")
	}
	mu, err := meta.ProtectedResourceMetadataURL(uri)
	if err != nil {
		return nil, fmt.Errorf("resource: %w", err)
	}
	pu, _ := url.Parse(mu)
	r := &Resource{uri: uri, metaURL: mu, metaPath: pu.EscapedPath(), verifier: v}
	if opts != nil {
		r.opts = *opts
	}
	r.log = r.opts.Logger
	if r.log == nil {
		r.log = slog.Default()
	}
	return r, nil
}

// URI returns the canonical resource URI.
func (r *Resource) URI() string { return r.uri }

// MetadataURL returns the absolute URL of the protected resource
// metadata (the path-inserted well-known URI).
func (r *Resource) MetadataURL() string { return r.metaURL }

// MetadataPath returns the path to mount MetadataHandler at.
func (r *Resource) MetadataPath() string { return r.metaPath }

// Metadata returns the RFC 9728 document.
func (r *Resource) Metadata() *meta.ProtectedResourceMetadata {
	return &meta.ProtectedResourceMetadata{
		Resource: r.uri, AuthorizationServers: r.opts.AuthorizationServers, ScopesSupported: r.opts.ScopesSupported,
		BearerMethodsSupported: []string{"header"}, ResourceName: r.opts.ResourceName, ResourceDocumentation: r.opts.ResourceDocumentation,
	}
}

// MetadataHandler serves the protected resource metadata.
func (r *Resource) MetadataHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body, err := json.Marshal(r.Metadata())
		if err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=300")
		w.Header().Set("Access-Control-Allow-Origin", "*")
		_, _ = w.Write(body)
	})
}

// Mount registers the metadata handler on mux.
func (r *Resource) Mount(mux *http.ServeMux) {
	mux.Handle(r.metaPath, r.MetadataHandler())
}

// challenge writes a Bearer challenge.
func (r *Resource) challenge(w http.ResponseWriter, status int, code, desc string, scopes []string) {
	b := meta.BearerChallenge{ResourceMetadata: r.metaURL, Scope: strings.Join(scopes, " "), Error: code, ErrorDescription: desc}
	v, err := b.Format()
	if err != nil {
		// Only a description with characters a quoted-string cannot
		// carry gets here; drop it.
		b.ErrorDescription = ""
		v, _ = b.Format()
	}
	w.Header().Set("WWW-Authenticate", v)
	w.Header().Set("Cache-Control", "no-store")
	if code == "" {
		http.Error(w, http.StatusText(status), status)
		return
	}
	body, _ := json.Marshal(&meta.Error{Code: code, Description: desc})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// InsufficientScope answers 403 insufficient_scope naming the scopes the
// request needs (include the ones already granted that remain needed).
func (r *Resource) InsufficientScope(w http.ResponseWriter, needed []string, desc string) {
	if desc == "" {
		desc = "this request needs scope " + strings.Join(needed, " ")
	}
	r.challenge(w, http.StatusForbidden, meta.ErrInsufficientScope, desc, needed)
}

// bearerToken extracts the token from an Authorization header. Tokens in
// the query or body are never accepted.
func bearerToken(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	if tok == "" || strings.ContainsAny(tok, " \t,") {
		return "", false
	}
	return tok, true
}

// Middleware protects next: requests need a valid bearer token for this
// resource with RequiredScopes plus extra.
func (r *Resource) Middleware(next http.Handler, extra ...string) http.Handler {
	required := append(slices.Clone(r.opts.RequiredScopes), extra...)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		hs := req.Header.Values("Authorization")
		if len(hs) == 0 {
			r.challenge(w, http.StatusUnauthorized, "", "", required)
			return
		}
		tok, ok := bearerToken(hs[0])
		if len(hs) > 1 || !ok {
			r.challenge(w, http.StatusBadRequest, meta.ErrInvalidRequest, "use exactly one Authorization: Bearer header", required)
			return
		}
		if req.URL.RawQuery != "" && req.URL.Query().Has("access_token") {
			r.challenge(w, http.StatusBadRequest, meta.ErrInvalidRequest, "access tokens are not accepted in the query", required)
			return
		}
		p, err := r.verifier.Verify(req.Context(), tok)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) {
				r.log.ErrorContext(req.Context(), "resource: token verification failed", "err", err)
				http.Error(w, "token verification unavailable", http.StatusServiceUnavailable)
				return
			}
			r.log.DebugContext(req.Context(), "resource: token refused", "err", err)
			r.challenge(w, http.StatusUnauthorized, meta.ErrInvalidToken, strings.TrimPrefix(err.Error(), ErrInvalidToken.Error()+": "), required)
			return
		}
		if !p.HasScopes(required...) {
			r.InsufficientScope(w, union(p.Scopes, required), "")
			return
		}
		req2 := req.Clone(ContextWithPrincipal(req.Context(), p))
		// Never pass the caller's token further.
		req2.Header.Del("Authorization")
		next.ServeHTTP(w, req2)
	})
}

// RequireScopes wraps a handler already behind Middleware with a check
// for more scopes.
func (r *Resource) RequireScopes(next http.Handler, scopes ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		p, ok := PrincipalFromContext(req.Context())
		if !ok {
			r.challenge(w, http.StatusUnauthorized, "", "", scopes)
			return
		}
		if !p.HasScopes(scopes...) {
			r.InsufficientScope(w, union(p.Scopes, scopes), "")
			return
		}
		next.ServeHTTP(w, req)
	})
}

// union returns the granted scopes followed by the missing needed ones,
// so that a step-up request keeps what the client already has.
func union(granted, needed []string) []string {
	out := slices.Clone(granted)
	for _, s := range needed {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
