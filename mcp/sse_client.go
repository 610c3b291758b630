package mcp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/mcpgate/mcpgate/internal/sse"
	"github.com/mcpgate/mcpgate/jsonrpc"
)

// SSEClientTransport is the client side of the HTTP+SSE transport of
// protocol revision 2024-11-05, which Streamable HTTP replaced: the client
// opens an event stream with GET on Endpoint, the server names the URL to
// POST messages to in an "endpoint" event, and sends its own messages as
// "message" events on the stream.
type SSEClientTransport struct {
	// Endpoint is the URL of the server's SSE endpoint.
	Endpoint string
	// HTTPClient sends the requests. Nil means http.DefaultClient.
	HTTPClient *http.Client
	// MaxMessageSize bounds one incoming message. Zero means
	// jsonrpc.DefaultMaxMessageSize.
	MaxMessageSize int
	// Header holds extra headers sent with every request.
	Header http.Header
	// Logger receives diagnostics. Nil discards them.
	Logger *slog.Logger
}

// Connect opens the event stream and waits for the endpoint event. The
// endpoint must have the same origin (scheme, host and port) as Endpoint.
func (t *SSEClientTransport) Connect(ctx context.Context) (Connection, error) {
	base, err := url.Parse(t.Endpoint)
	if err != nil || base.Scheme == "" || base.Host == "" {
		return nil, fmt.Errorf("mcp: invalid SSE endpoint %q", t.Endpoint)
	}
	c := &sseClientConn{
		client:   t.HTTPClient,
		header:   t.Header,
		maxSize:  t.MaxMessageSize,
		logger:   t.Logger,
		incoming: make(chan jsonrpc.Message, 16),
		done:     make(chan struct{}),
	}
	if c.client == nil {
		c.client = http.DefaultClient
	}
	if c.maxSize <= 0 {
		c.maxSize = jsonrpc.DefaultMaxMessageSize
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	// The stream outlives ctx, which only bounds the wait for the endpoint.
	streamCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel)
	c.cancel = cancel
	req, err := http.NewRequestWithContext(streamCtx, http.MethodGet, t.Endpoint, nil)
	if err != nil {
		stop()
		cancel()
		return nil, fmt.Errorf("mcp: %w", err)
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", sse.ContentType)
	resp, err := c.client.Do(req)
	if err != nil {
		stop()
		cancel()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("mcp: GET %s: %w", t.Endpoint, context.Cause(ctx))
		}
		return nil, fmt.Errorf("mcp: %w", err)
	}
	fail := func(err error) (Connection, error) {
		stop()
		cancel()
		resp.Body.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("mcp: waiting for the endpoint event: %w", context.Cause(ctx))
		}
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodySnippet))
		return fail(&HTTPStatusError{Method: http.MethodGet, URL: t.Endpoint, StatusCode: resp.StatusCode, Status: resp.Status, Body: snippet(body)})
	}
	if ct := resp.Header.Get("Content-Type"); !isEventStream(ct) {
		return fail(fmt.Errorf("mcp: GET %s: response content type is %q, not text/event-stream", t.Endpoint, ct))
	}
	rd := sse.NewReader(resp.Body, c.maxSize)
	for {
		ev, err := rd.Next()
		if err != nil {
			return fail(fmt.Errorf("mcp: GET %s: the event stream ended before the endpoint event: %w", t.Endpoint, err))
		}
		if ev.Type != "endpoint" {
			// The endpoint event comes first; anything before it is
			// ignored.
			c.logger.Debug("mcp: ignoring an event before the endpoint event", "type", ev.Type)
			continue
		}
		u, err := base.Parse(strings.TrimSpace(string(ev.Data)))
		if err != nil {
			return fail(fmt.Errorf("mcp: invalid endpoint event %q: %w", ev.Data, err))
		}
		if !strings.EqualFold(u.Scheme, base.Scheme) || !strings.EqualFold(u.Host, base.Host) {
			return fail(fmt.Errorf("mcp: the endpoint event names %s, which is not the same origin as %s", u.Redacted(), t.Endpoint))
		}
		c.postURL = u.String()
		break
	}
	if !stop() {
		return fail(context.Cause(ctx))
	}
	c.body = resp.Body
	go c.readLoop(rd)
	return c, nil
}

