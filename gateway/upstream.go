package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/mcp"
)

// upstream is one configured MCP server and the sessions the gateway holds
// with it, one per principal.
type upstream struct {
	g      *Gateway
	cfg    config.Upstream
	prefix string
	logger *slog.Logger

	mu sync.Mutex
	// sessions holds the upstream sessions by sessionKey(principal,
	// profile): one per principal and capability profile (what the
	// principal's client declared; see profileFor).
	sessions map[string]*upstreamSession
	caps     *mcp.ServerCapabilities // from the last successful initialize

	// primary is the gateway's start-up session with the upstream (the
	// default principal's, with no client capabilities), whose state is
	// the upstream's (health.go); nil for per-user upstreams. firstDone
	// closes when its first attempt ends (set by Start).
	primary   *upstreamSession
	firstDone chan struct{}

	// gone closes when a reload removes or replaces the upstream
	// (retire): its supervisor stops.
	gone     chan struct{}
	goneOnce sync.Once

	// notify bounds the rate of its flooding notifications
	// (notifylimit.go).
	notify *notifyLimit
}

// sessionKey is the key of an upstream session in upstream.sessions.
func sessionKey(principal, profile string) string { return principal + "\x00" + profile }

// upstreamSession is the gateway's session with an upstream on behalf of one
// principal. It reconnects when the session is lost (a stdio process that
// died is restarted, with backoff).
type upstreamSession struct {
	up        *upstream
	principal string
	// profile is the capability profile the session declared to the
	// upstream (see profileFor).
	profile string

	// supervised is set on the upstream's start-up session, which the
	// gateway keeps connected (supervise in health.go); watch leaves its
	// reconnection to the supervisor.
	supervised bool
	lost       chan struct{} // supervised: watch signals a lost session (buffered, 1)

	// lastUsed is when a request last asked for the session (unix
	// nanoseconds; upstreamreap.go).
	lastUsed atomic.Int64

	mu        sync.Mutex
	cs        *mcp.ClientSession
	since     time.Time     // when cs was established
	dialing   chan struct{} // closed when the current dial attempt ends
	dialSince time.Time     // when the current dial attempt began
	failures  int           // consecutive failed connects and short-lived sessions
	failedAt  time.Time     // when the last failure happened
	retryAt   time.Time     // no new attempt before this time
	circuit   bool          // open: failures reached the bound; retryAt is the end of the open period
	lastErr   error
	closed    bool

	// resume, when set, is the saved state of an upstream session that
	// holds tasks from before a gateway restart: the next connect resumes
	// it instead of initializing anew (taskresume.go); resumed tells how
	// that went.
	resume  *mcp.ClientSessionState
	resumed resumeOutcome
}

const (
	backoffBase = 100 * time.Millisecond
	backoffMax  = 30 * time.Second
	// stableAfter is how long a session must have lasted for its end not
	// to count as one more consecutive failure: a process that crashes
	// on every call keeps counting, and its circuit opens.
	stableAfter = time.Minute
)

func newUpstream(g *Gateway, cfg config.Upstream) *upstream {
	u := &upstream{
		g:        g,
		cfg:      cfg,
		prefix:   cfg.EffectivePrefix(),
		logger:   g.logger.With("upstream", cfg.Name),
		sessions: make(map[string]*upstreamSession),
		gone:     make(chan struct{}),
		notify:   newNotifyLimit(g.limits.UpstreamNotificationRate),
	}
	if !u.perUser() {
		u.primary = &upstreamSession{up: u, principal: AnonymousPrincipal, lost: make(chan struct{}, 1)}
		u.sessions[sessionKey(AnonymousPrincipal, "")] = u.primary
	}
	return u
}

// session returns a ready client session for principal, connecting (or
// reconnecting) if needed. The session declares to the upstream what the
// client of the downstream request in ctx declared (no client: nothing).
func (u *upstream) session(ctx context.Context, principal string) (*mcp.ClientSession, error) {
	return u.sessionAs(ctx, principal, u.profileFor(downstreamOf(ctx)))
}

// sessionAs returns the principal's session of the given capability
// profile.
func (u *upstream) sessionAs(ctx context.Context, principal, profile string) (*mcp.ClientSession, error) {
	key := sessionKey(principal, profile)
	u.mu.Lock()
	select {
	case <-u.gone:
		u.mu.Unlock()
		return nil, fmt.Errorf("upstream %s was removed or replaced by a configuration reload", u.cfg.Name)
	default:
	}
	us := u.sessions[key]
	if us == nil {
		if m := u.maxSessions(); m > 0 && len(u.sessions) >= m {
			// Make room (upstreamreap.go), then try again.
			u.mu.Unlock()
			if err := u.makeRoom(); err != nil {
				return nil, err
			}
			return u.sessionAs(ctx, principal, profile)
		}
		us = &upstreamSession{up: u, principal: principal, profile: profile}
		u.sessions[key] = us
	}
	us.touch()
	u.mu.Unlock()
	return us.get(ctx)
}

