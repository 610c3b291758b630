package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/conformance/everything"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/oauth/authserver"
	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/oauth/oauthclient"
	"github.com/mcpgate/mcpgate/oauth/resource"
	"github.com/mcpgate/mcpgate/oauth/safehttp"
	"github.com/mcpgate/mcpgate/principal"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

const (
	userName = "alice"
	userPass = "e2e correct horse battery staple"

	scopeRead  = "mcp:read"
	scopeWrite = "mcp:write"
	scopeOther = "other:read"

	// svcClientID is a pre-registered client that authenticates with
	// private_key_jwt and uses client credentials.
	svcClientID = "e2e-service"
	svcKeyID    = "e2e-service-key-1"
	// agentClientID is a pre-registered client that presents ID-JAGs
	// (jwt-bearer grant) and authenticates with client_secret_basic.
	agentClientID = "e2e-agent"
	agentSecret   = "e2e-agent-secret-0123456789"

	// idpAppID and idpAppSecret are the agent's registration at the test
	// identity provider, used for the token exchange.
	idpAppID     = "idp-registered-agent"
	idpAppSecret = "idp-agent-secret-0123456789"
	// idpUser is the subject of the ID token the identity provider issues.
	idpUser = "U-00042"

	// testTimeout bounds each flow.
	testTimeout = 30 * time.Second
)

// cheapArgon2 keeps password hashing fast in tests.
var cheapArgon2 = authserver.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// loopbackSafeHTTP lets the OAuth client reach plain-http servers on
// 127.0.0.1, which its SSRF-safe default refuses.
func loopbackSafeHTTP() *safehttp.Options {
	return &safehttp.Options{AllowLoopback: true, AllowInsecureLoopback: true, Timeout: 10 * time.Second}
}

// world is everything the flows need, all on 127.0.0.1: the authorization
// server (its own origin, issuer path /oauth), the everything server at
// /mcp behind a resource server (another origin), a second protected
// resource /other on that origin, a test identity provider, and an https
// host for Client ID Metadata Documents.
type world struct {
	issuer   string
	mcpURL   string
	otherURL string
	st       store.Store
	as       *authserver.Server
	idp      *identityProvider
	svcKey   *ecdsa.PrivateKey

	// rsSkew is added to the resource servers' clock.
	rsSkew atomic.Int64
	// seen records the principals the /mcp resource server let through.
	seen principalLog

	cimd        *httptest.Server
	cimdMu      sync.Mutex
	cimdDocs    map[string][]byte
	cimdFetches atomic.Int64
}

// storeKinds are the stores the authorization server runs on.
var storeKinds = []struct {
	name string
	open func(t *testing.T) store.Store
}{
	{"memory", func(*testing.T) store.Store { return store.NewMemory() }},
	{"sqlite", func(t *testing.T) store.Store {
		st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "mcpgate.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}},
}

// eachStore runs f in a fresh world on each kind of store.
func eachStore(t *testing.T, f func(t *testing.T, w *world)) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) { f(t, newWorld(t, k.open(t))) })
	}
}

