package mcp

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/mcpgate/mcpgate/jsonrpc"
)

// schema2026 is a copy of the official schema.json of revision 2026-07-28.
//
//go:embed testdata/schema-2026-07-28.json
var schema2026 []byte

const schema2026URL = "https://modelcontextprotocol.io/specification/2026-07-28/schema.json"

var schema2026Defs = sync.OnceValues(func() (map[string]*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema2026))
	if err != nil {
		return nil, err
	}
	defs := doc.(map[string]any)["$defs"].(map[string]any)
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(schema2026URL, doc); err != nil {
		return nil, err
	}
	out := make(map[string]*jsonschema.Schema, len(defs))
	for name := range defs {
		s, err := c.Compile(schema2026URL + "#/$defs/" + name)
		if err != nil {
			return nil, fmt.Errorf("compile %s: %w", name, err)
		}
		out[name] = s
	}
	return out, nil
})

// validate2026 reports a test error if data does not match the definition
// of the 2026-07-28 schema.
func validate2026(t *testing.T, definition string, data []byte) {
	t.Helper()
	defs, err := schema2026Defs()
	if err != nil {
		t.Fatal(err)
	}
	s, ok := defs[definition]
	if !ok {
		t.Fatalf("no definition %q in the 2026-07-28 schema", definition)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: invalid JSON %s", definition, data)
	}
	if err := s.Validate(inst); err != nil {
		t.Errorf("does not match %s (2026-07-28): %v\n%s", definition, err, data)
	}
}

// modernEnv is a Server behind a StreamableHTTPHandler; the caller is named
// by the X-Test-User header.
type modernEnv struct {
	srv *Server
	url string
}

func newModernEnv(t *testing.T, opts *ServerOptions) *modernEnv {
	t.Helper()
	srv := NewServer(&Implementation{Name: "modern-test", Version: "1.0"}, opts)
	h := NewStreamableHTTPHandler(func(*http.Request) *Server { return srv }, &StreamableHTTPOptions{
		SessionPrincipal: func(r *http.Request) string { return r.Header.Get("X-Test-User") },
	})
	ts := httptest.NewServer(h)
	t.Cleanup(func() { h.Close(); ts.Close() })
	return &modernEnv{srv: srv, url: ts.URL}
}

// stdMeta is the envelope of a modern request.
func stdMeta(caps string) map[string]any {
	return map[string]any{
		MetaProtocolVersion:    Version20260728,
		MetaClientInfo:         map[string]any{"name": "t", "version": "1"},
		MetaClientCapabilities: jsontext.Value(caps),
	}
}

// modernReq describes one POST.
type modernReq struct {
	method string
	params map[string]any // _meta is added unless noMeta
	noMeta bool
	header map[string]string // overrides; "" deletes
	caps   string
}

type modernResp struct {
	status int
	raw    []byte         // the final JSON-RPC response
	events [][]byte       // SSE events before it, if the response was a stream
	body   map[string]any // raw decoded
}

func (r *modernResp) result() map[string]any {
	m, _ := r.body["result"].(map[string]any)
	return m
}

func (r *modernResp) errCode() int64 {
	e, ok := r.body["error"].(map[string]any)
	if !ok {
		return 0
	}
	c, _ := e["code"].(float64)
	return int64(c)
}

var nextModernID int64

func (e *modernEnv) post(t *testing.T, rq modernReq) *modernResp {
	t.Helper()
	params := map[string]any{}
	for k, v := range rq.params {
		params[k] = v
	}
	caps := rq.caps
	if caps == "" {
		caps = "{}"
	}
	if !rq.noMeta {
		params["_meta"] = stdMeta(caps)
	}
	nextModernID++
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": nextModernID, "method": rq.method, "params": params})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, e.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", Version20260728)
	req.Header.Set("Mcp-Method", rq.method)
	if n, ok := rq.params["name"].(string); ok {
		req.Header.Set("Mcp-Name", n)
	} else if u, ok := rq.params["uri"].(string); ok {
		req.Header.Set("Mcp-Name", u)
	}
	for k, v := range rq.header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := &modernResp{status: resp.StatusCode}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				out.events = append(out.events, []byte(d))
			}
		}
		if n := len(out.events); n > 0 {
			out.raw = out.events[n-1]
			out.events = out.events[:n-1]
		}
	} else {
		out.raw, _ = io.ReadAll(resp.Body)
	}
	if len(out.raw) > 0 {
		if err := json.Unmarshal(out.raw, &out.body); err != nil {
			t.Fatalf("response %q: %v", out.raw, err)
		}
	}
	return out
}

// addInputTool adds "greet", which asks for the user's name and, in a
// second round, for a color.
func addInputTool(s *Server) {
	s.AddTool(&Tool{Name: "greet", InputSchema: jsontext.Value(`{"type":"object","properties":{"polite":{"type":"boolean"}}}`)},
		func(ctx context.Context, req *CallToolRequest) (*CallToolResult, error) {
			name, err := req.Session.ElicitInput(ctx, "name", &ElicitParams{Message: "Name?", RequestedSchema: &ElicitationSchema{
				Properties: map[string]PrimitiveSchemaDefinition{"name": {Type: "string"}}, Required: []string{"name"}}})
			if err != nil {
				return nil, err
			}
			color, err := req.Session.ElicitInput(ctx, "color", &ElicitParams{Message: "Color?", RequestedSchema: &ElicitationSchema{
				Properties: map[string]PrimitiveSchemaDefinition{"color": {Type: "string"}}}})
			if err != nil {
				return nil, err
			}
			return &CallToolResult{Content: []Content{&TextContent{Text: fmt.Sprintf("%v likes %v", name.Content["name"], color.Content["color"])}}}, nil
		})
}

