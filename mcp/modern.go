package mcp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/jsonrpc"
)

// This file serves revision 2026-07-28 ("modern" in the spec's words): no
// initialize handshake and no session; every request carries its protocol
// version, the client's capabilities and (optionally) the client's identity
// in params._meta, and the server answers each request on its own.
//
// A Server serves both generations at once: a request that carries the
// modern envelope is served statelessly (see Server.serveModern), an
// initialize request opens a legacy session as before.

// Version20260728 is the protocol revision 2026-07-28, the first modern
// (stateless) revision.
const Version20260728 = "2026-07-28"

// Keys of the per-request _meta envelope of modern revisions.
const (
	MetaProtocolVersion    = "io.modelcontextprotocol/protocolVersion"
	MetaClientCapabilities = "io.modelcontextprotocol/clientCapabilities"
	MetaClientInfo         = "io.modelcontextprotocol/clientInfo"
	MetaLogLevel           = "io.modelcontextprotocol/logLevel"
	MetaServerInfo         = "io.modelcontextprotocol/serverInfo"
	MetaSubscriptionID     = "io.modelcontextprotocol/subscriptionId"
)

// Methods and notifications that only modern revisions have.
const (
	MethodServerDiscover                  = "server/discover"
	MethodSubscriptionsListen             = "subscriptions/listen"
	NotificationSubscriptionsAcknowledged = "notifications/subscriptions/acknowledged"
)

// Error codes of the range the MCP specification reserves (-32020 to
// -32099), as renumbered by revision 2026-07-28.
const (
	// CodeHeaderMismatch: the HTTP headers do not match the request body,
	// or a required header is missing or malformed (HTTP 400).
	CodeHeaderMismatch = -32020
	// CodeMissingRequiredClientCapability: the request needs a client
	// capability the request's _meta does not declare (HTTP 400).
	CodeMissingRequiredClientCapability = -32021
	// CodeUnsupportedProtocolVersion: the request's protocol version is not
	// one the server implements (HTTP 400).
	CodeUnsupportedProtocolVersion = -32022
)

// ModernProtocolVersions returns the modern revisions this package serves
// per request, newest first.
func ModernProtocolVersions() []string { return []string{Version20260728} }

// IsModernProtocolVersion reports whether v is a modern revision this
// package serves.
func IsModernProtocolVersion(v string) bool { return v == Version20260728 }

// AllProtocolVersions returns every revision this package serves, modern
// and legacy, newest first: the list a server advertises in server/discover
// and in UnsupportedProtocolVersion errors.
func AllProtocolVersions() []string {
	return append(ModernProtocolVersions(), SupportedProtocolVersions()...)
}

// RequestMeta is the per-request envelope of a modern request
// (params._meta), decoded.
type RequestMeta struct {
	// ProtocolVersion is the revision the request is made in.
	ProtocolVersion string
	// ClientCapabilities are the capabilities the client declares for
	// this request only.
	ClientCapabilities ClientCapabilities
	// ClientInfo identifies the client software, if it said.
	ClientInfo *Implementation
	// LogLevel is the level of the log messages the client wants for this
	// request; "" means none.
	LogLevel LoggingLevel
}

// metaEnvelope is the wire form of the _meta keys RequestMeta reads.
type metaEnvelope struct {
	ProtocolVersion    *string             `json:"io.modelcontextprotocol/protocolVersion"`
	ClientCapabilities *ClientCapabilities `json:"io.modelcontextprotocol/clientCapabilities"`
	ClientInfo         *Implementation     `json:"io.modelcontextprotocol/clientInfo"`
	LogLevel           *LoggingLevel       `json:"io.modelcontextprotocol/logLevel"`
}

// ParseRequestMeta decodes the modern envelope of a request's params. The
// error is a -32602 *jsonrpc.Error naming what is missing or malformed.
func ParseRequestMeta(params jsontext.Value) (*RequestMeta, error) {
	var p modernParams
	if err := p.scan(params); err != nil {
		return nil, err
	}
	return (*envelopeCache)(nil).parse(p.meta)
}

// envelopeCache keeps the decoded client capabilities and client
// information of recent modern envelopes, by their encoding: a client sends
// the same ones with every request, and decoding them was most of the cost
// of reading an envelope. Cached values are shared between requests and
// never modified. Each map holds at most maxEnvelopeCacheEntries entries
// of at most maxEnvelopeCacheKey bytes; a full map is emptied.
type envelopeCache struct {
	mu   sync.Mutex
	caps map[string]ClientCapabilities
	info map[string]Implementation

	metas map[string]*parsedMeta // whole _meta objects of the envelope only

	meta metaDecoder // the params' _meta, for handlers
}

