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
	"time"

	"github.com/mcpgate/mcpgate/internal/sse"
	"github.com/mcpgate/mcpgate/jsonrpc"
)

// HTTPStatusError is the error for an HTTP response with an unexpected
// status code.
type HTTPStatusError struct {
	// Method is the HTTP method of the request (POST, GET or DELETE).
	Method string
	// URL is the request URL.
	URL string
	// StatusCode is the response status code.
	StatusCode int
	// Status is the response status line, such as "400 Bad Request".
	Status string
	// Body is the start of the response body (at most 512 bytes, with
	// invalid UTF-8 replaced).
	Body string
}

// Error implements error.
func (e *HTTPStatusError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("mcp: %s %s: %s", e.Method, e.URL, e.Status)
	}
	return fmt.Sprintf("mcp: %s %s: %s: %s", e.Method, e.URL, e.Status, e.Body)
}

// Defaults of the Streamable HTTP client.
const (
	defaultMaxRetries = 5
	// defaultReconnectDelay is the delay before reconnecting a broken SSE
	// stream when the server has not set one with a retry field.
	defaultReconnectDelay = time.Second
	// maxReconnectDelay caps the growing delay between failed attempts.
	maxReconnectDelay = 30 * time.Second
	// standaloneWait bounds how long the Write of notifications/initialized
	// waits for the server to answer the GET that opens the listening
	// stream, so that server messages sent right after initialization are
	// not missed.
	standaloneWait = 2 * time.Second
	// deleteTimeout bounds the DELETE that ends a session on Close.
	deleteTimeout = 5 * time.Second
	// errorBodySnippet is how much of an error response body errors quote.
	errorBodySnippet = 512
	// errorBodyLimit is how much of an error response body is read to look
	// for a JSON-RPC error.
	errorBodyLimit = 64 << 10
)

// StreamableClientTransport is the client side of the Streamable HTTP
// transport: every message is POSTed to Endpoint; responses come back as a
// JSON body or as a stream of server-sent events. After initialization the
// connection also opens a GET stream for messages the server sends on its
// own (unless the server answers 405). Broken event streams are resumed with
// GET and Last-Event-ID after the delay the server asked for with a retry
// field. A 404 answer to a request carrying the session id ends the
// connection with an error wrapping ErrSessionExpired; Close ends the
// session with DELETE. A request answered 429 Too Many Requests while
// other requests of the connection are in flight is sent again once one
// of them is answered (up to 8 times), and the connection keeps at most
// as many requests in flight as the server took at that moment (trying
// one more after every 100 answers received at that bound, in case the
// refusal was passing): a server that bounds a session's open requests
// slows the client down instead of failing its calls.
type StreamableClientTransport struct {
	// Endpoint is the URL of the MCP endpoint.
	Endpoint string
	// HTTPClient sends the requests. Nil means http.DefaultClient. Wrap its
	// Transport to add authorization.
	HTTPClient *http.Client
	// MaxRetries is the number of consecutive failed attempts to reconnect
	// a broken event stream before giving up on it. Zero means 5; a
	// negative value disables reconnection.
	MaxRetries int
	// MaxMessageSize bounds one incoming message. Zero means
	// jsonrpc.DefaultMaxMessageSize.
	MaxMessageSize int
	// Header holds extra headers sent with every request.
	Header http.Header
	// Logger receives diagnostics (dropped malformed messages, reconnection
	// attempts). Nil discards them.
	Logger *slog.Logger
}

