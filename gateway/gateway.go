package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgate/mcpgate/internal/h1"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/goccy/go-yaml"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpgate/mcpgate/approval"
	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/gateway/upstreamauth"
	"github.com/mcpgate/mcpgate/internal/jsonraw"
	"github.com/mcpgate/mcpgate/inventory"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/policy"
	"github.com/mcpgate/mcpgate/policy/ratelimit"
	"github.com/mcpgate/mcpgate/store"
)

// Version is the gateway's version, sent as its implementation version.
const Version = "0.1.0"

// AnonymousPrincipal is the principal of callers when authentication is
// off.
const AnonymousPrincipal = "anonymous"

// Options configure a Gateway.
type Options struct {
	// Logger receives the gateway's log. Nil discards it.
	Logger *slog.Logger
	// Progress, if set, is told how upstreams come up: state is
	// "connecting", "still connecting (<time since the attempt began>)"
	// (every 30 seconds of an attempt), "ready", "failed", "lost",
	// "circuit open", or "per-user" for an upstream whose sessions open
	// only with each user's consent.
	Progress func(upstream, state string, err error)
	// ReadyCheck, if set, is part of readiness (/readyz): the wiring
	// checks that the database is writable. Nil means nothing to check.
	ReadyCheck func(ctx context.Context) error
	// Principal names the caller of a request from its context (set by
	// authentication middleware). Nil means every caller is
	// AnonymousPrincipal.
	Principal func(ctx context.Context) string
	// HTTPClient is the base client for remote upstreams. Nil means a
	// default client.
	HTTPClient *http.Client
	// PageSize is the number of items per page of merged lists. Zero
	// means 1000.
	PageSize int
	// StreamableHTTP configures the downstream Streamable HTTP endpoint.
	StreamableHTTP *mcp.StreamableHTTPOptions
	// Tasks keeps the records of tasks clients start through the gateway.
	// Nil means memory: tasks do not survive a restart.
	Tasks store.GatewayTasks
	// MaxTaskTTL, if positive, caps the ttl of tasks clients start
	// through the gateway (and sets it when they ask for none). Zero means
	// the configuration's max_task_ttl.
	MaxTaskTTL time.Duration

	// Auth is the built-in authorization server and the resource server
	// that protects the MCP endpoints. It is required when the
	// configuration's auth is "oauth", and must be nil otherwise.
	Auth *Auth
	// Hooks, if set, is bound to the gateway: the controls above that call
	// the gateway back were given its methods (see Hooks).
	Hooks *Hooks

	// Policy decides every list item, call, read and relayed request. Nil
	// allows everything.
	Policy *policy.Engine
	// Audit records every action. Nil records nothing.
	Audit *audit.Log
	// Approvals handles calls that policy lets through only with a human
	// approval. Nil refuses such calls.
	Approvals *approval.Service
	// Limiter applies rate limits per user, client and tool. Nil means no
	// limits.
	Limiter *ratelimit.Limiter
	// Inventory records clients and tool definitions and flags changes;
	// Revoker revokes users, clients, grants and identity providers. New
	// shows the inventory the gateway's sessions and tasks, registers the
	// gateway's revocation hooks with the revoker and runs it until Close.
	// Nil means none.
	Inventory *inventory.Inventory
	Revoker   *inventory.Revoker

	// Sessions keeps a record of every client session (see
	// store.GatewaySession), for the inventory: written when a session
	// opens and ends, and its last-seen time at most once a minute; ended
	// ones are pruned after SessionRetention (0: 7 days). Nil keeps none.
	Sessions         store.GatewaySessions
	SessionRetention time.Duration
	// SharedSessions reports that other gateway processes (replicas)
	// share Sessions: any of them may continue a Streamable HTTP session
	// another opened (replicas.go). A record is then ended when its
	// session is (DELETE, revocation), not when a replica stops or forgets
	// it, and at start and every hour only the records unused for
	// SharedSessionIdle (0: DefaultSharedSessionIdle) are ended, never
	// those other replicas serve. The store should announce ended sessions
	// to the replicas, which then call DropSession.
	SharedSessions    bool
	SharedSessionIdle time.Duration

	// UpstreamStates, if set, receives the state of every upstream
	// (UpstreamStates) each time one changes, and "stopped" at Close, so
	// that the inventory, run in another process, shows them. Nil keeps
	// none.
	UpstreamStates store.UpstreamStates

	// UpstreamTokens keeps the sealed per-user upstream tokens ("oauth_user"
	// credentials). Nil means memory, until the process ends.
	UpstreamTokens store.UpstreamTokenStore
	// UpstreamTokenKey is the file of the key that seals them (created on
	// first use). "" means a key that ends with the process.
	UpstreamTokenKey string
	// TaskResultKey is the file of the key that seals the stored results
	// of tasks (created on first use; see TaskResultKeyFile). "" means a
	// key that ends with the process.
	TaskResultKey string

	// Metrics, if set, receives the gateway's Prometheus metrics
	// (metrics.go; NewMetricsRegistry makes one), and MetricsHandler
	// serves them. MetricsOnHandler also serves them at /metrics of
	// Handler, to loopback callers only. Nil means no metrics.
	Metrics          *prometheus.Registry
	MetricsOnHandler bool
	// TracerProvider, if set, traces every client request (tracing.go).
	// Nil means no traces.
	TracerProvider trace.TracerProvider

	// Console, if set, is the web console (package console), mounted at
	// /console/ beside the MCP endpoints and never on their path.
	Console http.Handler
}