// Bounds of a Server's envelopeCache.
const (
	maxEnvelopeCacheEntries = 256
	maxEnvelopeCacheKey     = 4096
)

// envelopeNames are the members of _meta that the envelope has, quoted.
var envelopeNames = [...]string{
	`"` + MetaProtocolVersion + `"`,
	`"` + MetaClientCapabilities + `"`,
	`"` + MetaClientInfo + `"`,
	`"` + MetaLogLevel + `"`,
}

// parsedMeta is a RequestMeta with room for its ClientInfo: one allocation.
type parsedMeta struct {
	m    RequestMeta
	info Implementation
}

// parse decodes the envelope from the raw value of params._meta (nil when
// params have no _meta). A nil cache decodes without caching. Envelopes
// out of the common shape (escaped names or strings, members of the wrong
// type) take the general path, whose errors are the reference.
func (c *envelopeCache) parse(raw jsontext.Value) (*RequestMeta, error) {
	if len(raw) == 0 || raw.Kind() != '{' {
		return parseMetaGeneral(raw)
	}
	if pm := c.whole(raw); pm != nil {
		return pm, nil
	}
	var vals [4]jsontext.Value
	ok, members := scanObjectCount(raw, envelopeNames[:], vals[:])
	pv, caps, info, level := vals[0], vals[1], vals[2], vals[3]
	version, okv := Version20260728, string(pv) == `"`+Version20260728+`"`
	if !okv {
		version, okv = plainString(pv)
	}
	if !ok || !okv || version == "" || len(caps) == 0 || caps.Kind() != '{' ||
		len(info) > 0 && info.Kind() != '{' && info.Kind() != 'n' ||
		len(level) > 0 && level.Kind() != 'n' && level.Kind() != '"' {
		return parseMetaGeneral(raw)
	}
	pm := new(parsedMeta)
	m := &pm.m
	m.ProtocolVersion = version
	var err error
	if m.ClientCapabilities, err = c.capabilities(caps); err != nil {
		return parseMetaGeneral(raw)
	}
	if len(info) > 0 && info.Kind() == '{' {
		if pm.info, err = c.implementation(info); err != nil {
			return parseMetaGeneral(raw)
		}
		m.ClientInfo = &pm.info
	}
	if len(level) > 0 && level.Kind() == '"' {
		l, ok := plainString(level)
		if !ok {
			return parseMetaGeneral(raw)
		}
		if m.LogLevel = LoggingLevel(l); !m.LogLevel.IsValid() {
			return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: unknown %s %q", MetaLogLevel, l)
		}
	}
	found := 0
	for _, v := range vals {
		if len(v) > 0 {
			found++
		}
	}
	if found == members {
		c.keep(raw, pm) // an envelope and nothing else: the common case
	}
	return m, nil
}

// whole returns a copy of the envelope decoded earlier from the same
// encoding of a _meta that has the envelope's members only, or nil.
func (c *envelopeCache) whole(raw jsontext.Value) *RequestMeta {
	if c == nil || len(raw) > maxEnvelopeCacheKey {
		return nil
	}
	c.mu.Lock()
	kept, ok := c.metas[string(raw)]
	c.mu.Unlock()
	if !ok {
		return nil
	}
	pm := new(parsedMeta)
	*pm = *kept
	if kept.m.ClientInfo != nil {
		pm.m.ClientInfo = &pm.info
	}
	return &pm.m
}

// keep remembers the envelope pm decoded from raw (a copy: pm is the
// request's own).
func (c *envelopeCache) keep(raw jsontext.Value, pm *parsedMeta) {
	if c == nil || len(raw) > maxEnvelopeCacheKey {
		return
	}
	kept := new(parsedMeta)
	*kept = *pm
	if kept.m.ClientInfo != nil {
		kept.m.ClientInfo = &kept.info
	}
	c.mu.Lock()
	if c.metas == nil || len(c.metas) >= maxEnvelopeCacheEntries {
		c.metas = make(map[string]*parsedMeta)
	}
	c.metas[string(raw)] = kept
	c.mu.Unlock()
}

