package mcp

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"sync"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// The hot path of a modern (2026-07-28) request on the client side: the
// per-request _meta envelope written without decoding the params, the
// HTTP headers without decoding them either, and the head of the result
// read without decoding the whole result. Each falls back to the general
// code in modern_client.go when its input is not the common case.

// modernWire is what a modern client session encodes once and reuses for
// every request.
type modernWire struct {
	once sync.Once
	caps []byte // the client capabilities of every request, encoded
	info []byte // the client's Implementation, encoded
	err  error

	vonce   sync.Once
	version []string // the MCP-Protocol-Version header value
	methods sync.Map // method → []string, the Mcp-Method header value

	meta metaDecoder // the results' _meta, sharing the server information

	// toolHeaders caches the x-mcp-header annotations of the tools last
	// listed, by name, with the *Tool they were read from (a new listing
	// replaces the tool, which invalidates the entry). Guarded by
	// modernClient.mu; bounded by maxToolHeaderCache.
	toolHeaders map[string]toolHeaders
}

type toolHeaders struct {
	tool    *Tool
	headers []paramHeader
}

// maxToolHeaderCache bounds modernWire.toolHeaders beyond the number of
// tools listed: past it the cache is emptied and refilled on use.
const maxToolHeaderCache = 1024

// encoded returns the encoded capabilities and client information of c's
// modern requests. They depend on the client's options only.
func (w *modernWire) encoded(c *Client) (caps, info []byte, err error) {
	w.once.Do(func() {
		if w.caps, w.err = json.Marshal(c.modernCapabilities(), json.Deterministic(true)); w.err != nil {
			return
		}
		w.info, w.err = json.Marshal(c.impl, json.Deterministic(true))
	})
	return w.caps, w.info, w.err
}

// methodHeader returns the Mcp-Method header value for method, shared
// between requests (headers of outgoing requests are not modified).
func (w *modernWire) methodHeader(method string) []string {
	if v, ok := w.methods.Load(method); ok {
		return v.([]string)
	}
	v, _ := w.methods.LoadOrStore(method, []string{method})
	return v.([]string)
}

// metaKey is the `"_meta"` member name as it appears in JSON.
var metaKey = []byte(`"_meta"`)

// fastEnvelope is ClientSession.envelope for params that are a JSON object
// (or absent) without a _meta member and no extra members: the envelope is
// appended to the params as they are. It reports false when the general
// path must be taken. The envelope's members are in the order
// json.Deterministic gives them.
func (cs *ClientSession) fastEnvelope(m *modernClient, params jsontext.Value) (jsontext.Value, bool) {
	params = bytes.TrimSpace(params)
	if len(params) == 0 || string(params) == "null" {
		params = jsontext.Value("{}")
	}
	if params[0] != '{' || params[len(params)-1] != '}' || bytes.Contains(params, metaKey) {
		return nil, false
	}
	caps, info, err := m.wire.encoded(cs.client)
	if err != nil {
		return nil, false
	}
	m.mu.Lock()
	level := m.logLevel
	m.mu.Unlock()
	b := make([]byte, 0, len(params)+len(caps)+len(info)+192)
	b = append(b, params[:len(params)-1]...)
	if len(bytes.TrimSpace(params[1:len(params)-1])) > 0 {
		b = append(b, ',')
	}
	b = append(b, `"_meta":{"`+MetaClientCapabilities+`":`...)
	b = append(b, caps...)
	b = append(b, `,"`+MetaClientInfo+`":`...)
	b = append(b, info...)
	if level != "" {
		b = append(b, `,"`+MetaLogLevel+`":`...)
		b = appendJSONString(b, string(level))
	}
	b = append(b, `,"`+MetaProtocolVersion+`":`...)
	b = appendJSONString(b, m.version)
	b = append(b, "}}"...)
	return b, true
}

// fastHTTPHeaders is modernClient.httpHeaders reading the params with one
// scan instead of decoding them, and reusing the header values that do not
// change between requests.
func (m *modernClient) fastHTTPHeaders(method string, params jsontext.Value) (http.Header, bool) {
	var p modernParams
	if p.scan(params) != nil {
		return nil, false
	}
	var nameRaw jsontext.Value
	switch nameSource(method) {
	case "":
		return m.baseHeaders(method, 2), true
	case "name":
		nameRaw = p.name
	case "uri":
		nameRaw = p.uri
	default:
		nameRaw = p.taskID
	}
	name, ok, err := stringMember(nameRaw, "")
	if err != nil {
		return nil, false
	}
	h := m.baseHeaders(method, 4)
	if !ok {
		return h, true
	}
	h[headerMcpName] = []string{encodeHeaderValue(name)}
	if method != MethodToolsCall || !m.headers {
		return h, true
	}
	for _, ph := range m.paramHeaders(name) {
		v, ok := lookupPath(p.arguments, ph.path)
		if !ok {
			continue
		}
		if s, ok := headerArgument(v); ok {
			h[http.CanonicalHeaderKey(headerParamPrefix+ph.name)] = []string{s}
		}
	}
	return h, true
}

