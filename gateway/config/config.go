// Package config defines mcpgate's configuration: the YAML file given with
// --config, the mcpServers / servers JSON files of other MCP clients given
// with --servers, and their validation.
package config

import "time"

// Config is the whole configuration of a gateway.
type Config struct {
	// Listen is the address to serve on. Default 127.0.0.1:8080.
	Listen string `yaml:"listen" json:"listen,omitempty"`
	// DataDir holds the gateway's state (the SQLite database, keys).
	// Default: the user's data directory, e.g. ~/.local/share/mcpgate.
	DataDir string `yaml:"data_dir" json:"data_dir,omitempty"`
	// DatabaseURL, when set, keeps the gateway's state in this PostgreSQL
	// database (postgres://… or postgresql://…) instead of the SQLite
	// database in DataDir, so that several replicas share it (keys stay in
	// DataDir). Also MCPGATE_DATABASE_URL and --database-url (flag over
	// environment over file). Default: none (SQLite).
	DatabaseURL string `yaml:"database_url" json:"database_url,omitempty"`
	// Auth selects how callers authenticate: "none" or "oauth".
	Auth string `yaml:"auth" json:"auth,omitempty"`
	// PublicURL is the externally visible base URL of the gateway (issuer
	// and resource identifiers derive from it). Default: http://<listen>.
	PublicURL string `yaml:"public_url" json:"public_url,omitempty"`
	// Upstreams are the MCP servers the gateway fronts.
	Upstreams []Upstream `yaml:"upstreams" json:"upstreams,omitempty"`
	// Policy configures the policies that decide every list and call.
	// Absent means every request is allowed.
	Policy *Policy `yaml:"policy" json:"policy,omitempty"`
	// Audit configures the audit log. Absent means it is on, in the data
	// directory, with digests only.
	Audit *Audit `yaml:"audit" json:"audit,omitempty"`
	// Approvals configures who may approve calls that policies mark as
	// needing approval.
	Approvals *Approvals `yaml:"approvals" json:"approvals,omitempty"`
	// OAuth configures the built-in authorization server (auth "oauth"):
	// enterprise identity providers.
	OAuth *OAuth `yaml:"oauth" json:"oauth,omitempty"`
	// Inventory configures the identity inventory's change detection.
	Inventory *Inventory `yaml:"inventory" json:"inventory,omitempty"`
	// MaxTaskTTL caps how long tasks clients start through the gateway are
	// kept (zero: no cap).
	MaxTaskTTL time.Duration `yaml:"max_task_ttl" json:"max_task_ttl,omitempty"`
	// Server bounds what clients and upstreams can make the gateway spend
	// and says when it is ready. Absent means the defaults (see Limits).
	Server *Server `yaml:"server" json:"server,omitempty"`
	// Observability configures metrics and traces (observability.go).
	Observability *Observability `yaml:"observability" json:"observability,omitempty"`
	// Console configures the web console at /console/ (console.go).
	// Absent means no console.
	Console *Console `yaml:"console" json:"console,omitempty"`
}