type sseClientConn struct {
	client  *http.Client
	header  http.Header
	maxSize int
	logger  *slog.Logger
	postURL string

	body     io.ReadCloser
	cancel   context.CancelFunc
	incoming chan jsonrpc.Message
	done     chan struct{}

	mu      sync.Mutex
	err     error // why the stream ended
	closed  bool
	endOnce sync.Once
}

// readLoop delivers the messages of the event stream.
func (c *sseClientConn) readLoop(rd *sse.Reader) {
	var err error
	for {
		var ev sse.Event
		ev, err = rd.Next()
		if err != nil {
			break
		}
		if ev.Type != "" && ev.Type != "message" {
			continue
		}
		if len(ev.Data) == 0 {
			continue
		}
		msg, derr := jsonrpc.DecodeMessageLimit(bytes.Clone(ev.Data), c.maxSize)
		if derr != nil {
			c.logger.Error("mcp: dropping a malformed message from the server", "error", derr)
			continue
		}
		select {
		case c.incoming <- msg:
		case <-c.done:
			return
		}
	}
	if errors.Is(err, sse.ErrEventTooLarge) {
		// An event cannot be skipped: the stream ends, and the calls
		// waiting on it fail at once with why.
		c.logger.Error("mcp: the server sent a message over the size limit; ending the connection", "limit", c.maxSize)
		c.end(fmt.Errorf("mcp: a message from the server exceeds the message size limit of %d bytes; the event stream cannot continue past it: %w", c.maxSize, err))
		return
	}
	c.end(fmt.Errorf("mcp: the server's event stream ended: %w", err))
}

func (c *sseClientConn) end(err error) {
	c.endOnce.Do(func() {
		c.mu.Lock()
		if c.err == nil {
			c.err = err
		}
		c.mu.Unlock()
		close(c.done)
		c.cancel()
		c.body.Close()
	})
}

// Read returns the next message from the event stream.
func (c *sseClientConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	return receive(ctx, c.incoming, c.done, func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closed {
			return ErrConnectionClosed
		}
		return c.err // wraps io.EOF when the server ended the stream
	})
}

// Write POSTs msg to the endpoint the server named.
func (c *sseClientConn) Write(ctx context.Context, msg jsonrpc.Message) error {
	select {
	case <-c.done:
		return ErrConnectionClosed
	default:
	}
	body, err := jsonrpc.AppendMessage(make([]byte, 0, 256), msg)
	if err != nil {
		return fmt.Errorf("mcp: encoding message: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.postURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("mcp: %w", err)
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	req.Header["Content-Type"] = hdrJSON
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("mcp: %w", err)
	}
	defer drainClose(resp)
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodySnippet))
		return &HTTPStatusError{Method: http.MethodPost, URL: c.postURL, StatusCode: resp.StatusCode, Status: resp.Status, Body: snippet(b)}
	}
	return nil
}

// Close closes the event stream.
func (c *sseClientConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.end(ErrConnectionClosed)
	return nil
}

// SessionID returns "": the 2024-11-05 transport has no session header
// (the server keeps the session in the endpoint URL).
func (c *sseClientConn) SessionID() string { return "" }

// AutoClientTransport connects to a server URL that may speak either
// Streamable HTTP or the 2024-11-05 HTTP+SSE transport, as the
// specification's backwards-compatibility section describes: it POSTs the
// initialize request as Streamable HTTP, and if the server answers 400, 404
// or 405 it opens the URL with GET as an HTTP+SSE endpoint instead and sends
// the initialize request there.
type AutoClientTransport struct {
	// Endpoint is the server URL.
	Endpoint string
	// HTTPClient sends the requests. Nil means http.DefaultClient.
	HTTPClient *http.Client
	// Streamable configures the Streamable HTTP attempt; its Endpoint and
	// HTTPClient are replaced by the fields above. Nil means defaults.
	Streamable *StreamableClientTransport
	// Logger receives diagnostics. Nil discards them.
	Logger *slog.Logger
}

// Connect returns a connection that decides which transport to use when
// the first message (the initialize request) is written.
func (t *AutoClientTransport) Connect(ctx context.Context) (Connection, error) {
	st := StreamableClientTransport{}
	if t.Streamable != nil {
		st = *t.Streamable
	}
	st.Endpoint, st.HTTPClient = t.Endpoint, t.HTTPClient
	if st.Logger == nil {
		st.Logger = t.Logger
	}
	sc, err := st.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &autoConn{
		t:     t,
		opts:  st,
		first: sc,
		ready: make(chan struct{}),
		done:  make(chan struct{}),
	}, nil
}

