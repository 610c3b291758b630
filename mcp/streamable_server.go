package mcp

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/jsonrpc"
)

// StreamableHTTPOptions configure a StreamableHTTPHandler. The zero value
// selects the defaults.
type StreamableHTTPOptions struct {
	// EventStore keeps the events sent on SSE streams so that clients can
	// resume a stream with GET and Last-Event-ID. Nil means an in-memory
	// store (NewMemoryEventStore with default bounds), unless
	// DisableResumption is set.
	EventStore EventStore
	// DisableResumption turns resumability off: events carry no ids, no
	// priming event is sent and Last-Event-ID is refused.
	DisableResumption bool
	// Stateless serves every POST with a fresh, already initialized
	// session, and assigns no session ids. GET and DELETE are answered
	// with 405, and server-to-client requests fail.
	Stateless bool
	// JSONResponse answers every request with application/json, never
	// with an SSE stream. Notifications and requests a handler sends
	// before its response then go to the session's GET stream, if open.
	JSONResponse bool
	// AllowedOrigins lists Origin header values ("https://app.example.com")
	// accepted in addition to the defaults; "*" accepts any. See
	// DisableDNSRebindingProtection.
	AllowedOrigins []string
	// AllowedHosts lists Host header values (a host, or host:port) accepted
	// in addition to localhost, 127.0.0.1 and [::1]; "*" accepts any.
	// Setting it turns Host checking on for every listener.
	AllowedHosts []string
	// DisableDNSRebindingProtection turns off the Host and Origin checks.
	// By default, requests that arrive on a loopback address must carry a
	// local Host (and Origin, if any), and on other listeners an Origin
	// must be the request's own origin or an allowed one; others get 403.
	DisableDNSRebindingProtection bool
	// MaxBodyBytes limits the size of a POST body; larger bodies get 413.
	// Zero means jsonrpc.DefaultMaxMessageSize (4 MiB).
	MaxBodyBytes int64
	// SessionTimeout closes sessions that have had no HTTP request in
	// progress (an open GET stream counts) for this long; their ids then get
	// 404 and clients start new sessions. Zero means 30 minutes; a negative
	// value keeps sessions until they are deleted or closed.
	SessionTimeout time.Duration
	// MaxSessions bounds the number of live sessions; an initialize beyond
	// it gets 503 with Retry-After. Zero means 10000; a negative value
	// means no bound.
	MaxSessions int
	// MaxSessionsPerPrincipal bounds the live sessions of one principal
	// (see SessionPrincipal), and MaxSessionsPerAddress those opened from
	// one source IP address; an initialize beyond either gets 429 with
	// Retry-After, so that one party cannot fill the table of MaxSessions.
	// Zero or less means no bound.
	MaxSessionsPerPrincipal int
	MaxSessionsPerAddress   int
	// MaxStreamsPerSession, MaxStreamsPerPrincipal and
	// MaxStreamsPerAddress bound the streams open at once: GET streams
	// (the standalone stream and resumed ones) and POST requests being
	// answered, of one session, of one principal (see SessionPrincipal)
	// and from one source IP address. One beyond gets 429 with
	// Retry-After: 1. Zero means DefaultMaxStreamsPerSession (32),
	// DefaultMaxStreamsPerPrincipal (256) and DefaultMaxStreamsPerAddress
	// (1024); a negative value means no bound.
	MaxStreamsPerSession   int
	MaxStreamsPerPrincipal int
	MaxStreamsPerAddress   int
	// RetryInterval is the reconnection delay sent in the retry field of
	// priming events. Zero means one second.
	RetryInterval time.Duration
	// KeepAlive, if positive, sends an SSE comment on every open stream
	// that has been silent for this long, so that proxies keep it open.
	KeepAlive time.Duration
	// Logger receives the transport's diagnostics. Nil discards them.
	Logger *slog.Logger
	// SessionPrincipal, if set, names the principal (for example the
	// subject of the bearer token) a request is made by. A session is bound
	// to the principal of its initialize request; requests on it by another
	// principal get 404, as if the session did not exist.
	SessionPrincipal func(*http.Request) string
	// AdoptSession, if set, is asked about a request naming a session id
	// this handler does not hold (one opened by another process sharing
	// the sessions' records, such as another replica). If it returns
	// initialize parameters and true, the handler recreates the session
	// under that id, bound to the request's principal (SessionPrincipal),
	// initialized with those parameters as if the client had sent them
	// (the server's answer is discarded), and serves the request on it;
	// otherwise the request gets 404 as usual. The callback must check
	// that the request may continue the session (the same principal, the
	// session not ended). The session bounds (MaxSessions and the others)
	// apply to adopted sessions as to new ones.
	AdoptSession func(r *http.Request, id string) (*InitializeParams, bool)
	// SessionDeleted, if set, is called with the id of a session that a
	// client ended with DELETE, after the session closed here, so that
	// other processes sharing the session can end it too.
	SessionDeleted func(id string)
}

// StreamableHTTPHandler is an http.Handler that serves the MCP Streamable
// HTTP transport (revision 2025-11-25 and the earlier revisions that use
// it) on one endpoint: POST carries client messages, GET opens the
// server's standalone SSE stream or resumes a stream, DELETE ends a
// session.
//
// A request's handler runs on the goroutine of the HTTP request that
// carried it. Its response is sent as application/json unless the handler
// first sends the client a related notification or request, in which case
// the response becomes an SSE stream. Client disconnection does not cancel
// the handler (the spec asks clients to cancel explicitly); closing the
// session does.
type StreamableHTTPHandler struct {
	getServer func(*http.Request) *Server
	opts      StreamableHTTPOptions
	store     EventStore // nil without resumption
	policy    originPolicy
	logger    *slog.Logger
	maxBody   int64
	retryMS   int64

	mu       sync.Mutex
	sessions map[string]*streamableServerConn
	limits   *sessionLimits
	streams  *streamLimits
}

