package mcp

// The client side of revision 2026-07-28 ("modern"): version negotiation
// (the server/discover probe and the fall back to initialize), the
// per-request _meta envelope, the HTTP headers Mcp-Method, Mcp-Name and
// Mcp-Param-*, multi round-trip requests (MRTR), typed errors and cache
// hints. The Tasks extension's client side is in modern_client_tasks.go.

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/jsonrpc"
)

// Defaults of the modern client.
const (
	// DefaultProbeTimeout bounds the server/discover probe on connection
	// transports (stdio, in-memory) when ClientOptions.ProbeTimeout is
	// zero: a server that has not answered by then is taken to be legacy
	// (the spec's stdio rule). Over HTTP the probe has no bound of its own.
	DefaultProbeTimeout = 10 * time.Second
	// DefaultMaxInputRounds bounds the input_required rounds of one
	// request when ClientOptions.MaxInputRounds is zero.
	DefaultMaxInputRounds = 8
)

// Errors of modern requests. A *ModernError matches them with errors.Is.
var (
	// ErrHeaderMismatch: the server says the HTTP headers do not match
	// the request (-32020).
	ErrHeaderMismatch = errors.New("mcp: header mismatch")
	// ErrMissingClientCapability: the request needs a client capability
	// the client did not declare (-32021).
	ErrMissingClientCapability = errors.New("mcp: missing required client capability")
	// ErrUnsupportedProtocolVersion: the server does not serve the
	// protocol version of the request (-32022).
	ErrUnsupportedProtocolVersion = errors.New("mcp: unsupported protocol version")
	// ErrTooManyInputRounds: the server asked for input more often than
	// ClientOptions.MaxInputRounds allows.
	ErrTooManyInputRounds = errors.New("mcp: too many input_required rounds")
	// ErrNotModern: the server is legacy and ClientOptions.ModernOnly
	// forbids falling back to initialize.
	ErrNotModern = errors.New("mcp: the server does not speak a modern protocol version")
)

// ModernError is a JSON-RPC error of the codes revision 2026-07-28
// defines, decoded. It unwraps to the *jsonrpc.Error received.
type ModernError struct {
	// Err is the error as received.
	Err *jsonrpc.Error
	// Supported and Requested are the data of -32022.
	Supported []string
	Requested string
	// RequiredCapabilities is the data of -32021.
	RequiredCapabilities *ClientCapabilities
}

// Error implements error.
func (e *ModernError) Error() string { return e.Err.Error() }

// Unwrap returns the *jsonrpc.Error.
func (e *ModernError) Unwrap() error { return e.Err }

// Is matches ErrHeaderMismatch, ErrMissingClientCapability and
// ErrUnsupportedProtocolVersion by code.
func (e *ModernError) Is(target error) bool {
	switch target {
	case ErrHeaderMismatch:
		return e.Err.Code == CodeHeaderMismatch
	case ErrMissingClientCapability:
		return e.Err.Code == CodeMissingRequiredClientCapability
	case ErrUnsupportedProtocolVersion:
		return e.Err.Code == CodeUnsupportedProtocolVersion
	}
	return false
}

// isModernCode reports whether code is one of the error codes a modern
// server is recognized by.
func isModernCode(code int64) bool {
	return code == CodeHeaderMismatch || code == CodeMissingRequiredClientCapability || code == CodeUnsupportedProtocolVersion
}

// modernError returns err as a *ModernError when it is a JSON-RPC error of
// a modern code, else err.
func modernError(err error) error {
	var je *jsonrpc.Error
	if !errors.As(err, &je) || !isModernCode(je.Code) {
		return err
	}
	me := &ModernError{Err: je}
	if len(je.Data) > 0 {
		var d struct {
			Supported            []string            `json:"supported"`
			Requested            string              `json:"requested"`
			RequiredCapabilities *ClientCapabilities `json:"requiredCapabilities"`
		}
		if json.Unmarshal(je.Data, &d) == nil {
			me.Supported, me.Requested, me.RequiredCapabilities = d.Supported, d.Requested, d.RequiredCapabilities
		}
	}
	return me
}

