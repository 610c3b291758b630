package e2e

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/gateway"
	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/gateway/upstreamauth"
	"github.com/mcpgate/mcpgate/internal/cli/inventorycmd"
	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/oauth/oauthclient"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

// credentialExamples are the runnable examples of
// docs/upstream-credentials.md, one per OAuth mode.
var credentialExamples = []string{"client-credentials.yaml", "oauth-user.yaml", "enterprise.yaml"}

// examplesConfigA is gateway A made of the three examples at once: their
// upstreams (all the same server, gateway B, in three modes) and the
// enterprise example's sign-in, with the addresses of the test world.
func examplesConfigA(w *crossAppWorld, listen string) *config.Config {
	t := w.t
	var cfg *config.Config
	var ups []config.Upstream
	for _, name := range credentialExamples {
		c, err := config.Load(filepath.Join("..", "..", "examples", "credentials", name))
		if err != nil {
			t.Fatalf("examples/credentials/%s: %v", name, err)
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("examples/credentials/%s: %v", name, err)
		}
		for _, u := range c.Upstreams {
			u.URL = w.bBase + "/mcp"
			if cr := u.Credentials; cr != nil && cr.IdPTokenURL != "" {
				cr.IdPTokenURL = w.idp.TokenEndpoint()
			}
			ups = append(ups, u)
		}
		if c.OAuth != nil && c.OAuth.OIDC != nil {
			cfg = c
		}
	}
	cfg.Listen, cfg.PublicURL, cfg.DataDir = listen, w.aBase, w.aDir
	cfg.OAuth.OIDC.Issuer = w.idp.Issuer
	cfg.Upstreams = ups

	// A's own users and machine client.
	ctx := context.Background()
	db, err := sqlite.Open(ctx, datadir.Database(w.aDir))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	addUsers(ctx, t, db, "carol")
	if err := db.CreateClient(ctx, &store.Client{ID: "robot", Kind: store.ClientPreRegistered, Name: "Reporting robot",
		SecretHash: store.Digest(robotSecret), GrantTypes: []string{meta.GrantTypeClientCredentials},
		TokenEndpointAuthMethod: meta.AuthMethodClientSecretBasic, Scope: gateway.ScopeTools, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestCredentialExamples runs the examples of docs/upstream-credentials.md
// together in one gateway A in front of gateway B: a machine client
// reaches B through oauth_client_credentials (A's own identity at B), a
// local user through oauth_user (her consent at B, by URL elicitation),
// and an enterprise user through enterprise (Cross App Access); the
// inventory shows each mode.
func TestCredentialExamples(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	t.Setenv("IDP_SECRET", gwAIdPSecret)
	t.Setenv("B_SECRET", gwABSecret)
	t.Setenv("CRM_CLIENT_SECRET", gwABSecret)
	w := newCrossAppWorld(ctx, t, 0, examplesConfigA)

	hello := func(cs *mcp.ClientSession, tool string) error {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool})
		if err != nil {
			return err
		}
		if res.IsError || res.Content[0].(*mcp.TextContent).Text != "hello from behind B" {
			return errors.New("unexpected result")
		}
		return nil
	}

	// The machine client: client credentials at A; A calls B with its
	// own client credentials.
	tok, err := oauthclient.ClientCredentials(ctx, http.DefaultClient, &oauthclient.Discovery{Resource: w.aBase + "/mcp",
		AuthorizationServer: &meta.AuthorizationServerMetadata{Issuer: w.aBase + "/oauth", TokenEndpoint: w.aBase + "/oauth/token"}},
		&oauthclient.ClientAuth{ClientID: "robot", ClientSecret: robotSecret}, gateway.ScopeTools)
	if err != nil {
		t.Fatal(err)
	}
	robot, err := mcp.NewClient(&mcp.Implementation{Name: "robot", Version: "1"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: w.aBase + "/mcp", HTTPClient: &http.Client{Transport: bearer{tok.AccessToken}}, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer robot.Close()
	if err := hello(robot, "crm_hello"); err != nil {
		t.Errorf("client_credentials example: the machine client's call: %v", err)
	}

	// The local user: signs in to A with her password; her first call of
	// drive is answered with a URL elicitation; she consents at B in the
	// same browser; her call then goes through.
	b := newBrowser("carol", "carol-password")
	recv := newReceiver(t, b)
	tr, err := oauthclient.NewTransport(nil, &oauthclient.Config{ServerURL: w.aBase + "/mcp", RedirectURL: recv.RedirectURL(),
		AuthorizationHandler: recv, SafeHTTP: loopbackSafeHTTP()})
	if err != nil {
		t.Fatal(err)
	}
	carol, err := mcp.NewClient(&mcp.Implementation{Name: "carol", Version: "1"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: w.aBase + "/mcp", HTTPClient: &http.Client{Transport: tr}, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer carol.Close()
	err = hello(carol, "drive_hello")
	els := upstreamauth.Elicitations(err)
	var je *jsonrpc.Error
	if !errors.As(err, &je) || je.Code != jsonrpc.CodeURLElicitationRequired || len(els) != 1 {
		t.Fatalf("oauth_user example: carol's first call: %v, want a URL elicitation", err)
	}
	if err := b.consentUpstream(ctx, els[0].URL); err != nil {
		t.Fatalf("oauth_user example: carol's consent at B: %v", err)
	}
	if err := hello(carol, "drive_hello"); err != nil {
		t.Errorf("oauth_user example: carol's call after her consent: %v", err)
	}

	// The enterprise user: signed in through the IdP, no consent screen.
	alice := w.signIn(ctx, t, "alice")
	if err := hello(alice, "b_hello"); err != nil {
		t.Errorf("enterprise example: alice's call: %v", err)
	}

	// Each mode in the inventory.
	dir := func() string { return w.aDir }
	out := runCommand(t, inventorycmd.Commands(dir), w.aDir, "inventory", "list")
	t.Logf("mcpgate inventory list:\n%s", out)
	for _, want := range [][]string{
		{"crm", "oauth_client_credentials"},
		{"drive", "oauth_user"},
		{"b", "enterprise"},
		{"drive", "carol", "oauth_user"},
		{"b", aliceAt(w, "alice"), "enterprise", w.idp.Issuer},
	} {
		if !credentialLine(out, want...) {
			t.Errorf("mcpgate inventory list has no line with %q", want)
		}
	}
	// And in what `mcpgate inventory show` says of each upstream and of
	// the users who hold their own credentials.
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"upstream", "crm"}, []string{"oauth_client_credentials"}},
		{[]string{"upstream", "drive"}, []string{"oauth_user", "carol"}},
		{[]string{"upstream", "b"}, []string{"enterprise", aliceAt(w, "alice")}},
		{[]string{aliceAt(w, "alice")}, []string{"enterprise", w.idp.Issuer}},
	} {
		out := runCommand(t, inventorycmd.Commands(dir), w.aDir, append([]string{"inventory", "show"}, c.args...)...)
		for _, want := range c.want {
			if !strings.Contains(out, want) {
				t.Errorf("mcpgate inventory show %s does not say %q:\n%s", strings.Join(c.args, " "), want, out)
			}
		}
	}
}

// consentUpstream opens a per-user authorization URL of gateway A in the
// browser signed in there, signs in at the upstream's authorization
// server with the same name and password and approves.
func (b *browser) consentUpstream(ctx context.Context, link string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	if err != nil {
		return err
	}
	resp, page, err := b.do(req)
	if err != nil {
		return err
	}
	if strings.Contains(page, `name="password"`) {
		if resp, page, err = b.postForm(ctx, resp, page, url.Values{"username": {b.user}, "password": {b.password}}); err != nil {
			return err
		}
	}
	if !strings.Contains(page, "Allow access?") {
		return errors.New("no consent page at the upstream: " + resp.Request.URL.Redacted() + ": " + page[:min(len(page), 300)])
	}
	if resp, page, err = b.postForm(ctx, resp, page, url.Values{"action": {"approve"}}); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "You can close this window") {
		return errors.New("after consent: " + resp.Status + ": " + page[:min(len(page), 300)])
	}
	return nil
}