// NewStreamableHTTPHandler returns a handler that serves sessions of the
// server getServer returns for the request that starts each session
// (getServer may return the same server every time). If getServer returns
// nil the request is refused with 400.
func NewStreamableHTTPHandler(getServer func(*http.Request) *Server, opts *StreamableHTTPOptions) *StreamableHTTPHandler {
	h := &StreamableHTTPHandler{getServer: getServer, sessions: make(map[string]*streamableServerConn)}
	if opts != nil {
		h.opts = *opts
	}
	h.logger = h.opts.Logger
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	if !h.opts.DisableResumption && !h.opts.Stateless {
		h.store = h.opts.EventStore
		if h.store == nil {
			h.store = NewMemoryEventStore(nil)
		}
	}
	h.policy = originPolicy{
		disabled: h.opts.DisableDNSRebindingProtection,
		origins:  h.opts.AllowedOrigins,
		hosts:    h.opts.AllowedHosts,
	}
	h.maxBody = h.opts.MaxBodyBytes
	if h.maxBody <= 0 {
		h.maxBody = jsonrpc.DefaultMaxMessageSize
	}
	if h.opts.SessionTimeout == 0 {
		h.opts.SessionTimeout = 30 * time.Minute
	}
	if h.opts.MaxSessions == 0 {
		h.opts.MaxSessions = 10000
	}
	h.limits = newSessionLimits(h.opts.MaxSessions, h.opts.MaxSessionsPerPrincipal, h.opts.MaxSessionsPerAddress)
	orDefault := func(n, def int) int {
		if n == 0 {
			return def
		}
		return n
	}
	h.streams = newStreamLimits(orDefault(h.opts.MaxStreamsPerSession, DefaultMaxStreamsPerSession),
		orDefault(h.opts.MaxStreamsPerPrincipal, DefaultMaxStreamsPerPrincipal), orDefault(h.opts.MaxStreamsPerAddress, DefaultMaxStreamsPerAddress))
	h.retryMS = h.opts.RetryInterval.Milliseconds()
	if h.retryMS <= 0 {
		h.retryMS = 1000
	}
	return h
}

// Close ends every session of the handler.
func (h *StreamableHTTPHandler) Close() error {
	h.mu.Lock()
	conns := make([]*streamableServerConn, 0, len(h.sessions))
	for _, c := range h.sessions {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.closeSession()
	}
	return nil
}

// OpenStreams returns the number of streams the handler has open: GET
// streams (the standalone stream, resumptions, subscriptions/listen) and
// POST requests being answered.
func (h *StreamableHTTPHandler) OpenStreams() int {
	return h.streams.open()
}

// ServeHTTP implements http.Handler.
func (h *StreamableHTTPHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := h.policy.check(r); err != nil {
		writeHTTPError(w, http.StatusForbidden, jsonrpc.CodeInvalidRequest, "forbidden: "+err.Error())
		return
	}
	if v := r.Header.Get(headerProtocolVersion); v != "" && !IsSupportedProtocolVersion(v) && r.Method != http.MethodPost {
		writeHTTPError(w, http.StatusBadRequest, jsonrpc.CodeInvalidRequest,
			fmt.Sprintf("unsupported MCP-Protocol-Version %q (supported: %v)", v, SupportedProtocolVersions()))
		return
	}
	switch r.Method {
	case http.MethodPost:
		h.servePOST(w, r)
	case http.MethodGet:
		h.serveGET(w, r)
	case http.MethodDelete:
		h.serveDELETE(w, r)
	default:
		if h.opts.Stateless {
			w.Header().Set("Allow", "POST")
		} else {
			w.Header().Set("Allow", "GET, POST, DELETE")
		}
		writeHTTPError(w, http.StatusMethodNotAllowed, jsonrpc.CodeInvalidRequest, "method "+r.Method+" is not allowed on the MCP endpoint")
	}
}

// session returns the session a request names, answering the request
// itself (400 or 404) when there is none.
func (h *StreamableHTTPHandler) session(w http.ResponseWriter, r *http.Request) *streamableServerConn {
	id := r.Header.Get(headerSessionID)
	if id == "" {
		writeHTTPError(w, http.StatusBadRequest, jsonrpc.CodeInvalidRequest, "missing Mcp-Session-Id header: initialize a session first")
		return nil
	}
	h.mu.Lock()
	c := h.sessions[id]
	h.mu.Unlock()
	if c == nil && h.opts.AdoptSession != nil && !h.opts.Stateless {
		var answered bool
		if c, answered = h.adopt(w, r, id); answered {
			return nil
		}
	}
	if c == nil || c.isClosed() || (h.opts.SessionPrincipal != nil && h.opts.SessionPrincipal(r) != c.principal) {
		writeHTTPError(w, http.StatusNotFound, jsonrpc.CodeInvalidRequest, "session not found: it has ended or never existed; initialize a new session")
		return nil
	}
	return c
}

