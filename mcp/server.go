package mcp

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/jsonrpc"
)

// A Server serves MCP tools, resources and prompts to any number of client
// sessions. Features may be added and removed while sessions are running;
// sessions are told through list_changed notifications.
type Server struct {
	impl *Implementation
	opts ServerOptions

	mu        sync.Mutex
	tools     featureSet[*serverTool]
	resources featureSet[*serverResource]
	templates featureSet[*serverTemplate]
	prompts   featureSet[*serverPrompt]
	sessions  map[*ServerSession]struct{}
	tasks     *taskReceiver // the tasks of task-augmented requests (tasks_server.go)
	listeners listenerSet   // open subscriptions/listen streams (modern_listen.go)
	stateKey  []byte        // signs MRTR requestState (mrtr.go)
	extTasks  extTaskStore  // tasks of the 2026-07-28 Tasks extension (modern_tasks.go)

	infoOnce sync.Once // infoJSON is impl encoded, for modern results
	infoJSON []byte
	infoErr  error
	envelope envelopeCache // decoded parts of modern envelopes (modern.go)
}

// ServerOptions configure a Server. The zero value is valid.
type ServerOptions struct {
	// Instructions are sent to clients in the initialize result.
	Instructions string
	// Logger receives the server's own diagnostics. Nil discards them.
	Logger *slog.Logger
	// PageSize is the number of items in one page of a list result. Zero
	// means 1000.
	PageSize int
	// Capabilities, if set, are merged into the capabilities the server
	// derives from its features (use it for experimental capabilities or to
	// advertise a feature before any item is added).
	Capabilities *ServerCapabilities
	// InitializedHandler is called when a session has completed the
	// initialize handshake.
	InitializedHandler func(context.Context, *ServerSession)
	// CompletionHandler answers completion/complete. If nil the server does
	// not advertise the completions capability.
	CompletionHandler func(context.Context, *CompleteRequest) (*CompleteResult, error)
	// SubscribeHandler and UnsubscribeHandler are called for
	// resources/subscribe and resources/unsubscribe after the server has
	// recorded the subscription. The server advertises resource
	// subscriptions when SubscribeHandler is set.
	SubscribeHandler   func(context.Context, *ServerSession, *SubscribeParams) error
	UnsubscribeHandler func(context.Context, *ServerSession, *UnsubscribeParams) error
	// RootsListChangedHandler is called when a client reports that its
	// roots changed.
	RootsListChangedHandler func(context.Context, *ServerSession)
	// ProgressNotificationHandler receives progress the client reports for
	// requests the server sent.
	ProgressNotificationHandler func(context.Context, *ServerSession, *ProgressNotificationParams)
	// KeepAlive, if positive, pings each session at this interval and
	// closes sessions that do not answer.
	KeepAlive time.Duration
	// TaskStore keeps the tasks of task-augmented requests. Nil means an
	// in-memory store private to this server.
	TaskStore TaskStore
	// TaskOwner, if set, names the owner of the tasks a session creates
	// (typically the authenticated principal of the request in ctx). Only
	// the owner can get, list, read or cancel a task; others are told the
	// task does not exist. Tasks with a named owner keep running after the
	// session that created them ends. When TaskOwner is nil or returns "",
	// tasks belong to the session and are cancelled when it ends.
	TaskOwner func(ctx context.Context, ss *ServerSession) string

	// Handler, if set, answers every request other than initialize and
	// ping in place of the server's own tools, resources, prompts and
	// tasks. Gateways and proxies use it to relay requests as raw JSON.
	// It may return a jsontext.Value, any value to marshal, or an error
	// (a *jsonrpc.Error chooses the code).
	Handler func(ctx context.Context, ss *ServerSession, method string, params jsontext.Value) (any, error)
	// NotificationHandler, if set, receives the client notifications the
	// server does not handle itself (everything but initialized,
	// cancelled and, unless RootsListChangedHandler or
	// ProgressNotificationHandler are set, roots/list_changed and progress).
	NotificationHandler func(ctx context.Context, ss *ServerSession, method string, params jsontext.Value)
	// CapabilitiesFunc, if set, decides the capabilities sent in answer to
	// initialize (Capabilities and the server's features are then not
	// consulted).
	CapabilitiesFunc func(ctx context.Context, ss *ServerSession, params *InitializeParams) ServerCapabilities

	// CacheHints, if set, chooses the caching hints (ttlMs, cacheScope)
	// of the cacheable results of modern requests (server/discover, the
	// lists, resources/read) by method. Nil means a TTL of zero and the
	// scope "private" (no shared cache may keep them).
	CacheHints func(method string) CacheHints
	// RequestStateKey is the HMAC-SHA256 key that protects the
	// requestState of multi round-trip requests. Nil means a random key
	// made by NewServer: states then do not survive a restart and are not
	// accepted by other replicas. Use at least 32 random bytes.
	RequestStateKey []byte
	// RequestStateTTL is how long a requestState stays valid. Zero means
	// DefaultRequestStateTTL (10 minutes).
	RequestStateTTL time.Duration
	// LegacyOnly turns off the serving of modern (2026-07-28) requests:
	// requests with the per-request _meta envelope and server/discover
	// are then handled as in a legacy session (which must be initialized
	// first).
	LegacyOnly bool
	// HandlerServesModern says that Handler is written for modern requests
	// too (it reads the envelope with RequestMetaFromContext and serves
	// without a session), subscriptions/listen included. A server with a
	// Handler serves only legacy sessions unless it is set.
	HandlerServesModern bool
	// ToolInputSchema, if set, returns the inputSchema of a tool a
	// Handler serves (nil if unknown), so that the Mcp-Param-* headers of
	// a modern tools/call are checked against its x-mcp-header
	// annotations as for the server's own tools. ctx is the HTTP
	// request's.
	ToolInputSchema func(ctx context.Context, name string) jsontext.Value

	now func() time.Time // the clock, for tests
}