// Gateway fronts the configured upstream servers.
type Gateway struct {
	cfg    config.Config
	opts   Options
	logger *slog.Logger

	// ups is the upstream set in force; a reload replaces it
	// (reload.go). Read it with upstreamList and upstreamNamed.
	ups       atomic.Pointer[upstreamSet]
	server    *mcp.Server
	auth      *Auth // nil unless auth is "oauth"
	taskStore store.GatewayTasks
	// streamable is the Streamable HTTP handler Handler built (for the
	// open-streams gauge).
	streamable atomic.Pointer[mcp.StreamableHTTPHandler]
	// upstreamClient is the default HTTP client for remote upstreams: its
	// connection pool is sized for many concurrent calls to one upstream
	// (http.DefaultTransport keeps only two idle connections per host, so
	// concurrent calls would keep dialing).
	upstreamClient *http.Client
	// upAuth holds OAuth upstream credentials (package upstreamauth;
	// upstream_oauth.go connects it).
	upAuth *upstreamauth.Service
	// metrics and tracer are nil when off (metrics.go, tracing.go).
	metrics *metrics
	tracer  trace.Tracer
	// perUserAuth is set when upAuth was built for per-user ("oauth_user")
	// upstreams; a reload cannot add the first one (reload.go).
	perUserAuth bool

	done      chan struct{}
	closeOnce sync.Once
	// life ends with Close (stop); it bounds the supervisors' attempts.
	life context.Context
	stop context.CancelFunc

	// limits is the configuration's server section with its defaults.
	limits config.Server
	// inflight bounds the MCP requests processed at once (overload.go).
	inflight *inflight
	// started is when Start ran; until startupUntil, first requests wait
	// for upstreams still on their first attempt (health.go).
	started, startupUntil time.Time
	supervisors           sync.WaitGroup
	startupDone           chan struct{} // closed when WaitStartup returns
	// progressEvery is the interval of "still connecting" reports.
	progressEvery time.Duration

	nextToken atomic.Int64

	sessions  *sessionRegistry // the clients' sessions
	progress  progressRoutes   // gateway progress token -> call
	creations *taskCreations   // task-augmented calls in flight
	// taskProfiles maps a gateway task id to the capability profile of
	// the upstream session the task was created in, while the watcher
	// follows the task (its record keeps the profile too).
	taskProfiles sync.Map
	// taskStatusMu serializes noteStatus: the task watcher, a client's
	// request, a revocation and an operator's cancel may all learn of one
	// task's end at once, each holding its own copy of the record.
	taskStatusMu sync.Mutex
	// cancelReasons maps a gateway task id to the status message its
	// cancellation is recorded with when the gateway itself asked the
	// upstream to cancel it (a revocation), whichever path then reports
	// the cancelled status first.
	cancelReasons sync.Map
	// watcher follows tasks to their end (taskwatch.go).
	watcher taskWatcher
	// taskGov holds task policy reservations and held tasks
	// (taskpolicy.go, taskapproval.go).
	taskGov taskGovernance
	// results seals stored task results; storedResultMax, if positive,
	// replaces maxStoredTaskResult (tests) (taskresult.go).
	results         resultSealer
	storedResultMax int64

	mu         sync.Mutex // guards catalogs, catalogGen, building and collisions
	catalogs   map[string]*catalog
	catalogGen uint64                   // counts changes of the upstream set (reload.go)
	building   map[string]chan struct{} // principal -> closed when its build ends
	collisions map[string]bool

	// parking holds modern clients' calls waiting for input (modern_mrtr.go).
	parking parking
	// collectors fetch the input requests of modern owners' tasks
	// (modern_tasks.go).
	collectors taskCollectors
	// listeners are modern clients' subscriptions/listen streams
	// (modern_listen.go).
	listeners listeners

	trust       trustState  // tool trust (trust.go)
	clientTasks clientTasks // tasks clients run for upstream sessions (clienttasks.go)

	revokerOnce sync.Once  // applyRevocations
	reloadMu    sync.Mutex // one reload at a time (reload.go); Close waits for it
	// statesDirty asks the state writer (health.go) to write the
	// upstream states; statesDone closes when the writer has ended.
	statesDirty chan struct{}
	statesDone  chan struct{}
}