// existing returns the principal's session of the profile if one is
// connected, without connecting.
func (u *upstream) existing(principal, profile string) *mcp.ClientSession {
	u.mu.Lock()
	us := u.sessions[sessionKey(principal, profile)]
	u.mu.Unlock()
	if us == nil {
		return nil
	}
	us.mu.Lock()
	defer us.mu.Unlock()
	return us.cs
}

// closeSession ends the principal's sessions with the upstream, if any;
// the next request starts a new one (with whatever credential is then
// valid). The sessions are out of use at once; closing them (a stdio
// process may take a few seconds to exit) finishes in the background.
func (u *upstream) closeSession(principal string) {
	var victims []*upstreamSession
	u.mu.Lock()
	for k, us := range u.sessions {
		if us.principal == principal {
			victims = append(victims, us)
			delete(u.sessions, k)
		}
	}
	u.mu.Unlock()
	for _, us := range victims {
		go us.close()
	}
}

// closeSessions ends the sessions of the principals match selects, as
// closeSession does, and returns how many it ended.
func (u *upstream) closeSessions(match func(principal string) bool) int {
	var victims []*upstreamSession
	u.mu.Lock()
	for k, us := range u.sessions {
		if match(us.principal) {
			victims = append(victims, us)
			delete(u.sessions, k)
		}
	}
	u.mu.Unlock()
	for _, us := range victims {
		go us.close()
	}
	return len(victims)
}

// rootsMode is the upstream's roots setting (config.RootsNone, Fixed or
// Relay).
func (u *upstream) rootsMode() string { return u.cfg.EffectiveRoots() }

// profileFor names what a downstream client declared that matters to an
// upstream session: sampling (with tools, with context), elicitation
// (form, URL) and, for an upstream whose roots are relayed, roots. Each
// profile gets its own upstream session, so that an upstream is never
// told of a capability the client that will answer lacks.
func (u *upstream) profileFor(ds *downstreamSession) string {
	if ds == nil || ds.ss == nil {
		return ""
	}
	p := ds.ss.InitializeParams()
	if p == nil {
		return ""
	}
	caps := p.Capabilities
	var b strings.Builder
	if s := caps.Sampling; s != nil {
		b.WriteString("s")
		if s.Tools != nil {
			b.WriteString("t")
		}
		if s.Context != nil {
			b.WriteString("c")
		}
	}
	if e := caps.Elicitation; e != nil {
		b.WriteString("e")
		if e.Form != nil || e.URL == nil {
			b.WriteString("f") // an empty elicitation object means form
		}
		if e.URL != nil {
			b.WriteString("u")
		}
	}
	if caps.Roots != nil && u.rootsMode() == config.RootsRelay {
		b.WriteString("r")
	}
	// The Tasks extension (2026-07-28 clients), declared to modern
	// upstreams (modern_upstream_tasks.go).
	if _, ok := caps.Extensions[mcp.ExtensionTasks]; ok {
		b.WriteString("X")
	}
	// Task-augmented sampling and elicitation, which the gateway relays
	// (clienttasks.go): upper-case letters.
	if t := caps.Tasks; t != nil {
		if r := t.Requests; r != nil {
			if r.Sampling != nil && r.Sampling.CreateMessage != nil && caps.Sampling != nil {
				b.WriteString("S")
			}
			if r.Elicitation != nil && r.Elicitation.Create != nil && caps.Elicitation != nil {
				b.WriteString("E")
			}
		}
		if t.List != nil {
			b.WriteString("L")
		}
		if t.Cancel != nil {
			b.WriteString("C")
		}
	}
	return b.String()
}

