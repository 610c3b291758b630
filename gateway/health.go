package gateway

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/store"
)

// States of an upstream (UpstreamState.State).
const (
	// UpstreamConnecting: an attempt to connect is under way (or about to
	// start).
	UpstreamConnecting = "connecting"
	// UpstreamReady: the gateway has a session with the upstream.
	UpstreamReady = "ready"
	// UpstreamBackoff: the last attempt failed (or the session was lost);
	// the next one is at RetryAt.
	UpstreamBackoff = "backoff"
	// UpstreamCircuitOpen: the upstream failed UpstreamCircuitFailures
	// times in a row (failed connects, or sessions that ended within a
	// minute, such as a process that crashes on every call); requests
	// are refused at once until RetryAt, when one more attempt is made.
	UpstreamCircuitOpen = "circuit_open"
	// UpstreamPerUser: sessions open only for each user, with the user's
	// consent (oauth_user credentials); there is no gateway-wide session.
	UpstreamPerUser = "per_user"
)

// UpstreamState is the state of the gateway's own session with one
// upstream: the session it opens at start and keeps connected, retrying
// with back-off and jitter.
type UpstreamState struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// Since is when the upstream entered State.
	Since time.Time `json:"since,omitzero"`
	// Failures counts consecutive failures (failed connects, and sessions
	// that ended within a minute).
	Failures int `json:"failures,omitempty"`
	// LastError is the last failure, when State is backoff or
	// circuit_open (or connecting again after one).
	LastError string `json:"last_error,omitempty"`
	// RetryAt is when the next attempt is due (backoff, circuit_open).
	RetryAt time.Time `json:"retry_at,omitzero"`
	// Protocol is the MCP revision the ready session speaks (pinned by
	// the upstream's protocol setting, or discovered).
	Protocol string `json:"protocol,omitempty"`
}

// UpstreamStates returns the state of every configured upstream, in the
// order of the configuration.
func (g *Gateway) UpstreamStates() []UpstreamState {
	out := make([]UpstreamState, 0, len(g.upstreamList()))
	for _, u := range g.upstreamList() {
		out = append(out, u.state())
	}
	return out
}

func (u *upstream) state() UpstreamState {
	st := UpstreamState{Name: u.cfg.Name}
	if u.perUser() {
		st.State = UpstreamPerUser
		return st
	}
	us := u.primary
	us.mu.Lock()
	defer us.mu.Unlock()
	st.Failures = us.failures
	if us.lastErr != nil {
		st.LastError = us.lastErr.Error()
	}
	switch {
	case us.cs != nil:
		st.State, st.Since, st.LastError = UpstreamReady, us.since, ""
		st.Protocol = us.cs.InitializeResult().ProtocolVersion
	case us.dialing != nil:
		st.State, st.Since = UpstreamConnecting, us.dialSince.UTC()
	case us.lastErr == nil:
		st.State, st.Since = UpstreamConnecting, u.g.started.UTC() // not tried yet
	case us.circuit:
		st.State, st.Since, st.RetryAt = UpstreamCircuitOpen, us.failedAt.UTC(), us.retryAt.UTC()
	default:
		st.State, st.Since, st.RetryAt = UpstreamBackoff, us.failedAt.UTC(), us.retryAt.UTC()
	}
	return st
}