// downstreamSession is a client's session with the gateway.
type downstreamSession struct {
	ss        *mcp.ServerSession
	principal string
	clientID  string // the OAuth client of the token, when auth is on
	client    string // the client's own name for itself (clientInfo.name)
	// tokenID is the jti of the token the session was opened with, and
	// grant its grant (token family, or the jti of a token without one),
	// when auth is on: revoking the grant closes exactly its sessions.
	tokenID, grant string
	// registration is how the token's client registered ("cimd",
	// "dynamic", "pre-registered"), when auth is on; scopes are the
	// token's scopes.
	registration string
	scopes       []string
	identity     policyIdentity // what the token's source says about the user
	clientMeta   map[string]any // the client's registered metadata
	sourceAddr   string         // the IP address the session was initialized from
	transport    string         // store.TransportStreamable, TransportSSE or TransportStdio
	created      time.Time
	subs         map[string]bool // subscribed resource URIs
	// recordID is the id of its record in Options.Sessions ("" when not
	// recorded), and seenWritten the last-seen time last written there
	// (Unix nanoseconds).
	recordID    string
	seenWritten atomic.Int64
	// modern marks the record of one 2026-07-28 request (modern.go): no
	// session, kept only while the request is served.
	modern bool
	// clientInit is the client's initialize params as JSON, kept in the
	// record; adopted reports a session another replica opened, whose
	// record exists (replicas.go).
	clientInit string
	adopted    bool
}

// id returns the session's id ("" for a request an upstream made with no
// client session concerned).
func (ds *downstreamSession) id() string {
	if ds.ss == nil {
		return ""
	}
	return ds.ss.ID()
}

// callInfo rides in the context of every call the gateway makes upstream
// on behalf of a downstream request, so that what the upstream sends back
// about that call reaches the right client.
type callInfo struct {
	ds            *mcp.ServerSession
	ctx           context.Context // the downstream request's context
	progressToken jsontext.Value  // the client's own token, if it asked for progress
}

