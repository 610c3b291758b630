package mcp

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/jsonrpc"
)

// A Client connects to MCP servers. One Client can hold many sessions; its
// handlers answer the requests servers send back (sampling, elicitation,
// roots).
type Client struct {
	impl *Implementation
	opts ClientOptions

	mu       sync.Mutex
	roots    featureSet[*clientRoot]
	sessions map[*ClientSession]struct{}
	tasks    *taskReceiver // the tasks of task-augmented requests (tasks_client.go)
}

// ClientOptions configure a Client. The zero value is valid.
type ClientOptions struct {
	// Logger receives the client's own diagnostics. Nil discards them.
	Logger *slog.Logger
	// ProtocolVersion is the version to ask for. Empty means
	// LatestProtocolVersion. Version20260728 makes the client dual-era:
	// Connect probes with server/discover and speaks 2026-07-28 to a
	// modern server (no initialize, no session, every request with the
	// _meta envelope), and falls back to initialize with
	// LatestProtocolVersion when the server turns out legacy
	// (modern_client.go). A legacy version pins that version.
	ProtocolVersion string
	// ModernOnly, with ProtocolVersion Version20260728, makes Connect fail
	// with ErrNotModern instead of falling back to initialize.
	ModernOnly bool
	// ProbeTimeout bounds the server/discover probe of a dual-era client
	// on a connection transport (stdio): a server silent that long is
	// taken to be legacy. Zero means DefaultProbeTimeout. Over HTTP the
	// probe is bounded by the Connect context only.
	ProbeTimeout time.Duration
	// MaxInputRounds bounds the input_required rounds (MRTR) of one
	// modern request. Zero means DefaultMaxInputRounds.
	MaxInputRounds int
	// Capabilities, if set, are merged into the capabilities derived from
	// the handlers (use it for experimental capabilities).
	Capabilities *ClientCapabilities
	// RequestTimeout, if positive, bounds every request the client sends
	// whose context has no earlier deadline.
	RequestTimeout time.Duration

	// CreateMessageHandler answers sampling/createMessage. Setting it
	// advertises the sampling capability.
	CreateMessageHandler func(context.Context, *CreateMessageRequest) (*CreateMessageResult, error)
	// SamplingTools advertises support for tools in sampling requests.
	SamplingTools bool
	// ElicitationHandler answers elicitation/create. Setting it advertises
	// form-mode elicitation. For accepted form elicitations, fields the
	// handler left out are filled from the schema's defaults.
	ElicitationHandler func(context.Context, *ElicitRequest) (*ElicitResult, error)
	// URLElicitation advertises URL-mode elicitation (ElicitationHandler
	// then also receives URL-mode requests).
	URLElicitation bool
	// ElicitationCompleteHandler is told when a URL-mode elicitation
	// completes.
	ElicitationCompleteHandler func(context.Context, *ClientSession, *ElicitationCompleteNotificationParams)

	// ProgressHandler receives every progress notification (per-call
	// handlers can also be set with WithProgress).
	ProgressHandler func(context.Context, *ClientSession, *ProgressNotificationParams)
	// LoggingMessageHandler receives log messages from the server.
	LoggingMessageHandler func(context.Context, *ClientSession, *LoggingMessageParams)
	// ToolListChangedHandler, PromptListChangedHandler and
	// ResourceListChangedHandler are told when the server's lists change.
	ToolListChangedHandler     func(context.Context, *ClientSession)
	PromptListChangedHandler   func(context.Context, *ClientSession)
	ResourceListChangedHandler func(context.Context, *ClientSession)
	// ResourceUpdatedHandler is told when a subscribed resource changes.
	ResourceUpdatedHandler func(context.Context, *ClientSession, *ResourceUpdatedNotificationParams)
	// TaskStatusHandler is told of task status changes.
	TaskStatusHandler func(context.Context, *ClientSession, *TaskStatusNotificationParams)
	// TaskStore keeps the tasks the client runs for task-augmented
	// requests from servers (sampling, elicitation). Nil means an
	// in-memory store.
	TaskStore TaskStore

	// Handler, if set, answers every request from the server other than
	// ping, in place of the handlers above; the capabilities advertised
	// are then exactly Capabilities. Gateways use it to relay requests as
	// raw JSON. It may return a jsontext.Value, any value to marshal, or an
	// error (a *jsonrpc.Error chooses the code).
	Handler func(ctx context.Context, cs *ClientSession, method string, params jsontext.Value) (any, error)
	// NotificationHandler, if set, receives every notification from the
	// server (after per-call progress callbacks have run), in place of
	// the notification handlers above.
	NotificationHandler func(ctx context.Context, cs *ClientSession, method string, params jsontext.Value)
}