// NewServer returns a server that describes itself with impl.
func NewServer(impl *Implementation, opts *ServerOptions) *Server {
	if impl == nil {
		panic("mcp: NewServer with nil Implementation")
	}
	s := &Server{impl: impl, sessions: make(map[*ServerSession]struct{})}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.Logger == nil {
		s.opts.Logger = slog.New(slog.DiscardHandler)
	}
	if s.opts.PageSize <= 0 {
		s.opts.PageSize = 1000
	}
	if s.opts.TaskStore == nil {
		s.opts.TaskStore = NewMemoryTaskStore(nil)
	}
	s.tasks = newTaskReceiver(s.opts.TaskStore, s.opts.Logger)
	s.stateKey = s.opts.RequestStateKey
	if len(s.stateKey) == 0 {
		s.stateKey = make([]byte, 32)
		rand.Read(s.stateKey)
	}
	return s
}

// ToolHandler handles a tools/call request. A returned *jsonrpc.Error is
// sent as a protocol error; any other error becomes a tool result with
// isError set and the error's text, as the spec asks for tool failures.
type ToolHandler func(ctx context.Context, req *CallToolRequest) (*CallToolResult, error)

// CallToolRequest is a tools/call request as a handler sees it.
type CallToolRequest struct {
	// Session is the session the request came on.
	Session *ServerSession
	// Params are the request's params.
	Params *CallToolParams
}

// Progress reports progress for the request if the caller asked for it
// (its params carry a progress token); otherwise it does nothing.
func (r *CallToolRequest) Progress(ctx context.Context, progress, total float64, message string) error {
	tok := r.Params.Meta.ProgressToken()
	if tok == nil {
		return nil
	}
	return r.Session.NotifyProgress(ctx, &ProgressNotificationParams{ProgressToken: tok, Progress: progress, Total: total, Message: message})
}

// ResourceHandler reads a resource. It returns an error wrapping
// ErrResourceNotFound (or a *jsonrpc.Error) when the URI does not exist.
type ResourceHandler func(ctx context.Context, req *ReadResourceRequest) (*ReadResourceResult, error)

// ReadResourceRequest is a resources/read request as a handler sees it.
type ReadResourceRequest struct {
	Session *ServerSession
	Params  *ReadResourceParams
	// Vars holds the values of a resource template's variables, when the
	// URI matched a template.
	Vars map[string]string
}

// PromptHandler answers prompts/get.
type PromptHandler func(ctx context.Context, req *GetPromptRequest) (*GetPromptResult, error)

// GetPromptRequest is a prompts/get request as a handler sees it.
type GetPromptRequest struct {
	Session *ServerSession
	Params  *GetPromptParams
}

// CompleteRequest is a completion/complete request as a handler sees it.
type CompleteRequest struct {
	Session *ServerSession
	Params  *CompleteParams
}

// ErrResourceNotFound is returned (wrapped) by resource handlers for URIs
// that do not exist; the client receives error -32002.
var ErrResourceNotFound = errors.New("resource not found")

type serverTool struct {
	tool      *Tool
	handler   ToolHandler
	input     *schemaValidator
	output    *schemaValidator
	rawOutput bool
	headers   []paramHeader // x-mcp-header annotations (modern_http.go)
}

func (t *serverTool) name() string { return t.tool.Name }

type serverResource struct {
	resource *Resource
	handler  ResourceHandler
}

func (r *serverResource) name() string { return r.resource.URI }

type serverTemplate struct {
	template *ResourceTemplate
	handler  ResourceHandler
	match    *uriTemplate
}

func (t *serverTemplate) name() string { return t.template.URITemplate }

type serverPrompt struct {
	prompt  *Prompt
	handler PromptHandler
}

func (p *serverPrompt) name() string { return p.prompt.Name }

// AddTool adds (or replaces) a tool. Its InputSchema (and OutputSchema, if
// any) must be valid JSON Schemas: arguments are validated against the input
// schema before the handler runs, and structured content against the output
// schema after it. AddTool panics on an invalid schema, like
// regexp.MustCompile, since it is a programming error; use AddToolChecked to
// get an error instead.
func (s *Server) AddTool(t *Tool, h ToolHandler) {
	if err := s.AddToolChecked(t, h); err != nil {
		panic(err)
	}
}

