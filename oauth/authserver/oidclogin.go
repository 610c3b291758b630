package authserver

import (
	"context"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-json-experiment/json"
	"golang.org/x/oauth2"

	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/principal"
	"github.com/mcpgate/mcpgate/store"
)

// oidcLogin signs users in through an enterprise OpenID Connect
// provider. Discovery happens on first use, so that the authorization
// server starts even while the provider is unreachable.
type oidcLogin struct {
	s           *Server
	cfg         OIDCLogin
	displayName string
	hc          *http.Client

	mu       sync.Mutex
	provider *oidc.Provider
}

const oidcStateCookie = "mcpgate_oidc"

// pendingOIDC is the state kept between the redirect to the provider and
// its callback.
type pendingOIDC struct {
	Nonce    string `json:"nonce"`
	Verifier string `json:"verifier"`
	Authz    string `json:"authz"`
	// Next is set instead of Authz by a browser sign-in (signin.go).
	Next string `json:"next,omitempty"`
}

func newOIDCLogin(_ context.Context, s *Server, cfg *OIDCLogin) (*oidcLogin, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" {
		return nil, errors.New("oidc login: Issuer and ClientID are required")
	}
	switch cfg.SubjectClaim {
	case "", "sub", "email":
	default:
		return nil, fmt.Errorf("oidc login: SubjectClaim %q must be sub or email", cfg.SubjectClaim)
	}
	o := &oidcLogin{s: s, cfg: *cfg, displayName: cfg.DisplayName, hc: cfg.HTTPClient}
	if o.displayName == "" {
		o.displayName = "Single sign-on"
	}
	if o.hc == nil {
		o.hc = http.DefaultClient
	}
	return o, nil
}

func (o *oidcLogin) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, o.hc)
}

func (o *oidcLogin) getProvider(ctx context.Context) (*oidc.Provider, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider != nil {
		return o.provider, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(o.ctx(ctx), o.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc discovery for %s: %w", o.cfg.Issuer, err)
	}
	o.provider = p
	return p, nil
}

func (o *oidcLogin) oauth2Config(p *oidc.Provider) *oauth2.Config {
	scopes := o.cfg.Scopes
	if scopes == nil {
		scopes = []string{"profile", "email"}
	}
	return &oauth2.Config{ClientID: o.cfg.ClientID, ClientSecret: o.cfg.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: o.s.endpoint("/login/oidc/callback"), Scopes: append([]string{oidc.ScopeOpenID}, scopes...)}
}

// handleOIDCStart redirects the user to the provider.
func (s *Server) handleOIDCStart(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		s.errorPage(w, r, oauthErr(http.StatusMethodNotAllowed, meta.ErrInvalidRequest, "use GET"))
		return
	}
	authz, next := r.URL.Query().Get("authz"), r.URL.Query().Get("next")
	if authz == "" && next != "" {
		if !s.signInReturnAllowed(next) {
			s.errorPage(w, r, errInvalidRequest("next is not a sign-in return path of this server"))
			return
		}
	} else if _, ae := s.checkAuthorize(r.Context(), authz); ae != nil {
		s.authorizeFailed(w, r, ae)
		return
	}
	p, err := s.oidc.getProvider(r.Context())
	if err != nil {
		s.log.ErrorContext(r.Context(), "oauth: enterprise sign-in unavailable", "err", err)
		s.errorPage(w, r, oauthErr(http.StatusServiceUnavailable, meta.ErrTemporarilyUnavailable, "the identity provider is unreachable"))
		return
	}
	state := meta.RandomToken(24)
	pend := pendingOIDC{Nonce: meta.RandomToken(24), Verifier: oauth2.GenerateVerifier(), Authz: authz, Next: next}
	data, _ := json.Marshal(pend)
	if err := s.st.CreateSession(r.Context(), &store.Session{IDHash: store.Digest(state), Kind: "oidc-pending", Data: string(data), ExpiresAt: s.now().Add(10 * time.Minute)}); err != nil {
		s.errorPage(w, r, errServer(err))
		return
	}
	s.setCookie(w, oidcStateCookie, state, 600)
	u := s.oidc.oauth2Config(p).AuthCodeURL(state, oidc.Nonce(pend.Nonce), oauth2.S256ChallengeOption(pend.Verifier))
	http.Redirect(w, r, u, http.StatusFound)
}

