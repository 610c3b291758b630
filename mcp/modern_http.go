package mcp

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/jsonrpc"
)

// Header names of revision 2026-07-28.
const (
	headerMcpMethod   = "Mcp-Method"
	headerMcpName     = "Mcp-Name"
	headerParamPrefix = "Mcp-Param-"
)

// isModernPOST reports whether a POST carrying req is served as a modern
// (2026-07-28) request: it carries the modern envelope, or is
// server/discover, or names a non-legacy protocol version in its header
// without naming a session.
func isModernPOST(r *http.Request, req *jsonrpc.Request) bool {
	if req == nil {
		return false
	}
	if req.Method == MethodServerDiscover {
		return true
	}
	if r.Header.Get(headerSessionID) != "" {
		// A request on a legacy session: modern only if it really carries
		// the envelope.
		return hasModernEnvelope(req.Params)
	}
	// Without a session only initialize is legacy: the key anywhere in
	// the params is enough to try the modern path, whose checks then
	// answer precisely.
	if req.Method != MethodInitialize && bytes.Contains(req.Params, metaVersionKey) {
		return true
	}
	v := r.Header.Get(headerProtocolVersion)
	return v != "" && !IsSupportedProtocolVersion(v) || hasModernEnvelope(req.Params)
}

// serveModern serves one modern request (or notification): no session, no
// state beyond the request.
//
// It reports false, having answered nothing, when the server does not serve
// modern requests (ServerOptions.LegacyOnly): the caller then serves the
// request as before.
func (h *StreamableHTTPHandler) serveModern(w http.ResponseWriter, r *http.Request, req *jsonrpc.Request) bool {
	srv := h.getServer(r)
	if srv == nil {
		writeHTTPErrorID(w, http.StatusBadRequest, req.ID, jsonrpc.CodeInvalidRequest, "no MCP server is available for this request")
		return true
	}
	if !srv.servesModern() {
		return false
	}
	if req.IsNotification() {
		// No client-to-server notification is defined over Streamable HTTP
		// in modern revisions; accept and drop.
		w.WriteHeader(http.StatusAccepted)
		return true
	}
	var p modernParams
	meta, err := srv.checkModernHTTP(r, req, &p)
	if err != nil {
		writeModernError(w, req.ID, toWireError(err))
		return true
	}
	principal := ""
	if h.opts.SessionPrincipal != nil {
		principal = h.opts.SessionPrincipal(r)
	}
	ms := new(modernServing)
	c := &ms.conn
	c.w, c.id, c.jsonOnly = w, req.ID, h.opts.JSONResponse
	slot, refused := h.streams.acquire(r, fmt.Sprintf("modern-%p", c), principal)
	if refused != nil {
		refused.write(w)
		return true
	}
	defer slot.release()

	// The engine only carries the handler's notifications; the request is
	// served here, on the HTTP request's goroutine, and closing the
	// response stream (the request's context) cancels it.
	ms.start(srv, r.Context(), newEngine(c, h.logger), req, meta, &p, principal)
	ms.resp = jsonrpc.Response{ID: req.ID}
	c.resp = &ms.resp
	switch res := serveRecovered(&ms.ctx, &ms.ss, &ms.m, req, h.logger).(type) {
	case *jsonrpc.Error:
		c.resp.Error = res
	case jsontext.Value:
		c.resp.Result = res
	}
	c.finish()
	return true
}

// serveRecovered is ServerSession.serveModern turning a panic into -32603.
func serveRecovered(ctx context.Context, rs *ServerSession, m *modernRequest, req *jsonrpc.Request, logger *slog.Logger) (res modernResult) {
	defer func() {
		if p := recover(); p != nil {
			logger.Error("mcp: handler panicked", "method", req.Method, "panic", p)
			res = jsonrpc.NewError(jsonrpc.CodeInternalError, "internal error in %s", req.Method)
		}
	}()
	return rs.serveModern(ctx, m, req)
}

