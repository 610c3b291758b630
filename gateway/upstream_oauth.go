package gateway

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/oauth/oauthclient"
	"github.com/mcpgate/mcpgate/oauth/safehttp"
	"github.com/mcpgate/mcpgate/store"
)

// OAuth upstream credentials.
//
// "oauth_client_credentials": the gateway is an OAuth client of the
// upstream's authorization server in its own name. The token endpoint is
// discovered from the upstream's 401 challenge (protected resource
// metadata, then authorization server metadata), or is token_url when set.
// One token serves every principal; it is cached in memory and replaced
// when it expires or the upstream rejects it.
//
// "oauth_user": every principal authorizes the gateway at the upstream's
// authorization server themselves. A principal without a token gets, for
// any request that needs the upstream, a URLElicitationRequiredError
// (-32042) pointing at the gateway's connect page
// (<base>/upstream-auth/<elicitation id>). That page checks that the
// browser belongs to the principal the elicitation was made for, binds
// the browser to the flow with a cookie and redirects to the upstream's
// authorization endpoint (authorization code with PKCE; the gateway's
// client is the configured client_id, else a Client ID Metadata Document
// when the gateway's public URL is https, else dynamic registration). The
// callback (<base>/upstream-auth/callback) checks state, the browser
// cookie and the user again, exchanges the code, stores the tokens sealed
// with AES-256-GCM per (principal, upstream), and tells the principal's
// sessions with notifications/elicitation/complete. Refresh tokens are
// used when the access token expires; when refreshing fails, the principal
// is asked again.

const (
	// UpstreamTokenKeyFile is the file in the data directory holding the
	// key that seals per-user upstream tokens.
	UpstreamTokenKeyFile = "upstream-tokens.key"
	// elicitationTTL bounds an upstream authorization from the
	// elicitation to the callback.
	elicitationTTL = 10 * time.Minute
	// minElicitationLeft is the least time an elicitation must have left
	// to be handed out again (rather than a new one).
	minElicitationLeft = 2 * time.Minute
	// asSessionCookie is the built-in authorization server's browser
	// session cookie (scoped to the issuer path, under which the connect
	// and callback pages are mounted when auth is "oauth").
	asSessionCookie = "mcpgate_session"
	// flowCookiePrefix names the cookie binding a browser to one flow.
	flowCookiePrefix = "mcpgate_upauth_"
	// sealVersion is the first byte of sealed tokens.
	sealVersion = 1
)

// upstreamOAuth is the gateway's state for OAuth upstream credentials.
type upstreamOAuth struct {
	g       *Gateway
	tokens  store.UpstreamTokenStore // nil unless some upstream is oauth_user
	keyPath string                   // "" means an ephemeral key
	base    string                   // URL of the connect pages, no trailing slash
	path    string                   // its path

	keyOnce sync.Once
	aead    cipher.AEAD
	keyErr  error

	refreshMu sync.Mutex // serialises refreshes of per-user tokens

	mu      sync.Mutex
	asHTTP  map[string]*http.Client             // by upstream name: for its authorization server
	disc    map[string]*oauthclient.Discovery   // by upstream name
	clients map[string]*oauthclient.ClientAuth  // registered clients, by upstream name
	cc      map[string]*clientCredentialsSource // by upstream name
	flows   map[string]*authFlow                // by elicitation id
	byState map[string]*authFlow                // by OAuth state, once known
	pending map[[2]string]*authFlow             // by (principal, upstream)
}

// newUpstreamOAuth prepares OAuth upstream credentials. It never fails:
// problems are reported when an upstream needs them.
func newUpstreamOAuth(g *Gateway) *upstreamOAuth {
	o := &upstreamOAuth{
		g:       g,
		asHTTP:  make(map[string]*http.Client),
		disc:    make(map[string]*oauthclient.Discovery),
		clients: make(map[string]*oauthclient.ClientAuth),
		cc:      make(map[string]*clientCredentialsSource),
		flows:   make(map[string]*authFlow),
		byState: make(map[string]*authFlow),
		pending: make(map[[2]string]*authFlow),
	}
	perUser := false
	for _, u := range g.upstreams {
		perUser = perUser || u.perUser()
	}
	if !perUser {
		return o
	}
	if g.cfg.DataDir != "" {
		o.keyPath = filepath.Join(g.cfg.DataDir, UpstreamTokenKeyFile)
	} else {
		g.logger.Warn("no data directory: per-user upstream tokens are sealed with a key that ends with the process")
	}
	if g.auth != nil {
		if ts, ok := g.auth.store.(store.UpstreamTokenStore); ok {
			o.tokens = ts
		}
	}
	if o.tokens == nil {
		g.logger.Warn("the store cannot keep per-user upstream tokens; they are kept in memory until the gateway stops")
		o.tokens = store.NewUpstreamTokensMemory()
	}
	base := strings.TrimRight(g.cfg.PublicURL, "/")
	if base == "" && g.cfg.Listen != "" {
		base = "http://" + g.cfg.Listen
	}
	if g.auth != nil {
		// Under the issuer path, so that the browser sends the
		// authorization server's session cookie, which says who the user
		// is.
		base = strings.TrimRight(g.auth.as.Issuer(), "/")
	}
	if base != "" {
		o.base = base + "/upstream-auth"
		if pu, err := url.Parse(o.base); err == nil {
			o.path = pu.EscapedPath()
		}
	}
	return o
}

