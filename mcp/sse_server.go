package mcp

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/jsonrpc"
)

// SSEOptions configure an SSEHandler. The zero value selects the defaults.
type SSEOptions struct {
	// Endpoint is the URL (usually a path) clients POST their messages to;
	// the session id is added as the sessionId query parameter. Empty means
	// the path of the GET that opened the stream, so one handler serves
	// both.
	Endpoint string
	// AllowedOrigins, AllowedHosts and DisableDNSRebindingProtection work
	// as in StreamableHTTPOptions.
	AllowedOrigins                []string
	AllowedHosts                  []string
	DisableDNSRebindingProtection bool
	// MaxBodyBytes limits the size of a POST body; larger bodies get 413.
	// Zero means jsonrpc.DefaultMaxMessageSize (4 MiB).
	MaxBodyBytes int64
	// KeepAlive, if positive, sends an SSE comment when the stream has been
	// silent for this long.
	KeepAlive time.Duration
	// Logger receives the transport's diagnostics. Nil discards them.
	Logger *slog.Logger
	// SessionPrincipal works as in StreamableHTTPOptions: POSTs by another
	// principal than the GET that opened the session get 404.
	SessionPrincipal func(*http.Request) string
	// MaxSessions bounds the live sessions (open GET streams); a GET
	// beyond it gets 503 with Retry-After. Zero means 1000; a negative
	// value means no bound. MaxSessionsPerPrincipal and
	// MaxSessionsPerAddress work as in StreamableHTTPOptions (429).
	MaxSessions             int
	MaxSessionsPerPrincipal int
	MaxSessionsPerAddress   int
}

// SSEHandler is an http.Handler that serves the HTTP+SSE transport of
// protocol revision 2024-11-05, for older clients. A GET opens a session: its
// response is an SSE stream that starts with an "endpoint" event naming the
// URL to POST messages to, and then carries every server message. POSTs to
// that URL are answered with 202 Accepted.
type SSEHandler struct {
	getServer func(*http.Request) *Server
	opts      SSEOptions
	policy    originPolicy
	logger    *slog.Logger
	maxBody   int64

	mu       sync.Mutex
	sessions map[string]*sseServerConn
	limits   *sessionLimits
}

// NewSSEHandler returns a handler that serves a session of the server
// getServer returns for each GET (nil refuses the GET with 400).
func NewSSEHandler(getServer func(*http.Request) *Server, opts *SSEOptions) *SSEHandler {
	h := &SSEHandler{getServer: getServer, sessions: make(map[string]*sseServerConn)}
	if opts != nil {
		h.opts = *opts
	}
	h.logger = h.opts.Logger
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
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
	if h.opts.MaxSessions == 0 {
		h.opts.MaxSessions = 1000
	}
	h.limits = newSessionLimits(h.opts.MaxSessions, h.opts.MaxSessionsPerPrincipal, h.opts.MaxSessionsPerAddress)
	return h
}

// Close ends every session of the handler.
func (h *SSEHandler) Close() error {
	h.mu.Lock()
	conns := make([]*sseServerConn, 0, len(h.sessions))
	for _, c := range h.sessions {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.mu.Lock()
		ss := c.ss
		c.mu.Unlock()
		if ss != nil {
			ss.Close()
		} else {
			c.Close()
		}
	}
	return nil
}

// ServeHTTP implements http.Handler.
func (h *SSEHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := h.policy.check(r); err != nil {
		writeHTTPError(w, http.StatusForbidden, jsonrpc.CodeInvalidRequest, "forbidden: "+err.Error())
		return
	}
	switch r.Method {
	case http.MethodGet:
		h.serveStream(w, r)
	case http.MethodPost:
		h.serveMessage(w, r)
	default:
		w.Header().Set("Allow", "GET, POST")
		writeHTTPError(w, http.StatusMethodNotAllowed, jsonrpc.CodeInvalidRequest, "method "+r.Method+" is not allowed")
	}
}

