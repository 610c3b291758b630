package app_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/app"
	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/oauth/meta"
)

func testConfig(t *testing.T) *config.Config {
	return &config.Config{
		Listen: "127.0.0.1:1", Auth: config.AuthNone, DataDir: t.TempDir(),
		Upstreams: []config.Upstream{{Name: "up", URL: "http://127.0.0.1:1/mcp"}},
	}
}

// TestBuildFromDataDir: with a data directory, New opens the database and
// builds the audit log, the inventory and the revoker on it, and Close
// closes them.
func TestBuildFromDataDir(t *testing.T) {
	cfg := testConfig(t)
	a, err := app.New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{datadir.Database(cfg.DataDir), datadir.AuditKey(cfg.DataDir)} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if a.Gateway.Inventory() == nil || a.Gateway.Revoker() == nil {
		t.Error("no inventory or revoker")
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestInvalidConfig: New requires a configuration that passes Validate.
func TestInvalidConfig(t *testing.T) {
	cfg := testConfig(t)
	cfg.Upstreams = append(cfg.Upstreams, cfg.Upstreams[0])
	_, err := app.New(context.Background(), cfg, nil)
	var ve *config.ValidationError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), "used twice") {
		t.Fatalf("err = %v, want a validation error naming the duplicate", err)
	}
	if _, err := os.Stat(datadir.Database(cfg.DataDir)); err == nil {
		t.Error("a database was made for an invalid configuration")
	}
}

// TestTrustedIssuers: trusted identity providers in the configuration
// reach the built-in authorization server, which then advertises the
// ID-JAG grant profile.
func TestTrustedIssuers(t *testing.T) {
	cfg := testConfig(t)
	cfg.Auth, cfg.PublicURL = config.AuthOAuth, "http://127.0.0.1:1"
	cfg.OAuth = &config.OAuth{TrustedIssuers: []config.TrustedIssuer{{Issuer: "https://idp.example.com", JWKSURL: "https://idp.example.com/keys"}}}
	a, err := app.New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	srv := httptest.NewServer(a.Gateway.Handler())
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
}

// TestOAuthNeedsDataDir: the built-in authorization server keeps its
// identities in the database.
func TestOAuthNeedsDataDir(t *testing.T) {
	cfg := testConfig(t)
	cfg.Auth, cfg.DataDir = config.AuthOAuth, ""
	if _, err := app.New(context.Background(), cfg, nil); err == nil || !strings.Contains(err.Error(), "data directory") {
		t.Fatalf("err = %v", err)
	}
}