// perUser reports whether the upstream's sessions need each principal's
// own consent.
func (u *upstream) perUser() bool {
	return u.cfg.Credentials != nil && u.cfg.Credentials.Type == config.CredentialsOAuthUser
}

// oauthHTTPClient returns the HTTP client for an upstream whose credentials
// are OAuth: the gateway's own client credentials, or the principal's own
// consent ("oauth_user").
func (u *upstream) oauthHTTPClient(ctx context.Context, base *http.Client, principal string) (*http.Client, error) {
	o := u.g.upOAuth
	c := *base
	switch u.cfg.Credentials.Type {
	case config.CredentialsOAuthClientCredentials:
		c.Transport = &clientCredentialsTransport{base: transportOf(base), src: o.clientCredentials(u), origin: originOf(u.cfg.URL)}
		return &c, nil
	case config.CredentialsOAuthUser:
		if principal == AnonymousPrincipal && u.g.auth != nil {
			return nil, fmt.Errorf("upstream %s: per-user authorization: sessions are opened for signed-in users only", u.cfg.Name)
		}
		tok, err := o.loadToken(ctx, u, principal)
		if err != nil {
			return nil, err
		}
		if tok == nil {
			return nil, o.elicit(ctx, u, principal)
		}
		c.Transport = &userTokenTransport{base: transportOf(base), o: o, u: u, principal: principal, origin: originOf(u.cfg.URL), tk: tok}
		return &c, nil
	}
	return nil, fmt.Errorf("upstream %s: unknown OAuth credentials type %q", u.cfg.Name, u.cfg.Credentials.Type)
}

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
func (o *upstreamOAuth) asClient(u *upstream) *http.Client {
	o.mu.Lock()
	defer o.mu.Unlock()
	if hc := o.asHTTP[u.cfg.Name]; hc != nil {
		return hc
	}
	opts := &safehttp.Options{}
	if pu, err := url.Parse(u.cfg.URL); err == nil {
		host := pu.Hostname()
		if safehttp.IsLoopbackHost(host) {
			opts.AllowLoopback, opts.AllowInsecureLoopback = true, true
		} else if ip, err := netip.ParseAddr(host); err == nil && ip.IsPrivate() {
			opts.AllowPrivate = true
		}
	}
	hc := safehttp.NewClient(opts)
	o.asHTTP[u.cfg.Name] = hc
	return hc
}

// discovery finds the upstream's authorization server: from the
// challenge of an unauthenticated request to the upstream, through its
// protected resource metadata. For client credentials with token_url, the
// token endpoint is taken as given instead.
func (o *upstreamOAuth) discovery(ctx context.Context, u *upstream) (*oauthclient.Discovery, error) {
	o.mu.Lock()
	d := o.disc[u.cfg.Name]
	o.mu.Unlock()
	if d != nil {
		return d, nil
	}
	cr := u.cfg.Credentials
	if cr.Type == config.CredentialsOAuthClientCredentials && cr.TokenURL != "" {
		d = &oauthclient.Discovery{ServerURL: u.cfg.URL, Resource: u.cfg.URL,
			AuthorizationServer: &meta.AuthorizationServerMetadata{TokenEndpoint: cr.TokenURL}}
	} else {
		ch, err := o.probe(ctx, u)
		if err != nil {
			return nil, err
		}
		if d, err = oauthclient.Discover(ctx, o.asClient(u), u.cfg.URL, ch, nil); err != nil {
			return nil, fmt.Errorf("upstream %s: finding its authorization server: %w", u.cfg.Name, err)
		}
		if cr.TokenURL != "" {
			as := *d.AuthorizationServer
			as.TokenEndpoint = cr.TokenURL
			d.AuthorizationServer = &as
		}
	}
	o.mu.Lock()
	o.disc[u.cfg.Name] = d
	o.mu.Unlock()
	return d, nil
}