func newWorld(t *testing.T, st store.Store) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{st: st, cimdDocs: map[string][]byte{}}
	var err error
	if w.svcKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}

	asMux := http.NewServeMux()
	asSrv := httptest.NewServer(asMux)
	t.Cleanup(asSrv.Close)
	w.issuer = asSrv.URL + "/oauth"

	mcpMux := http.NewServeMux()
	mcpSrv := httptest.NewServer(mcpMux)
	t.Cleanup(mcpSrv.Close)
	w.mcpURL = mcpSrv.URL + "/mcp"
	w.otherURL = mcpSrv.URL + "/other"

	w.idp = newIdentityProvider(t, w.issuer)

	// Client ID Metadata Documents must be https URLs: serve them with a
	// test certificate that only the authorization server's fetcher trusts.
	w.cimd = httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.cimdFetches.Add(1)
		w.cimdMu.Lock()
		doc, ok := w.cimdDocs[r.URL.Path]
		w.cimdMu.Unlock()
		if !ok {
			http.NotFound(rw, r)
			return
		}
		rw.Header().Set("Content-Type", "application/json")
		rw.Write(doc)
	}))
	t.Cleanup(w.cimd.Close)
	roots := x509.NewCertPool()
	roots.AddCert(w.cimd.Certificate())

	w.as, err = authserver.New(ctx, w.issuer, w.st, &authserver.Options{
		Resources: []authserver.Resource{
			{URI: w.mcpURL, Scopes: []string{scopeRead, scopeWrite}, DefaultScopes: []string{scopeRead}},
			{URI: w.otherURL, Scopes: []string{scopeOther}},
		},
		TrustedIssuers: []authserver.TrustedIssuer{{
			Issuer:     w.idp.issuer,
			JWKSURL:    w.idp.issuer + "/jwks",
			HTTPClient: &http.Client{Timeout: 5 * time.Second},
		}},
		// The default fetcher refuses loopback addresses (SSRF
		// protection); the test's document host is on 127.0.0.1.
		MetadataDocuments: authserver.MetadataDocumentPolicy{
			HTTPClient: safehttp.NewClient(&safehttp.Options{AllowLoopback: true, NoRedirects: true,
				TLSClientConfig: &tls.Config{RootCAs: roots}, Timeout: 5 * time.Second}),
		},
		Logger: discardLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	w.as.Mount(asMux)

	// The resource servers fetch the signing keys from the JWKS endpoint
	// and ask the authorization server about revocation.
	keys := resource.RemoteJWKS(w.issuer+"/jwks", &http.Client{Timeout: 5 * time.Second})
	now := func() time.Time { return time.Now().Add(time.Duration(w.rsSkew.Load())) }
	rs, err := resource.New(w.mcpURL, resource.NewJWTVerifier(w.issuer, w.mcpURL, keys, &resource.JWTOptions{Revocation: w.as, Now: now}),
		&resource.Options{AuthorizationServers: []string{w.issuer}, ScopesSupported: []string{scopeRead, scopeWrite},
			RequiredScopes: []string{scopeRead}, ResourceName: "everything server", Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	rs.Mount(mcpMux)
	fixture := everything.NewServer(&everything.Options{Logger: discardLogger()})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { fixture.Run(runCtx); close(done) }()
	h := fixture.NewStreamableHTTPHandler()
	t.Cleanup(func() { h.Close(); stop(); <-done })
	mcpMux.Handle("/mcp", rs.Middleware(w.seen.record(h)))

	other, err := resource.New(w.otherURL, resource.NewJWTVerifier(w.issuer, w.otherURL, keys, &resource.JWTOptions{Revocation: w.as, Now: now}),
		&resource.Options{AuthorizationServers: []string{w.issuer}, ScopesSupported: []string{scopeOther}, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	other.Mount(mcpMux)
	mcpMux.Handle("/other", other.Middleware(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		io.WriteString(rw, "other resource")
	})))

	// A user and the pre-registered clients.
	created := time.Now()
	hash, err := authserver.HashPassword(userPass, &cheapArgon2)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.st.CreateUser(ctx, &store.User{Username: userName, PasswordHash: hash, CreatedAt: created}); err != nil {
		t.Fatal(err)
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &w.svcKey.PublicKey, KeyID: svcKeyID, Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*store.Client{
		{ID: svcClientID, Kind: store.ClientPreRegistered, Name: "E2E Service", TokenEndpointAuthMethod: meta.AuthMethodPrivateKeyJWT,
			JWKS: string(jwks), GrantTypes: []string{meta.GrantTypeClientCredentials}},
		{ID: agentClientID, Kind: store.ClientPreRegistered, Name: "E2E Enterprise Agent", TokenEndpointAuthMethod: meta.AuthMethodClientSecretBasic,
			SecretHash: store.Digest(agentSecret), GrantTypes: []string{meta.GrantTypeJWTBearer}},
	} {
		c.CreatedAt = created
		if err := w.st.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// serveClientMetadata publishes a Client ID Metadata Document at path on
// the https document host and returns its URL (the client_id).
func (w *world) serveClientMetadata(t *testing.T, path string, doc func(clientID string) map[string]any) string {
	t.Helper()
	id := w.cimd.URL + path
	b, err := json.Marshal(doc(id))
	if err != nil {
		t.Fatal(err)
	}
	w.cimdMu.Lock()
	w.cimdDocs[path] = b
	w.cimdMu.Unlock()
	return id
}

// connect opens an MCP session to the everything server through the OAuth
// transport tr. The session is closed when the test ends.
func (w *world) connect(ctx context.Context, t *testing.T, tr http.RoundTripper) (*mcp.ClientSession, error) {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "mcpgate-e2e", Version: "1.0.0"}, nil)
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: w.mcpURL, HTTPClient: &http.Client{Transport: tr}, MaxRetries: -1}, nil)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { cs.Close() })
	return cs, nil
}

// exercise calls test_simple_text and reads the static text resource of
// the everything server, checking the results.
func exercise(ctx context.Context, t *testing.T, cs *mcp.ClientSession) {
	t.Helper()
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	if !slices.ContainsFunc(tools.Tools, func(tl *mcp.Tool) bool { return tl.Name == "test_simple_text" }) {
		t.Errorf("tools/list has no test_simple_text (%d tools)", len(tools.Tools))
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_simple_text"})
	if err != nil {
		t.Fatalf("tools/call test_simple_text: %v", err)
	}
	if res.IsError || len(res.Content) != 1 {
		t.Fatalf("test_simple_text: isError=%v, %d content blocks", res.IsError, len(res.Content))
	}
	if tc, ok := res.Content[0].(*mcp.TextContent); !ok || tc.Text != everything.SimpleText {
		t.Errorf("test_simple_text content = %#v, want text %q", res.Content[0], everything.SimpleText)
	}
	rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: everything.StaticTextURI})
	if err != nil {
		t.Fatalf("resources/read %s: %v", everything.StaticTextURI, err)
	}
	if len(rr.Contents) != 1 || rr.Contents[0].URI != everything.StaticTextURI || rr.Contents[0].Text != everything.StaticText {
		t.Errorf("resources/read %s = %+v", everything.StaticTextURI, rr.Contents)
	}
}