// capabilities decodes client capabilities, through the cache.
func (c *envelopeCache) capabilities(raw jsontext.Value) (ClientCapabilities, error) {
	if c != nil && len(raw) <= maxEnvelopeCacheKey {
		c.mu.Lock()
		v, ok := c.caps[string(raw)]
		c.mu.Unlock()
		if ok {
			return v, nil
		}
	}
	var v ClientCapabilities
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, err
	}
	if c != nil && len(raw) <= maxEnvelopeCacheKey {
		c.mu.Lock()
		if c.caps == nil || len(c.caps) >= maxEnvelopeCacheEntries {
			c.caps = make(map[string]ClientCapabilities)
		}
		c.caps[string(raw)] = v
		c.mu.Unlock()
	}
	return v, nil
}

// implementation decodes a client's Implementation, through the cache.
func (c *envelopeCache) implementation(raw jsontext.Value) (Implementation, error) {
	if c != nil && len(raw) <= maxEnvelopeCacheKey {
		c.mu.Lock()
		v, ok := c.info[string(raw)]
		c.mu.Unlock()
		if ok {
			return v, nil
		}
	}
	var v Implementation
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, err
	}
	if c != nil && len(raw) <= maxEnvelopeCacheKey {
		c.mu.Lock()
		if c.info == nil || len(c.info) >= maxEnvelopeCacheEntries {
			c.info = make(map[string]Implementation)
		}
		c.info[string(raw)] = v
		c.mu.Unlock()
	}
	return v, nil
}

// parseMetaGeneral decodes the envelope from the raw value of
// params._meta (nil when params have no _meta), for any input.
func parseMetaGeneral(raw jsontext.Value) (*RequestMeta, error) {
	var e metaEnvelope
	if len(raw) > 0 && raw.Kind() != 'n' {
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: _meta: %v", err)
		}
	}
	switch {
	case len(raw) == 0 || raw.Kind() == 'n':
		return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: _meta is required (%s, %s)", MetaProtocolVersion, MetaClientCapabilities)
	case e.ProtocolVersion == nil || *e.ProtocolVersion == "":
		return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: _meta is missing %s", MetaProtocolVersion)
	case e.ClientCapabilities == nil:
		return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: _meta is missing %s", MetaClientCapabilities)
	}
	m := &RequestMeta{ProtocolVersion: *e.ProtocolVersion, ClientCapabilities: *e.ClientCapabilities, ClientInfo: e.ClientInfo}
	if e.LogLevel != nil {
		if !e.LogLevel.IsValid() {
			return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: unknown %s %q", MetaLogLevel, *e.LogLevel)
		}
		m.LogLevel = *e.LogLevel
	}
	return m, nil
}

// modernParams are the members of a modern request's params that the
// server reads before it dispatches the request, found in one pass over
// the params (which the JSON-RPC decoder has already checked to be valid
// JSON). Each is the member's raw value, aliasing the params, or nil when
// the member is absent.
type modernParams struct {
	meta           jsontext.Value // _meta: the envelope
	name           jsontext.Value // tools/call, prompts/get
	uri            jsontext.Value // resources/read
	taskID         jsontext.Value // tasks/get, tasks/update, tasks/cancel
	arguments      jsontext.Value // tools/call (Mcp-Param-* headers)
	inputResponses jsontext.Value // a multi round-trip retry
	requestState   jsontext.Value
	task           jsontext.Value // tools/call (2025-11-25 task augmentation)
}

// paramsScanner is a reusable decoder over one request's params.
type paramsScanner struct {
	d   jsontext.Decoder
	buf bytes.Buffer
}

var paramsScanners = sync.Pool{New: func() any { return new(paramsScanner) }}

// scan fills p from params. Params that are absent or null have no
// members; params that are not a JSON object are a -32602 error.
func (p *modernParams) scan(params jsontext.Value) error {
	*p = modernParams{}
	if len(params) == 0 {
		return nil
	}
	sc := paramsScanners.Get().(*paramsScanner)
	sc.buf = *bytes.NewBuffer(params)
	sc.d.Reset(&sc.buf)
	err := p.scanFrom(&sc.d, params)
	sc.buf = bytes.Buffer{}
	sc.d.Reset(&sc.buf)
	paramsScanners.Put(sc)
	return err
}