// probe sends the upstream a request without credentials and returns the
// Bearer challenge of its 401, or nil when it did not send one.
func (o *upstreamOAuth) probe(ctx context.Context, u *upstream) (*meta.BearerChallenge, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.cfg.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", u.cfg.Name, err)
	}
	req.Header.Set("Accept", "text/event-stream, application/json")
	base := o.g.opts.HTTPClient
	if base == nil {
		base = o.g.upstreamClient
	}
	if base == nil {
		base = http.DefaultClient
	}
	resp, err := base.Do(req)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", u.cfg.Name, err)
	}
	if resp.StatusCode != http.StatusUnauthorized {
		resp.Body.Close() // may be an event stream that never ends: do not read it
		return nil, nil
	}
	discardBody(resp)
	ch, _ := meta.ParseBearerChallenge(resp.Header) // unparseable: discover without hints
	return ch, nil
}

func (o *upstreamOAuth) scope(u *upstream, d *oauthclient.Discovery) string {
	if s := u.cfg.Credentials.Scopes; len(s) > 0 {
		return strings.Join(s, " ")
	}
	return d.SelectScope()
}

// configuredClient returns the client_id and secret from the
// configuration, or nil when there is no client_id.
func configuredClient(u *upstream) (*oauthclient.ClientAuth, error) {
	cr := u.cfg.Credentials
	if cr.ClientID == "" {
		return nil, nil
	}
	c := &oauthclient.ClientAuth{ClientID: cr.ClientID}
	if cr.ClientSecretEnv != "" || cr.ClientSecretFile != "" {
		secret, err := secretValue(cr.ClientSecretEnv, cr.ClientSecretFile)
		if err != nil {
			return nil, fmt.Errorf("upstream %s client secret: %w", u.cfg.Name, err)
		}
		c.ClientSecret = secret
	}
	return c, nil
}

// --- Client credentials ---

// clientCredentialsSource holds the gateway's own token for one upstream.
type clientCredentialsSource struct {
	o  *upstreamOAuth
	u  *upstream
	mu sync.Mutex
	tk *oauthclient.Token
}

func (o *upstreamOAuth) clientCredentials(u *upstream) *clientCredentialsSource {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := o.cc[u.cfg.Name]
	if s == nil {
		s = &clientCredentialsSource{o: o, u: u}
		o.cc[u.cfg.Name] = s
	}
	return s
}

// token returns a valid token, obtaining a new one if there is none, it
// expired, or it is rejected (the access token the upstream refused).
func (s *clientCredentialsSource) token(ctx context.Context, rejected string) (*oauthclient.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tk != nil && !s.tk.Expired(time.Now()) && s.tk.AccessToken != rejected {
		return s.tk, nil
	}
	s.tk = nil
	d, err := s.o.discovery(ctx, s.u)
	if err != nil {
		return nil, err
	}
	client, err := configuredClient(s.u)
	if err != nil {
		return nil, err
	}
	if client == nil || client.ClientSecret == "" {
		return nil, fmt.Errorf("upstream %s: oauth_client_credentials needs client_id and a client secret", s.u.cfg.Name)
	}
	tk, err := oauthclient.ClientCredentials(ctx, s.o.asClient(s.u), d, client, s.o.scope(s.u, d))
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", s.u.cfg.Name, err)
	}
	s.tk = tk
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

// --- Per-user tokens: sealing and storage ---

// key returns the AEAD sealing per-user tokens, reading or creating the
// key file on first use.
func (o *upstreamOAuth) key() (cipher.AEAD, error) {
	o.keyOnce.Do(func() {
		var key []byte
		if o.keyPath == "" {
			key = make([]byte, 32)
			rand.Read(key)
		} else if key, o.keyErr = loadOrCreateKey(o.keyPath); o.keyErr != nil {
			return
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			o.keyErr = fmt.Errorf("upstream token key: %w", err)
			return
		}
		o.aead, o.keyErr = cipher.NewGCM(block)
	})
	return o.aead, o.keyErr
}

// loadOrCreateKey reads the 256-bit key (base64) at path, creating it
// with mode 0600 if it does not exist. A key file readable by others is
// refused.
func loadOrCreateKey(path string) ([]byte, error) {
	for range 2 {
		b, err := os.ReadFile(path)
		if err == nil {
			st, err := os.Stat(path)
			if err != nil {
				return nil, fmt.Errorf("upstream token key: %w", err)
			}
			if st.Mode().Perm()&0o077 != 0 {
				return nil, fmt.Errorf("upstream token key %s has permissions %v; want 0600", path, st.Mode().Perm())
			}
			key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
			if err != nil || len(key) != 32 {
				return nil, fmt.Errorf("upstream token key %s is not a base64 256-bit key", path)
			}
			return key, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("upstream token key: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("upstream token key: %w", err)
		}
		key := make([]byte, 32)
		rand.Read(key)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue // another process made it first: read theirs
		}
		if err != nil {
			return nil, fmt.Errorf("upstream token key: %w", err)
		}
		_, werr := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
		if serr := f.Sync(); werr == nil {
			werr = serr
		}
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			os.Remove(path)
			return nil, fmt.Errorf("upstream token key: %w", werr)
		}
		return key, nil
	}
	return nil, fmt.Errorf("upstream token key %s: could not be read or created", path)
}

