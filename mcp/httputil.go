package mcp

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/mcpgate/mcpgate/jsonrpc"
)

// Header names of the Streamable HTTP transport.
const (
	headerSessionID       = "Mcp-Session-Id"
	headerProtocolVersion = "Mcp-Protocol-Version"
	headerLastEventID     = "Last-Event-Id"
)

// originPolicy is the DNS-rebinding protection of the HTTP server
// transports: which Host and Origin headers a request may carry.
type originPolicy struct {
	disabled bool
	origins  []string // allowed Origin values ("scheme://host[:port]"), "*" for any
	hosts    []string // allowed Host values (host or host:port), "*" for any
}

// check returns an error (to answer with 403) if r must be refused.
//
// When the request arrived on a loopback address, or when hosts were
// configured, the Host header must name localhost, 127.0.0.1 or [::1] (any
// port) or one of the configured hosts. An Origin header, when present, must
// be one of the configured origins, or name one of the local hosts on a
// loopback listener, or, on other listeners when no origins were
// configured, be the same origin as the Host header (which refuses
// cross-site browser requests).
func (p *originPolicy) check(r *http.Request) error {
	if p.disabled {
		return nil
	}
	loopback := isLoopbackListener(r)
	if loopback || len(p.hosts) > 0 {
		if !isLocalHost(r.Host) && !matchHost(p.hosts, r.Host) {
			return fmt.Errorf("host %q is not allowed", r.Host)
		}
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	for _, o := range p.origins {
		if o == "*" || strings.EqualFold(o, origin) {
			return nil
		}
	}
	scheme, host, ok := strings.Cut(origin, "://")
	if !ok || (scheme != "http" && scheme != "https") || host == "" {
		return fmt.Errorf("origin %q is not allowed", origin)
	}
	if loopback && isLocalHost(host) {
		return nil
	}
	if !loopback && len(p.origins) == 0 && strings.EqualFold(host, r.Host) {
		return nil // same origin
	}
	return fmt.Errorf("origin %q is not allowed", origin)
}

// isLoopbackListener reports whether r arrived on a loopback address.
func isLoopbackListener(r *http.Request) bool {
	a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.IsLoopback()
	}
	ap, err := netip.ParseAddrPort(a.String())
	return err == nil && ap.Addr().Unmap().IsLoopback()
}

// isLocalHost reports whether hostport (a Host header or the host part of an
// Origin) names localhost, 127.0.0.1 or [::1], with an optional port.
func isLocalHost(hostport string) bool {
	host := hostport
	if h, port, err := net.SplitHostPort(hostport); err == nil {
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return false
		}
		host = h
	} else if strings.HasPrefix(hostport, "[") && strings.HasSuffix(hostport, "]") {
		host = hostport[1 : len(hostport)-1]
	}
	switch strings.ToLower(host) {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	return false
}

// matchHost reports whether hostport matches one of the allowed hosts: an
// entry without a port matches any port.
func matchHost(allowed []string, hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	for _, a := range allowed {
		if a == "*" || strings.EqualFold(a, hostport) || strings.EqualFold(strings.Trim(a, "[]"), host) {
			return true
		}
	}
	return false
}

// acceptsTypes reports whether the Accept headers list application/json and
// text/event-stream (directly or through a wildcard).
func acceptsTypes(h http.Header) (jsonOK, sseOK bool) {
	for _, v := range h.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mt, _, _ := strings.Cut(part, ";")
			mt = strings.ToLower(strings.TrimSpace(mt))
			switch mt {
			case "application/json":
				jsonOK = true
			case "text/event-stream":
				sseOK = true
			case "*/*":
				jsonOK, sseOK = true, true
			case "application/*":
				jsonOK = true
			case "text/*":
				sseOK = true
			}
		}
	}
	return jsonOK, sseOK
}

// isJSONContentType reports whether ct is application/json (with optional
// parameters such as charset=utf-8).
func isJSONContentType(ct string) bool {
	if ct == "application/json" {
		return true
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return false
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return false
	}
	return true
}

// errBodyTooLarge reports a request body over the configured limit.
var errBodyTooLarge = errors.New("request body too large")

// readBody reads the request body, refusing more than limit bytes. It
// allocates one buffer of the announced length when there is one: the
// decoded message aliases the buffer and may outlive the request (a handler
// or a task may keep its params), so the buffer is never reused.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, errBodyTooLarge
	}
	size := 512
	if r.ContentLength > 0 {
		size = int(r.ContentLength) + 1 // +1 so that a correct body ends in one read
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, errBodyTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading request body: %w", err)
		}
	}
}

// bufPool holds buffers for encoding outgoing messages and events.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > 64<<10 {
		return // do not keep large buffers alive
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

// writeHTTPError answers with an HTTP error status and a JSON-RPC error
// response body without an id, as the transport spec allows.
func writeHTTPError(w http.ResponseWriter, status int, code int64, msg string) {
	writeHTTPErrorID(w, status, jsonrpc.ID{}, code, msg)
}

