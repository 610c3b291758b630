package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

func TestPolicyAttributeWarnings(t *testing.T) {
	ctx := context.Background()
	dataDir, policyDir := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(policyDir, "p.cedar"), []byte(`permit(principal, action, resource);
forbid(principal, action, resource) when { principal.groups.contains("contractors") };
forbid(principal, action, resource) when { principal.roles.contains("intern") };
`), 0o600)
	cfg := &config.Config{Auth: config.AuthOAuth, DataDir: dataDir, Policy: &config.Policy{Paths: []string{policyDir}}}

	// No database, no identity provider: both attributes unprovided.
	ws, err := policyAttributeWarnings(ctx, cfg)
	if err != nil || len(ws) != 2 {
		t.Fatalf("warnings = %q, %v", ws, err)
	}
	// A local user with groups provides groups.
	db, err := sqlite.Open(ctx, datadir.Database(dataDir))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateUser(ctx, &store.User{Username: "u", PasswordHash: "x", Groups: []string{"contractors"}, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	got, err := providedAttributes(ctx, cfg)
	if err != nil || !slices.Equal(got, []string{"groups"}) {
		t.Fatalf("provided = %v, %v", got, err)
	}
	ws, err = policyAttributeWarnings(ctx, cfg)
	if err != nil || len(ws) != 1 || !strings.Contains(ws[0], "principal.roles") {
		t.Fatalf("warnings with a grouped user = %q, %v", ws, err)
	}
	// An enterprise identity provider provides both.
	cfg.OAuth = &config.OAuth{TrustedIssuers: []config.TrustedIssuer{{Issuer: "https://idp.example", JWKSURL: "https://idp.example/jwks"}}}
	if ws, err := policyAttributeWarnings(ctx, cfg); err != nil || len(ws) != 0 {
		t.Fatalf("warnings with an IdP = %q, %v", ws, err)
	}
}