func (p *modernParams) scanFrom(d *jsontext.Decoder, params jsontext.Value) error {
	tok, err := d.ReadToken()
	if err != nil {
		return jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: %v", err)
	}
	switch tok.Kind() {
	case 'n':
		return nil
	case '{':
	default:
		return jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: params must be an object, not %s", kindName(tok.Kind()))
	}
	for d.PeekKind() != '}' {
		name, err := d.ReadValue()
		if err != nil {
			return jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: %v", err)
		}
		if bytes.IndexByte(name, '\\') >= 0 {
			// An escaped name: match it by what it says.
			unq, err := jsontext.AppendUnquote(nil, name)
			if err != nil {
				return jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: %v", err)
			}
			name = jsontext.Value(strconv.Quote(string(unq)))
		}
		var dst *jsontext.Value
		switch string(name) {
		case `"_meta"`:
			dst = &p.meta
		case `"name"`:
			dst = &p.name
		case `"uri"`:
			dst = &p.uri
		case `"taskId"`:
			dst = &p.taskID
		case `"arguments"`:
			dst = &p.arguments
		case `"inputResponses"`:
			dst = &p.inputResponses
		case `"requestState"`:
			dst = &p.requestState
		case `"task"`:
			dst = &p.task
		}
		if dst == nil {
			if err := d.SkipValue(); err != nil {
				return jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: %v", err)
			}
			continue
		}
		v, err := d.ReadValue()
		if err != nil {
			return jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: %v", err)
		}
		// The value as it is in params (the decoder's buffer is params
		// itself, but say so explicitly).
		end := int(d.InputOffset())
		*dst = params[end-len(v) : end : end]
	}
	return nil
}

// stringMember decodes a member that must be a string when present; ok
// is false when it is absent or null.
func stringMember(raw jsontext.Value, member string) (string, bool, error) {
	if len(raw) == 0 || raw.Kind() == 'n' {
		return "", false, nil
	}
	if raw.Kind() == '"' && bytes.IndexByte(raw[1:len(raw)-1], '\\') < 0 {
		return string(raw[1 : len(raw)-1]), true, nil // the common, unescaped string
	}
	return decodeStringMember(raw, member)
}

func decodeStringMember(raw jsontext.Value, member string) (string, bool, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: %s: %v", member, err)
	}
	return s, true, nil
}

// hasModernEnvelope reports whether params carry a _meta with a protocol
// version key: the mark of a modern request.
func hasModernEnvelope(params jsontext.Value) bool {
	// Legacy requests, the hot path, rarely contain the key at all: look
	// for it before decoding.
	if len(params) == 0 || !bytes.Contains(params, metaVersionKey) {
		return false
	}
	var p struct {
		Meta struct {
			V *jsontext.Value `json:"io.modelcontextprotocol/protocolVersion"`
		} `json:"_meta"`
	}
	if err := json.Unmarshal(params, &p); err != nil {
		return false
	}
	return p.Meta.V != nil
}

var metaVersionKey = []byte(`"` + MetaProtocolVersion + `"`)

// UnsupportedProtocolVersionError returns the -32022 error for a request
// made in version requested, listing the versions the server supports.
func UnsupportedProtocolVersionError(requested string) *jsonrpc.Error {
	data, _ := json.Marshal(struct {
		Supported []string `json:"supported"`
		Requested string   `json:"requested"`
	}{AllProtocolVersions(), requested})
	return &jsonrpc.Error{Code: CodeUnsupportedProtocolVersion, Message: "Unsupported protocol version: " + requested, Data: data}
}

// MissingCapabilityError returns the -32021 error saying that the request
// needs the client capabilities in required.
func MissingCapabilityError(required *ClientCapabilities, format string, args ...any) *jsonrpc.Error {
	data, _ := json.Marshal(struct {
		RequiredCapabilities *ClientCapabilities `json:"requiredCapabilities"`
	}{required})
	return &jsonrpc.Error{Code: CodeMissingRequiredClientCapability, Message: fmt.Sprintf(format, args...), Data: data}
}

// HeaderMismatchError returns the -32020 error for a header that is
// missing, malformed, or does not match the request body.
func HeaderMismatchError(format string, args ...any) *jsonrpc.Error {
	return &jsonrpc.Error{Code: CodeHeaderMismatch, Message: "Header mismatch: " + fmt.Sprintf(format, args...)}
}

// checkModernMeta validates a modern request's envelope: present, and in a
// version the server serves. It fills p from params.
func checkModernMeta(params jsontext.Value, p *modernParams, cache *envelopeCache) (*RequestMeta, error) {
	if err := p.scan(params); err != nil {
		return nil, err
	}
	m, err := cache.parse(p.meta)
	if err != nil {
		return nil, err
	}
	if !IsModernProtocolVersion(m.ProtocolVersion) {
		return nil, UnsupportedProtocolVersionError(m.ProtocolVersion)
	}
	return m, nil
}

// modernKey is the context key of the *modernRequest a handler serves.
type modernKey struct{}

