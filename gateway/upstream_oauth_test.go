package gateway

import (
	"bytes"
	"context"
	"errors"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/gateway/upstreamauth"
	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/oauth/authserver"
	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/oauth/oauthclient"
	"github.com/mcpgate/mcpgate/oauth/resource"
	"github.com/mcpgate/mcpgate/oauth/safehttp"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

var cheapArgon2 = &authserver.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}

// listen reserves a loopback address and returns it with its base URL.
func listen(t *testing.T) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln, "http://" + ln.Addr().String()
}

func serve(t *testing.T, ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

func addUser(t *testing.T, st store.Store, name, password string) {
	t.Helper()
	h, err := authserver.HashPassword(password, cheapArgon2)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateUser(context.Background(), &store.User{Username: name, PasswordHash: h, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

// seen is what the protected upstream saw of one request.
type seen struct {
	auth    string // the Authorization header
	subject string // the subject of the verified token
}

// protectedUpstream is an MCP server behind oauth/resource, with its own
// oauth/authserver. It records the token of every request.
type protectedUpstream struct {
	url   string // the MCP endpoint
	as    *authserver.Server
	st    store.Store
	mu    sync.Mutex
	calls []seen
}

func (p *protectedUpstream) seen() []seen {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

// subjects returns the distinct subjects and access tokens the upstream
// saw.
func (p *protectedUpstream) tokens() (subjects, tokens []string) {
	for _, s := range p.seen() {
		if !slices.Contains(subjects, s.subject) {
			subjects = append(subjects, s.subject)
		}
		if !slices.Contains(tokens, s.auth) {
			tokens = append(tokens, s.auth)
		}
	}
	return subjects, tokens
}

func newProtectedUpstream(t *testing.T, accessTTL time.Duration) *protectedUpstream {
	t.Helper()
	return newProtectedUpstreamWith(t, accessTTL, nil)
}

// newProtectedUpstreamWith is newProtectedUpstream with the authorization
// server's handler wrapped by wrap (if not nil).
func newProtectedUpstreamWith(t *testing.T, accessTTL time.Duration, wrap func(http.Handler) http.Handler) *protectedUpstream {
	t.Helper()
	ctx := context.Background()
	asLn, asBase := listen(t)
	upLn, upBase := listen(t)
	p := &protectedUpstream{url: upBase + "/mcp", st: store.NewMemory()}
	as, err := authserver.New(ctx, asBase+"/upstream-as", p.st, &authserver.Options{
		Resources:      []authserver.Resource{{URI: p.url, Scopes: []string{"files:read"}, DefaultScopes: []string{"files:read"}}},
		AccessTokenTTL: accessTTL,
		Logger:         slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	p.as = as
	asMux := http.NewServeMux()
	as.Mount(asMux)
	var asHandler http.Handler = asMux
	if wrap != nil {
		asHandler = wrap(asMux)
	}
	serve(t, asLn, asHandler)

	rs, err := resource.New(p.url, resource.NewJWTVerifier(as.Issuer(), p.url, as, &resource.JWTOptions{Revocation: as}),
		&resource.Options{AuthorizationServers: []string{as.Issuer()}, ScopesSupported: []string{"files:read"}, ResourceName: "files"})
	if err != nil {
		t.Fatal(err)
	}
	s := testUpstream("files", nil)
	mcpHandler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	// The resource middleware removes the Authorization header before the
	// MCP handler: note it on the way in, and the subject on the way out.
	type authKey struct{}
	record := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var sub string
		if pr, ok := resource.PrincipalFromContext(r.Context()); ok {
			sub = pr.Subject
		}
		auth, _ := r.Context().Value(authKey{}).(string)
		p.mu.Lock()
		p.calls = append(p.calls, seen{auth: auth, subject: sub})
		p.mu.Unlock()
		mcpHandler.ServeHTTP(w, r)
	})
	protected := rs.Middleware(record)
	upMux := http.NewServeMux()
	rs.Mount(upMux)
	upMux.Handle("/mcp", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		protected.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), authKey{}, r.Header.Get("Authorization"))))
	}))
	serve(t, upLn, upMux)
	addUser(t, p.st, "up-alice", "alice-upstream-pw")
	addUser(t, p.st, "up-bob", "bob-upstream-pw")
	return p
}