// AddToolChecked is AddTool returning an error for an invalid tool.
func (s *Server) AddToolChecked(t *Tool, h ToolHandler) error {
	if t == nil || t.Name == "" {
		return errors.New("mcp: tool needs a name")
	}
	if h == nil {
		return fmt.Errorf("mcp: tool %q has no handler", t.Name)
	}
	if len(t.InputSchema) == 0 {
		t.InputSchema = jsontext.Value(`{"type":"object"}`)
	}
	in, err := compileSchema(t.InputSchema)
	if err != nil {
		return fmt.Errorf("mcp: tool %q input schema: %w", t.Name, err)
	}
	st := &serverTool{tool: t, handler: h, input: in, headers: toolParamHeaders(t.InputSchema)}
	if len(t.OutputSchema) > 0 {
		if st.output, err = compileSchema(t.OutputSchema); err != nil {
			return fmt.Errorf("mcp: tool %q output schema: %w", t.Name, err)
		}
	}
	s.mu.Lock()
	s.tools.add(st)
	s.mu.Unlock()
	s.notifyAll(NotificationToolsListChanged)
	return nil
}

// RemoveTools removes the named tools.
func (s *Server) RemoveTools(names ...string) {
	s.mu.Lock()
	changed := s.tools.remove(names...)
	s.mu.Unlock()
	if changed {
		s.notifyAll(NotificationToolsListChanged)
	}
}

// AddResource adds (or replaces) a resource, keyed by its URI.
func (s *Server) AddResource(r *Resource, h ResourceHandler) {
	if r == nil || r.URI == "" || h == nil {
		panic("mcp: AddResource needs a resource with a URI and a handler")
	}
	s.mu.Lock()
	s.resources.add(&serverResource{resource: r, handler: h})
	s.mu.Unlock()
	s.notifyAll(NotificationResourcesListChanged)
}

// RemoveResources removes resources by URI.
func (s *Server) RemoveResources(uris ...string) {
	s.mu.Lock()
	changed := s.resources.remove(uris...)
	s.mu.Unlock()
	if changed {
		s.notifyAll(NotificationResourcesListChanged)
	}
}

// AddResourceTemplate adds (or replaces) a resource template. Reads of URIs
// that match the template's RFC 6570 URI template (and no exact resource) go
// to h, with the variables in ReadResourceRequest.Vars.
func (s *Server) AddResourceTemplate(t *ResourceTemplate, h ResourceHandler) {
	if t == nil || t.URITemplate == "" || h == nil {
		panic("mcp: AddResourceTemplate needs a template and a handler")
	}
	m, err := parseURITemplate(t.URITemplate)
	if err != nil {
		panic(fmt.Sprintf("mcp: resource template %q: %v", t.URITemplate, err))
	}
	s.mu.Lock()
	s.templates.add(&serverTemplate{template: t, handler: h, match: m})
	s.mu.Unlock()
	s.notifyAll(NotificationResourcesListChanged)
}

// RemoveResourceTemplates removes resource templates by URI template.
func (s *Server) RemoveResourceTemplates(templates ...string) {
	s.mu.Lock()
	changed := s.templates.remove(templates...)
	s.mu.Unlock()
	if changed {
		s.notifyAll(NotificationResourcesListChanged)
	}
}

// AddPrompt adds (or replaces) a prompt.
func (s *Server) AddPrompt(p *Prompt, h PromptHandler) {
	if p == nil || p.Name == "" || h == nil {
		panic("mcp: AddPrompt needs a named prompt and a handler")
	}
	s.mu.Lock()
	s.prompts.add(&serverPrompt{prompt: p, handler: h})
	s.mu.Unlock()
	s.notifyAll(NotificationPromptsListChanged)
}

// RemovePrompts removes prompts by name.
func (s *Server) RemovePrompts(names ...string) {
	s.mu.Lock()
	changed := s.prompts.remove(names...)
	s.mu.Unlock()
	if changed {
		s.notifyAll(NotificationPromptsListChanged)
	}
}

// ResourceUpdated tells every session subscribed to params.URI that the
// resource changed.
func (s *Server) ResourceUpdated(ctx context.Context, params *ResourceUpdatedNotificationParams) error {
	if raw, err := json.Marshal(params); err == nil {
		s.listeners.notify(NotificationResourcesUpdated, params.URI, raw)
	}
	var errs []error
	for _, ss := range s.Sessions() {
		if ss.isSubscribed(params.URI) {
			if err := ss.eng.notify(ctx, NotificationResourcesUpdated, params); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Sessions returns the server's current sessions.
func (s *Server) Sessions() []*ServerSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*ServerSession, 0, len(s.sessions))
	for ss := range s.sessions {
		out = append(out, ss)
	}
	return out
}

// notifyAll sends a list_changed notification to every initialized session.
func (s *Server) notifyAll(method string) {
	s.listeners.notify(method, "", nil)
	for _, ss := range s.Sessions() {
		if ss.isInitialized() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := ss.eng.notify(ctx, method, nil); err != nil {
				s.opts.Logger.Debug("mcp: list_changed notification failed", "method", method, "error", err)
			}
			cancel()
		}
	}
}