// CreateMessageRequest is a sampling/createMessage request as a handler
// sees it.
type CreateMessageRequest struct {
	Session *ClientSession
	Params  *CreateMessageParams
}

// ElicitRequest is an elicitation/create request as a handler sees it.
type ElicitRequest struct {
	Session *ClientSession
	Params  *ElicitParams
}

type clientRoot struct{ root *Root }

func (r *clientRoot) name() string { return r.root.URI }

// NewClient returns a client that describes itself with impl.
func NewClient(impl *Implementation, opts *ClientOptions) *Client {
	if impl == nil {
		panic("mcp: NewClient with nil Implementation")
	}
	c := &Client{impl: impl, sessions: make(map[*ClientSession]struct{})}
	if opts != nil {
		c.opts = *opts
	}
	if c.opts.Logger == nil {
		c.opts.Logger = slog.New(slog.DiscardHandler)
	}
	if c.opts.ProtocolVersion == "" {
		c.opts.ProtocolVersion = LatestProtocolVersion
	}
	if c.opts.TaskStore == nil {
		c.opts.TaskStore = NewMemoryTaskStore(nil)
	}
	c.tasks = newTaskReceiver(c.opts.TaskStore, c.opts.Logger)
	return c
}

// AddRoots adds roots and tells connected servers that the list changed.
func (c *Client) AddRoots(roots ...*Root) {
	c.mu.Lock()
	for _, r := range roots {
		c.roots.add(&clientRoot{r})
	}
	c.mu.Unlock()
	c.notifyRootsChanged()
}

// RemoveRoots removes roots by URI.
func (c *Client) RemoveRoots(uris ...string) {
	c.mu.Lock()
	changed := c.roots.remove(uris...)
	c.mu.Unlock()
	if changed {
		c.notifyRootsChanged()
	}
}