type callInfoKey struct{}

// New returns a gateway for cfg, which must have passed cfg.Validate. It
// uses the stores, servers and controls that opts gives it and builds none
// of its own (internal/app builds them from the configuration); New does
// no I/O and does not contact upstreams (Start does). Close stops what New
// started; what opts gave stays the caller's to close.
func New(cfg *config.Config, opts *Options) (*Gateway, error) {
	g := &Gateway{
		cfg:        *cfg,
		done:       make(chan struct{}),
		sessions:   newSessionRegistry(),
		creations:  newTaskCreations(),
		catalogs:   make(map[string]*catalog),
		collisions: make(map[string]bool),
		limits:     cfg.Limits(),
		inflight:   newInflight(cfg.Limits().MaxInflight, cfg.Limits().MaxInflightPerPrincipal),

		startupDone: make(chan struct{}),

		progressEvery: 30 * time.Second,
	}
	g.life, g.stop = context.WithCancel(context.Background())
	if opts != nil {
		g.opts = *opts
	}
	g.logger = g.opts.Logger
	if g.logger == nil {
		g.logger = slog.New(slog.DiscardHandler)
	}
	if g.opts.PageSize <= 0 {
		g.opts.PageSize = 1000
	}
	if g.opts.MaxTaskTTL == 0 {
		g.opts.MaxTaskTTL = cfg.MaxTaskTTL
	}
	switch oauth := cfg.Auth == config.AuthOAuth; {
	case oauth && g.opts.Auth == nil:
		return nil, errors.New("gateway: auth oauth needs the authorization server (Options.Auth)")
	case !oauth && g.opts.Auth != nil:
		return nil, fmt.Errorf("gateway: Options.Auth given, but auth is %q", cfg.Auth)
	}
	g.auth = g.opts.Auth
	if g.auth != nil && g.opts.Principal == nil {
		g.opts.Principal = tokenPrincipal
	}
	g.taskStore = g.opts.Tasks
	if g.taskStore == nil {
		g.taskStore = store.NewMemoryGatewayTasks()
	}
	g.results.keyPath = g.opts.TaskResultKey
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 1024
	tr.MaxIdleConnsPerHost = 256
	// Plain-http upstreams are served by h1, which does each exchange on
	// the calling goroutine (no hand-offs to per-connection goroutines);
	// https and proxied upstreams go through tr.
	g.upstreamClient = &http.Client{Transport: &h1.Transport{Fallback: tr, MaxIdlePerHost: tr.MaxIdleConnsPerHost}}
	if tp := g.opts.TracerProvider; tp != nil {
		g.tracer = tp.Tracer(instrumentationName, trace.WithInstrumentationVersion(Version))
		g.upstreamClient = withTraceTransport(g.upstreamClient)
		if g.opts.HTTPClient != nil {
			g.opts.HTTPClient = withTraceTransport(g.opts.HTTPClient)
		}
	}
	var err error
	if g.metrics, err = newMetrics(g, g.opts.Metrics); err != nil {
		return nil, fmt.Errorf("gateway: registering metrics: %w", err)
	}
	set := &upstreamSet{byName: make(map[string]*upstream)}
	for _, uc := range cfg.Upstreams {
		u := newUpstream(g, uc)
		set.list = append(set.list, u)
		set.byName[uc.Name] = u
	}
	g.ups.Store(set)
	g.upAuth = g.newUpstreamAuth()
	g.server = mcp.NewServer(&mcp.Implementation{Name: "mcpgate", Title: "mcpgate MCP gateway", Version: Version}, &mcp.ServerOptions{
		Logger:              g.logger,
		Handler:             g.handle,
		NotificationHandler: g.handleNotification,
		CapabilitiesFunc:    g.capabilities,
		// Modern (2026-07-28) requests pass the same admission stage
		// (modern.go).
		HandlerServesModern: true,
		CacheHints:          modernCacheHints,
		ToolInputSchema:     g.toolInputSchema,
	})
	g.connectInventory()
	if g.opts.SharedSessions && g.opts.Sessions != nil {
		g.sessions.share(g.opts.SharedSessionIdle)
	}
	if g.opts.Hooks != nil {
		g.opts.Hooks.bind(g)
	}
	return g, nil
}