// modernRequest is what the server knows of the modern request being
// served: its envelope, and the multi round-trip state of tools/call,
// prompts/get and resources/read (mrtr.go).
type modernRequest struct {
	meta      *RequestMeta
	id        jsonrpc.ID
	method    string
	principal string
	params    modernParams // the members read before dispatch
	input     *inputRound  // nil for methods that cannot ask for input
	round     inputRound   // what input points to, once the method may ask for input
	esc       *escalation  // set while a task-capable tools/call runs (modern_tasks.go)
	task      *extTask     // the task the call became, once it did
}

func modernFrom(ctx context.Context) *modernRequest {
	m, _ := ctx.Value(modernKey{}).(*modernRequest)
	return m
}

// RequestMetaFromContext returns the envelope of the modern request ctx
// belongs to, or nil inside a legacy session.
func RequestMetaFromContext(ctx context.Context) *RequestMeta {
	if m := modernFrom(ctx); m != nil {
		return m.meta
	}
	return nil
}

// RequestIDFromContext returns the JSON-RPC id of the modern request ctx
// belongs to (a subscriptions/listen stream's subscription id), and false
// inside a legacy session.
func RequestIDFromContext(ctx context.Context) (jsonrpc.ID, bool) {
	if m := modernFrom(ctx); m != nil {
		return m.id, true
	}
	return jsonrpc.ID{}, false
}

// ClientCapabilitiesFor returns the capabilities the client declared for
// the request ctx belongs to: those of the modern request's envelope, or
// those of the legacy session's initialize.
func (ss *ServerSession) ClientCapabilitiesFor(ctx context.Context) ClientCapabilities {
	if m := modernFrom(ctx); m != nil {
		return m.meta.ClientCapabilities
	}
	return ss.clientCaps()
}

// principalKey is the context key of the caller's identity as the
// transport established it.
type principalKey struct{}

// WithPrincipal returns a context that names the caller (for example the
// subject of a verified bearer token). The Streamable HTTP handler sets it
// from StreamableHTTPOptions.SessionPrincipal; a modern request's
// requestState is bound to it.
func WithPrincipal(ctx context.Context, principal string) context.Context {
	return context.WithValue(ctx, principalKey{}, principal)
}

// PrincipalFromContext returns the caller named by WithPrincipal, or "".
func PrincipalFromContext(ctx context.Context) string {
	p, _ := ctx.Value(principalKey{}).(string)
	return p
}

// initModernSession makes ss the throwaway session that serves one modern
// request over eng (it keeps nothing beyond the request), init its
// initialize params.
func (s *Server) initModernSession(ss *ServerSession, init *InitializeParams, eng *engine, meta *RequestMeta) {
	info := Implementation{Name: "modern-client", Version: "0"}
	if meta.ClientInfo != nil {
		info = *meta.ClientInfo
	}
	caps := meta.ClientCapabilities
	caps.Tasks = nil // core tasks do not exist in modern revisions
	*init = InitializeParams{ProtocolVersion: meta.ProtocolVersion, Capabilities: caps, ClientInfo: info}
	ss.server = s
	ss.eng = eng
	ss.version = meta.ProtocolVersion
	ss.initDone = true
	ss.initParams = init
	ss.logLevel = meta.LogLevel
}

// modernServing is what serving one modern request needs, allocated at
// once: the request, its throwaway session and the session's initialize
// params, the request's context and (over HTTP) its connection and
// response.
type modernServing struct {
	m    modernRequest
	ss   ServerSession
	init InitializeParams
	ctx  modernContext
	conn modernConn
	resp jsonrpc.Response
}

// modernContext is the context of a modern request's handler: the
// transport's context, answering for the request (modernKey), the caller
// (WithPrincipal) and the related request id (withRelatedRequest) itself,
// in one value instead of three.
type modernContext struct {
	context.Context
	m *modernRequest
}

// Value implements context.Context.
func (c *modernContext) Value(key any) any {
	switch key.(type) {
	case modernKey:
		return c.m
	case principalKey:
		return c.m.principal
	case relatedRequestKey:
		return c.m.id
	}
	return c.Context.Value(key)
}

// start prepares ms to serve one modern request of s over eng, in the
// context parent.
func (ms *modernServing) start(s *Server, parent context.Context, eng *engine, req *jsonrpc.Request, meta *RequestMeta, p *modernParams, principal string) {
	ms.m = modernRequest{meta: meta, id: req.ID, method: req.Method, principal: principal, params: *p}
	s.initModernSession(&ms.ss, &ms.init, eng, meta)
	ms.ctx = modernContext{Context: parent, m: &ms.m}
}

// servesModern reports whether the server serves modern requests (see
// ServerOptions.LegacyOnly and HandlerServesModern).
func (s *Server) servesModern() bool {
	return !s.opts.LegacyOnly && (s.opts.Handler == nil || s.opts.HandlerServesModern)
}