// Connect returns a connection to t.Endpoint. It does not contact the
// server: the first request (initialize) does.
func (t *StreamableClientTransport) Connect(ctx context.Context) (Connection, error) {
	if t.Endpoint == "" {
		return nil, errors.New("mcp: StreamableClientTransport has no Endpoint")
	}
	tmpl, err := http.NewRequest(http.MethodPost, t.Endpoint, nil)
	if err != nil {
		return nil, fmt.Errorf("mcp: invalid endpoint: %w", err)
	}
	c := &streamableClientConn{
		endpoint:   t.Endpoint,
		url:        tmpl.URL,
		client:     t.HTTPClient,
		maxRetries: t.MaxRetries,
		maxSize:    t.MaxMessageSize,
		header:     t.Header,
		logger:     t.Logger,
		incoming:   make(chan jsonrpc.Message, 16),
		done:       make(chan struct{}),
		streams:    make(map[*clientStream]struct{}),
	}
	if c.client == nil {
		c.client = http.DefaultClient
	}
	if c.maxRetries == 0 {
		c.maxRetries = defaultMaxRetries
	}
	if c.maxSize <= 0 {
		c.maxSize = jsonrpc.DefaultMaxMessageSize
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

type streamableClientConn struct {
	endpoint   string
	url        *url.URL // endpoint parsed, shared by the POSTs (never modified)
	client     *http.Client
	maxRetries int
	maxSize    int
	header     http.Header
	logger     *slog.Logger

	incoming chan jsonrpc.Message
	// respond, when set (responder), takes the response of a JSON body
	// straight to the waiting call.
	respond func(*jsonrpc.Response) bool
	done    chan struct{} // closed by Close or a fatal error
	wg      sync.WaitGroup

	mu         sync.Mutex
	sessionID  string
	sessionHdr []string // {sessionID}, shared by all requests
	versionHdr []string // {protocol version}
	failErr    error    // the fatal error, if any
	closed     bool
	standalone bool // the GET stream was started
	streams    map[*clientStream]struct{}
	finished   bool // done is closed and the streams told to stop
	kept       bool // Close leaves the session at the server (keepSession)

	// posts counts the requests POSTed and not yet answered; limit, when
	// not zero, is the most the server has taken at once (learned from a
	// 429 answer: see busy), and atLimit counts the answers received at
	// that bound since it last changed. freed is closed when a request
	// ends while callers wait for room. All under bmu.
	bmu     sync.Mutex
	posts   int
	limit   int
	atLimit int
	freed   chan struct{}

	// related maps requests and notifications that arrived on the stream
	// of one of our requests to that request's id, until the engine asks
	// (relatedOutgoing).
	related map[jsonrpc.Message]jsonrpc.ID
}

// relatedOutgoing reports the request on whose response stream msg
// arrived. It implements relationReporter.
func (c *streamableClientConn) relatedOutgoing(msg jsonrpc.Message) (jsonrpc.ID, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.related[msg]
	if ok {
		delete(c.related, msg)
	}
	return id, ok
}

type streamResumeKey struct{}

// WithStreamResumeHook returns a context that makes the Streamable HTTP
// client call fn when the server closes the event stream of a request sent
// with it before answering (as servers that poll do), just before the
// client resumes the stream with Last-Event-ID. Gateways use it to close
// their own client's stream in turn, so that the polling is relayed.
func WithStreamResumeHook(ctx context.Context, fn func()) context.Context {
	return context.WithValue(ctx, streamResumeKey{}, fn)
}

// clientStream is one open event stream, registered so that Close can end
// it.
type clientStream struct {
	mu      sync.Mutex
	body    io.Closer          // the current response body
	cancel  context.CancelFunc // ends the reconnection requests
	stopped bool
}

// stop ends the stream: it closes the current body and cancels the
// reconnection requests.
func (s *clientStream) stop() {
	s.mu.Lock()
	s.stopped = true
	b, cancel := s.body, s.cancel
	s.mu.Unlock()
	if b != nil {
		b.Close()
	}
	if cancel != nil {
		cancel()
	}
}

// setBody makes b the body that stop closes. It reports false (and closes
// b) if the stream was stopped.
func (s *clientStream) setBody(b io.Closer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		b.Close()
		return false
	}
	s.body = b
	return true
}

var (
	hdrJSON       = []string{"application/json"}
	hdrAcceptBoth = []string{"application/json, text/event-stream"}
	hdrAcceptSSE  = []string{sse.ContentType}
)

// SessionID returns the session id the server assigned, or "".
func (c *streamableClientConn) SessionID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sessionID
}

