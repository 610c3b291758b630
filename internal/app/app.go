// Package app is mcpgate's composition root: it builds the gateway and
// everything it uses from a configuration, and closes them again.
//
// New builds, in this order:
//
//  1. the database in the data directory (package datadir owns the
//     layout), if there is a data directory;
//  2. the gateway's hooks (gateway.Hooks), which the controls and the
//     authorization server below are given as their callbacks;
//  3. the audit log on the database, with its JSONL, syslog and
//     OpenTelemetry exporters;
//  4. the policy engine from the policy files, and its watcher, which
//     reloads them and audits each change;
//  5. the rate limiter;
//  6. the inventory and the revoker on the database (the revoker revokes
//     tokens in the identity store);
//  7. the approval service, whose pages authenticate approvers against the
//     local users;
//  8. the built-in authorization and resource servers (auth "oauth"),
//     and the web console on them (console: in the configuration);
//  9. the metrics registry and the tracer provider (observability), and
//     the gateway, given all of the above; it binds the hooks and
//     registers its own revocation hooks and inventory source.
//
// Close closes them in the reverse order.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/approval"
	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/audit/auditotel"
	"github.com/mcpgate/mcpgate/gateway"
	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/internal/pwguard"
	"github.com/mcpgate/mcpgate/internal/telemetry"
	"github.com/mcpgate/mcpgate/inventory"
	"github.com/mcpgate/mcpgate/oauth/authserver"
	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/oauth/resource"
	"github.com/mcpgate/mcpgate/policy"
	"github.com/mcpgate/mcpgate/policy/ratelimit"
	"github.com/mcpgate/mcpgate/store"
)

// Options adjust what New builds. The zero value is the program's
// defaults.
type Options struct {
	// Logger receives the log of every part. Nil discards it.
	Logger *slog.Logger
	// Progress is gateway.Options.Progress: how upstreams come up.
	Progress func(upstream, state string, err error)
	// AuthServer, if set, adjusts the built-in authorization server's
	// options before it is made (auth "oauth").
	AuthServer func(*authserver.Options)
}

// App is a gateway with everything New built for it.
type App struct {
	// Gateway is the gateway; serve its Handler after Start.
	Gateway *gateway.Gateway

	// recheck runs one round of the re-check of clients' trust objects
	// (nil without auth "oauth" and an inventory).
	recheck func(ctx context.Context) (inventory.RecheckResult, error)

	logger  *slog.Logger
	closers []func() error // in the order of building
	reload  reloadState    // what Reload needs (reload.go)
}