// writeHTTPErrorID is writeHTTPError for an error about a request whose id
// is known.
func writeHTTPErrorID(w http.ResponseWriter, status int, id jsonrpc.ID, code int64, msg string) {
	bp := getBuf()
	b := append((*bp)[:0], `{"jsonrpc":"2.0",`...)
	if id.IsValid() {
		b = append(b, `"id":`...)
		b = id.AppendJSON(b)
		b = append(b, ',')
	}
	b = append(b, `"error":{"code":`...)
	b = strconv.AppendInt(b, code, 10)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, msg)
	b = append(b, "}}"...)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Del("Mcp-Session-Id")
	w.WriteHeader(status)
	w.Write(b)
	*bp = b
	putBuf(bp)
}

// appendJSONString appends s as a JSON string, replacing invalid UTF-8.
func appendJSONString(b []byte, s string) []byte {
	s = strings.ToValidUTF8(s, "\uFFFD")
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// SSE encoding.

// appendSSEEvent appends one server-sent event carrying data (a JSON
// message) with the given id ("" for none). Line breaks inside data can
// only be JSON whitespace, so each line becomes its own data field, which
// the client joins again with "\n".
func appendSSEEvent(b []byte, id string, data []byte) []byte {
	if id != "" {
		b = append(b, "id: "...)
		b = append(b, id...)
		b = append(b, '\n')
	}
	b = append(b, "event: message\n"...)
	for {
		i := indexLineBreak(data)
		b = append(b, "data: "...)
		if i < 0 {
			b = append(b, data...)
			break
		}
		b = append(b, data[:i]...)
		b = append(b, '\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	return append(b, "\n\n"...)
}

func indexLineBreak(b []byte) int {
	for i, c := range b {
		if c == '\n' || c == '\r' {
			return i
		}
	}
	return -1
}

// appendSSEPriming appends the priming event: an id and an empty data
// field, so that the client has an id to resume from, and the reconnection
// delay in milliseconds when retryMS > 0.
func appendSSEPriming(b []byte, id string, retryMS int64) []byte {
	b = append(b, "id: "...)
	b = append(b, id...)
	b = append(b, '\n')
	if retryMS > 0 {
		b = append(b, "retry: "...)
		b = strconv.AppendInt(b, retryMS, 10)
		b = append(b, '\n')
	}
	return append(b, "data: \n\n"...)
}

// appendEventID appends the SSE event id for event seq of a stream: the
// stream id and the sequence number, separated by an underscore.
func appendEventID(b []byte, streamID string, seq int64) []byte {
	b = append(b, streamID...)
	b = append(b, '_')
	return strconv.AppendInt(b, seq, 10)
}

// parseEventID splits an event id made by appendEventID. Stream ids are
// decimal numbers here.
func parseEventID(id string) (streamID string, seq int64, err error) {
	if len(id) > 64 {
		return "", 0, errors.New("event id too long")
	}
	s, n, ok := strings.Cut(id, "_")
	if !ok || !isDecimal(s) || !isDecimal(n) {
		return "", 0, fmt.Errorf("malformed event id %q", id)
	}
	seq, err = strconv.ParseInt(n, 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("malformed event id %q", id)
	}
	if _, err := strconv.ParseInt(s, 10, 64); err != nil {
		return "", 0, fmt.Errorf("malformed event id %q", id)
	}
	return s, seq, nil
}

// isDecimal reports whether s is a non-empty decimal number without leading
// zeros (so that every stream has exactly one spelling).
func isDecimal(s string) bool {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// readPOSTMessage reads and decodes the JSON-RPC message of a POST. On
// failure it answers the request with the right status and a JSON-RPC
// error, and reports false.
func readPOSTMessage(w http.ResponseWriter, r *http.Request, maxBody int64) (jsonrpc.Message, bool) {
	if !isJSONContentType(r.Header.Get("Content-Type")) {
		writeHTTPError(w, http.StatusUnsupportedMediaType, jsonrpc.CodeInvalidRequest, "Content-Type must be application/json")
		return nil, false
	}
	body, err := readBody(r, maxBody)
	if err != nil {
		if errors.Is(err, errBodyTooLarge) {
			writeHTTPError(w, http.StatusRequestEntityTooLarge, jsonrpc.CodeInvalidRequest,
				fmt.Sprintf("request body exceeds the limit of %d bytes", maxBody))
		} else {
			writeHTTPError(w, http.StatusBadRequest, jsonrpc.CodeParseError, err.Error())
		}
		return nil, false
	}
	msg, err := jsonrpc.DecodeMessageLimit(body, 0)
	if err != nil {
		var id jsonrpc.ID
		if req, ok := msg.(*jsonrpc.Request); ok {
			id = req.ID
		}
		writeHTTPErrorID(w, http.StatusBadRequest, id, jsonrpc.ErrorCode(err), errorMessage(err))
		return nil, false
	}
	return msg, true
}
