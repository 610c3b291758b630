package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/store"
)

// Tasks outlive the gateway process. With each task created on an HTTP
// upstream the gateway saves the state of the upstream session it runs in
// (session id, protocol version, initialize result). When the gateway
// starts, it resumes each saved session (once per upstream, principal and
// capability profile) instead of initializing a new one, checks each task
// that was running with tasks/get and hands it to the watcher; the
// principal's later calls on that profile use the resumed session. A task
// whose session or task the upstream no longer knows ends as failed with
// restartLostMessage; a task of a stdio upstream (its process ended with
// the gateway) ends as failed with stdioRestartMessage.

const (
	// restartLostMessage is the status message of a task the upstream no
	// longer knew when the gateway restarted.
	restartLostMessage = "the task was lost: the gateway restarted and the upstream no longer knows the task"
	// stdioRestartMessage is the status message of a task of a stdio
	// upstream that ran when the gateway stopped.
	stdioRestartMessage = "the task was lost: the gateway restarted, and the task's upstream (a stdio process) ended with the gateway"
)

// resumeOutcome tells how resuming a saved upstream session went.
type resumeOutcome int

const (
	resumeNone    resumeOutcome = iota // nothing was to be resumed
	resumePending                      // a saved session awaits the next connect
	resumeOK                           // the saved session was resumed
	resumeExpired                      // the upstream no longer knew it
)

// isLost reports whether a task ended because its upstream no longer knew
// it.
func isLost(rec *store.GatewayTask) bool {
	if rec.Status != string(mcp.TaskStatusFailed) {
		return false
	}
	switch rec.StatusMessage {
	case lostTaskMessage, restartLostMessage, stdioRestartMessage:
		return true
	}
	return false
}

// saveSessionState records in rec the state of the HTTP upstream session
// cs, so that a restarted gateway can resume it.
func saveSessionState(rec *store.GatewayTask, cs *mcp.ClientSession) {
	st := cs.State()
	if st.SessionID == "" || st.InitializeResult == nil {
		return
	}
	init, err := json.Marshal(st.InitializeResult)
	if err != nil {
		return
	}
	rec.UpstreamSession, rec.UpstreamProtocol, rec.UpstreamInit = st.SessionID, st.ProtocolVersion, init
}

// savedState returns the upstream session state saved in rec, or nil.
func savedState(rec *store.GatewayTask) *mcp.ClientSessionState {
	if rec.UpstreamSession == "" || len(rec.UpstreamInit) == 0 {
		return nil
	}
	var res mcp.InitializeResult
	if err := json.Unmarshal(rec.UpstreamInit, &res); err != nil {
		return nil
	}
	return &mcp.ClientSessionState{SessionID: rec.UpstreamSession, ProtocolVersion: rec.UpstreamProtocol, InitializeResult: &res}
}

// streamableFor returns the Streamable HTTP transport behind t: a resumed
// session has a session id, so it is Streamable HTTP.
func streamableFor(t mcp.Transport) mcp.Transport {
	if a, ok := t.(*mcp.AutoClientTransport); ok {
		st := mcp.StreamableClientTransport{}
		if a.Streamable != nil {
			st = *a.Streamable
		}
		st.Endpoint, st.HTTPClient = a.Endpoint, a.HTTPClient
		if st.Logger == nil {
			st.Logger = a.Logger
		}
		return &st
	}
	return t
}

// resumeSaved resumes the saved session of us, if any (connect calls it
// first). It returns nil and no error when there is nothing to resume or
// the upstream no longer knows the session: connect then initializes a
// new session. Other errors (the upstream cannot be reached) keep the
// saved state for the next attempt.
func (u *upstream) resumeSaved(ctx context.Context, client *mcp.Client, t mcp.Transport, us *upstreamSession) (*mcp.ClientSession, error) {
	us.mu.Lock()
	st := us.resume
	us.mu.Unlock()
	if st == nil {
		return nil, nil
	}
	cs, err := client.Connect(ctx, streamableFor(t), &mcp.ClientSessionOptions{Resume: st})
	switch {
	case err == nil:
		us.setResumed(resumeOK)
		u.logger.Info("resumed the upstream session of tasks from before the restart", "principal", us.principal, "session", st.SessionID)
		return cs, nil
	case errors.Is(err, mcp.ErrSessionExpired):
		us.setResumed(resumeExpired)
		u.logger.Warn("the upstream no longer knows the session of tasks from before the restart", "principal", us.principal, "error", err)
		return nil, nil
	}
	return nil, fmt.Errorf("upstream %s: resuming the session of tasks: %w", u.cfg.Name, err)
}

// setResumed records how resuming went and drops the saved state.
func (us *upstreamSession) setResumed(o resumeOutcome) {
	us.mu.Lock()
	us.resume, us.resumed = nil, o
	us.mu.Unlock()
}

// sessionEntry returns the principal's session entry of the profile,
// creating it (unconnected) if needed.
func (u *upstream) sessionEntry(principal, profile string) *upstreamSession {
	key := sessionKey(principal, profile)
	u.mu.Lock()
	defer u.mu.Unlock()
	us := u.sessions[key]
	if us == nil {
		us = &upstreamSession{up: u, principal: principal, profile: profile}
		u.sessions[key] = us
	}
	us.touch()
	return us
}