// checkModernHTTP validates the envelope and the headers of a modern
// request, in the order the spec's errors are listed.
// It fills p from the request's params.
func (s *Server) checkModernHTTP(r *http.Request, req *jsonrpc.Request, p *modernParams) (*RequestMeta, error) {
	hv := strings.TrimSpace(r.Header.Get(headerProtocolVersion))
	if hv == "" {
		return nil, HeaderMismatchError("the MCP-Protocol-Version header is required")
	}
	if err := p.scan(req.Params); err != nil {
		return nil, err
	}
	meta, err := s.envelope.parse(p.meta)
	if err != nil {
		return nil, err
	}
	if hv != meta.ProtocolVersion {
		return nil, HeaderMismatchError("MCP-Protocol-Version header %q does not match %s %q", hv, MetaProtocolVersion, meta.ProtocolVersion)
	}
	if !IsModernProtocolVersion(meta.ProtocolVersion) {
		return nil, UnsupportedProtocolVersionError(meta.ProtocolVersion)
	}
	if err := s.checkRequestHeaders(r.Context(), r.Header, req, p); err != nil {
		return nil, err
	}
	return meta, nil
}

// nameSource returns the params member that Mcp-Name mirrors for method.
func nameSource(method string) string {
	switch method {
	case MethodToolsCall, MethodPromptsGet:
		return "name"
	case MethodResourcesRead:
		return "uri"
	case MethodTasksGet, MethodTasksUpdate, MethodTasksCancel:
		return "taskId"
	}
	return ""
}

// checkRequestHeaders checks Mcp-Method, Mcp-Name and the Mcp-Param-*
// headers of a tools/call against the request body, whose members p holds.
func (s *Server) checkRequestHeaders(ctx context.Context, hdr http.Header, req *jsonrpc.Request, p *modernParams) error {
	mv, ok := headerValue(hdr, headerMcpMethod)
	if !ok {
		return HeaderMismatchError("the Mcp-Method header is required")
	}
	if mv != req.Method {
		return HeaderMismatchError("Mcp-Method header value %q does not match body method %q", mv, req.Method)
	}
	src := nameSource(req.Method)
	if src == "" {
		return nil
	}
	// Each of the members Mcp-Name may mirror must be a string (or null)
	// when present, whichever the method uses.
	var body string
	for _, m := range [...]struct {
		name string
		raw  jsontext.Value
	}{{"name", p.name}, {"uri", p.uri}, {"taskId", p.taskID}} {
		v, _, err := stringMember(m.raw, m.name)
		if err != nil {
			return err
		}
		if m.name == src {
			body = v
		}
	}
	raw, ok := headerValue(hdr, headerMcpName)
	if !ok {
		return HeaderMismatchError("the Mcp-Name header is required for %s", req.Method)
	}
	name, err := decodeHeaderValue(raw)
	if err != nil {
		return HeaderMismatchError("Mcp-Name: %v", err)
	}
	if name != body {
		return HeaderMismatchError("Mcp-Name header value %q does not match body value %q", name, body)
	}
	if req.Method != MethodToolsCall {
		return nil
	}
	s.mu.Lock()
	st, ok := s.tools.get(body)
	s.mu.Unlock()
	if !ok && s.opts.ToolInputSchema != nil {
		// A Handler's tool (the gateway's catalogue).
		if schema := s.opts.ToolInputSchema(ctx, body); len(schema) > 0 {
			if hs := toolParamHeaders(schema); len(hs) > 0 {
				return checkParamHeaders(hdr, hs, p.arguments)
			}
		}
		return nil
	}
	if !ok || len(st.headers) == 0 {
		return nil // an unknown tool fails later with "unknown tool"
	}
	return checkParamHeaders(hdr, st.headers, p.arguments)
}

// headerValue returns a header's value with optional whitespace trimmed.
func headerValue(h http.Header, name string) (string, bool) {
	vs := h.Values(name)
	if len(vs) == 0 {
		return "", false
	}
	return strings.Trim(vs[0], " \t"), true
}