// capabilities derives the server's capabilities from its features.
func (s *Server) capabilities() ServerCapabilities {
	s.mu.Lock()
	defer s.mu.Unlock()
	var c ServerCapabilities
	if o := s.opts.Capabilities; o != nil {
		c = *o
	}
	if c.Tools == nil && s.tools.len() > 0 {
		c.Tools = &ToolCapabilities{ListChanged: true}
	}
	if c.Resources == nil && (s.resources.len() > 0 || s.templates.len() > 0) {
		c.Resources = &ResourceCapabilities{ListChanged: true}
	}
	if c.Resources != nil && s.opts.SubscribeHandler != nil {
		c.Resources.Subscribe = true
	}
	if c.Prompts == nil && s.prompts.len() > 0 {
		c.Prompts = &PromptCapabilities{ListChanged: true}
	}
	if c.Logging == nil {
		c.Logging = &LoggingCapabilities{}
	}
	if c.Completions == nil && s.opts.CompletionHandler != nil {
		c.Completions = &CompletionCapabilities{}
	}
	if c.Tasks == nil && s.anyTaskTools() {
		c.Tasks = &ServerTasksCapabilities{
			List:     &TasksListCapabilities{},
			Cancel:   &TasksCancelCapabilities{},
			Requests: &ServerTaskRequestsCapabilities{Tools: &ToolsTaskCapabilities{Call: &TaskRequestCapability{}}},
		}
	}
	return c
}

// ServerSessionOptions configure one server session.
type ServerSessionOptions struct{}

// Connect starts a session with the peer of t. The session serves until the
// peer disconnects or Close is called.
func (s *Server) Connect(ctx context.Context, t Transport, opts *ServerSessionOptions) (*ServerSession, error) {
	conn, err := t.Connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("mcp: connecting server transport: %w", err)
	}
	ss := &ServerSession{server: s, eng: newEngine(conn, s.opts.Logger)}
	ss.eng.onRequest = ss.handleRequest
	ss.eng.onNotification = ss.handleNotification
	ss.eng.onClose = func() {
		s.mu.Lock()
		delete(s.sessions, ss)
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.sessions[ss] = struct{}{}
	s.mu.Unlock()
	ss.eng.start(ctx)
	if s.opts.KeepAlive > 0 {
		go ss.keepAlive(s.opts.KeepAlive)
	}
	return ss, nil
}

// Run serves one session over t (typically a StdioTransport) until the peer
// disconnects or ctx is done.
func (s *Server) Run(ctx context.Context, t Transport) error {
	ss, err := s.Connect(ctx, t, nil)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { ss.Close() })
	defer stop()
	err = ss.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// ServerSession is one client's session with a Server.
type ServerSession struct {
	server *Server
	eng    *engine

	mu         sync.Mutex
	initParams *InitializeParams
	version    string
	initDone   bool
	logLevel   LoggingLevel
	subscribed map[string]struct{}
}

// ID returns the transport's session id ("" for transports without one).
func (ss *ServerSession) ID() string { return ss.eng.conn.SessionID() }

// Close ends the session.
func (ss *ServerSession) Close() error {
	ss.eng.shutdown(nil)
	return nil
}

// Wait blocks until the session ends and returns why (nil for an orderly
// end).
func (ss *ServerSession) Wait() error { return ss.eng.wait() }

// Done returns a channel that is closed when the session ends.
func (ss *ServerSession) Done() <-chan struct{} { return ss.eng.done }

// InitializeParams returns the client's initialize params, or nil before
// initialization.
func (ss *ServerSession) InitializeParams() *InitializeParams {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.initParams
}

// ProtocolVersion returns the negotiated protocol version ("" before
// initialization).
func (ss *ServerSession) ProtocolVersion() string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.version
}

func (ss *ServerSession) clientCaps() ClientCapabilities {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.initParams == nil {
		return ClientCapabilities{}
	}
	return ss.initParams.Capabilities
}

func (ss *ServerSession) isInitialized() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.initParams != nil
}

func (ss *ServerSession) isSubscribed(uri string) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	_, ok := ss.subscribed[uri]
	return ok
}

