package upstreamauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/oauth/oauthclient"
	"github.com/mcpgate/mcpgate/oauth/safehttp"
	"github.com/mcpgate/mcpgate/store"
)

func originOf(raw string) string {
	o, _ := meta.Origin(raw)
	return o
}

// sameOrigin reports whether req goes to the upstream's origin: tokens
// are never attached to requests anywhere else.
func sameOrigin(origin string, req *http.Request) bool {
	o, err := meta.Origin(req.URL.String())
	return err == nil && origin != "" && o == origin
}

// replayable reports whether req can be sent a second time.
func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// retryRequest returns a copy of req with a fresh body for a replay.
func retryRequest(req *http.Request) (*http.Request, error) {
	r := req.Clone(req.Context())
	if req.GetBody != nil {
		b, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		r.Body = b
	}
	return r, nil
}

func withBearer(req *http.Request, token string) *http.Request {
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

func discardBody(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// --- Discovery and the authorization server client ---

// asClient returns the SSRF-safe client for the upstream's authorization
// server. Loopback (and private) addresses are allowed only when the
// upstream itself is configured at such an address.
func (s *Service) asClient(up Upstream) *http.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	if hc := s.asHTTP[up.Name]; hc != nil {
		return hc
	}
	opts := &safehttp.Options{}
	if pu, err := url.Parse(up.URL); err == nil {
		host := pu.Hostname()
		if safehttp.IsLoopbackHost(host) {
			opts.AllowLoopback, opts.AllowInsecureLoopback = true, true
		} else if ip, err := netip.ParseAddr(host); err == nil && ip.IsPrivate() {
			opts.AllowPrivate = true
		}
	}
	hc := safehttp.NewClient(opts)
	s.asHTTP[up.Name] = hc
	return hc
}

// discovery finds the upstream's authorization server: from the
// challenge of an unauthenticated request to the upstream, through its
// protected resource metadata. For client credentials with token_url, the
// token endpoint is taken as given instead.
func (s *Service) discovery(ctx context.Context, up Upstream) (*oauthclient.Discovery, error) {
	s.mu.Lock()
	d := s.disc[up.Name]
	s.mu.Unlock()
	if d != nil {
		return d, nil
	}
	cr := up.Credentials
	if cr.Type == config.CredentialsOAuthClientCredentials && cr.TokenURL != "" {
		d = &oauthclient.Discovery{ServerURL: up.URL, Resource: up.URL,
			AuthorizationServer: &meta.AuthorizationServerMetadata{TokenEndpoint: cr.TokenURL}}
	} else {
		ch, err := s.probe(ctx, up)
		if err != nil {
			return nil, err
		}
		if d, err = oauthclient.Discover(ctx, s.asClient(up), up.URL, ch, nil); err != nil {
			return nil, fmt.Errorf("upstream %s: finding its authorization server: %w", up.Name, err)
		}
		if cr.TokenURL != "" {
			as := *d.AuthorizationServer
			as.TokenEndpoint = cr.TokenURL
			d.AuthorizationServer = &as
		}
	}
	s.mu.Lock()
	s.disc[up.Name] = d
	s.mu.Unlock()
	return d, nil
}

// probe sends the upstream a request without credentials and returns the
// Bearer challenge of its 401, or nil when it did not send one.
func (s *Service) probe(ctx context.Context, up Upstream) (*meta.BearerChallenge, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, up.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", up.Name, err)
	}
	req.Header.Set("Accept", "text/event-stream, application/json")
	resp, err := s.httpc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", up.Name, err)
	}
	if resp.StatusCode != http.StatusUnauthorized {
		resp.Body.Close() // may be an event stream that never ends: do not read it
		return nil, nil
	}
	discardBody(resp)
	ch, _ := meta.ParseBearerChallenge(resp.Header) // unparseable: discover without hints
	return ch, nil
}

func scope(up Upstream, d *oauthclient.Discovery) string {
	if s := up.Credentials.Scopes; len(s) > 0 {
		return strings.Join(s, " ")
	}
	return d.SelectScope()
}