// decodeHeaderValue decodes the Base64 sentinel form =?base64?...?= and
// checks that a plain value has only the characters a header value may.
func decodeHeaderValue(v string) (string, error) {
	if strings.HasPrefix(v, "=?base64?") && strings.HasSuffix(v, "?=") && len(v) >= len("=?base64??=") {
		b, err := base64.StdEncoding.Strict().DecodeString(v[len("=?base64?") : len(v)-2])
		if err != nil {
			return "", errors.New("invalid Base64 value")
		}
		return string(b), nil
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c != '\t' && (c < 0x20 || c > 0x7e) {
			return "", fmt.Errorf("invalid character 0x%02x in header value", c)
		}
	}
	return v, nil
}

// paramHeader is one x-mcp-header annotation of a tool's input schema.
type paramHeader struct {
	name string   // the header is Mcp-Param-{name}
	path []string // the chain of properties keys leading to the value
}

// toolParamHeaders reads the x-mcp-header annotations of an input schema:
// on properties reachable through "properties" only.
func toolParamHeaders(schema jsontext.Value) []paramHeader {
	var out []paramHeader
	var walk func(v jsontext.Value, path []string, depth int)
	walk = func(v jsontext.Value, path []string, depth int) {
		if depth > 32 {
			return
		}
		var node struct {
			Header     *string                   `json:"x-mcp-header"`
			Properties map[string]jsontext.Value `json:"properties"`
		}
		if json.Unmarshal(v, &node) != nil {
			return
		}
		if node.Header != nil && len(path) > 0 {
			out = append(out, paramHeader{name: *node.Header, path: append([]string(nil), path...)})
		}
		for k, pv := range node.Properties {
			walk(pv, append(path, k), depth+1)
		}
	}
	walk(schema, nil, 0)
	return out
}

// checkParamHeaders checks that every annotated argument present in the
// call is mirrored, equal, in its Mcp-Param header.
func checkParamHeaders(hdr http.Header, headers []paramHeader, args jsontext.Value) error {
	for _, ph := range headers {
		v, ok := lookupPath(args, ph.path)
		hname := headerParamPrefix + ph.name
		raw, present := headerValue(hdr, hname)
		var got string
		if present {
			var err error
			if got, err = decodeHeaderValue(raw); err != nil {
				return HeaderMismatchError("%s: %v", hname, err)
			}
		}
		if !ok || v.Kind() == 'n' {
			continue
		}
		if !present {
			return HeaderMismatchError("the %s header is required: the arguments carry %s", hname, strings.Join(ph.path, "."))
		}
		if !headerMatches(got, v) {
			return HeaderMismatchError("%s header value %q does not match the argument %s", hname, got, strings.Join(ph.path, "."))
		}
	}
	return nil
}

