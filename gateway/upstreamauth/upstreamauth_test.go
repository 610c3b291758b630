package upstreamauth

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/oauth/authserver"
	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/oauth/oauthclient"
	"github.com/mcpgate/mcpgate/oauth/resource"
	"github.com/mcpgate/mcpgate/store"
)

// testUpstream is an HTTP resource behind oauth/resource, with its own
// oauth/authserver. It answers with the subject of the token it got.
type testUpstream struct {
	url string
	as  *authserver.Server
	st  store.Store
}

func newTestUpstream(t *testing.T, adjust ...func(*authserver.Options)) *testUpstream {
	t.Helper()
	asMux, upMux := http.NewServeMux(), http.NewServeMux()
	asSrv, upSrv := httptest.NewServer(asMux), httptest.NewServer(upMux)
	t.Cleanup(asSrv.Close)
	t.Cleanup(upSrv.Close)
	p := &testUpstream{url: upSrv.URL + "/mcp", st: store.NewMemory()}
	opts := &authserver.Options{
		Resources: []authserver.Resource{{URI: p.url, Scopes: []string{"files:read"}, DefaultScopes: []string{"files:read"}}},
		Logger:    slog.New(slog.DiscardHandler),
	}
	for _, f := range adjust {
		f(opts)
	}
	as, err := authserver.New(context.Background(), asSrv.URL+"/as", p.st, opts)
	if err != nil {
		t.Fatal(err)
	}
	as.Mount(asMux)
	p.as = as
	rs, err := resource.New(p.url, resource.NewJWTVerifier(as.Issuer(), p.url, as, nil),
		&resource.Options{AuthorizationServers: []string{as.Issuer()}, ScopesSupported: []string{"files:read"}})
	if err != nil {
		t.Fatal(err)
	}
	rs.Mount(upMux)
	upMux.Handle("/mcp", rs.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pr, _ := resource.PrincipalFromContext(r.Context())
		io.WriteString(w, pr.Subject)
	})))
	// /mcp/write needs files:write, and says so (step-up).
	upMux.Handle("/mcp/write", rs.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pr, _ := resource.PrincipalFromContext(r.Context())
		if !pr.HasScopes("files:write") {
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="files:read files:write"`)
			w.WriteHeader(http.StatusForbidden)
			return
		}
		io.WriteString(w, "wrote as "+pr.Subject)
	})))
	return p
}

// get fetches u with hc and returns the body.
func get(t *testing.T, hc *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := hc.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestClientCredentials: the gateway's own token goes to the upstream's
// origin and nowhere else.
func TestClientCredentials(t *testing.T) {
	up := newTestUpstream(t)
	ctx := context.Background()
	if err := up.st.CreateClient(ctx, &store.Client{
		ID: "gw", Kind: store.ClientPreRegistered, Name: "mcpgate", SecretHash: store.Digest("gw-secret"),
		GrantTypes: []string{meta.GrantTypeClientCredentials}, TokenEndpointAuthMethod: meta.AuthMethodClientSecretBasic,
		Scope: "files:read", CreatedAt: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_UPSTREAMAUTH_SECRET", "gw-secret")
	var elsewhere string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere = r.Header.Get("Authorization") }))
	defer other.Close()

	s := New(nil)
	desc := Upstream{Name: "files", URL: up.url, Credentials: &config.Credentials{
		Type: config.CredentialsOAuthClientCredentials, ClientID: "gw", ClientSecretEnv: "TEST_UPSTREAMAUTH_SECRET"}}
	hc, err := s.HTTPClient(ctx, desc, nil, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if status, body := get(t, hc, up.url); status != http.StatusOK || body != "client:gw" {
		t.Fatalf("upstream answered %d %q, want the gateway's client", status, body)
	}
	get(t, hc, other.URL)
	if elsewhere != "" {
		t.Errorf("another origin received Authorization %q", elsewhere)
	}

	// A missing secret is a clear error.
	desc.Credentials = &config.Credentials{Type: config.CredentialsOAuthClientCredentials, ClientID: "gw", ClientSecretEnv: "TEST_UPSTREAMAUTH_UNSET"}
	desc.Name = "other"
	if hc, err = s.HTTPClient(ctx, desc, nil, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := hc.Get(up.url); err == nil || !strings.Contains(err.Error(), "TEST_UPSTREAMAUTH_UNSET") {
		t.Errorf("missing secret: %v", err)
	}
}

// TestElicitationRequired: a principal without a token gets a URL
// elicitation for the gateway's connect page, the same one while it is
// pending, and another principal gets another one.
func TestElicitationRequired(t *testing.T) {
	up := newTestUpstream(t)
	ctx := context.Background()
	desc := Upstream{Name: "files", URL: up.url, Credentials: &config.Credentials{Type: config.CredentialsOAuthUser, ClientID: "gw-user"}}

	s := New(&Options{PerUser: true, BaseURL: "http://gw.example/oauth/"})
	_, err := s.HTTPClient(ctx, desc, nil, "alice")
	var je *jsonrpc.Error
	if !errors.As(err, &je) || je.Code != jsonrpc.CodeURLElicitationRequired {
		t.Fatalf("HTTPClient without a token: %v, want error %d", err, jsonrpc.CodeURLElicitationRequired)
	}
	ea := Elicitations(err)
	if len(ea) != 1 || !strings.HasPrefix(ea[0].URL, "http://gw.example/oauth/upstream-auth/") || ea[0].ElicitationID == "" {
		t.Fatalf("elicitations %+v", ea)
	}
	again := Elicitations(s.ElicitationRequired(ctx, desc, "alice"))
	if len(again) != 1 || again[0].ElicitationID != ea[0].ElicitationID {
		t.Errorf("second elicitation %+v, want the pending %q", again, ea[0].ElicitationID)
	}
	eb := Elicitations(s.ElicitationRequired(ctx, desc, "bob"))
	if len(eb) != 1 || eb[0].ElicitationID == ea[0].ElicitationID {
		t.Errorf("bob's elicitation %+v", eb)
	}

	for name, s := range map[string]*Service{
		"no base URL":  New(&Options{PerUser: true}),
		"not per-user": New(&Options{BaseURL: "http://gw.example"}),
	} {
		err := s.ElicitationRequired(ctx, desc, "alice")
		if err == nil || Elicitations(err) != nil {
			t.Errorf("%s: %v, want a plain error", name, err)
		}
	}
	if Elicitations(errors.New("x")) != nil || Elicitations(&jsonrpc.Error{Code: jsonrpc.CodeURLElicitationRequired, Data: jsontext.Value(`{`)}) != nil {
		t.Error("Elicitations accepted garbage")
	}
}

// TestConnectPage: the connect page starts the flow only for the
// principal the elicitation was made for, and the callback only takes a
// response it is waiting for.
func TestConnectPage(t *testing.T) {
	up := newTestUpstream(t)
	ctx := context.Background()
	desc := Upstream{Name: "files", URL: up.url, Credentials: &config.Credentials{Type: config.CredentialsOAuthUser, ClientID: "gw-user"}}
	mux := http.NewServeMux()
	gw := httptest.NewServer(mux)
	defer gw.Close()
	browser := func(r *http.Request) (string, error) {
		if u := r.Header.Get("X-Test-User"); u != "" {
			return u, nil
		}
		return "", errors.New("not signed in")
	}
	s := New(&Options{PerUser: true, BaseURL: gw.URL, Hooks: Hooks{BrowserPrincipal: browser}})
	s.Mount(mux)
	e := Elicitations(s.ElicitationRequired(ctx, desc, "alice"))
	if len(e) != 1 {
		t.Fatalf("elicitations %+v", e)
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	open := func(u, user string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if user != "" {
			req.Header.Set("X-Test-User", user)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	for _, tc := range []struct {
		name, url, user string
		want            int
	}{
		{"unknown link", gw.URL + "/upstream-auth/nope", "alice", http.StatusNotFound},
		{"nobody signed in", e[0].URL, "", http.StatusUnauthorized},
		{"another user", e[0].URL, "bob", http.StatusForbidden},
		{"callback without state", gw.URL + "/upstream-auth/callback?code=x", "alice", http.StatusBadRequest},
		{"callback with unknown state", gw.URL + "/upstream-auth/callback?code=x&state=y", "alice", http.StatusBadRequest},
	} {
		if resp := open(tc.url, tc.user); resp.StatusCode != tc.want {
			t.Errorf("%s: HTTP %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
	resp := open(e[0].URL, "alice")
	loc, _ := resp.Location()
	if resp.StatusCode != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), up.as.Issuer()) {
		t.Fatalf("alice opening her link: HTTP %d to %v", resp.StatusCode, loc)
	}
	if q := loc.Query(); q.Get("client_id") != "gw-user" || q.Get("redirect_uri") != gw.URL+"/upstream-auth/callback" || q.Get("code_challenge") == "" {
		t.Errorf("authorization request %s", loc)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if strings.HasPrefix(c.Name, flowCookiePrefix) {
			cookie = c
		}
	}
	if cookie == nil || cookie.Path != "/upstream-auth/callback" || !cookie.HttpOnly {
		t.Fatalf("flow cookie %+v", cookie)
	}
	// The response comes back to a browser without the flow's cookie.
	cb := gw.URL + "/upstream-auth/callback?" + url.Values{"code": {"x"}, "state": {loc.Query().Get("state")}}.Encode()
	if resp := open(cb, "alice"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("callback without the flow cookie: HTTP %d, want 403", resp.StatusCode)
	}

	// Without a way to tell who the browser is, no flow starts.
	s2 := New(&Options{PerUser: true, BaseURL: gw.URL + "/two"})
	s2.Mount(mux)
	e2 := Elicitations(s2.ElicitationRequired(ctx, desc, "alice"))
	if resp := open(e2[0].URL, "alice"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no BrowserPrincipal: HTTP %d, want 401", resp.StatusCode)
	}
	// A service without per-user upstreams serves no pages.
	New(&Options{BaseURL: gw.URL + "/three"}).Mount(mux)
	if resp := open(gw.URL+"/three/upstream-auth/x", "alice"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("pages without per-user upstreams: HTTP %d", resp.StatusCode)
	}
}

// TestForget: a stored token is dropped, and nothing happens for an
// upstream that is not per-user.
func TestForget(t *testing.T) {
	ctx := context.Background()
	tokens := store.NewUpstreamTokensMemory()
	s := New(&Options{PerUser: true, Tokens: tokens})
	if s.Tokens() != tokens {
		t.Fatal("Tokens is not the store given")
	}
	desc := s.described(Upstream{Name: "files", URL: "https://up.example/mcp", Credentials: &config.Credentials{Type: config.CredentialsOAuthUser}})
	if err := s.saveToken(ctx, desc, "alice", &oauthclient.Token{AccessToken: "a", Resource: desc.URL}); err != nil {
		t.Fatal(err)
	}
	if tk, err := s.loadToken(ctx, desc, "alice"); err != nil || tk == nil || tk.AccessToken != "a" {
		t.Fatalf("loadToken = %v, %v", tk, err)
	}
	other := desc
	other.Credentials = &config.Credentials{Type: config.CredentialsOAuthClientCredentials}
	if err := s.Forget(ctx, other, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := tokens.GetUpstreamToken(ctx, "alice", "files"); err != nil {
		t.Fatalf("Forget of a client-credentials upstream dropped the token: %v", err)
	}
	if err := s.Forget(ctx, desc, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := tokens.GetUpstreamToken(ctx, "alice", "files"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("token kept after Forget: %v", err)
	}
	// A stored token for another resource is discarded.
	if err := s.saveToken(ctx, desc, "alice", &oauthclient.Token{AccessToken: "a", Resource: "https://elsewhere.example/mcp"}); err != nil {
		t.Fatal(err)
	}
	if tk, err := s.loadToken(ctx, desc, "alice"); err != nil || tk != nil {
		t.Errorf("token for another resource: %v, %v", tk, err)
	}
	if New(nil).Forget(ctx, desc, "alice") != nil {
		t.Error("Forget without per-user upstreams failed")
	}
	if !PerUser(desc.Credentials) || PerUser(other.Credentials) || PerUser(nil) {
		t.Error("PerUser")
	}
}