// baseHeaders returns a new header with the protocol version and
// Mcp-Method, room for n headers.
func (m *modernClient) baseHeaders(method string, n int) http.Header {
	h := make(http.Header, n)
	m.wire.vonce.Do(func() { m.wire.version = []string{m.version} })
	h[headerProtocolVersion] = m.wire.version
	h[headerMcpMethod] = m.wire.methodHeader(method)
	return h
}

// paramHeaders returns the x-mcp-header annotations of the listed tool
// name, nil when it was not listed.
func (m *modernClient) paramHeaders(name string) []paramHeader {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.tools[name]
	if t == nil {
		return nil
	}
	if e, ok := m.wire.toolHeaders[name]; ok && e.tool == t {
		return e.headers
	}
	hs := toolParamHeaders(t.InputSchema)
	if m.wire.toolHeaders == nil || len(m.wire.toolHeaders) >= len(m.tools)+maxToolHeaderCache {
		m.wire.toolHeaders = make(map[string]toolHeaders)
	}
	m.wire.toolHeaders[name] = toolHeaders{t, hs}
	return hs
}

// resultHeadNames are the members of a modern result that resultHead
// reads, quoted.
var resultHeadNames = [...]string{`"resultType"`, `"inputRequests"`, `"requestState"`, `"ttlMs"`, `"cacheScope"`}

// decodeResultHead fills head from the result raw, decoding only the
// members it has; its errors are those json.Unmarshal(raw, head) gives.
func decodeResultHead(raw jsontext.Value, head *resultHead) error {
	var vals [len(resultHeadNames)]jsontext.Value
	ok := scanObject(raw, resultHeadNames[:], vals[:])
	resultType, inputRequests, requestState, ttlMs, cacheScope := vals[0], vals[1], vals[2], vals[3], vals[4]
	if !ok || len(inputRequests) > 0 || len(requestState) > 0 {
		return json.Unmarshal(raw, head) // the general case, and its errors
	}
	switch {
	case string(resultType) == `"`+ResultTypeComplete+`"`:
		head.ResultType = ResultTypeComplete
	case len(resultType) > 0:
		s, ok := plainString(resultType)
		if !ok {
			return json.Unmarshal(raw, head)
		}
		head.ResultType = s
	}
	if len(cacheScope) > 0 {
		s, ok := plainString(cacheScope)
		if !ok {
			return json.Unmarshal(raw, head)
		}
		head.CacheScope = s
	}
	if len(ttlMs) > 0 {
		if ttlMs.Kind() != '0' {
			return json.Unmarshal(raw, head)
		}
		f, err := strconv.ParseFloat(string(ttlMs), 64)
		if err != nil {
			return json.Unmarshal(raw, head)
		}
		head.TTLMs = &f
	}
	return nil
}

// plainString returns the JSON string raw holds when it has no escapes.
func plainString(raw jsontext.Value) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || bytes.IndexByte(raw[1:len(raw)-1], '\\') >= 0 {
		return "", false
	}
	return string(raw[1 : len(raw)-1]), true
}

// scanObject walks the members of the JSON object raw once: the raw value
// of the member named names[i] (quoted, as it appears in JSON) is stored in
// vals[i], aliasing raw. It reports false when raw is not a valid JSON
// object, or has a member name with escapes (the general path decodes
// those).
func scanObject(raw jsontext.Value, names []string, vals []jsontext.Value) bool {
	ok, _ := scanObjectCount(raw, names, vals)
	return ok
}

// scanObjectCount is scanObject also counting the object's members.
func scanObjectCount(raw jsontext.Value, names []string, vals []jsontext.Value) (ok bool, n int) {
	sc := paramsScanners.Get().(*paramsScanner)
	sc.buf = *bytes.NewBuffer(raw)
	sc.d.Reset(&sc.buf)
	ok, n = scanMembers(&sc.d, raw, names, vals)
	sc.buf = bytes.Buffer{}
	sc.d.Reset(&sc.buf)
	paramsScanners.Put(sc)
	return ok, n
}

func scanMembers(d *jsontext.Decoder, raw jsontext.Value, names []string, vals []jsontext.Value) (bool, int) {
	if tok, err := d.ReadToken(); err != nil || tok.Kind() != '{' {
		return false, 0
	}
	n := 0
	for ; d.PeekKind() != '}'; n++ {
		name, err := d.ReadValue()
		if err != nil || bytes.IndexByte(name, '\\') >= 0 {
			return false, n
		}
		i := 0
		for i < len(names) && names[i] != string(name) {
			i++
		}
		if i == len(names) {
			if d.SkipValue() != nil {
				return false, n
			}
			continue
		}
		v, err := d.ReadValue()
		if err != nil {
			return false, n
		}
		end := int(d.InputOffset())
		vals[i] = raw[end-len(v) : end : end]
	}
	if _, err := d.ReadToken(); err != nil {
		return false, n
	}
	_, err := d.ReadToken()
	return err != nil, n // nothing after the object
}