// configuredClient returns the client_id and secret from the
// configuration, or nil when there is no client_id.
func configuredClient(up Upstream) (*oauthclient.ClientAuth, error) {
	cr := up.Credentials
	if cr.ClientID == "" {
		return nil, nil
	}
	c := &oauthclient.ClientAuth{ClientID: cr.ClientID}
	if cr.ClientSecretEnv != "" || cr.ClientSecretFile != "" {
		secret, err := config.ReadSecret(cr.ClientSecretEnv, cr.ClientSecretFile)
		if err != nil {
			return nil, fmt.Errorf("upstream %s client secret: %w", up.Name, err)
		}
		c.ClientSecret = secret
	}
	return c, nil
}

// --- Client credentials ---

// clientCredentialsSource holds the gateway's own token for one upstream.
type clientCredentialsSource struct {
	s  *Service
	up Upstream
	mu sync.Mutex
	tk *oauthclient.Token
}

func (s *Service) clientCredentials(up Upstream) *clientCredentialsSource {
	s.mu.Lock()
	defer s.mu.Unlock()
	src := s.cc[up.Name]
	if src == nil {
		src = &clientCredentialsSource{s: s, up: up}
		s.cc[up.Name] = src
	}
	return src
}

// token returns a valid token, obtaining a new one if there is none, it
// expired, or it is rejected (the access token the upstream refused).
func (c *clientCredentialsSource) token(ctx context.Context, rejected string) (*oauthclient.Token, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tk != nil && !c.tk.Expired(time.Now()) && c.tk.AccessToken != rejected {
		return c.tk, nil
	}
	c.tk = nil
	d, err := c.s.discovery(ctx, c.up)
	if err != nil {
		return nil, err
	}
	client, err := configuredClient(c.up)
	if err != nil {
		return nil, err
	}
	if client == nil || client.ClientSecret == "" {
		return nil, fmt.Errorf("upstream %s: oauth_client_credentials needs client_id and a client secret", c.up.Name)
	}
	tk, err := oauthclient.ClientCredentials(ctx, c.s.asClient(c.up), d, client, scope(c.up, d))
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", c.up.Name, err)
	}
	c.tk = tk
	return tk, nil
}

// clientCredentialsTransport adds the gateway's token to requests for the
// upstream and renews it once when the upstream rejects it.
type clientCredentialsTransport struct {
	base   http.RoundTripper
	src    *clientCredentialsSource
	origin string
}

func (t *clientCredentialsTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !sameOrigin(t.origin, req) {
		return t.base.RoundTrip(req)
	}
	tk, err := t.src.token(req.Context(), "")
	if err != nil {
		return nil, err
	}
	resp, err := t.base.RoundTrip(withBearer(req, tk.AccessToken))
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !replayable(req) {
		return resp, err
	}
	discardBody(resp)
	if tk, err = t.src.token(req.Context(), tk.AccessToken); err != nil {
		return nil, err
	}
	r2, err := retryRequest(req)
	if err != nil {
		return nil, err
	}
	return t.base.RoundTrip(withBearer(r2, tk.AccessToken))
}

// --- Per-user tokens ---

// loadToken returns the principal's stored token for the upstream, or nil
// when there is none usable.
func (s *Service) loadToken(ctx context.Context, up Upstream, principal string) (*oauthclient.Token, error) {
	rec, err := s.tokens.GetUpstreamToken(ctx, principal, up.Name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("upstream %s: loading the token of %s: %w", up.Name, principal, err)
	}
	tk, err := s.sealer.Open(principal, up.Name, rec.Ciphertext)
	if err == nil && !oauthclient.ResourceMatches(tk.Resource, up.URL) {
		err = errors.New("the token is for another resource")
	}
	if err != nil {
		up.Logger.Warn("discarding a stored per-user token", "principal", principal, "error", err)
		_ = s.tokens.DeleteUpstreamToken(ctx, principal, up.Name)
		return nil, nil
	}
	return tk, nil
}

func (s *Service) saveToken(ctx context.Context, up Upstream, principal string, tk *oauthclient.Token) error {
	sealed, err := s.sealer.Seal(principal, up.Name, tk)
	if err != nil {
		return err
	}
	return s.tokens.PutUpstreamToken(ctx, &store.UpstreamToken{Principal: principal, Upstream: up.Name, Ciphertext: sealed, UpdatedAt: time.Now()})
}