// modernClient is the state of a session with a modern server.
type modernClient struct {
	version  string
	discover *DiscoverResult
	// topServerInfo is a serverInfo member outside _meta, if the server
	// sent one there.
	topServerInfo *Implementation
	headers       bool // the transport carries HTTP headers (Mcp-Param-* apply)

	mu       sync.Mutex
	tools    map[string]*Tool // the tools last listed, for Mcp-Param-*
	logLevel LoggingLevel     // sent as _meta logLevel; "" for none

	wire modernWire // what every request reuses (modern_wire.go)
}

// wantsModern reports whether the client tries a modern revision first.
func (c *Client) wantsModern() bool {
	return IsModernProtocolVersion(c.opts.ProtocolVersion)
}

// legacyVersion is the version a dual-era client asks for in initialize.
func (c *Client) legacyVersion() string {
	if c.wantsModern() {
		return LatestProtocolVersion
	}
	return c.opts.ProtocolVersion
}

// requestHeaderKey is the context key of the extra HTTP headers of one
// request (see withRequestHeaders).
type requestHeaderKey struct{}

// withRequestHeaders returns a context whose requests written by a
// Streamable HTTP connection carry h in addition to the usual headers
// (replacing headers of the same names).
func withRequestHeaders(ctx context.Context, h http.Header) context.Context {
	return context.WithValue(ctx, requestHeaderKey{}, h)
}

// requestHeaders returns the headers withRequestHeaders set, if any.
func requestHeaders(ctx context.Context) http.Header {
	h, _ := ctx.Value(requestHeaderKey{}).(http.Header)
	return h
}

// headerCarrier is implemented by connections that send HTTP headers.
type headerCarrier interface{ carriesHeaders() bool }