// maybeModern serves req as a modern request when it is one: a request
// that carries the modern envelope (or is server/discover) on a session
// that has not been initialized (stdio and other single-connection
// transports; the Streamable HTTP handler routes modern requests itself).
func (ss *ServerSession) maybeModern(ctx context.Context, req *jsonrpc.Request) (any, error, bool) {
	if m := modernFrom(ctx); m != nil {
		return ss.serveModern(ctx, m, req), nil, true
	}
	if ss.isInitialized() || req.Method == MethodInitialize || !ss.server.servesModern() {
		return nil, nil, false
	}
	if req.Method != MethodServerDiscover && !hasModernEnvelope(req.Params) {
		return nil, nil, false
	}
	var p modernParams
	meta, err := checkModernMeta(req.Params, &p, &ss.server.envelope)
	if err != nil {
		return nil, err, true
	}
	ms := &modernServing{m: modernRequest{meta: meta, id: req.ID, method: req.Method, principal: PrincipalFromContext(ctx), params: p}}
	ss.server.initModernSession(&ms.ss, &ms.init, ss.eng, meta)
	res := ms.ss.serveModern(context.WithValue(ctx, modernKey{}, &ms.m), &ms.m, req)
	if e, ok := res.(*jsonrpc.Error); ok {
		return nil, e, true
	}
	return res, nil, true
}

// modernResult is a modern result ready to send, or a *jsonrpc.Error.
type modernResult = any

// removedMethods are the methods of legacy revisions that modern
// revisions do not have.
var removedMethods = map[string]bool{
	MethodInitialize:           true,
	MethodPing:                 true,
	MethodLoggingSetLevel:      true,
	MethodResourcesSubscribe:   true,
	MethodResourcesUnsubscribe: true,
	MethodTasksResult:          true,
	MethodTasksList:            true,
}

// cacheableMethods are the methods whose results carry ttlMs and
// cacheScope.
var cacheableMethods = map[string]bool{
	MethodServerDiscover:         true,
	MethodToolsList:              true,
	MethodPromptsList:            true,
	MethodResourcesList:          true,
	MethodResourcesTemplatesList: true,
	MethodResourcesRead:          true,
}

// serveModern answers one modern request on the throwaway session ss. It
// returns the encoded result (jsontext.Value) or a *jsonrpc.Error.
func (ss *ServerSession) serveModern(ctx context.Context, m *modernRequest, req *jsonrpc.Request) modernResult {
	res, err := ss.dispatchModern(ctx, m, req)
	if err != nil {
		e := toWireError(err)
		if e.Code == jsonrpc.CodeResourceNotFound && req.Method == MethodResourcesRead {
			// Revision 2026-07-28 reports unknown resources as invalid
			// params.
			c := *e
			c.Code = jsonrpc.CodeInvalidParams
			e = &c
		}
		return e
	}
	raw, err := marshalResult(res)
	if err != nil {
		return jsonrpc.NewError(jsonrpc.CodeInternalError, "encoding result: %v", err)
	}
	out, err := ss.server.amendModernResult(req.Method, raw)
	if err != nil {
		return jsonrpc.NewError(jsonrpc.CodeInternalError, "encoding result: %v", err)
	}
	return out
}

func (ss *ServerSession) dispatchModern(ctx context.Context, m *modernRequest, req *jsonrpc.Request) (any, error) {
	switch {
	case req.Method == MethodServerDiscover:
		return ss.server.discover(ctx, ss), nil
	case removedMethods[req.Method]:
		return nil, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "method %q is not part of protocol version %s", req.Method, m.meta.ProtocolVersion)
	case req.Method == MethodSubscriptionsListen && ss.server.opts.Handler == nil:
		return ss.listen(ctx, m, req) // a Handler that serves modern requests serves it itself
	}
	if h := ss.server.opts.Handler; h != nil {
		return h(ctx, ss, req.Method, req.Params)
	}
	switch req.Method {
	case MethodToolsCall, MethodPromptsGet, MethodResourcesRead:
		return ss.serveWithInput(ctx, m, req)
	case MethodTasksGet, MethodTasksCancel, MethodTasksUpdate:
		return ss.serveTasksExtension(ctx, m, req)
	}
	h, ok := serverMethods[req.Method]
	if !ok {
		return nil, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "method %q not found", req.Method)
	}
	return h.fn(ss, ctx, req.Params)
}