// Server configures the gateway's start-up, readiness and bounds. A zero
// value means the default given with each field; a negative count or
// duration turns that bound off where the field says so, and is refused
// elsewhere.
type Server struct {
	// StartupWait is how long, after start, a client's first requests
	// (initialize, lists) wait for upstreams still on their first
	// connection attempt (default 10s; negative: no wait).
	StartupWait time.Duration `yaml:"startup_wait" json:"startup_wait,omitempty"`
	// ReadyUpstreams is how many upstreams must be ready for /readyz to
	// answer 200 (default 1 when there are upstreams that connect at
	// start; negative: none).
	ReadyUpstreams int `yaml:"ready_upstreams" json:"ready_upstreams,omitempty"`
	// ReadHeaderTimeout bounds reading a request's headers (default 10s).
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout" json:"read_header_timeout,omitempty"`
	// ReadBodyTimeout bounds reading a request's body (default 30s).
	ReadBodyTimeout time.Duration `yaml:"read_body_timeout" json:"read_body_timeout,omitempty"`
	// IdleTimeout closes keep-alive connections idle this long (default
	// 2m).
	IdleTimeout time.Duration `yaml:"idle_timeout" json:"idle_timeout,omitempty"`
	// MaxSessions bounds the Streamable HTTP sessions of all clients
	// (default 10000).
	MaxSessions int `yaml:"max_sessions" json:"max_sessions,omitempty"`
	// MaxSessionsPerPrincipal bounds the sessions (Streamable HTTP and
	// legacy SSE, each) of one principal (default 64; negative: no bound).
	MaxSessionsPerPrincipal int `yaml:"max_sessions_per_principal" json:"max_sessions_per_principal,omitempty"`
	// MaxSessionsPerAddress bounds the sessions (each transport) opened
	// from one source IP address (default 1000; negative: no bound).
	// Behind a reverse proxy every client has the proxy's address.
	MaxSessionsPerAddress int `yaml:"max_sessions_per_address" json:"max_sessions_per_address,omitempty"`
	// MaxLegacySessions bounds the legacy HTTP+SSE sessions (/sse) of all
	// clients (default 1000).
	MaxLegacySessions int `yaml:"max_legacy_sessions" json:"max_legacy_sessions,omitempty"`
	// MaxPasswordHashes bounds the password checks (argon2id, 64 MiB each)
	// running at once (default 2 × GOMAXPROCS); PasswordQueue is how many
	// more may wait for a turn (default 8) before sign-ins get 503.
	MaxPasswordHashes int `yaml:"max_password_hashes" json:"max_password_hashes,omitempty"`
	PasswordQueue     int `yaml:"password_queue" json:"password_queue,omitempty"`
	// PasswordFailures is how many failed password checks one user name
	// may have within PasswordFailureWindow before further checks for it
	// get 429 (default 5 within 15 minutes); PasswordAddressFailures how
	// many one source address may have within a minute (default 20).
	PasswordFailures        int           `yaml:"password_failures" json:"password_failures,omitempty"`
	PasswordFailureWindow   time.Duration `yaml:"password_failure_window" json:"password_failure_window,omitempty"`
	PasswordAddressFailures int           `yaml:"password_address_failures" json:"password_address_failures,omitempty"`
	// UpstreamCircuitFailures is how many consecutive failures (failed
	// connects, or sessions that end within a minute) open an upstream's
	// circuit (default 5); UpstreamCircuitOpen is how long it then stays
	// open before one more attempt (default 1m).
	UpstreamCircuitFailures int           `yaml:"upstream_circuit_failures" json:"upstream_circuit_failures,omitempty"`
	UpstreamCircuitOpen     time.Duration `yaml:"upstream_circuit_open" json:"upstream_circuit_open,omitempty"`
	// MaxInflight bounds the MCP requests (POST /mcp, POST /sse message)
	// being processed at once, of all callers (default 512; negative: no
	// bound); MaxInflightPerPrincipal those of one principal (default 64;
	// negative: no bound). Requests beyond are refused at once (HTTP 503,
	// or 429 for one principal's, with Retry-After) rather than queued.
	// The probes /healthz and /readyz are never counted. A reload applies
	// new values.
	MaxInflight             int `yaml:"max_inflight" json:"max_inflight,omitempty"`
	MaxInflightPerPrincipal int `yaml:"max_inflight_per_principal" json:"max_inflight_per_principal,omitempty"`
	// UpstreamNotificationRate bounds the progress, log message and
	// resource update notifications one upstream may send per second,
	// with bursts of twice as many (default 1000; negative: no bound).
	// The excess is dropped, counted and logged.
	UpstreamNotificationRate int `yaml:"upstream_notification_rate" json:"upstream_notification_rate,omitempty"`
	// MaxStreamsPerSession, MaxStreamsPerPrincipal and
	// MaxStreamsPerAddress bound the streams open at once on /mcp (GET
	// streams, and POST requests being answered) of one session (default
	// 32), one principal (default 256) and one source address (default
	// 1024); negative: no bound. One beyond gets 429 with Retry-After.
	MaxStreamsPerSession   int `yaml:"max_streams_per_session" json:"max_streams_per_session,omitempty"`
	MaxStreamsPerPrincipal int `yaml:"max_streams_per_principal" json:"max_streams_per_principal,omitempty"`
	MaxStreamsPerAddress   int `yaml:"max_streams_per_address" json:"max_streams_per_address,omitempty"`
	// DebugListen, when set, is a loopback address (127.0.0.1:6060) where
	// `mcpgate serve` serves the Go runtime's profiles (net/http/pprof
	// under /debug/pprof/) for diagnosis and benchmarks. Off by default.
	DebugListen string `yaml:"debug_listen" json:"debug_listen,omitempty"`
	// UpstreamSessionIdle is how long an upstream session (one per
	// principal and client capability profile) may stay unused while its
	// principal has no session with the gateway and it holds no watched
	// task, before the gateway ends it (default 10m; negative: never).
	// MaxUpstreamSessions bounds the sessions one upstream holds (default
	// 1000), MaxStdioSessions those of one stdio upstream, each a process
	// (default 32); negative: no bound. At the bound the least recently
	// used session that could be ended is ended; if none can, the request
	// fails with a clear error.
	UpstreamSessionIdle time.Duration `yaml:"upstream_session_idle" json:"upstream_session_idle,omitempty"`
	MaxUpstreamSessions int           `yaml:"max_upstream_sessions" json:"max_upstream_sessions,omitempty"`
	MaxStdioSessions    int           `yaml:"max_stdio_sessions" json:"max_stdio_sessions,omitempty"`
}

