package mcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/jsonrpc"
)

// requestHandler answers one incoming request. It returns the result to
// marshal, or an error (a *jsonrpc.Error chooses the code).
type requestHandler func(ctx context.Context, req *jsonrpc.Request) (any, error)

// notificationHandler handles one incoming notification.
type notificationHandler func(ctx context.Context, req *jsonrpc.Request)

// engine is the JSON-RPC machinery that client and server sessions share:
// outgoing calls with their pending responses, incoming requests with their
// cancellation, and the connection's life.
type engine struct {
	conn   Connection
	logger *slog.Logger

	onRequest      requestHandler
	onNotification notificationHandler

	nextID atomic.Int64

	mu       sync.Mutex
	pending  map[jsonrpc.ID]*pendingCall
	inflight map[jsonrpc.ID]*inflightRequest
	closed   bool
	closeErr error

	done      chan struct{}
	closeOnce sync.Once
	onClose   func()

	// readDone is closed when the peer can send nothing more (end of
	// input): outgoing calls then fail at once, while running handlers
	// may still finish and answer.
	readDone     chan struct{}
	readDoneOnce sync.Once
	// readErr is why input ended, when not at a clean end (set before
	// readDone is closed): calls that fail for lack of an answer say so.
	readErr  error
	handlers sync.WaitGroup
}

// drainTimeout bounds how long handlers still running at the end of input
// may take to answer before the connection is closed.
const drainTimeout = 5 * time.Second

// pendingCall is an outgoing request waiting for its response.
type pendingCall struct {
	ch  chan *jsonrpc.Response
	ctx context.Context // the caller's context, for RelatedCallContext
}

type inflightRequest struct {
	cancel    context.CancelFunc
	cancelled atomic.Bool // cancelled by the peer: send no response
}

func newEngine(conn Connection, logger *slog.Logger) *engine {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &engine{
		conn:     conn,
		logger:   logger,
		pending:  make(map[jsonrpc.ID]*pendingCall),
		inflight: make(map[jsonrpc.ID]*inflightRequest),
		done:     make(chan struct{}),
		readDone: make(chan struct{}),
	}
}

// start begins handling incoming messages: through a read loop, or by
// installing the delivery function on a push connection.
func (e *engine) start(ctx context.Context) {
	if pc, ok := e.conn.(pushConnection); ok {
		pc.setDeliver(func(ctx context.Context, msg jsonrpc.Message) {
			e.handleMessage(ctx, msg, true)
		})
		return
	}
	if rc, ok := e.conn.(responder); ok {
		rc.setRespond(e.resolve)
	}
	go e.readLoop(context.WithoutCancel(ctx))
}

// responder is implemented by connections that can hand the response to
// an outgoing call straight to the engine, on the goroutine that
// received it, instead of queueing it for Read (the Streamable HTTP
// client, for a response that is a POST's JSON body): the caller then
// wakes without a hop through the read loop.
type responder interface {
	// setRespond installs resolve, called before the first Write.
	// resolve reports false when no call waits for the response; the
	// connection then queues it for Read as usual.
	setRespond(resolve func(*jsonrpc.Response) bool)
}

// resolve gives a response to the outgoing call waiting for it, and
// reports whether there was one.
func (e *engine) resolve(m *jsonrpc.Response) bool {
	e.mu.Lock()
	pc, ok := e.pending[m.ID]
	if ok {
		delete(e.pending, m.ID)
	}
	e.mu.Unlock()
	if ok {
		pc.ch <- m // buffered: one response per call
	}
	return ok
}

func (e *engine) readLoop(ctx context.Context) {
	for {
		msg, err := e.conn.Read(ctx)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, ErrConnectionClosed) {
				err = nil
			}
			// Nothing more will come: answers to our calls never will, but
			// requests already received may still be answered.
			e.readDoneOnce.Do(func() { e.readErr = err; close(e.readDone) })
			drained := make(chan struct{})
			go func() { e.handlers.Wait(); close(drained) }()
			t := time.NewTimer(drainTimeout)
			select {
			case <-drained:
			case <-t.C:
			case <-e.done:
			}
			t.Stop()
			e.shutdown(err)
			return
		}
		e.handleMessage(ctx, msg, false)
	}
}