// resumeSession makes the connection use an existing session: every
// request carries id. It implements sessionResumer.
func (c *streamableClientConn) resumeSession(id string) error {
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7E {
			return fmt.Errorf("mcp: session id with a character outside visible ASCII (%q)", id)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sessionID != "" {
		return errors.New("mcp: the connection already has a session")
	}
	c.sessionID = id
	c.sessionHdr = []string{id}
	return nil
}

// keepSession makes Close leave the session at the server. It implements
// detacher.
func (c *streamableClientConn) keepSession() {
	c.mu.Lock()
	c.kept = true
	c.mu.Unlock()
}

// carriesHeaders implements headerCarrier: the Mcp-Param-* headers of
// modern requests apply.
func (c *streamableClientConn) carriesHeaders() bool { return true }

// setProtocolVersion makes every later request carry MCP-Protocol-Version.
func (c *streamableClientConn) setProtocolVersion(v string) {
	c.mu.Lock()
	c.versionHdr = []string{v}
	c.mu.Unlock()
}

// Read returns the next message from the server.
func (c *streamableClientConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	return receive(ctx, c.incoming, c.done, c.endErr)
}

// endErr is the error of operations on an ended connection.
func (c *streamableClientConn) endErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failErr != nil {
		return c.failErr
	}
	return ErrConnectionClosed
}

// fail ends the connection with a fatal error.
func (c *streamableClientConn) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.failErr != nil {
		return
	}
	c.failErr = err
	c.finishLocked()
}

// finishLocked closes done and stops every stream. c.mu must be held.
func (c *streamableClientConn) finishLocked() {
	if c.finished {
		return
	}
	c.finished = true
	close(c.done)
	for s := range c.streams {
		go s.stop() // closing a body can block briefly; do not hold c.mu
	}
}

// setRespond implements responder.
func (c *streamableClientConn) setRespond(resolve func(*jsonrpc.Response) bool) {
	c.respond = resolve
}

// deliver queues an incoming message for Read.
func (c *streamableClientConn) deliver(msg jsonrpc.Message) bool {
	select {
	case c.incoming <- msg:
		return true
	case <-c.done:
		return false
	}
}

// setHeaders fills the headers every request carries and returns the
// session id sent ("" for none).
func (c *streamableClientConn) setHeaders(h http.Header) string {
	for k, v := range c.header {
		h[k] = v
	}
	c.mu.Lock()
	sid, sh, vh := c.sessionID, c.sessionHdr, c.versionHdr
	c.mu.Unlock()
	if sh != nil {
		h[headerSessionID] = sh
	}
	if vh != nil {
		h[headerProtocolVersion] = vh
	}
	return sid
}

// noteSessionID records the session id the server assigned in resp.
func (c *streamableClientConn) noteSessionID(resp *http.Response) error {
	v := resp.Header[headerSessionID]
	if len(v) == 0 || v[0] == "" {
		return nil
	}
	sid := v[0]
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sessionID != "" {
		return nil
	}
	for i := 0; i < len(sid); i++ {
		if sid[i] < 0x21 || sid[i] > 0x7E {
			return fmt.Errorf("mcp: server sent a session id with a character outside visible ASCII (%q)", sid)
		}
	}
	c.sessionID = sid
	c.sessionHdr = []string{sid}
	return nil
}

// Write POSTs msg to the endpoint. For a request, the response (a JSON body
// or an event stream) is queued for Read.
func (c *streamableClientConn) Write(ctx context.Context, msg jsonrpc.Message) error {
	select {
	case <-c.done:
		return c.endErr()
	default:
	}
	body, err := jsonrpc.AppendMessage(make([]byte, 0, 256), msg)
	if err != nil {
		return fmt.Errorf("mcp: encoding message: %w", err)
	}
	var reqID jsonrpc.ID
	var method string
	if r, ok := msg.(*jsonrpc.Request); ok {
		reqID, method = r.ID, r.Method
	}
	isRequest := reqID.IsValid()
	if !isRequest {
		resp, sentSession, err := c.post(ctx, body)
		if err != nil {
			return err
		}
		err = c.handleAck(resp, sentSession)
		if err == nil && method == NotificationInitialized {
			c.startStandalone()
		}
		return err
	}

	if err := c.acquirePost(ctx); err != nil {
		return err
	}
	for retries := 0; ; retries++ {
		resp, sentSession, err := c.post(ctx, body)
		if err != nil {
			c.releasePost()
			return err
		}
		if resp.StatusCode == http.StatusTooManyRequests && retries < maxBusyRetries && c.busy() {
			// The server refused one request too many of ours: wait until
			// one of the others is answered, and send it again.
			drainClose(resp)
			c.releasePost()
			if err := c.acquirePost(ctx); err != nil {
				return err
			}
			continue
		}
		return c.handleRequestResponse(ctx, resp, reqID, sentSession, c.releasePost)
	}
}

