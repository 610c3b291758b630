package gateway

import (
	"context"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/oauth/authserver"
	"github.com/mcpgate/mcpgate/oauth/resource"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

// The gateway builds none of its stores, servers and controls:
// internal/app does, from the configuration. Tests in this package cannot
// import internal/app (it imports the gateway), so these helpers build the
// few pieces the tests need, the way internal/app does.

// withAuth adds to opts (nil: empty) the built-in authorization and
// resource servers on st for cfg (auth "oauth", public_url set), with the
// gateway's hooks.
func withAuth(t *testing.T, cfg *config.Config, st store.Store, opts *Options) *Options {
	t.Helper()
	o := Options{}
	if opts != nil {
		o = *opts
	}
	if o.Hooks == nil {
		o.Hooks = &Hooks{}
	}
	base := strings.TrimRight(cfg.PublicURL, "/")
	mcpURL := base + "/mcp"
	asOpts := &authserver.Options{
		Resources:        []authserver.Resource{{URI: mcpURL, Scopes: []string{ScopeTools}, DefaultScopes: []string{ScopeTools}}},
		Admit:            o.Hooks.AdmitToken,
		OnClientMetadata: o.Hooks.ClientMetadata,
		OnEvent:          o.Hooks.AuthEvent,
	}
	if oc := cfg.OAuth; oc != nil {
		for _, ti := range oc.TrustedIssuers {
			asOpts.TrustedIssuers = append(asOpts.TrustedIssuers, authserver.TrustedIssuer{Issuer: ti.Issuer, JWKSURL: ti.JWKSURL})
		}
	}
	as, err := authserver.New(context.Background(), base+"/oauth", st, asOpts)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := resource.New(mcpURL, resource.NewJWTVerifier(as.Issuer(), mcpURL, as, &resource.JWTOptions{Revocation: as}),
		&resource.Options{AuthorizationServers: []string{as.Issuer()}, ScopesSupported: []string{ScopeTools}, ResourceName: "mcpgate"})
	if err != nil {
		t.Fatal(err)
	}
	o.Auth = &Auth{Server: as, Resource: rs, Store: st}
	return &o
}

// openDataDir opens the database in dir, closed when the test ends.
func openDataDir(t *testing.T, dir string) *sqlite.Store {
	t.Helper()
	db, err := datadir.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