// DiscoverResult is the result of server/discover.
type DiscoverResult struct {
	// Meta is the _meta field (the server's identity goes here).
	Meta Meta `json:"_meta,omitzero"`
	// SupportedVersions are the protocol versions the server serves.
	SupportedVersions []string `json:"supportedVersions"`
	// Capabilities are the server's capabilities.
	Capabilities ServerCapabilities `json:"capabilities"`
	// Instructions describe how to use the server.
	Instructions string `json:"instructions,omitzero"`
}

func (s *Server) discover(ctx context.Context, ss *ServerSession) *DiscoverResult {
	var caps ServerCapabilities
	if f := s.opts.CapabilitiesFunc; f != nil {
		caps = f(ctx, ss, ss.InitializeParams())
	} else {
		caps = s.capabilities()
	}
	return &DiscoverResult{
		SupportedVersions: AllProtocolVersions(),
		Capabilities:      modernCapabilities(caps),
		Instructions:      s.opts.Instructions,
	}
}

// modernCapabilities adapts capabilities to a modern revision: the core
// tasks of 2025-11-25 do not exist there; a server with task-capable tools
// offers the Tasks extension instead (modern_tasks.go).
func modernCapabilities(c ServerCapabilities) ServerCapabilities {
	if c.Tasks != nil {
		c.Tasks = nil
		ext := make(map[string]jsontext.Value, len(c.Extensions)+1)
		maps.Copy(ext, c.Extensions)
		if _, ok := ext[ExtensionTasks]; !ok {
			ext[ExtensionTasks] = jsontext.Value("{}")
		}
		c.Extensions = ext
	}
	return c
}

// CacheHints are the caching hints of a cacheable modern result.
type CacheHints struct {
	// TTL is how long the client may reuse the result (ttlMs); zero means
	// the result is stale at once.
	TTL time.Duration
	// Scope is "public" (any cache, shared ones too) or "private" (only
	// caches of the same authorization context).
	Scope string
}

// Cache scopes.
const (
	CacheScopePublic  = "public"
	CacheScopePrivate = "private"
)

// cacheHints returns the hints for method's results.
func (s *Server) cacheHints(method string) CacheHints {
	h := CacheHints{Scope: CacheScopePrivate}
	if f := s.opts.CacheHints; f != nil {
		h = f(method)
		if h.Scope != CacheScopePublic {
			h.Scope = CacheScopePrivate
		}
		if h.TTL < 0 {
			h.TTL = 0
		}
	}
	return h
}

// amendModernResult adds what a modern result carries beyond the legacy
// one: resultType, the server's identity in _meta, and the cache hints of
// cacheable methods. Members the result already has are kept.
func (s *Server) amendModernResult(method string, raw jsontext.Value) (jsontext.Value, error) {
	info, err := s.serverInfoJSON()
	if err != nil {
		return nil, err
	}
	if fast, ok := s.appendModernMembers(method, raw, info); ok {
		return fast, nil
	}
	members, err := objectMembers(raw)
	if err != nil {
		return nil, err
	}
	has := func(k string) int {
		return slices.IndexFunc(members, func(m member) bool { return m.name == k })
	}
	if has("resultType") < 0 {
		members = append(members, member{"resultType", jsontext.Value(`"complete"`)})
	}
	if cacheableMethods[method] {
		h := s.cacheHints(method)
		if has("ttlMs") < 0 {
			members = append(members, member{"ttlMs", jsontext.Value(fmt.Sprint(h.TTL.Milliseconds()))})
		}
		if has("cacheScope") < 0 {
			q, _ := json.Marshal(h.Scope)
			members = append(members, member{"cacheScope", q})
		}
	}
	if i := has("_meta"); i < 0 {
		members = append(members, member{"_meta", jsontext.Value(`{"` + MetaServerInfo + `":` + string(info) + `}`)})
	} else {
		meta, err := objectMembers(members[i].value)
		if err != nil {
			return nil, fmt.Errorf("_meta: %w", err)
		}
		if slices.IndexFunc(meta, func(m member) bool { return m.name == MetaServerInfo }) < 0 {
			meta = append(meta, member{MetaServerInfo, info})
		}
		members[i].value = appendObject(nil, meta)
	}
	return appendObject(make([]byte, 0, len(raw)+len(info)+96), members), nil
}

// serverInfoJSON returns the server's Implementation, encoded once.
func (s *Server) serverInfoJSON() ([]byte, error) {
	s.infoOnce.Do(func() { s.infoJSON, s.infoErr = json.Marshal(s.impl) })
	return s.infoJSON, s.infoErr
}