// Policy configures policy evaluation.
type Policy struct {
	// Paths are Cedar policy files or directories of them (*.cedar),
	// reloaded when they change.
	Paths []string `yaml:"paths" json:"paths,omitempty"`
	// DenyByDefault denies everything while no policy is loaded.
	DenyByDefault bool `yaml:"deny_by_default" json:"deny_by_default,omitempty"`
	// Limits is a rate-limits file (per user, client and tool), see
	// docs/policy.md.
	Limits string `yaml:"limits" json:"limits,omitempty"`
}

// Audit configures the audit log.
type Audit struct {
	// Disabled turns the audit log off.
	Disabled bool `yaml:"disabled" json:"disabled,omitempty"`
	// KeepPayloads keeps arguments and results in records, not only their
	// digests.
	KeepPayloads bool `yaml:"keep_payloads" json:"keep_payloads,omitempty"`
	// FailOpen lets calls through when the audit store cannot record them
	// (by default they are refused).
	FailOpen bool `yaml:"fail_open" json:"fail_open,omitempty"`
	// JSONL, if set, is a file every record is also appended to.
	JSONL string `yaml:"jsonl" json:"jsonl,omitempty"`
	// Syslog, if set, also sends every record to a syslog server.
	Syslog *Syslog `yaml:"syslog" json:"syslog,omitempty"`
	// OTLPEndpoint, if set, also exports every record as an OpenTelemetry
	// log over OTLP/HTTP to this URL (e.g. http://collector:4318).
	OTLPEndpoint string `yaml:"otlp_endpoint" json:"otlp_endpoint,omitempty"`
	// SigningKeyFile is the checkpoint signing key (Ed25519, PEM PKCS #8)
	// kept outside the data directory; it must exist. Default: the key in
	// the data directory, generated on first use.
	SigningKeyFile string `yaml:"signing_key_file" json:"signing_key_file,omitempty"`
	// SigningCommand signs checkpoints by running a command (argv, no
	// shell): checkpoint message on stdin, signature on stdout (see
	// docs/audit.md). Needs PublicKeyFile.
	SigningCommand []string `yaml:"signing_command" json:"signing_command,omitempty"`
	// PublicKeyFile is the checkpoint verification key (PEM PUBLIC KEY):
	// signatures are checked with it before checkpoints are stored, and
	// "mcpgate audit verify" uses it.
	PublicKeyFile string `yaml:"public_key_file" json:"public_key_file,omitempty"`
	// SigningTimeout bounds one signing (default 10s).
	SigningTimeout time.Duration `yaml:"signing_timeout" json:"signing_timeout,omitempty"`
	// CheckpointFile, if set, is a file every signed checkpoint is
	// appended to (one JSON line each, fsync'd), to ship elsewhere.
	CheckpointFile string `yaml:"checkpoint_file" json:"checkpoint_file,omitempty"`
	// Sync is how often written records are synced to disk: "always"
	// (before each call is forwarded), "group" (default: at most once per
	// GroupWindow) or "os" (the operating system's schedule). Every policy
	// survives the gateway being killed; they differ on power loss (see
	// docs/audit.md).
	Sync string `yaml:"sync" json:"sync,omitempty"`
	// GroupWindow is, with sync "group", the longest a written record
	// waits for its sync (default 5ms).
	GroupWindow time.Duration `yaml:"group_window" json:"group_window,omitempty"`
}

