package gateway

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/inventory"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/store"
)

// Sessions on any replica (Options.SharedSessions). A request naming a
// Streamable HTTP session this process does not hold continues it when
// its record in Options.Sessions is live, was used within the shared
// idle time, and belongs to the request's principal and OAuth client
// (adoptSession): the session is initialized here with what the client
// sent at initialize, kept in the record, so it has the same capabilities
// and protocol version. A DELETE through any replica ends the record; the
// store announces it and the other replicas drop their copy
// (DropSession). Upstream sessions stay per replica: each replica opens
// its own for the principal when it first needs one.

// adoptLookupTimeout bounds the store lookup of a session to adopt.
const adoptLookupTimeout = 2 * time.Second

// clientInit returns params as the JSON kept in a session's record ("" if
// it cannot be encoded).
func clientInit(params *mcp.InitializeParams) string {
	if params == nil {
		return ""
	}
	b, err := json.Marshal(params)
	if err != nil {
		return ""
	}
	return string(b)
}

// adoptSession is the Streamable HTTP handler's AdoptSession: it allows
// continuing session id, opened by another replica, when its record is
// live and not idle, was opened by the request's principal (the token
// subject, or AnonymousPrincipal without authentication) through the same
// OAuth client, and none of them is revoked. It returns the client's
// initialize params from the record, with the protocol version the
// request names (Mcp-Protocol-Version) when it names a supported one.
func (g *Gateway) adoptSession(r *http.Request, id string) (*mcp.InitializeParams, bool) {
	ctx, cancel := context.WithTimeout(r.Context(), adoptLookupTimeout)
	defer cancel()
	rec, err := g.opts.Sessions.GetGatewaySession(ctx, id)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			g.logger.Warn("looking up a session to continue", "session", id, "error", err)
		}
		return nil, false
	}
	if !g.mayAdopt(ctx, r, rec) {
		return nil, false
	}
	params := &mcp.InitializeParams{ProtocolVersion: mcp.LatestProtocolVersion}
	if rec.ClientInit != "" {
		if err := json.Unmarshal([]byte(rec.ClientInit), params); err != nil {
			g.logger.Warn("a session record's initialize params do not decode", "session", id, "error", err)
			return nil, false
		}
	}
	if v := r.Header.Get("Mcp-Protocol-Version"); v != "" && mcp.IsSupportedProtocolVersion(v) {
		params.ProtocolVersion = v
	}
	return params, true
}

// mayAdopt reports whether the request r may continue the session of
// rec.
func (g *Gateway) mayAdopt(ctx context.Context, r *http.Request, rec *store.GatewaySession) bool {
	principal := AnonymousPrincipal
	if g.opts.Principal != nil {
		if p := g.opts.Principal(r.Context()); p != "" {
			principal = p
		}
	}
	switch {
	case !rec.EndedAt.IsZero(), rec.Transport != store.TransportStreamable:
		return false
	case rec.Principal != principal, rec.ClientID != tokenClientID(r.Context()):
		return false
	case time.Since(rec.LastActive()) > g.sessions.idle:
		return false
	}
	if rv := g.opts.Revoker; rv != nil && rv.IsRevoked(ctx, inventory.Match{User: rec.Principal, Client: rec.ClientID, Grant: rec.Grant}) {
		return false
	}
	return true
}

// sessionDeleted is the Streamable HTTP handler's SessionDeleted: the
// client ended the session, so its record ends, and the store announces
// it to the other replicas.
func (g *Gateway) sessionDeleted(id string) {
	g.sessions.write("end", func(ctx context.Context) error {
		return g.opts.Sessions.EndGatewaySession(ctx, id, time.Now().UTC())
	})
}

// DropSession closes the session whose id is id, if this gateway holds it,
// and reports whether it did: another process sharing the session records
// ended it (the client deleted it through another replica, or it was
// revoked there).
func (g *Gateway) DropSession(id string) bool {
	if id == "" {
		return false
	}
	return g.CloseSessions(func(s SessionInfo) bool { return s.ID == id }) > 0
}

// DropEndedSessions drops every shared session this gateway holds whose
// record another process ended, for when announcements of ended sessions
// may have been missed (the store's listening connection was made again).
func (g *Gateway) DropEndedSessions(ctx context.Context) {
	if !g.sessions.shared {
		return
	}
	for _, ds := range g.sessions.all() {
		if !g.sessions.sharedRecord(ds) || ds.recordID == "" {
			continue
		}
		rec, err := g.opts.Sessions.GetGatewaySession(ctx, ds.recordID)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			continue
		}
		if !rec.EndedAt.IsZero() {
			g.DropSession(ds.recordID)
		}
	}
}

// Tasks across replicas. A task is followed (taskwatch.go) by the replica
// through which it was created, in that replica's upstream session; the
// upstream knows it only there. Another replica answers its owner from
// the task's record, which the following replica keeps current: tasks/get
// with the last recorded status, tasks/result once the record shows the
// task ended (the kept result), and tasks/cancel by recording a cancel
// request, which the following replica carries out (pollCancelRequests).

// remoteTaskPoll is how often tasks/result through a replica that does
// not follow the task reads its record until it ends.
const remoteTaskPoll = 100 * time.Millisecond

// remoteResultWait bounds how long tasks/result through a replica that
// does not follow the task waits, once the task ended, for the following
// replica to fetch and keep its result.
const remoteResultWait = 30 * time.Second

// taskElsewhere reports whether task gid is followed by another replica:
// sessions are shared and this gateway does not follow it.
func (g *Gateway) taskElsewhere(gid string) bool {
	if !g.sessions.shared {
		return false
	}
	_, here := g.taskProfiles.Load(gid)
	return !here
}

// answerFromRecord answers a task request of the owner of rec, a task
// another replica follows, from the task's record.
func (g *Gateway) answerFromRecord(ctx context.Context, method, gid string, rec *store.GatewayTask) (any, error) {
	switch method {
	case mcp.MethodTasksGet:
		return taskFromRecord(rec)
	case mcp.MethodTasksCancel:
		if isTerminal(rec.Status) {
			return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "Cannot cancel task: already in terminal status '%s'", rec.Status)
		}
		req := *rec
		req.Status, req.StatusMessage, req.UpdatedAt = string(mcp.TaskStatusCancelled), store.TaskCancelRequested, time.Now().UTC()
		if err := g.taskStore.PutGatewayTask(ctx, &req); err != nil {
			return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "recording the cancel request: %v", err)
		}
		req.StatusMessage = "cancel requested"
		return taskFromRecord(&req)
	case mcp.MethodTasksResult:
		t := time.NewTicker(remoteTaskPoll)
		defer t.Stop()
		var endedAt time.Time // when this replica first saw it ended
		for !isTerminal(rec.Status) || rec.StatusMessage == store.TaskCancelRequested || rec.ResultDigest == "" {
			if isTerminal(rec.Status) && rec.StatusMessage != store.TaskCancelRequested {
				if endedAt.IsZero() {
					endedAt = time.Now()
				} else if time.Since(endedAt) > remoteResultWait {
					break // the result was not fetched: say so below
				}
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-t.C:
			}
			next, err := g.taskStore.GetGatewayTask(ctx, gid)
			if err != nil {
				return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "reading the task: %v", err)
			}
			rec = next
		}
		if res, ok, err := g.storedAnswer(method, gid, rec); ok {
			return res, err
		}
		return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "the task ended (%s) but its result was not kept by the replica that follows it", rec.Status)
	}
	return nil, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "method %s is not a task request", method)
}