// clientCapabilities are what a session of the profile declares to the
// upstream: what the client declared (task-augmented sampling and
// elicitation included, which the gateway relays), and roots as the
// upstream's roots setting says.
func (u *upstream) clientCapabilities(profile string) *mcp.ClientCapabilities {
	caps := &mcp.ClientCapabilities{}
	has := func(c string) bool { return strings.Contains(profile, c) }
	if has("s") {
		caps.Sampling = &mcp.SamplingCapabilities{}
		if has("t") {
			caps.Sampling.Tools = &mcp.SamplingToolsCapabilities{}
		}
		if has("c") {
			caps.Sampling.Context = &mcp.SamplingContextCapabilities{}
		}
	}
	if has("e") {
		caps.Elicitation = &mcp.ElicitationCapabilities{}
		if has("f") {
			caps.Elicitation.Form = &mcp.FormElicitationCapabilities{}
		}
		if has("u") {
			caps.Elicitation.URL = &mcp.URLElicitationCapabilities{}
		}
	}
	if has("S") || has("E") {
		caps.Tasks = &mcp.ClientTasksCapabilities{Requests: &mcp.ClientTaskRequestsCapabilities{}}
		if has("S") {
			caps.Tasks.Requests.Sampling = &mcp.SamplingTaskCapabilities{CreateMessage: &mcp.TaskRequestCapability{}}
		}
		if has("E") {
			caps.Tasks.Requests.Elicitation = &mcp.ElicitationTaskCapabilities{Create: &mcp.TaskRequestCapability{}}
		}
		if has("L") {
			caps.Tasks.List = &mcp.TasksListCapabilities{}
		}
		if has("C") {
			caps.Tasks.Cancel = &mcp.TasksCancelCapabilities{}
		}
	}
	if has("X") {
		caps.Extensions = map[string]jsontext.Value{mcp.ExtensionTasks: jsontext.Value("{}")}
	}
	switch u.rootsMode() {
	case config.RootsFixed:
		caps.Roots = &mcp.RootsCapabilities{}
	case config.RootsRelay:
		if has("r") {
			caps.Roots = &mcp.RootsCapabilities{ListChanged: true}
		}
	}
	return caps
}

func (u *upstream) capabilities() *mcp.ServerCapabilities {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.caps
}