// supervise keeps the upstream's start-up session connected until the
// gateway closes: it connects, retries with back-off and jitter (and
// through an open circuit's period), reports progress (a "still
// connecting" line every progressEvery of one attempt), and when the
// session becomes ready tells every client that the lists changed.
func (g *Gateway) supervise(u *upstream) {
	defer g.supervisors.Done()
	us := u.primary
	first := true
	endFirst := func() {
		if first {
			first = false
			close(u.firstDone)
		}
	}
	defer endFirst()
	// The upstream's life: until Close, or a reload that removes or
	// replaces it (retire).
	life, endLife := context.WithCancel(g.life)
	defer endLife()
	go func() {
		select {
		case <-u.gone:
			endLife()
		case <-life.Done():
		}
	}()
	var minWait time.Duration // after a failed round, never retry at once
	for {
		// Wait out the back-off of the last failure (recorded here or by
		// watch when the session was lost).
		us.mu.Lock()
		closed, wait := us.closed, max(time.Until(us.retryAt), minWait)
		us.mu.Unlock()
		if closed {
			return
		}
		minWait = 0
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-life.Done():
				t.Stop()
				return
			}
		}
		ctx, cancel := context.WithTimeout(life, u.timeout())
		g.reportUpstreamState(u.cfg.Name, "connecting", nil)
		start := time.Now()
		ticker := time.NewTicker(g.progressEvery)
		tickDone := make(chan struct{})
		go func() {
			defer ticker.Stop()
			for {
				select {
				case <-ticker.C:
					g.reportUpstreamState(u.cfg.Name, fmt.Sprintf("still connecting (%s)", time.Since(start).Round(time.Second)), nil)
				case <-tickDone:
					return
				}
			}
		}()
		cs, err := us.get(ctx)
		close(tickDone)
		cancel()
		if life.Err() != nil {
			return // closed or retired: either closes the session
		}
		if err != nil {
			us.mu.Lock()
			state := "failed"
			if us.circuit {
				state = "circuit open"
			}
			us.mu.Unlock()
			g.reportUpstreamState(u.cfg.Name, state, err)
			endFirst()
			minWait = backoffBase
			continue
		}
		g.reportUpstreamState(u.cfg.Name, "ready", nil)
		// Ready on the first attempt within startup_wait: no client has
		// finished initialize (initialize waits for this attempt), so
		// there is no one to tell; a catalogue a cancelled request built
		// meanwhile is dropped all the same. Dropped before the waiters go
		// on, so that what they build is not built twice.
		quiet := first && time.Now().Before(g.startupUntil)
		g.upstreamReady(u, cs, !quiet)
		endFirst()
		// Wait for the session to end: watch records the failure and
		// tells us, and the next round waits out the back-off.
		select {
		case <-us.lost:
		case <-life.Done():
			return
		}
	}
}

// upstreamReady makes a newly connected upstream part of every catalogue:
// the catalogues are dropped and, if notify is set, every client is told
// its lists changed.
func (g *Gateway) upstreamReady(u *upstream, cs *mcp.ClientSession, notify bool) {
	g.mu.Lock()
	clear(g.catalogs)
	g.catalogGen++ // a build under way may have left u out: not kept
	g.mu.Unlock()
	if !notify {
		return
	}
	caps := cs.InitializeResult().Capabilities
	methods := []string{mcp.NotificationToolsListChanged}
	if caps.Prompts != nil {
		methods = append(methods, mcp.NotificationPromptsListChanged)
	}
	if caps.Resources != nil {
		methods = append(methods, mcp.NotificationResourcesListChanged)
	}
	for _, ss := range g.server.Sessions() {
		for _, m := range methods {
			g.notify(context.Background(), ss, m, jsontext.Value("{}"))
		}
	}
	g.listsChangedModern(methods...) // modern_listen.go
}

// awaitStartup waits, during the first startup_wait after Start, for the
// upstreams still on their first connection attempt, so that a client
// that connects right after start sees the whole catalogue. It returns at
// once after that period, and when ctx ends.
func (g *Gateway) awaitStartup(ctx context.Context) {
	for _, u := range g.upstreamList() {
		g.awaitUpstream(ctx, u)
	}
}

// awaitUpstream is awaitStartup for one upstream.
func (g *Gateway) awaitUpstream(ctx context.Context, u *upstream) {
	if u.firstDone == nil || g.startupUntil.IsZero() {
		return
	}
	wait := time.Until(g.startupUntil)
	if wait <= 0 {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-u.firstDone:
	case <-t.C:
	case <-ctx.Done():
	case <-g.done:
	}
}

// notReady returns why an upstream cannot be listed now, or nil: an
// upstream whose start-up session is not ready is left out of every
// principal's catalogue at once, rather than each principal's session
// waiting to connect to it.
func (u *upstream) notReady() error {
	if u.primary == nil || u.g.startupUntil.IsZero() {
		return nil // per-user, or Start not called (tests)
	}
	st := u.state()
	switch st.State {
	case UpstreamReady:
		return nil
	case UpstreamConnecting:
		if st.LastError != "" {
			return fmt.Errorf("upstream %s is still connecting (since %s; last error: %s)", u.cfg.Name, st.Since.Format(time.RFC3339), st.LastError)
		}
		return fmt.Errorf("upstream %s is still connecting (since %s)", u.cfg.Name, st.Since.Format(time.RFC3339))
	}
	u.primary.mu.Lock()
	defer u.primary.mu.Unlock()
	return u.primary.unavailable(time.Until(u.primary.retryAt))
}