// lookupPath returns the value at path in the JSON object v.
func lookupPath(v jsontext.Value, path []string) (jsontext.Value, bool) {
	for _, k := range path {
		if len(v) == 0 || v.Kind() != '{' {
			return nil, false
		}
		var m map[string]jsontext.Value
		if json.Unmarshal(v, &m) != nil {
			return nil, false
		}
		var ok bool
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

// headerMatches compares a decoded header value with an argument: strings
// as they are, numbers numerically, booleans as true/false.
func headerMatches(h string, v jsontext.Value) bool {
	switch v.Kind() {
	case '"':
		var s string
		return json.Unmarshal(v, &s) == nil && s == h
	case 't':
		return h == "true"
	case 'f':
		return h == "false"
	case '0':
		a, ok1 := new(big.Float).SetString(string(v))
		b, ok2 := new(big.Float).SetString(h)
		return ok1 && ok2 && a.Cmp(b) == 0
	}
	return false
}

// modernStatus is the HTTP status of a modern error response.
func modernStatus(code int64) int {
	switch code {
	case CodeHeaderMismatch, CodeMissingRequiredClientCapability, CodeUnsupportedProtocolVersion:
		return http.StatusBadRequest
	case jsonrpc.CodeMethodNotFound:
		return http.StatusNotFound
	}
	return http.StatusOK
}

// writeModernError answers a modern request that failed before dispatch.
func writeModernError(w http.ResponseWriter, id jsonrpc.ID, e *jsonrpc.Error) {
	status := modernStatus(e.Code)
	if status == http.StatusOK {
		status = http.StatusBadRequest // envelope and header failures
	}
	b, err := jsonrpc.EncodeMessage(&jsonrpc.Response{ID: id, Error: e})
	if err != nil {
		writeHTTPErrorID(w, status, id, e.Code, e.Message)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// modernConn is the connection of one modern request, as the handler's
// session sees it: it turns the response into an SSE stream when the
// handler sends a notification first, and refuses server-to-client
// requests (modern servers ask through MRTR instead).
type modernConn struct {
	w  http.ResponseWriter
	id jsonrpc.ID

	jsonOnly bool // StreamableHTTPOptions.JSONResponse: notifications are dropped

	mu     sync.Mutex
	sse    bool
	failed bool // the client went away
	resp   *jsonrpc.Response
}

// Read implements Connection; messages are pushed instead.
func (c *modernConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// SessionID implements Connection: modern requests have no session.
func (c *modernConn) SessionID() string { return "" }

// Close implements Connection.
func (c *modernConn) Close() error { return nil }

var errModernServerRequest = errors.New("mcp: a modern (2026-07-28) request cannot carry server-to-client requests; ask for input with RequestInput")

// Write implements Connection.
func (c *modernConn) Write(ctx context.Context, msg jsonrpc.Message) error {
	switch m := msg.(type) {
	case *jsonrpc.Response:
		c.mu.Lock()
		c.resp = m
		c.mu.Unlock()
		return nil
	case *jsonrpc.Request:
		if !m.IsNotification() {
			return errModernServerRequest
		}
	}
	if c.jsonOnly {
		return nil // a modern request has no other stream to carry them
	}
	b, err := jsonrpc.EncodeMessage(msg)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writeEventLocked(b)
}

func (c *modernConn) writeEventLocked(b []byte) error {
	if c.failed {
		return ErrConnectionClosed
	}
	if !c.sse {
		c.sse = true
		c.w.Header().Set("X-Accel-Buffering", "no")
		writeSSEHeaders(c.w)
	}
	bp := getBuf()
	out := appendSSEEvent((*bp)[:0], "", b)
	_, err := c.w.Write(out)
	*bp = out
	putBuf(bp)
	if err == nil {
		err = http.NewResponseController(c.w).Flush()
	}
	if err != nil {
		c.failed = true
		return fmt.Errorf("%w: %v", ErrConnectionClosed, err)
	}
	return nil
}

// finish sends the response the handler produced.
func (c *modernConn) finish() {
	c.mu.Lock()
	defer c.mu.Unlock()
	resp := c.resp
	if resp == nil {
		resp = &jsonrpc.Response{ID: c.id, Error: jsonrpc.NewError(jsonrpc.CodeInternalError, "the request was not answered")}
	}
	bp := getBuf()
	defer putBuf(bp)
	b, err := jsonrpc.AppendMessage((*bp)[:0], resp)
	if err != nil {
		b, _ = jsonrpc.AppendMessage((*bp)[:0], &jsonrpc.Response{ID: c.id, Error: jsonrpc.NewError(jsonrpc.CodeInternalError, "encoding the response: %v", err)})
	}
	*bp = b
	defer func() { c.failed = true }() // nothing more may be written
	if c.sse {
		c.writeEventLocked(b)
		return
	}
	status := http.StatusOK
	if resp.Error != nil {
		status = modernStatus(resp.Error.Code)
	}
	h := c.w.Header()
	h.Set("Content-Type", "application/json")
	if len(b) > 2048 {
		// Small bodies get a Content-Length from net/http itself.
		h.Set("Content-Length", strconv.Itoa(len(b)))
	}
	c.w.WriteHeader(status)
	c.w.Write(b)
}