// CallRaw sends any request to the client with raw params and returns the
// raw result. Gateways use it to relay requests; send it with the context of
// the request it belongs to, so that it travels on that request's stream.
func (ss *ServerSession) CallRaw(ctx context.Context, method string, params jsontext.Value) (jsontext.Value, error) {
	var out jsontext.Value
	if err := ss.eng.call(ctx, method, params, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Notify sends any notification to the client with raw params.
func (ss *ServerSession) Notify(ctx context.Context, method string, params jsontext.Value) error {
	return ss.eng.notify(ctx, method, params)
}

// Ping sends a ping and waits for the answer.
func (ss *ServerSession) Ping(ctx context.Context) error {
	return ss.eng.call(ctx, MethodPing, nil, nil)
}

// NotifyProgress sends a progress notification. Send it with the context of
// the request it reports on, so that it travels on that request's stream.
func (ss *ServerSession) NotifyProgress(ctx context.Context, params *ProgressNotificationParams) error {
	return ss.notifyRelated(ctx, NotificationProgress, params)
}

// Log sends a log message if its level is at or above the level the client
// set with logging/setLevel (all levels before the client sets one).
func (ss *ServerSession) Log(ctx context.Context, params *LoggingMessageParams) error {
	if m := modernFrom(ctx); m != nil {
		// Modern requests opt in to log messages per request.
		if m.meta.LogLevel == "" || !params.Level.Enabled(m.meta.LogLevel) {
			return nil
		}
		return ss.notifyRelated(ctx, NotificationMessage, params)
	}
	ss.mu.Lock()
	min := ss.logLevel
	ss.mu.Unlock()
	if min != "" && !params.Level.Enabled(min) {
		return nil
	}
	return ss.notifyRelated(ctx, NotificationMessage, params)
}

// CreateMessage asks the client to sample a message from its model.
//
// Inside a modern request it becomes a multi round-trip input request (see
// RequestInput) keyed by the order of the handler's calls.
func (ss *ServerSession) CreateMessage(ctx context.Context, params *CreateMessageParams) (*CreateMessageResult, error) {
	if m := modernFrom(ctx); m != nil {
		return ss.SampleInput(ctx, m.nextInputKey(MethodSamplingCreateMessage), params)
	}
	caps := ss.clientCaps()
	if caps.Sampling == nil {
		return nil, errors.New("mcp: client does not support sampling")
	}
	if len(params.Tools) > 0 || params.ToolChoice != nil {
		if caps.Sampling.Tools == nil {
			return nil, errors.New("mcp: client does not support tools in sampling")
		}
	}
	res := new(CreateMessageResult)
	if err := ss.request(ctx, MethodSamplingCreateMessage, params, res); err != nil {
		return nil, err
	}
	return res, nil
}

// Elicit asks the client to elicit information from its user, in form mode
// (the default) or URL mode.
//
// Inside a modern request it becomes a multi round-trip input request (see
// RequestInput) keyed by the order of the handler's calls.
func (ss *ServerSession) Elicit(ctx context.Context, params *ElicitParams) (*ElicitResult, error) {
	if m := modernFrom(ctx); m != nil {
		return ss.ElicitInput(ctx, m.nextInputKey(MethodElicitationCreate), params)
	}
	caps := ss.clientCaps()
	if caps.Elicitation == nil {
		return nil, errors.New("mcp: client does not support elicitation")
	}
	if params.Mode == ElicitationModeURL {
		if ss.ProtocolVersion() < Version20251125 {
			return nil, fmt.Errorf("mcp: URL-mode elicitation needs protocol %s, session uses %s", Version20251125, ss.ProtocolVersion())
		}
		if caps.Elicitation.URL == nil {
			return nil, errors.New("mcp: client does not support URL-mode elicitation")
		}
	}
	res := new(ElicitResult)
	if err := ss.request(ctx, MethodElicitationCreate, params, res); err != nil {
		return nil, err
	}
	return res, nil
}

// NotifyElicitationComplete tells the client that the URL-mode elicitation
// with the given id has completed.
func (ss *ServerSession) NotifyElicitationComplete(ctx context.Context, elicitationID string) error {
	return ss.eng.notify(ctx, NotificationElicitationComplete, &ElicitationCompleteNotificationParams{ElicitationID: elicitationID})
}

// ListRoots asks the client for its roots.
//
// Inside a modern request it becomes a multi round-trip input request (see
// RequestInput) keyed by the order of the handler's calls.
func (ss *ServerSession) ListRoots(ctx context.Context) (*ListRootsResult, error) {
	if m := modernFrom(ctx); m != nil {
		return ss.ListRootsInput(ctx, m.nextInputKey(MethodRootsList))
	}
	if ss.clientCaps().Roots == nil {
		return nil, errors.New("mcp: client does not support roots")
	}
	res := new(ListRootsResult)
	if err := ss.request(ctx, MethodRootsList, &ListRootsParams{}, res); err != nil {
		return nil, err
	}
	return res, nil
}

func (ss *ServerSession) keepAlive(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ss.eng.done:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), every)
			err := ss.Ping(ctx)
			cancel()
			if errors.Is(err, errNoStream) {
				// The client has no stream open for server-initiated
				// messages (allowed over Streamable HTTP): nothing to check.
				continue
			}
			if err != nil {
				ss.server.opts.Logger.Info("mcp: closing session that stopped answering pings", "session", ss.ID(), "error", err)
				ss.eng.shutdown(fmt.Errorf("keep-alive ping failed: %w", err))
				return
			}
		}
	}
}

func (ss *ServerSession) handleNotification(ctx context.Context, req *jsonrpc.Request) {
	switch req.Method {
	case NotificationInitialized:
		ss.mu.Lock()
		first := !ss.initDone
		ss.initDone = true
		ss.mu.Unlock()
		if first && ss.server.opts.InitializedHandler != nil {
			ss.server.opts.InitializedHandler(ctx, ss)
		}
	case NotificationRootsListChanged:
		if h := ss.server.opts.RootsListChangedHandler; h != nil {
			h(ctx, ss)
			return
		}
		ss.otherNotification(ctx, req)
	case NotificationProgress:
		if h := ss.server.opts.ProgressNotificationHandler; h != nil {
			var p ProgressNotificationParams
			if err := json.Unmarshal(req.Params, &p); err == nil {
				h(ctx, ss, &p)
			}
			return
		}
		ss.otherNotification(ctx, req)
	default:
		ss.otherNotification(ctx, req)
	}
}

func (ss *ServerSession) otherNotification(ctx context.Context, req *jsonrpc.Request) {
	if h := ss.server.opts.NotificationHandler; h != nil {
		h(ctx, ss, req.Method, req.Params)
		return
	}
	ss.server.opts.Logger.Debug("mcp: unhandled notification", "method", req.Method)
}