// tokenAAD binds a sealed token to its (principal, upstream), so that a
// ciphertext moved to another row does not open.
func tokenAAD(principal, upstream string) []byte {
	b := []byte("mcpgate upstream token\x00")
	b = binary.AppendUvarint(b, uint64(len(principal)))
	b = append(b, principal...)
	b = binary.AppendUvarint(b, uint64(len(upstream)))
	return append(b, upstream...)
}

func (o *upstreamOAuth) seal(principal, upstream string, tk *oauthclient.Token) ([]byte, error) {
	aead, err := o.key()
	if err != nil {
		return nil, err
	}
	plain, err := json.Marshal(tk)
	if err != nil {
		return nil, fmt.Errorf("sealing upstream token: %w", err)
	}
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(plain)+aead.Overhead())
	out[0] = sealVersion
	rand.Read(out[1:])
	return aead.Seal(out, out[1:], plain, tokenAAD(principal, upstream)), nil
}

func (o *upstreamOAuth) open(principal, upstream string, sealed []byte) (*oauthclient.Token, error) {
	aead, err := o.key()
	if err != nil {
		return nil, err
	}
	n := aead.NonceSize()
	if len(sealed) < 1+n+aead.Overhead() || sealed[0] != sealVersion {
		return nil, errors.New("sealed upstream token: bad format")
	}
	plain, err := aead.Open(nil, sealed[1:1+n], sealed[1+n:], tokenAAD(principal, upstream))
	if err != nil {
		return nil, errors.New("sealed upstream token: does not open with this key")
	}
	var tk oauthclient.Token
	if err := json.Unmarshal(plain, &tk); err != nil {
		return nil, fmt.Errorf("sealed upstream token: %w", err)
	}
	return &tk, nil
}

// loadToken returns the principal's stored token for the upstream, or nil
// when there is none usable.
func (o *upstreamOAuth) loadToken(ctx context.Context, u *upstream, principal string) (*oauthclient.Token, error) {
	rec, err := o.tokens.GetUpstreamToken(ctx, principal, u.cfg.Name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("upstream %s: loading the token of %s: %w", u.cfg.Name, principal, err)
	}
	tk, err := o.open(principal, u.cfg.Name, rec.Ciphertext)
	if err == nil && !oauthclient.ResourceMatches(tk.Resource, u.cfg.URL) {
		err = errors.New("the token is for another resource")
	}
	if err != nil {
		u.logger.Warn("discarding a stored per-user token", "principal", principal, "error", err)
		_ = o.tokens.DeleteUpstreamToken(ctx, principal, u.cfg.Name)
		return nil, nil
	}
	return tk, nil
}

func (o *upstreamOAuth) saveToken(ctx context.Context, u *upstream, principal string, tk *oauthclient.Token) error {
	sealed, err := o.seal(principal, u.cfg.Name, tk)
	if err != nil {
		return err
	}
	return o.tokens.PutUpstreamToken(ctx, &store.UpstreamToken{Principal: principal, Upstream: u.cfg.Name, Ciphertext: sealed, UpdatedAt: time.Now()})
}

// refresh renews the principal's token with its refresh token. stale is
// the token the caller holds; if the stored one already differs (another
// session refreshed it), that one is returned.
func (o *upstreamOAuth) refresh(ctx context.Context, u *upstream, principal string, stale *oauthclient.Token) (*oauthclient.Token, error) {
	o.refreshMu.Lock()
	defer o.refreshMu.Unlock()
	cur, err := o.loadToken(ctx, u, principal)
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
	if c, _ := configuredClient(u); c != nil && c.ClientID == cur.ClientID {
		client = c
	} else {
		o.mu.Lock()
		if c := o.clients[u.cfg.Name]; c != nil && c.ClientID == cur.ClientID {
			client = c
		}
		o.mu.Unlock()
	}
	var as *meta.AuthorizationServerMetadata
	o.mu.Lock()
	if d := o.disc[u.cfg.Name]; d != nil && d.AuthorizationServer != nil && d.AuthorizationServer.TokenEndpoint == cur.TokenEndpoint {
		as = d.AuthorizationServer
	}
	o.mu.Unlock()
	nt, err := oauthclient.Refresh(ctx, o.asClient(u), client, cur, as)
	if err != nil {
		_ = o.tokens.DeleteUpstreamToken(ctx, principal, u.cfg.Name)
		return nil, err
	}
	if err := o.saveToken(ctx, u, principal, nt); err != nil {
		return nil, err
	}
	return nt, nil
}