// probe sends the server/discover probe on eng. It returns the modern
// state when the server is modern, nil when it is legacy (the caller falls
// back to initialize), or an error.
func (cs *ClientSession) probe(ctx context.Context, eng *engine) (*modernClient, error) {
	c := cs.client
	m := &modernClient{version: Version20260728}
	if hc, ok := eng.conn.(headerCarrier); ok {
		m.headers = hc.carriesHeaders()
	}
	// A silent server is a legacy one only on a connection transport
	// (stdio): over HTTP every request gets an answer, and the first one
	// may take long (an authorization flow runs inside it).
	pctx := ctx
	if !m.headers {
		d := c.opts.ProbeTimeout
		if d <= 0 {
			d = DefaultProbeTimeout
		}
		var cancel context.CancelFunc
		pctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	var raw jsontext.Value
	var err error
	for attempt := 0; ; attempt++ {
		var params jsontext.Value
		if params, err = cs.envelope(m, nil, nil); err != nil {
			return nil, err
		}
		raw, err = eng.callRaw(withRequestHeaders(pctx, m.httpHeaders(MethodServerDiscover, params)), MethodServerDiscover, params)
		// A server may refuse the first request with -32022 even though
		// it lists our version (a transient or simulated refusal): retry
		// once with the version it names.
		if me, ok := modernError(err).(*ModernError); attempt == 0 && ok && me.Err.Code == CodeUnsupportedProtocolVersion && slices.Contains(me.Supported, m.version) {
			continue
		}
		break
	}
	if err == nil {
		res := new(DiscoverResult)
		if err := json.Unmarshal(raw, res); err != nil {
			return nil, fmt.Errorf("mcp: decoding %s result: %w", MethodServerDiscover, err)
		}
		if len(res.SupportedVersions) == 0 {
			// Not a DiscoverResult: a legacy server that answers any
			// method.
			if c.opts.ModernOnly {
				return nil, fmt.Errorf("%w (%s answered without supportedVersions)", ErrNotModern, MethodServerDiscover)
			}
			return nil, nil
		}
		if !slices.Contains(res.SupportedVersions, m.version) {
			return cs.noModernVersion(res.SupportedVersions)
		}
		// serverInfo belongs in _meta; some servers put it at the top.
		var top struct {
			ServerInfo *Implementation `json:"serverInfo"`
		}
		if json.Unmarshal(raw, &top) == nil {
			m.topServerInfo = top.ServerInfo
		}
		m.discover = res
		return m, nil
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("mcp: %s: %w", MethodServerDiscover, err)
	}
	if me, ok := modernError(err).(*ModernError); ok {
		if me.Err.Code == CodeUnsupportedProtocolVersion {
			return cs.noModernVersion(me.Supported)
		}
		return nil, fmt.Errorf("mcp: %s: %w", MethodServerDiscover, me)
	}
	if c.opts.ModernOnly {
		return nil, fmt.Errorf("%w (%s: %w)", ErrNotModern, MethodServerDiscover, err)
	}
	c.opts.Logger.Debug("mcp: the server is legacy; falling back to initialize", "error", err)
	return nil, nil
}

// noModernVersion handles a modern server that does not serve the modern
// version this package speaks: fall back to initialize when it names a
// legacy version the client may use, else fail.
func (cs *ClientSession) noModernVersion(supported []string) (*modernClient, error) {
	if !cs.client.opts.ModernOnly && slices.ContainsFunc(supported, IsSupportedProtocolVersion) {
		return nil, nil
	}
	return nil, fmt.Errorf("%w: the server supports %q, this client %q", ErrUnsupportedProtocolVersion, supported, AllProtocolVersions())
}

// modernState returns the session's modern state, nil for a legacy session.
func (cs *ClientSession) modernState() *modernClient {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.modern
}

// initFromDiscover makes the InitializeResult of a modern session from
// the server/discover result.
func initFromDiscover(m *modernClient) *InitializeResult {
	d := m.discover
	res := &InitializeResult{ProtocolVersion: m.version, Capabilities: d.Capabilities, Instructions: d.Instructions}
	if m.topServerInfo != nil {
		res.ServerInfo = *m.topServerInfo
	}
	if v, ok := d.Meta[MetaServerInfo]; ok {
		b, err := json.Marshal(v)
		if err == nil {
			_ = json.Unmarshal(b, &res.ServerInfo)
		}
	}
	return res
}

// modernCapabilities returns the client capabilities a modern request
// declares: those of initialize, without the core tasks of 2025-11-25 and
// without roots list-change notifications (a modern client sends none).
func (c *Client) modernCapabilities() ClientCapabilities {
	caps := c.capabilities()
	caps.Tasks = nil
	if caps.Roots != nil {
		caps.Roots = &RootsCapabilities{}
	}
	return caps
}

// envelope returns params with the modern _meta envelope (protocol
// version, client capabilities, client info and the log level, merged into
// any _meta params has) and the members of extra added.
func (cs *ClientSession) envelope(m *modernClient, params jsontext.Value, extra map[string]any) (jsontext.Value, error) {
	if extra == nil {
		if b, ok := cs.fastEnvelope(m, params); ok {
			return b, nil
		}
	}
	obj := map[string]jsontext.Value{}
	if len(params) > 0 && string(params) != "null" {
		if err := json.Unmarshal(params, &obj); err != nil {
			return nil, fmt.Errorf("mcp: params must be a JSON object: %w", err)
		}
	}
	meta := map[string]any{}
	if raw, ok := obj["_meta"]; ok && string(raw) != "null" {
		var old map[string]jsontext.Value
		if err := json.Unmarshal(raw, &old); err != nil {
			return nil, fmt.Errorf("mcp: params._meta must be a JSON object: %w", err)
		}
		for k, v := range old {
			meta[k] = v
		}
	}
	meta[MetaProtocolVersion] = m.version
	meta[MetaClientCapabilities] = cs.client.modernCapabilities()
	meta[MetaClientInfo] = cs.client.impl
	m.mu.Lock()
	if m.logLevel != "" {
		meta[MetaLogLevel] = m.logLevel
	}
	m.mu.Unlock()
	out := make(map[string]any, len(obj)+len(extra)+1)
	for k, v := range obj {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	out["_meta"] = meta
	return json.Marshal(out, json.Deterministic(true))
}

// httpHeaders returns the headers of a modern HTTP request: the protocol
// version, Mcp-Method, Mcp-Name where the method has one, and for
// tools/call the Mcp-Param-* headers the tool's x-mcp-header annotations
// ask for (from the tools last listed).
func (m *modernClient) httpHeaders(method string, params jsontext.Value) http.Header {
	if h, ok := m.fastHTTPHeaders(method, params); ok {
		return h
	}
	h := http.Header{}
	h[headerProtocolVersion] = []string{m.version}
	h[headerMcpMethod] = []string{method}
	src := nameSource(method)
	if src == "" {
		return h
	}
	var p struct {
		Name      *string        `json:"name"`
		URI       *string        `json:"uri"`
		TaskID    *string        `json:"taskId"`
		Arguments jsontext.Value `json:"arguments"`
	}
	if json.Unmarshal(params, &p) != nil {
		return h
	}
	var name *string
	switch src {
	case "name":
		name = p.Name
	case "uri":
		name = p.URI
	default:
		name = p.TaskID
	}
	if name != nil {
		h[headerMcpName] = []string{encodeHeaderValue(*name)}
	}
	if method != MethodToolsCall || name == nil || !m.headers {
		return h
	}
	m.mu.Lock()
	t := m.tools[*name]
	m.mu.Unlock()
	if t == nil {
		return h
	}
	for _, ph := range toolParamHeaders(t.InputSchema) {
		v, ok := lookupPath(p.Arguments, ph.path)
		if !ok {
			continue
		}
		if s, ok := headerArgument(v); ok {
			h[http.CanonicalHeaderKey(headerParamPrefix+ph.name)] = []string{s}
		}
	}
	return h
}

// headerArgument converts an argument to its Mcp-Param-* value: strings
// as they are (Base64 when needed), integers in decimal, booleans as
// true/false. Other values have no header.
func headerArgument(v jsontext.Value) (string, bool) {
	switch v.Kind() {
	case '"':
		var s string
		if json.Unmarshal(v, &s) != nil {
			return "", false
		}
		return encodeHeaderValue(s), true
	case 't':
		return "true", true
	case 'f':
		return "false", true
	case '0':
		s := string(v)
		if strings.ContainsAny(s, ".eE") {
			return "", false // not an integer
		}
		return s, true
	}
	return "", false
}

// encodeHeaderValue returns s as a header value: as it is when it is
// visible ASCII and spaces without surrounding whitespace, else in the
// Base64 sentinel form =?base64?…?= (also used for values that look like
// that form).
func encodeHeaderValue(s string) string {
	plain := s == strings.Trim(s, " \t") &&
		!(strings.HasPrefix(s, "=?base64?") && strings.HasSuffix(s, "?="))
	for i := 0; plain && i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			plain = false
		}
	}
	if plain {
		return s
	}
	return "=?base64?" + base64.StdEncoding.EncodeToString([]byte(s)) + "?="
}