// New builds the gateway for cfg and everything it uses (see the package
// documentation for the order). cfg must pass cfg.Validate, which New
// checks. ctx bounds the I/O of building (opening the database, loading
// keys and revocations); the policy watcher and the gateway run until
// Close. If New fails, it closes what it built.
func New(ctx context.Context, cfg *config.Config, opts *Options) (_ *App, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	a := &App{logger: o.Logger}
	if a.logger == nil {
		a.logger = slog.New(slog.DiscardHandler)
	}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	gopts := &gateway.Options{Logger: a.logger, Progress: o.Progress}
	// One guard bounds every password check: the sign-in form and the
	// approval pages.
	lim := cfg.Limits()
	guard := pwguard.New(&pwguard.Options{MaxConcurrent: lim.MaxPasswordHashes, Queue: lim.PasswordQueue,
		Failures: lim.PasswordFailures, Window: lim.PasswordFailureWindow, AddressFailures: lim.PasswordAddressFailures})

	// 1. The database.
	// SQLite in the data directory, or PostgreSQL (database_url).
	var db datadir.DB
	var feed *changeFeed // nil unless the database pushes changes
	if cfg.DataDir != "" || cfg.DatabaseURL != "" {
		if db, err = datadir.OpenDB(ctx, cfg.DataDir, cfg.DatabaseURL); err != nil {
			return nil, fmt.Errorf("opening the database: %w", err)
		}
		a.onClose(db.Close)
		gopts.Tasks = db
		gopts.Sessions = db
		// A database that announces changes is shared by replicas
		// (PostgreSQL): they continue each other's sessions, and hear of
		// each other's changes (changes.go) from the start.
		if w, ok := db.(changeWatcher); ok {
			if feed, err = a.watchChanges(ctx, w); err != nil {
				return nil, fmt.Errorf("listening for changes in the database: %w", err)
			}
			gopts.SharedSessions = true
		}
		gopts.UpstreamStates = db
		gopts.ReadyCheck = db.CheckWritable
	}

	// 2. The gateway's hooks, for the controls that call it back.
	hooks := &gateway.Hooks{}
	gopts.Hooks = hooks

	// 3. The audit log.
	if db != nil && (cfg.Audit == nil || !cfg.Audit.Disabled) {
		if gopts.Audit, err = a.auditLog(ctx, cfg, db); err != nil {
			return nil, err
		}
		a.onClose(gopts.Audit.Close)
	}

	// 4. Policies, reloaded when their files change.
	if p := cfg.Policy; p != nil {
		eng, err := policy.NewEngine(&policy.Options{Paths: p.Paths, DenyByDefault: p.DenyByDefault, Logger: a.logger})
		if err != nil {
			return nil, fmt.Errorf("policies: %w", err)
		}
		gopts.Policy = eng
		a.watchPolicies(ctx, eng, p.Paths, gopts.Audit)
	}

	// 5. Rate limits.
	if p := cfg.Policy; p != nil && p.Limits != "" {
		lc, err := ratelimit.LoadConfig(p.Limits)
		if err != nil {
			return nil, fmt.Errorf("rate limits: %w", err)
		}
		if gopts.Limiter, err = ratelimit.NewLimiter(lc, nil); err != nil {
			return nil, fmt.Errorf("rate limits: %w", err)
		}
	}

	// 6. Inventory and revocation.
	if db != nil {
		inv := cfg.Inventory
		if inv == nil {
			inv = &config.Inventory{}
		}
		gopts.Inventory, err = inventory.New(db, db, &inventory.Options{
			BlockChangedTools:   inv.BlockChangedTools,
			BlockChangedClients: inv.BlockChangedClients,
			HoldNewTools:        inv.NewTools == config.NewToolsApprove,
			OnEvent:             hooks.InventoryEvent,
		})
		if err != nil {
			return nil, fmt.Errorf("inventory: %w", err)
		}
		gopts.Revoker, err = inventory.NewRevoker(ctx, db, &inventory.RevokerOptions{
			Hooks: inventory.RevocationHooks{
				RevokeTokens: inventory.StoreTokenRevoker(db, time.Now),
				DistrustIdP:  distrustIdP,
			},
			OnEvent: hooks.InventoryEvent,
			// The gateway applies revocations recorded while it was
			// stopped before it serves, and marks what it applied.
			MarkApplied: true,
			// Revocations made by the command line reach the running
			// gateway (sessions closed, tasks cancelled) well within a
			// second: pushed (the poll is then a fallback), else polled.
			RefreshInterval: revocationPoll(feed),
		})
		if err != nil {
			return nil, fmt.Errorf("revocation: %w", err)
		}
	}

	// 7. Approvals.
	if ac := cfg.Approvals; ac != nil {
		if db == nil {
			return nil, errors.New("approvals need a data directory")
		}
		gopts.Approvals = approval.New(db, &approval.Options{
			TTL:          ac.TTL,
			BaseURL:      baseURL(cfg) + "/approvals",
			Authenticate: localApprover(db, ac.Approvers, guard),
			OnDecision:   hooks.ApprovalDecided,
			Audit:        gopts.Audit,
			Logger:       a.logger,
		})
	}

	// 8. The built-in authorization server; per-user upstream tokens.
	if cfg.Auth == config.AuthOAuth {
		if db == nil {
			return nil, errors.New("auth oauth needs a data directory for its database")
		}
		if gopts.Auth, err = a.authServers(ctx, cfg, db, hooks, guard, o.AuthServer); err != nil {
			return nil, err
		}
		if gopts.Inventory != nil {
			a.recheckClients(ctx, cfg.Inventory, gopts.Inventory, gopts.Auth.Server)
		}
		// The identity store keeps the sealed per-user upstream tokens:
		// with auth "oauth" they belong to signed-in users.
		gopts.UpstreamTokens = db
	}
	if gopts.Approvals != nil && gopts.Auth != nil {
		// Approvers may also sign in from a browser, with the sign-in of
		// the authorization server (local password or OIDC).
		approvers := cfg.Approvals.Approvers
		if err := gopts.Approvals.SetBrowserSignIn(approval.SignInOptions{
			SignIn: gopts.Auth.Server, TicketParam: authserver.SignInTicketParam,
			MayApprove: func(who string) bool { return slices.Contains(approvers, who) },
			SignOutURL: urlPath(gopts.Auth.Server.Issuer()) + "/logout",
		}); err != nil {
			return nil, err
		}
	}
	// The web console (console.go), beside the gateway's endpoints.
	if err := a.console(cfg, db, gopts); err != nil {
		return nil, err
	}
	if cfg.DataDir != "" {
		gopts.UpstreamTokenKey = datadir.UpstreamTokenKey(cfg.DataDir)
		gopts.TaskResultKey = filepath.Join(cfg.DataDir, gateway.TaskResultKeyFile)
	}

	// 9. Metrics and traces (docs/observability.md), then the gateway.
	if err := a.observability(ctx, cfg.Observability, gopts); err != nil {
		return nil, err
	}
	if a.Gateway, err = gateway.New(cfg, gopts); err != nil {
		return nil, err
	}
	a.onClose(a.Gateway.Close)
	if feed != nil {
		feed.setTargets(gopts.Revoker, a.Gateway)
		a.onClose(feed.stop) // closers run in reverse: before the gateway's Close
	}
	a.reload.cfg, a.reload.policy, a.reload.audit = cfg, gopts.Policy, gopts.Audit
	return a, nil
}