// Readiness is the body of /readyz.
type Readiness struct {
	// Ready is true when the gateway should get traffic.
	Ready bool `json:"ready"`
	// Checks maps each check (config, database, upstreams) to "ok" or
	// what is wrong.
	Checks map[string]string `json:"checks"`
	// ReadyUpstreams counts the upstreams that are ready; Required is the
	// ready_upstreams setting.
	ReadyUpstreams int             `json:"ready_upstreams"`
	Required       int             `json:"required_upstreams"`
	Upstreams      []UpstreamState `json:"upstreams"`
}

// Readiness checks whether the gateway is ready for traffic: the
// configuration is loaded (it is, once the gateway exists), the database
// is writable (Options.ReadyCheck), and at least ready_upstreams upstreams
// are ready.
func (g *Gateway) Readiness(ctx context.Context) *Readiness {
	r := &Readiness{Ready: true, Checks: map[string]string{"config": "ok"}, Upstreams: g.UpstreamStates(), Required: max(g.limits.ReadyUpstreams, 0)}
	if g.opts.ReadyCheck != nil {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := g.opts.ReadyCheck(cctx)
		cancel()
		if err != nil {
			r.Ready = false
			r.Checks["database"] = err.Error()
		} else {
			r.Checks["database"] = "ok"
		}
	}
	for _, st := range r.Upstreams {
		if st.State == UpstreamReady {
			r.ReadyUpstreams++
		}
	}
	if r.ReadyUpstreams < r.Required {
		r.Ready = false
		r.Checks["upstreams"] = fmt.Sprintf("%d of the %d required upstreams ready", r.ReadyUpstreams, r.Required)
	} else {
		r.Checks["upstreams"] = "ok"
	}
	select {
	case <-g.done:
		r.Ready = false
		r.Checks["gateway"] = "shutting down"
	default:
	}
	return r
}

// serveHealthz answers liveness probes: 200 while the process serves.
func (g *Gateway) serveHealthz(w http.ResponseWriter, r *http.Request) {
	writeProbe(w, r, http.StatusOK, map[string]string{"status": "ok"})
}

// serveReadyz answers readiness probes: 200 when Readiness says ready,
// else 503; the body says why.
func (g *Gateway) serveReadyz(w http.ResponseWriter, r *http.Request) {
	rd := g.Readiness(r.Context())
	status := http.StatusOK
	if !rd.Ready {
		status = http.StatusServiceUnavailable
	}
	writeProbe(w, r, status, rd)
}

func writeProbe(w http.ResponseWriter, r *http.Request, status int, body any) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	b, err := json.Marshal(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r.Method == http.MethodGet {
		w.Write(append(b, '\n'))
	}
}

// stateWriteTimeout bounds one write of the upstream states.
const stateWriteTimeout = 5 * time.Second

// startStateWriter starts the goroutine that writes the upstream states
// to Options.UpstreamStates after each change, until Close. Changes that
// come while a write is under way are written once it ends, together:
// there is never more than one write pending.
func (g *Gateway) startStateWriter() {
	if g.opts.UpstreamStates == nil {
		return
	}
	g.statesDirty = make(chan struct{}, 1)
	g.statesDone = make(chan struct{})
	g.statesChanged()
	go func() {
		defer close(g.statesDone)
		for {
			select {
			case <-g.statesDirty:
				g.writeStates("")
			case <-g.done:
				return
			}
		}
	}()
}

// statesChanged asks the state writer, if any, to write the states.
func (g *Gateway) statesChanged() {
	if g.statesDirty == nil {
		return
	}
	select {
	case g.statesDirty <- struct{}{}:
	default: // a write is pending already
	}
}

// stopStateWriter waits for the state writer to end and records every
// upstream as "stopped".
func (g *Gateway) stopStateWriter() {
	if g.statesDone == nil {
		return
	}
	<-g.statesDone
	g.writeStates("stopped")
}

// writeStates writes the states of the upstreams in force; state, if set,
// replaces each one's (with the time of the write as Since).
func (g *Gateway) writeStates(state string) {
	now := time.Now().UTC()
	var recs []*store.UpstreamStateRecord
	for _, st := range g.UpstreamStates() {
		r := &store.UpstreamStateRecord{Name: st.Name, State: st.State, Since: st.Since, Failures: st.Failures, LastError: st.LastError, RetryAt: st.RetryAt, UpdatedAt: now}
		if state != "" {
			r.State, r.Since, r.RetryAt = state, now, time.Time{}
		}
		recs = append(recs, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), stateWriteTimeout)
	defer cancel()
	if err := g.opts.UpstreamStates.PutUpstreamStates(ctx, recs); err != nil {
		g.logger.Warn("writing the upstream states for the inventory", "error", err)
	}
}