func (h *StreamableHTTPHandler) servePOST(w http.ResponseWriter, r *http.Request) {
	jsonOK, sseOK := acceptsTypes(r.Header)
	if !jsonOK || (!sseOK && !h.opts.JSONResponse) {
		writeHTTPError(w, http.StatusNotAcceptable, jsonrpc.CodeInvalidRequest, "the Accept header must list application/json and text/event-stream")
		return
	}
	msg, ok := readPOSTMessage(w, r, h.maxBody)
	if !ok {
		return
	}
	req, _ := msg.(*jsonrpc.Request)
	if isModernPOST(r, req) && h.serveModern(w, r, req) { // modern_http.go
		return
	}
	if v := r.Header.Get(headerProtocolVersion); v != "" && !IsSupportedProtocolVersion(v) {
		writeHTTPError(w, http.StatusBadRequest, jsonrpc.CodeInvalidRequest,
			fmt.Sprintf("unsupported MCP-Protocol-Version %q (supported: %v)", v, SupportedProtocolVersions()))
		return
	}
	isCall := req != nil && !req.IsNotification()
	if h.opts.Stateless {
		h.serveStateless(w, r, msg, req, isCall)
		return
	}
	var c *streamableServerConn
	isInit := isCall && req.Method == MethodInitialize && r.Header.Get(headerSessionID) == ""
	if isInit {
		if c = h.newSession(w, r); c == nil {
			return
		}
	} else if c = h.session(w, r); c == nil {
		return
	}
	if isCall && !isInit {
		slot, ok := h.openStream(w, r, c)
		if !ok {
			return
		}
		defer slot.release()
	}
	c.enter()
	defer c.leave()
	if !isCall {
		c.deliver(&requestContext{Context: c.ctx, vals: r.Context()}, msg)
		w.WriteHeader(http.StatusAccepted)
		return
	}
	c.serveCall(w, r, req, isInit)
}

// errorMessage returns the message of a JSON-RPC error, or err's text.
func errorMessage(err error) string {
	var e *jsonrpc.Error
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}

// newSession starts a session for an initialize request, or answers the
// request with an error and returns nil.
func (h *StreamableHTTPHandler) newSession(w http.ResponseWriter, r *http.Request) *streamableServerConn {
	srv := h.getServer(r)
	if srv == nil {
		writeHTTPError(w, http.StatusBadRequest, jsonrpc.CodeInvalidRequest, "no MCP server is available for this request")
		return nil
	}
	principal := ""
	if h.opts.SessionPrincipal != nil {
		principal = h.opts.SessionPrincipal(r)
	}
	release, refused := h.limits.acquire(r, principal)
	if refused != nil {
		h.logger.Warn("mcp: session refused", "reason", refused.msg, "remote", r.RemoteAddr)
		refused.write(w)
		return nil
	}
	c := newStreamableServerConn(h, rand.Text())
	c.principal = principal
	c.release = release
	ss, err := srv.Connect(c.ctx, streamableConnTransport{c}, nil)
	if err != nil {
		c.Close()
		h.logger.Error("mcp: starting session", "error", err)
		writeHTTPError(w, http.StatusInternalServerError, jsonrpc.CodeInternalError, "cannot start a session")
		return nil
	}
	c.ss = ss
	if h.opts.SessionTimeout > 0 {
		// Armed after the assignment, so that checkIdle sees c.idle.
		c.idle = time.AfterFunc(math.MaxInt64, c.checkIdle)
		c.idle.Reset(h.opts.SessionTimeout)
	}
	h.mu.Lock()
	h.sessions[c.id] = c
	h.mu.Unlock()
	return c
}

// openStream counts a GET stream or a POST request of session c against
// the bounds on open streams, or answers the request with 429.
func (h *StreamableHTTPHandler) openStream(w http.ResponseWriter, r *http.Request, c *streamableServerConn) (slot streamSlot, ok bool) {
	slot, refused := h.streams.acquire(r, c.id, c.principal)
	if refused != nil {
		h.logger.Warn("mcp: stream refused", "reason", refused.msg, "remote", r.RemoteAddr)
		refused.write(w)
		return streamSlot{}, false
	}
	return slot, true
}

// removeSession forgets session id if c holds it (an adopted duplicate
// that lost the race holds nothing).
func (h *StreamableHTTPHandler) removeSession(id string, c *streamableServerConn) {
	h.mu.Lock()
	if h.sessions[id] == c {
		delete(h.sessions, id)
	}
	h.mu.Unlock()
}

// serveStateless serves one POST with a throwaway session.
func (h *StreamableHTTPHandler) serveStateless(w http.ResponseWriter, r *http.Request, msg jsonrpc.Message, req *jsonrpc.Request, isCall bool) {
	if !isCall {
		// Notifications and responses have nothing to act on without a
		// session.
		w.WriteHeader(http.StatusAccepted)
		return
	}
	srv := h.getServer(r)
	if srv == nil {
		writeHTTPError(w, http.StatusBadRequest, jsonrpc.CodeInvalidRequest, "no MCP server is available for this request")
		return
	}
	c := newStreamableServerConn(h, "")
	c.stateless = true
	ss, err := srv.Connect(c.ctx, streamableConnTransport{c}, nil)
	if err != nil {
		c.Close()
		writeHTTPError(w, http.StatusInternalServerError, jsonrpc.CodeInternalError, "cannot start a session")
		return
	}
	defer ss.Close()
	c.ss = ss
	if req.Method != MethodInitialize {
		// Initialize the session on the client's behalf, with the version
		// its header names (2025-03-26 when absent, as the spec says).
		version := r.Header.Get(headerProtocolVersion)
		if version == "" {
			version = Version20250326
		}
		params, _ := json.Marshal(&InitializeParams{
			ProtocolVersion: version,
			ClientInfo:      Implementation{Name: "stateless-client", Version: "0"},
		})
		discard := &stream{c: c, post: true, discard: true}
		c.deliver(&requestContext{Context: c.ctx, vals: r.Context(), s: discard},
			&jsonrpc.Request{ID: jsonrpc.StringID("stateless-initialize"), Method: MethodInitialize, Params: params})
		c.deliver(&requestContext{Context: c.ctx, vals: r.Context()}, &jsonrpc.Request{Method: NotificationInitialized})
	}
	c.serveCall(w, r, req, false)
}