func (c *Client) notifyRootsChanged() {
	c.mu.Lock()
	sessions := make([]*ClientSession, 0, len(c.sessions))
	for cs := range c.sessions {
		sessions = append(sessions, cs)
	}
	c.mu.Unlock()
	for _, cs := range sessions {
		if cs.modernState() != nil {
			continue // modern revisions have no such notification
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = cs.engine().notify(ctx, NotificationRootsListChanged, nil)
		cancel()
	}
}

func (c *Client) capabilities() ClientCapabilities {
	var caps ClientCapabilities
	if c.opts.Capabilities != nil {
		caps = *c.opts.Capabilities
	}
	if c.opts.Handler != nil {
		return caps
	}
	if caps.Roots == nil {
		caps.Roots = &RootsCapabilities{ListChanged: true}
	}
	if caps.Sampling == nil && c.opts.CreateMessageHandler != nil {
		caps.Sampling = &SamplingCapabilities{}
		if c.opts.SamplingTools {
			caps.Sampling.Tools = &SamplingToolsCapabilities{}
		}
	}
	if caps.Elicitation == nil && c.opts.ElicitationHandler != nil {
		caps.Elicitation = &ElicitationCapabilities{Form: &FormElicitationCapabilities{}}
		if c.opts.URLElicitation {
			caps.Elicitation.URL = &URLElicitationCapabilities{}
		}
	}
	if caps.Tasks == nil && (c.opts.CreateMessageHandler != nil || c.opts.ElicitationHandler != nil) {
		caps.Tasks = &ClientTasksCapabilities{
			List:     &TasksListCapabilities{},
			Cancel:   &TasksCancelCapabilities{},
			Requests: &ClientTaskRequestsCapabilities{},
		}
		if c.opts.CreateMessageHandler != nil {
			caps.Tasks.Requests.Sampling = &SamplingTaskCapabilities{CreateMessage: &TaskRequestCapability{}}
		}
		if c.opts.ElicitationHandler != nil {
			caps.Tasks.Requests.Elicitation = &ElicitationTaskCapabilities{Create: &TaskRequestCapability{}}
		}
	}
	return caps
}

// ClientSessionOptions configure one client session.
type ClientSessionOptions struct {
	// Resume, if set, resumes an existing session with the server (one
	// that State returned, typically saved by an earlier process) instead
	// of performing the initialize handshake. The transport must support
	// session ids (StreamableClientTransport). If the server no longer
	// knows the session, Connect fails with an error wrapping
	// ErrSessionExpired: there is no silent re-initialization then.
	Resume *ClientSessionState
}

// ClientSessionState is what a client needs to resume a session with a
// server without a new initialize handshake: the session id the server
// assigned, the negotiated protocol version and the server's initialize
// result.
type ClientSessionState struct {
	SessionID        string
	ProtocolVersion  string
	InitializeResult *InitializeResult
}

// sessionResumer is implemented by connections that can take over an
// existing session by its id.
type sessionResumer interface {
	resumeSession(id string) error
}

// Connect connects to a server through t and performs the initialize
// handshake (or, with opts.Resume, resumes an existing session). If the
// transport later reports that the server ended the session
// (ErrSessionExpired), the session re-connects and re-initializes
// transparently and retries the request once.
func (c *Client) Connect(ctx context.Context, t Transport, opts *ClientSessionOptions) (*ClientSession, error) {
	cs := &ClientSession{client: c, transport: t}
	var err error
	if opts != nil && opts.Resume != nil {
		err = cs.resume(ctx, opts.Resume)
	} else {
		err = cs.connect(ctx)
	}
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.sessions[cs] = struct{}{}
	c.mu.Unlock()
	return cs, nil
}

// ClientSession is a session with one server.
type ClientSession struct {
	client    *Client
	transport Transport

	eng atomic.Pointer[engine]

	mu         sync.Mutex
	initResult *InitializeResult
	modern     *modernClient // nil for a legacy session
	closing    bool

	progressMu      sync.Mutex
	progress        map[any]func(*ProgressNotificationParams)
	nextProgressTok atomic.Int64
	reconnectMu     sync.Mutex
}

func (cs *ClientSession) engine() *engine { return cs.eng.Load() }

func (cs *ClientSession) connect(ctx context.Context) error {
	c := cs.client
	conn, err := cs.transport.Connect(ctx)
	if err != nil {
		return fmt.Errorf("mcp: connecting: %w", err)
	}
	eng := newEngine(conn, c.opts.Logger)
	eng.onRequest = cs.handleRequest
	eng.onNotification = cs.handleNotification
	eng.start(ctx)
	cs.eng.Store(eng)

	if c.wantsModern() {
		m, err := cs.probe(ctx, eng)
		if err != nil {
			eng.shutdown(nil)
			return err
		}
		if m != nil {
			cs.mu.Lock()
			cs.modern, cs.initResult = m, initFromDiscover(m)
			cs.mu.Unlock()
			return nil
		}
	}
	params := &InitializeParams{
		ProtocolVersion: c.legacyVersion(),
		Capabilities:    c.capabilities(),
		ClientInfo:      *c.impl,
	}
	if params.ProtocolVersion < Version20251125 {
		params.Capabilities.Tasks = nil
		if e := params.Capabilities.Elicitation; e != nil {
			params.Capabilities.Elicitation = &ElicitationCapabilities{}
		}
		params.ClientInfo = gateImplementation(params.ClientInfo, params.ProtocolVersion)
	}
	res := new(InitializeResult)
	if err := eng.call(cs.withTimeout(ctx), MethodInitialize, params, res); err != nil {
		eng.shutdown(nil)
		return fmt.Errorf("mcp: initialize: %w", err)
	}
	if !IsSupportedProtocolVersion(res.ProtocolVersion) {
		eng.shutdown(nil)
		return fmt.Errorf("mcp: server chose unsupported protocol version %q", res.ProtocolVersion)
	}
	if pv, ok := conn.(protocolVersionSetter); ok {
		pv.setProtocolVersion(res.ProtocolVersion)
	}
	cs.mu.Lock()
	cs.initResult = res
	cs.mu.Unlock()
	if err := eng.notify(ctx, NotificationInitialized, nil); err != nil {
		eng.shutdown(nil)
		return fmt.Errorf("mcp: sending initialized: %w", err)
	}
	return nil
}

// resume takes over the existing server session st describes: it checks
// with a ping that the server still knows the session.
func (cs *ClientSession) resume(ctx context.Context, st *ClientSessionState) error {
	switch {
	case st.SessionID == "":
		return errors.New("mcp: resuming a session: no session id")
	case st.InitializeResult == nil:
		return errors.New("mcp: resuming a session: no initialize result")
	case !IsSupportedProtocolVersion(st.ProtocolVersion):
		return fmt.Errorf("mcp: resuming a session: unsupported protocol version %q", st.ProtocolVersion)
	}
	conn, err := cs.transport.Connect(ctx)
	if err != nil {
		return fmt.Errorf("mcp: connecting: %w", err)
	}
	r, ok := conn.(sessionResumer)
	if !ok {
		conn.Close()
		return errors.New("mcp: resuming a session: the transport has no session ids")
	}
	if err := r.resumeSession(st.SessionID); err != nil {
		conn.Close()
		return fmt.Errorf("mcp: resuming a session: %w", err)
	}
	if pv, ok := conn.(protocolVersionSetter); ok {
		pv.setProtocolVersion(st.ProtocolVersion)
	}
	eng := newEngine(conn, cs.client.opts.Logger)
	eng.onRequest = cs.handleRequest
	eng.onNotification = cs.handleNotification
	eng.start(ctx)
	cs.eng.Store(eng)
	res := *st.InitializeResult
	res.ProtocolVersion = st.ProtocolVersion
	cs.mu.Lock()
	cs.initResult = &res
	cs.mu.Unlock()
	if err := eng.call(cs.withTimeout(ctx), MethodPing, nil, nil); err != nil {
		eng.shutdown(nil)
		return fmt.Errorf("mcp: resuming session %s: %w", st.SessionID, err)
	}
	if l, ok := conn.(interface{ startStandalone() }); ok {
		l.startStandalone()
	}
	return nil
}

// State returns what resuming this session later needs (see
// ClientSessionOptions.Resume). Its SessionID is "" when the transport
// has no session ids.
func (cs *ClientSession) State() *ClientSessionState {
	res := cs.InitializeResult()
	return &ClientSessionState{SessionID: cs.ID(), ProtocolVersion: res.ProtocolVersion, InitializeResult: res}
}

// InitializeResult returns the server's initialize result.
func (cs *ClientSession) InitializeResult() *InitializeResult {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.initResult
}

// ProtocolVersion returns the negotiated protocol version.
func (cs *ClientSession) ProtocolVersion() string {
	return cs.InitializeResult().ProtocolVersion
}

// ID returns the transport's session id ("" if it has none).
func (cs *ClientSession) ID() string { return cs.engine().conn.SessionID() }

// Close ends the session.
func (cs *ClientSession) Close() error {
	cs.mu.Lock()
	cs.closing = true
	cs.mu.Unlock()
	cs.client.mu.Lock()
	delete(cs.client.sessions, cs)
	cs.client.mu.Unlock()
	cs.engine().shutdown(nil)
	return nil
}

// detacher is implemented by connections that can end without ending
// the server's session.
type detacher interface {
	keepSession()
}

// Detach ends the connection like Close, but leaves the session at the
// server (Streamable HTTP: no DELETE), so that it can be resumed later,
// by this process or another, with the state State returns (see
// ClientSessionOptions.Resume). With a transport that has no session ids
// it is Close.
func (cs *ClientSession) Detach() error {
	if d, ok := cs.engine().conn.(detacher); ok {
		d.keepSession()
	}
	return cs.Close()
}

// Wait blocks until the session ends.
func (cs *ClientSession) Wait() error { return cs.engine().wait() }

func (cs *ClientSession) withTimeout(ctx context.Context) context.Context {
	d := cs.client.opts.RequestTimeout
	if d <= 0 {
		return ctx
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		return ctx
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	_ = cancel // released when the deadline passes; calls end before that
	return ctx
}

// call sends a request, reconnecting once if the server ended the session.
func (cs *ClientSession) call(ctx context.Context, method string, params, result any) error {
	if d := cs.client.opts.RequestTimeout; d > 0 {
		if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > d {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
	}
	if m := cs.modernState(); m != nil {
		return cs.callModern(ctx, m, method, params, result)
	}
	eng := cs.engine()
	err := eng.call(ctx, method, params, result)
	if err != nil && errors.Is(err, ErrSessionExpired) {
		if rerr := cs.reconnect(ctx, eng); rerr != nil {
			return fmt.Errorf("%w (reconnecting: %w)", err, rerr)
		}
		return cs.engine().call(ctx, method, params, result)
	}
	return err
}

// reconnect replaces an expired engine with a freshly initialized one.
func (cs *ClientSession) reconnect(ctx context.Context, old *engine) error {
	cs.reconnectMu.Lock()
	defer cs.reconnectMu.Unlock()
	if cs.engine() != old {
		return nil // someone else already reconnected
	}
	cs.mu.Lock()
	closing := cs.closing
	cs.mu.Unlock()
	if closing {
		return ErrConnectionClosed
	}
	old.shutdown(ErrSessionExpired)
	return cs.connect(ctx)
}

// Ping sends a ping.
func (cs *ClientSession) Ping(ctx context.Context) error {
	return cs.call(ctx, MethodPing, nil, nil)
}

type progressKey struct{}

// WithProgress returns a context that makes the next request sent with it
// ask for progress (unless its params already carry a progress token) and
// deliver the progress notifications to fn.
func WithProgress(ctx context.Context, fn func(*ProgressNotificationParams)) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

// withProgressToken sets a progress token in meta when ctx asks for
// progress, and returns a function to unregister it.
func (cs *ClientSession) withProgressToken(ctx context.Context, meta *Meta) func() {
	fn, _ := ctx.Value(progressKey{}).(func(*ProgressNotificationParams))
	if fn == nil {
		return func() {}
	}
	tok := meta.ProgressToken()
	if tok == nil {
		tok = fmt.Sprintf("p%d", cs.nextProgressTok.Add(1))
		meta.SetProgressToken(tok)
	}
	cs.progressMu.Lock()
	if cs.progress == nil {
		cs.progress = make(map[any]func(*ProgressNotificationParams))
	}
	cs.progress[tok] = fn
	cs.progressMu.Unlock()
	return func() {
		cs.progressMu.Lock()
		delete(cs.progress, tok)
		cs.progressMu.Unlock()
	}
}

// CallTool calls a tool. A tool that fails reports it in the result
// (IsError); a protocol failure is an error.
func (cs *ClientSession) CallTool(ctx context.Context, params *CallToolParams) (*CallToolResult, error) {
	defer cs.withProgressToken(ctx, &params.Meta)()
	res := new(CallToolResult)
	if err := cs.call(ctx, MethodToolsCall, params, res); err != nil {
		return nil, err
	}
	return res, nil
}

// ListTools lists one page of tools.
func (cs *ClientSession) ListTools(ctx context.Context, params *ListToolsParams) (*ListToolsResult, error) {
	if params == nil {
		params = &ListToolsParams{}
	}
	res := new(ListToolsResult)
	if err := cs.call(ctx, MethodToolsList, params, res); err != nil {
		return nil, err
	}
	return res, nil
}

// Tools iterates over all tools, page by page.
func (cs *ClientSession) Tools(ctx context.Context) iter.Seq2[*Tool, error] {
	return paginate(ctx, func(cursor string) ([]*Tool, string, error) {
		r, err := cs.ListTools(ctx, &ListToolsParams{Cursor: cursor})
		if err != nil {
			return nil, "", err
		}
		return r.Tools, r.NextCursor, nil
	})
}

func paginate[T any](ctx context.Context, page func(cursor string) ([]T, string, error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		cursor := ""
		seen := map[string]bool{}
		for {
			items, next, err := page(cursor)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, it := range items {
				if !yield(it, nil) {
					return
				}
			}
			if next == "" {
				return
			}
			if seen[next] {
				var zero T
				yield(zero, fmt.Errorf("mcp: server repeated cursor %q", next))
				return
			}
			seen[next] = true
			cursor = next
		}
	}
}

// ListResources lists one page of resources.
func (cs *ClientSession) ListResources(ctx context.Context, params *ListResourcesParams) (*ListResourcesResult, error) {
	if params == nil {
		params = &ListResourcesParams{}
	}
	res := new(ListResourcesResult)
	if err := cs.call(ctx, MethodResourcesList, params, res); err != nil {
		return nil, err
	}
	return res, nil
}

// Resources iterates over all resources.
func (cs *ClientSession) Resources(ctx context.Context) iter.Seq2[*Resource, error] {
	return paginate(ctx, func(cursor string) ([]*Resource, string, error) {
		r, err := cs.ListResources(ctx, &ListResourcesParams{Cursor: cursor})
		if err != nil {
			return nil, "", err
		}
		return r.Resources, r.NextCursor, nil
	})
}

// ListResourceTemplates lists one page of resource templates.
func (cs *ClientSession) ListResourceTemplates(ctx context.Context, params *ListResourceTemplatesParams) (*ListResourceTemplatesResult, error) {
	if params == nil {
		params = &ListResourceTemplatesParams{}
	}
	res := new(ListResourceTemplatesResult)
	if err := cs.call(ctx, MethodResourcesTemplatesList, params, res); err != nil {
		return nil, err
	}
	return res, nil
}

// ReadResource reads a resource.
func (cs *ClientSession) ReadResource(ctx context.Context, params *ReadResourceParams) (*ReadResourceResult, error) {
	defer cs.withProgressToken(ctx, &params.Meta)()
	res := new(ReadResourceResult)
	if err := cs.call(ctx, MethodResourcesRead, params, res); err != nil {
		return nil, err
	}
	return res, nil
}

// Subscribe subscribes to updates of a resource.
func (cs *ClientSession) Subscribe(ctx context.Context, params *SubscribeParams) error {
	return cs.call(ctx, MethodResourcesSubscribe, params, nil)
}

// Unsubscribe ends a subscription.
func (cs *ClientSession) Unsubscribe(ctx context.Context, params *UnsubscribeParams) error {
	return cs.call(ctx, MethodResourcesUnsubscribe, params, nil)
}

// ListPrompts lists one page of prompts.
func (cs *ClientSession) ListPrompts(ctx context.Context, params *ListPromptsParams) (*ListPromptsResult, error) {
	if params == nil {
		params = &ListPromptsParams{}
	}
	res := new(ListPromptsResult)
	if err := cs.call(ctx, MethodPromptsList, params, res); err != nil {
		return nil, err
	}
	return res, nil
}

// Prompts iterates over all prompts.
func (cs *ClientSession) Prompts(ctx context.Context) iter.Seq2[*Prompt, error] {
	return paginate(ctx, func(cursor string) ([]*Prompt, string, error) {
		r, err := cs.ListPrompts(ctx, &ListPromptsParams{Cursor: cursor})
		if err != nil {
			return nil, "", err
		}
		return r.Prompts, r.NextCursor, nil
	})
}

// GetPrompt gets a prompt.
func (cs *ClientSession) GetPrompt(ctx context.Context, params *GetPromptParams) (*GetPromptResult, error) {
	res := new(GetPromptResult)
	if err := cs.call(ctx, MethodPromptsGet, params, res); err != nil {
		return nil, err
	}
	return res, nil
}

// Complete asks for completions of an argument.
func (cs *ClientSession) Complete(ctx context.Context, params *CompleteParams) (*CompleteResult, error) {
	res := new(CompleteResult)
	if err := cs.call(ctx, MethodCompletionComplete, params, res); err != nil {
		return nil, err
	}
	return res, nil
}

// SetLoggingLevel sets the minimum level of log messages the server sends.
func (cs *ClientSession) SetLoggingLevel(ctx context.Context, level LoggingLevel) error {
	if !level.IsValid() {
		return fmt.Errorf("mcp: unknown logging level %q", level)
	}
	return cs.call(ctx, MethodLoggingSetLevel, &SetLevelParams{Level: level}, nil)
}

// CallRaw sends any request with raw params and returns the raw result. It
// is the escape hatch for relaying messages (as the gateway does) and for
// methods this package does not know.
func (cs *ClientSession) CallRaw(ctx context.Context, method string, params jsontext.Value) (jsontext.Value, error) {
	var out jsontext.Value
	err := cs.call(ctx, method, params, &out)
	return out, err
}

// Notify sends a notification with raw params.
func (cs *ClientSession) Notify(ctx context.Context, method string, params jsontext.Value) error {
	return cs.engine().notify(ctx, method, params)
}

func (cs *ClientSession) handleNotification(ctx context.Context, req *jsonrpc.Request) {
	o := &cs.client.opts
	if o.NotificationHandler != nil {
		if req.Method == NotificationProgress {
			cs.progressCallback(req.Params)
		}
		o.NotificationHandler(ctx, cs, req.Method, req.Params)
		return
	}
	switch req.Method {
	case NotificationProgress:
		var p ProgressNotificationParams
		if err := json.Unmarshal(req.Params, &p); err != nil {
			o.Logger.Debug("mcp: malformed progress notification", "error", err)
			return
		}
		cs.progressMu.Lock()
		fn := cs.progress[normalizeToken(p.ProgressToken)]
		cs.progressMu.Unlock()
		if fn != nil {
			fn(&p)
		}
		if o.ProgressHandler != nil {
			o.ProgressHandler(ctx, cs, &p)
		}
	case NotificationMessage:
		if o.LoggingMessageHandler != nil {
			var p LoggingMessageParams
			if err := json.Unmarshal(req.Params, &p); err == nil {
				o.LoggingMessageHandler(ctx, cs, &p)
			}
		}
	case NotificationToolsListChanged:
		if o.ToolListChangedHandler != nil {
			o.ToolListChangedHandler(ctx, cs)
		}
	case NotificationPromptsListChanged:
		if o.PromptListChangedHandler != nil {
			o.PromptListChangedHandler(ctx, cs)
		}
	case NotificationResourcesListChanged:
		if o.ResourceListChangedHandler != nil {
			o.ResourceListChangedHandler(ctx, cs)
		}
	case NotificationResourcesUpdated:
		if o.ResourceUpdatedHandler != nil {
			var p ResourceUpdatedNotificationParams
			if err := json.Unmarshal(req.Params, &p); err == nil {
				o.ResourceUpdatedHandler(ctx, cs, &p)
			}
		}
	case NotificationElicitationComplete:
		if o.ElicitationCompleteHandler != nil {
			var p ElicitationCompleteNotificationParams
			if err := json.Unmarshal(req.Params, &p); err == nil {
				o.ElicitationCompleteHandler(ctx, cs, &p)
			}
		}
	case NotificationTasksStatus:
		if o.TaskStatusHandler != nil {
			var p TaskStatusNotificationParams
			if err := json.Unmarshal(req.Params, &p); err == nil {
				o.TaskStatusHandler(ctx, cs, &p)
			}
		}
	default:
		o.Logger.Debug("mcp: unhandled notification", "method", req.Method)
	}
}

// progressCallback runs the per-call progress callback for a progress
// notification, if one is registered.
func (cs *ClientSession) progressCallback(params jsontext.Value) {
	cs.progressMu.Lock()
	n := len(cs.progress)
	cs.progressMu.Unlock()
	if n == 0 {
		return
	}
	var p ProgressNotificationParams
	if err := json.Unmarshal(params, &p); err != nil {
		return
	}
	cs.progressMu.Lock()
	fn := cs.progress[normalizeToken(p.ProgressToken)]
	cs.progressMu.Unlock()
	if fn != nil {
		fn(&p)
	}
}

func (cs *ClientSession) handleRequest(ctx context.Context, req *jsonrpc.Request) (any, error) {
	if req.Method == MethodPing {
		return nil, nil
	}
	if h := cs.client.opts.Handler; h != nil {
		return h(ctx, cs, req.Method, req.Params)
	}
	switch req.Method {
	case MethodRootsList:
		c := cs.client
		c.mu.Lock()
		roots := make([]*Root, len(c.roots.items))
		for i, r := range c.roots.items {
			roots[i] = r.root
		}
		c.mu.Unlock()
		return &ListRootsResult{Roots: roots}, nil
	case MethodSamplingCreateMessage:
		h := cs.client.opts.CreateMessageHandler
		if h == nil {
			return nil, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "this client does not support sampling")
		}
		p := new(CreateMessageParams)
		if err := unmarshalParams(req.Params, p); err != nil {
			return nil, err
		}
		if p.Task != nil {
			return cs.runAsTask(ctx, req.Method, p.Task, func(ctx context.Context) (any, error) {
				return h(ctx, &CreateMessageRequest{Session: cs, Params: p})
			})
		}
		res, err := h(ctx, &CreateMessageRequest{Session: cs, Params: p})
		return echoRelatedTask(p.Meta, res, err)
	case MethodElicitationCreate:
		h := cs.client.opts.ElicitationHandler
		if h == nil {
			return nil, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "this client does not support elicitation")
		}
		p := new(ElicitParams)
		if err := unmarshalParams(req.Params, p); err != nil {
			return nil, err
		}
		if p.EffectiveMode() == ElicitationModeURL && !cs.client.opts.URLElicitation {
			return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "this client does not support URL-mode elicitation")
		}
		run := func(ctx context.Context) (any, error) {
			res, err := h(ctx, &ElicitRequest{Session: cs, Params: p})
			if err != nil {
				return nil, err
			}
			if res.Action == ElicitActionAccept && p.RequestedSchema != nil {
				res.Content = applyElicitationDefaults(p.RequestedSchema, res.Content)
			}
			return echoRelatedTask(p.Meta, res, nil)
		}
		if p.Task != nil {
			return cs.runAsTask(ctx, req.Method, p.Task, run)
		}
		return run(ctx)
	}
	if fn, ok := clientTaskMethods()[req.Method]; ok {
		return fn(cs, ctx, req.Params)
	}
	return nil, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "method %q not found", req.Method)
}

// applyElicitationDefaults fills fields the user left out with the schema's
// defaults.
func applyElicitationDefaults(schema *ElicitationSchema, content map[string]any) map[string]any {
	for name, prop := range schema.Properties {
		if len(prop.Default) == 0 {
			continue
		}
		if _, ok := content[name]; ok {
			continue
		}
		var v any
		if err := json.Unmarshal(prop.Default, &v); err != nil {
			continue
		}
		if content == nil {
			content = make(map[string]any)
		}
		content[name] = v
	}
	return content
}