// Syslog names a syslog server.
type Syslog struct {
	// Network is "udp", "tcp" or "unix"; Address the server's address.
	Network string `yaml:"network" json:"network"`
	Address string `yaml:"address" json:"address"`
	// Tag is the syslog tag (default "mcpgate").
	Tag string `yaml:"tag" json:"tag,omitempty"`
}

// OAuth configures the built-in authorization server.
type OAuth struct {
	// TrustedIssuers are enterprise identity providers whose ID-JAGs
	// (identity assertion authorization grants) the server accepts with the
	// jwt-bearer grant.
	TrustedIssuers []TrustedIssuer `yaml:"trusted_issuers" json:"trusted_issuers,omitempty"`
	// OIDC, if set, lets users sign in through an enterprise OpenID Connect
	// provider.
	OIDC *OIDCLogin `yaml:"oidc" json:"oidc,omitempty"`
	// Clients decides, per registration path, which OAuth clients are
	// admitted and which grant types they may obtain. Absent means the
	// safe defaults (see ClientPath).
	Clients *Clients `yaml:"clients" json:"clients,omitempty"`
	// IntrospectionClients are the client ids of the resource servers
	// allowed to use the token introspection endpoint (RFC 7662); every
	// other client is refused.
	IntrospectionClients []string `yaml:"introspection_clients" json:"introspection_clients,omitempty"`
}

// Clients configures client admission per registration path.
type Clients struct {
	// CIMD is clients identified by the URL of a Client ID Metadata
	// Document. Default: open, authorization_code and refresh_token.
	CIMD *ClientPath `yaml:"cimd" json:"cimd,omitempty"`
	// Dynamic is clients registered through RFC 7591 dynamic
	// registration. Default: open, authorization_code and refresh_token,
	// rate limited and bounded.
	Dynamic *DynamicClients `yaml:"dynamic" json:"dynamic,omitempty"`
	// PreRegistered is clients an administrator added (mcpgate client
	// add). Default: open, every grant they were registered for.
	PreRegistered *ClientPath `yaml:"pre_registered" json:"pre_registered,omitempty"`
}

// ClientPath is the admission policy of one registration path.
type ClientPath struct {
	// Mode is ClientsOpen (the default), ClientsAllowlist, ClientsApproval
	// or ClientsClosed.
	Mode string `yaml:"mode" json:"mode,omitempty"`
	// Allow, for mode allowlist, names the admitted clients: for cimd,
	// URL prefixes of the client_id or hosts ("*.example.com" for
	// subdomains); for dynamic, URL prefixes or hosts every redirect URI
	// must match; for pre_registered, client ids.
	Allow []string `yaml:"allow" json:"allow,omitempty"`
	// GrantTypes are the grant types the path's clients may obtain
	// (authorization_code, refresh_token, client_credentials,
	// urn:ietf:params:oauth:grant-type:jwt-bearer or its short form
	// jwt-bearer). Absent means authorization_code and refresh_token for
	// cimd and dynamic, every grant for pre_registered.
	GrantTypes []string `yaml:"grant_types" json:"grant_types,omitempty"`
}

// DynamicClients is the admission policy of dynamic registration, with
// its rate limit and storage bounds.
type DynamicClients struct {
	// Mode, Allow and GrantTypes are as in ClientPath.
	Mode       string   `yaml:"mode" json:"mode,omitempty"`
	Allow      []string `yaml:"allow" json:"allow,omitempty"`
	GrantTypes []string `yaml:"grant_types" json:"grant_types,omitempty"`
	// RateLimit limits registrations per source address. Default 10 a
	// minute with bursts of 20.
	RateLimit *RateLimit `yaml:"rate_limit" json:"rate_limit,omitempty"`
	// MaxClients bounds the dynamically registered clients stored.
	// Default 10000.
	MaxClients int `yaml:"max_clients" json:"max_clients,omitempty"`
	// MaxMetadataBytes caps a registration request. Default 16384.
	MaxMetadataBytes int `yaml:"max_metadata_bytes" json:"max_metadata_bytes,omitempty"`
	// UnusedTTL is how long a registration that never obtained a token is
	// kept. Default 24h.
	UnusedTTL time.Duration `yaml:"unused_ttl" json:"unused_ttl,omitempty"`
}