// revocationRefresh is how often the gateway looks for revocations made by
// another process (the command line, another replica) when the store does
// not push them.
const revocationRefresh = 250 * time.Millisecond

// revocationPoll is the revoker's refresh interval: pushFallbackPoll when
// feed pushes the changes, else revocationRefresh.
func revocationPoll(feed *changeFeed) time.Duration {
	if feed != nil {
		return pushFallbackPoll
	}
	return revocationRefresh
}

// distrustIdP is the revoker's DistrustIdP: the authorization server asks
// the revoker (through the gateway's AdmitToken hook) at sign-in, consent
// and every token request, and the revoker counts a distrusted provider's
// federated subjects as revoked, so there is nothing else to switch off.
func distrustIdP(ctx context.Context, issuer string) error {
	inventory.Note(ctx, "sign-ins, consents, ID-JAG assertions and tokens of users %s vouched for are refused from now on", issuer)
	return nil
}

// RecheckClients runs one round of the re-check of clients' trust objects
// now, as the schedule (inventory.recheck_interval) does: the metadata
// documents and jwks_uri key sets of the clients seen recently are
// fetched again and recorded in the inventory, which flags (or blocks)
// what changed. Without auth "oauth" it does nothing.
func (a *App) RecheckClients(ctx context.Context) (inventory.RecheckResult, error) {
	if a.recheck == nil {
		return inventory.RecheckResult{}, nil
	}
	return a.recheck(ctx)
}

// recheckClients sets up the re-check of clients' trust objects and runs
// it on its schedule until Close.
func (a *App) recheckClients(ctx context.Context, ic *config.Inventory, inv *inventory.Inventory, as *authserver.Server) {
	if ic == nil {
		ic = &config.Inventory{}
	}
	ro := &inventory.RecheckOptions{SeenWithin: ic.RecheckSeenWithin, MaxClients: ic.RecheckMaxClients, Timeout: ic.RecheckTimeout}
	a.recheck = func(ctx context.Context) (inventory.RecheckResult, error) {
		return inv.RecheckClients(ctx, as.RecheckClient, ro)
	}
	if ic.RecheckInterval < 0 {
		return
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		inv.RunRecheck(runCtx, ic.RecheckInterval, as.RecheckClient, ro, func(res inventory.RecheckResult, err error) {
			if err != nil {
				a.logger.Warn("re-checking clients' metadata documents and keys", "error", err)
				return
			}
			a.logger.Info("clients' metadata documents and keys re-checked", "checked", res.Checked, "failed", res.Failed, "skipped", res.Skipped, "errors", errors.Join(res.Errors...))
		})
	}()
	a.onClose(func() error { stop(); <-done; return nil })
}