const (
	// maxBusyRetries bounds how often one request is sent again after a
	// 429 answer while other requests of the connection were in flight.
	maxBusyRetries = 8
	// busyProbeEvery is how many answers received at the learned bound
	// on requests in flight raise it by one.
	busyProbeEvery = 100
)

// post POSTs one encoded message and returns the response and the session
// id sent.
func (c *streamableClientConn) post(ctx context.Context, body []byte) (*http.Response, string, error) {
	// As http.NewRequestWithContext makes it, without parsing the
	// endpoint again.
	req := (&http.Request{
		Method:        http.MethodPost,
		URL:           c.url,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        make(http.Header, 4),
		Body:          io.NopCloser(bytes.NewReader(body)),
		GetBody:       func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil },
		ContentLength: int64(len(body)),
		Host:          c.url.Host,
	}).WithContext(ctx)
	req.Header["Content-Type"] = hdrJSON
	req.Header["Accept"] = hdrAcceptBoth
	sentSession := c.setHeaders(req.Header)
	for k, v := range requestHeaders(ctx) {
		req.Header[k] = v
	}
	resp, err := c.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, "", fmt.Errorf("mcp: POST %s: %w", c.endpoint, context.Cause(ctx))
		}
		return nil, "", fmt.Errorf("mcp: %w", err)
	}
	return resp, sentSession, nil
}

// acquirePost counts one more request in flight, first waiting while the
// connection has as many in flight as the server was seen to take.
func (c *streamableClientConn) acquirePost(ctx context.Context) error {
	for {
		c.bmu.Lock()
		if c.limit == 0 || c.posts < c.limit {
			c.posts++
			c.bmu.Unlock()
			return nil
		}
		if c.freed == nil {
			c.freed = make(chan struct{})
		}
		freed := c.freed
		c.bmu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return fmt.Errorf("mcp: waiting to send a request (%d in flight, the most the server takes): %w", c.limit, context.Cause(ctx))
		case <-c.done:
			return c.endErr()
		}
	}
}

// releasePost counts one request in flight fewer and wakes those waiting.
func (c *streamableClientConn) releasePost() {
	c.bmu.Lock()
	if c.limit > 0 && c.posts >= c.limit {
		if c.atLimit++; c.atLimit >= busyProbeEvery {
			c.limit++
			c.atLimit = 0
		}
	}
	c.posts--
	if c.freed != nil {
		close(c.freed)
		c.freed = nil
	}
	c.bmu.Unlock()
}

// busy is called when the server answers a request with 429 Too Many
// Requests. When other requests of the connection are in flight, the
// server's bound on a session's open requests is taken to be their
// number (it stays the connection's bound from then on) and busy reports
// true: the request waits for one of them and is sent again. Otherwise
// the 429 is the request's answer.
func (c *streamableClientConn) busy() bool {
	c.bmu.Lock()
	defer c.bmu.Unlock()
	others := c.posts - 1
	if others <= 0 {
		return false
	}
	if c.limit == 0 || others < c.limit {
		c.limit = others
		c.atLimit = 0
	}
	return true
}

// handleAck handles the response to a POSTed notification or response.
func (c *streamableClientConn) handleAck(resp *http.Response, sentSession string) error {
	defer drainClose(resp)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return c.noteSessionID(resp)
	}
	return c.statusError(http.MethodPost, resp, sentSession, jsonrpc.ID{})
}