// handleMessage dispatches one incoming message. With inline set, requests
// run on the calling goroutine; otherwise each runs on its own.
func (e *engine) handleMessage(ctx context.Context, msg jsonrpc.Message, inline bool) {
	switch m := msg.(type) {
	case *jsonrpc.Response:
		if !e.resolve(m) {
			e.logger.Debug("mcp: response for unknown request", "id", m.ID.String())
		}
	case *jsonrpc.Request:
		if m.IsNotification() {
			if m.Method == notificationCancelled {
				e.handleCancelled(m)
				return
			}
			if e.onNotification != nil {
				if cc := e.relatedCall(m); cc != nil {
					ctx = context.WithValue(ctx, relatedCallKey{}, cc)
				}
				e.onNotification(ctx, m)
			}
			return
		}
		if cc := e.relatedCall(m); cc != nil {
			ctx = context.WithValue(ctx, relatedCallKey{}, cc)
		}
		e.handlers.Add(1)
		// initialize runs before the next message is read, so that a
		// request sent right after it finds the session initialized.
		if inline || m.Method == MethodInitialize {
			e.handleRequest(ctx, m)
		} else {
			go e.handleRequest(ctx, m)
		}
	}
}

const notificationCancelled = "notifications/cancelled"

// relationReporter is implemented by connections that know which outgoing
// request an incoming message belongs to (the Streamable HTTP client: a
// message that arrives on the response stream of a POST belongs to that
// POST's request).
type relationReporter interface {
	relatedOutgoing(msg jsonrpc.Message) (jsonrpc.ID, bool)
}

type relatedCallKey struct{}

// relatedCall finds the context of the outgoing call an incoming request
// belongs to: the one the transport names, or else the only call in flight.
func (e *engine) relatedCall(m *jsonrpc.Request) context.Context {
	if rr, ok := e.conn.(relationReporter); ok {
		if id, ok := rr.relatedOutgoing(m); ok {
			e.mu.Lock()
			defer e.mu.Unlock()
			if pc := e.pending[id]; pc != nil {
				return pc.ctx
			}
			return nil
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.pending) == 1 {
		for _, pc := range e.pending {
			return pc.ctx
		}
	}
	return nil
}

// RelatedCallContext returns, inside a handler for a request or a
// notification the peer sent, the context of this side's outgoing call that
// the message belongs to (a server asking for sampling, or logging, while
// answering our tools/call, say), or nil when that is unknown. The call is known when the transport carries the
// relation (Streamable HTTP) or when it is the only call in flight.
// Gateways use it to route a request from an upstream server to the
// downstream session whose call caused it.
func RelatedCallContext(ctx context.Context) context.Context {
	c, _ := ctx.Value(relatedCallKey{}).(context.Context)
	return c
}

func (e *engine) handleCancelled(m *jsonrpc.Request) {
	var p struct {
		RequestID jsonrpc.ID `json:"requestId"`
		Reason    string     `json:"reason,omitempty"`
	}
	if err := json.Unmarshal(m.Params, &p); err != nil || !p.RequestID.IsValid() {
		e.logger.Debug("mcp: ignoring malformed cancellation", "error", err)
		return
	}
	e.mu.Lock()
	r := e.inflight[p.RequestID]
	e.mu.Unlock()
	if r != nil {
		r.cancelled.Store(true)
		r.cancel()
	}
}

func (e *engine) handleRequest(ctx context.Context, req *jsonrpc.Request) {
	defer e.handlers.Done()
	ctx, cancel := context.WithCancel(withRelatedRequest(ctx, req.ID))
	defer cancel()
	r := &inflightRequest{cancel: cancel}
	e.mu.Lock()
	if _, dup := e.inflight[req.ID]; dup {
		e.mu.Unlock()
		e.reply(ctx, req.ID, nil, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "request id %s is already in use", req.ID))
		return
	}
	e.inflight[req.ID] = r
	e.mu.Unlock()

	var result any
	var err error
	func() {
		defer func() {
			if p := recover(); p != nil {
				e.logger.Error("mcp: handler panicked", "method", req.Method, "panic", p)
				err = jsonrpc.NewError(jsonrpc.CodeInternalError, "internal error in %s", req.Method)
			}
		}()
		result, err = e.onRequest(ctx, req)
	}()

	e.mu.Lock()
	delete(e.inflight, req.ID)
	e.mu.Unlock()
	if r.cancelled.Load() {
		return // the peer cancelled: it expects no response
	}
	e.reply(ctx, req.ID, result, err)
}

// reply sends the response to an incoming request.
func (e *engine) reply(ctx context.Context, id jsonrpc.ID, result any, err error) {
	resp := &jsonrpc.Response{ID: id}
	if err != nil {
		resp.Error = toWireError(err)
	} else {
		raw, merr := marshalResult(result)
		if merr != nil {
			resp.Error = jsonrpc.NewError(jsonrpc.CodeInternalError, "encoding result: %v", merr)
		} else {
			resp.Result = raw
		}
	}
	if werr := e.conn.Write(context.WithoutCancel(ctx), resp); werr != nil {
		e.logger.Debug("mcp: writing response", "id", id.String(), "error", werr)
	}
}

func marshalResult(result any) (jsontext.Value, error) {
	switch r := result.(type) {
	case nil:
		return jsontext.Value("{}"), nil
	case jsontext.Value:
		return r, nil
	}
	return json.Marshal(result)
}

