package mcp

import (
	"context"
	"errors"
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
)

// modernClient returns a dual-era client (modern first) with an
// elicitation handler that accepts with a fixed answer per field.
func newModernTestClient(opts *ClientOptions) *Client {
	o := ClientOptions{}
	if opts != nil {
		o = *opts
	}
	o.ProtocolVersion = Version20260728
	if o.ElicitationHandler == nil {
		o.ElicitationHandler = func(_ context.Context, r *ElicitRequest) (*ElicitResult, error) {
			out := map[string]any{}
			for name := range r.Params.RequestedSchema.Properties {
				out[name] = "v-" + name
			}
			return &ElicitResult{Action: ElicitActionAccept, Content: out}, nil
		}
	}
	return NewClient(&Implementation{Name: "modern-client", Version: "1"}, &o)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// headerRecorder wraps a handler and records the headers of every POST.
type headerRecorder struct {
	h    http.Handler
	mu   sync.Mutex
	seen []http.Header
}

func (r *headerRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method == http.MethodPost {
		r.mu.Lock()
		r.seen = append(r.seen, req.Header.Clone())
		r.mu.Unlock()
	}
	r.h.ServeHTTP(w, req)
}

func (r *headerRecorder) last(method string) http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.seen) - 1; i >= 0; i-- {
		if r.seen[i].Get("Mcp-Method") == method {
			return r.seen[i]
		}
	}
	return nil
}

// newRecordedServer serves srv over Streamable HTTP behind a recorder.
func newRecordedServer(t *testing.T, srv *Server) (*headerRecorder, string) {
	h := NewStreamableHTTPHandler(func(*http.Request) *Server { return srv }, nil)
	rec := &headerRecorder{h: h}
	ts := httptest.NewServer(rec)
	t.Cleanup(func() { h.Close(); ts.Close() })
	return rec, ts.URL
}

func addRegionTool(s *Server) {
	s.AddTool(&Tool{Name: "sql", InputSchema: jsontext.Value(`{"type":"object","properties":{
		"region":{"type":"string","x-mcp-header":"Region"},
		"opts":{"type":"object","properties":{"dry":{"type":"boolean","x-mcp-header":"Dry"}}},
		"n":{"type":"integer","x-mcp-header":"N"},
		"query":{"type":"string"}}}`)},
		func(_ context.Context, req *CallToolRequest) (*CallToolResult, error) {
			return &CallToolResult{Content: []Content{&TextContent{Text: "ran " + string(req.Params.Arguments)}}}, nil
		})
	// An invalid annotation (under items): the client must drop the tool.
	s.AddTool(&Tool{Name: "bad", InputSchema: jsontext.Value(`{"type":"object","properties":{
		"xs":{"type":"array","items":{"type":"string","x-mcp-header":"X"}}}}`)},
		func(context.Context, *CallToolRequest) (*CallToolResult, error) { return &CallToolResult{}, nil })
}