// Server returns the MCP server clients talk to; serve it on any transport.
func (g *Gateway) Server() *mcp.Server { return g.server }

// Handler returns the HTTP handler of the gateway: Streamable HTTP at /mcp
// and the legacy HTTP+SSE transport at /sse (with the configuration's
// bounds on sessions), the probes /healthz and /readyz (never behind
// authentication); with auth "oauth", also the
// authorization server under /oauth and the metadata documents, and both
// MCP endpoints require a bearer token issued for /mcp. With
// Options.Console, the web console is under /console/ (its own sign-in).
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	sopts := mcp.StreamableHTTPOptions{Logger: g.logger}
	if g.opts.StreamableHTTP != nil {
		sopts = *g.opts.StreamableHTTP
	}
	// The configuration's bounds on sessions, unless the options set
	// their own.
	if sopts.MaxSessions == 0 {
		sopts.MaxSessions = g.limits.MaxSessions
	}
	if sopts.MaxSessionsPerPrincipal == 0 {
		sopts.MaxSessionsPerPrincipal = g.limits.MaxSessionsPerPrincipal
	}
	if sopts.MaxSessionsPerAddress == 0 {
		sopts.MaxSessionsPerAddress = g.limits.MaxSessionsPerAddress
	}
	if sopts.MaxStreamsPerSession == 0 {
		sopts.MaxStreamsPerSession = g.limits.MaxStreamsPerSession
	}
	if sopts.MaxStreamsPerPrincipal == 0 {
		sopts.MaxStreamsPerPrincipal = g.limits.MaxStreamsPerPrincipal
	}
	if sopts.MaxStreamsPerAddress == 0 {
		sopts.MaxStreamsPerAddress = g.limits.MaxStreamsPerAddress
	}
	if sopts.SessionPrincipal == nil && g.opts.Principal != nil {
		sopts.SessionPrincipal = func(r *http.Request) string { return g.opts.Principal(r.Context()) }
	}
	if g.sessions.shared {
		sopts.AdoptSession = g.adoptSession
		sopts.SessionDeleted = g.sessionDeleted
	}
	getServer := func(*http.Request) *mcp.Server { return g.server }
	// Both transports bind a session to the principal that opened it: a
	// request by anyone else gets the answer of an unknown session.
	legacyOpts := &mcp.SSEOptions{Logger: g.logger, SessionPrincipal: sopts.SessionPrincipal,
		MaxSessions: g.limits.MaxLegacySessions, MaxSessionsPerPrincipal: g.limits.MaxSessionsPerPrincipal, MaxSessionsPerAddress: g.limits.MaxSessionsPerAddress}
	// The bounds on requests in progress apply inside authentication,
	// where the principal is known.
	sh := mcp.NewStreamableHTTPHandler(getServer, &sopts)
	g.streamable.Store(sh)
	var streamable, legacy http.Handler = g.shedding(sh), g.shedding(mcp.NewSSEHandler(getServer, legacyOpts))
	if g.auth != nil {
		streamable = g.auth.protect(mux, streamable)
		legacy = g.auth.Resource.Middleware(legacy)
	}
	// Probes for load balancers and orchestrators, outside authentication.
	mux.HandleFunc("/healthz", g.serveHealthz)
	mux.HandleFunc("/readyz", g.serveReadyz)
	if g.opts.MetricsOnHandler && g.opts.Metrics != nil {
		mux.Handle("/metrics", loopbackOnly(g.MetricsHandler()))
	}
	if g.tracer != nil {
		streamable, legacy = extractTrace(streamable), extractTrace(legacy)
	}
	mux.Handle("/mcp", withTransport(store.TransportStreamable, streamable))
	mux.Handle("/sse", withTransport(store.TransportSSE, legacy))
	if g.opts.Approvals != nil {
		pages := http.StripPrefix("/approvals", g.opts.Approvals.Handler())
		mux.Handle("/approvals/", pages)
		mux.Handle("/approvals", http.RedirectHandler("/approvals/", http.StatusMovedPermanently))
	}
	if g.opts.Console != nil {
		mux.Handle("/console/", http.StripPrefix("/console", g.opts.Console))
		mux.Handle("/console", http.RedirectHandler("/console/", http.StatusMovedPermanently))
	}
	g.upAuth.Mount(mux)
	return mux
}