func (ss *ServerSession) handleRequest(ctx context.Context, req *jsonrpc.Request) (any, error) {
	if res, err, ok := ss.maybeModern(ctx, req); ok {
		return res, err
	}
	if req.Method == MethodInitialize {
		return ss.initialize(ctx, req)
	}
	if req.Method == MethodPing {
		return nil, nil
	}
	if !ss.isInitialized() {
		return nil, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "session is not initialized: send initialize first")
	}
	if h := ss.server.opts.Handler; h != nil {
		return h(ctx, ss, req.Method, req.Params)
	}
	h, ok := serverMethods[req.Method]
	if !ok {
		return nil, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "method %q not found", req.Method)
	}
	if h.minVersion != "" && ss.ProtocolVersion() < h.minVersion {
		return nil, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "method %q is not available in protocol version %s", req.Method, ss.ProtocolVersion())
	}
	return h.fn(ss, ctx, req.Params)
}

type serverMethod struct {
	minVersion string
	fn         func(ss *ServerSession, ctx context.Context, params jsontext.Value) (any, error)
}

// serverMethods maps request methods to their handlers.
var serverMethods map[string]serverMethod

func init() {
	serverMethods = map[string]serverMethod{
		MethodToolsList:              {fn: (*ServerSession).listTools},
		MethodToolsCall:              {fn: (*ServerSession).callTool},
		MethodResourcesList:          {fn: (*ServerSession).listResources},
		MethodResourcesTemplatesList: {fn: (*ServerSession).listResourceTemplates},
		MethodResourcesRead:          {fn: (*ServerSession).readResource},
		MethodResourcesSubscribe:     {fn: (*ServerSession).subscribe},
		MethodResourcesUnsubscribe:   {fn: (*ServerSession).unsubscribe},
		MethodPromptsList:            {fn: (*ServerSession).listPrompts},
		MethodPromptsGet:             {fn: (*ServerSession).getPrompt},
		MethodCompletionComplete:     {fn: (*ServerSession).complete},
		MethodLoggingSetLevel:        {fn: (*ServerSession).setLevel},
	}
	for m, fn := range serverTaskMethods() {
		serverMethods[m] = serverMethod{minVersion: Version20251125, fn: fn}
	}
}

// unmarshalParams decodes params into p, mapping failure to -32602.
func unmarshalParams(params jsontext.Value, p any) error {
	if len(params) == 0 {
		return nil
	}
	if err := json.Unmarshal(params, p); err != nil {
		return &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "invalid params: " + err.Error()}
	}
	return nil
}

func (ss *ServerSession) initialize(ctx context.Context, req *jsonrpc.Request) (any, error) {
	var p InitializeParams
	if err := unmarshalParams(req.Params, &p); err != nil {
		return nil, err
	}
	if p.ProtocolVersion == "" {
		return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "initialize: protocolVersion is required")
	}
	version := p.ProtocolVersion
	if !IsSupportedProtocolVersion(version) {
		version = LatestProtocolVersion
	}
	ss.mu.Lock()
	if ss.initParams != nil {
		ss.mu.Unlock()
		return nil, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "session is already initialized")
	}
	ss.initParams = &p
	ss.version = version
	ss.mu.Unlock()
	if pv, ok := ss.eng.conn.(protocolVersionSetter); ok {
		pv.setProtocolVersion(version)
	}
	s := ss.server
	var caps ServerCapabilities
	if f := s.opts.CapabilitiesFunc; f != nil {
		caps = f(ctx, ss, &p)
	} else {
		caps = s.capabilities()
	}
	return &InitializeResult{
		ProtocolVersion: version,
		Capabilities:    gateCapabilities(caps, version),
		ServerInfo:      gateImplementation(*s.impl, version),
		Instructions:    s.opts.Instructions,
	}, nil
}

// gateCapabilities removes what the negotiated version does not know.
func gateCapabilities(c ServerCapabilities, version string) ServerCapabilities {
	if version < Version20251125 {
		c.Tasks = nil
	}
	if version < Version20250326 {
		c.Completions = nil
	}
	return c
}

// gateImplementation removes fields the negotiated version does not know.
func gateImplementation(impl Implementation, version string) Implementation {
	if version < Version20251125 {
		impl.Icons = nil
		impl.Description = ""
		impl.WebsiteURL = ""
	}
	if version < Version20250618 {
		impl.Title = ""
	}
	return impl
}

// cursor encoding: the key of the last item returned, base64url.
func encodeCursor(key string) string { return base64.RawURLEncoding.EncodeToString([]byte(key)) }

func decodeCursor(c string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "invalid cursor"}
	}
	return string(b), nil
}

func (ss *ServerSession) listTools(ctx context.Context, params jsontext.Value) (any, error) {
	var p ListToolsParams
	if err := unmarshalParams(params, &p); err != nil {
		return nil, err
	}
	s := ss.server
	s.mu.Lock()
	items, next, err := s.tools.page(p.Cursor, s.opts.PageSize)
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	res := &ListToolsResult{Tools: make([]*Tool, len(items)), NextCursor: next}
	version := ss.ProtocolVersion()
	for i, t := range items {
		res.Tools[i] = gateTool(t.tool, version)
	}
	return res, nil
}

// gateTool removes fields the negotiated version does not know.
func gateTool(t *Tool, version string) *Tool {
	if version >= Version20251125 {
		return t
	}
	c := *t
	c.Icons = nil
	c.Execution = nil
	if version < Version20250618 {
		c.Title = ""
		c.OutputSchema = nil
	}
	if version < Version20250326 {
		c.Annotations = nil
	}
	return &c
}

