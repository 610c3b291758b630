package gateway

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/oauth/oauthclient"
	"github.com/mcpgate/mcpgate/oauth/safehttp"
	"github.com/mcpgate/mcpgate/store"
)

// TestOAuthProtectedGateway runs the gateway with its built-in
// authorization server: a request without a token is challenged, a
// machine-to-machine client gets a token with client credentials through the
// project's OAuth client and calls a tool, and the upstream never sees the
// caller's token.
func TestOAuthProtectedGateway(t *testing.T) {
	upURL, rec := httpUpstream(t, "up")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	st := store.NewMemory()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := st.CreateClient(ctx, &store.Client{
		ID: "robot", Kind: store.ClientPreRegistered, Name: "robot",
		SecretHash:              store.Digest("robot-secret"),
		GrantTypes:              []string{meta.GrantTypeClientCredentials},
		TokenEndpointAuthMethod: meta.AuthMethodClientSecretBasic,
		Scope:                   ScopeTools,
		CreatedAt:               time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Auth: config.AuthOAuth, PublicURL: base, Upstreams: []config.Upstream{{Name: "up", URL: upURL, Prefix: ptr("")}}}
	g, err := New(cfg, withAuth(t, cfg, st, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: g.Handler()}
	go srv.Serve(ln)
	defer srv.Close()

	// No token: 401 with a challenge that points at the resource metadata.
	resp, err := http.Post(base+"/mcp", "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "resource_metadata=") {
		t.Fatalf("no token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}

	safe := &safehttp.Options{AllowLoopback: true, AllowInsecureLoopback: true}
	tr, err := oauthclient.NewTransport(http.DefaultTransport, &oauthclient.Config{
		ServerURL: base + "/mcp",
		Flow:      oauthclient.FlowClientCredentials,
		Client:    &oauthclient.ClientAuth{ClientID: "robot", ClientSecret: "robot-secret"},
		SafeHTTP:  safe,
	})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "robot", Version: "1"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: base + "/mcp", HTTPClient: &http.Client{Transport: tr}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if got := callText(t, cs, "whoami"); got != "up" {
		t.Errorf("whoami = %q", got)
	}
	if p := g.principalOf(g.server.Sessions()[0]); p != "client:robot" {
		t.Errorf("principal = %q, want client:robot", p)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, h := range rec.seen {
		if h != "" {
			t.Errorf("upstream received an Authorization header: %q", h)
		}
	}
}

// TestTrustedIssuerConfig: trusted identity providers in the configuration
// reach the built-in authorization server, which then advertises the
// ID-JAG grant profile.
func TestTrustedIssuerConfig(t *testing.T) {
	url, _ := httpUpstream(t, "up")
	cfg := &config.Config{Auth: config.AuthOAuth, PublicURL: "http://127.0.0.1:1",
		OAuth:     &config.OAuth{TrustedIssuers: []config.TrustedIssuer{{Issuer: "https://idp.example.com", JWKSURL: "https://idp.example.com/keys"}}},
		Upstreams: []config.Upstream{{Name: "up", URL: url}}}
	g, err := New(cfg, withAuth(t, cfg, store.NewMemory(), nil))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	srv := httptest.NewServer(g.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/.well-known/oauth-authorization-server/oauth")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "authorization_grant_profiles_supported") || !strings.Contains(string(body), meta.GrantTypeJWTBearer) {
		t.Errorf("metadata does not advertise the ID-JAG profile: %s", body)
	}
	if got := g.idpOf("oidc:idp.example.com:u1"); got != "https://idp.example.com" {
		t.Errorf("idpOf = %q", got)
	}
}
