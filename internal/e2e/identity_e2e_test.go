package e2e

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/gateway"
	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/app"
	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

const identityPolicies = `
permit(principal, action, resource);

@id("no-contractors")
@reason("contractors may not wipe")
forbid(principal, action == Action::"tools/call", resource == Tool::"files/wipe")
when { principal.groups.contains("contractors") };

@id("admins-only-deploy")
forbid(principal, action == Action::"tools/call", resource == Tool::"files/deploy")
unless { principal.roles.contains("admin") && principal.email like "*@example.com" };
`

// bearer adds a fixed access token to every request.
type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// TestIdentityAttributesInPolicy runs a gateway with its built-in
// authorization server on SQLite, trusting an enterprise identity provider
// for ID-JAGs. The groups the ID-JAG asserts reach the Cedar principal: a
// contractor is refused a tool that another enterprise user may call, and
// a local user's roles and email (set in the store) are honoured the same
// way.
func TestIdentityAttributesInPolicy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dataDir := t.TempDir()
	up := controlsUpstream()
	upHTTP := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up }, nil))
	t.Cleanup(upHTTP.Close)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	idp := newIdentityProvider(t, base+"/oauth")

	db, err := sqlite.Open(ctx, datadir.Database(dataDir))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateClient(ctx, &store.Client{ID: agentClientID, Kind: store.ClientPreRegistered, Name: "Enterprise agent",
		SecretHash: store.Digest(agentSecret), GrantTypes: []string{meta.GrantTypeJWTBearer, meta.GrantTypeClientCredentials},
		TokenEndpointAuthMethod: meta.AuthMethodClientSecretBasic, Scope: gateway.ScopeTools, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	policyDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(policyDir, "identity.cedar"), []byte(identityPolicies), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := app.New(ctx, &config.Config{
		Listen: ln.Addr().String(), Auth: config.AuthOAuth, PublicURL: base, DataDir: dataDir,
		Upstreams: []config.Upstream{{Name: "files", URL: upHTTP.URL, Prefix: ptr("")}},
		Policy:    &config.Policy{Paths: []string{policyDir}},
		OAuth:     &config.OAuth{TrustedIssuers: []config.TrustedIssuer{{Issuer: idp.issuer, JWKSURL: idp.issuer + "/jwks"}}},
	}, &app.Options{Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	g := a.Gateway
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: g.Handler()}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close(); a.Close() })

	// token redeems an ID-JAG for sub with the given extra claims.
	token := func(t *testing.T, sub string, extra map[string]any) (string, int) {
		t.Helper()
		now := time.Now()
		claims := map[string]any{
			"iss": idp.issuer, "sub": sub, "aud": base + "/oauth", "client_id": agentClientID,
			"resource": base + "/mcp", "scope": gateway.ScopeTools, "jti": meta.RandomToken(12),
			"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		}
		for k, v := range extra {
			claims[k] = v
		}
		jag, err := idp.sign(meta.IDJAGJWTType, claims)
		if err != nil {
			t.Fatal(err)
		}
		return redeem(t, base+"/oauth/token", url.Values{"grant_type": {meta.GrantTypeJWTBearer}, "assertion": {jag}})
	}
	call := func(t *testing.T, tok, tool string) error {
		t.Helper()
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil).Connect(ctx,
			&mcp.StreamableClientTransport{Endpoint: base + "/mcp", HTTPClient: &http.Client{Transport: bearer{tok}}, MaxRetries: -1}, nil)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		defer cs.Close()
		_, err = callTool(ctx, cs, tool, `{}`)
		return err
	}

	contractor, status := token(t, "U-contractor", map[string]any{"groups": []string{"contractors", "eng"}})
	if status != http.StatusOK {
		t.Fatalf("token for the contractor: HTTP %d %s", status, contractor)
	}
	employee, status := token(t, "U-employee", map[string]any{"groups": []string{"eng"}, "roles": []string{"admin"}, "email": "emp@example.com"})
	if status != http.StatusOK {
		t.Fatalf("token for the employee: HTTP %d %s", status, employee)
	}
	nobody, status := token(t, "U-nobody", nil)
	if status != http.StatusOK {
		t.Fatalf("token for a user without claims: HTTP %d %s", status, nobody)
	}

	if err := call(t, contractor, "wipe"); err == nil || !strings.Contains(err.Error(), "contractors may not wipe") {
		t.Errorf("contractor calling wipe: %v, want a denial by no-contractors", err)
	}
	if err := call(t, contractor, "report"); err != nil {
		t.Errorf("contractor calling report: %v", err)
	}
	if err := call(t, employee, "wipe"); err != nil {
		t.Errorf("employee calling wipe: %v", err)
	}
	if err := call(t, employee, "deploy"); err != nil {
		t.Errorf("admin employee calling deploy: %v", err)
	}
	// No groups, roles or email: the conditions evaluate (empty sets and
	// strings), they do not fail.
	if err := call(t, nobody, "wipe"); err != nil {
		t.Errorf("user without claims calling wipe: %v", err)
	}
	if err := call(t, nobody, "deploy"); err == nil || !strings.Contains(err.Error(), "admins-only-deploy") || strings.Contains(err.Error(), "failed to evaluate") {
		t.Errorf("user without claims calling deploy: %v, want a plain denial by admins-only-deploy", err)
	}
	// A client acting for itself has the attributes too, empty.
	robot, status := redeem(t, base+"/oauth/token", url.Values{"grant_type": {meta.GrantTypeClientCredentials}, "resource": {base + "/mcp"}})
	if status != http.StatusOK {
		t.Fatalf("client credentials: HTTP %d %s", status, robot)
	}
	if err := call(t, robot, "wipe"); err != nil {
		t.Errorf("machine client calling wipe: %v", err)
	}

	// An ID-JAG over the bounds is refused, not truncated.
	many := make([]string, 65)
	for i := range many {
		many[i] = "g" + strings.Repeat("x", i)
	}
	if body, status := token(t, "U-many", map[string]any{"groups": many}); status != http.StatusBadRequest || !strings.Contains(body, "invalid_grant") {
		t.Errorf("ID-JAG with 65 groups: HTTP %d %s, want 400 invalid_grant", status, body)
	}
}

// redeem posts a token request as the agent client and returns the access
// token (or the error body) and the HTTP status.
func redeem(t *testing.T, endpoint string, form url.Values) (string, int) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(agentClientID), url.QueryEscape(agentSecret))
	resp, body, err := doRead(http.DefaultClient, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		return body, resp.StatusCode
	}
	var tr meta.TokenResponse
	if err := json.Unmarshal([]byte(body), &tr, json.RejectUnknownMembers(false)); err != nil {
		t.Fatal(err)
	}
	return tr.AccessToken, resp.StatusCode
}