func (ss *ServerSession) callTool(ctx context.Context, params jsontext.Value) (any, error) {
	p := new(CallToolParams)
	if err := unmarshalParams(params, p); err != nil {
		return nil, err
	}
	return ss.callToolParams(ctx, p)
}

// callToolParams is callTool with its params decoded.
func (ss *ServerSession) callToolParams(ctx context.Context, p *CallToolParams) (any, error) {
	s := ss.server
	s.mu.Lock()
	st, ok := s.tools.get(p.Name)
	s.mu.Unlock()
	if !ok {
		return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "unknown tool %q", p.Name)
	}
	support := TaskSupportForbidden
	if st.tool.Execution != nil && st.tool.Execution.TaskSupport != "" {
		support = st.tool.Execution.TaskSupport
	}
	if p.Task != nil && (!ss.acceptsToolTasks() || modernFrom(ctx) != nil) {
		// A receiver that did not declare task support for tools/call
		// (or a session below 2025-11-25) processes the call normally.
		p.Task = nil
	}
	if p.Task != nil {
		if support == TaskSupportForbidden {
			return nil, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "tool %q does not support task-augmented execution", p.Name)
		}
		return ss.callToolAsTask(ctx, st, p)
	}
	if support == TaskSupportRequired && ss.ProtocolVersion() >= Version20251125 && modernFrom(ctx) == nil {
		return nil, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "tool %q must be called as a task", p.Name)
	}
	return ss.runTool(ctx, st, p)
}

// runTool validates arguments, runs the handler and checks its result.
func (ss *ServerSession) runTool(ctx context.Context, st *serverTool, p *CallToolParams) (*CallToolResult, error) {
	if err := st.input.validateArgs(p.Arguments); err != nil {
		return toolError(fmt.Sprintf("invalid arguments for tool %q: %v", p.Name, err)), nil
	}
	res, err := st.handler(ctx, &CallToolRequest{Session: ss, Params: p})
	if err != nil {
		var we *jsonrpc.Error
		if errors.As(err, &we) {
			return nil, we
		}
		return toolError(err.Error()), nil
	}
	if res == nil {
		res = &CallToolResult{}
	}
	if st.output != nil && !res.IsError {
		if len(res.StructuredContent) == 0 {
			return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "tool %q declares an output schema but returned no structured content", p.Name)
		}
		if err := st.output.validateValue(res.StructuredContent); err != nil {
			return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "tool %q returned structured content that does not match its output schema: %v", p.Name, err)
		}
	}
	return res, nil
}

func toolError(msg string) *CallToolResult {
	return &CallToolResult{IsError: true, Content: []Content{&TextContent{Text: msg}}}
}

func (ss *ServerSession) listResources(ctx context.Context, params jsontext.Value) (any, error) {
	var p ListResourcesParams
	if err := unmarshalParams(params, &p); err != nil {
		return nil, err
	}
	s := ss.server
	s.mu.Lock()
	items, next, err := s.resources.page(p.Cursor, s.opts.PageSize)
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	res := &ListResourcesResult{Resources: make([]*Resource, len(items)), NextCursor: next}
	for i, r := range items {
		res.Resources[i] = r.resource
	}
	return res, nil
}

func (ss *ServerSession) listResourceTemplates(ctx context.Context, params jsontext.Value) (any, error) {
	var p ListResourceTemplatesParams
	if err := unmarshalParams(params, &p); err != nil {
		return nil, err
	}
	s := ss.server
	s.mu.Lock()
	items, next, err := s.templates.page(p.Cursor, s.opts.PageSize)
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	res := &ListResourceTemplatesResult{ResourceTemplates: make([]*ResourceTemplate, len(items)), NextCursor: next}
	for i, t := range items {
		res.ResourceTemplates[i] = t.template
	}
	return res, nil
}

func (ss *ServerSession) readResource(ctx context.Context, params jsontext.Value) (any, error) {
	p := new(ReadResourceParams)
	if err := unmarshalParams(params, p); err != nil {
		return nil, err
	}
	if p.URI == "" {
		return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "resources/read: uri is required")
	}
	s := ss.server
	s.mu.Lock()
	var h ResourceHandler
	var vars map[string]string
	if r, ok := s.resources.get(p.URI); ok {
		h = r.handler
	} else {
		for _, t := range s.templates.items {
			if v, ok := t.match.match(p.URI); ok {
				h, vars = t.handler, v
				break
			}
		}
	}
	s.mu.Unlock()
	if h == nil {
		return nil, resourceNotFound(p.URI)
	}
	res, err := h(ctx, &ReadResourceRequest{Session: ss, Params: p, Vars: vars})
	if err != nil {
		if errors.Is(err, ErrResourceNotFound) {
			return nil, resourceNotFound(p.URI)
		}
		return nil, err
	}
	return res, nil
}

func resourceNotFound(uri string) *jsonrpc.Error {
	data, _ := json.Marshal(struct {
		URI string `json:"uri"`
	}{uri})
	return &jsonrpc.Error{Code: jsonrpc.CodeResourceNotFound, Message: "resource not found: " + uri, Data: data}
}