// Close closes the gateway and then everything New built for it, in the
// reverse order of building. It returns every error met.
func (a *App) Close() error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	a.closers = nil
	return errors.Join(errs...)
}

// onClose adds fn to what Close runs.
func (a *App) onClose(fn func() error) { a.closers = append(a.closers, fn) }

// auditLog opens the audit log on db, signing checkpoints with the key in
// the data directory, with the exporters cfg asks for.
func (a *App) auditLog(ctx context.Context, cfg *config.Config, db datadir.DB) (*audit.Log, error) {
	ao := &audit.Options{KeyPath: datadir.AuditKey(cfg.DataDir), Logger: a.logger}
	closeAll := func() {
		for _, e := range ao.Exporters {
			e.Close()
		}
	}
	if ac := cfg.Audit; ac != nil {
		ao.KeepPayloads, ao.FailOpen = ac.KeepPayloads, ac.FailOpen
		// The checkpoint signing key may live outside the data directory
		// (a key file or a signing command), and every checkpoint may also
		// go to an append-only file (docs/audit.md, "Evidence outside the
		// database").
		ao.SigningKeyFile, ao.SigningCommand, ao.PublicKeyFile = ac.SigningKeyFile, ac.SigningCommand, ac.PublicKeyFile
		ao.SigningTimeout, ao.CheckpointFile = ac.SigningTimeout, ac.CheckpointFile
		ao.Sync, ao.GroupWindow = audit.SyncPolicy(ac.Sync), ac.GroupWindow
		if ac.JSONL != "" {
			e, err := audit.NewJSONLExporter(ac.JSONL)
			if err != nil {
				return nil, fmt.Errorf("audit export: %w", err)
			}
			ao.Exporters = append(ao.Exporters, e)
		}
		if s := ac.Syslog; s != nil {
			tag := s.Tag
			if tag == "" {
				tag = "mcpgate"
			}
			e, err := audit.NewSyslogExporter(s.Network, s.Address, tag)
			if err != nil {
				closeAll()
				return nil, fmt.Errorf("audit syslog: %w", err)
			}
			ao.Exporters = append(ao.Exporters, e)
		}
		if ac.OTLPEndpoint != "" {
			e, err := auditotel.New(ctx, &auditotel.Options{Endpoint: ac.OTLPEndpoint, ServiceName: "mcpgate"})
			if err != nil {
				closeAll()
				return nil, fmt.Errorf("audit OpenTelemetry export: %w", err)
			}
			ao.Exporters = append(ao.Exporters, e)
		}
	}
	l, err := audit.New(db, ao)
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return l, nil
}

// watchPolicies reloads the policies when their files change, until
// Close, and records each change in the audit log (if any) with the
// version now in force.
func (a *App) watchPolicies(ctx context.Context, eng *policy.Engine, paths []string, log *audit.Log) {
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.onClose(func() error { cancel(); return nil })
	eng.Watch(wctx, func(version string, err error) {
		// The record names the watcher as its client.
		rec := &audit.Record{Action: "policy.changed", Client: "policy-file-watcher", Target: strings.Join(paths, ","), PolicyVersion: version, Outcome: audit.OutcomeOK}
		if err != nil {
			a.logger.Error("policy files changed but do not load; the previous policies stay in force", "version", version, "error", err)
			rec.Outcome, rec.Error = audit.OutcomeError, "policy files changed but do not load; the previous policies stay in force: "+err.Error()
		} else {
			a.logger.Info("policies reloaded", "version", version)
		}
		if log != nil {
			if err := log.Append(wctx, rec); err != nil {
				a.logger.Error("auditing a policy change", "error", err)
			}
		}
	})
}