// Path returns the admission part of d.
func (d *DynamicClients) Path() *ClientPath {
	return &ClientPath{Mode: d.Mode, Allow: d.Allow, GrantTypes: d.GrantTypes}
}

// RateLimit is a token bucket per source address.
type RateLimit struct {
	// PerMinute is the sustained rate; Burst how many at once.
	PerMinute float64 `yaml:"per_minute" json:"per_minute,omitempty"`
	Burst     int     `yaml:"burst" json:"burst,omitempty"`
}

// Client admission modes (ClientPath.Mode).
const (
	ClientsOpen      = "open"
	ClientsAllowlist = "allowlist"
	ClientsApproval  = "approval"
	ClientsClosed    = "closed"
)

// GrantTypeJWTBearer is the jwt-bearer grant (RFC 7523, used for ID-JAGs);
// "jwt-bearer" is accepted as its short form in grant_types.
const GrantTypeJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// NormalizeGrantTypes returns grant types with the short form
// "jwt-bearer" spelled out; nil stays nil.
func NormalizeGrantTypes(gs []string) []string {
	if gs == nil {
		return nil
	}
	out := make([]string, len(gs))
	for i, g := range gs {
		if g == "jwt-bearer" {
			g = GrantTypeJWTBearer
		}
		out[i] = g
	}
	return out
}

// TrustedIssuer is an identity provider trusted for ID-JAGs.
type TrustedIssuer struct {
	// Issuer is the provider's issuer URL; JWKSURL where its keys are.
	Issuer  string `yaml:"issuer" json:"issuer"`
	JWKSURL string `yaml:"jwks_url" json:"jwks_url"`
}

// OIDCLogin is an enterprise OpenID Connect provider for signing in.
type OIDCLogin struct {
	// Issuer is the provider's issuer URL (discovery is used).
	Issuer string `yaml:"issuer" json:"issuer"`
	// ClientID and the secret (from an environment variable or a file)
	// identify the gateway to the provider.
	ClientID         string `yaml:"client_id" json:"client_id"`
	ClientSecretEnv  string `yaml:"client_secret_env" json:"client_secret_env,omitempty"`
	ClientSecretFile string `yaml:"client_secret_file" json:"client_secret_file,omitempty"`
	// DisplayName is shown on the login page's button.
	DisplayName string `yaml:"display_name" json:"display_name,omitempty"`
}

// Inventory configures what happens when a client's metadata or an
// upstream's tool definition changes after it was first seen (it is always
// flagged).
type Inventory struct {
	// BlockChangedTools refuses calls of a changed tool until it is
	// approved again (mcpgate inventory approve-tool).
	BlockChangedTools bool `yaml:"block_changed_tools" json:"block_changed_tools,omitempty"`
	// BlockChangedClients refuses tokens to a client whose redirect URIs
	// or keys changed until it is approved again. Keys are every key the
	// client can sign with: its inline jwks, a pre-registered client's
	// keys, and the keys behind its jwks_uri.
	BlockChangedClients bool `yaml:"block_changed_clients" json:"block_changed_clients,omitempty"`
	// RecheckInterval is how often the gateway fetches again the metadata
	// documents and jwks_uri key sets of recently seen clients, to notice
	// a swap while the client is away (auth "oauth"); 0 means 1 hour,
	// negative turns the re-check off.
	RecheckInterval time.Duration `yaml:"recheck_interval" json:"recheck_interval,omitempty"`
	// RecheckSeenWithin selects the clients re-checked: those seen within
	// this long; 0 means 30 days.
	RecheckSeenWithin time.Duration `yaml:"recheck_seen_within" json:"recheck_seen_within,omitempty"`
	// RecheckMaxClients bounds the clients one re-check round fetches (the
	// most recently seen first); 0 means 1000.
	RecheckMaxClients int `yaml:"recheck_max_clients" json:"recheck_max_clients,omitempty"`
	// RecheckTimeout bounds one re-check round; 0 means 2 minutes.
	RecheckTimeout time.Duration `yaml:"recheck_timeout" json:"recheck_timeout,omitempty"`
	// NewTools says what happens to a tool an upstream lists for the first
	// time after its baseline (the first listing of an upstream that has
	// no tool in the inventory): NewToolsAllow ("allow", the default when
	// empty) lists it and lets it be called at once; NewToolsApprove
	// ("approve") hides it from tools/list and refuses calls of it until
	// an administrator approves it (mcpgate inventory approve-tool).
	NewTools string `yaml:"new_tools" json:"new_tools,omitempty"`
}