// sighting is what the handler behind the resource server saw of one
// request.
type sighting struct {
	ok            bool // a principal was in the context
	subject       string
	clientID      string
	scopes        []string
	tokenID       string
	authorization string // the Authorization header that reached the MCP handler
}

// principalLog records the principal of every request the resource server
// let through to the MCP handler.
type principalLog struct {
	mu   sync.Mutex
	seen []sighting
}

func (l *principalLog) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		s := sighting{authorization: r.Header.Get("Authorization")}
		if p, ok := resource.PrincipalFromContext(r.Context()); ok {
			s.ok, s.subject, s.clientID, s.scopes, s.tokenID = true, p.Subject, p.ClientID, p.Scopes, p.TokenID
		}
		l.mu.Lock()
		l.seen = append(l.seen, s)
		l.mu.Unlock()
		next.ServeHTTP(rw, r)
	})
}

// mark returns a position for since.
func (l *principalLog) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.seen)
}

// since returns the sightings recorded after mark.
func (l *principalLog) since(mark int) []sighting {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.seen[mark:])
}

// checkPrincipals checks that requests reached the MCP handler after mark
// and that all of them carried the principal subject/clientID with the
// scopes in want, with the token itself removed. It returns the token ids
// seen.
func (w *world) checkPrincipals(t *testing.T, mark int, subject, clientID string, want ...string) []string {
	t.Helper()
	seen := w.seen.since(mark)
	if len(seen) == 0 {
		t.Fatal("no request reached the MCP handler")
	}
	var ids []string
	for i, s := range seen {
		if !s.ok || s.subject != subject || s.clientID != clientID || s.tokenID == "" {
			t.Errorf("request %d: principal ok=%v sub=%q client_id=%q jti=%q, want sub=%q client_id=%q", i, s.ok, s.subject, s.clientID, s.tokenID, subject, clientID)
		}
		for _, sc := range want {
			if !slices.Contains(s.scopes, sc) {
				t.Errorf("request %d: scopes %v lack %q", i, s.scopes, sc)
			}
		}
		if s.authorization != "" {
			t.Errorf("request %d: the Authorization header reached the MCP handler", i)
		}
		if !slices.Contains(ids, s.tokenID) {
			ids = append(ids, s.tokenID)
		}
	}
	return ids
}

// rawStatus sends a bare MCP initialize request with token to u and returns
// the status and the Bearer challenge, if any.
func rawStatus(t *testing.T, u, token string) (int, *meta.BearerChallenge) {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"` + mcp.LatestProtocolVersion + `","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	ch, err := meta.ParseBearerChallenge(resp.Header)
	if err != nil {
		t.Fatalf("WWW-Authenticate %q: %v", resp.Header.Values("WWW-Authenticate"), err)
	}
	return resp.StatusCode, ch
}

// wantRefused checks that the resource at u refuses token with 401
// invalid_token and a challenge pointing at its metadata; the error
// description must contain reason.
func wantRefused(t *testing.T, u, token, reason string) {
	t.Helper()
	status, ch := rawStatus(t, u, token)
	if status != http.StatusUnauthorized || ch == nil {
		t.Fatalf("status %d, challenge %+v; want 401 with a Bearer challenge", status, ch)
	}
	if ch.Error != meta.ErrInvalidToken || !strings.Contains(ch.ErrorDescription, reason) || ch.ResourceMetadata == "" {
		t.Errorf("challenge %+v; want error %q, a description containing %q and resource_metadata", ch, meta.ErrInvalidToken, reason)
	}
}