func TestModernEnvelopeErrors(t *testing.T) {
	e := newModernEnv(t, nil)
	addInputTool(e.srv)
	tests := []struct {
		name       string
		rq         modernReq
		wantStatus int
		wantCode   int64
		def        string // schema definition of the error response, if any
	}{
		{"missing _meta", modernReq{method: MethodServerDiscover, noMeta: true}, 400, jsonrpc.CodeInvalidParams, "JSONRPCErrorResponse"},
		{"missing version", modernReq{method: MethodToolsList, noMeta: true, params: map[string]any{"_meta": map[string]any{MetaClientCapabilities: map[string]any{}}}}, 400, jsonrpc.CodeInvalidParams, ""},
		{"missing capabilities", modernReq{method: MethodToolsList, noMeta: true, params: map[string]any{"_meta": map[string]any{MetaProtocolVersion: Version20260728}}}, 400, jsonrpc.CodeInvalidParams, ""},
		{"missing version header", modernReq{method: MethodToolsList, header: map[string]string{"MCP-Protocol-Version": ""}}, 400, CodeHeaderMismatch, "HeaderMismatchError"},
		{"version header mismatch", modernReq{method: MethodToolsList, noMeta: true, params: map[string]any{"_meta": map[string]any{MetaProtocolVersion: "2099-01-01", MetaClientCapabilities: map[string]any{}}}}, 400, CodeHeaderMismatch, "HeaderMismatchError"},
		{"unsupported version", modernReq{method: MethodToolsList, noMeta: true, params: map[string]any{"_meta": map[string]any{MetaProtocolVersion: "2099-01-01", MetaClientCapabilities: map[string]any{}}}, header: map[string]string{"MCP-Protocol-Version": "2099-01-01"}}, 400, CodeUnsupportedProtocolVersion, "UnsupportedProtocolVersionError"},
		{"legacy version in envelope", modernReq{method: MethodToolsList, noMeta: true, params: map[string]any{"_meta": map[string]any{MetaProtocolVersion: Version20251125, MetaClientCapabilities: map[string]any{}}}, header: map[string]string{"MCP-Protocol-Version": Version20251125}}, 400, CodeUnsupportedProtocolVersion, "UnsupportedProtocolVersionError"},
		{"missing Mcp-Method", modernReq{method: MethodToolsList, header: map[string]string{"Mcp-Method": ""}}, 400, CodeHeaderMismatch, "HeaderMismatchError"},
		{"Mcp-Method mismatch", modernReq{method: MethodToolsList, header: map[string]string{"Mcp-Method": "prompts/list"}}, 400, CodeHeaderMismatch, ""},
		{"Mcp-Method case", modernReq{method: MethodToolsList, header: map[string]string{"Mcp-Method": "TOOLS/LIST"}}, 400, CodeHeaderMismatch, ""},
		{"missing Mcp-Name", modernReq{method: MethodToolsCall, params: map[string]any{"name": "greet"}, header: map[string]string{"Mcp-Name": ""}}, 400, CodeHeaderMismatch, ""},
		{"Mcp-Name mismatch", modernReq{method: MethodToolsCall, params: map[string]any{"name": "greet"}, header: map[string]string{"Mcp-Name": "other"}}, 400, CodeHeaderMismatch, ""},
		{"initialize removed", modernReq{method: MethodInitialize}, 404, jsonrpc.CodeMethodNotFound, "JSONRPCErrorResponse"},
		{"ping removed", modernReq{method: MethodPing}, 404, jsonrpc.CodeMethodNotFound, ""},
		{"logging/setLevel removed", modernReq{method: MethodLoggingSetLevel, params: map[string]any{"level": "info"}}, 404, jsonrpc.CodeMethodNotFound, ""},
		{"resources/subscribe removed", modernReq{method: MethodResourcesSubscribe, params: map[string]any{"uri": "x:y"}}, 404, jsonrpc.CodeMethodNotFound, ""},
		{"unknown method", modernReq{method: "unknown/method"}, 404, jsonrpc.CodeMethodNotFound, ""},
		{"capability not declared", modernReq{method: MethodToolsCall, params: map[string]any{"name": "greet"}}, 400, CodeMissingRequiredClientCapability, "MissingRequiredClientCapabilityError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.post(t, tt.rq)
			if r.status != tt.wantStatus || r.errCode() != tt.wantCode {
				t.Fatalf("got HTTP %d code %d, want HTTP %d code %d: %s", r.status, r.errCode(), tt.wantStatus, tt.wantCode, r.raw)
			}
			if _, ok := r.body["id"]; !ok {
				t.Errorf("error response without the request id: %s", r.raw)
			}
			if tt.def != "" {
				validate2026(t, tt.def, r.raw)
			}
		})
	}
	t.Run("unsupported version data", func(t *testing.T) {
		r := e.post(t, tests[5].rq)
		var got struct {
			Error struct {
				Data struct {
					Supported []string `json:"supported"`
					Requested string   `json:"requested"`
				} `json:"data"`
			} `json:"error"`
		}
		json.Unmarshal(r.raw, &got)
		if got.Error.Data.Requested != "2099-01-01" || len(got.Error.Data.Supported) == 0 || got.Error.Data.Supported[0] != Version20260728 {
			t.Errorf("data = %+v", got.Error.Data)
		}
	})
}