// forget removes the principal's token (the upstream refused it and it
// cannot be refreshed).
func (o *upstreamOAuth) forget(ctx context.Context, u *upstream, principal string) {
	if err := o.tokens.DeleteUpstreamToken(ctx, principal, u.cfg.Name); err != nil {
		u.logger.Warn("deleting a per-user token", "principal", principal, "error", err)
	}
}

// userTokenTransport adds the principal's token to requests for the
// upstream. An expired token is refreshed; when that fails, or the
// upstream refuses the token, the request fails with a
// URLElicitationRequiredError that asks the user to authorize again.
type userTokenTransport struct {
	base      http.RoundTripper
	o         *upstreamOAuth
	u         *upstream
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
		tk, err := t.o.loadToken(ctx, t.u, t.principal)
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
		nt, err := t.o.refresh(ctx, t.u, t.principal, stale)
		if err == nil {
			t.tk = nt
			return nt, nil
		}
		t.u.logger.Info("per-user token could not be refreshed; asking the user again", "principal", t.principal, "error", err)
	}
	t.tk = nil
	t.o.forget(ctx, t.u, t.principal)
	return nil, t.o.elicit(ctx, t.u, t.principal)
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
		return nil, fmt.Errorf("upstream %s refused the token; it was renewed, retry the request", t.u.cfg.Name)
	}
	r2, err := retryRequest(req)
	if err != nil {
		return nil, err
	}
	return t.base.RoundTrip(withBearer(r2, tk.AccessToken))
}

// --- Per-user authorization flows ---

// authFlow is one pending authorization of one principal at one
// upstream, from the elicitation to the callback.
type authFlow struct {
	id        string
	principal string
	up        *upstream
	expires   time.Time

	// Set when the connect page starts the flow.
	nonce   string // the browser-binding cookie value
	started bool
	ready   chan struct{} // closed once authURL (or err) is known
	authURL string
	state   string
	err     error
	resp    chan *oauthclient.AuthorizationResponse
	done    chan struct{} // closed when the flow has ended
	result  error
}

// elicit returns the URLElicitationRequiredError that asks the principal
// to authorize the gateway at the upstream, reusing a pending elicitation.
// It first makes sure that the upstream's authorization server and the
// gateway's client identity there are known, so that a misconfiguration
// is reported as such rather than as an elicitation that cannot succeed.
func (o *upstreamOAuth) elicit(ctx context.Context, u *upstream, principal string) error {
	if o.base == "" {
		return fmt.Errorf("upstream %s: per-user authorization needs the gateway's public_url", u.cfg.Name)
	}
	d, err := o.discovery(ctx, u)
	if err != nil {
		return err
	}
	if _, err := o.userClient(ctx, u, d); err != nil {
		return fmt.Errorf("upstream %s: %w", u.cfg.Name, err)
	}
	now := time.Now()
	key := [2]string{principal, u.cfg.Name}
	o.mu.Lock()
	o.expireLocked(now)
	f := o.pending[key]
	if f == nil || f.expires.Sub(now) < minElicitationLeft {
		f = &authFlow{id: meta.RandomToken(18), principal: principal, up: u, expires: now.Add(elicitationTTL)}
		o.flows[f.id] = f
		o.pending[key] = f
	}
	o.mu.Unlock()
	return o.elicitationError(f)
}

func (o *upstreamOAuth) connectURL(f *authFlow) string { return o.base + "/" + f.id }

func (o *upstreamOAuth) callbackURL() string { return o.base + "/callback" }

func (o *upstreamOAuth) elicitationError(f *authFlow) *jsonrpc.Error {
	name := f.up.cfg.Name
	data, err := json.Marshal(&mcp.URLElicitationRequiredErrorData{Elicitations: []*mcp.ElicitParams{{
		Mode:          mcp.ElicitationModeURL,
		ElicitationID: f.id,
		URL:           o.connectURL(f),
		Message:       fmt.Sprintf("Authorize mcpgate to use %s on your behalf.", name),
	}}})
	if err != nil { // cannot happen: plain strings
		return &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: err.Error()}
	}
	return &jsonrpc.Error{Code: jsonrpc.CodeURLElicitationRequired, Message: fmt.Sprintf("upstream %s needs your authorization", name), Data: data}
}