// browser is the user agent in the authorization code flows: it takes the
// authorization URL, signs in on the login page, approves on the consent
// page and follows the redirect to the client's loopback receiver, with a
// cookie jar, through the server's real HTML pages. It reports problems as
// errors, since it runs inside the OAuth client.
type browser struct {
	hc       *http.Client
	user     string
	password string

	mu       sync.Mutex
	logins   int
	consents []consentPage
}

// consentPage is what the consent page showed.
type consentPage struct {
	clientName, clientHost, redirectHost, scopes string
	localhostWarning                             bool
}

func newBrowser(user, password string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{hc: &http.Client{Jar: jar, Timeout: 10 * time.Second}, user: user, password: password}
}

var (
	formRe   = regexp.MustCompile(`<form method="post" action="([^"]*)"`)
	hiddenRe = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)
	ddRe     = regexp.MustCompile(`(?s)<dd id="([a-z-]+)">(.*?)</dd>`)
	tagRe    = regexp.MustCompile(`<[^>]*>`)
)

// postForm finds the post form of page, fills it with the hidden fields and
// extra, and submits it, following redirects.
func (b *browser) postForm(ctx context.Context, resp *http.Response, page string, extra url.Values) (*http.Response, string, error) {
	m := formRe.FindStringSubmatch(page)
	if m == nil {
		return nil, "", fmt.Errorf("no post form on %s", resp.Request.URL)
	}
	action, err := resp.Request.URL.Parse(html.UnescapeString(m[1]))
	if err != nil {
		return nil, "", err
	}
	f := url.Values{}
	for _, h := range hiddenRe.FindAllStringSubmatch(page, -1) {
		f.Set(h[1], html.UnescapeString(h[2]))
	}
	for k, v := range extra {
		f[k] = v
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, action.String(), strings.NewReader(f.Encode()))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func (b *browser) do(req *http.Request) (*http.Response, string, error) {
	resp, err := b.hc.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, string(body), err
}

// open is the LoopbackReceiver's OpenURL.
func (b *browser) open(ctx context.Context, authURL string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return err
	}
	resp, page, err := b.do(req)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("authorization page: HTTP %d: %.300s", resp.StatusCode, page)
	}
	if strings.Contains(page, `name="password"`) {
		resp, page, err = b.postForm(ctx, resp, page, url.Values{"username": {b.user}, "password": {b.password}})
		if err != nil {
			return fmt.Errorf("login: %w", err)
		}
		b.mu.Lock()
		b.logins++
		b.mu.Unlock()
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Allow access?") {
		return fmt.Errorf("expected the consent page, got HTTP %d: %.300s", resp.StatusCode, page)
	}
	cp := consentPage{localhostWarning: strings.Contains(page, `id="localhost-warning"`)}
	for _, m := range ddRe.FindAllStringSubmatch(page, -1) {
		v := strings.Join(strings.Fields(html.UnescapeString(tagRe.ReplaceAllString(m[2], " "))), " ")
		switch m[1] {
		case "client-name":
			cp.clientName = v
		case "client-host":
			cp.clientHost = v
		case "redirect-host":
			cp.redirectHost = v
		case "scopes":
			cp.scopes = v
		}
	}
	b.mu.Lock()
	b.consents = append(b.consents, cp)
	b.mu.Unlock()
	resp, page, err = b.postForm(ctx, resp, page, url.Values{"action": {"approve"}})
	if err != nil {
		return fmt.Errorf("consent: %w", err)
	}
	// The redirect was followed to the client's receiver.
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/callback" || !strings.Contains(page, "Authorization complete") {
		return fmt.Errorf("after consent: HTTP %d at %s: %.300s", resp.StatusCode, resp.Request.URL.Redacted(), page)
	}
	return nil
}

func (b *browser) stats() (int, []consentPage) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.logins, slices.Clone(b.consents)
}

// checkConsent checks the single consent page b showed.
func checkConsent(t *testing.T, b *browser, want consentPage, wantScopes ...string) {
	t.Helper()
	logins, consents := b.stats()
	if logins != 1 || len(consents) != 1 {
		t.Fatalf("logins %d, consent pages %d; want 1 and 1", logins, len(consents))
	}
	got := consents[0]
	t.Logf("consent page: %+v", got)
	if got.clientName != want.clientName || !strings.Contains(got.clientHost, want.clientHost) ||
		got.redirectHost != want.redirectHost || got.localhostWarning != want.localhostWarning {
		t.Errorf("consent page showed %+v, want %+v", got, want)
	}
	for _, sc := range wantScopes {
		if !slices.Contains(strings.Fields(got.scopes), sc) {
			t.Errorf("consent page scopes %q lack %q", got.scopes, sc)
		}
	}
}