func TestModernClientHTTP(t *testing.T) {
	srv := NewServer(&Implementation{Name: "srv", Version: "2"}, &ServerOptions{Instructions: "be nice"})
	addInputTool(srv)
	addRegionTool(srv)
	rec, url := newRecordedServer(t, srv)
	ctx := testCtx(t)
	cs, err := newModernTestClient(nil).Connect(ctx, &StreamableClientTransport{Endpoint: url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if cs.ID() != "" || cs.ProtocolVersion() != Version20260728 {
		t.Fatalf("session id %q, version %q; want none, 2026-07-28", cs.ID(), cs.ProtocolVersion())
	}
	ir := cs.InitializeResult()
	if ir.ServerInfo.Name != "srv" || ir.Instructions != "be nice" || ir.Capabilities.Tools == nil {
		t.Errorf("InitializeResult from discover = %+v", ir)
	}
	if d := cs.DiscoverResult(); d == nil || d.SupportedVersions[0] != Version20260728 {
		t.Errorf("DiscoverResult = %+v", d)
	}

	var hints CacheHints
	lt, err := cs.ListTools(WithCacheHints(ctx, &hints), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range lt.Tools {
		names = append(names, tl.Name)
	}
	if got := strings.Join(names, ","); got != "greet,sql" {
		t.Errorf("tools = %s, want greet,sql (bad dropped)", got)
	}
	if hints.Scope != CacheScopePrivate {
		t.Errorf("cache hints = %+v, want private scope", hints)
	}
	h := rec.last(MethodToolsList)
	if h.Get("Mcp-Protocol-Version") != Version20260728 || h.Get("Mcp-Session-Id") != "" {
		t.Errorf("tools/list headers = %v", h)
	}

	res, err := cs.CallTool(ctx, &CallToolParams{Name: "sql", Arguments: jsontext.Value(`{"region":"Hello, 世界","opts":{"dry":true},"n":42,"query":"SELECT 1"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if res.IsError {
		t.Fatalf("sql: %+v", res)
	}
	h = rec.last(MethodToolsCall)
	want := map[string]string{"Mcp-Name": "sql", "Mcp-Param-Region": "=?base64?SGVsbG8sIOS4lueVjA==?=", "Mcp-Param-Dry": "true", "Mcp-Param-N": "42"}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}

	// MRTR: two elicitation rounds answered by the handler.
	res, err = cs.CallTool(ctx, &CallToolParams{Name: "greet", Arguments: jsontext.Value(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Content[0].(*TextContent).Text; got != "v-name likes v-color" {
		t.Errorf("greet = %q", got)
	}
	if err := cs.Ping(ctx); err != nil {
		t.Errorf("ping (server/discover): %v", err)
	}
}

// TestModernClientRelistsOnHeaderMismatch calls an annotated tool before
// listing: the server refuses the missing Mcp-Param header, and the client
// lists the tools and retries.
func TestModernClientRelistsOnHeaderMismatch(t *testing.T) {
	srv := NewServer(&Implementation{Name: "srv", Version: "2"}, nil)
	addRegionTool(srv)
	_, url := newRecordedServer(t, srv)
	ctx := testCtx(t)
	cs, err := newModernTestClient(nil).Connect(ctx, &StreamableClientTransport{Endpoint: url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &CallToolParams{Name: "sql", Arguments: jsontext.Value(`{"region":"eu"}`)})
	if err != nil || res.IsError {
		t.Fatalf("call before list: %v %+v", err, res)
	}
}

func TestModernClientFallsBack(t *testing.T) {
	srv := NewServer(&Implementation{Name: "old", Version: "1"}, &ServerOptions{LegacyOnly: true})
	srv.AddTool(&Tool{Name: "echo"}, func(context.Context, *CallToolRequest) (*CallToolResult, error) {
		return &CallToolResult{Content: []Content{&TextContent{Text: "hi"}}}, nil
	})
	_, url := newRecordedServer(t, srv)
	ctx := testCtx(t)
	cs, err := newModernTestClient(nil).Connect(ctx, &StreamableClientTransport{Endpoint: url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if cs.ProtocolVersion() != LatestProtocolVersion || cs.ID() == "" || cs.DiscoverResult() != nil {
		t.Fatalf("fallback: version %q, session %q", cs.ProtocolVersion(), cs.ID())
	}
	if _, err := cs.CallTool(ctx, &CallToolParams{Name: "echo"}); err != nil {
		t.Fatal(err)
	}

	_, err = newModernTestClient(&ClientOptions{ModernOnly: true}).Connect(ctx, &StreamableClientTransport{Endpoint: url}, nil)
	if !errors.Is(err, ErrNotModern) {
		t.Fatalf("ModernOnly against a legacy server: %v, want ErrNotModern", err)
	}
}

// TestModernClientInMemory runs the stdio-style probe on a connection
// transport, against a modern and a legacy server.
func TestModernClientInMemory(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		t.Run(fmt.Sprint("legacy=", legacy), func(t *testing.T) {
			srv := NewServer(&Implementation{Name: "s", Version: "1"}, &ServerOptions{LegacyOnly: legacy})
			addInputTool(srv)
			ct, st := NewInMemoryTransports()
			ctx := testCtx(t)
			ss, err := srv.Connect(ctx, st, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ss.Close()
			cs, err := newModernTestClient(nil).Connect(ctx, ct, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			want := Version20260728
			if legacy {
				want = LatestProtocolVersion
			}
			if cs.ProtocolVersion() != want {
				t.Fatalf("version %q, want %q", cs.ProtocolVersion(), want)
			}
			res, err := cs.CallTool(ctx, &CallToolParams{Name: "greet", Arguments: jsontext.Value(`{}`)})
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Content[0].(*TextContent).Text; got != "v-name likes v-color" {
				t.Errorf("greet = %q", got)
			}
		})
	}
}

func TestModernClientErrors(t *testing.T) {
	srv := NewServer(&Implementation{Name: "s", Version: "1"}, nil)
	srv.AddTool(&Tool{Name: "sample"}, func(ctx context.Context, req *CallToolRequest) (*CallToolResult, error) {
		if _, err := req.Session.SampleInput(ctx, "s", &CreateMessageParams{MaxTokens: 1}); err != nil {
			return nil, err
		}
		return &CallToolResult{}, nil
	})
	addInputTool(srv)
	_, url := newRecordedServer(t, srv)
	ctx := testCtx(t)
	cs, err := newModernTestClient(&ClientOptions{MaxInputRounds: 1}).Connect(ctx, &StreamableClientTransport{Endpoint: url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	_, err = cs.CallTool(ctx, &CallToolParams{Name: "sample"})
	var me *ModernError
	if !errors.Is(err, ErrMissingClientCapability) || !errors.As(err, &me) || me.RequiredCapabilities == nil || me.RequiredCapabilities.Sampling == nil {
		t.Errorf("sampling without the capability: %v", err)
	}
	_, err = cs.CallTool(ctx, &CallToolParams{Name: "greet", Arguments: jsontext.Value(`{}`)})
	if !errors.Is(err, ErrTooManyInputRounds) {
		t.Errorf("two rounds with MaxInputRounds 1: %v", err)
	}
	if err := cs.Subscribe(ctx, &SubscribeParams{URI: "x:y"}); err == nil {
		t.Error("resources/subscribe in a modern session succeeded")
	}
}

func TestModernClientTasks(t *testing.T) {
	e := newTaskEnv(t)
	ctx := testCtx(t)
	c := newModernTestClient(&ClientOptions{Capabilities: &ClientCapabilities{
		Extensions: map[string]jsontext.Value{ExtensionTasks: jsontext.Value(`{}`)}}})
	cs, err := c.Connect(ctx, &StreamableClientTransport{Endpoint: e.url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	// The task's elicitation is answered by the handler through
	// tasks/update; CallTool waits for the result.
	res, err := cs.CallTool(ctx, &CallToolParams{Name: "confirm", Arguments: jsontext.Value(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Content[0].(*TextContent).Text; got != "answer accept" {
		t.Errorf("confirm = %q", got)
	}
	task, res, err := cs.CallToolTask(ctx, &CallToolParams{Name: "wait", Arguments: jsontext.Value(`{}`)})
	if err != nil || task == nil {
		t.Fatalf("CallToolTask: %v %v %+v", task, err, res)
	}
	st, err := task.Get(ctx)
	if err != nil || st.Status != "working" {
		t.Fatalf("tasks/get: %+v %v", st, err)
	}
	if err := task.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := task.Wait(ctx); !errors.Is(err, ErrTaskCancelled) {
		t.Errorf("Wait after cancel: %v", err)
	}
}

func TestEncodeHeaderValue(t *testing.T) {
	for in, want := range map[string]string{
		"us-west1":           "us-west1",
		"Hello, 世界":          "=?base64?SGVsbG8sIOS4lueVjA==?=",
		" padded ":           "=?base64?IHBhZGRlZCA=?=",
		"line1\nline2":       "=?base64?bGluZTEKbGluZTI=?=",
		"=?base64?literal?=": "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=",
	} {
		if got := encodeHeaderValue(in); got != want {
			t.Errorf("encodeHeaderValue(%q) = %q, want %q", in, got, want)
		}
		if got, err := decodeHeaderValue(encodeHeaderValue(in)); err != nil || got != in {
			t.Errorf("round trip of %q: %q %v", in, got, err)
		}
	}
}

func TestCheckHeaderAnnotations(t *testing.T) {
	for schema, ok := range map[string]bool{
		`{"type":"object","properties":{"a":{"type":"string","x-mcp-header":"A"}}}`:                                          true,
		`{"type":"object","properties":{"a":{"type":"object","properties":{"b":{"type":"integer","x-mcp-header":"B"}}}}}`:    true,
		`{"type":"object","properties":{"a":{"type":"string","default":{"x-mcp-header":"Z"}}}}`:                              true,
		`{"type":"object","x-mcp-header":"Root"}`:                                                                            false,
		`{"type":"object","properties":{"a":{"type":"number","x-mcp-header":"A"}}}`:                                          false,
		`{"type":"object","properties":{"a":{"type":"string","x-mcp-header":""}}}`:                                           false,
		`{"type":"object","properties":{"a":{"type":"string","x-mcp-header":"A B"}}}`:                                        false,
		`{"type":"object","properties":{"a":{"type":"string","x-mcp-header":"A"},"b":{"type":"string","x-mcp-header":"a"}}}`: false,
		`{"type":"object","properties":{"a":{"anyOf":[{"type":"string","x-mcp-header":"A"}]}}}`:                              false,
		`{"type":"object","properties":{"a":{"type":"array","items":{"type":"string","x-mcp-header":"A"}}}}`:                 false,
	} {
		if err := checkHeaderAnnotations(jsontext.Value(schema)); (err == nil) != ok {
			t.Errorf("%s: err %v, want ok=%v", schema, err, ok)
		}
	}
}

// TestModernClientStdio runs the stdio probe through CommandTransport
// against this package's Server and the official Go SDK's (v1.8.0), which
// both answer server/discover; the legacy fallback on a connection
// transport is in TestModernClientInMemory.
func TestModernClientStdio(t *testing.T) {
	for mode, want := range map[string]string{"server": Version20260728, "gosdk": Version20260728} {
		t.Run(mode, func(t *testing.T) {
			ctx := testCtx(t)
			cs, err := newModernTestClient(nil).Connect(ctx, &CommandTransport{Command: ctHelperCommand(mode)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			if got := cs.ProtocolVersion(); got != want {
				t.Errorf("version %q, want %q", got, want)
			}
			if _, err := cs.ListTools(ctx, nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestModernClientProbeAnsweredByAnything: a stdio server that answers every
// request with the same result (no supportedVersions) is taken to be
// legacy: the client goes on to initialize (whose answer, without a
// protocol version, then fails the connection).
func TestModernClientProbeAnsweredByAnything(t *testing.T) {
	ctx := testCtx(t)
	_, err := newModernTestClient(nil).Connect(ctx, &CommandTransport{Command: ctHelperCommand("echo")}, nil)
	if err == nil || !strings.Contains(err.Error(), "server chose unsupported protocol version") {
		t.Fatalf("Connect = %v, want the failure of the legacy initialize", err)
	}
	_, err = newModernTestClient(&ClientOptions{ModernOnly: true}).Connect(ctx, &CommandTransport{Command: ctHelperCommand("echo")}, nil)
	if !errors.Is(err, ErrNotModern) {
		t.Fatalf("ModernOnly Connect = %v, want ErrNotModern", err)
	}
}

// TestModernClientAutoTransportFallsBack: a legacy Streamable HTTP server
// that answers the probe with a bare 400 stays on Streamable HTTP (the
// refused probe does not make AutoClientTransport switch to HTTP+SSE).
func TestModernClientAutoTransportFallsBack(t *testing.T) {
	srv := NewServer(&Implementation{Name: "old", Version: "1"}, &ServerOptions{LegacyOnly: true})
	srv.AddTool(&Tool{Name: "echo"}, func(context.Context, *CallToolRequest) (*CallToolResult, error) {
		return &CallToolResult{Content: []Content{&TextContent{Text: "hi"}}}, nil
	})
	h := NewStreamableHTTPHandler(func(*http.Request) *Server { return srv }, nil)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.Header.Get("Mcp-Method") == MethodServerDiscover {
			http.Error(w, "Bad Request: no session", http.StatusBadRequest)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { h.Close(); ts.Close() })
	ctx := testCtx(t)
	cs, err := newModernTestClient(nil).Connect(ctx, &AutoClientTransport{Endpoint: ts.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if cs.ProtocolVersion() != LatestProtocolVersion || cs.ID() == "" {
		t.Fatalf("version %q, session %q: want a legacy Streamable HTTP session", cs.ProtocolVersion(), cs.ID())
	}
	if _, err := cs.CallTool(ctx, &CallToolParams{Name: "echo"}); err != nil {
		t.Fatal(err)
	}
}

// TestModernClientStateOnlyRound: an input_required result with a
// requestState and no inputRequests is retried at once with the state.
func TestModernClientStateOnlyRound(t *testing.T) {
	var calls int
	var mu sync.Mutex
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ID     jsontext.Value `json:"id"`
			Method string         `json:"method"`
			Params struct {
				RequestState   *string        `json:"requestState"`
				InputResponses jsontext.Value `json:"inputResponses"`
			} `json:"params"`
		}
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &req, json.RejectUnknownMembers(false)); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var result string
		switch req.Method {
		case MethodServerDiscover:
			result = `{"supportedVersions":["2026-07-28"],"capabilities":{"tools":{}}}`
		case MethodToolsCall:
			mu.Lock()
			calls++
			mu.Unlock()
			switch {
			case req.Params.RequestState == nil:
				result = `{"resultType":"input_required","requestState":"later"}`
			case *req.Params.RequestState == "later" && req.Params.InputResponses == nil:
				result = `{"resultType":"complete","content":[{"type":"text","text":"done"}]}`
			default:
				result = `{"resultType":"complete","isError":true,"content":[]}`
			}
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":%s}`, req.ID, result)
	}))
	defer ts.Close()
	ctx := testCtx(t)
	cs, err := newModernTestClient(nil).Connect(ctx, &StreamableClientTransport{Endpoint: ts.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &CallToolParams{Name: "x", Arguments: jsontext.Value(`{}`)})
	if err != nil || res.IsError || len(res.Content) != 1 {
		t.Fatalf("call: %v %+v", err, res)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 2 {
		t.Errorf("%d tools/call requests, want 2", calls)
	}
}