// resultHead is what the client reads of every modern result first.
type resultHead struct {
	ResultType    string                      `json:"resultType"`
	InputRequests map[string]*rawInputRequest `json:"inputRequests"`
	RequestState  *string                     `json:"requestState"`
	TTLMs         *float64                    `json:"ttlMs"` // lenient: hints are advisory
	CacheScope    string                      `json:"cacheScope"`
}

// rawInputRequest is an input request as received.
type rawInputRequest struct {
	Method string         `json:"method"`
	Params jsontext.Value `json:"params"`
}

type cacheHintsKey struct{}

// WithCacheHints returns a context that makes the next modern request sent
// with it store the result's cache hints (ttlMs, cacheScope) in *h. A
// result without hints leaves *h unchanged; legacy sessions never set it.
func WithCacheHints(ctx context.Context, h *CacheHints) context.Context {
	return context.WithValue(ctx, cacheHintsKey{}, h)
}

// modernCall sends one modern request: with the envelope and headers,
// answering input_required rounds with the client's handlers, and waiting
// for a task the server made of a tools/call. It returns the final result.
func (cs *ClientSession) modernCall(ctx context.Context, m *modernClient, method string, params jsontext.Value) (jsontext.Value, error) {
	eng := cs.engine()
	maxRounds := cs.client.opts.MaxInputRounds
	if maxRounds <= 0 {
		maxRounds = DefaultMaxInputRounds
	}
	var extra map[string]any
	relisted := false
	for round := 0; ; {
		p, err := cs.envelope(m, params, extra)
		if err != nil {
			return nil, err
		}
		raw, err := eng.callRaw(withRequestHeaders(ctx, m.httpHeaders(method, p)), method, p)
		if err != nil {
			err = modernError(err)
			if method == MethodToolsCall && m.headers && !relisted && errors.Is(err, ErrHeaderMismatch) {
				// The tool's schema may have changed: list the tools
				// again and retry once, as the spec says.
				relisted = true
				if lerr := cs.relistTools(ctx, m); lerr == nil {
					continue
				}
			}
			return nil, err
		}
		var head resultHead
		if len(raw) > 0 && raw.Kind() == '{' {
			if err := decodeResultHead(raw, &head); err != nil {
				return nil, fmt.Errorf("mcp: decoding %s result: %w", method, err)
			}
		}
		switch head.ResultType {
		case "", ResultTypeComplete:
			if h, ok := ctx.Value(cacheHintsKey{}).(*CacheHints); ok && h != nil && head.TTLMs != nil {
				*h = CacheHints{TTL: time.Duration(*head.TTLMs * float64(time.Millisecond)), Scope: head.CacheScope}
			}
			return raw, nil
		case ResultTypeInputRequired:
			if rawInterim(ctx) {
				return raw, nil // the caller answers (a relay)
			}
			if round++; round > maxRounds {
				return nil, fmt.Errorf("%w: %s asked for input more than %d times", ErrTooManyInputRounds, method, maxRounds)
			}
			extra = map[string]any{}
			if len(head.InputRequests) > 0 {
				answers, err := cs.answerInput(ctx, head.InputRequests)
				if err != nil {
					return nil, err
				}
				extra["inputResponses"] = answers
			}
			// Without inputRequests the request is retried at once, with
			// the requestState if there is one.
			if head.RequestState != nil {
				extra["requestState"] = *head.RequestState
			}
		case ResultTypeTask:
			if method != MethodToolsCall {
				return nil, fmt.Errorf("mcp: %s: the server answered with a task, which only tools/call may", method)
			}
			if rawInterim(ctx) {
				return raw, nil // the caller follows the task (a relay)
			}
			t, err := cs.taskFrom(m, raw)
			if err != nil {
				return nil, err
			}
			if keep, ok := ctx.Value(taskHandleKey{}).(**ExtensionTask); ok && keep != nil {
				*keep = t
				return nil, nil
			}
			return t.waitRaw(ctx)
		default:
			return nil, fmt.Errorf("mcp: %s: unknown resultType %q", method, head.ResultType)
		}
	}
}