// Values of Inventory.NewTools.
const (
	NewToolsAllow   = "allow"
	NewToolsApprove = "approve"
)

// Approvals configures the approval pages.
type Approvals struct {
	// Approvers are the local users allowed to approve or deny calls.
	Approvers []string `yaml:"approvers" json:"approvers,omitempty"`
	// TTL is how long an approval request stays open (default 10
	// minutes).
	TTL time.Duration `yaml:"ttl" json:"ttl,omitempty"`
}

// Upstream is one MCP server behind the gateway: remote (URL) or a local
// process (Command).
type Upstream struct {
	// Name identifies the upstream; it must be unique.
	Name string `yaml:"name" json:"name"`
	// URL of a remote server (Streamable HTTP, or legacy HTTP+SSE, which is
	// detected automatically).
	URL string `yaml:"url" json:"url,omitempty"`
	// Transport forces "streamable" or "sse" for URL upstreams; empty means
	// detect.
	Transport string `yaml:"transport" json:"transport,omitempty"`
	// Command is the program and its arguments, for a stdio server.
	Command []string `yaml:"command" json:"command,omitempty"`
	// Env sets variables in the process environment (stdio servers). The
	// process inherits only a short list of the gateway's own variables
	// (PATH, HOME, USER, LANG, TZ, TMPDIR, ...), never the rest of them.
	Env map[string]string `yaml:"env" json:"env,omitempty"`
	// PassEnv names more of the gateway's environment variables that the
	// process inherits, when they are set (stdio servers); names only,
	// without values.
	PassEnv []string `yaml:"pass_env" json:"pass_env,omitempty"`
	// Cwd is the process working directory (stdio servers). A relative
	// path is resolved against the directory of the file that set it.
	Cwd string `yaml:"cwd" json:"cwd,omitempty"`
	// Headers are extra HTTP headers sent with every request to a URL
	// upstream. Use Credentials for secrets in YAML files; --servers files
	// may carry literal values here, which are never logged.
	Headers map[string]string `yaml:"headers" json:"headers,omitempty"`
	// Prefix is put before the upstream's tool, prompt and resource
	// template names. Nil means "<name>_"; an empty string means none.
	Prefix *string `yaml:"prefix" json:"prefix,omitempty"`
	// Credentials are how the gateway authenticates to the upstream. The
	// caller's own token is never sent upstream.
	Credentials *Credentials `yaml:"credentials" json:"credentials,omitempty"`
	// Owner names who is responsible for the upstream (a team, a person),
	// for the inventory. Optional.
	Owner string `yaml:"owner" json:"owner,omitempty"`
	// Timeout bounds one request to the upstream (default 5 minutes).
	Timeout time.Duration `yaml:"timeout" json:"timeout,omitempty"`
	// PollAfter, if positive, closes the client's event stream of a call to
	// this upstream that is still running after this long, so that the
	// client resumes it by polling (GET with Last-Event-ID) instead of
	// holding a connection open. Calls to HTTP upstreams that close their
	// own streams are relayed that way regardless. Zero means off.
	PollAfter time.Duration `yaml:"poll_after" json:"poll_after,omitempty"`
	// Roots says which roots the upstream sees when it asks (roots/list):
	// RootsNone (the default: the gateway declares no roots capability to
	// it), RootsFixed (the gateway answers with FixedRoots) or RootsRelay
	// (the request is relayed to the client, if policy allows roots/list
	// for the upstream and the client declared roots).
	Roots string `yaml:"roots" json:"roots,omitempty"`
	// FixedRoots are the roots of an upstream whose Roots is RootsFixed.
	FixedRoots []Root `yaml:"fixed_roots" json:"fixed_roots,omitempty"`
	// Protocol pins the MCP revision the gateway speaks to the upstream:
	// ProtocolModern ("2026-07-28": server/discover and per-request
	// envelopes only, never initialize) or a legacy revision
	// ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05": initialize
	// asking for that revision, no fallback). Empty (the default)
	// discovers it: initialize with the latest legacy revision first, and
	// 2026-07-28 when the upstream refuses initialize as a modern-only
	// server.
	Protocol string `yaml:"protocol" json:"protocol,omitempty"`
}