// handleRequestResponse handles the response to a POSTed request.
//
// An event stream is read by its own goroutine. Its body stays bound to
// ctx: if the caller gives up on the request, the stream ends too.
//
// release is called once the request is answered (for an event stream,
// when the stream ends).
func (c *streamableClientConn) handleRequestResponse(ctx context.Context, resp *http.Response, id jsonrpc.ID, sentSession string, release func()) error {
	handed := false
	defer func() {
		if !handed {
			release()
		}
	}()
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		defer drainClose(resp)
		return c.statusError(http.MethodPost, resp, sentSession, id)
	}
	if err := c.noteSessionID(resp); err != nil {
		drainClose(resp)
		return err
	}
	ct := resp.Header.Get("Content-Type")
	switch {
	case isJSONContentType(ct):
		data, err := readBodyLimit(resp.Body, resp.ContentLength, c.maxSize)
		drainClose(resp)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("mcp: reading response: %w", context.Cause(ctx))
			}
			return fmt.Errorf("mcp: reading response: %w", err)
		}
		msg, err := jsonrpc.DecodeMessageLimit(data, c.maxSize)
		if err != nil {
			return fmt.Errorf("mcp: invalid JSON-RPC message in response: %w", err)
		}
		// A JSON body holds the response alone: nothing sent before it on
		// this request's stream can be overtaken by handing it over
		// directly.
		if r, ok := msg.(*jsonrpc.Response); ok && c.respond != nil && c.respond(r) {
			return nil
		}
		if !c.deliver(msg) {
			return c.endErr()
		}
		return nil
	case isEventStream(ct):
		s := &clientStream{body: resp.Body}
		if !c.addStream(s) {
			resp.Body.Close()
			return c.endErr()
		}
		handed = true
		go func() {
			defer release()
			c.runStream(ctx, s, resp.Body, id)
		}()
		return nil
	case resp.StatusCode == http.StatusAccepted:
		// No body: the response will come on another stream.
		drainClose(resp)
		return nil
	default:
		drainClose(resp)
		return fmt.Errorf("mcp: POST %s: unexpected response content type %q", c.endpoint, ct)
	}
}

// statusError turns an unsuccessful response into an error. A 404 for a
// request that carried the session id ends the connection with
// ErrSessionExpired. For a request (id valid), a JSON-RPC error response
// with that id in the body is delivered as the response instead.
func (c *streamableClientConn) statusError(method string, resp *http.Response, sentSession string, id jsonrpc.ID) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyLimit))
	serr := &HTTPStatusError{
		Method:     method,
		URL:        c.endpoint,
		StatusCode: resp.StatusCode,
		Status:     resp.Status,
		Body:       snippet(body),
	}
	if resp.StatusCode == http.StatusNotFound && sentSession != "" {
		err := fmt.Errorf("%w: %w", ErrSessionExpired, serr)
		c.fail(err)
		return err
	}
	if id.IsValid() && isJSONContentType(resp.Header.Get("Content-Type")) {
		if m, err := jsonrpc.DecodeMessageLimit(body, c.maxSize); err == nil {
			if r, ok := m.(*jsonrpc.Response); ok && r.Error != nil && r.ID == id {
				if c.deliver(r) {
					return nil
				}
				return c.endErr()
			}
		}
	}
	return serr
}

// snippet returns the start of an error body for messages.
func snippet(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > errorBodySnippet {
		b = b[:errorBodySnippet]
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

func isEventStream(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), sse.ContentType)
}