// answerInput answers the input requests of an input_required result with
// the client's handlers (elicitation, sampling, roots), as if the server
// had sent them as requests.
func (cs *ClientSession) answerInput(ctx context.Context, reqs map[string]*rawInputRequest) (map[string]jsontext.Value, error) {
	out := make(map[string]jsontext.Value, len(reqs))
	for key, r := range reqs {
		if r == nil {
			return nil, fmt.Errorf("mcp: input request %q is null", key)
		}
		switch r.Method {
		case MethodElicitationCreate, MethodSamplingCreateMessage, MethodRootsList:
		default:
			return nil, fmt.Errorf("mcp: input request %q: unknown method %q", key, r.Method)
		}
		res, err := cs.handleRequest(ctx, &jsonrpc.Request{Method: r.Method, Params: r.Params})
		if err != nil {
			return nil, fmt.Errorf("mcp: answering input request %q (%s): %w", key, r.Method, err)
		}
		b, err := marshalParams(res)
		if err != nil {
			return nil, fmt.Errorf("mcp: encoding the answer to %q: %w", key, err)
		}
		out[key] = b
	}
	return out, nil
}

// relistTools lists every tool again (to refresh the x-mcp-header
// annotations the Mcp-Param-* headers come from).
func (cs *ClientSession) relistTools(ctx context.Context, m *modernClient) error {
	cursor := ""
	for range 1000 {
		r, err := cs.ListTools(ctx, &ListToolsParams{Cursor: cursor})
		if err != nil {
			return err
		}
		if cursor = r.NextCursor; cursor == "" {
			return nil
		}
	}
	return errors.New("mcp: too many pages of tools")
}