func newReceiver(t *testing.T, b *browser) *oauthclient.LoopbackReceiver {
	t.Helper()
	recv, err := oauthclient.NewLoopbackReceiver(&oauthclient.LoopbackOptions{OpenURL: b.open})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { recv.Close() })
	return recv
}

func hostOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// TestAuthorizationCodeFlow: dynamic registration, then the authorization
// code grant with PKCE, the user signing in and approving on the real
// pages; then a revoked access token is refused and the client recovers
// with its refresh token, without the user.
func TestAuthorizationCodeFlow(t *testing.T) {
	eachStore(t, func(t *testing.T, w *world) {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		b := newBrowser(userName, userPass)
		recv := newReceiver(t, b)
		tr, err := oauthclient.NewTransport(nil, &oauthclient.Config{
			ServerURL:            w.mcpURL,
			RedirectURL:          recv.RedirectURL(),
			AuthorizationHandler: recv,
			ClientMetadata:       &meta.ClientMetadata{ClientName: "E2E Browser Client"},
			Scope:                scopeRead + " " + scopeWrite,
			SafeHTTP:             loopbackSafeHTTP(),
		})
		if err != nil {
			t.Fatal(err)
		}
		mark := w.seen.mark()
		cs, err := w.connect(ctx, t, tr)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		exercise(ctx, t, cs)

		tok, err := tr.Authorizer().Token(ctx)
		if err != nil || tok == nil {
			t.Fatalf("stored token: %v, %v", tok, err)
		}
		if tok.RefreshToken == "" || tok.Resource != w.mcpURL || tok.Issuer != w.issuer || tok.ClientID == "" {
			t.Errorf("token: refresh %v, resource %q, issuer %q, client %q", tok.RefreshToken != "", tok.Resource, tok.Issuer, tok.ClientID)
		}
		c, err := w.st.GetClient(ctx, tok.ClientID)
		if err != nil || c.Kind != store.ClientDynamic || c.Name != "E2E Browser Client" || c.TokenEndpointAuthMethod != meta.AuthMethodNone {
			t.Fatalf("registered client %q: %+v, %v", tok.ClientID, c, err)
		}
		checkConsent(t, b, consentPage{clientName: "E2E Browser Client", clientHost: tok.ClientID, redirectHost: hostOf(t, recv.RedirectURL()), localhostWarning: true},
			scopeRead, scopeWrite)
		ids := w.checkPrincipals(t, mark, userName, tok.ClientID, scopeRead, scopeWrite)
		if len(ids) != 1 {
			t.Errorf("token ids %v, want one", ids)
		}

		t.Run("revoked token", func(t *testing.T) {
			if status, _ := rawStatus(t, w.mcpURL, tok.AccessToken); status != http.StatusOK {
				t.Fatalf("before revocation: HTTP %d", status)
			}
			// RFC 7009 revocation by the (public) client.
			form := url.Values{"token": {tok.AccessToken}, "token_type_hint": {"access_token"}, "client_id": {tok.ClientID}}
			resp, err := (&http.Client{Timeout: 10 * time.Second}).PostForm(w.issuer+"/revoke", form)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("revoke: HTTP %d", resp.StatusCode)
			}
			wantRefused(t, w.mcpURL, tok.AccessToken, "revoked")

			// The session goes on: the transport meets the 401, refreshes
			// and replays, without the user.
			mark := w.seen.mark()
			exercise(ctx, t, cs)
			nt, err := tr.Authorizer().Token(ctx)
			if err != nil || nt == nil || nt.AccessToken == tok.AccessToken || nt.RefreshToken == tok.RefreshToken {
				t.Fatalf("after revocation the client has no fresh token (rotated refresh token: %v): %v", nt != nil && nt.RefreshToken != tok.RefreshToken, err)
			}
			newIDs := w.checkPrincipals(t, mark, userName, tok.ClientID, scopeRead, scopeWrite)
			if slices.Contains(newIDs, ids[0]) {
				t.Errorf("the revoked token (jti %s) was accepted again", ids[0])
			}
			if logins, consents := b.stats(); logins != 1 || len(consents) != 1 {
				t.Errorf("the user was asked again: logins %d, consents %d", logins, len(consents))
			}
		})
	})
}