// needsResume reports whether a task record is of a task that was running
// (or that an operator asked to cancel) and has not expired.
func needsResume(rec *store.GatewayTask, now time.Time) bool {
	if rec.Held() {
		return false // the gateway's own task, no upstream session (taskheld.go)
	}
	if isTerminal(rec.Status) && rec.StatusMessage != store.TaskCancelRequested {
		return false
	}
	return rec.ExpiresAt.IsZero() || rec.ExpiresAt.After(now)
}

// resumeTasks takes back the tasks that were running when the gateway
// stopped: it ends those of stdio upstreams as failed, gives the session
// entries of the others their saved state (before any connects), and
// starts one goroutine per upstream session that re-attaches its tasks.
// Start calls it before the upstreams connect.
func (g *Gateway) resumeTasks(ctx context.Context) {
	recs, err := g.taskStore.ListGatewayTasks(ctx, "")
	if err != nil {
		g.logger.Warn("listing the tasks to resume", "error", err)
		return
	}
	now := time.Now()
	groups := map[*upstreamSession][]*store.GatewayTask{}
	for _, rec := range recs {
		if !needsResume(rec, now) {
			continue
		}
		u := g.upstreamNamed(rec.Upstream)
		if u == nil {
			continue // no longer configured: listed by nobody, kept until it expires
		}
		if len(u.cfg.Command) > 0 && g.sessions.shared {
			continue // perhaps another replica's process runs it (replicas.go)
		}
		g.taskProfiles.Store(rec.ID, rec.Profile)
		if len(u.cfg.Command) > 0 {
			g.noteStatus(ctx, rec, string(mcp.TaskStatusFailed), stdioRestartMessage)
			continue
		}
		us := u.sessionEntry(rec.Principal, rec.Profile)
		us.mu.Lock()
		if us.resumed == resumeNone {
			if st := savedState(rec); st != nil {
				us.resume, us.resumed = st, resumePending
			}
		}
		us.mu.Unlock()
		groups[us] = append(groups[us], rec)
	}
	for us, recs := range groups {
		g.supervisors.Add(1)
		go g.reattach(us, recs)
	}
}

// reattach connects (resuming) the upstream session of recs, checks each
// task with tasks/get and hands it to the watcher. If the upstream cannot
// be reached now, the watcher follows the tasks and the session is
// resumed when it can be.
func (g *Gateway) reattach(us *upstreamSession, recs []*store.GatewayTask) {
	defer g.supervisors.Done()
	u, ctx := us.up, g.life
	cctx, cancel := context.WithTimeout(ctx, u.timeout())
	cs, err := us.get(cctx)
	cancel()
	if err != nil {
		select {
		case <-g.done:
			return
		default:
		}
		u.logger.Warn("re-attaching tasks: the upstream cannot be reached now; the watcher retries", "principal", us.principal, "tasks", len(recs), "error", err)
		for _, rec := range recs {
			g.watchTask(u, rec, rec.Profile, 0)
		}
		return
	}
	us.mu.Lock()
	resumed := us.resumed == resumeOK
	us.mu.Unlock()
	for _, rec := range recs {
		if !resumed || rec.UpstreamSession != cs.ID() {
			g.noteStatus(ctx, rec, string(mcp.TaskStatusFailed), restartLostMessage)
			continue
		}
		g.reattachTask(ctx, u, cs, rec)
	}
}

// reattachTask checks a task on its resumed upstream session and hands it
// to the watcher.
func (g *Gateway) reattachTask(ctx context.Context, u *upstream, cs *mcp.ClientSession, rec *store.GatewayTask) {
	if rec.StatusMessage == store.TaskCancelRequested {
		g.watchTask(u, rec, rec.Profile, 0)
		return
	}
	cctx, cancel := context.WithTimeout(ctx, watchCallTimeout)
	defer cancel()
	params, _ := withString(nil, "taskId", rec.UpstreamTaskID)
	res, err := cs.CallRaw(cctx, mcp.MethodTasksGet, params)
	if err != nil {
		var we *jsonrpc.Error
		if errors.As(err, &we) && we.Code == jsonrpc.CodeInvalidParams {
			g.noteStatus(ctx, rec, string(mcp.TaskStatusFailed), restartLostMessage)
			return
		}
		g.watchTask(u, rec, rec.Profile, 0)
		return
	}
	status := stringOf(res, "status")
	if isTerminal(status) {
		if !g.endWatched(ctx, cs, rec, res) {
			g.watchTask(u, rec, rec.Profile, 0) // to fetch the result again
		}
		return
	}
	g.noteStatus(ctx, rec, status, stringOf(res, "statusMessage"))
	g.watchTask(u, rec, rec.Profile, pollIntervalIn(res))
}

// holdsTasks reports whether the watcher follows tasks on the upstream
// session us (Close then detaches it instead of ending it).
func (g *Gateway) holdsTasks(us *upstreamSession) bool {
	w := &g.watcher
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.loops[us.up.cfg.Name+"\x00"+sessionKey(us.principal, us.profile)]
	return l != nil && len(l.tasks) > 0
}

// detach ends the gateway's use of the session but leaves it at the
// upstream (HTTP: no DELETE), so that the tasks it holds can be taken
// back by the next gateway (resumeTasks).
func (us *upstreamSession) detach() {
	us.mu.Lock()
	us.closed = true
	cs := us.cs
	us.cs = nil
	us.mu.Unlock()
	if cs != nil {
		cs.Detach()
	}
}