func TestModernDiscoverAndLists(t *testing.T) {
	e := newModernEnv(t, &ServerOptions{
		Instructions: "Use greet.",
		CacheHints: func(method string) CacheHints {
			if method == MethodToolsList {
				return CacheHints{TTL: 90 * time.Second, Scope: CacheScopePublic}
			}
			return CacheHints{}
		},
	})
	addInputTool(e.srv)
	e.srv.AddTool(&Tool{Name: "alpha"}, func(context.Context, *CallToolRequest) (*CallToolResult, error) { return &CallToolResult{}, nil })
	e.srv.AddPrompt(&Prompt{Name: "p"}, func(context.Context, *GetPromptRequest) (*GetPromptResult, error) { return &GetPromptResult{}, nil })

	r := e.post(t, modernReq{method: MethodServerDiscover})
	if r.status != 200 {
		t.Fatalf("discover: HTTP %d %s", r.status, r.raw)
	}
	validate2026(t, "DiscoverResultResponse", r.raw)
	res := r.result()
	if res["resultType"] != "complete" || res["instructions"] != "Use greet." || res["cacheScope"] != "private" || res["ttlMs"] != 0.0 {
		t.Errorf("discover result %s", r.raw)
	}
	if info := res["_meta"].(map[string]any)[MetaServerInfo].(map[string]any); info["name"] != "modern-test" {
		t.Errorf("serverInfo %v", info)
	}
	if v := res["supportedVersions"].([]any); v[0] != Version20260728 {
		t.Errorf("supportedVersions %v", v)
	}

	r = e.post(t, modernReq{method: MethodToolsList})
	validate2026(t, "ListToolsResultResponse", r.raw)
	res = r.result()
	if res["ttlMs"] != 90000.0 || res["cacheScope"] != "public" {
		t.Errorf("tools/list hints %s", r.raw)
	}
	tools := res["tools"].([]any)
	if len(tools) != 2 || tools[0].(map[string]any)["name"] != "alpha" || tools[1].(map[string]any)["name"] != "greet" {
		t.Errorf("tools/list is not in name order: %s", r.raw)
	}
	r = e.post(t, modernReq{method: MethodPromptsList})
	validate2026(t, "ListPromptsResultResponse", r.raw)
	r = e.post(t, modernReq{method: MethodResourcesRead, params: map[string]any{"uri": "file:///nope"}})
	if r.errCode() != jsonrpc.CodeInvalidParams {
		t.Errorf("unknown resource: %s, want -32602 in 2026-07-28", r.raw)
	}
	// A modern request leaves no session behind.
	if n := len(e.srv.Sessions()); n != 0 {
		t.Errorf("%d sessions after modern requests", n)
	}
}

// mrtrRound is the decoded result of one round.
type mrtrRound struct {
	ResultType    string                    `json:"resultType"`
	InputRequests map[string]map[string]any `json:"inputRequests"`
	RequestState  string                    `json:"requestState"`
	Content       []map[string]any          `json:"content"`
}

func decodeRound(t *testing.T, r *modernResp) *mrtrRound {
	t.Helper()
	if r.status != 200 || r.body["error"] != nil {
		t.Fatalf("HTTP %d %s", r.status, r.raw)
	}
	validate2026(t, "CallToolResultResponse", r.raw)
	var out struct {
		Result mrtrRound `json:"result"`
	}
	if err := json.Unmarshal(r.raw, &out); err != nil {
		t.Fatal(err)
	}
	return &out.Result
}

func accept(fields map[string]any) map[string]any {
	return map[string]any{"action": "accept", "content": fields}
}