func (h *StreamableHTTPHandler) serveGET(w http.ResponseWriter, r *http.Request) {
	if h.opts.Stateless {
		w.Header().Set("Allow", "POST")
		writeHTTPError(w, http.StatusMethodNotAllowed, jsonrpc.CodeInvalidRequest, "this stateless server offers no SSE stream")
		return
	}
	if _, sseOK := acceptsTypes(r.Header); !sseOK {
		writeHTTPError(w, http.StatusNotAcceptable, jsonrpc.CodeInvalidRequest, "the Accept header must list text/event-stream")
		return
	}
	c := h.session(w, r)
	if c == nil {
		return
	}
	slot, ok := h.openStream(w, r, c)
	if !ok {
		return
	}
	defer slot.release()
	c.enter()
	defer c.leave()
	if last := r.Header.Get(headerLastEventID); last != "" {
		c.resume(w, r, last)
		return
	}
	c.serveStandalone(w, r)
}

func (h *StreamableHTTPHandler) serveDELETE(w http.ResponseWriter, r *http.Request) {
	if h.opts.Stateless {
		w.Header().Set("Allow", "POST")
		writeHTTPError(w, http.StatusMethodNotAllowed, jsonrpc.CodeInvalidRequest, "this stateless server has no sessions to delete")
		return
	}
	c := h.session(w, r)
	if c == nil {
		return
	}
	c.closeSession()
	if h.opts.SessionDeleted != nil {
		h.opts.SessionDeleted(c.id)
	}
	w.WriteHeader(http.StatusNoContent)
}

// adopt recreates the session id, which this handler does not hold, when
// AdoptSession allows it; it returns nil otherwise (the caller answers
// 404), or answered true when it answered the request itself (the
// session bounds refused it). Two requests adopting the same id at once
// get one session.
func (h *StreamableHTTPHandler) adopt(w http.ResponseWriter, r *http.Request, id string) (_ *streamableServerConn, answered bool) {
	params, ok := h.opts.AdoptSession(r, id)
	if !ok || params == nil {
		return nil, false
	}
	srv := h.getServer(r)
	if srv == nil {
		return nil, false
	}
	principal := ""
	if h.opts.SessionPrincipal != nil {
		principal = h.opts.SessionPrincipal(r)
	}
	release, refused := h.limits.acquire(r, principal)
	if refused != nil {
		h.logger.Warn("mcp: session not adopted", "reason", refused.msg, "remote", r.RemoteAddr)
		refused.write(w)
		return nil, true
	}
	c := newStreamableServerConn(h, id)
	c.principal = principal
	c.release = release
	ss, err := srv.Connect(c.ctx, streamableConnTransport{c}, nil)
	if err != nil {
		c.Close()
		h.logger.Error("mcp: adopting session", "error", err)
		return nil, false
	}
	c.ss = ss
	raw, err := json.Marshal(params)
	if err != nil {
		ss.Close()
		return nil, false
	}
	vals := context.WithValue(r.Context(), adoptedKey{}, true)
	discard := &stream{c: c, post: true, discard: true}
	c.deliver(&requestContext{Context: c.ctx, vals: vals, s: discard},
		&jsonrpc.Request{ID: jsonrpc.StringID("adopt-initialize"), Method: MethodInitialize, Params: raw})
	c.deliver(&requestContext{Context: c.ctx, vals: vals}, &jsonrpc.Request{Method: NotificationInitialized})
	if h.opts.SessionTimeout > 0 {
		c.idle = time.AfterFunc(math.MaxInt64, c.checkIdle)
		c.idle.Reset(h.opts.SessionTimeout)
	}
	h.mu.Lock()
	if other := h.sessions[id]; other != nil {
		h.mu.Unlock()
		ss.Close() // another request adopted it first
		return other, false
	}
	h.sessions[id] = c
	h.mu.Unlock()
	h.logger.Debug("mcp: adopted session", "session", id)
	return c, false
}

type adoptedKey struct{}

// SessionAdopted reports whether ctx is that of the initialize request a
// StreamableHTTPHandler replays to adopt a session another process opened
// (StreamableHTTPOptions.AdoptSession), rather than a client's own.
func SessionAdopted(ctx context.Context) bool {
	v, _ := ctx.Value(adoptedKey{}).(bool)
	return v
}

// streamableConnTransport hands an existing connection to Server.Connect.
type streamableConnTransport struct{ c *streamableServerConn }

func (t streamableConnTransport) Connect(context.Context) (Connection, error) { return t.c, nil }

// streamableServerConn is the server side of one Streamable HTTP session.
// It implements pushConnection: messages are delivered to the session on
// the goroutines of the HTTP requests that carry them.
type streamableServerConn struct {
	h         *StreamableHTTPHandler
	id        string
	principal string
	release   func() // gives back the session's place in h.limits
	stateless bool
	ss        *ServerSession

	// ctx is cancelled when the session ends; handler contexts derive
	// their cancellation from it.
	ctx    context.Context
	cancel context.CancelFunc

	deliverFn func(ctx context.Context, msg jsonrpc.Message)
	prime     atomic.Bool // the negotiated version knows priming events

	standalone *stream

	mu         sync.Mutex
	closed     bool
	nextStream int64              // id of the last POST stream that became an SSE stream
	streams    map[string]*stream // live POST streams, for resumption

	active   atomic.Int32
	lastSeen atomic.Int64
	idle     *time.Timer

	closeOnce sync.Once
}