// readBodyLimit reads a response body of at most limit bytes into a new
// buffer (decoded messages alias it).
func readBodyLimit(r io.Reader, contentLength int64, limit int) ([]byte, error) {
	if contentLength > int64(limit) {
		return nil, fmt.Errorf("response of %d bytes exceeds the limit of %d bytes", contentLength, limit)
	}
	size := 512
	if contentLength >= 0 {
		size = int(contentLength) + 1 // +1 so that EOF is seen without growing
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > limit {
			return nil, fmt.Errorf("response exceeds the limit of %d bytes", limit)
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// drainClose reads a little of what is left of a response body, so that
// the connection can be reused, and closes it. Event streams, which may not
// end, are closed without reading.
func drainClose(resp *http.Response) {
	if !isEventStream(resp.Header.Get("Content-Type")) {
		io.CopyN(io.Discard, resp.Body, 4<<10)
	}
	resp.Body.Close()
}

func (c *streamableClientConn) addStream(s *clientStream) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.finished {
		return false
	}
	c.streams[s] = struct{}{}
	c.wg.Add(1)
	return true
}

func (c *streamableClientConn) removeStream(s *clientStream) {
	c.mu.Lock()
	delete(c.streams, s)
	c.mu.Unlock()
	s.stop()
	c.wg.Done()
}

// startStandalone opens the GET stream on which the server sends messages
// unrelated to any request. It waits (briefly) for the server's answer, so
// that messages the server sends right after initialization are not lost.
func (c *streamableClientConn) startStandalone() {
	c.mu.Lock()
	if c.standalone || c.finished {
		c.mu.Unlock()
		return
	}
	c.standalone = true
	c.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	s := &clientStream{cancel: cancel}
	if !c.addStream(s) {
		cancel()
		return
	}
	answered := make(chan struct{})
	go func() {
		defer c.removeStream(s)
		resp, err := c.get(ctx, "")
		close(answered)
		if err != nil {
			c.logger.Debug("mcp: opening the listening stream", "error", err)
			return
		}
		if resp.StatusCode == http.StatusMethodNotAllowed {
			drainClose(resp) // the server offers no such stream
			return
		}
		if resp.StatusCode != http.StatusOK || !isEventStream(resp.Header.Get("Content-Type")) {
			drainClose(resp)
			c.logger.Debug("mcp: server refused the listening stream", "status", resp.Status)
			return
		}
		if s.setBody(resp.Body) {
			c.readStreamLoop(ctx, s, resp.Body, jsonrpc.ID{})
		}
	}()
	t := time.NewTimer(standaloneWait)
	select {
	case <-answered:
	case <-t.C:
	case <-c.done:
	}
	t.Stop()
}

// get opens an event stream with GET, resuming after lastEventID if set.
func (c *streamableClientConn) get(ctx context.Context, lastEventID string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint, nil)
	if err != nil {
		return nil, err
	}
	req.Header = make(http.Header, 5)
	req.Header["Accept"] = hdrAcceptSSE
	c.setHeaders(req.Header)
	if lastEventID != "" {
		req.Header[headerLastEventID] = []string{lastEventID}
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	if err := c.noteSessionID(resp); err != nil {
		drainClose(resp)
		return nil, err
	}
	return resp, nil
}

// runStream reads the event stream that answers request id. ctx is the
// request's context: reconnection requests carry its values, and stop when
// it ends (the caller has given up on the response).
func (c *streamableClientConn) runStream(ctx context.Context, s *clientStream, body io.ReadCloser, id jsonrpc.ID) {
	defer c.removeStream(s)
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	s.mu.Lock()
	s.cancel = cancel
	s.mu.Unlock()
	c.readStreamLoop(rctx, s, body, id)
}

func (c *streamableClientConn) isDone() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// readStreamLoop reads an event stream, reconnecting with GET and
// Last-Event-ID when it breaks, until it has delivered the response to id
// (for a request's stream), the connection closes, or reconnection fails.
// id is the zero ID for the listening stream, which never ends by itself.
func (c *streamableClientConn) readStreamLoop(ctx context.Context, s *clientStream, body io.ReadCloser, id jsonrpc.ID) {
	var (
		lastID   string
		retry    = time.Duration(-1)
		failures int
	)
	for {
		res := c.readEvents(body, id)
		body.Close()
		if res.lastID != "" {
			lastID = res.lastID
		}
		if res.retrySet {
			retry = res.retry
		}
		if c.isDone() || ctx.Err() != nil {
			return
		}
		if res.gotResponse {
			return
		}
		if res.fatal != nil {
			c.abandon(id, res.fatal)
			return
		}
		if id.IsValid() && lastID == "" {
			c.abandon(id, fmt.Errorf("the event stream ended before the response, and cannot be resumed (no event id): %v", res.err))
			return
		}
		if res.events > 0 {
			failures = 0
		} else {
			failures++ // a stream that ends without delivering anything
		}
		if fn, ok := ctx.Value(streamResumeKey{}).(func()); ok && id.IsValid() {
			fn()
		}
		c.logger.Debug("mcp: event stream ended; reconnecting", "lastEventID", lastID, "error", res.err)
		body = c.reconnect(ctx, id, lastID, retry, &failures)
		if body == nil || !s.setBody(body) {
			return
		}
	}
}

// reconnect reopens an event stream with GET, after the delay the server
// set (or the default, growing with each failure). It returns nil when it
// gives up; it has then told the caller waiting for id.
func (c *streamableClientConn) reconnect(ctx context.Context, id jsonrpc.ID, lastID string, retry time.Duration, failures *int) io.ReadCloser {
	for {
		if c.maxRetries < 0 || *failures > c.maxRetries {
			c.abandon(id, fmt.Errorf("the event stream broke and %d reconnection attempts failed", *failures))
			return nil
		}
		delay := retry
		if delay < 0 {
			delay = defaultReconnectDelay
		}
		for i := 1; i < *failures && delay < maxReconnectDelay; i++ {
			delay *= 2
		}
		delay = min(delay, max(retry, maxReconnectDelay))
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-c.done:
				t.Stop()
				return nil
			}
		}
		resp, err := c.get(ctx, lastID)
		if err != nil {
			if ctx.Err() != nil || c.isDone() {
				return nil
			}
			*failures++
			c.logger.Debug("mcp: reconnecting the event stream", "error", err)
			continue
		}
		switch {
		case resp.StatusCode == http.StatusOK && isEventStream(resp.Header.Get("Content-Type")):
			return resp.Body
		case resp.StatusCode == http.StatusNotFound && c.SessionID() != "":
			err := c.statusError(http.MethodGet, resp, c.SessionID(), jsonrpc.ID{})
			resp.Body.Close()
			c.abandon(id, err)
			return nil
		case resp.StatusCode == http.StatusMethodNotAllowed:
			drainClose(resp)
			c.abandon(id, errors.New("the event stream broke and the server does not allow resuming it (GET: 405)"))
			return nil
		default:
			err := c.statusError(http.MethodGet, resp, "", jsonrpc.ID{})
			drainClose(resp)
			*failures++
			c.logger.Debug("mcp: reconnecting the event stream", "error", err)
		}
	}
}