// authServers builds the built-in authorization server on st, at
// <public URL>/oauth, and the resource server that accepts its tokens for
// <public URL>/mcp. The authorization server's hooks are the gateway's.
func (a *App) authServers(ctx context.Context, cfg *config.Config, st store.Store, hooks *gateway.Hooks, guard *pwguard.Guard, adjust func(*authserver.Options)) (*gateway.Auth, error) {
	base := baseURL(cfg)
	mcpURL := base + "/mcp"
	asOpts := &authserver.Options{
		Resources:        []authserver.Resource{{URI: mcpURL, Scopes: []string{gateway.ScopeTools}, DefaultScopes: []string{gateway.ScopeTools}}},
		Logger:           a.logger,
		Admit:            hooks.AdmitToken,
		OnClientMetadata: hooks.ClientMetadata,
		OnClientKeys:     hooks.ClientKeys,
		OnEvent:          hooks.AuthEvent,
		PasswordGuard:    guard,
	}
	if cfg.Approvals != nil {
		// The approval pages send browsers to <issuer>/signin.
		asOpts.SignInReturns = []string{urlPath(base) + "/approvals/"}
	}
	if cfg.Console != nil {
		// So does the console.
		asOpts.SignInReturns = append(asOpts.SignInReturns, urlPath(base)+"/console/")
	}
	if oc := cfg.OAuth; oc != nil {
		for _, ti := range oc.TrustedIssuers {
			asOpts.TrustedIssuers = append(asOpts.TrustedIssuers, authserver.TrustedIssuer{Issuer: ti.Issuer, JWKSURL: ti.JWKSURL})
		}
		if l := oc.OIDC; l != nil {
			secret, err := config.ReadSecret(l.ClientSecretEnv, l.ClientSecretFile)
			if err != nil {
				return nil, fmt.Errorf("oauth.oidc client secret: %w", err)
			}
			asOpts.OIDC = &authserver.OIDCLogin{Issuer: l.Issuer, ClientID: l.ClientID, ClientSecret: secret, DisplayName: l.DisplayName,
				OnSignIn: hooks.OIDCSignIn}
		}
		clientAdmission(oc, asOpts)
	}
	if adjust != nil {
		adjust(asOpts)
	}
	as, err := authserver.New(ctx, base+"/oauth", st, asOpts)
	if err != nil {
		return nil, fmt.Errorf("authorization server: %w", err)
	}
	// Expired records and unused dynamic registrations are collected until
	// Close.
	sweepCtx, stopSweep := context.WithCancel(context.WithoutCancel(ctx))
	swept := make(chan struct{})
	go func() { defer close(swept); as.RunSweeper(sweepCtx, 10*time.Minute) }()
	a.onClose(func() error { stopSweep(); <-swept; return nil })
	rs, err := resource.New(mcpURL, a.tokenVerifier(ctx, st, resource.NewJWTVerifier(as.Issuer(), mcpURL, as, &resource.JWTOptions{Revocation: as})),
		&resource.Options{AuthorizationServers: []string{as.Issuer()}, ScopesSupported: []string{gateway.ScopeTools}, ResourceName: "mcpgate", Logger: a.logger})
	if err != nil {
		return nil, fmt.Errorf("resource server: %w", err)
	}
	return &gateway.Auth{Server: as, Resource: rs, Store: st}, nil
}

// revocationFeed is a store that tells a token cache about revocations
// (sqlite.Store, postgres.Store).
type revocationFeed interface {
	OnTokenRevoked(func())
	TokenRevocationVersion(context.Context) (int64, error)
}

// revocationPusher is a store that pushes the revocation version when it
// changes, whoever revoked (postgres.Store: LISTEN/NOTIFY).
type revocationPusher interface {
	WatchTokenRevocations(ctx context.Context) (<-chan int64, error)
}