// TestMetadataDocumentClient: the client is identified by the URL of a
// Client ID Metadata Document the test serves over https on 127.0.0.1; no
// registration happens.
func TestMetadataDocumentClient(t *testing.T) {
	eachStore(t, func(t *testing.T, w *world) {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		b := newBrowser(userName, userPass)
		recv := newReceiver(t, b)
		clientID := w.serveClientMetadata(t, "/clients/e2e.json", func(id string) map[string]any {
			return map[string]any{
				"client_id":                  id,
				"client_name":                "E2E Metadata Document Client",
				"redirect_uris":              []string{recv.RedirectURL()},
				"grant_types":                []string{meta.GrantTypeAuthorizationCode, meta.GrantTypeRefreshToken},
				"response_types":             []string{meta.ResponseTypeCode},
				"token_endpoint_auth_method": meta.AuthMethodNone,
			}
		})
		tr, err := oauthclient.NewTransport(nil, &oauthclient.Config{
			ServerURL:                  w.mcpURL,
			ClientIDMetadataURL:        clientID,
			DisableDynamicRegistration: true,
			RedirectURL:                recv.RedirectURL(),
			AuthorizationHandler:       recv,
			SafeHTTP:                   loopbackSafeHTTP(),
		})
		if err != nil {
			t.Fatal(err)
		}
		mark := w.seen.mark()
		cs, err := w.connect(ctx, t, tr)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		exercise(ctx, t, cs)

		tok, err := tr.Authorizer().Token(ctx)
		if err != nil || tok == nil || tok.ClientID != clientID {
			t.Fatalf("stored token client %v: %v", tok, err)
		}
		if n := w.cimdFetches.Load(); n < 1 {
			t.Errorf("the metadata document was fetched %d times", n)
		}
		c, err := w.st.GetClient(ctx, clientID)
		if err != nil || c.Kind != store.ClientMetadataDocument || c.Name != "E2E Metadata Document Client" {
			t.Fatalf("client %q: %+v, %v", clientID, c, err)
		}
		checkConsent(t, b, consentPage{clientName: "E2E Metadata Document Client", clientHost: hostOf(t, clientID), redirectHost: hostOf(t, recv.RedirectURL()), localhostWarning: true},
			scopeRead)
		w.checkPrincipals(t, mark, userName, clientID, scopeRead)
	})
}

// TestClientCredentialsPrivateKeyJWT: a pre-registered service client
// authenticates with a private_key_jwt assertion signed by its key; a
// client holding another key gets nothing.
func TestClientCredentialsPrivateKeyJWT(t *testing.T) {
	eachStore(t, func(t *testing.T, w *world) {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		cfg := &oauthclient.Config{
			ServerURL: w.mcpURL,
			Flow:      oauthclient.FlowClientCredentials,
			Client:    &oauthclient.ClientAuth{ClientID: svcClientID, PrivateKey: w.svcKey, KeyID: svcKeyID, Method: meta.AuthMethodPrivateKeyJWT},
			SafeHTTP:  loopbackSafeHTTP(),
		}
		tr, err := oauthclient.NewTransport(nil, cfg)
		if err != nil {
			t.Fatal(err)
		}
		mark := w.seen.mark()
		cs, err := w.connect(ctx, t, tr)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		exercise(ctx, t, cs)
		tok, err := tr.Authorizer().Token(ctx)
		if err != nil || tok == nil || tok.ClientID != svcClientID || tok.RefreshToken != "" {
			t.Fatalf("stored token %v: %v", tok, err)
		}
		w.checkPrincipals(t, mark, principal.Client(svcClientID).String(), svcClientID, scopeRead)

		t.Run("wrong key", func(t *testing.T) {
			other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			bad := *cfg
			bad.Client = &oauthclient.ClientAuth{ClientID: svcClientID, PrivateKey: other, KeyID: svcKeyID, Method: meta.AuthMethodPrivateKeyJWT}
			tr, err := oauthclient.NewTransport(nil, &bad)
			if err != nil {
				t.Fatal(err)
			}
			mark := w.seen.mark()
			if _, err := w.connect(ctx, t, tr); err == nil || !strings.Contains(err.Error(), "invalid_client") {
				t.Fatalf("connect with a foreign key: %v, want an invalid_client error", err)
			}
			if n := len(w.seen.since(mark)); n != 0 {
				t.Errorf("%d requests reached the MCP handler", n)
			}
		})
	})
}