// urlElicitations returns the elicitations of a URLElicitationRequiredError
// in err's chain, or nil.
func urlElicitations(err error) []*mcp.ElicitParams {
	var je *jsonrpc.Error
	if !errors.As(err, &je) || je.Code != jsonrpc.CodeURLElicitationRequired {
		return nil
	}
	var data mcp.URLElicitationRequiredErrorData
	if json.Unmarshal(je.Data, &data) != nil {
		return nil
	}
	return data.Elicitations
}

// expireLocked forgets flows past their expiry. o.mu is held.
func (o *upstreamOAuth) expireLocked(now time.Time) {
	for id, f := range o.flows {
		if now.After(f.expires) {
			o.removeLocked(f)
			delete(o.flows, id)
		}
	}
}

// removeLocked makes f unreachable. o.mu is held.
func (o *upstreamOAuth) removeLocked(f *authFlow) {
	delete(o.flows, f.id)
	if f.state != "" && o.byState[f.state] == f {
		delete(o.byState, f.state)
	}
	key := [2]string{f.principal, f.up.cfg.Name}
	if o.pending[key] == f {
		delete(o.pending, key)
	}
}

// userClient returns the gateway's client identity at the upstream's
// authorization server: the configured client_id, else its Client ID
// Metadata Document (https public URLs only), else a dynamically
// registered public client.
func (o *upstreamOAuth) userClient(ctx context.Context, u *upstream, d *oauthclient.Discovery) (*oauthclient.ClientAuth, error) {
	c, err := configuredClient(u)
	if c != nil || err != nil {
		return c, err
	}
	o.mu.Lock()
	c = o.clients[u.cfg.Name]
	o.mu.Unlock()
	if c != nil {
		return c, nil
	}
	as := d.AuthorizationServer
	switch {
	case as.ClientIDMetadataDocumentSupported && o.cimdURL() != "":
		c = &oauthclient.ClientAuth{ClientID: o.cimdURL(), Method: meta.AuthMethodNone}
	case as.RegistrationEndpoint != "":
		method := meta.AuthMethodNone
		if s := as.TokenEndpointAuthMethodsSupported; s != nil && !as.SupportsAuthMethod(meta.AuthMethodNone) {
			method = meta.AuthMethodClientSecretBasic
		}
		info, err := oauthclient.Register(ctx, o.asClient(u), as.RegistrationEndpoint, o.clientMetadata(method))
		if err != nil {
			return nil, fmt.Errorf("dynamic client registration: %w", err)
		}
		c = &oauthclient.ClientAuth{ClientID: info.ClientID, Method: method}
		if info.TokenEndpointAuthMethod != "" {
			c.Method = info.TokenEndpointAuthMethod
		}
		if c.Method != meta.AuthMethodNone {
			c.ClientSecret = info.ClientSecret
		}
	default:
		return nil, oauthclient.ErrNoClientIdentity
	}
	o.mu.Lock()
	if prev := o.clients[u.cfg.Name]; prev != nil {
		c = prev // registered concurrently: keep one
	} else {
		o.clients[u.cfg.Name] = c
	}
	o.mu.Unlock()
	return c, nil
}

func (o *upstreamOAuth) clientMetadata(method string) *meta.ClientMetadata {
	return &meta.ClientMetadata{
		ClientName:              "mcpgate",
		RedirectURIs:            []string{o.callbackURL()},
		GrantTypes:              []string{meta.GrantTypeAuthorizationCode, meta.GrantTypeRefreshToken},
		ResponseTypes:           []string{meta.ResponseTypeCode},
		TokenEndpointAuthMethod: method,
		ApplicationType:         "web",
	}
}

// cimdURL is the URL of the gateway's Client ID Metadata Document, or ""
// when the gateway is not served over https (such documents must be).
func (o *upstreamOAuth) cimdURL() string {
	if !strings.HasPrefix(o.base, "https://") {
		return ""
	}
	return o.base + "/client-metadata.json"
}