func (us *upstreamSession) get(ctx context.Context) (*mcp.ClientSession, error) {
	for {
		us.mu.Lock()
		if us.closed {
			us.mu.Unlock()
			return nil, errors.New("gateway is shutting down")
		}
		if us.cs != nil {
			cs := us.cs
			us.mu.Unlock()
			return cs, nil
		}
		if us.dialing != nil {
			ch := us.dialing
			us.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if wait := time.Until(us.retryAt); wait > 0 {
			err := us.unavailable(wait)
			us.mu.Unlock()
			return nil, err
		}
		ch := make(chan struct{})
		us.dialing = ch
		us.dialSince = time.Now()
		us.mu.Unlock()

		cs, err := us.up.connect(ctx, us)
		us.mu.Lock()
		us.dialing = nil
		if err == nil && us.closed {
			err = errors.New("gateway is shutting down")
			defer cs.Close()
		}
		if err != nil {
			us.failed(err)
			us.mu.Unlock()
			close(ch)
			return nil, err
		}
		us.cs = cs
		us.since = time.Now().UTC()
		// failures is not reset here but when a session ends after
		// lasting stableAfter (watch): an upstream that starts and then
		// crashes on every call keeps backing off.
		us.circuit = false
		us.lastErr = nil
		us.mu.Unlock()
		close(ch)
		go us.watch(cs)
		if isModernSession(cs) {
			go us.listen(cs) // modern_upstream_listen.go
		}
		return cs, nil
	}
}

// unavailable is the error of a request that finds the session backing
// off (or its circuit open) for wait more. us.mu is held.
func (us *upstreamSession) unavailable(wait time.Duration) error {
	name := us.up.cfg.Name
	if us.circuit {
		return fmt.Errorf("upstream %s is unavailable: its circuit is open after %d consecutive failures (next attempt in %s): %w",
			name, us.failures, wait.Round(time.Second), us.lastErr)
	}
	return fmt.Errorf("upstream %s is unavailable (next attempt in %s): %w", name, wait.Round(time.Millisecond), us.lastErr)
}

// failed records a failure and schedules the next attempt: exponential
// back-off with jitter, and, from the configured number of consecutive
// failures on, the circuit opens for the configured period. us.mu is
// held.
func (us *upstreamSession) failed(err error) {
	us.failures++
	us.lastErr = err
	us.failedAt = time.Now()
	lim := us.up.g.limits
	if lim.UpstreamCircuitFailures > 0 && us.failures >= lim.UpstreamCircuitFailures {
		if !us.circuit {
			us.up.logger.Warn("upstream circuit open", "principal", us.principal, "failures", us.failures, "open_for", lim.UpstreamCircuitOpen, "error", err)
		}
		us.circuit = true
		us.retryAt = us.failedAt.Add(jitter(lim.UpstreamCircuitOpen))
		return
	}
	d := backoffBase << min(us.failures-1, 20)
	if d > backoffMax {
		d = backoffMax
	}
	us.retryAt = us.failedAt.Add(jitter(d))
}

// jitter returns a random duration between 3/4 d and d, so that many
// sessions failing together do not retry together.
func jitter(d time.Duration) time.Duration {
	if d <= 4 {
		return d
	}
	return d - rand.N(d/4)
}

// watch waits for the session to end. A session that ends while the
// gateway still wants it (the process crashed, the server went away) is
// re-established after a backoff delay.
func (us *upstreamSession) watch(cs *mcp.ClientSession) {
	err := cs.Wait()
	us.mu.Lock()
	if us.cs != cs {
		us.mu.Unlock()
		return
	}
	us.cs = nil
	if us.closed {
		us.mu.Unlock()
		return
	}
	if err == nil {
		err = errors.New("session ended")
	}
	if time.Since(us.since) >= stableAfter {
		us.failures = 0
	}
	us.failed(err)
	delay := time.Until(us.retryAt)
	circuit, supervised := us.circuit, us.supervised
	us.mu.Unlock()
	us.up.logger.Warn("upstream session lost; reconnecting", "principal", us.principal, "error", err, "retry_in", delay)
	us.up.g.reportUpstreamState(us.up.cfg.Name, "lost", err)
	if supervised {
		select {
		case us.lost <- struct{}{}:
		default:
		}
	}
	if circuit || supervised {
		// An open circuit waits for the next request (or the
		// supervisor) after its open period; the supervisor reconnects
		// its own session.
		return
	}
	t := time.NewTimer(delay)
	select {
	case <-t.C:
	case <-us.up.g.done:
		t.Stop()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := us.get(ctx); err != nil {
		us.up.logger.Warn("reconnecting upstream failed", "principal", us.principal, "error", err)
	} else {
		us.up.g.reportUpstreamState(us.up.cfg.Name, "ready", nil)
	}
}

func (us *upstreamSession) close() {
	us.mu.Lock()
	us.closed = true
	cs := us.cs
	us.cs = nil
	us.mu.Unlock()
	if cs != nil {
		cs.Close()
	}
}

// connect starts a new session with the upstream for us.principal.
func (u *upstream) connect(ctx context.Context, us *upstreamSession) (*mcp.ClientSession, error) {
	t, err := u.transport(ctx, us.principal)
	if err != nil {
		return nil, err
	}
	impl := &mcp.Implementation{Name: "mcpgate", Version: Version}
	opts := mcp.ClientOptions{
		Logger:         u.logger,
		RequestTimeout: u.timeout(),
		Capabilities:   u.clientCapabilities(us.profile),
		Handler: func(ctx context.Context, cs *mcp.ClientSession, method string, params jsontext.Value) (any, error) {
			return u.g.relayRequest(ctx, us, method, params)
		},
		NotificationHandler: func(ctx context.Context, cs *mcp.ClientSession, method string, params jsontext.Value) {
			if isModernSession(cs) {
				params = withoutSubscriptionID(params) // modern_upstream_listen.go
			}
			u.g.relayNotification(ctx, u, us.principal, method, params)
		},
	}
	pinned := u.cfg.Protocol
	switch {
	case pinned == config.ProtocolModern:
		// Pinned to 2026-07-28: server/discover, never initialize.
		opts.ProtocolVersion, opts.ModernOnly = mcp.Version20260728, true
	case pinned != "":
		opts.ProtocolVersion = pinned // a legacy revision: initialize only
	}
	client := mcp.NewClient(impl, &opts)
	cctx, cancel := context.WithTimeout(ctx, u.timeout())
	defer cancel()
	var cs *mcp.ClientSession
	if pinned != config.ProtocolModern {
		// A modern session has no state to resume.
		cs, err = u.resumeSaved(cctx, client, t, us)
	}
	if cs == nil && err == nil {
		cs, err = client.Connect(cctx, t, nil)
		if err != nil && pinned == "" && mcp.IsModernOnlyRefusal(err) {
			// The upstream serves 2026-07-28 only and refused initialize:
			// connect again as a modern client (no session; see
			// docs/protocol-2026.md for what is relayed).
			u.logger.Info("upstream is modern-only; connecting with protocol 2026-07-28", "error", err)
			if t, err = u.transport(ctx, us.principal); err == nil {
				opts.ProtocolVersion, opts.ModernOnly = mcp.Version20260728, true
				cs, err = mcp.NewClient(impl, &opts).Connect(cctx, t, nil)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", u.cfg.Name, err)
	}
	caps := cs.InitializeResult().Capabilities
	u.mu.Lock()
	u.caps = &caps
	u.mu.Unlock()
	return cs, nil
}

func (u *upstream) timeout() time.Duration {
	if u.cfg.Timeout > 0 {
		return u.cfg.Timeout
	}
	return 5 * time.Minute
}

// transport builds the transport for a new session of principal.
func (u *upstream) transport(ctx context.Context, principal string) (mcp.Transport, error) {
	c := u.cfg
	if len(c.Command) > 0 {
		cmd := exec.Command(c.Command[0], c.Command[1:]...)
		cmd.Dir = c.Cwd
		// Not the gateway's whole environment: it holds other upstreams'
		// secrets. See stdioEnv.
		cmd.Env = stdioEnv(os.Environ(), runtime.GOOS, c.Env, c.PassEnv)
		cmd.Stderr = &logWriter{logger: u.logger}
		return &mcp.CommandTransport{Command: cmd}, nil
	}
	hc, err := u.httpClient(ctx, principal)
	if err != nil {
		return nil, err
	}
	switch c.Transport {
	case "sse":
		return &mcp.SSEClientTransport{Endpoint: c.URL, HTTPClient: hc}, nil
	case "streamable":
		return &mcp.StreamableClientTransport{Endpoint: c.URL, HTTPClient: hc, Logger: u.logger}, nil
	}
	return &mcp.AutoClientTransport{Endpoint: c.URL, HTTPClient: hc, Logger: u.logger}, nil
}

// httpClient returns the HTTP client for a remote upstream, with the
// gateway's own credentials for it. The caller's token is never among
// them: requests to upstreams are made from scratch.
func (u *upstream) httpClient(ctx context.Context, principal string) (*http.Client, error) {
	base := u.g.opts.HTTPClient
	if base == nil {
		base = u.g.upstreamClient
	}
	if len(u.cfg.Headers) > 0 {
		c := *base
		c.Transport = &headersTransport{base: transportOf(base), headers: u.cfg.Headers}
		base = &c
	}
	cr := u.cfg.Credentials
	if cr == nil || cr.Type == "" || cr.Type == "none" {
		return base, nil
	}
	switch cr.Type {
	case "header", "bearer":
		value := cr.Value // a literal from a --servers file
		if value == "" {
			var err error
			if value, err = secretValue(cr.ValueEnv, cr.ValueFile); err != nil {
				return nil, fmt.Errorf("upstream %s credentials: %w", u.cfg.Name, err)
			}
		}
		name := cr.Header
		if cr.Type == "bearer" {
			name, value = "Authorization", "Bearer "+value
		}
		c := *base
		c.Transport = &headerTransport{base: transportOf(base), name: name, value: value}
		return &c, nil
	case "oauth_client_credentials", "oauth_user", "enterprise":
		return u.oauthHTTPClient(ctx, base, principal)
	}
	return nil, fmt.Errorf("upstream %s: unknown credentials type %q", u.cfg.Name, cr.Type)
}

func transportOf(c *http.Client) http.RoundTripper {
	if c.Transport != nil {
		return c.Transport
	}
	return http.DefaultTransport
}

// secretValue reads a secret from an environment variable or a file.
func secretValue(env, file string) (string, error) { return config.ReadSecret(env, file) }

// headerTransport adds one header to every request.
type headerTransport struct {
	base        http.RoundTripper
	name, value string
}

func (t *headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(t.name, t.value)
	return t.base.RoundTrip(r)
}

// headersTransport adds fixed headers (configured for the upstream) to
// every request.
type headersTransport struct {
	base    http.RoundTripper
	headers map[string]string
}

func (t *headersTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range t.headers {
		r.Header.Set(k, v)
	}
	return t.base.RoundTrip(r)
}

// logWriter sends a process's stderr to the log, a line at a time.
type logWriter struct {
	logger *slog.Logger
	mu     sync.Mutex
	buf    []byte
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			if len(w.buf) > 64<<10 { // a very long line: flush it anyway
				w.logger.Info("upstream stderr", "line", string(w.buf))
				w.buf = w.buf[:0]
			}
			return len(p), nil
		}
		w.logger.Info("upstream stderr", "line", strings.TrimRight(string(w.buf[:i]), "\r"))
		w.buf = w.buf[i+1:]
	}
}

var _ io.Writer = (*logWriter)(nil)