func toWireError(err error) *jsonrpc.Error {
	var we *jsonrpc.Error
	if errors.As(err, &we) {
		return we
	}
	if errors.Is(err, context.Canceled) {
		return jsonrpc.NewError(jsonrpc.CodeInternalError, "request cancelled")
	}
	return &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: err.Error()}
}

// call sends a request and waits for its response, decoding the result into
// result (which may be nil). When ctx ends first, the peer is told with
// notifications/cancelled (except for initialize).
func (e *engine) call(ctx context.Context, method string, params, result any) error {
	raw, err := marshalParams(params)
	if err != nil {
		return fmt.Errorf("mcp: encoding %s params: %w", method, err)
	}
	resp, err := e.callRaw(ctx, method, raw)
	if err != nil {
		return err
	}
	if result != nil {
		if err := json.Unmarshal(resp, result); err != nil {
			return fmt.Errorf("mcp: decoding %s result: %w", method, err)
		}
	}
	return nil
}

func marshalParams(params any) (jsontext.Value, error) {
	switch p := params.(type) {
	case nil:
		return nil, nil
	case jsontext.Value:
		return p, nil
	}
	return json.Marshal(params)
}

// callRaw sends a request with raw params and returns the raw result.
func (e *engine) callRaw(ctx context.Context, method string, params jsontext.Value) (jsontext.Value, error) {
	id := jsonrpc.Int64ID(e.nextID.Add(1))
	ch := make(chan *jsonrpc.Response, 1)
	e.mu.Lock()
	if e.closed {
		err := e.closeErr
		e.mu.Unlock()
		return nil, closedError(err)
	}
	e.pending[id] = &pendingCall{ch: ch, ctx: ctx}
	e.mu.Unlock()

	if err := e.conn.Write(ctx, &jsonrpc.Request{ID: id, Method: method, Params: params}); err != nil {
		e.forget(id)
		return nil, fmt.Errorf("mcp: sending %s: %w", method, err)
	}
	select {
	case resp := <-ch:
		if resp.Error != nil {
			return nil, resp.Error
		}
		return resp.Result, nil
	case <-ctx.Done():
		e.forget(id)
		if method != MethodInitialize {
			cp, _ := json.Marshal(struct {
				RequestID jsonrpc.ID `json:"requestId"`
				Reason    string     `json:"reason,omitempty"`
			}{id, context.Cause(ctx).Error()})
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = e.conn.Write(wctx, &jsonrpc.Request{Method: notificationCancelled, Params: cp})
			cancel()
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeRequestTimeout, Message: fmt.Sprintf("request %s timed out", method)}
		}
		return nil, ctx.Err()
	case <-e.readDone:
		e.forget(id)
		select {
		case resp := <-ch:
			if resp.Error != nil {
				return nil, resp.Error
			}
			return resp.Result, nil
		default:
		}
		if e.readErr != nil {
			return nil, closedError(e.readErr)
		}
		return nil, closedError(io.EOF)
	case <-e.done:
		e.forget(id)
		// A response may have raced with the close.
		select {
		case resp := <-ch:
			if resp.Error != nil {
				return nil, resp.Error
			}
			return resp.Result, nil
		default:
		}
		return nil, closedError(e.err())
	}
}

func (e *engine) forget(id jsonrpc.ID) {
	e.mu.Lock()
	delete(e.pending, id)
	e.mu.Unlock()
}

// notify sends a notification.
func (e *engine) notify(ctx context.Context, method string, params any) error {
	raw, err := marshalParams(params)
	if err != nil {
		return fmt.Errorf("mcp: encoding %s params: %w", method, err)
	}
	if e.isClosed() {
		return closedError(e.err())
	}
	return e.conn.Write(ctx, &jsonrpc.Request{Method: method, Params: raw})
}

func (e *engine) isClosed() bool {
	select {
	case <-e.done:
		return true
	default:
		return false
	}
}

func (e *engine) err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closeErr
}

func closedError(cause error) error {
	if cause == nil {
		return ErrConnectionClosed
	}
	return fmt.Errorf("%w: %w", ErrConnectionClosed, cause)
}

// shutdown ends the engine: pending calls fail, running handlers are
// cancelled, and the connection is closed.
func (e *engine) shutdown(cause error) {
	e.closeOnce.Do(func() {
		e.mu.Lock()
		e.closed = true
		e.closeErr = cause
		for _, r := range e.inflight {
			r.cancel()
		}
		e.mu.Unlock()
		close(e.done)
		e.conn.Close()
		if e.onClose != nil {
			e.onClose()
		}
	})
}

// wait blocks until the engine has shut down and returns the cause, nil for
// an orderly close.
func (e *engine) wait() error {
	<-e.done
	return e.err()
}