// run carries a flow from the connect page to the callback: it sends the
// user agent to the authorization endpoint (through the connect page) and
// exchanges the code that comes back.
func (o *upstreamOAuth) run(f *authFlow) {
	ctx, cancel := context.WithDeadline(context.Background(), f.expires)
	defer cancel()
	go func() {
		select {
		case <-o.g.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	var readyOnce sync.Once
	markReady := func(err error) {
		readyOnce.Do(func() {
			o.mu.Lock()
			f.err = err
			o.mu.Unlock()
			close(f.ready)
		})
	}
	u := f.up
	tk, err := func() (*oauthclient.Token, error) {
		d, err := o.discovery(ctx, u)
		if err != nil {
			return nil, err
		}
		client, err := o.userClient(ctx, u, d)
		if err != nil {
			return nil, err
		}
		return oauthclient.Authorize(ctx, o.asClient(u), d, &oauthclient.AuthorizeParams{
			Client:      client,
			RedirectURL: o.callbackURL(),
			Scope:       o.scope(u, d),
			Handler: oauthclient.AuthorizationCodeHandlerFunc(func(ctx context.Context, req *oauthclient.AuthorizationRequest) (*oauthclient.AuthorizationResponse, error) {
				o.mu.Lock()
				f.authURL, f.state = req.URL, req.State
				if o.flows[f.id] == f {
					o.byState[req.State] = f
				}
				o.mu.Unlock()
				markReady(nil)
				select {
				case r := <-f.resp:
					return r, nil
				case <-ctx.Done():
					return nil, fmt.Errorf("no answer from the authorization server: %w", ctx.Err())
				}
			}),
		})
	}()
	if err == nil {
		err = o.saveToken(ctx, u, f.principal, tk)
	}
	markReady(err)
	o.mu.Lock()
	f.result = err
	o.removeLocked(f)
	o.mu.Unlock()
	close(f.done)
	if err != nil {
		u.logger.Info("per-user authorization failed", "principal", f.principal, "error", err)
		return
	}
	u.logger.Info("per-user authorization complete", "principal", f.principal)
	o.completed(f)
}

// completed lets the principal's sessions use the upstream: the session
// may connect at once, the catalogue is rebuilt, and the clients are told
// that the elicitation is complete and that the tool list changed.
func (o *upstreamOAuth) completed(f *authFlow) {
	u := f.up
	u.mu.Lock()
	for _, us := range u.sessions {
		if us.principal != f.principal {
			continue
		}
		us.mu.Lock()
		us.failures, us.retryAt, us.lastErr = 0, time.Time{}, nil
		us.mu.Unlock()
	}
	u.mu.Unlock()
	o.g.invalidate(f.principal)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, ds := range o.g.sessionsOf(f.principal) {
		if ds.ss.ProtocolVersion() < mcp.Version20251125 {
			continue
		}
		if err := ds.ss.NotifyElicitationComplete(ctx, f.id); err != nil {
			o.g.logger.Debug("notifying elicitation complete", "error", err)
		}
		o.g.notify(ctx, ds.ss, mcp.NotificationToolsListChanged, nil)
	}
}

// --- HTTP: connect page, callback, client metadata ---

// mount adds the connect and callback pages to mux.
func (o *upstreamOAuth) mount(mux *http.ServeMux) {
	if o == nil || o.tokens == nil || o.path == "" {
		return
	}
	mux.HandleFunc("GET "+o.path+"/callback", o.handleCallback)
	mux.HandleFunc("GET "+o.path+"/{id}", o.handleConnect)
	if u := o.cimdURL(); u != "" {
		md := o.clientMetadata(meta.AuthMethodNone)
		md.ClientID = u
		if h, err := oauthclient.ClientMetadataHandler(md); err == nil {
			mux.Handle("GET "+o.path+"/client-metadata.json", h)
		} else {
			o.g.logger.Warn("client metadata document", "error", err)
		}
	}
}

// browserPrincipal says who the user of a browser request is: the user
// signed in at the built-in authorization server, or AnonymousPrincipal
// when callers are not authenticated at all.
func (o *upstreamOAuth) browserPrincipal(r *http.Request) (string, error) {
	if o.g.auth == nil {
		if o.g.opts.Principal == nil {
			return AnonymousPrincipal, nil
		}
		return "", errors.New("the gateway cannot tell who you are in the browser")
	}
	c, err := r.Cookie(asSessionCookie)
	if err != nil || c.Value == "" {
		return "", errors.New("you are not signed in to mcpgate in this browser")
	}
	se, err := o.g.auth.store.GetSession(r.Context(), store.Digest(c.Value), time.Now())
	if err != nil || se.Kind != "user" || se.Subject == "" {
		return "", errors.New("your mcpgate sign-in in this browser has expired")
	}
	return se.Subject, nil
}

func (o *upstreamOAuth) flowCookie(f *authFlow) string { return flowCookiePrefix + f.id }

func (o *upstreamOAuth) handleConnect(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	o.mu.Lock()
	o.expireLocked(time.Now())
	f := o.flows[id]
	o.mu.Unlock()
	if f == nil {
		page(w, http.StatusNotFound, "Link expired", "This authorization link is unknown, expired or already used. Retry the request in your MCP client to get a new one.")
		return
	}
	who, err := o.browserPrincipal(r)
	if err != nil {
		page(w, http.StatusUnauthorized, "Sign-in needed", "Cannot continue: "+err.Error()+". Sign in to mcpgate from your MCP client in this browser, then open the link again.")
		return
	}
	if who != f.principal {
		f.up.logger.Warn("authorization link opened by another user", "principal", f.principal, "browser_user", who)
		page(w, http.StatusForbidden, "Wrong user", "This authorization link was made for another user. Ask your MCP client for your own link.")
		return
	}
	o.mu.Lock()
	if !f.started {
		f.started = true
		f.nonce = meta.RandomToken(24)
		f.ready = make(chan struct{})
		f.resp = make(chan *oauthclient.AuthorizationResponse, 1)
		f.done = make(chan struct{})
		go o.run(f)
	}
	ready, nonce := f.ready, f.nonce
	o.mu.Unlock()
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case <-ready:
	case <-t.C:
		page(w, http.StatusGatewayTimeout, "Try again", "The upstream's authorization server did not answer in time. Reload this page to try again.")
		return
	case <-r.Context().Done():
		return
	}
	o.mu.Lock()
	authURL, ferr := f.authURL, f.err
	o.mu.Unlock()
	if ferr != nil {
		page(w, http.StatusBadGateway, "Authorization failed", "The authorization with "+f.up.cfg.Name+" could not start. Retry the request in your MCP client.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: o.flowCookie(f), Value: nonce, Path: o.path + "/callback",
		MaxAge: int(time.Until(f.expires).Seconds()) + 1, HttpOnly: true, Secure: strings.HasPrefix(o.base, "https://"), SameSite: http.SameSiteLaxMode})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, authURL, http.StatusFound)
}