func newStreamableServerConn(h *StreamableHTTPHandler, id string) *streamableServerConn {
	c := &streamableServerConn{h: h, id: id}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.standalone = &stream{c: c, id: "0"}
	return c
}

func (c *streamableServerConn) setDeliver(f func(ctx context.Context, msg jsonrpc.Message)) {
	c.deliverFn = f
}

func (c *streamableServerConn) deliver(ctx context.Context, msg jsonrpc.Message) {
	c.deliverFn(ctx, msg)
}

func (c *streamableServerConn) setProtocolVersion(v string) {
	c.prime.Store(v >= Version20251125)
}

// SessionID implements Connection.
func (c *streamableServerConn) SessionID() string { return c.id }

// Read implements Connection. Messages are pushed to the session instead,
// so Read only waits for the connection to close.
func (c *streamableServerConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	select {
	case <-c.ctx.Done():
		return nil, ErrConnectionClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *streamableServerConn) isClosed() bool {
	return c.ctx.Err() != nil
}

// closeSession ends the session (and through it the connection).
func (c *streamableServerConn) closeSession() {
	if c.ss != nil {
		c.ss.Close()
	} else {
		c.Close()
	}
}

// Close implements Connection: it ends the session's streams and forgets
// the session, after which its id gets 404.
func (c *streamableServerConn) Close() error {
	c.closeOnce.Do(func() {
		if c.id != "" {
			c.h.removeSession(c.id, c)
		}
		if c.release != nil {
			c.release()
		}
		c.cancel()
		if c.idle != nil {
			c.idle.Stop()
		}
		c.mu.Lock()
		c.closed = true
		streams := make([]*stream, 0, len(c.streams)+1)
		streams = append(streams, c.standalone)
		for _, s := range c.streams {
			streams = append(streams, s)
		}
		c.streams = nil
		c.mu.Unlock()
		for _, s := range streams {
			s.mu.Lock()
			if s.attach != nil {
				// A GET is attached: end it. POST goroutines end their own
				// responses when their handlers return.
				s.detachLocked()
			}
			s.mu.Unlock()
		}
		if c.h.store != nil && c.id != "" {
			if err := c.h.store.SessionClosed(context.Background(), c.id); err != nil {
				c.h.logger.Warn("mcp: event store: closing session", "error", err)
			}
		}
	})
	return nil
}

// enter and leave bracket every HTTP request on the session, for the idle
// timeout.
func (c *streamableServerConn) enter() { c.active.Add(1) }

func (c *streamableServerConn) leave() {
	if c.idle != nil {
		c.lastSeen.Store(time.Now().UnixNano())
	}
	c.active.Add(-1)
}

func (c *streamableServerConn) checkIdle() {
	timeout := c.h.opts.SessionTimeout
	if c.active.Load() > 0 {
		c.idle.Reset(timeout)
		return
	}
	if rest := timeout - time.Since(time.Unix(0, c.lastSeen.Load())); c.lastSeen.Load() != 0 && rest > 0 {
		c.idle.Reset(rest)
		return
	}
	c.h.logger.Debug("mcp: closing idle session", "session", c.id)
	c.closeSession()
}

// Write implements Connection. Messages related to a request in progress go
// to that request's stream; the rest go to the standalone GET stream.
func (c *streamableServerConn) Write(ctx context.Context, msg jsonrpc.Message) error {
	if s, _ := ctx.Value(streamKey{}).(*stream); s != nil && s.c == c && s.post {
		if handled, err := s.writeRelated(ctx, msg); handled {
			return err
		}
	}
	return c.writeUnrelated(ctx, msg)
}

// errNoStream is reported for server-to-client requests that no stream can
// carry.
var errNoStream = errors.New("mcp: no SSE stream is open to the client")

func (c *streamableServerConn) writeUnrelated(ctx context.Context, msg jsonrpc.Message) error {
	var method string
	switch m := msg.(type) {
	case *jsonrpc.Response:
		return fmt.Errorf("mcp: the HTTP request for the response to request %s has ended", m.ID)
	case *jsonrpc.Request:
		if !m.IsNotification() {
			if c.stateless {
				return fmt.Errorf("mcp: cannot send %s: a stateless server cannot make requests to the client outside a request's stream: %w", m.Method, errNoStream)
			}
		}
		method = m.Method
	}
	if c.isClosed() {
		return ErrConnectionClosed
	}
	s := c.standalone
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w == nil {
		if req := msg.(*jsonrpc.Request); !req.IsNotification() {
			return fmt.Errorf("mcp: cannot send %s: the client has no GET stream open for server-initiated messages: %w", method, errNoStream)
		}
		if c.h.store != nil && s.opened {
			// Keep it for the client's reconnection.
			return s.storeLocked(ctx, msg)
		}
		c.h.logger.Debug("mcp: dropping notification: no GET stream open", "method", method, "session", c.id)
		return nil
	}
	return s.writeEventLocked(ctx, msg)
}

// A stream is one logical SSE stream of a session: the standalone stream
// (id "0", opened by GET) or the stream of one POSTed request. Its HTTP
// connection may change: a POST stream starts on its POST and may move to
// a GET that resumes it.
type stream struct {
	c       *streamableServerConn
	id      string // "" for a POST stream that has not become an SSE stream
	post    bool
	discard bool // messages are dropped (stateless pre-initialization)

	mu       sync.Mutex
	w        http.ResponseWriter // current connection; nil when detached
	own      bool                // w is the POST's own response
	chunked  bool                // the POST's response uses chunked encoding
	init     bool                // the POST carries initialize
	sse      bool                // the response is an SSE stream
	jsonSent bool                // the response was sent as application/json
	finished bool                // the request's handler has returned or its response was sent
	hijacked bool                // the POST connection was taken over and closed
	opened   bool                // the standalone stream was opened at least once
	failed   bool                // the initialize response was an error
	seq      int64               // sequence number of the last event
	attach   chan struct{}       // closed when the attached GET must end
	ka       *time.Timer         // keep-alive timer while attached

	rc requestContext // the context of a POST's request (allocated with it)
}

type streamKey struct{}

// requestContext is the context of a delivered message: it is cancelled
// when the session ends (not when the HTTP client disconnects), carries the
// values of the HTTP request's context, and knows the stream of the
// request.
type requestContext struct {
	context.Context                 // the session's context
	vals            context.Context // the HTTP request's context
	s               *stream
}

func (c *requestContext) Value(key any) any {
	if _, ok := key.(streamKey); ok {
		return c.s
	}
	// The session's context answers first, so that contexts derived from
	// this one attach to its cancellation directly.
	if v := c.Context.Value(key); v != nil {
		return v
	}
	return c.vals.Value(key)
}

// serveCall serves a POST carrying a request.
func (c *streamableServerConn) serveCall(w http.ResponseWriter, r *http.Request, req *jsonrpc.Request, isInit bool) {
	s := &stream{c: c, post: true, w: w, own: true, init: isInit, chunked: r.ProtoAtLeast(1, 1)}
	s.rc = requestContext{Context: c.ctx, vals: r.Context(), s: s}
	if isInit {
		w.Header().Set(headerSessionID, c.id)
	}
	c.deliver(&s.rc, req)

	s.mu.Lock()
	if !s.hijacked && s.own && s.w != nil && !s.sse && !s.jsonSent {
		// No response was sent: the client cancelled the request, or the
		// session ended. Answer with an empty event stream.
		if c.isClosed() && !isInit {
			writeHTTPError(w, http.StatusNotFound, jsonrpc.CodeInvalidRequest, "session ended before the request was answered")
		} else {
			writeSSEHeaders(w)
		}
	}
	if s.own {
		s.stopKeepAliveLocked()
		s.w = nil
		s.own = false
	}
	if !s.finished {
		s.finished = true
		if s.attach != nil {
			s.detachLocked()
		}
	}
	id, failed := s.id, s.failed
	s.mu.Unlock()
	if id != "" {
		c.forgetStream(id)
	}
	if isInit && failed {
		c.closeSession()
	}
}

func (c *streamableServerConn) forgetStream(id string) {
	c.mu.Lock()
	delete(c.streams, id)
	c.mu.Unlock()
}

// writeRelated writes a message related to the stream's request. It
// reports false if the message must go to the standalone stream instead.
func (s *stream) writeRelated(ctx context.Context, msg jsonrpc.Message) (bool, error) {
	if s.discard {
		return true, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	resp, isResp := msg.(*jsonrpc.Response)
	if s.finished {
		if isResp {
			return true, fmt.Errorf("mcp: request %s was already answered", resp.ID)
		}
		return false, nil // late message: not related to a live stream
	}
	if isResp && s.init && resp.Error != nil {
		s.failed = true
	}
	if req, ok := msg.(*jsonrpc.Request); ok && !req.IsNotification() && s.c.stateless {
		// The client's answer would come in a POST that no session
		// receives.
		return true, fmt.Errorf("mcp: cannot send %s: a stateless server cannot make requests to the client: %w", req.Method, errNoStream)
	}
	if !s.sse {
		if isResp && s.own && s.w != nil {
			return true, s.writeJSONLocked(resp)
		}
		if s.c.h.opts.JSONResponse {
			return false, nil
		}
		s.startSSELocked(false)
	}
	err := s.writeEventLocked(ctx, msg)
	if isResp {
		s.finished = true
		if s.attach != nil {
			// A resuming GET carries the stream: the response ends it.
			s.detachLocked()
		}
	}
	return true, err
}

// writeJSONLocked sends the response as the POST's application/json body.
func (s *stream) writeJSONLocked(resp *jsonrpc.Response) error {
	bp := getBuf()
	defer putBuf(bp)
	b, err := jsonrpc.AppendMessage((*bp)[:0], resp)
	if err != nil {
		return fmt.Errorf("mcp: encoding response: %w", err)
	}
	*bp = b
	h := s.w.Header()
	h.Set("Content-Type", "application/json")
	if s.init && resp.Error != nil {
		h.Del(headerSessionID)
	}
	if len(b) > 2048 {
		// Small bodies get a Content-Length from net/http itself.
		h.Set("Content-Length", strconv.Itoa(len(b)))
	}
	s.w.WriteHeader(http.StatusOK)
	s.jsonSent = true
	s.finished = true
	if _, err := s.w.Write(b); err != nil {
		return fmt.Errorf("mcp: writing response: %w", err)
	}
	return nil
}

// startSSELocked turns the POST's response into an SSE stream: headers,
// then the priming event when resumption is on and the client's protocol
// version expects it (or force is set).
func (s *stream) startSSELocked(force bool) {
	s.sse = true
	c := s.c
	if c.h.store != nil {
		c.mu.Lock()
		c.nextStream++
		s.id = strconv.FormatInt(c.nextStream, 10)
		if c.streams == nil {
			c.streams = make(map[string]*stream)
		}
		if !c.closed {
			c.streams[s.id] = s
		}
		c.mu.Unlock()
	}
	if s.w == nil {
		return
	}
	writeSSEHeaders(s.w)
	if c.h.store != nil && (force || c.prime.Load()) {
		s.writePrimingLocked()
	}
	s.flushLocked()
	s.startKeepAliveLocked()
}

// writePrimingLocked sends an event with the stream's current id, empty
// data and the retry interval.
func (s *stream) writePrimingLocked() {
	bp := getBuf()
	idb := appendEventID(make([]byte, 0, 24), s.id, s.seq)
	*bp = appendSSEPriming((*bp)[:0], string(idb), s.c.h.retryMS)
	s.rawWriteLocked(*bp)
	putBuf(bp)
}

// storeLocked appends msg to the event store as the stream's next event,
// without sending it.
func (s *stream) storeLocked(ctx context.Context, msg jsonrpc.Message) error {
	c := s.c
	if c.h.store == nil || s.id == "" {
		return nil
	}
	bp := getBuf()
	defer putBuf(bp)
	data, err := jsonrpc.AppendMessage((*bp)[:0], msg)
	if err != nil {
		return fmt.Errorf("mcp: encoding message: %w", err)
	}
	*bp = data
	s.seq++
	if !c.isClosed() {
		if err := c.h.store.Append(context.WithoutCancel(ctx), c.id, s.id, s.seq, data); err != nil {
			c.h.logger.Warn("mcp: event store: append", "session", c.id, "error", err)
		}
	}
	return nil
}

// writeEventLocked sends msg as the stream's next event, storing it first
// when resumption is on. A failed write detaches the connection; the
// client can then resume from the store.
func (s *stream) writeEventLocked(ctx context.Context, msg jsonrpc.Message) error {
	dp := getBuf()
	defer putBuf(dp)
	data, err := jsonrpc.AppendMessage((*dp)[:0], msg)
	if err != nil {
		return fmt.Errorf("mcp: encoding message: %w", err)
	}
	*dp = data
	c := s.c
	var idb []byte
	stored := false
	if c.h.store != nil && s.id != "" {
		s.seq++
		if !c.isClosed() {
			if err := c.h.store.Append(context.WithoutCancel(ctx), c.id, s.id, s.seq, data); err != nil {
				c.h.logger.Warn("mcp: event store: append", "session", c.id, "error", err)
			} else {
				stored = true
			}
		}
		idb = appendEventID(make([]byte, 0, 24), s.id, s.seq)
	}
	if s.w == nil {
		if stored {
			return nil
		}
		return fmt.Errorf("mcp: the client's stream is disconnected: %w", errNoStream)
	}
	ep := getBuf()
	defer putBuf(ep)
	*ep = appendSSEEvent((*ep)[:0], string(idb), data)
	if err := s.rawWriteLocked(*ep); err != nil && !stored {
		return fmt.Errorf("mcp: writing event: %w", err)
	}
	return nil
}

// rawWriteLocked writes and flushes bytes on the attached connection; a
// failure detaches it.
func (s *stream) rawWriteLocked(b []byte) error {
	if s.w == nil {
		return errNoStream
	}
	_, err := s.w.Write(b)
	if err == nil {
		err = s.flushLocked()
	}
	if err != nil {
		s.c.h.logger.Debug("mcp: SSE write failed; detaching", "session", s.c.id, "stream", s.id, "error", err)
		s.detachLocked()
	}
	if s.ka != nil {
		s.ka.Reset(s.c.h.opts.KeepAlive)
	}
	return err
}

func (s *stream) flushLocked() error {
	switch f := s.w.(type) {
	case interface{ FlushError() error }:
		return f.FlushError()
	case http.Flusher:
		f.Flush()
	}
	return nil
}

// detachLocked forgets the current connection; an attached GET returns.
func (s *stream) detachLocked() {
	s.stopKeepAliveLocked()
	s.w = nil
	if s.attach != nil {
		close(s.attach)
		s.attach = nil
	}
}

func (s *stream) startKeepAliveLocked() {
	ka := s.c.h.opts.KeepAlive
	if ka <= 0 || s.w == nil || s.ka != nil {
		return
	}
	w := s.w
	s.ka = time.AfterFunc(ka, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.w != w || s.ka == nil {
			return
		}
		s.rawWriteLocked([]byte(": keep-alive\n\n"))
	})
}

func (s *stream) stopKeepAliveLocked() {
	if s.ka != nil {
		s.ka.Stop()
		s.ka = nil
	}
}

// attachLocked makes w the stream's connection and returns a channel that
// is closed when the GET must end.
func (s *stream) attachLocked(w http.ResponseWriter) chan struct{} {
	if s.w != nil {
		s.detachLocked() // the old connection is gone or being replaced
	}
	s.w = w
	s.own = false
	s.attach = make(chan struct{})
	s.startKeepAliveLocked()
	return s.attach
}

func writeSSEHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
}