// TestEnterpriseManagedAuthorization: the client holds an ID token from
// the enterprise identity provider, exchanges it there (RFC 8693) for an
// ID-JAG for our authorization server and resource, and presents the
// ID-JAG with the jwt-bearer grant.
func TestEnterpriseManagedAuthorization(t *testing.T) {
	eachStore(t, func(t *testing.T, w *world) {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		tr, err := oauthclient.NewTransport(nil, &oauthclient.Config{
			ServerURL: w.mcpURL,
			Flow:      oauthclient.FlowEnterprise,
			Client:    &oauthclient.ClientAuth{ClientID: agentClientID, ClientSecret: agentSecret},
			Enterprise: &oauthclient.Enterprise{
				IDToken:   func(context.Context) (string, error) { return w.idp.idToken(idpUser) },
				IdPIssuer: w.idp.issuer,
				IdPClient: &oauthclient.ClientAuth{ClientID: idpAppID, ClientSecret: idpAppSecret},
			},
			SafeHTTP: loopbackSafeHTTP(),
		})
		if err != nil {
			t.Fatal(err)
		}
		mark := w.seen.mark()
		cs, err := w.connect(ctx, t, tr)
		if err != nil {
			t.Fatalf("connect: %v (identity provider: %v)", err, w.idp.lastError())
		}
		exercise(ctx, t, cs)
		tok, err := tr.Authorizer().Token(ctx)
		if err != nil || tok == nil || tok.ClientID != agentClientID || tok.RefreshToken != "" {
			t.Fatalf("stored token %v: %v", tok, err)
		}
		if n := w.idp.exchanges.Load(); n != 1 {
			t.Errorf("%d token exchanges at the identity provider, want 1", n)
		}
		if err := w.idp.lastError(); err != nil {
			t.Errorf("identity provider refused a request: %v", err)
		}
		w.checkPrincipals(t, mark, principal.Federated(w.idp.issuer, idpUser).String(), agentClientID, scopeRead)
	})
}

// TestRefusedTokens: the resource server refuses a token issued for
// another resource and an expired token, with 401 invalid_token.
func TestRefusedTokens(t *testing.T) {
	eachStore(t, func(t *testing.T, w *world) {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if status, ch := rawStatus(t, w.mcpURL, ""); status != http.StatusUnauthorized || ch == nil || ch.ResourceMetadata == "" {
			t.Fatalf("no token: HTTP %d, challenge %+v", status, ch)
		}
		client := &oauthclient.ClientAuth{ClientID: svcClientID, PrivateKey: w.svcKey, KeyID: svcKeyID}
		token := func(serverURL string) *oauthclient.Token {
			t.Helper()
			a, err := oauthclient.NewAuthorizer(&oauthclient.Config{ServerURL: serverURL, Flow: oauthclient.FlowClientCredentials, Client: client, SafeHTTP: loopbackSafeHTTP()})
			if err != nil {
				t.Fatal(err)
			}
			tok, err := a.Authorize(ctx, nil)
			if err != nil {
				t.Fatalf("token for %s: %v", serverURL, err)
			}
			return tok
		}

		t.Run("other audience", func(t *testing.T) {
			tok := token(w.otherURL)
			if tok.Resource != w.otherURL {
				t.Fatalf("token resource %q", tok.Resource)
			}
			// It is a good token, for the other resource.
			if status, _ := rawStatus(t, w.otherURL, tok.AccessToken); status != http.StatusOK {
				t.Fatalf("the other resource refused its own token: HTTP %d", status)
			}
			mark := w.seen.mark()
			wantRefused(t, w.mcpURL, tok.AccessToken, "audience")
			if n := len(w.seen.since(mark)); n != 0 {
				t.Errorf("%d refused requests reached the MCP handler", n)
			}
		})

		t.Run("expired", func(t *testing.T) {
			tok := token(w.mcpURL)
			if status, _ := rawStatus(t, w.mcpURL, tok.AccessToken); status != http.StatusOK {
				t.Fatalf("fresh token: HTTP %d", status)
			}
			// Two hours later (tokens live one hour) at the resource server.
			w.rsSkew.Store(int64(2 * time.Hour))
			defer w.rsSkew.Store(0)
			mark := w.seen.mark()
			wantRefused(t, w.mcpURL, tok.AccessToken, "expired")
			if n := len(w.seen.since(mark)); n != 0 {
				t.Errorf("%d refused requests reached the MCP handler", n)
			}
		})
	})
}

// identityProvider is an enterprise identity provider for the test: it
// issues ID tokens to the test, and at its token endpoint exchanges them
// (RFC 8693) for ID-JAGs for the authorization server, which trusts its
// JWKS.
type identityProvider struct {
	srv      *httptest.Server
	issuer   string
	key      *ecdsa.PrivateKey
	asIssuer string // the only audience it issues ID-JAGs for

	exchanges atomic.Int64
	mu        sync.Mutex
	err       error // the last refusal
}

const idpKeyID = "idp-key-1"

