package gateway

import (
	"context"
	"crypto/rand"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/store"
)

// Small registries with one job and one mutex each, which the Gateway
// holds: the clients' sessions, the progress tokens of calls in flight,
// and the task-augmented calls whose answer is still on its way.

// sessionRegistry holds the clients' sessions with the gateway, by
// session and by principal, and each session's resource subscriptions.
// With a store (record), it also writes every session there when it is
// added and removed, and its last-seen time at most once a minute, so
// that the inventory shows live sessions from the database.
type sessionRegistry struct {
	mu          sync.Mutex
	byServer    map[*mcp.ServerSession]*downstreamSession
	byPrincipal map[string]map[*mcp.ServerSession]*downstreamSession
	// requests are the records of modern requests being served
	// (modern.go): known to get, not sessions of their principal.
	requests map[*mcp.ServerSession]*downstreamSession

	// Set by record, before the gateway serves.
	rec       store.GatewaySessions
	retention time.Duration
	logger    *slog.Logger
	since     time.Time   // when record was called
	closed    atomic.Bool // endAll ran: the gateway closes, nothing more is written

	// shared reports that other gateway processes (replicas) share rec
	// and may continue this process's sessions (Options.SharedSessions):
	// a record is then ended only when its session is explicitly ended
	// (DELETE, revocation, CloseSessions), not when this process merely
	// forgets it (Close), and the sweep ends only the records unused for
	// idle. Set by share, before the gateway serves.
	shared bool
	idle   time.Duration
}

// DefaultSharedSessionIdle is how long a shared session record may go
// unused (no request through any replica) before the sweep ends it
// (Options.SharedSessionIdle).
const DefaultSharedSessionIdle = 24 * time.Hour

// share makes r treat its records as shared with other replicas, ending
// those unused for idle (0: DefaultSharedSessionIdle).
func (r *sessionRegistry) share(idle time.Duration) {
	if idle <= 0 {
		idle = DefaultSharedSessionIdle
	}
	r.shared, r.idle = true, idle
}

// Session records: how often last-seen is written, how long ended
// sessions are kept by default, how often the sweep runs, and how long a
// write may take.
const (
	sessionSeenResolution   = time.Minute
	DefaultSessionRetention = 7 * 24 * time.Hour
	sessionSweepInterval    = time.Hour
	sessionWriteTimeout     = 2 * time.Second
)

func newSessionRegistry() *sessionRegistry {
	return &sessionRegistry{
		byServer:    make(map[*mcp.ServerSession]*downstreamSession),
		byPrincipal: make(map[string]map[*mcp.ServerSession]*downstreamSession),
		requests:    make(map[*mcp.ServerSession]*downstreamSession),
	}
}

// record makes r write its sessions to rec (nil: none), keeping ended
// ones for retention (0: DefaultSessionRetention).
func (r *sessionRegistry) record(rec store.GatewaySessions, retention time.Duration, logger *slog.Logger) {
	if retention <= 0 {
		retention = DefaultSessionRetention
	}
	r.rec, r.retention, r.logger, r.since = rec, retention, logger, time.Now()
}

// start ends the session records a stopped gateway process left open
// (sessions live in one process: none of them can still be open), and
// prunes ended records older than the retention now and every hour until
// done is closed.
func (r *sessionRegistry) start(ctx context.Context, done <-chan struct{}) {
	if r.rec == nil {
		return
	}
	if r.shared {
		// Other replicas serve sessions this one did not open, or opened
		// before it restarted: only unused records end (in sweep).
	} else if n, err := r.rec.EndGatewaySessionsBefore(ctx, r.since, time.Now().UTC()); err != nil {
		r.logger.Warn("ending the session records of a stopped gateway", "error", err)
	} else if n > 0 {
		r.logger.Info("ended the session records a stopped gateway left open", "sessions", n)
	}
	sweep := func() {
		ctx, cancel := context.WithTimeout(context.Background(), sessionWriteTimeout)
		defer cancel()
		if r.shared {
			now := time.Now().UTC()
			if n, err := r.rec.EndIdleGatewaySessions(ctx, now.Add(-r.idle), now); err != nil {
				r.logger.Warn("ending unused session records", "error", err)
			} else if n > 0 {
				r.logger.Info("ended session records no replica used", "sessions", n, "idle", r.idle)
			}
		}
		if _, err := r.rec.DeleteEndedGatewaySessions(ctx, time.Now().Add(-r.retention)); err != nil {
			r.logger.Warn("pruning ended session records", "error", err)
		}
	}
	sweep()
	go func() {
		t := time.NewTicker(sessionSweepInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				sweep()
			}
		}
	}()
}