// Start applies the revocations recorded while no gateway ran, then
// brings the upstreams up in the background and returns: each upstream's
// start-up session (on behalf of the default principal)
// is connected, retried with back-off and jitter until it is ready, and
// reconnected when it is lost, until Close; progress goes to
// Options.Progress and the log. An upstream joins the catalogue when it
// becomes ready, and clients are then sent list_changed notifications.
// During the first startup_wait, clients' first requests (initialize,
// lists) wait for upstreams still on their first attempt. Start never
// fails because upstreams cannot be reached: /readyz says so. Call Start
// once.
func (g *Gateway) Start(ctx context.Context) error {
	g.auditConfig(ctx)
	g.started = time.Now()
	if g.limits.StartupWait > 0 {
		g.startupUntil = g.started.Add(g.limits.StartupWait)
	} else {
		g.startupUntil = g.started // no wait, but Start ran
	}
	// Revocations recorded while no gateway ran are applied (and
	// audited) before the gateway serves.
	g.applyRevocations(ctx)
	g.sessions.start(ctx, g.done)
	g.recordUpstreams(ctx)
	// Tasks that ran when the gateway stopped get their upstream sessions
	// back (taskresume.go): set up before the upstreams connect.
	g.resumeTasks(ctx)
	// So do tasks it held for an approval (taskheld.go).
	g.resumeHeld(ctx)
	// Cancel requests of `mcpgate tasks cancel` (taskpolicy.go).
	g.supervisors.Add(1)
	go func() {
		defer g.supervisors.Done()
		g.pollCancelRequests()
	}()
	// Idle upstream sessions end (upstreamreap.go).
	g.supervisors.Add(1)
	go func() {
		defer g.supervisors.Done()
		g.reapLoop()
	}()
	g.startStateWriter()
	for _, u := range g.upstreamList() {
		g.startUpstream(u)
	}
	// Once the first attempts are over, build the default principal's
	// catalogue, as a first listing: name collisions are found, and the
	// inventory records the tools the upstreams start with.
	g.supervisors.Add(1)
	go func() {
		defer g.supervisors.Done()
		defer close(g.startupDone)
		g.awaitStartup(g.life)
		ctx, cancel := context.WithTimeout(g.life, time.Minute)
		defer cancel()
		if _, err := g.catalog(ctx, AnonymousPrincipal); err != nil {
			g.logger.Warn("building the catalogue", "error", err)
		}
	}()
	return nil
}

// WaitStartup waits until every upstream has had its first connection
// attempt (or startup_wait has passed since Start) and the first
// catalogue has been built, or ctx ends. Upstreams that are not ready by
// then keep connecting in the background.
func (g *Gateway) WaitStartup(ctx context.Context) {
	select {
	case <-g.startupDone:
	case <-ctx.Done():
	}
}