func newIdentityProvider(t *testing.T, asIssuer string) *identityProvider {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := &identityProvider{key: key, asIssuer: asIssuer}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(rw http.ResponseWriter, r *http.Request) {
		writeJSON(rw, http.StatusOK, &meta.AuthorizationServerMetadata{
			Issuer: p.issuer, TokenEndpoint: p.issuer + "/token", JWKSURI: p.issuer + "/jwks",
			GrantTypesSupported:               []string{meta.GrantTypeTokenExchange},
			TokenEndpointAuthMethodsSupported: []string{meta.AuthMethodClientSecretBasic},
		})
	})
	mux.HandleFunc("GET /jwks", func(rw http.ResponseWriter, r *http.Request) {
		writeJSON(rw, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: idpKeyID, Algorithm: "ES256", Use: "sig"}}})
	})
	mux.HandleFunc("POST /token", p.token)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	p.issuer = p.srv.URL
	return p
}

func writeJSON(rw http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("Cache-Control", "no-store")
	rw.WriteHeader(status)
	rw.Write(b)
}

func (p *identityProvider) sign(typ string, claims map[string]any) (string, error) {
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ))
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: p.key, KeyID: idpKeyID}}, opts)
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// idToken is the ID token the user got when signing in to the agent
// through the identity provider.
func (p *identityProvider) idToken(sub string) (string, error) {
	now := time.Now()
	return p.sign("JWT", map[string]any{"iss": p.issuer, "sub": sub, "aud": idpAppID, "iat": now.Unix(),
		"exp": now.Add(10 * time.Minute).Unix(), "email": "alice@example.test"})
}

func (p *identityProvider) lastError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *identityProvider) refuse(rw http.ResponseWriter, status int, code, format string, args ...any) {
	desc := fmt.Sprintf(format, args...)
	p.mu.Lock()
	p.err = fmt.Errorf("%s: %s", code, desc)
	p.mu.Unlock()
	writeJSON(rw, status, map[string]string{"error": code, "error_description": desc})
}

// token implements the token exchange of the enterprise-managed
// authorization profile: ID token in, ID-JAG out.
func (p *identityProvider) token(rw http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	}
	if !ok || id != idpAppID || secret != idpAppSecret {
		p.refuse(rw, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	if err := r.ParseForm(); err != nil {
		p.refuse(rw, http.StatusBadRequest, "invalid_request", "%v", err)
		return
	}
	f := r.PostForm
	for k, want := range map[string]string{
		"grant_type":           meta.GrantTypeTokenExchange,
		"requested_token_type": meta.TokenTypeIDJAG,
		"subject_token_type":   meta.TokenTypeIDToken,
		"audience":             p.asIssuer,
	} {
		if got := f.Get(k); got != want {
			p.refuse(rw, http.StatusBadRequest, "invalid_request", "%s is %q, want %q", k, got, want)
			return
		}
	}
	resourceURI := f.Get("resource")
	if resourceURI == "" {
		p.refuse(rw, http.StatusBadRequest, "invalid_target", "resource is required")
		return
	}
	sub, err := p.verifyIDToken(f.Get("subject_token"))
	if err != nil {
		p.refuse(rw, http.StatusBadRequest, "invalid_grant", "subject_token: %v", err)
		return
	}
	scope := f.Get("scope")
	if scope == "" {
		scope = scopeRead
	}
	now := time.Now()
	jag, err := p.sign(meta.IDJAGJWTType, map[string]any{
		"iss": p.issuer, "sub": sub, "aud": p.asIssuer, "client_id": agentClientID,
		"resource": resourceURI, "scope": scope, "jti": meta.RandomToken(12),
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	})
	if err != nil {
		p.refuse(rw, http.StatusInternalServerError, "server_error", "%v", err)
		return
	}
	p.exchanges.Add(1)
	writeJSON(rw, http.StatusOK, map[string]any{"access_token": jag, "issued_token_type": meta.TokenTypeIDJAG,
		"token_type": "N_A", "expires_in": 300, "scope": scope})
}

// verifyIDToken checks an ID token this provider issued to the agent and
// returns its subject.
func (p *identityProvider) verifyIDToken(raw string) (string, error) {
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return "", err
	}
	payload, err := jws.Verify(&p.key.PublicKey)
	if err != nil {
		return "", err
	}
	var c struct {
		Iss string `json:"iss"`
		Sub string `json:"sub"`
		Aud string `json:"aud"`
		Exp int64  `json:"exp"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", err
	}
	switch {
	case c.Iss != p.issuer:
		return "", fmt.Errorf("iss %q", c.Iss)
	case c.Aud != idpAppID:
		return "", fmt.Errorf("aud %q", c.Aud)
	case c.Sub == "":
		return "", errors.New("no sub")
	case time.Unix(c.Exp, 0).Before(time.Now()):
		return "", errors.New("expired")
	}
	return c.Sub, nil
}