// handleOIDCCallback completes enterprise sign-in and resumes the
// authorization request.
func (s *Server) handleOIDCCallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		s.errorPage(w, r, oauthErr(http.StatusForbidden, meta.ErrAccessDenied, "the identity provider refused sign-in: %s", e))
		return
	}
	state := q.Get("state")
	c, err := r.Cookie(oidcStateCookie)
	if state == "" || err != nil || c.Value != state {
		s.errorPage(w, r, errInvalidRequest("sign-in state does not match this browser; start again"))
		return
	}
	se, err := s.st.GetSession(ctx, store.Digest(state), s.now())
	if err != nil || se.Kind != "oidc-pending" {
		s.errorPage(w, r, errInvalidRequest("sign-in expired; start again"))
		return
	}
	_ = s.st.DeleteSession(ctx, se.IDHash)
	s.setCookie(w, oidcStateCookie, "", -1)
	var pend pendingOIDC
	if err := json.Unmarshal([]byte(se.Data), &pend); err != nil {
		s.errorPage(w, r, errServer(err))
		return
	}
	p, err := s.oidc.getProvider(ctx)
	if err != nil {
		s.errorPage(w, r, oauthErr(http.StatusServiceUnavailable, meta.ErrTemporarilyUnavailable, "the identity provider is unreachable"))
		return
	}
	cfg := s.oidc.oauth2Config(p)
	tok, err := cfg.Exchange(s.oidc.ctx(ctx), q.Get("code"), oauth2.VerifierOption(pend.Verifier))
	if err != nil {
		s.log.WarnContext(ctx, "oauth: enterprise sign-in code exchange failed", "err", err)
		s.errorPage(w, r, oauthErr(http.StatusBadGateway, meta.ErrAccessDenied, "the identity provider did not accept the sign-in"))
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		s.errorPage(w, r, oauthErr(http.StatusBadGateway, meta.ErrAccessDenied, "the identity provider returned no ID token"))
		return
	}
	idt, err := p.VerifierContext(s.oidc.ctx(ctx), &oidc.Config{ClientID: s.oidc.cfg.ClientID, Now: s.now}).Verify(s.oidc.ctx(ctx), raw)
	if err != nil {
		s.log.WarnContext(ctx, "oauth: enterprise ID token refused", "err", err)
		s.errorPage(w, r, oauthErr(http.StatusForbidden, meta.ErrAccessDenied, "the ID token is not valid"))
		return
	}
	if idt.Nonce != pend.Nonce {
		s.errorPage(w, r, oauthErr(http.StatusForbidden, meta.ErrAccessDenied, "the ID token nonce does not match"))
		return
	}
	subject, err := s.oidc.subject(idt)
	if err != nil {
		s.errorPage(w, r, oauthErr(http.StatusForbidden, meta.ErrAccessDenied, "%v", err))
		return
	}
	attrs, err := s.oidc.attributes(idt)
	if err != nil {
		s.log.WarnContext(ctx, "oauth: enterprise ID token claims refused", "err", err)
		s.errorPage(w, r, attributesRefused(err))
		return
	}
	if e := s.refused(ctx, subject, ""); e != nil {
		s.errorPage(w, r, e)
		return
	}
	if err := s.startSession(w, r, subject, attrs); err != nil {
		s.errorPage(w, r, errServer(err))
		return
	}
	s.log.InfoContext(ctx, "oauth: enterprise sign-in", "sub", subject)
	if f := s.oidc.cfg.OnSignIn; f != nil {
		f(ctx, subject, raw, idt.Issuer, idt.Expiry)
	}
	if pend.Authz == "" && pend.Next != "" {
		http.Redirect(w, r, s.SignInURL(pend.Next), http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, s.endpoint("/authorize")+"?"+pend.Authz, http.StatusSeeOther)
}

// attributes reads the user's identity attributes from a verified ID
// token.
func (o *oidcLogin) attributes(idt *oidc.IDToken) (principal.Attributes, error) {
	var raw stdjson.RawMessage
	if err := idt.Claims(&raw); err != nil {
		return principal.Attributes{}, fmt.Errorf("reading ID token claims: %w", err)
	}
	return AttributesFromClaims(raw, o.cfg.Issuer, o.cfg.Claims)
}

// subject maps a verified ID token to the local subject.
func (o *oidcLogin) subject(idt *oidc.IDToken) (string, error) {
	if o.cfg.SubjectClaim == "email" {
		var c struct {
			Email    string `json:"email"`
			Verified *bool  `json:"email_verified"`
		}
		if err := idt.Claims(&c); err != nil {
			return "", fmt.Errorf("reading ID token claims: %w", err)
		}
		if c.Email == "" || c.Verified == nil || !*c.Verified {
			return "", errors.New("the ID token has no verified email")
		}
		return strings.ToLower(c.Email), nil
	}
	return principal.Federated(idt.Issuer, idt.Subject).String(), nil
}