// appendModernMembers is amendModernResult for the common result that has
// none of the members it adds: they are appended without decoding the
// result. It reports false when the result may have one of them.
func (s *Server) appendModernMembers(method string, raw jsontext.Value, info []byte) (jsontext.Value, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) < 2 || raw[0] != '{' || raw[len(raw)-1] != '}' {
		return nil, false
	}
	for _, k := range [...]string{`"resultType"`, `"_meta"`, `"ttlMs"`, `"cacheScope"`} {
		if bytes.Contains(raw, []byte(k)) {
			return nil, false
		}
	}
	b := make([]byte, 0, len(raw)+len(info)+128)
	b = append(b, raw[:len(raw)-1]...)
	if len(bytes.TrimSpace(raw[1:len(raw)-1])) > 0 {
		b = append(b, ',')
	}
	b = append(b, `"resultType":"complete"`...)
	if cacheableMethods[method] {
		h := s.cacheHints(method)
		b = append(b, `,"ttlMs":`...)
		b = strconv.AppendInt(b, h.TTL.Milliseconds(), 10)
		b = append(b, `,"cacheScope":`...)
		b = appendJSONString(b, h.Scope)
	}
	b = append(b, `,"_meta":{"`+MetaServerInfo+`":`...)
	b = append(b, info...)
	b = append(b, "}}"...)
	return b, true
}

// member is one member of a JSON object.
type member struct {
	name  string
	value jsontext.Value
}

// objectMembers splits a JSON object into its members, in order.
func objectMembers(raw jsontext.Value) ([]member, error) {
	d := jsontext.NewDecoder(bytes.NewReader(raw))
	tok, err := d.ReadToken()
	if err != nil {
		return nil, err
	}
	if tok.Kind() != '{' {
		return nil, fmt.Errorf("result is a JSON %s, not an object", tok.Kind())
	}
	var out []member
	for d.PeekKind() != '}' {
		tok, err := d.ReadToken()
		if err != nil {
			return nil, err
		}
		name := tok.String()
		v, err := d.ReadValue()
		if err != nil {
			return nil, err
		}
		out = append(out, member{name, slices.Clone(v)})
	}
	return out, nil
}

// appendObject encodes members as a JSON object.
func appendObject(b []byte, members []member) []byte {
	b = append(b, '{')
	for i, m := range members {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, m.name)
		b = append(b, ':')
		b = append(b, m.value...)
	}
	return append(b, '}')
}

// callToolModern is callTool for a modern request. Its params were
// scanned before dispatch (m.params): CallToolParams is built from the
// members found instead of decoding the params again, and the envelope's
// members of _meta are decoded once per distinct encoding and shared
// between requests (see metaDecoder). Params out of the common shape are
// decoded as callTool decodes them.
func (ss *ServerSession) callToolModern(ctx context.Context, m *modernRequest, params jsontext.Value) (any, error) {
	p := new(CallToolParams)
	d := &ss.server.envelope.meta
	opts := d.options(envelopeMembers...)
	if err := m.params.callToolParams(p, d); err != nil {
		*p = CallToolParams{}
		if len(params) > 0 {
			if err := json.Unmarshal(params, p, opts); err != nil {
				return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "invalid params: " + err.Error()}
			}
		}
	}
	return ss.callToolParams(ctx, p)
}

// errUncommonParams makes callToolModern decode the params in full.
var errUncommonParams = errors.New("mcp: params out of the common shape")

// callToolParams fills p from the members of a tools/call's params as
// json.Unmarshal would, or fails with errUncommonParams (a task member, a
// name that is not a plain string) or the error of decoding _meta.
func (mp *modernParams) callToolParams(p *CallToolParams, d *metaDecoder) error {
	if len(mp.task) > 0 {
		return errUncommonParams
	}
	if len(mp.name) > 0 {
		switch name, ok := plainString(mp.name); {
		case ok:
			p.Name = name
		case mp.name.Kind() != 'n':
			return errUncommonParams
		}
	}
	if len(mp.arguments) > 0 {
		// Cloned as decoding clones: the params may be a pooled buffer.
		p.Arguments = bytes.Clone(mp.arguments)
	}
	switch {
	case len(mp.meta) == 0 || mp.meta.Kind() == 'n':
		return nil
	case mp.meta.Kind() != '{':
		return errUncommonParams
	}
	var err error
	p.Meta, err = d.object(mp.meta)
	return err
}

// envelopeMembers are the _meta members of the envelope.
var envelopeMembers = []string{MetaProtocolVersion, MetaClientCapabilities, MetaClientInfo, MetaLogLevel}