func (h *SSEHandler) serveStream(w http.ResponseWriter, r *http.Request) {
	if len(r.Header.Values("Accept")) > 0 {
		if _, sseOK := acceptsTypes(r.Header); !sseOK {
			writeHTTPError(w, http.StatusNotAcceptable, jsonrpc.CodeInvalidRequest, "the Accept header must list text/event-stream")
			return
		}
	}
	srv := h.getServer(r)
	if srv == nil {
		writeHTTPError(w, http.StatusBadRequest, jsonrpc.CodeInvalidRequest, "no MCP server is available for this request")
		return
	}
	c := &sseServerConn{
		h:        h,
		id:       rand.Text(),
		w:        w,
		incoming: make(chan jsonrpc.Message, 16),
		done:     make(chan struct{}),
	}
	if h.opts.SessionPrincipal != nil {
		c.principal = h.opts.SessionPrincipal(r)
	}
	release, refused := h.limits.acquire(r, c.principal)
	if refused != nil {
		h.logger.Warn("mcp: legacy session refused", "reason", refused.msg, "remote", r.RemoteAddr)
		refused.write(w)
		return
	}
	c.release = release
	defer release() // the session lives as long as its GET stream
	endpoint := h.opts.Endpoint
	if endpoint == "" {
		endpoint = r.URL.EscapedPath()
		if u, err := url.ParseRequestURI(r.RequestURI); err == nil && u.Path != "" {
			endpoint = u.EscapedPath() // the path before any prefix stripping
		}
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		writeHTTPError(w, http.StatusInternalServerError, jsonrpc.CodeInternalError, "invalid endpoint configured")
		return
	}
	q := u.Query()
	q.Set("sessionId", c.id)
	u.RawQuery = q.Encode()

	// Register before announcing the endpoint: the client may POST at once
	// (messages wait in incoming until the session reads them).
	h.mu.Lock()
	h.sessions[c.id] = c
	h.mu.Unlock()
	writeSSEHeaders(w)
	c.mu.Lock()
	c.writeLocked([]byte("event: endpoint\ndata: " + u.String() + "\n\n"))
	c.mu.Unlock()
	// The session keeps the GET's context values (an authenticated
	// principal, say) but not its cancellation.
	ss, err := srv.Connect(context.WithoutCancel(r.Context()), sseConnTransport{c}, nil)
	if err != nil {
		c.Close()
		h.logger.Error("mcp: starting session", "error", err)
		return
	}
	c.mu.Lock()
	c.ss = ss
	c.mu.Unlock()
	var ka <-chan time.Time
	if h.opts.KeepAlive > 0 {
		t := time.NewTicker(h.opts.KeepAlive)
		defer t.Stop()
		ka = t.C
	}
	for {
		select {
		case <-r.Context().Done():
			// The client went away: without a stream the session is over.
			ss.Close()
			return
		case <-c.done:
			return
		case <-ka:
			c.mu.Lock()
			c.writeLocked([]byte(": keep-alive\n\n"))
			c.mu.Unlock()
		}
	}
}

func (h *SSEHandler) serveMessage(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("sessionId")
	if id == "" {
		writeHTTPError(w, http.StatusBadRequest, jsonrpc.CodeInvalidRequest, "missing sessionId query parameter")
		return
	}
	h.mu.Lock()
	c := h.sessions[id]
	h.mu.Unlock()
	if c == nil || (h.opts.SessionPrincipal != nil && h.opts.SessionPrincipal(r) != c.principal) {
		writeHTTPError(w, http.StatusNotFound, jsonrpc.CodeInvalidRequest, "session not found")
		return
	}
	msg, ok := readPOSTMessage(w, r, h.maxBody)
	if !ok {
		return
	}
	select {
	case c.incoming <- msg:
		w.WriteHeader(http.StatusAccepted)
	case <-c.done:
		writeHTTPError(w, http.StatusNotFound, jsonrpc.CodeInvalidRequest, "session ended")
	case <-r.Context().Done():
	}
}

type sseConnTransport struct{ c *sseServerConn }

func (t sseConnTransport) Connect(context.Context) (Connection, error) { return t.c, nil }

// sseServerConn is the server side of one HTTP+SSE session: messages come
// from POSTs through incoming and go out on the GET's stream.
type sseServerConn struct {
	h         *SSEHandler
	id        string
	principal string
	release   func() // gives back the session's place in h.limits
	incoming  chan jsonrpc.Message

	mu     sync.Mutex
	ss     *ServerSession
	w      http.ResponseWriter // nil once closed
	broken bool

	done      chan struct{}
	closeOnce sync.Once
}

// SessionID implements Connection.
func (c *sseServerConn) SessionID() string { return c.id }

// Read implements Connection.
func (c *sseServerConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	select {
	case m := <-c.incoming:
		return m, nil
	case <-c.done:
		return nil, ErrConnectionClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Write implements Connection.
func (c *sseServerConn) Write(_ context.Context, msg jsonrpc.Message) error {
	dp := getBuf()
	defer putBuf(dp)
	data, err := jsonrpc.AppendMessage((*dp)[:0], msg)
	if err != nil {
		return fmt.Errorf("mcp: encoding message: %w", err)
	}
	*dp = data
	ep := getBuf()
	defer putBuf(ep)
	*ep = appendSSEEvent((*ep)[:0], "", data)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.w == nil {
		return ErrConnectionClosed
	}
	return c.writeLocked(*ep)
}

func (c *sseServerConn) writeLocked(b []byte) error {
	if c.w == nil || c.broken {
		return ErrConnectionClosed
	}
	_, err := c.w.Write(b)
	if err == nil {
		if f, ok := c.w.(interface{ FlushError() error }); ok {
			err = f.FlushError()
		} else if f, ok := c.w.(http.Flusher); ok {
			f.Flush()
		}
	}
	if err != nil {
		c.broken = true
		return fmt.Errorf("mcp: writing to the SSE stream: %w", err)
	}
	return nil
}

// Close implements Connection: the GET's stream ends.
func (c *sseServerConn) Close() error {
	c.closeOnce.Do(func() {
		c.h.mu.Lock()
		delete(c.h.sessions, c.id)
		c.h.mu.Unlock()
		if c.release != nil {
			c.release()
		}
		c.mu.Lock()
		c.w = nil
		c.mu.Unlock()
		close(c.done)
	})
	return nil
}