// ProtocolModern is the revision Upstream.Protocol names to pin an
// upstream to the modern (sessionless) generation.
const ProtocolModern = "2026-07-28"

// upstreamProtocols are the values Upstream.Protocol accepts besides
// empty: the revisions the mcp package speaks as a client.
var upstreamProtocols = []string{ProtocolModern, "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}

// Settings of Upstream.Roots.
const (
	RootsNone  = "none"
	RootsFixed = "fixed"
	RootsRelay = "relay"
)

// Root is a root set by the operator for an upstream (Upstream.FixedRoots).
type Root struct {
	// URI is the root's URI; it must be a file:// URI.
	URI string `yaml:"uri" json:"uri"`
	// Name is an optional name for the root.
	Name string `yaml:"name" json:"name,omitempty"`
}

// EffectiveRoots returns the upstream's roots setting.
func (u *Upstream) EffectiveRoots() string {
	if u.Roots == "" {
		return RootsNone
	}
	return u.Roots
}

// EffectivePrefix returns the prefix to use for the upstream's names.
func (u *Upstream) EffectivePrefix() string {
	if u.Prefix == nil {
		return u.Name + "_"
	}
	return *u.Prefix
}

// Credentials are how the gateway authenticates to an upstream.
type Credentials struct {
	// Type is "none", "header", "bearer", "oauth_client_credentials",
	// "oauth_user" (per-user consent through URL-mode elicitation) or
	// "enterprise" (per-user tokens through Cross App Access: the user's
	// identity assertion from the enterprise IdP exchanged for an ID-JAG,
	// then the jwt-bearer grant at the upstream's authorization server).
	Type string `yaml:"type" json:"type"`
	// Header is the header name for Type "header" (e.g. X-API-Key).
	Header string `yaml:"header" json:"header,omitempty"`
	// ValueEnv names an environment variable holding the header value or
	// bearer token; ValueFile names a file holding it. Exactly one is set
	// for "header" and "bearer".
	ValueEnv  string `yaml:"value_env" json:"value_env,omitempty"`
	ValueFile string `yaml:"value_file" json:"value_file,omitempty"`
	// Value is a literal header value or bearer token. It cannot be set in
	// YAML (secrets belong in the environment or a file); it is filled in
	// from the headers of a --servers file, and is never marshaled or
	// logged.
	Value string `yaml:"-" json:"-"`
	// ClientID, ClientSecretEnv / ClientSecretFile, Scopes and TokenURL (or
	// discovery from the upstream when empty) are used by the OAuth types.
	ClientID         string   `yaml:"client_id" json:"client_id,omitempty"`
	ClientSecretEnv  string   `yaml:"client_secret_env" json:"client_secret_env,omitempty"`
	ClientSecretFile string   `yaml:"client_secret_file" json:"client_secret_file,omitempty"`
	Scopes           []string `yaml:"scopes" json:"scopes,omitempty"`
	TokenURL         string   `yaml:"token_url" json:"token_url,omitempty"`
	// IdPTokenURL is the enterprise identity provider's token endpoint,
	// where the user's identity assertion is exchanged (RFC 8693) for an
	// ID-JAG; IdPClientID and IdPClientSecretEnv / IdPClientSecretFile
	// are the gateway's client registration there. Type "enterprise"
	// only; ClientID (and its secret, if any) is then the gateway's
	// client at the upstream's authorization server, which the ID-JAG
	// names.
	IdPTokenURL         string `yaml:"idp_token_url" json:"idp_token_url,omitempty"`
	IdPClientID         string `yaml:"idp_client_id" json:"idp_client_id,omitempty"`
	IdPClientSecretEnv  string `yaml:"idp_client_secret_env" json:"idp_client_secret_env,omitempty"`
	IdPClientSecretFile string `yaml:"idp_client_secret_file" json:"idp_client_secret_file,omitempty"`
}

// PerUser reports whether the credentials are each principal's own
// ("oauth_user" and "enterprise"): the upstream's sessions are opened per
// principal, never in the gateway's name alone.
func (c *Credentials) PerUser() bool {
	return c != nil && (c.Type == CredentialsOAuthUser || c.Type == CredentialsEnterprise)
}