func (o *upstreamOAuth) handleCallback(w http.ResponseWriter, r *http.Request) {
	resp := oauthclient.ParseAuthorizationResponse(r.URL)
	o.mu.Lock()
	f := o.byState[resp.State]
	o.mu.Unlock()
	if resp.State == "" || f == nil || time.Now().After(f.expires) {
		page(w, http.StatusBadRequest, "Link expired", "This authorization response is unknown, expired or already used. Retry the request in your MCP client.")
		return
	}
	c, err := r.Cookie(o.flowCookie(f))
	if err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(f.nonce)) != 1 {
		f.up.logger.Warn("authorization response in a browser that did not start the flow", "principal", f.principal)
		page(w, http.StatusForbidden, "Wrong browser", "This authorization was started in another browser. Open the link from your MCP client in this browser.")
		return
	}
	if who, err := o.browserPrincipal(r); err != nil || who != f.principal {
		page(w, http.StatusForbidden, "Wrong user", "This authorization was started for another user.")
		return
	}
	// Single use: the first response that passes the checks is the one.
	o.mu.Lock()
	if o.byState[resp.State] != f {
		o.mu.Unlock()
		page(w, http.StatusBadRequest, "Link expired", "This authorization response was already used.")
		return
	}
	delete(o.byState, resp.State)
	o.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: o.flowCookie(f), Value: "", Path: o.path + "/callback", MaxAge: -1, HttpOnly: true})
	f.resp <- resp // buffered, and only this request gets here
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	select {
	case <-f.done:
	case <-t.C:
		page(w, http.StatusGatewayTimeout, "Still working", "The upstream's authorization server is slow to answer. Retry the request in your MCP client in a moment.")
		return
	case <-r.Context().Done():
		return
	}
	if f.result != nil {
		msg := "The authorization with " + f.up.cfg.Name + " failed. Retry the request in your MCP client to start again."
		var me *meta.Error
		if errors.As(f.result, &me) && me.Code == meta.ErrAccessDenied {
			msg = "You did not allow access to " + f.up.cfg.Name + "."
		}
		page(w, http.StatusBadRequest, "Authorization failed", msg)
		return
	}
	page(w, http.StatusOK, "Authorized", "mcpgate can now use "+f.up.cfg.Name+" on your behalf. You can close this window.")
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · mcpgate</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;line-height:1.5}</style>
</head><body><h1>{{.Title}}</h1><p>{{.Message}}</p></body></html>
`))

// page renders a small HTML page.
func page(w http.ResponseWriter, status int, title, message string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.WriteHeader(status)
	_ = pageTemplate.Execute(w, struct{ Title, Message string }{title, message})
}

// --- Routing ---

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
	for _, u := range g.upstreams {
		if !u.perUser() || (kindInfo[k].prefixed && !strings.HasPrefix(key, u.prefix)) {
			continue
		}
		if _, err := u.session(ctx, principal); err != nil {
			elicitations = append(elicitations, urlElicitations(err)...)
		}
	}
	if len(elicitations) == 0 {
		return notFound
	}
	data, err := json.Marshal(&mcp.URLElicitationRequiredErrorData{Elicitations: elicitations})
	if err != nil {
		return notFound
	}
	return &jsonrpc.Error{Code: jsonrpc.CodeURLElicitationRequired, Message: fmt.Sprintf("%s may be offered by an upstream that needs your authorization", key), Data: data}
}