func (ss *ServerSession) subscribe(ctx context.Context, params jsontext.Value) (any, error) {
	p := new(SubscribeParams)
	if err := unmarshalParams(params, p); err != nil {
		return nil, err
	}
	h := ss.server.opts.SubscribeHandler
	if h == nil {
		return nil, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "this server does not support resource subscriptions")
	}
	if p.URI == "" {
		return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "resources/subscribe: uri is required")
	}
	if err := h(ctx, ss, p); err != nil {
		return nil, err
	}
	ss.mu.Lock()
	if ss.subscribed == nil {
		ss.subscribed = make(map[string]struct{})
	}
	ss.subscribed[p.URI] = struct{}{}
	ss.mu.Unlock()
	return nil, nil
}

func (ss *ServerSession) unsubscribe(ctx context.Context, params jsontext.Value) (any, error) {
	p := new(UnsubscribeParams)
	if err := unmarshalParams(params, p); err != nil {
		return nil, err
	}
	if ss.server.opts.SubscribeHandler == nil {
		return nil, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "this server does not support resource subscriptions")
	}
	if h := ss.server.opts.UnsubscribeHandler; h != nil {
		if err := h(ctx, ss, p); err != nil {
			return nil, err
		}
	}
	ss.mu.Lock()
	delete(ss.subscribed, p.URI)
	ss.mu.Unlock()
	return nil, nil
}

func (ss *ServerSession) listPrompts(ctx context.Context, params jsontext.Value) (any, error) {
	var p ListPromptsParams
	if err := unmarshalParams(params, &p); err != nil {
		return nil, err
	}
	s := ss.server
	s.mu.Lock()
	items, next, err := s.prompts.page(p.Cursor, s.opts.PageSize)
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	res := &ListPromptsResult{Prompts: make([]*Prompt, len(items)), NextCursor: next}
	for i, pr := range items {
		res.Prompts[i] = pr.prompt
	}
	return res, nil
}

func (ss *ServerSession) getPrompt(ctx context.Context, params jsontext.Value) (any, error) {
	p := new(GetPromptParams)
	if err := unmarshalParams(params, p); err != nil {
		return nil, err
	}
	s := ss.server
	s.mu.Lock()
	sp, ok := s.prompts.get(p.Name)
	s.mu.Unlock()
	if !ok {
		return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "unknown prompt %q", p.Name)
	}
	for _, a := range sp.prompt.Arguments {
		if a.Required {
			if _, ok := p.Arguments[a.Name]; !ok {
				return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "prompt %q: missing required argument %q", p.Name, a.Name)
			}
		}
	}
	return sp.handler(ctx, &GetPromptRequest{Session: ss, Params: p})
}

func (ss *ServerSession) complete(ctx context.Context, params jsontext.Value) (any, error) {
	h := ss.server.opts.CompletionHandler
	if h == nil {
		return nil, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "this server does not support completion")
	}
	p := new(CompleteParams)
	if err := unmarshalParams(params, p); err != nil {
		return nil, err
	}
	res, err := h(ctx, &CompleteRequest{Session: ss, Params: p})
	if err != nil {
		return nil, err
	}
	if res == nil {
		res = &CompleteResult{}
	}
	if res.Completion.Values == nil {
		res.Completion.Values = []string{}
	}
	return res, nil
}

func (ss *ServerSession) setLevel(ctx context.Context, params jsontext.Value) (any, error) {
	p := new(SetLevelParams)
	if err := unmarshalParams(params, p); err != nil {
		return nil, err
	}
	if !p.Level.IsValid() {
		return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "unknown logging level %q", p.Level)
	}
	ss.mu.Lock()
	ss.logLevel = p.Level
	ss.mu.Unlock()
	return nil, nil
}

// featureSet is a set of named features kept sorted by name, for stable
// pagination.
type featureSet[T interface{ name() string }] struct {
	items []T
}

func (f *featureSet[T]) len() int { return len(f.items) }

func (f *featureSet[T]) find(name string) (int, bool) {
	return slices.BinarySearchFunc(f.items, name, func(it T, n string) int { return strings.Compare(it.name(), n) })
}

func (f *featureSet[T]) get(name string) (T, bool) {
	i, ok := f.find(name)
	if !ok {
		var zero T
		return zero, false
	}
	return f.items[i], true
}

func (f *featureSet[T]) add(it T) {
	i, ok := f.find(it.name())
	if ok {
		f.items[i] = it
		return
	}
	f.items = slices.Insert(f.items, i, it)
}

func (f *featureSet[T]) remove(names ...string) bool {
	changed := false
	for _, n := range names {
		if i, ok := f.find(n); ok {
			f.items = slices.Delete(f.items, i, i+1)
			changed = true
		}
	}
	return changed
}

// page returns up to size items after the cursor, and the next cursor.
func (f *featureSet[T]) page(cursor string, size int) ([]T, string, error) {
	start := 0
	if cursor != "" {
		after, err := decodeCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		i, ok := f.find(after)
		if ok {
			i++
		}
		start = i
	}
	end := min(start+size, len(f.items))
	items := slices.Clone(f.items[start:end])
	next := ""
	if end < len(f.items) {
		next = encodeCursor(f.items[end-1].name())
	}
	return items, next, nil
}

// anyTaskTools reports whether any tool may run as a task. s.mu is held.
func (s *Server) anyTaskTools() bool {
	for _, t := range s.tools.items {
		if e := t.tool.Execution; e != nil && e.TaskSupport != "" && e.TaskSupport != TaskSupportForbidden {
			return true
		}
	}
	return false
}