// TestClientCredentialsUpstream: the gateway gets its own token from the
// upstream's authorization server with the client credentials grant,
// found by discovery from the upstream's 401 or given as token_url, uses
// it for every principal, and gets a new one when it expires.
func TestClientCredentialsUpstream(t *testing.T) {
	for _, tc := range []struct {
		name     string
		tokenURL bool
	}{{"discovered", false}, {"token_url", true}} {
		t.Run(tc.name, func(t *testing.T) {
			up := newProtectedUpstream(t, 31*time.Second) // usable for about 1s (30s expiry skew)
			ctx := context.Background()
			if err := up.st.CreateClient(ctx, &store.Client{
				ID: "gw", Kind: store.ClientPreRegistered, Name: "mcpgate",
				SecretHash:              store.Digest("gw-secret"),
				GrantTypes:              []string{meta.GrantTypeClientCredentials},
				TokenEndpointAuthMethod: meta.AuthMethodClientSecretBasic,
				Scope:                   "files:read",
				CreatedAt:               time.Now(),
			}); err != nil {
				t.Fatal(err)
			}
			secretFile := filepath.Join(t.TempDir(), "secret")
			if err := os.WriteFile(secretFile, []byte("gw-secret\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			cr := &config.Credentials{Type: config.CredentialsOAuthClientCredentials, ClientID: "gw", ClientSecretFile: secretFile, Scopes: []string{"files:read"}}
			if tc.tokenURL {
				cr.TokenURL = up.as.Metadata().TokenEndpoint
			}
			_, gw := startGateway(t, &config.Config{Upstreams: []config.Upstream{{Name: "files", URL: up.url, Credentials: cr}}})
			cs := connect(t, gw, nil)
			if got := callText(t, cs, "files_whoami"); got != "files" {
				t.Fatalf("files_whoami = %q", got)
			}
			time.Sleep(1100 * time.Millisecond) // the token is now within the expiry skew
			if got := callText(t, cs, "files_whoami"); got != "files" {
				t.Fatalf("files_whoami after expiry = %q", got)
			}
			subjects, tokens := up.tokens()
			if len(subjects) != 1 || subjects[0] != "client:gw" {
				t.Errorf("upstream saw subjects %q, want only client:gw", subjects)
			}
			if len(tokens) < 2 {
				t.Errorf("upstream saw %d distinct tokens, want a new one after expiry", len(tokens))
			}
			for _, tok := range tokens {
				if !strings.HasPrefix(tok, "Bearer ") || strings.Contains(tok, "caller-secret-token") {
					t.Errorf("upstream saw Authorization %q", tok)
				}
			}
		})
	}
}

// TestClientCredentialsUpstreamBadSecret: a wrong secret is a clear
// error, not an anonymous connection.
func TestClientCredentialsUpstreamBadSecret(t *testing.T) {
	up := newProtectedUpstream(t, time.Hour)
	secretFile := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secretFile, []byte("wrong"), 0o600)
	g, err := New(&config.Config{Upstreams: []config.Upstream{{Name: "files", URL: up.url,
		Credentials: &config.Credentials{Type: config.CredentialsOAuthClientCredentials, ClientID: "nobody", ClientSecretFile: secretFile}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Start does not fail; the upstream's state says why it is not ready.
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	g.WaitStartup(ctx)
	if st := g.UpstreamStates()[0]; st.State == UpstreamReady || !strings.Contains(st.LastError, "files") {
		t.Fatalf("state = %+v, want a failure of upstream files", st)
	}
	for _, s := range up.seen() {
		if s.subject != "" {
			t.Errorf("upstream accepted a token for %q", s.subject)
		}
	}
}

// testBrowser is a user agent with a cookie jar that signs in and
// consents on authserver pages.
type testBrowser struct {
	t        *testing.T
	hc       *http.Client
	user, pw string
}

func newTestBrowser(t *testing.T, user, pw string) *testBrowser {
	jar, _ := cookiejar.New(nil)
	return &testBrowser{t: t, user: user, pw: pw, hc: &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var (
	hiddenInputRe = regexp.MustCompile(`<input type="hidden" name="([a-z]+)" value="([^"]*)">`)
	postFormRe    = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
)

// visit opens u and follows redirects, signing in and approving on the
// way, until a page that is neither, or a redirect to a URL starting with
// stopAt. It returns the last status, the last URL (the redirect target
// when stopped) and the page.
func (b *testBrowser) visit(u, stopAt string) (int, string, string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for range 20 {
		resp, err := b.hc.Do(req)
		if err != nil {
			b.t.Fatalf("browser: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		page := string(body)
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			loc, err := resp.Location()
			if err != nil {
				b.t.Fatalf("browser: redirect without location from %s", req.URL)
			}
			if stopAt != "" && strings.HasPrefix(loc.String(), stopAt) {
				return resp.StatusCode, loc.String(), ""
			}
			req, _ = http.NewRequest(http.MethodGet, loc.String(), nil)
		case resp.StatusCode == http.StatusOK && (strings.Contains(page, `name="password"`) || strings.Contains(page, `value="approve"`)):
			form := url.Values{}
			for _, m := range hiddenInputRe.FindAllStringSubmatch(page, -1) {
				form.Set(m[1], html.UnescapeString(m[2]))
			}
			if strings.Contains(page, `name="password"`) {
				form.Set("username", b.user)
				form.Set("password", b.pw)
			} else {
				form.Set("action", "approve")
			}
			m := postFormRe.FindStringSubmatch(page)
			if m == nil {
				b.t.Fatalf("browser: no form on %s", req.URL)
			}
			target, _ := req.URL.Parse(html.UnescapeString(m[1]))
			req, _ = http.NewRequest(http.MethodPost, target.String(), strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		default:
			return resp.StatusCode, req.URL.String(), page
		}
	}
	b.t.Fatalf("browser: too many steps from %s", u)
	return 0, "", ""
}

// user is a person using an MCP client through the gateway.
type user struct {
	name     string
	browser  *testBrowser
	tr       *oauthclient.Transport
	cs       *mcp.ClientSession
	complete chan string // elicitation ids from notifications/elicitation/complete
}

// signIn connects an MCP client to the gateway as name, authorizing it
// at the gateway's authorization server in the user's browser.
func signIn(t *testing.T, gwMCP, name, pw, upstreamUser, upstreamPW string) *user {
	t.Helper()
	u := &user{name: name, complete: make(chan string, 4)}
	gwBrowser := newTestBrowser(t, name, pw)
	u.browser = gwBrowser
	const redirect = "http://127.0.0.1:9/callback" // never reached: the browser stops there
	tr, err := oauthclient.NewTransport(nil, &oauthclient.Config{
		ServerURL:   gwMCP,
		RedirectURL: redirect,
		SafeHTTP:    &safehttp.Options{AllowLoopback: true, AllowInsecureLoopback: true},
		AuthorizationHandler: oauthclient.AuthorizationCodeHandlerFunc(func(ctx context.Context, req *oauthclient.AuthorizationRequest) (*oauthclient.AuthorizationResponse, error) {
			_, loc, page := gwBrowser.visit(req.URL, redirect)
			if loc == "" || !strings.HasPrefix(loc, redirect) {
				return nil, errors.New("sign-in did not reach the redirect: " + page)
			}
			lu, _ := url.Parse(loc)
			return oauthclient.ParseAuthorizationResponse(lu), nil
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	u.tr = tr
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "client-of-" + name, Version: "1"}, &mcp.ClientOptions{
		URLElicitation: true,
		ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "decline"}, nil
		},
		ElicitationCompleteHandler: func(_ context.Context, _ *mcp.ClientSession, p *mcp.ElicitationCompleteNotificationParams) {
			select {
			case u.complete <- p.ElicitationID:
			default:
			}
		},
	}).Connect(ctx, &mcp.StreamableClientTransport{Endpoint: gwMCP, HTTPClient: &http.Client{Transport: tr}}, nil)
	if err != nil {
		t.Fatalf("%s connecting: %v", name, err)
	}
	t.Cleanup(func() { cs.Close() })
	u.cs = cs
	// The same browser is used at the upstream's authorization server,
	// with the user's account there.
	u.browser = &testBrowser{t: t, hc: gwBrowser.hc, user: upstreamUser, pw: upstreamPW}
	return u
}

// call calls a tool and returns its text or the error.
func (u *user) call(name string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := u.cs.CallTool(ctx, &mcp.CallToolParams{Name: name})
	if err != nil {
		return "", err
	}
	if res.IsError || len(res.Content) == 0 {
		return "", errors.New("tool error")
	}
	return res.Content[0].(*mcp.TextContent).Text, nil
}

// mustElicit checks that err is a URLElicitationRequiredError with one
// URL-mode elicitation and returns it.
func mustElicit(t *testing.T, who string, err error) *mcp.ElicitParams {
	t.Helper()
	var je *jsonrpc.Error
	if !errors.As(err, &je) || je.Code != mcp.CodeURLElicitationRequired {
		t.Fatalf("%s: got %v, want error %d", who, err, mcp.CodeURLElicitationRequired)
	}
	var data mcp.URLElicitationRequiredErrorData
	if err := json.Unmarshal(je.Data, &data); err != nil {
		t.Fatalf("%s: error data %s: %v", who, je.Data, err)
	}
	if len(data.Elicitations) != 1 {
		t.Fatalf("%s: %d elicitations in %s", who, len(data.Elicitations), je.Data)
	}
	e := data.Elicitations[0]
	if e.Mode != mcp.ElicitationModeURL || e.ElicitationID == "" || e.URL == "" || e.Message == "" {
		t.Fatalf("%s: elicitation %+v", who, e)
	}
	return e
}

func (u *user) waitComplete(t *testing.T, id string) {
	t.Helper()
	select {
	case got := <-u.complete:
		if got != id {
			t.Fatalf("%s: elicitation complete for %q, want %q", u.name, got, id)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no notifications/elicitation/complete", u.name)
	}
}

// TestPerUserUpstreamOAuth runs per-user upstream authorization end to
// end: the gateway with its own authorization server (auth oauth) in
// front of an upstream protected by another one.
func TestPerUserUpstreamOAuth(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testPerUserUpstreamOAuth(t, true) })
	t.Run("memory", func(t *testing.T) { testPerUserUpstreamOAuth(t, false) })
}

// testPerUserUpstreamOAuth runs the scenario with the gateway's default
// SQLite database in the data directory (which also keeps the sealed
// upstream tokens), or with an in-memory identity store (the tokens are
// then kept in memory).
func testPerUserUpstreamOAuth(t *testing.T, useSQLite bool) {
	up := newProtectedUpstream(t, 31*time.Second) // usable for about 1s (30s expiry skew)
	gwLn, gwBase := listen(t)
	dataDir := t.TempDir()
	cfg := &config.Config{Auth: config.AuthOAuth, PublicURL: gwBase, DataDir: dataDir, Upstreams: []config.Upstream{{
		Name: "files", URL: up.url, Credentials: &config.Credentials{Type: config.CredentialsOAuthUser, Scopes: []string{"files:read"}},
	}}}
	// As internal/app wires it: the identity store keeps the sealed
	// tokens when it can, the key is in the data directory.
	var ids store.Store = store.NewMemory()
	opts := &Options{UpstreamTokenKey: datadir.UpstreamTokenKey(dataDir)}
	if useSQLite {
		db := openDataDir(t, dataDir)
		ids, opts.UpstreamTokens = db, db
	}
	g, err := New(cfg, withAuth(t, cfg, ids, opts))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	addUser(t, g.auth.Store, "alice", "alice-gateway-pw")
	addUser(t, g.auth.Store, "bob", "bob-gateway-pw")
	tokens := g.upAuth.Tokens()
	if _, isDB := tokens.(*sqlite.Store); isDB != useSQLite {
		t.Fatalf("upstream tokens kept in %T", tokens)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var states []string
	g.opts.Progress = func(_, state string, _ error) { states = append(states, state) }
	if err := g.Start(ctx); err != nil {
		t.Fatalf("Start with only a per-user upstream: %v", err)
	}
	if !slices.Equal(states, []string{"per-user"}) {
		t.Errorf("progress states %q, want [per-user]", states)
	}
	serve(t, gwLn, g.Handler())
	gwMCP := gwBase + "/mcp"

	alice := signIn(t, gwMCP, "alice", "alice-gateway-pw", "up-alice", "alice-upstream-pw")
	bob := signIn(t, gwMCP, "bob", "bob-gateway-pw", "up-bob", "bob-upstream-pw")

	// No token yet: the call fails with -32042 pointing at the gateway.
	_, err = alice.call("files_whoami")
	ea := mustElicit(t, "alice", err)
	if !strings.HasPrefix(ea.URL, gwBase+"/") || strings.Contains(ea.URL, "upstream-as") {
		t.Fatalf("elicitation URL %q is not a gateway page", ea.URL)
	}
	if len(up.seen()) != 0 {
		t.Fatalf("the gateway sent the upstream a token before anyone authorized: %+v", up.seen())
	}
	// Listing works meanwhile (without the upstream's tools), and a name
	// without the upstream's prefix is simply unknown.
	for tool, err := range alice.cs.Tools(ctx) {
		if err != nil {
			t.Fatalf("listing tools before authorizing: %v", err)
		}
		if strings.HasPrefix(tool.Name, "files_") {
			t.Errorf("tool %s listed before authorizing", tool.Name)
		}
	}
	var je *jsonrpc.Error
	if _, err := alice.call("other_tool"); !errors.As(err, &je) || je.Code != jsonrpc.CodeInvalidParams {
		t.Errorf("unknown tool without the prefix: %v, want invalid params", err)
	}
	// Asking again gives the same pending elicitation.
	_, err = alice.call("files_whoami")
	if again := mustElicit(t, "alice again", err); again.ElicitationID != ea.ElicitationID {
		t.Errorf("second elicitation %q, want the pending %q", again.ElicitationID, ea.ElicitationID)
	}
	_, err = bob.call("files_whoami")
	eb := mustElicit(t, "bob", err)
	if eb.ElicitationID == ea.ElicitationID || eb.URL == ea.URL {
		t.Fatal("alice and bob got the same elicitation")
	}

	// Bob cannot open Alice's link, and neither can a browser nobody
	// signed in with.
	// The gateway's page refuses them itself, before any redirect to the
	// upstream's authorization server.
	if status, last, page := bob.browser.visit(ea.URL, up.as.Issuer()); status != http.StatusForbidden || last != ea.URL {
		t.Fatalf("bob opening alice's link: HTTP %d at %s\n%s", status, last, page)
	}
	if status, last, _ := newTestBrowser(t, "x", "y").visit(ea.URL, up.as.Issuer()); status != http.StatusUnauthorized || last != ea.URL {
		t.Fatalf("anonymous browser opening alice's link: HTTP %d at %s", status, last)
	}

	// Alice completes hers: gateway page → upstream AS sign-in and consent
	// → gateway callback.
	status, last, page := alice.browser.visit(ea.URL, "")
	if status != http.StatusOK || !strings.Contains(page, "You can close this window") {
		t.Fatalf("alice's authorization: HTTP %d at %s\n%s", status, last, page)
	}
	if !strings.HasPrefix(last, gwBase+"/oauth/upstream-auth/callback?") {
		t.Fatalf("the flow ended at %s, not the gateway callback", last)
	}
	alice.waitComplete(t, ea.ElicitationID)
	// The callback is single use.
	if status, _, _ := alice.browser.visit(last, ""); status != http.StatusBadRequest {
		t.Errorf("replayed callback: HTTP %d, want 400", status)
	}
	// The link is used up too.
	if status, _, _ := alice.browser.visit(ea.URL, ""); status != http.StatusNotFound {
		t.Errorf("reopened link: HTTP %d, want 404", status)
	}

	if got, err := alice.call("files_whoami"); err != nil || got != "files" {
		t.Fatalf("alice after authorizing: %q, %v", got, err)
	}
	subjects, _ := up.tokens()
	if !slices.Equal(subjects, []string{"up-alice"}) {
		t.Fatalf("upstream saw subjects %q, want up-alice only", subjects)
	}
	// The tool now appears in alice's list.
	var names []string
	for tool, err := range alice.cs.Tools(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tool.Name)
	}
	if !slices.Contains(names, "files_whoami") {
		t.Errorf("alice's tools after authorizing: %v", names)
	}

	// Tokens are per user: bob still has to authorize.
	_, err = bob.call("files_whoami")
	if e := mustElicit(t, "bob after alice", err); e.ElicitationID != eb.ElicitationID {
		t.Errorf("bob's elicitation changed: %q, want %q", e.ElicitationID, eb.ElicitationID)
	}

	// Bob goes through the upstream's pages; the response comes back to a
	// browser: in Alice's it is refused, in Bob's it completes.
	status, cb, _ := bob.browser.visit(eb.URL, gwBase+"/oauth/upstream-auth/callback")
	if status != http.StatusFound || cb == "" {
		t.Fatalf("bob's authorization did not come back to the gateway: HTTP %d", status)
	}
	if status, _, page := alice.browser.visit(cb, ""); status != http.StatusForbidden {
		t.Fatalf("alice's browser completing bob's authorization: HTTP %d\n%s", status, page)
	}
	if status, _, page := bob.browser.visit(cb, ""); status != http.StatusOK {
		t.Fatalf("bob completing his authorization: HTTP %d\n%s", status, page)
	}
	bob.waitComplete(t, eb.ElicitationID)
	if got, err := bob.call("files_whoami"); err != nil || got != "files" {
		t.Fatalf("bob after authorizing: %q, %v", got, err)
	}
	subjects, _ = up.tokens()
	if !slices.Contains(subjects, "up-bob") {
		t.Errorf("upstream never saw up-bob: %q", subjects)
	}

	// The stored tokens are sealed: the store holds no token in clear;
	// the key file opens them.
	keyPath := filepath.Join(dataDir, datadir.UpstreamTokenKeyFile)
	sealer := upstreamauth.NewSealer(keyPath)
	rec, err := tokens.GetUpstreamToken(ctx, "alice", "files")
	if err != nil {
		t.Fatal(err)
	}
	tk, err := sealer.Open("alice", "files", rec.Ciphertext)
	if err != nil {
		t.Fatal(err)
	}
	if tk.AccessToken == "" || tk.RefreshToken == "" {
		t.Fatalf("stored token lacks an access or refresh token: %v", tk)
	}
	for _, secret := range []string{tk.AccessToken, tk.RefreshToken, tk.AccessToken[:16]} {
		if bytes.Contains(rec.Ciphertext, []byte(secret)) {
			t.Errorf("the store holds a token in clear")
		}
	}
	if _, err := sealer.Open("bob", "files", rec.Ciphertext); err == nil {
		t.Error("alice's sealed token opened as bob's")
	}
	st, err := os.Stat(keyPath)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, %v; want mode 0600", st, err)
	}

	// The access token expires (31s lifetime, 30s skew): the refresh token
	// gets a new one.
	_, before := up.tokens()
	time.Sleep(1100 * time.Millisecond)
	if got, err := alice.call("files_whoami"); err != nil || got != "files" {
		t.Fatalf("alice after expiry: %q, %v", got, err)
	}
	subjects, after := up.tokens()
	if len(after) <= len(before) {
		t.Errorf("no new access token after expiry (%d tokens before, %d after)", len(before), len(after))
	}
	if slices.Contains(subjects, "client:gw") || len(subjects) > 3 {
		t.Errorf("unexpected subjects %q", subjects)
	}

	// A refresh that fails leads back to the elicitation.
	if rec, err = tokens.GetUpstreamToken(ctx, "alice", "files"); err != nil {
		t.Fatalf("loading alice's token: %v", err)
	}
	if tk, err = sealer.Open("alice", "files", rec.Ciphertext); err != nil {
		t.Fatalf("opening alice's token: %v", err)
	}
	tk.RefreshToken = "revoked-" + tk.RefreshToken
	if rec.Ciphertext, err = sealer.Seal("alice", "files", tk); err != nil {
		t.Fatal(err)
	}
	if err := tokens.PutUpstreamToken(ctx, rec); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	_, err = alice.call("files_whoami")
	again := mustElicit(t, "alice after a failed refresh", err)
	if _, err := tokens.GetUpstreamToken(ctx, "alice", "files"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the unusable token was kept: %v", err)
	}
	// Authorizing again (the upstream's authorization server remembers
	// her sign-in) makes the same client session work again.
	if status, _, page := alice.browser.visit(again.URL, ""); status != http.StatusOK {
		t.Fatalf("alice authorizing again: HTTP %d\n%s", status, page)
	}
	alice.waitComplete(t, again.ElicitationID)
	if got, err := alice.call("files_whoami"); err != nil || got != "files" {
		t.Fatalf("alice after authorizing again: %q, %v", got, err)
	}

	// The callers' own gateway tokens never reached the upstream.
	for _, u := range []*user{alice, bob} {
		gtk, err := u.tr.Authorizer().Token(ctx)
		if err != nil || gtk == nil {
			t.Fatalf("%s's gateway token: %v", u.name, err)
		}
		for _, s := range up.seen() {
			if strings.Contains(s.auth, gtk.AccessToken) {
				t.Errorf("the upstream received %s's gateway token", u.name)
			}
		}
	}
}

// TestUpstreamAuthRequiredRouting: unknown names only turn into an
// elicitation when a per-user upstream with a matching prefix waits for
// the user.
func TestUpstreamAuthRequiredRouting(t *testing.T) {
	g := &Gateway{}
	notFound := jsonrpc.NewError(jsonrpc.CodeInvalidParams, "unknown tool")
	if err := g.upstreamAuthRequired(context.Background(), "p", kindTool, "x_tool", notFound); err != notFound {
		t.Errorf("no upstreams: %v", err)
	}
	other := errors.New("boom")
	if err := g.upstreamAuthRequired(context.Background(), "p", kindTool, "x_tool", other); err != other {
		t.Errorf("other error: %v", err)
	}
}