// write runs one write to the session records, logging its failure.
func (r *sessionRegistry) write(what string, fn func(ctx context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), sessionWriteTimeout)
	defer cancel()
	if err := fn(ctx); err != nil {
		r.logger.Warn("session record: "+what, "error", err)
	}
}

// recordID is the id of a session's record: its transport session id, or
// one made up for a transport without ids (stdio).
func recordID(ds *downstreamSession) string {
	if id := ds.id(); id != "" {
		return id
	}
	return "local-" + rand.Text()
}

// add registers ds until its session ends.
func (r *sessionRegistry) add(ds *downstreamSession) {
	if ds.adopted && r.shared && ds.id() != "" && r.rec != nil {
		// Its record exists: the replica that opened it wrote it. The
		// first request here writes last-seen.
		ds.recordID = ds.id()
	} else if r.rec != nil && !r.closed.Load() {
		ds.recordID = recordID(ds)
		ds.seenWritten.Store(ds.created.UnixNano())
		rec := &store.GatewaySession{ID: ds.recordID, Principal: ds.principal, ClientID: ds.clientID, TokenID: ds.tokenID, Grant: ds.grant,
			Transport: ds.transport, SourceAddr: ds.sourceAddr, CreatedAt: ds.created, LastSeen: ds.created, ClientInit: ds.clientInit}
		r.write("add", func(ctx context.Context) error { return r.rec.PutGatewaySession(ctx, rec) })
	}
	r.mu.Lock()
	r.byServer[ds.ss] = ds
	m := r.byPrincipal[ds.principal]
	if m == nil {
		m = make(map[*mcp.ServerSession]*downstreamSession)
		r.byPrincipal[ds.principal] = m
	}
	m[ds.ss] = ds
	r.mu.Unlock()
	go func() {
		<-ds.ss.Done()
		r.remove(ds, false)
	}()
}

// remove unregisters ds and ends its record; with a shared store, only
// when explicit (the session was ended, not merely forgotten here).
func (r *sessionRegistry) remove(ds *downstreamSession, explicit bool) {
	r.mu.Lock()
	registered := r.byServer[ds.ss] == ds
	if registered {
		delete(r.byServer, ds.ss)
	}
	if m := r.byPrincipal[ds.principal]; m != nil {
		delete(m, ds.ss)
		if len(m) == 0 {
			delete(r.byPrincipal, ds.principal)
		}
	}
	r.mu.Unlock()
	if registered && (explicit || !r.sharedRecord(ds)) {
		r.end(ds)
	}
}

// sharedRecord reports whether ds's record is shared with other replicas,
// which may continue the session: Streamable HTTP sessions, when shared
// (legacy SSE and stdio sessions live in one process).
func (r *sessionRegistry) sharedRecord(ds *downstreamSession) bool {
	return r.shared && ds.transport == store.TransportStreamable
}

// end records that ds ended.
func (r *sessionRegistry) end(ds *downstreamSession) {
	if r.rec != nil && ds.recordID != "" && !r.closed.Load() {
		r.write("end", func(ctx context.Context) error { return r.rec.EndGatewaySession(ctx, ds.recordID, time.Now().UTC()) })
	}
}

// endAll records that every registered session ended (the gateway
// closes).
func (r *sessionRegistry) endAll() {
	for _, ds := range r.all() {
		if !r.sharedRecord(ds) { // shared ones continue on the other replicas
			r.end(ds)
		}
	}
	r.closed.Store(true)
}

// touch notes activity on ds: its record's last-seen time is written at
// most once per sessionSeenResolution.
func (r *sessionRegistry) touch(ds *downstreamSession) {
	if r.rec == nil || ds.recordID == "" || r.closed.Load() {
		return
	}
	now := time.Now().UTC()
	last := ds.seenWritten.Load()
	if now.UnixNano()-last < int64(sessionSeenResolution) || !ds.seenWritten.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	r.write("last seen", func(ctx context.Context) error { return r.rec.TouchGatewaySession(ctx, ds.recordID, now) })
}