// metaDecoder decodes the Meta of modern requests (server side) and
// results (client side) as the default decoding does, except that the
// values of the members every message repeats (the envelope's client
// capabilities and client information, the result's server information)
// are decoded once per distinct encoding and shared between the messages
// that carry them: a JSON object decoded into a map[string]any costs a map
// per object, and those maps were most of the cost of a modern request.
// Shared values must be treated as read-only, as the rest of a message's
// params are. At most maxEnvelopeCacheEntries values of at most
// maxEnvelopeCacheKey bytes are kept; a full cache is emptied.
type metaDecoder struct {
	once   sync.Once
	opts   json.Options
	shared []string // quoted names of the members whose values are shared

	mu    sync.Mutex
	vals  map[string]any  // by encoding
	whole map[string]Meta // objects of shared members only, by encoding
}

// options returns the json options that decode Meta through d, sharing
// the values of the members named in shared (plain names).
func (d *metaDecoder) options(shared ...string) json.Options {
	d.once.Do(func() {
		for _, s := range shared {
			d.shared = append(d.shared, strconv.Quote(s))
		}
		d.opts = json.WithUnmarshalers(json.UnmarshalFromFunc(d.decode))
	})
	return d.opts
}

// decode decodes one Meta; anything but a JSON object into a nil Meta
// takes the default path.
func (d *metaDecoder) decode(dec *jsontext.Decoder, m *Meta) error {
	if dec.PeekKind() != '{' || *m != nil {
		return errors.ErrUnsupported
	}
	raw, err := dec.ReadValue()
	if err != nil {
		return err
	}
	*m, err = d.object(raw)
	return err
}

// object decodes the JSON object raw into a Meta. An object whose members
// are all shared ones (the common envelope, the common result _meta) is
// kept whole, by its encoding, and later decodings of the same bytes get a
// copy of the map (its values shared).
func (d *metaDecoder) object(raw jsontext.Value) (Meta, error) {
	cacheable := len(raw) <= maxEnvelopeCacheKey
	if cacheable {
		d.mu.Lock()
		m, ok := d.whole[string(raw)]
		d.mu.Unlock()
		if ok {
			return maps.Clone(m), nil
		}
	}
	sc := paramsScanners.Get().(*paramsScanner)
	sc.buf = *bytes.NewBuffer(raw)
	sc.d.Reset(&sc.buf)
	m, allShared, err := d.members(&sc.d)
	sc.buf = bytes.Buffer{}
	sc.d.Reset(&sc.buf)
	paramsScanners.Put(sc)
	if err != nil {
		return nil, err
	}
	if cacheable && allShared {
		d.mu.Lock()
		if d.whole == nil || len(d.whole) >= maxEnvelopeCacheEntries {
			d.whole = make(map[string]Meta)
		}
		d.whole[string(raw)] = maps.Clone(m)
		d.mu.Unlock()
	}
	return m, nil
}

// members decodes the object dec is at; allShared reports that every
// member is a shared one.
func (d *metaDecoder) members(dec *jsontext.Decoder) (out Meta, allShared bool, err error) {
	if _, err := dec.ReadToken(); err != nil {
		return nil, false, err
	}
	out = make(Meta)
	allShared = true
	for dec.PeekKind() != '}' {
		raw, err := dec.ReadValue() // the name
		if err != nil {
			return nil, false, err
		}
		i := 0
		for i < len(d.shared) && d.shared[i] != string(raw) {
			i++
		}
		var name string
		if i < len(d.shared) {
			name = d.shared[i][1 : len(d.shared[i])-1]
		} else {
			allShared = false
			unq, err := jsontext.AppendUnquote(nil, raw)
			if err != nil {
				return nil, false, err
			}
			name = string(unq)
		}
		if _, dup := out[name]; dup {
			return nil, false, fmt.Errorf("duplicate name %s in _meta", raw)
		}
		var v any
		if i < len(d.shared) {
			val, err := dec.ReadValue()
			if err != nil {
				return nil, false, err
			}
			if v, err = d.value(val); err != nil {
				return nil, false, err
			}
		} else if v, err = decodeAny(dec); err != nil {
			return nil, false, err
		}
		out[name] = v
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, false, err
	}
	return out, allShared, nil
}

// value returns raw decoded as an any, shared with earlier messages that
// carried the same encoding.
func (d *metaDecoder) value(raw jsontext.Value) (any, error) {
	if len(raw) > maxEnvelopeCacheKey {
		return unmarshalAny(raw)
	}
	d.mu.Lock()
	v, ok := d.vals[string(raw)]
	d.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := unmarshalAny(raw)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	if d.vals == nil || len(d.vals) >= maxEnvelopeCacheEntries {
		d.vals = make(map[string]any)
	}
	d.vals[string(raw)] = v
	d.mu.Unlock()
	return v, nil
}

// unmarshalAny decodes raw as json.Unmarshal into an any does.
func unmarshalAny(raw jsontext.Value) (any, error) {
	var v any
	err := json.Unmarshal(raw, &v)
	return v, err
}

// decodeAny decodes the next value of dec as json.UnmarshalDecode into an
// any does.
func decodeAny(dec *jsontext.Decoder) (any, error) {
	var v any
	err := json.UnmarshalDecode(dec, &v)
	return v, err
}