type autoConn struct {
	t     *AutoClientTransport
	opts  StreamableClientTransport
	first Connection // the Streamable HTTP connection tried first

	writeMu sync.Mutex // serializes writes until the transport is chosen
	ready   chan struct{}
	done    chan struct{}

	mu      sync.Mutex
	active  Connection
	version string
	closed  bool
}

func (c *autoConn) conn() Connection {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.active
}

// choose settles the transport; conn is nil if none could be used.
func (c *autoConn) choose(conn Connection) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active != nil || c.closed {
		if conn != nil && conn != c.active {
			conn.Close()
		}
		return
	}
	c.active = conn
	if c.version != "" {
		if pv, ok := conn.(protocolVersionSetter); ok {
			pv.setProtocolVersion(c.version)
		}
	}
	close(c.ready)
}

// carriesHeaders implements headerCarrier: both transports it may choose
// are HTTP (the HTTP+SSE one ignores the per-request headers).
func (c *autoConn) carriesHeaders() bool { return true }

// Write sends msg. The first write decides the transport.
func (c *autoConn) Write(ctx context.Context, msg jsonrpc.Message) error {
	if a := c.conn(); a != nil {
		return a.Write(ctx, msg)
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if a := c.conn(); a != nil {
		return a.Write(ctx, msg)
	}
	select {
	case <-c.done:
		return ErrConnectionClosed
	default:
	}
	err := c.first.Write(ctx, msg)
	var se *HTTPStatusError
	if err == nil {
		c.choose(c.first)
		return nil
	}
	if r, ok := msg.(*jsonrpc.Request); ok && r.Method == MethodServerDiscover {
		// A refused 2026-07-28 probe says nothing about the transport: the
		// initialize that follows decides it.
		return err
	}
	if !errors.As(err, &se) || se.Method != http.MethodPost ||
		(se.StatusCode != http.StatusBadRequest && se.StatusCode != http.StatusNotFound && se.StatusCode != http.StatusMethodNotAllowed) {
		return err
	}
	// Not a Streamable HTTP server: try the 2024-11-05 transport.
	c.first.Close()
	legacy := &SSEClientTransport{
		Endpoint:       c.t.Endpoint,
		HTTPClient:     c.t.HTTPClient,
		MaxMessageSize: c.opts.MaxMessageSize,
		Header:         c.opts.Header,
		Logger:         c.opts.Logger,
	}
	lc, lerr := legacy.Connect(ctx)
	if lerr != nil {
		return fmt.Errorf("%w; falling back to HTTP+SSE: %w", err, lerr)
	}
	if werr := lc.Write(ctx, msg); werr != nil {
		lc.Close()
		return fmt.Errorf("mcp: HTTP+SSE fallback: %w", werr)
	}
	c.choose(lc)
	return nil
}

// Read returns the next message of the chosen transport.
func (c *autoConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	select {
	case <-c.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.done:
		return nil, ErrConnectionClosed
	}
	return c.conn().Read(ctx)
}

// Close closes the connection.
func (c *autoConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	a := c.active
	close(c.done)
	c.mu.Unlock()
	if a != nil {
		return a.Close()
	}
	return c.first.Close()
}

// keepSession makes Close leave the chosen transport's session at the
// server, if it has one (see ClientSession.Detach).
func (c *autoConn) keepSession() {
	if d, ok := c.conn().(detacher); ok {
		d.keepSession()
	}
}

// setRespond implements responder for the Streamable HTTP connection
// tried first; the HTTP+SSE fallback queues every message for Read.
func (c *autoConn) setRespond(resolve func(*jsonrpc.Response) bool) {
	if r, ok := c.first.(responder); ok {
		r.setRespond(resolve)
	}
}

// SessionID returns the session id of the chosen transport.
func (c *autoConn) SessionID() string {
	if a := c.conn(); a != nil {
		return a.SessionID()
	}
	return ""
}

func (c *autoConn) setProtocolVersion(v string) {
	c.mu.Lock()
	c.version = v
	a := c.active
	c.mu.Unlock()
	if pv, ok := a.(protocolVersionSetter); ok {
		pv.setProtocolVersion(v)
	}
}