func TestModernMRTR(t *testing.T) {
	e := newModernEnv(t, nil)
	addInputTool(e.srv)
	const caps = `{"elicitation":{}}`
	call := func(user string, extra map[string]any) *modernResp {
		p := map[string]any{"name": "greet", "arguments": map[string]any{"polite": true}}
		for k, v := range extra {
			p[k] = v
		}
		return e.post(t, modernReq{method: MethodToolsCall, params: p, caps: caps, header: map[string]string{"X-Test-User": user}})
	}
	r1 := decodeRound(t, call("alice", nil))
	if r1.ResultType != ResultTypeInputRequired || r1.InputRequests["name"]["method"] != MethodElicitationCreate || r1.RequestState == "" {
		t.Fatalf("round 1: %+v", r1)
	}
	r2 := decodeRound(t, call("alice", map[string]any{"inputResponses": map[string]any{"name": accept(map[string]any{"name": "Ann"})}, "requestState": r1.RequestState}))
	if r2.ResultType != ResultTypeInputRequired || r2.InputRequests["color"] == nil || r2.InputRequests["name"] != nil || r2.RequestState == r1.RequestState {
		t.Fatalf("round 2: %+v", r2)
	}
	r3 := decodeRound(t, call("alice", map[string]any{"inputResponses": map[string]any{"color": accept(map[string]any{"color": "blue"})}, "requestState": r2.RequestState}))
	if r3.ResultType != ResultTypeComplete || len(r3.Content) != 1 || r3.Content[0]["text"] != "Ann likes blue" {
		t.Fatalf("round 3: %+v", r3)
	}

	// The state of round 2 carries the answer of round 1: tampering with
	// it, replaying it as another caller or on another request, or after it
	// expired, fails with -32602.
	color := map[string]any{"color": accept(map[string]any{"color": "red"})}
	tampered := []byte(r2.RequestState)
	tampered[5] ^= 1
	payload, sig, _ := strings.Cut(r2.RequestState, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(payload)
	forged := base64.RawURLEncoding.EncodeToString(bytes.Replace(raw, []byte("Ann"), []byte("Eve"), 1)) + "." + sig
	bad := []struct {
		name string
		resp *modernResp
	}{
		{"tampered payload", call("alice", map[string]any{"inputResponses": color, "requestState": string(tampered)})},
		{"forged answer", call("alice", map[string]any{"inputResponses": color, "requestState": forged})},
		{"suffix", call("alice", map[string]any{"inputResponses": color, "requestState": r2.RequestState + "-TAMPERED"})},
		{"not a state", call("alice", map[string]any{"inputResponses": color, "requestState": "garbage"})},
		{"other caller", call("mallory", map[string]any{"inputResponses": color, "requestState": r2.RequestState})},
		{"other arguments", e.post(t, modernReq{method: MethodToolsCall, caps: caps, header: map[string]string{"X-Test-User": "alice"},
			params: map[string]any{"name": "greet", "arguments": map[string]any{"polite": false}, "inputResponses": color, "requestState": r2.RequestState}})},
		{"inputResponses null", call("alice", map[string]any{"inputResponses": nil})},
		{"answer not an object", call("alice", map[string]any{"inputResponses": map[string]any{"name": 12345}})},
		{"answer with unknown action", call("alice", map[string]any{"inputResponses": map[string]any{"name": map[string]any{"action": "maybe"}}})},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			if b.resp.errCode() != jsonrpc.CodeInvalidParams {
				t.Errorf("got HTTP %d %s, want a -32602 error", b.resp.status, b.resp.raw)
			}
		})
	}

	t.Run("expired", func(t *testing.T) {
		now := time.Now()
		var mu sync.Mutex
		e2 := newModernEnv(t, &ServerOptions{RequestStateTTL: time.Minute, now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
		addInputTool(e2.srv)
		p := map[string]any{"name": "greet", "arguments": map[string]any{}}
		r := decodeRound(t, e2.post(t, modernReq{method: MethodToolsCall, params: p, caps: caps}))
		mu.Lock()
		now = now.Add(2 * time.Minute)
		mu.Unlock()
		p["requestState"] = r.RequestState
		p["inputResponses"] = map[string]any{"name": accept(map[string]any{"name": "A"})}
		if got := e2.post(t, modernReq{method: MethodToolsCall, params: p, caps: caps}); got.errCode() != jsonrpc.CodeInvalidParams {
			t.Errorf("expired state: %s", got.raw)
		}
	})
	t.Run("missing answer asks again", func(t *testing.T) {
		r := decodeRound(t, call("alice", map[string]any{"inputResponses": map[string]any{"wrong": accept(nil)}}))
		if r.ResultType != ResultTypeInputRequired || r.InputRequests["name"] == nil {
			t.Errorf("%+v", r)
		}
	})
}

// TestOneHandlerBothGenerations calls the same tool from a legacy session
// (the input request becomes a server-to-client elicitation) and as modern
// requests (MRTR).
func TestOneHandlerBothGenerations(t *testing.T) {
	e := newModernEnv(t, nil)
	addInputTool(e.srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	answers := map[string]string{"Name?": "Leg", "Color?": "green"}
	c := NewClient(&Implementation{Name: "legacy", Version: "1"}, &ClientOptions{
		ElicitationHandler: func(_ context.Context, req *ElicitRequest) (*ElicitResult, error) {
			field := "name"
			if req.Params.Message == "Color?" {
				field = "color"
			}
			return &ElicitResult{Action: "accept", Content: map[string]any{field: answers[req.Params.Message]}}, nil
		},
	})
	cs, err := c.Connect(ctx, &StreamableClientTransport{Endpoint: e.url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if v := cs.ProtocolVersion(); v != LatestProtocolVersion {
		t.Fatalf("legacy client negotiated %q", v)
	}
	res, err := cs.CallTool(ctx, &CallToolParams{Name: "greet", Arguments: jsontext.Value(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	legacy := res.Content[0].(*TextContent).Text

	p := map[string]any{"name": "greet", "arguments": map[string]any{}}
	var state string
	got := map[string]any{}
	for round := 0; round < 4; round++ {
		if state != "" {
			p["requestState"] = state
		}
		r := decodeRound(t, e.post(t, modernReq{method: MethodToolsCall, params: p, caps: `{"elicitation":{}}`}))
		if r.ResultType == ResultTypeComplete {
			if text := r.Content[0]["text"]; text != legacy || legacy != "Leg likes green" {
				t.Errorf("modern %q, legacy %q", text, legacy)
			}
			return
		}
		for k, req := range r.InputRequests {
			msg := req["params"].(map[string]any)["message"].(string)
			got[k] = accept(map[string]any{k: answers[msg]})
		}
		p["inputResponses"] = got
		got = map[string]any{}
		state = r.RequestState
	}
	t.Fatal("the modern call did not complete in 4 rounds")
}

func TestModernParamHeaders(t *testing.T) {
	e := newModernEnv(t, nil)
	e.srv.AddTool(&Tool{Name: "sql", InputSchema: jsontext.Value(`{"type":"object","properties":{
		"region":{"type":"string","x-mcp-header":"Region"},
		"limit":{"type":"integer","x-mcp-header":"Limit"},
		"opts":{"type":"object","properties":{"dry":{"type":"boolean","x-mcp-header":"Dry"}}}}}`)},
		func(context.Context, *CallToolRequest) (*CallToolResult, error) {
			return &CallToolResult{Content: []Content{&TextContent{Text: "ok"}}}, nil
		})
	b64 := func(s string) string { return "=?base64?" + base64.StdEncoding.EncodeToString([]byte(s)) + "?=" }
	tests := []struct {
		name   string
		args   map[string]any
		header map[string]string
		ok     bool
	}{
		{"plain", map[string]any{"region": "us-west1"}, map[string]string{"Mcp-Param-Region": "us-west1"}, true},
		{"whitespace trimmed", map[string]any{"region": "us-west1"}, map[string]string{"Mcp-Param-Region": "  us-west1 "}, true},
		{"base64", map[string]any{"region": "Hello, 世界"}, map[string]string{"Mcp-Param-Region": b64("Hello, 世界")}, true},
		{"base64 padding missing", map[string]any{"region": "Hello"}, map[string]string{"Mcp-Param-Region": "=?base64?SGVsbG8?="}, false},
		{"base64 bad characters", map[string]any{"region": "Hello"}, map[string]string{"Mcp-Param-Region": "=?base64?SGVs!!!bG8=?="}, false},
		{"literal without suffix", map[string]any{"region": "=?base64?SGVsbG8="}, map[string]string{"Mcp-Param-Region": "=?base64?SGVsbG8="}, true},
		{"mismatch", map[string]any{"region": "eu"}, map[string]string{"Mcp-Param-Region": "us"}, false},
		{"header missing", map[string]any{"region": "eu"}, nil, false},
		{"argument absent, no header", map[string]any{}, nil, true},
		{"argument null, no header", map[string]any{"region": nil}, nil, true},
		{"integer numerically", map[string]any{"limit": 42}, map[string]string{"Mcp-Param-Limit": "42.0"}, true},
		{"integer mismatch", map[string]any{"limit": 42}, map[string]string{"Mcp-Param-Limit": "43"}, false},
		{"nested boolean", map[string]any{"opts": map[string]any{"dry": true}}, map[string]string{"Mcp-Param-Dry": "true"}, true},
		{"nested boolean missing", map[string]any{"opts": map[string]any{"dry": false}}, nil, false},
		{"Mcp-Name base64", map[string]any{}, map[string]string{"Mcp-Name": b64("sql")}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.post(t, modernReq{method: MethodToolsCall, params: map[string]any{"name": "sql", "arguments": tt.args}, header: tt.header})
			if tt.ok && (r.status != 200 || r.body["error"] != nil) {
				t.Errorf("refused: HTTP %d %s", r.status, r.raw)
			}
			if !tt.ok && (r.status != 400 || r.errCode() != CodeHeaderMismatch) {
				t.Errorf("accepted or wrong error: HTTP %d %s", r.status, r.raw)
			}
		})
	}
}

func TestModernLogLevelAndProgress(t *testing.T) {
	e := newModernEnv(t, nil)
	e.srv.AddTool(&Tool{Name: "work"}, func(ctx context.Context, req *CallToolRequest) (*CallToolResult, error) {
		req.Session.Log(ctx, &LoggingMessageParams{Level: LoggingLevelInfo, Data: jsontext.Value(`"hello"`)})
		req.Session.Log(ctx, &LoggingMessageParams{Level: LoggingLevelDebug, Data: jsontext.Value(`"noise"`)})
		req.Progress(ctx, 1, 2, "half")
		return &CallToolResult{Content: []Content{&TextContent{Text: "done"}}}, nil
	})
	r := e.post(t, modernReq{method: MethodToolsCall, params: map[string]any{"name": "work", "arguments": map[string]any{}}})
	if len(r.events) != 0 {
		t.Errorf("no log level and no progress token, yet notifications: %q", r.events)
	}
	meta := stdMeta("{}")
	meta[MetaLogLevel] = "info"
	meta["progressToken"] = "tok"
	r = e.post(t, modernReq{method: MethodToolsCall, noMeta: true, params: map[string]any{"name": "work", "arguments": map[string]any{}, "_meta": meta}})
	if len(r.events) != 2 {
		t.Fatalf("events %q, want an info log and a progress notification", r.events)
	}
	validate2026(t, "LoggingMessageNotification", r.events[0])
	validate2026(t, "ProgressNotification", r.events[1])
	validate2026(t, "CallToolResultResponse", r.raw)
}

func TestModernListen(t *testing.T) {
	e := newModernEnv(t, nil)
	e.srv.AddTool(&Tool{Name: "a"}, func(context.Context, *CallToolRequest) (*CallToolResult, error) { return &CallToolResult{}, nil })
	e.srv.AddPrompt(&Prompt{Name: "p"}, func(context.Context, *GetPromptRequest) (*GetPromptResult, error) { return &GetPromptResult{}, nil })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": "sub-1", "method": MethodSubscriptionsListen,
		"params": map[string]any{"_meta": stdMeta("{}"), "notifications": map[string]any{"toolsListChanged": true, "resourceSubscriptions": []string{"file:///x"}}}})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", Version20260728)
	req.Header.Set("Mcp-Method", MethodSubscriptionsListen)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	next := func() []byte {
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				return []byte(d)
			}
		}
		t.Fatalf("stream ended: %v", sc.Err())
		return nil
	}
	ack := next()
	validate2026(t, "SubscriptionsAcknowledgedNotification", ack)
	// The server does not offer resource subscriptions: the acknowledged
	// filter leaves them out.
	if !bytes.Contains(ack, []byte(`"io.modelcontextprotocol/subscriptionId":"sub-1"`)) || bytes.Contains(ack, []byte("resourceSubscriptions")) {
		t.Errorf("ack %s", ack)
	}
	// A prompt change is not asked for; a tool change is.
	e.srv.AddPrompt(&Prompt{Name: "q"}, func(context.Context, *GetPromptRequest) (*GetPromptResult, error) { return &GetPromptResult{}, nil })
	e.srv.AddTool(&Tool{Name: "b"}, func(context.Context, *CallToolRequest) (*CallToolResult, error) { return &CallToolResult{}, nil })
	n := next()
	validate2026(t, "ToolListChangedNotification", n)
	if !bytes.Contains(n, []byte(NotificationToolsListChanged)) || !bytes.Contains(n, []byte(`"sub-1"`)) {
		t.Errorf("notification %s", n)
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		e.srv.listeners.mu.Lock()
		left := len(e.srv.listeners.all)
		e.srv.listeners.mu.Unlock()
		if left == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Error("the listener stayed registered after the client went away")
}

// TestModernOverStdioLikeTransport sends modern requests on a connection
// whose session was never initialized (the stdio probe), then initializes a
// legacy session on the same connection.
func TestModernOverStdioLikeTransport(t *testing.T) {
	srv := NewServer(&Implementation{Name: "s", Version: "1"}, nil)
	srv.AddTool(&Tool{Name: "echo"}, func(context.Context, *CallToolRequest) (*CallToolResult, error) {
		return &CallToolResult{Content: []Content{&TextContent{Text: "hi"}}}, nil
	})
	ct, st := NewInMemoryTransports()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ss, err := srv.Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	conn, err := ct.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip := func(id int64, method string, params any) *jsonrpc.Response {
		raw, _ := json.Marshal(params)
		if err := conn.Write(ctx, &jsonrpc.Request{ID: jsonrpc.Int64ID(id), Method: method, Params: raw}); err != nil {
			t.Fatal(err)
		}
		msg, err := conn.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return msg.(*jsonrpc.Response)
	}
	r := roundTrip(1, MethodServerDiscover, map[string]any{"_meta": stdMeta("{}")})
	if r.Error != nil || !bytes.Contains(r.Result, []byte(`"supportedVersions"`)) {
		t.Fatalf("discover: %+v %s", r.Error, r.Result)
	}
	r = roundTrip(2, MethodToolsCall, map[string]any{"_meta": stdMeta("{}"), "name": "echo"})
	if r.Error != nil || !bytes.Contains(r.Result, []byte(`"resultType":"complete"`)) {
		t.Fatalf("tools/call: %+v %s", r.Error, r.Result)
	}
	r = roundTrip(3, MethodServerDiscover, map[string]any{})
	if r.Error == nil || r.Error.Code != jsonrpc.CodeInvalidParams {
		t.Fatalf("discover without _meta: %+v", r)
	}
	r = roundTrip(4, MethodInitialize, &InitializeParams{ProtocolVersion: Version20251125, ClientInfo: Implementation{Name: "c", Version: "1"}})
	if r.Error != nil || !bytes.Contains(r.Result, []byte(Version20251125)) {
		t.Fatalf("initialize after the probe: %+v %s", r.Error, r.Result)
	}
}

// taskEnv is a server with task-capable tools for the Tasks extension.
func newTaskEnv(t *testing.T) *modernEnv {
	e := newModernEnv(t, nil)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	e.srv.AddTool(&Tool{Name: "confirm", Execution: &ToolExecution{TaskSupport: TaskSupportOptional}},
		func(ctx context.Context, req *CallToolRequest) (*CallToolResult, error) {
			if err := req.Session.StartTask(ctx); err != nil {
				return nil, err
			}
			r, err := req.Session.ElicitInput(ctx, "ok", &ElicitParams{Message: "Sure?", RequestedSchema: &ElicitationSchema{
				Properties: map[string]PrimitiveSchemaDefinition{"ok": {Type: "boolean"}}}})
			if err != nil {
				return nil, err
			}
			return &CallToolResult{Content: []Content{&TextContent{Text: "answer " + string(r.Action)}}}, nil
		})
	e.srv.AddTool(&Tool{Name: "wait", Execution: &ToolExecution{TaskSupport: TaskSupportRequired}},
		func(ctx context.Context, req *CallToolRequest) (*CallToolResult, error) {
			if err := req.Session.StartTask(ctx); err != nil {
				return nil, err
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-release:
				return &CallToolResult{Content: []Content{&TextContent{Text: "released"}}}, nil
			}
		})
	return e
}

const taskCaps = `{"elicitation":{},"extensions":{"io.modelcontextprotocol/tasks":{}}}`

func (e *modernEnv) taskCall(t *testing.T, user, method string, params map[string]any) *modernResp {
	t.Helper()
	h := map[string]string{"X-Test-User": user}
	if id, ok := params["taskId"].(string); ok {
		h["Mcp-Name"] = id
	}
	return e.post(t, modernReq{method: method, params: params, caps: taskCaps, header: h})
}

// pollTask polls tasks/get until the task leaves "working".
func (e *modernEnv) pollTask(t *testing.T, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := e.taskCall(t, "alice", MethodTasksGet, map[string]any{"taskId": id})
		res := r.result()
		if res == nil {
			t.Fatalf("tasks/get: %s", r.raw)
		}
		if res["status"] != "working" || time.Now().After(deadline) {
			return res
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestModernTasksExtension(t *testing.T) {
	e := newTaskEnv(t)
	r := e.post(t, modernReq{method: MethodServerDiscover})
	if !bytes.Contains(r.raw, []byte(`"extensions":{"io.modelcontextprotocol/tasks":{}}`)) || bytes.Contains(r.raw, []byte(`"tasks":{"list"`)) {
		t.Errorf("discover does not offer the extension (only): %s", r.raw)
	}

	r = e.taskCall(t, "alice", MethodToolsCall, map[string]any{"name": "confirm", "arguments": map[string]any{}})
	created := r.result()
	id, _ := created["taskId"].(string)
	if created["resultType"] != ResultTypeTask || id == "" || created["status"] != "working" || created["ttlMs"] == nil {
		t.Fatalf("CreateTaskResult %s", r.raw)
	}
	got := e.pollTask(t, id)
	reqs, _ := got["inputRequests"].(map[string]any)
	if got["status"] != "input_required" || reqs["ok"] == nil || got["resultType"] != "complete" {
		t.Fatalf("tasks/get %v", got)
	}
	// Another caller cannot see, answer or cancel the task.
	for _, m := range []string{MethodTasksGet, MethodTasksUpdate, MethodTasksCancel} {
		if r := e.taskCall(t, "mallory", m, map[string]any{"taskId": id, "inputResponses": map[string]any{}}); r.errCode() != jsonrpc.CodeInvalidParams {
			t.Errorf("%s by another caller: %s", m, r.raw)
		}
	}
	r = e.taskCall(t, "alice", MethodTasksUpdate, map[string]any{"taskId": id, "inputResponses": map[string]any{"ok": accept(map[string]any{"ok": true}), "extra": 1}})
	if res := r.result(); res == nil || res["resultType"] != "complete" || res["status"] != nil {
		t.Fatalf("tasks/update ack %s", r.raw)
	}
	got = e.pollTask(t, id)
	if got["status"] != "completed" || !strings.Contains(fmt.Sprint(got["result"]), "answer accept") {
		t.Fatalf("after the answer: %v", got)
	}

	// Cancellation, and idempotent cancellation of a terminal task.
	r = e.taskCall(t, "alice", MethodToolsCall, map[string]any{"name": "wait", "arguments": map[string]any{}})
	wid, _ := r.result()["taskId"].(string)
	for range 2 {
		if r := e.taskCall(t, "alice", MethodTasksCancel, map[string]any{"taskId": wid}); r.result()["resultType"] != "complete" {
			t.Fatalf("tasks/cancel %s", r.raw)
		}
	}
	if got := e.pollTask(t, wid); got["status"] != "cancelled" {
		t.Errorf("after cancel: %v", got)
	}

	// Without the extension: the task methods and the task-only tool are
	// refused with -32021; the optional one runs synchronously... until
	// it asks for input, which becomes a multi round-trip request.
	noExt := func(method string, params map[string]any) *modernResp {
		return e.post(t, modernReq{method: method, params: params, caps: `{"elicitation":{}}`, header: map[string]string{"Mcp-Name": fmt.Sprint(params["taskId"])}})
	}
	if r := noExt(MethodTasksGet, map[string]any{"taskId": id}); r.errCode() != CodeMissingRequiredClientCapability || r.status != 400 {
		t.Errorf("tasks/get without the extension: %s", r.raw)
	}
	r = e.post(t, modernReq{method: MethodToolsCall, params: map[string]any{"name": "wait", "arguments": map[string]any{}}})
	if r.errCode() != CodeMissingRequiredClientCapability || !bytes.Contains(r.raw, []byte(ExtensionTasks)) {
		t.Errorf("task-only tool without the extension: %s", r.raw)
	}
	r = e.post(t, modernReq{method: MethodToolsCall, params: map[string]any{"name": "confirm", "arguments": map[string]any{}}, caps: `{"elicitation":{}}`})
	if res := r.result(); res["resultType"] != ResultTypeInputRequired {
		t.Errorf("optional task tool without the extension: %s", r.raw)
	}
	if r := e.taskCall(t, "alice", MethodTasksGet, map[string]any{"taskId": "nope"}); r.errCode() != jsonrpc.CodeInvalidParams {
		t.Errorf("unknown task: %s", r.raw)
	}
}

// BenchmarkModernHandlerToolCall is BenchmarkStreamableHandlerToolCall for
// a modern (2026-07-28) stateless tools/call: envelope and header checks,
// a throwaway session, the amended result.
func BenchmarkModernHandlerToolCall(b *testing.B) {
	srv := NewServer(&Implementation{Name: "bench", Version: "1"}, nil)
	srv.AddTool(&Tool{Name: "echo", InputSchema: jsontext.Value(`{"type":"object"}`)}, func(ctx context.Context, req *CallToolRequest) (*CallToolResult, error) {
		return &CallToolResult{Content: []Content{&TextContent{Text: "hi"}}}, nil
	})
	h := NewStreamableHTTPHandler(func(*http.Request) *Server { return srv }, &StreamableHTTPOptions{DisableDNSRebindingProtection: true})
	defer h.Close()
	call := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"b","version":"1"}}}}`
	req := httptest.NewRequest("POST", "/mcp", nil)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", shAccept)
	req.Header.Set("MCP-Protocol-Version", Version20260728)
	req.Header.Set("Mcp-Method", MethodToolsCall)
	req.Header.Set("Mcp-Name", "echo")
	body := strings.NewReader(call)
	rw := &benchResponseWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		body.Reset(call)
		req.Body = io.NopCloser(body)
		req.ContentLength = int64(len(call))
		rw.reset()
		h.ServeHTTP(rw, req)
		if rw.status != 200 || rw.n == 0 {
			b.Fatalf("status %d, %d bytes", rw.status, rw.n)
		}
	}
}

// FuzzModernInput feeds outside input to the parsers of modern requests:
// the envelope, header values, x-mcp-header annotations and requestState.
// None may panic; a state the server did not seal must never verify.
func FuzzModernInput(f *testing.F) {
	f.Add([]byte(`{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}`), "=?base64?SGVsbG8=?=", "eyJ2IjoxfQ.sig")
	f.Add([]byte(`{"_meta":null,"inputResponses":{"a":1}}`), "plain value", "")
	f.Add([]byte(`{"type":"object","properties":{"a":{"x-mcp-header":"A","properties":{"b":{"x-mcp-header":"B"}}}}}`), "=?base64??=", "a.b.c")
	srv := NewServer(&Implementation{Name: "f", Version: "1"}, nil)
	srv.envelope.meta.options(envelopeMembers...)
	f.Fuzz(func(t *testing.T, params []byte, header, state string) {
		ParseRequestMeta(params)
		srv.envelope.parse(params)
		var mp modernParams
		if mp.scan(params) == nil {
			var p CallToolParams
			mp.callToolParams(&p, &srv.envelope.meta)
		}
		var head resultHead
		decodeResultHead(params, &head)
		hasModernEnvelope(params)
		decodeHeaderValue(header)
		hs := toolParamHeaders(params)
		h := http.Header{}
		h.Set("Mcp-Param-A", header)
		checkParamHeaders(h, hs, params)
		objectMembers(params)
		req := &jsonrpc.Request{ID: jsonrpc.Int64ID(1), Method: MethodToolsCall, Params: params}
		if body, err := srv.openState(&modernRequest{}, req, state); err == nil {
			t.Fatalf("unsealed state %q verified: %+v", state, body)
		}
	})
}

// TestModernOptOut: LegacyOnly servers, and servers with a raw Handler
// that did not say it serves modern requests, answer modern requests as a
// legacy server would (no session: 400), and server/discover too.
func TestModernOptOut(t *testing.T) {
	handler := func(context.Context, *ServerSession, string, jsontext.Value) (any, error) { return struct{}{}, nil }
	for name, opts := range map[string]*ServerOptions{
		"LegacyOnly": {LegacyOnly: true},
		"Handler":    {Handler: handler},
	} {
		t.Run(name, func(t *testing.T) {
			e := newModernEnv(t, opts)
			for _, m := range []string{MethodServerDiscover, MethodToolsList} {
				r := e.post(t, modernReq{method: m})
				if r.status != http.StatusBadRequest || r.errCode() == CodeUnsupportedProtocolVersion || bytes.Contains(r.raw, []byte("supportedVersions")) {
					t.Errorf("%s: HTTP %d %s", m, r.status, r.raw)
				}
			}
		})
	}
	t.Run("HandlerServesModern", func(t *testing.T) {
		e := newModernEnv(t, &ServerOptions{Handler: handler, HandlerServesModern: true})
		if r := e.post(t, modernReq{method: MethodToolsList}); r.status != 200 || r.result()["resultType"] != "complete" {
			t.Errorf("HTTP %d %s", r.status, r.raw)
		}
	})
}

// TestModernJSONResponse: with JSONResponse a modern request's response
// stays application/json; its notifications are dropped.
func TestModernJSONResponse(t *testing.T) {
	srv := NewServer(&Implementation{Name: "j", Version: "1"}, nil)
	srv.AddTool(&Tool{Name: "work"}, func(ctx context.Context, req *CallToolRequest) (*CallToolResult, error) {
		req.Progress(ctx, 1, 2, "half")
		return &CallToolResult{Content: []Content{&TextContent{Text: "done"}}}, nil
	})
	h := NewStreamableHTTPHandler(func(*http.Request) *Server { return srv }, &StreamableHTTPOptions{JSONResponse: true})
	ts := httptest.NewServer(h)
	t.Cleanup(func() { h.Close(); ts.Close() })
	e := &modernEnv{srv: srv, url: ts.URL}
	meta := stdMeta("{}")
	meta["progressToken"] = 7
	r := e.post(t, modernReq{method: MethodToolsCall, noMeta: true, params: map[string]any{"name": "work", "arguments": map[string]any{}, "_meta": meta}})
	if r.status != 200 || len(r.events) != 0 || !bytes.Contains(r.raw, []byte(`"done"`)) {
		t.Errorf("HTTP %d events %q body %s", r.status, r.events, r.raw)
	}
}
