package gateway

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/oauth/authserver"
	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/oauth/resource"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

// ScopeTools is the scope the built-in authorization server offers for
// using the gateway's MCP endpoint.
const ScopeTools = "mcp:tools"

// DatabaseFile is the database's file name in the data directory.
const DatabaseFile = sqlite.DefaultFile

// authState is the built-in authorization server and the resource server
// that protects /mcp, when auth is "oauth".
type authState struct {
	store store.Store
	as    *authserver.Server
	rs    *resource.Resource
}

// setupStores opens the database in the data directory, if there is one,
// and chooses the task store.
func (g *Gateway) setupStores(ctx context.Context) error {
	if g.cfg.DataDir != "" && (g.opts.Tasks == nil || (g.opts.Store == nil && g.cfg.Auth == "oauth")) {
		if err := os.MkdirAll(g.cfg.DataDir, 0o700); err != nil {
			return fmt.Errorf("gateway: data directory: %w", err)
		}
		db, err := sqlite.Open(ctx, filepath.Join(g.cfg.DataDir, DatabaseFile))
		if err != nil {
			return fmt.Errorf("gateway: opening the database: %w", err)
		}
		g.db = db
	}
	switch {
	case g.opts.Tasks != nil:
		g.taskStore = g.opts.Tasks
	case g.db != nil:
		g.taskStore = g.db
	default:
		g.taskStore = store.NewMemoryGatewayTasks()
	}
	return nil
}

func (g *Gateway) closeStores() {
	if g.db != nil {
		g.db.Close()
	}
}

// setupAuth builds the authorization and resource servers for auth
// "oauth". Tokens are issued by the gateway itself at <public URL>/oauth
// and must be bound to <public URL>/mcp.
func (g *Gateway) setupAuth(ctx context.Context) error {
	switch g.cfg.Auth {
	case "", "none":
		return nil
	case "oauth":
	default:
		return fmt.Errorf("gateway: unknown auth mode %q (want none or oauth)", g.cfg.Auth)
	}
	base := strings.TrimRight(g.cfg.PublicURL, "/")
	if base == "" {
		if g.cfg.Listen == "" {
			return fmt.Errorf("gateway: auth oauth needs public_url or listen")
		}
		base = "http://" + g.cfg.Listen
	}
	st := g.opts.Store
	if st == nil {
		if g.db == nil {
			return fmt.Errorf("gateway: auth oauth needs a data directory for its database")
		}
		st = g.db
	}
	mcpURL := base + "/mcp"
	asOpts := &authserver.Options{
		Resources:        []authserver.Resource{{URI: mcpURL, Scopes: []string{ScopeTools}, DefaultScopes: []string{ScopeTools}}},
		Logger:           g.logger,
		Admit:            g.admit,
		OnClientMetadata: g.clientMetadata,
		OnEvent:          g.authEvent,
	}
	if o := g.cfg.OAuth; o != nil {
		for _, ti := range o.TrustedIssuers {
			asOpts.TrustedIssuers = append(asOpts.TrustedIssuers, authserver.TrustedIssuer{Issuer: ti.Issuer, JWKSURL: ti.JWKSURL})
		}
		if l := o.OIDC; l != nil {
			secret, err := secretValue(l.ClientSecretEnv, l.ClientSecretFile)
			if err != nil {
				return fmt.Errorf("gateway: oauth.oidc client secret: %w", err)
			}
			asOpts.OIDC = &authserver.OIDCLogin{Issuer: l.Issuer, ClientID: l.ClientID, ClientSecret: secret, DisplayName: l.DisplayName}
		}
		clientAdmission(o, asOpts)
	}
	if g.opts.AuthServer != nil {
		g.opts.AuthServer(asOpts)
	}
	as, err := authserver.New(ctx, base+"/oauth", st, asOpts)
	if err != nil {
		return fmt.Errorf("gateway: authorization server: %w", err)
	}
	rs, err := resource.New(mcpURL,
		resource.NewJWTVerifier(as.Issuer(), mcpURL, as, &resource.JWTOptions{Revocation: as}),
		&resource.Options{AuthorizationServers: []string{as.Issuer()}, ScopesSupported: []string{ScopeTools}, ResourceName: "mcpgate", Logger: g.logger})
	if err != nil {
		return fmt.Errorf("gateway: resource server: %w", err)
	}
	g.auth = &authState{store: st, as: as, rs: rs}
	// Expired records and unused dynamic registrations are collected
	// until the gateway closes.
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	go func() { <-g.done; stopSweep() }()
	go as.RunSweeper(sweepCtx, 10*time.Minute)
	if g.opts.Principal == nil {
		g.opts.Principal = tokenPrincipal
	}
	return nil
}