// noteTools filters a tools/list result of a modern HTTP session: a tool
// whose x-mcp-header annotations break the spec's constraints is dropped
// (with a warning in the log), the others are kept for the Mcp-Param-*
// headers of later calls.
func (cs *ClientSession) noteTools(m *modernClient, res *ListToolsResult) {
	if !m.headers {
		return
	}
	kept := res.Tools[:0]
	m.mu.Lock()
	if m.tools == nil {
		m.tools = make(map[string]*Tool)
	}
	for _, t := range res.Tools {
		if t == nil {
			continue
		}
		if err := checkHeaderAnnotations(t.InputSchema); err != nil {
			cs.client.opts.Logger.Warn("mcp: ignoring a tool with invalid x-mcp-header annotations", "tool", t.Name, "error", err)
			delete(m.tools, t.Name)
			continue
		}
		m.tools[t.Name] = t
		kept = append(kept, t)
	}
	m.mu.Unlock()
	clear(res.Tools[len(kept):])
	res.Tools = kept
}

// notDataKeywords are schema keywords whose values are instances, not
// schemas: an x-mcp-header inside them is data.
var notDataKeywords = map[string]bool{"default": true, "const": true, "enum": true, "examples": true}

// checkHeaderAnnotations checks the x-mcp-header annotations of an input
// schema against the constraints of revision 2026-07-28: each on a
// property reached through "properties" keys only, of type string, integer
// or boolean, with a non-empty token name unique regardless of case.
func checkHeaderAnnotations(schema jsontext.Value) error {
	seen := map[string]bool{}
	var walk func(v jsontext.Value, static bool, depth int) error
	walk = func(v jsontext.Value, static bool, depth int) error {
		if depth > 64 {
			return errors.New("schema nested too deeply")
		}
		switch v.Kind() {
		case '[':
			var items []jsontext.Value
			if json.Unmarshal(v, &items) != nil {
				return nil
			}
			for _, it := range items {
				if err := walk(it, false, depth+1); err != nil {
					return err
				}
			}
			return nil
		case '{':
		default:
			return nil
		}
		var node map[string]jsontext.Value
		if json.Unmarshal(v, &node) != nil {
			return nil
		}
		if h, ok := node["x-mcp-header"]; ok {
			if err := checkHeaderAnnotation(h, node["type"], static && depth > 0, seen); err != nil {
				return err
			}
		}
		for k, sub := range node {
			if notDataKeywords[k] || k == "x-mcp-header" {
				continue
			}
			if k == "properties" {
				var props map[string]jsontext.Value
				if json.Unmarshal(sub, &props) != nil {
					continue
				}
				for _, ps := range props {
					if err := walk(ps, static, depth+1); err != nil {
						return err
					}
				}
				continue
			}
			if err := walk(sub, false, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(schema, true, 0)
}

// checkHeaderAnnotation checks one x-mcp-header annotation.
func checkHeaderAnnotation(h, typ jsontext.Value, static bool, seen map[string]bool) error {
	var name string
	if json.Unmarshal(h, &name) != nil {
		return errors.New("x-mcp-header is not a string")
	}
	if !static {
		return fmt.Errorf("x-mcp-header %q is not on a property reached through properties only", name)
	}
	if name == "" {
		return errors.New("x-mcp-header is empty")
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return fmt.Errorf("x-mcp-header %q is not an HTTP token", name)
		}
	}
	if k := strings.ToLower(name); seen[k] {
		return fmt.Errorf("x-mcp-header %q is used twice", name)
	} else {
		seen[k] = true
	}
	var t string
	if json.Unmarshal(typ, &t) != nil || (t != "string" && t != "integer" && t != "boolean") {
		return fmt.Errorf("x-mcp-header %q is on a property whose type is not string, integer or boolean", name)
	}
	return nil
}

// isTokenChar reports whether c is a tchar of RFC 9110.
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// callModern is ClientSession.call in a modern session. Methods that
// revision 2026-07-28 removed are translated: ping becomes
// server/discover, logging/setLevel sets the level later requests ask for
// in _meta; resources/subscribe and resources/unsubscribe fail (use
// subscriptions/listen).
func (cs *ClientSession) callModern(ctx context.Context, m *modernClient, method string, params, result any) error {
	ping := method == MethodPing
	switch method {
	case MethodPing:
		method, params = MethodServerDiscover, nil
	case MethodLoggingSetLevel:
		p, _ := params.(*SetLevelParams)
		if p == nil {
			return errors.New("mcp: logging/setLevel without a level")
		}
		m.mu.Lock()
		m.logLevel = p.Level
		m.mu.Unlock()
		return nil
	case MethodResourcesSubscribe, MethodResourcesUnsubscribe:
		return fmt.Errorf("mcp: %s does not exist in protocol version %s (use %s)", method, m.version, MethodSubscriptionsListen)
	}
	raw, err := marshalParams(params)
	if err != nil {
		return fmt.Errorf("mcp: encoding %s params: %w", method, err)
	}
	res, err := cs.modernCall(ctx, m, method, raw)
	if err != nil {
		return err
	}
	if method == MethodToolsList {
		lr, ok := result.(*ListToolsResult)
		if !ok {
			lr = new(ListToolsResult)
			if err := json.Unmarshal(res, lr); err != nil {
				return fmt.Errorf("mcp: decoding %s result: %w", method, err)
			}
			cs.noteTools(m, lr)
		} else {
			if err := json.Unmarshal(res, lr); err != nil {
				return fmt.Errorf("mcp: decoding %s result: %w", method, err)
			}
			cs.noteTools(m, lr)
			return nil
		}
	}
	if result != nil && !ping {
		if err := json.Unmarshal(res, result, m.wire.meta.options(MetaServerInfo)); err != nil {
			return fmt.Errorf("mcp: decoding %s result: %w", method, err)
		}
	}
	return nil
}

// DiscoverResult returns the server's answer to the server/discover probe
// of a modern session, nil for a legacy session.
func (cs *ClientSession) DiscoverResult() *DiscoverResult {
	if m := cs.modernState(); m != nil {
		return m.discover
	}
	return nil
}

// IsModernOnlyRefusal reports whether err, from a legacy Connect
// (initialize), is the refusal of a server that serves modern revisions
// only: a -32022 error whose data.supported names a modern version this
// package speaks, or a -32020 error (a modern server's complaint about
// missing 2026-07-28 headers). A client may then connect again with
// ClientOptions.ProtocolVersion set to Version20260728.
func IsModernOnlyRefusal(err error) bool {
	me, ok := modernError(err).(*ModernError)
	if !ok {
		return false
	}
	switch me.Err.Code {
	case CodeUnsupportedProtocolVersion:
		return slices.ContainsFunc(me.Supported, IsModernProtocolVersion)
	case CodeHeaderMismatch:
		return true
	}
	return false
}
