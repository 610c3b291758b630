package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/app"
	"github.com/mcpgate/mcpgate/internal/testidp"
	"github.com/mcpgate/mcpgate/mcp"
)

var oidcButtonRe = regexp.MustCompile(`<form method="get" action="([^"]*)"[^>]*><input type="hidden" name="next" value="([^"]*)">`)

// TestConsoleRoleFromOIDCGroups: a user who signs in to the console
// through the OIDC provider gets the role that the groups claim of the
// ID token gives ("group:security" administrators); a user whose groups
// give no role is refused at sign-in. The session survives a restart of
// the gateway on the same data directory (the session key is kept in
// it, mode 0600).
func TestConsoleRoleFromOIDCGroups(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	idp, err := testidp.Start(&testidp.Options{
		Users:   map[string]testidp.User{"sam": {Groups: []string{"engineering", "security"}}, "vic": {Groups: []string{"engineering"}}},
		Clients: map[string]testidp.Client{gwAID: {Secret: gwAIdPSecret}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	up := mcp.NewServer(&mcp.Implementation{Name: "up", Version: "1"}, nil)
	upSrv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up }, nil))
	t.Cleanup(upSrv.Close)
	dir := t.TempDir()
	ln, base := listen(t)
	addr := ln.Addr().String()
	cfg := &config.Config{Listen: addr, Auth: config.AuthOAuth, PublicURL: base, DataDir: dir,
		OAuth: &config.OAuth{OIDC: &config.OIDCLogin{Issuer: idp.Issuer, ClientID: gwAID,
			ClientSecretFile: secretFile(t, dir, "idp-login.secret", gwAIdPSecret)}},
		Console:   &config.Console{Administrators: []string{"group:security"}},
		Upstreams: []config.Upstream{{Name: "up", URL: upSrv.URL}},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	first, srv := startApp(ctx, t, ln, cfg, nil)

	sam := consoleOIDCSignIn(ctx, t, idp, base, "sam", http.StatusOK)
	var me struct {
		User string `json:"user"`
		Role string `json:"role"`
	}
	getJSON(ctx, t, sam, base+"/console/api/me", &me)
	t.Logf("sam, in the groups engineering and security at the provider: %+v", me)
	if !strings.HasSuffix(me.User, ":sam") || me.Role != "administrator" {
		t.Errorf("me = %+v, want sam as administrator (group:security)", me)
	}
	consoleOIDCSignIn(ctx, t, idp, base, "vic", http.StatusForbidden)

	fi, err := os.Stat(filepath.Join(dir, app.ConsoleSessionKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("session key file: %v %v", fi, err)
	}
	// A restart on the same data directory keeps sam signed in.
	srv.Close()
	first.Close()
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	startApp(ctx, t, ln2, cfg, nil)
	me.Role = ""
	getJSON(ctx, t, sam, base+"/console/api/me", &me)
	if me.Role != "administrator" {
		t.Errorf("after a restart: %+v, want still signed in as administrator", me)
	}
}

// consoleOIDCSignIn opens the console in a new browser, which the
// console sends to the sign-in page; it takes the OIDC button, the
// provider signs user in, and the browser comes back to the console,
// which answers want.
func consoleOIDCSignIn(ctx context.Context, t *testing.T, idp *testidp.IdP, base, user string, want int) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	idp.SignInAs(user)
	resp, page := fetch(ctx, t, hc, base+"/console/")
	m := oidcButtonRe.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("%s: no OIDC button on the sign-in page (HTTP %d at %s): %.500s", user, resp.StatusCode, resp.Request.URL, page)
	}
	button, _ := resp.Request.URL.Parse(m[1])
	resp, page = fetch(ctx, t, hc, button.String()+"?"+url.Values{"next": {m[2]}}.Encode())
	if resp.StatusCode != want {
		t.Fatalf("%s: after the OIDC sign-in: HTTP %d at %s, want %d: %.500s", user, resp.StatusCode, resp.Request.URL, want, page)
	}
	if want == http.StatusForbidden && !strings.Contains(page, "no role in the console") {
		t.Errorf("%s: refusal page: %.500s", user, page)
	}
	return hc
}

func fetch(ctx context.Context, t *testing.T, hc *http.Client, u string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, string(b)
}

func getJSON(ctx context.Context, t *testing.T, hc *http.Client, u string, v any) {
	t.Helper()
	resp, body := fetch(ctx, t, hc, u)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d %s", u, resp.StatusCode, body)
	}
	if err := json.Unmarshal([]byte(body), v, json.RejectUnknownMembers(false)); err != nil {
		t.Fatalf("GET %s: %v %s", u, err, body)
	}
}