// tokenVerifier puts a cache of verified tokens in front of v when st can
// report revocations: those made in this process empty it at once, those
// made by other processes (mcpgate revoke, other replicas) when st pushes
// them (revocationPusher), and in any case within one poll of the
// revocation version (resource.DefaultRevocationPoll), until Close.
func (a *App) tokenVerifier(ctx context.Context, st store.Store, v resource.TokenVerifier) resource.TokenVerifier {
	feed, ok := st.(revocationFeed)
	if !ok {
		return v
	}
	cache := resource.NewCachingVerifier(v, &resource.CacheOptions{Logger: a.logger})
	feed.OnTokenRevoked(cache.Invalidate)
	watchCtx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	// Pushed revocations empty the cache at once; the version is then
	// still polled, but at pushFallbackPoll.
	poll := time.Duration(0) // resource.DefaultRevocationPoll
	pushed := make(chan struct{})
	if p, ok := st.(revocationPusher); ok {
		ch, err := p.WatchTokenRevocations(watchCtx)
		if err != nil {
			a.logger.Warn("token revocations are not pushed; the token cache polls for them", "error", err)
			close(pushed)
		} else {
			poll = pushFallbackPoll
			go func() {
				defer close(pushed)
				for range ch {
					cache.Invalidate()
				}
			}()
		}
	} else {
		close(pushed)
	}
	watched := make(chan struct{})
	go func() { defer close(watched); cache.Watch(watchCtx, feed.TokenRevocationVersion, poll) }()
	a.onClose(func() error { stopWatch(); <-watched; <-pushed; return nil })
	return cache
}

// baseURL is the gateway's external URL: public_url, or else the listen
// address over http.
func baseURL(cfg *config.Config) string {
	if cfg.PublicURL != "" {
		return strings.TrimRight(cfg.PublicURL, "/")
	}
	return "http://" + cfg.Listen
}

// urlPath returns the path of u without a trailing slash.
func urlPath(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return strings.TrimRight(p.Path, "/")
}

// localApprover authenticates approvers on the approval pages with HTTP
// Basic authentication against the local users in st, allowing only the
// configured approvers. Every check passes guard: a throttled user name
// or address gets 429, too many checks at once 503.
func localApprover(st store.Store, approvers []string, guard *pwguard.Guard) func(r *http.Request) (string, error) {
	return func(r *http.Request) (string, error) {
		name, password, ok := r.BasicAuth()
		if !ok {
			return "", errNoApprover
		}
		addr, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			addr = r.RemoteAddr
		}
		good, err := guard.Check(r.Context(), name, addr, func() (bool, error) {
			if !slices.Contains(approvers, name) {
				return false, nil
			}
			u, err := st.GetUser(r.Context(), name)
			if err != nil {
				return false, nil
			}
			good, err := authserver.VerifyPassword(password, u.PasswordHash)
			return good && err == nil, nil
		})
		if err != nil {
			return "", err
		}
		if !good {
			return "", errNoApprover
		}
		return name, nil
	}
}

// errNoApprover is the error of a request that does not authenticate an
// approver.
var errNoApprover = errors.New("not signed in as an approver")

// clientAdmission passes oauth.clients and oauth.introspection_clients to
// the authorization server: which registration path admits which clients
// and grant types, the bounds on dynamic registration, and who may
// introspect tokens.
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

// observability sets up the gateway's metrics registry and tracer
// provider from the configuration's observability section. The tracer
// provider is shut down (its last spans flushed) at Close.
func (a *App) observability(ctx context.Context, oc *config.Observability, gopts *gateway.Options) error {
	if oc.MetricsOn() {
		gopts.Metrics = gateway.NewMetricsRegistry()
		gopts.MetricsOnHandler = oc == nil || oc.MetricsListen == ""
	}
	if oc == nil || oc.OTLPTracesEndpoint == "" {
		return nil
	}
	tp, err := telemetry.NewTracerProvider(ctx, oc.OTLPTracesEndpoint, gateway.Version, oc.SampleRatio())
	if err != nil {
		return fmt.Errorf("observability: %w", err)
	}
	a.onClose(func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return tp.Shutdown(sctx)
	})
	gopts.TracerProvider = tp
	return nil
}