// refresh renews the principal's token with its refresh token. stale is
// the token the caller holds; if the stored one already differs (another
// session refreshed it), that one is returned.
func (s *Service) refresh(ctx context.Context, up Upstream, principal string, stale *oauthclient.Token) (*oauthclient.Token, error) {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	cur, err := s.loadToken(ctx, up, principal)
	if err != nil {
		return nil, err
	}
	if cur != nil && (stale == nil || cur.AccessToken != stale.AccessToken) && !cur.Expired(time.Now()) {
		return cur, nil
	}
	if cur == nil || cur.RefreshToken == "" {
		return nil, errors.New("no refresh token")
	}
	client := &oauthclient.ClientAuth{ClientID: cur.ClientID}
	if c, _ := configuredClient(up); c != nil && c.ClientID == cur.ClientID {
		client = c
	} else {
		s.mu.Lock()
		if c := s.clients[up.Name]; c != nil && c.ClientID == cur.ClientID {
			client = c
		}
		s.mu.Unlock()
	}
	var as *meta.AuthorizationServerMetadata
	s.mu.Lock()
	if d := s.disc[up.Name]; d != nil && d.AuthorizationServer != nil && d.AuthorizationServer.TokenEndpoint == cur.TokenEndpoint {
		as = d.AuthorizationServer
	}
	s.mu.Unlock()
	nt, err := oauthclient.Refresh(ctx, s.asClient(up), client, cur, as)
	if err != nil {
		_ = s.tokens.DeleteUpstreamToken(ctx, principal, up.Name)
		return nil, err
	}
	if err := s.saveToken(ctx, up, principal, nt); err != nil {
		return nil, err
	}
	return nt, nil
}

// forget removes the principal's token (the upstream refused it and it
// cannot be refreshed).
func (s *Service) forget(ctx context.Context, up Upstream, principal string) {
	if err := s.tokens.DeleteUpstreamToken(ctx, principal, up.Name); err != nil {
		up.Logger.Warn("deleting a per-user token", "principal", principal, "error", err)
	}
}

// userTokenTransport adds the principal's token to requests for the
// upstream. An expired token is refreshed; when that fails, or the
// upstream refuses the token, the request fails with a
// URLElicitationRequiredError that asks the user to authorize again.
type userTokenTransport struct {
	base      http.RoundTripper
	s         *Service
	up        Upstream
	principal string
	origin    string

	mu sync.Mutex
	tk *oauthclient.Token
}

// token returns a usable token or the error to give the caller.
func (t *userTokenTransport) token(ctx context.Context, rejected *oauthclient.Token) (*oauthclient.Token, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tk == nil { // after a failure, the user may have authorized again
		tk, err := t.s.loadToken(ctx, t.up, t.principal)
		if err != nil {
			return nil, err
		}
		t.tk = tk
	}
	if t.tk != nil && rejected == nil && !t.tk.Expired(time.Now()) {
		return t.tk, nil
	}
	stale := t.tk
	if rejected != nil {
		stale = rejected
	}
	if stale != nil {
		nt, err := t.s.refresh(ctx, t.up, t.principal, stale)
		if err == nil {
			t.tk = nt
			return nt, nil
		}
		t.up.Logger.Info("per-user token could not be refreshed; asking the user again", "principal", t.principal, "error", err)
	}
	t.tk = nil
	t.s.forget(ctx, t.up, t.principal)
	return nil, t.s.ElicitationRequired(ctx, t.up, t.principal)
}