// auditConfig records the configuration the gateway starts with, as a
// digest of its YAML form (secrets are only named in the configuration,
// and the record holds just the digest), so that a change of configuration
// between runs shows in the audit log.
func (g *Gateway) auditConfig(ctx context.Context) {
	if g.opts.Audit == nil {
		return
	}
	raw, err := yaml.Marshal(g.cfg)
	if err != nil {
		g.logger.Warn("auditing the configuration", "error", err)
		return
	}
	sum := sha256.Sum256(raw)
	version := ""
	if g.opts.Policy != nil {
		version = g.opts.Policy.Version()
	}
	_ = g.auditAppend(ctx, &audit.Record{Action: "config.loaded", Target: "sha256:" + hex.EncodeToString(sum[:]), PolicyVersion: version, Outcome: audit.OutcomeOK})
}

// Collisions returns the name collisions found so far, as messages.
func (g *Gateway) Collisions() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]string, 0, len(g.collisions))
	for c := range g.collisions {
		out = append(out, c)
	}
	return out
}

// Close ends every upstream session and stops the gateway.
func (g *Gateway) Close() error {
	g.closeOnce.Do(func() {
		close(g.done)
		// A reload under way finishes first; later ones do nothing.
		g.reloadMu.Lock()
		g.reloadMu.Unlock()
		g.sessions.endAll()
		g.stop()
		g.supervisors.Wait()
		g.stopStateWriter()
		g.closeWatcher()
		for _, ss := range g.server.Sessions() {
			ss.Close()
		}
		for _, u := range g.upstreamList() {
			u.mu.Lock()
			sessions := make([]*upstreamSession, 0, len(u.sessions))
			for _, us := range u.sessions {
				sessions = append(sessions, us)
			}
			u.mu.Unlock()
			for _, us := range sessions {
				if g.holdsTasks(us) {
					us.detach() // its tasks are taken back at the next start
				} else {
					us.close()
				}
			}
		}
		g.upstreamClient.CloseIdleConnections()
	})
	return nil
}

func (g *Gateway) reportUpstreamState(name, state string, err error) {
	g.statesChanged()
	level := slog.LevelInfo
	if err != nil {
		level = slog.LevelWarn
	}
	if g.opts.Progress != nil {
		g.opts.Progress(name, state, err)
		level = slog.LevelDebug // the callback shows it already
	}
	if err != nil {
		g.logger.Log(context.Background(), level, "upstream "+state, "upstream", name, "error", err)
	} else {
		g.logger.Log(context.Background(), level, "upstream "+state, "upstream", name)
	}
}

// capabilities registers a new downstream session and answers its
// initialize with what the upstreams offer.
func (g *Gateway) capabilities(ctx context.Context, ss *mcp.ServerSession, params *mcp.InitializeParams) mcp.ServerCapabilities {
	g.awaitStartup(ctx) // the upstreams' capabilities, when they come within startup_wait
	if mcp.RequestMetaFromContext(ctx) != nil {
		return g.modernCapabilities() // server/discover: no session to register
	}
	principal := AnonymousPrincipal
	if g.opts.Principal != nil {
		if p := g.opts.Principal(ctx); p != "" {
			principal = p
		}
	}
	ds := &downstreamSession{ss: ss, principal: principal, clientID: tokenClientID(ctx), client: params.ClientInfo.Name, created: time.Now().UTC()}
	ds.clientInit = clientInit(params)
	ds.adopted = mcp.SessionAdopted(ctx)
	ds.scopes = tokenScopes(ctx)
	ds.identity = tokenIdentity(ctx)
	ds.sourceAddr = sourceAddr(ctx)
	ds.transport = downstreamTransport(ctx)
	ds.tokenID, ds.grant = g.tokenGrant(ctx)
	if g.auth != nil && ds.clientID != "" {
		if c, err := g.auth.Store.GetClient(ctx, ds.clientID); err == nil {
			ds.registration = c.Kind
			if c.Metadata != "" {
				var m map[string]any
				if json.Unmarshal([]byte(c.Metadata), &m) == nil {
					ds.clientMeta = m
				}
			}
		}
	}
	g.sessions.add(ds)
	return g.mergedCapabilities()
}