// clientAdmission passes oauth.clients and oauth.introspection_clients
// to the authorization server.
func clientAdmission(o *config.OAuth, opts *authserver.Options) {
	opts.IntrospectionClients = o.IntrospectionClients
	c := o.Clients
	if c == nil {
		return
	}
	policy := func(p *config.ClientPath) authserver.AdmissionPolicy {
		return authserver.AdmissionPolicy{Mode: p.Mode, Allow: p.Allow, GrantTypes: config.NormalizeGrantTypes(p.GrantTypes)}
	}
	if c.CIMD != nil {
		opts.MetadataDocuments.Admission = policy(c.CIMD)
	}
	if c.PreRegistered != nil {
		opts.PreRegistered = policy(c.PreRegistered)
	}
	if d := c.Dynamic; d != nil {
		r := &opts.Registration
		r.Admission = policy(d.Path())
		// Machine grants allowed explicitly may use private_key_jwt.
		r.AllowConfidential = slices.ContainsFunc(r.Admission.GrantTypes, func(g string) bool {
			return g == meta.GrantTypeClientCredentials || g == meta.GrantTypeJWTBearer
		})
		if d.RateLimit != nil {
			r.RateLimit = authserver.RateLimit{PerMinute: d.RateLimit.PerMinute, Burst: d.RateLimit.Burst}
		}
		r.MaxClients, r.MaxMetadataBytes, r.UnusedClientTTL = d.MaxClients, d.MaxMetadataBytes, d.UnusedTTL
	}
}

// tokenPrincipal names the caller by the subject of its verified token.
func tokenPrincipal(ctx context.Context) string {
	if p, ok := resource.PrincipalFromContext(ctx); ok && p.Subject != "" {
		return p.Subject
	}
	return ""
}

// authEvent records what the authorization server did in the audit log.
func (g *Gateway) authEvent(ctx context.Context, e authserver.Event) {
	r := &audit.Record{Action: e.Kind, Client: e.ClientID, User: e.Subject, Target: e.ClientID, Outcome: "ok", Error: e.Detail}
	if e.Kind == "token.refused" {
		r.Outcome, r.Decision = "refused", "deny"
		if e.Error != "" {
			r.Error = e.Error + ": " + e.Detail
		}
	}
	if err := g.auditAppend(ctx, r); err != nil {
		g.logger.Error("auditing an authorization event", "kind", e.Kind, "error", err)
	}
}

// tokenScopes are the scopes of the caller's verified token, if any.
func tokenScopes(ctx context.Context) []string {
	if p, ok := resource.PrincipalFromContext(ctx); ok {
		return p.Scopes
	}
	return nil
}

// tokenClientID is the OAuth client of the caller's verified token, if any.
func tokenClientID(ctx context.Context) string {
	if p, ok := resource.PrincipalFromContext(ctx); ok {
		return p.ClientID
	}
	return ""
}

// mountAuth adds the OAuth endpoints to mux and returns h protected by the
// resource server.
func (a *authState) protect(mux *http.ServeMux, h http.Handler) http.Handler {
	a.as.Mount(mux)
	a.rs.Mount(mux)
	return a.rs.Middleware(h)
}
