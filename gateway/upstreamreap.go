package gateway

import (
	"fmt"
	"time"
)

// The gateway holds one session with an upstream per principal and client
// capability profile (upstream.go). Without a bound, every principal ever
// seen would keep its sessions (for a stdio upstream, a process each) for
// the life of the gateway. So an upstream session is ended when it is
// idle: unused for server.upstream_session_idle while its principal has
// no session with the gateway and the task watcher follows no task on it.
// And an upstream holds at most server.max_upstream_sessions sessions
// (server.max_stdio_sessions for a stdio upstream): a new one beyond ends
// the least recently used session that could be ended, idle or not yet;
// when none can, the request fails with a clear error. The start-up
// session of an upstream (upstream.primary) is never ended. The reaper
// also drops the catalogues of principals that left (catalog.go), so that
// they too are bounded by the principals present, not those ever seen.

// touch records that us was used now.
func (us *upstreamSession) touch() { us.lastUsed.Store(time.Now().UnixNano()) }

// idleSince returns when us was last used.
func (us *upstreamSession) idleSince() time.Time { return time.Unix(0, us.lastUsed.Load()) }

// maxSessions is the bound on u's sessions (0: none).
func (u *upstream) maxSessions() int {
	n := u.g.limits.MaxUpstreamSessions
	if len(u.cfg.Command) > 0 {
		n = u.g.limits.MaxStdioSessions
	}
	return max(n, 0)
}

// endable reports whether the gateway may end us: it is not the start-up
// session, its principal has no session with the gateway, and it holds
// no watched task.
func (g *Gateway) endable(us *upstreamSession) bool {
	if us == us.up.primary {
		return false
	}
	if len(g.sessions.ofPrincipal(us.principal)) > 0 {
		return false
	}
	return !g.holdsTasks(us)
}

// endSession removes us from its upstream (if it is still there) and ends
// it in the background. It reports whether it did.
func (u *upstream) endSession(us *upstreamSession, why string) bool {
	key := sessionKey(us.principal, us.profile)
	u.mu.Lock()
	if u.sessions[key] != us {
		u.mu.Unlock()
		return false
	}
	delete(u.sessions, key)
	u.mu.Unlock()
	u.logger.Debug("ending an upstream session", "principal", us.principal, "why", why)
	go us.close()
	return true
}

// snapshot returns u's sessions.
func (u *upstream) snapshot() []*upstreamSession {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([]*upstreamSession, 0, len(u.sessions))
	for _, us := range u.sessions {
		out = append(out, us)
	}
	return out
}

// makeRoom ends the least recently used session of u that may be ended,
// so that a new one fits under the bound; it fails when none may.
func (u *upstream) makeRoom() error {
	var victim *upstreamSession
	for _, us := range u.snapshot() {
		if !u.g.endable(us) {
			continue
		}
		if victim == nil || us.idleSince().Before(victim.idleSince()) {
			victim = us
		}
	}
	if victim == nil || !u.endSession(victim, "the upstream's session bound was reached") {
		what := "server.max_upstream_sessions"
		if len(u.cfg.Command) > 0 {
			what = "server.max_stdio_sessions"
		}
		return fmt.Errorf("upstream %s holds its limit of %d sessions (%s; one per principal and client capability profile), all in use: try again later", u.cfg.Name, u.maxSessions(), what)
	}
	return nil
}

// reapIdle ends the sessions idle since before cutoff that may be ended,
// and drops the catalogues of principals with no session with the
// gateway (rebuilt when they come back). It returns how many sessions it
// ended.
func (g *Gateway) reapIdle(cutoff time.Time) int {
	n := 0
	for _, u := range g.upstreamList() {
		for _, us := range u.snapshot() {
			if us.idleSince().Before(cutoff) && g.endable(us) && u.endSession(us, "idle") {
				n++
			}
		}
	}
	g.mu.Lock()
	principals := make([]string, 0, len(g.catalogs))
	for p := range g.catalogs {
		if p != AnonymousPrincipal {
			principals = append(principals, p)
		}
	}
	g.mu.Unlock()
	for _, p := range principals {
		if len(g.sessions.ofPrincipal(p)) == 0 {
			g.invalidate(p)
		}
	}
	return n
}

// reapLoop ends idle upstream sessions until the gateway closes.
func (g *Gateway) reapLoop() {
	idle := g.limits.UpstreamSessionIdle
	if idle <= 0 {
		return
	}
	t := time.NewTicker(min(max(idle/4, time.Second), time.Minute))
	defer t.Stop()
	for {
		select {
		case <-g.done:
			return
		case now := <-t.C:
			if n := g.reapIdle(now.Add(-idle)); n > 0 {
				g.logger.Debug("ended idle upstream sessions", "count", n)
			}
		}
	}
}
