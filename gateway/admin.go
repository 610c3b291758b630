package gateway

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/store"
)

// SessionInfo describes a client's session with the gateway.
type SessionInfo struct {
	// ID is the transport session id ("" for transports without one).
	ID string
	// Principal is who the session belongs to; ClientID the OAuth client
	// of its token (when auth is on); Client the name the client gave in
	// initialize.
	Principal, ClientID, Client string
	// TokenID is the jti of the token the session was opened with, Grant
	// its grant (token family id, or the jti of a token without family).
	TokenID, Grant string
	// Transport is how the client is connected ("streamable", "sse" or
	// "stdio"), SourceAddr the IP address it connected from.
	Transport, SourceAddr string
	// Created is when the session was initialized.
	Created time.Time
}

// Sessions lists the clients' sessions with the gateway.
func (g *Gateway) Sessions() []SessionInfo {
	all := g.sessions.all()
	out := make([]SessionInfo, 0, len(all))
	for _, ds := range all {
		out = append(out, ds.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out
}

func (ds *downstreamSession) info() SessionInfo {
	return SessionInfo{ID: ds.ss.ID(), Principal: ds.principal, ClientID: ds.clientID, Client: ds.client,
		TokenID: ds.tokenID, Grant: ds.grant, Transport: ds.transport, SourceAddr: ds.sourceAddr, Created: ds.created}
}

// CloseSessions closes the sessions match selects and returns how many it
// closed. Their clients must start new sessions, which revoked
// credentials cannot.
func (g *Gateway) CloseSessions(match func(SessionInfo) bool) int {
	victims := g.sessions.removeMatching(func(ds *downstreamSession) bool { return match(ds.info()) })
	for _, ds := range victims {
		ds.ss.Close()
	}
	return len(victims)
}

// UpstreamSessionInfo describes a session the gateway holds with an
// upstream on behalf of a principal.
type UpstreamSessionInfo struct {
	Upstream, Principal string
	// Credential is the kind of credential the gateway uses for it.
	Credential string
	// Connected reports whether the session is up right now, and Since
	// when.
	Connected bool
	Since     time.Time
}

// UpstreamSessions lists the gateway's sessions with its upstreams.
func (g *Gateway) UpstreamSessions() []UpstreamSessionInfo {
	var out []UpstreamSessionInfo
	for _, u := range g.upstreamList() {
		cred := "none"
		if c := u.cfg.Credentials; c != nil && c.Type != "" {
			cred = c.Type
		}
		u.mu.Lock()
		for _, us := range u.sessions {
			us.mu.Lock()
			out = append(out, UpstreamSessionInfo{Upstream: u.cfg.Name, Principal: us.principal, Credential: cred, Connected: us.cs != nil, Since: us.since})
			us.mu.Unlock()
		}
		u.mu.Unlock()
	}
	return out
}

// Tasks lists the tasks clients started through the gateway
// (principal "" for everyone's), with their last known status.
func (g *Gateway) Tasks(ctx context.Context, principal string) ([]*store.GatewayTask, error) {
	return g.taskStore.ListGatewayTasks(ctx, principal)
}

// CancelTasks cancels the running tasks of principal at their upstreams
// and returns how many it cancelled. It works on every task concurrently
// and gives up on an upstream that does not answer before ctx ends.
func (g *Gateway) CancelTasks(ctx context.Context, principal string) (int, error) {
	return g.CancelTasksMatching(ctx, func(t *store.GatewayTask) bool { return t.Principal == principal })
}

// CancelTasksMatching cancels the running tasks match selects.
func (g *Gateway) CancelTasksMatching(ctx context.Context, match func(*store.GatewayTask) bool) (int, error) {
	all, err := g.taskStore.ListGatewayTasks(ctx, "")
	if err != nil {
		return 0, err
	}
	var recs []*store.GatewayTask
	for _, t := range all {
		if match(t) {
			recs = append(recs, t)
		}
	}
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		n  int
	)
	for _, rec := range recs {
		if isTerminal(rec.Status) {
			continue
		}
		u := g.upstreamNamed(rec.Upstream)
		if u == nil {
			continue
		}
		if rec.Held() {
			// Held by the gateway (taskapproval.go): no upstream task.
			if g.cancelHeld(rec, "cancelled by revocation") {
				mu.Lock()
				n++
				mu.Unlock()
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			profile := rec.Profile
			if p, ok := g.taskProfiles.Load(rec.ID); ok {
				profile = p.(string)
			}
			// The session the task runs in; after a restart (a revocation
			// recorded while the gateway was stopped) it is opened again.
			cs := u.existing(rec.Principal, profile)
			if cs == nil {
				var err error
				if cs, err = u.sessionAs(ctx, rec.Principal, profile); err != nil {
					u.logger.Warn("cancelling a task of a revoked identity: no session with the upstream", "task", rec.ID, "error", err)
				}
			}
			var res jsontext.Value
			// Whoever reports the cancelled status first (this call's
			// answer, a notification, the watcher's poll), the record
			// says why it ended.
			g.cancelReasons.Store(rec.ID, "cancelled by revocation")
			defer g.cancelReasons.Delete(rec.ID)
			if cs != nil {
				params, _ := withString(nil, "taskId", rec.UpstreamTaskID)
				var err error
				if res, err = cs.CallRaw(ctx, mcp.MethodTasksCancel, params); err != nil {
					u.logger.Debug("cancelling a task", "task", rec.ID, "error", err)
					res = nil
				}
			}
			g.noteStatus(ctx, rec, string(mcp.TaskStatusCancelled), "cancelled by revocation")
			g.tellTaskOwner(rec, res)
			mu.Lock()
			n++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return n, nil
}

// tellTaskOwner sends notifications/tasks/status to the sessions of the
// owner of a task cancelled by revocation that are still connected: the
// task as the upstream answered tasks/cancel (res), or as the gateway
// recorded it.
func (g *Gateway) tellTaskOwner(rec *store.GatewayTask, res jsontext.Value) {
	var params jsontext.Value
	if res != nil && stringOf(res, "status") != "" {
		params, _ = withString(res, "taskId", rec.ID)
	}
	if params == nil {
		t := mcp.Task{TaskID: rec.ID, Status: mcp.TaskStatusCancelled, StatusMessage: rec.StatusMessage,
			CreatedAt: rec.CreatedAt.Format(time.RFC3339Nano), LastUpdatedAt: rec.UpdatedAt.Format(time.RFC3339Nano)}
		raw, err := json.Marshal(&mcp.TaskStatusNotificationParams{Task: t})
		if err != nil {
			return
		}
		params = raw
	}
	g.broadcast(rec.Principal, mcp.NotificationTasksStatus, params, nil)
}