// mergedCapabilities are what the upstreams offer, as the gateway offers
// them to clients.
func (g *Gateway) mergedCapabilities() mcp.ServerCapabilities {
	caps := mcp.ServerCapabilities{
		Tools:   &mcp.ToolCapabilities{ListChanged: true},
		Logging: &mcp.LoggingCapabilities{},
	}
	for _, u := range g.upstreamList() {
		uc := u.capabilities()
		if uc == nil {
			continue
		}
		if uc.Resources != nil {
			if caps.Resources == nil {
				caps.Resources = &mcp.ResourceCapabilities{ListChanged: true}
			}
			caps.Resources.Subscribe = caps.Resources.Subscribe || uc.Resources.Subscribe
		}
		if uc.Prompts != nil {
			caps.Prompts = &mcp.PromptCapabilities{ListChanged: true}
		}
		if uc.Completions != nil {
			caps.Completions = &mcp.CompletionCapabilities{}
		}
		if uc.Tasks != nil {
			caps.Tasks = &mcp.ServerTasksCapabilities{
				List:     &mcp.TasksListCapabilities{},
				Cancel:   &mcp.TasksCancelCapabilities{},
				Requests: &mcp.ServerTaskRequestsCapabilities{Tools: &mcp.ToolsTaskCapabilities{Call: &mcp.TaskRequestCapability{}}},
			}
		}
	}
	return caps
}

// principalOf returns the principal a downstream session belongs to.
func (g *Gateway) principalOf(ss *mcp.ServerSession) string {
	return g.downstream(ss).principal
}

// downstream returns what the gateway knows of a downstream session.
func (g *Gateway) downstream(ss *mcp.ServerSession) *downstreamSession {
	if ds := g.sessions.get(ss); ds != nil {
		return ds
	}
	return &downstreamSession{ss: ss, principal: AnonymousPrincipal}
}

// call sends a request upstream on behalf of downstream session ss,
// rewriting the progress token so that progress finds its way back.
func (g *Gateway) call(ctx context.Context, ss *mcp.ServerSession, cs *mcp.ClientSession, u *upstream, method string, params jsontext.Value) (jsontext.Value, error) {
	ci := &callInfo{ds: ss, ctx: ctx}
	if tok, ok, _ := jsonraw.GetPath(params, "_meta", "progressToken"); ok && tok != nil {
		ci.progressToken = tok
		gtok := "mcpgate-" + strconv.FormatInt(g.nextToken.Add(1), 36)
		var err error
		if params, err = jsonraw.SetPath(params, jsontext.Value(strconv.Quote(gtok)), "_meta", "progressToken"); err != nil {
			return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: %v", err)
		}
		g.progress.add(gtok, ci)
		defer g.progress.remove(gtok)
	}
	cctx := context.WithValue(ctx, callInfoKey{}, ci)
	// When the upstream closes the call's stream to have us poll, close the
	// client's stream too, so that it resumes from the gateway in turn.
	cctx = mcp.WithStreamResumeHook(cctx, func() { mcp.CloseRequestStream(ctx) })
	if d := u.cfg.PollAfter; d > 0 {
		t := time.AfterFunc(d, func() { mcp.CloseRequestStream(ctx) })
		defer t.Stop()
	}
	cctx, params, done := g.upstreamCall(cctx, u.cfg.Name, method, params)
	res, err := cs.CallRaw(cctx, method, params)
	done(err)
	if err != nil {
		return nil, upstreamError(u, err)
	}
	return res, nil
}

// upstreamError turns a failure to reach an upstream into a JSON-RPC error
// for the client; errors the upstream itself returned pass unchanged.
func upstreamError(u *upstream, err error) error {
	var we *jsonrpc.Error
	if errors.As(err, &we) {
		return we
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: fmt.Sprintf("upstream %s failed: %v", u.cfg.Name, err)}
}

// newID returns a random identifier for gateway task ids.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