// abandon gives up on the stream of request id, answering the request with
// an error so that its caller does not wait forever. For the listening
// stream (id invalid) the error is only logged.
func (c *streamableClientConn) abandon(id jsonrpc.ID, err error) {
	if !id.IsValid() {
		c.logger.Debug("mcp: listening stream ended", "error", err)
		return
	}
	c.deliver(&jsonrpc.Response{ID: id, Error: &jsonrpc.Error{
		Code:    jsonrpc.CodeConnectionClosed,
		Message: "mcp: lost the response stream: " + err.Error(),
	}})
}

type streamResult struct {
	events      int // events read (including priming events)
	lastID      string
	retry       time.Duration
	retrySet    bool
	gotResponse bool
	err         error // why the stream ended (io.EOF for a clean end)
	fatal       error // an error that makes resuming pointless
}

// readEvents reads one event stream body to its end, delivering the
// messages it carries.
func (c *streamableClientConn) readEvents(body io.Reader, id jsonrpc.ID) (res streamResult) {
	rd := sse.NewReader(body, c.maxSize)
	defer func() {
		res.lastID = rd.LastEventID()
		res.retry, res.retrySet = rd.Retry()
	}()
	for {
		ev, err := rd.Next()
		if err != nil {
			res.err = err
			if errors.Is(err, sse.ErrEventTooLarge) {
				res.fatal = err
			}
			return res
		}
		res.events++
		if ev.Type != "" && ev.Type != "message" {
			continue
		}
		if len(ev.Data) == 0 {
			continue // a priming event
		}
		data := bytes.Clone(ev.Data) // messages alias their data
		msg, err := jsonrpc.DecodeMessageLimit(data, c.maxSize)
		if err != nil {
			c.logger.Error("mcp: dropping a malformed message from the server", "error", err)
			continue
		}
		switch m := msg.(type) {
		case *jsonrpc.Response:
			if id.IsValid() && m.ID == id {
				res.gotResponse = true
			}
		case *jsonrpc.Request:
			if id.IsValid() && m.Method != notificationCancelled {
				c.mu.Lock()
				if c.related == nil {
					c.related = make(map[jsonrpc.Message]jsonrpc.ID)
				}
				c.related[msg] = id
				c.mu.Unlock()
			}
		}
		if !c.deliver(msg) {
			res.err = ErrConnectionClosed
			return res
		}
	}
}

// Close ends the connection: it stops every stream and, if the server
// assigned a session, ends it with DELETE.
func (c *streamableClientConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	expired := c.failErr != nil && errors.Is(c.failErr, ErrSessionExpired)
	sid, kept := c.sessionID, c.kept
	c.finishLocked()
	c.mu.Unlock()
	c.wg.Wait()
	if sid == "" || expired || kept {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), deleteTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, c.endpoint, nil)
	if err != nil {
		return nil
	}
	req.Header = make(http.Header, 3)
	c.setHeaders(req.Header)
	resp, err := c.client.Do(req)
	if err != nil {
		c.logger.Debug("mcp: ending the session", "error", err)
		return nil
	}
	drainClose(resp)
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusMethodNotAllowed && resp.StatusCode != http.StatusNotFound {
		c.logger.Debug("mcp: ending the session", "status", resp.Status)
	}
	return nil
}