func (t *userTokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !sameOrigin(t.origin, req) {
		return t.base.RoundTrip(req)
	}
	tk, err := t.token(req.Context(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := t.base.RoundTrip(withBearer(req, tk.AccessToken))
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	discardBody(resp)
	if tk, err = t.token(req.Context(), tk); err != nil {
		return nil, err
	}
	if !replayable(req) {
		return nil, fmt.Errorf("upstream %s refused the token; it was renewed, retry the request", t.up.Name)
	}
	r2, err := retryRequest(req)
	if err != nil {
		return nil, err
	}
	return t.base.RoundTrip(withBearer(r2, tk.AccessToken))
}

// Outcomes of RevokeGrant.
const (
	// GrantNone: the principal held no token for the upstream.
	GrantNone = "none"
	// GrantRevoked: the upstream's authorization server revoked the grant
	// (RFC 7009).
	GrantRevoked = "revoked"
	// GrantDropped: the principal's enterprise token was deleted (such
	// tokens have no refresh token and are not revoked at the upstream;
	// the next request needs a new exchange, which the identity provider
	// decides).
	GrantDropped = "dropped"
	// GrantNotRevocable: the upstream's authorization server offers no
	// revocation endpoint; the grant may stay live there until it
	// expires.
	GrantNotRevocable = "not-revocable"
)

// RevokeGrant ends the principal's per-user grant at up: it revokes the
// stored refresh and access tokens at the upstream's authorization server
// (RFC 7009) when its metadata offers a revocation_endpoint, and deletes
// the stored token in every case, so that the gateway never uses it again.
// For enterprise credentials it deletes the token and returns
// GrantDropped. It returns GrantNone, GrantRevoked or GrantNotRevocable; an error says
// why the authorization server could not be asked or refused (the token
// is deleted all the same).
func (s *Service) RevokeGrant(ctx context.Context, up Upstream, principal string) (string, error) {
	if s.tokens == nil || !PerUser(up.Credentials) {
		return GrantNone, nil
	}
	up = s.described(up)
	if Enterprise(up.Credentials) {
		return s.dropEnterprise(ctx, up, principal)
	}
	s.refreshMu.Lock() // no refresh replaces the token meanwhile
	defer s.refreshMu.Unlock()
	tk, err := s.loadToken(ctx, up, principal)
	if err != nil {
		return GrantNone, err
	}
	if tk == nil {
		return GrantNone, nil
	}
	defer func() {
		if err := s.tokens.DeleteUpstreamToken(context.WithoutCancel(ctx), principal, up.Name); err != nil {
			up.Logger.Warn("deleting a per-user token", "principal", principal, "error", err)
		}
	}()
	as, err := s.revocationServer(ctx, up, tk)
	if err != nil {
		return GrantNone, fmt.Errorf("upstream %s: finding its authorization server to revoke the grant of %s: %w", up.Name, principal, err)
	}
	client := &oauthclient.ClientAuth{ClientID: tk.ClientID}
	if c, _ := configuredClient(up); c != nil && c.ClientID == tk.ClientID {
		client = c
	} else {
		s.mu.Lock()
		if c := s.clients[up.Name]; c != nil && c.ClientID == tk.ClientID {
			client = c
		}
		s.mu.Unlock()
	}
	err = oauthclient.Revoke(ctx, s.asClient(up), client, tk, as)
	switch {
	case errors.Is(err, oauthclient.ErrNoRevocationEndpoint):
		up.Logger.Warn("the upstream's authorization server offers no revocation endpoint: the per-user grant stays live there until it expires", "principal", principal)
		return GrantNotRevocable, nil
	case err != nil:
		return GrantNone, fmt.Errorf("upstream %s: revoking the grant of %s at %s: %w", up.Name, principal, as.RevocationEndpoint, err)
	}
	return GrantRevoked, nil
}

// dropEnterprise deletes principal's enterprise token for up.
func (s *Service) dropEnterprise(ctx context.Context, up Upstream, principal string) (string, error) {
	l := s.entLock(principal, up.Name)
	l.Lock()
	defer l.Unlock()
	if _, err := s.tokens.GetUpstreamToken(ctx, principal, up.Name); errors.Is(err, store.ErrNotFound) {
		return GrantNone, nil
	}
	if err := s.tokens.DeleteUpstreamToken(context.WithoutCancel(ctx), principal, up.Name); err != nil {
		return GrantNone, fmt.Errorf("upstream %s: deleting the enterprise token of %s: %w", up.Name, principal, err)
	}
	return GrantDropped, nil
}

// revocationServer returns the metadata of the authorization server that
// issued tk: the upstream's discovered one when it is that server.
func (s *Service) revocationServer(ctx context.Context, up Upstream, tk *oauthclient.Token) (*meta.AuthorizationServerMetadata, error) {
	d, err := s.discovery(ctx, up)
	if err != nil {
		return nil, err
	}
	as := d.AuthorizationServer
	if as == nil {
		return nil, errors.New("no authorization server metadata")
	}
	if tk.TokenEndpoint != "" && as.TokenEndpoint != "" && tk.TokenEndpoint != as.TokenEndpoint {
		return nil, fmt.Errorf("the token was issued by another authorization server (token endpoint %s)", tk.TokenEndpoint)
	}
	return as, nil
}