// serveStandalone serves a GET that opens the standalone stream.
func (c *streamableServerConn) serveStandalone(w http.ResponseWriter, r *http.Request) {
	s := c.standalone
	s.mu.Lock()
	if s.w != nil {
		s.mu.Unlock()
		writeHTTPError(w, http.StatusConflict, jsonrpc.CodeInvalidRequest, "a GET stream is already open for this session")
		return
	}
	if c.isClosed() {
		s.mu.Unlock()
		writeHTTPError(w, http.StatusNotFound, jsonrpc.CodeInvalidRequest, "session not found")
		return
	}
	writeSSEHeaders(w)
	done := s.attachLocked(w)
	s.opened = true
	if c.h.store != nil && c.prime.Load() {
		s.writePrimingLocked()
	}
	s.flushLocked()
	s.mu.Unlock()
	c.waitAttached(r, s, w, done)
}

// waitAttached holds a GET open until its stream no longer needs it, the
// client goes away or the session ends.
func (c *streamableServerConn) waitAttached(r *http.Request, s *stream, w http.ResponseWriter, done chan struct{}) {
	select {
	case <-done:
	case <-r.Context().Done():
	case <-c.ctx.Done():
	}
	s.mu.Lock()
	if s.w == w {
		s.detachLocked()
	}
	s.mu.Unlock()
}

