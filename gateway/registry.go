package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/mcp"
)

// Small registries with one job and one mutex each, which the Gateway
// holds: the clients' sessions, the progress tokens of calls in flight,
// and the task-augmented calls whose answer is still on its way.

// sessionRegistry holds the clients' sessions with the gateway, by
// session and by principal, and each session's resource subscriptions.
type sessionRegistry struct {
	mu          sync.Mutex
	byServer    map[*mcp.ServerSession]*downstreamSession
	byPrincipal map[string]map[*mcp.ServerSession]*downstreamSession
}

func newSessionRegistry() *sessionRegistry {
	return &sessionRegistry{
		byServer:    make(map[*mcp.ServerSession]*downstreamSession),
		byPrincipal: make(map[string]map[*mcp.ServerSession]*downstreamSession),
	}
}

// add registers ds until its session ends.
func (r *sessionRegistry) add(ds *downstreamSession) {
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
		r.remove(ds)
	}()
}

func (r *sessionRegistry) remove(ds *downstreamSession) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byServer[ds.ss] == ds {
		delete(r.byServer, ds.ss)
	}
	if m := r.byPrincipal[ds.principal]; m != nil {
		delete(m, ds.ss)
		if len(m) == 0 {
			delete(r.byPrincipal, ds.principal)
		}
	}
}

// get returns the record of a session, or nil.
func (r *sessionRegistry) get(ss *mcp.ServerSession) *downstreamSession {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byServer[ss]
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
			r.remove(ds)
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