// get returns the record of a session, or nil.
func (r *sessionRegistry) get(ss *mcp.ServerSession) *downstreamSession {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ds := r.byServer[ss]; ds != nil {
		return ds
	}
	return r.requests[ss]
}

// serving makes get find the record of a modern request until the
// returned function is called.
func (r *sessionRegistry) serving(ds *downstreamSession) func() {
	r.mu.Lock()
	r.requests[ds.ss] = ds
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		delete(r.requests, ds.ss)
		r.mu.Unlock()
	}
}

// ofPrincipal returns the principal's sessions.
func (r *sessionRegistry) ofPrincipal(principal string) []*downstreamSession {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*downstreamSession, 0, len(r.byPrincipal[principal]))
	for _, ds := range r.byPrincipal[principal] {
		out = append(out, ds)
	}
	return out
}

// all returns every session.
func (r *sessionRegistry) all() []*downstreamSession {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*downstreamSession, 0, len(r.byServer))
	for _, ds := range r.byServer {
		out = append(out, ds)
	}
	return out
}

// removeMatching unregisters the sessions match selects and returns them.
func (r *sessionRegistry) removeMatching(match func(*downstreamSession) bool) []*downstreamSession {
	var out []*downstreamSession
	for _, ds := range r.all() {
		if match(ds) {
			r.remove(ds, true)
			out = append(out, ds)
		}
	}
	return out
}

// subscribe records (or, with on false, drops) a session's subscription
// to a resource URI.
func (r *sessionRegistry) subscribe(ds *downstreamSession, uri string, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if on {
		if ds.subs == nil {
			ds.subs = make(map[string]bool)
		}
		ds.subs[uri] = true
	} else {
		delete(ds.subs, uri)
	}
}

// subscribed reports whether a session subscribed to a URI.
func (r *sessionRegistry) subscribed(ds *downstreamSession, uri string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return ds.subs[uri]
}

// progressRoutes maps the progress tokens the gateway sends upstream to
// the downstream calls they belong to.
type progressRoutes struct {
	mu sync.Mutex
	m  map[string]*callInfo
}

func (p *progressRoutes) add(token string, ci *callInfo) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = make(map[string]*callInfo)
	}
	p.m[token] = ci
}

func (p *progressRoutes) remove(token string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.m, token)
}

func (p *progressRoutes) get(token string) *callInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m[token]
}

// taskCreations tracks the task-augmented calls in flight to each
// upstream. An upstream may send a message about a task (a related-task
// request or notification) before the gateway has seen the answer that
// created it; such a message waits until the task is recorded or no
// creation is in flight any more.
type taskCreations struct {
	mu      sync.Mutex
	pending map[*upstream]int
	changed chan struct{} // closed, and replaced, at every change
}

func newTaskCreations() *taskCreations {
	return &taskCreations{pending: make(map[*upstream]int), changed: make(chan struct{})}
}

// begin notes a creation in flight; the returned function ends it.
func (tc *taskCreations) begin(u *upstream) (end func()) {
	tc.mu.Lock()
	tc.pending[u]++
	tc.mu.Unlock()
	return func() {
		tc.mu.Lock()
		if tc.pending[u]--; tc.pending[u] == 0 {
			delete(tc.pending, u)
		}
		tc.signalLocked()
		tc.mu.Unlock()
	}
}

// recorded wakes the messages waiting for a task.
func (tc *taskCreations) recorded() {
	tc.mu.Lock()
	tc.signalLocked()
	tc.mu.Unlock()
}

func (tc *taskCreations) signalLocked() {
	close(tc.changed)
	tc.changed = make(chan struct{})
}

// maxTaskWait bounds how long a message about an unknown task waits for
// the answer that creates it.
const maxTaskWait = 5 * time.Second

// wait calls found until it reports true, waiting for changes while a
// creation to u is in flight, at most maxTaskWait or until ctx ends. It
// reports found's last answer.
func (tc *taskCreations) wait(ctx context.Context, u *upstream, found func() bool) bool {
	timer := time.NewTimer(maxTaskWait)
	defer timer.Stop()
	for {
		tc.mu.Lock()
		ch, busy := tc.changed, tc.pending[u] > 0
		tc.mu.Unlock()
		if found() {
			return true
		}
		if !busy {
			return false
		}
		select {
		case <-ch:
		case <-timer.C:
			return found()
		case <-ctx.Done():
			return found()
		}
	}
}