// resume serves a GET with Last-Event-ID: it replays the events of that
// event's stream that came after it, then carries the stream on if it is
// still live.
func (c *streamableServerConn) resume(w http.ResponseWriter, r *http.Request, lastID string) {
	streamID, seq, err := parseEventID(lastID)
	if err != nil {
		writeHTTPError(w, http.StatusBadRequest, jsonrpc.CodeInvalidRequest, "invalid Last-Event-ID: "+err.Error())
		return
	}
	if c.h.store == nil {
		writeHTTPError(w, http.StatusBadRequest, jsonrpc.CodeInvalidRequest, "this server does not support resuming streams")
		return
	}
	var s *stream
	if streamID == "0" {
		s = c.standalone
	} else {
		n, _ := strconv.ParseInt(streamID, 10, 64)
		c.mu.Lock()
		known := n <= c.nextStream
		s = c.streams[streamID]
		c.mu.Unlock()
		if !known {
			writeHTTPError(w, http.StatusBadRequest, jsonrpc.CodeInvalidRequest, "Last-Event-ID names a stream this session never had")
			return
		}
	}
	if s == nil {
		// The stream is over: replay what the client missed, then end.
		c.replay(w, r, streamID, seq, -1)
		return
	}
	s.mu.Lock()
	if seq > s.seq {
		s.mu.Unlock()
		writeHTTPError(w, http.StatusBadRequest, jsonrpc.CodeInvalidRequest, "Last-Event-ID names an event that was never sent")
		return
	}
	if s == c.standalone && s.w != nil {
		s.mu.Unlock()
		writeHTTPError(w, http.StatusConflict, jsonrpc.CodeInvalidRequest, "a GET stream is already open for this session")
		return
	}
	// Replay under the stream's lock, so that no live event slips between
	// the replayed ones and the live ones.
	if !c.replay(w, r, streamID, seq, s.seq) {
		s.mu.Unlock()
		return
	}
	if s.finished || c.isClosed() {
		s.mu.Unlock()
		return
	}
	done := s.attachLocked(w)
	if s == c.standalone {
		s.opened = true
	}
	s.mu.Unlock()
	c.waitAttached(r, s, w, done)
}

// replay writes the SSE headers and the stored events of the stream after
// seq (up to last, when last >= 0). It reports whether the response is an
// SSE stream that can continue.
func (c *streamableServerConn) replay(w http.ResponseWriter, r *http.Request, streamID string, seq, last int64) bool {
	started := false
	ep := getBuf()
	defer putBuf(ep)
	idb := make([]byte, 0, 24)
	n := seq
	for data, err := range c.h.store.After(r.Context(), c.id, streamID, seq) {
		if err != nil {
			if !started {
				status := http.StatusBadRequest
				msg := "cannot resume the stream: " + err.Error()
				if errors.Is(err, ErrEventsPurged) {
					msg = "cannot resume the stream: the events after Last-Event-ID are no longer stored"
				}
				writeHTTPError(w, status, jsonrpc.CodeInvalidRequest, msg)
				return false
			}
			c.h.logger.Warn("mcp: event store: replay", "session", c.id, "error", err)
			return false
		}
		if last >= 0 && n >= last {
			break
		}
		if !started {
			writeSSEHeaders(w)
			started = true
		}
		n++
		idb = appendEventID(idb[:0], streamID, n)
		*ep = appendSSEEvent((*ep)[:0], string(idb), data)
		if _, err := w.Write(*ep); err != nil {
			return false
		}
	}
	if !started {
		writeSSEHeaders(w)
	}
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	return true
}

// CloseRequestStream closes the HTTP connection of the SSE stream of the
// request whose handler ctx belongs to, without ending the stream: the
// client is told (by a priming event with an id and a retry interval) to
// reconnect with GET and Last-Event-ID, and the events the handler sends
// meanwhile, its response included, are delivered on the resumed stream.
// It turns a pending application/json response into an SSE stream first.
//
// It reports whether it did so: false if ctx is not a Streamable HTTP
// request's context, the response was already sent, or the handler has no
// resumable stream (resumption disabled, stateless or JSON-only mode).
func CloseRequestStream(ctx context.Context) bool {
	s, _ := ctx.Value(streamKey{}).(*stream)
	if s == nil || !s.post || s.discard {
		return false
	}
	return s.closeConnection()
}

func (s *stream) closeConnection() bool {
	c := s.c
	if c.h.store == nil || c.stateless || c.h.opts.JSONResponse {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished {
		return false
	}
	if !s.sse {
		if !s.own || s.w == nil {
			return false
		}
		s.startSSELocked(true)
	} else if s.w != nil {
		// A fresh priming event: the client knows where to resume and when.
		s.writePrimingLocked()
	}
	if s.w == nil {
		return true
	}
	if s.own {
		s.hijackCloseLocked()
	} else {
		s.detachLocked()
	}
	return true
}

// hijackCloseLocked ends the POST's response while its handler goes on
// running on the POST goroutine: it takes the connection over from
// net/http, terminates the chunked body and closes the connection. Where
// that is impossible (HTTP/2), the connection is only detached: the
// response ends when the handler returns and the client resumes then.
func (s *stream) hijackCloseLocked() {
	w := s.w
	s.stopKeepAliveLocked()
	s.w = nil
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		s.c.h.logger.Debug("mcp: cannot close the POST connection early", "error", err)
		return
	}
	s.hijacked = true
	if s.chunked {
		buf.WriteString("0\r\n\r\n")
	}
	buf.Flush()
	conn.Close()
}
