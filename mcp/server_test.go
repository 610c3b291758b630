package mcp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/jsonrpc"
)

// connectPair starts s and a client on in-memory transports.
// Every message either side writes is validated against the schema.
func connectPair(t *testing.T, s *Server, copts *ClientOptions) (*ClientSession, *ServerSession) {
	t.Helper()
	return connectPairCheck(t, s, copts, true)
}

// connectPairCheck is connectPair with the client side's validation
// optional, for tests that send deliberately invalid requests.
func connectPairCheck(t *testing.T, s *Server, copts *ClientOptions, checkClient bool) (*ClientSession, *ServerSession) {
	t.Helper()
	ct, st := NewInMemoryTransports()
	st = &checkTransport{t, st}
	if checkClient {
		ct = &checkTransport{t, ct}
	}
	ctx := context.Background()
	ss, err := s.Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := NewClient(&Implementation{Name: "test-client", Version: "1.0"}, copts).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close(); ss.Close() })
	return cs, ss
}

func textOf(t *testing.T, r *CallToolResult) string {
	t.Helper()
	if len(r.Content) != 1 {
		t.Fatalf("content has %d blocks, want 1", len(r.Content))
	}
	tc, ok := r.Content[0].(*TextContent)
	if !ok {
		t.Fatalf("content is %T, want *TextContent", r.Content[0])
	}
	return tc.Text
}

func newTestServer() *Server {
	s := NewServer(&Implementation{Name: "test-server", Version: "0.1", Title: "Test"}, &ServerOptions{
		Instructions: "be nice",
		CompletionHandler: func(ctx context.Context, req *CompleteRequest) (*CompleteResult, error) {
			return &CompleteResult{Completion: CompletionResultDetails{Values: []string{req.Params.Argument.Value + "1"}}}, nil
		},
		SubscribeHandler: func(context.Context, *ServerSession, *SubscribeParams) error { return nil },
	})
	s.AddTool(&Tool{
		Name:        "greet",
		Description: "says hello",
		InputSchema: jsontext.Value(`{"type":"object","properties":{"name":{"type":"string","minLength":1}},"required":["name"]}`),
	}, func(ctx context.Context, req *CallToolRequest) (*CallToolResult, error) {
		var args struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(req.Params.Arguments, &args); err != nil {
			return nil, err
		}
		return &CallToolResult{Content: []Content{&TextContent{Text: "hello " + args.Name}}}, nil
	})
	s.AddTool(&Tool{Name: "fail"}, func(ctx context.Context, req *CallToolRequest) (*CallToolResult, error) {
		return nil, errors.New("it broke")
	})
	s.AddTool(&Tool{Name: "structured", OutputSchema: jsontext.Value(`{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]}`)},
		func(ctx context.Context, req *CallToolRequest) (*CallToolResult, error) {
			return &CallToolResult{StructuredContent: jsontext.Value(`{"n":"not a number"}`)}, nil
		})
	s.AddResource(&Resource{URI: "test://a", Name: "a", MIMEType: "text/plain"}, func(ctx context.Context, req *ReadResourceRequest) (*ReadResourceResult, error) {
		return &ReadResourceResult{Contents: []*ResourceContents{{URI: req.Params.URI, MIMEType: "text/plain", Text: "A"}}}, nil
	})
	s.AddResourceTemplate(&ResourceTemplate{URITemplate: "test://items/{id}/data", Name: "item"}, func(ctx context.Context, req *ReadResourceRequest) (*ReadResourceResult, error) {
		if req.Vars["id"] == "missing" {
			return nil, ErrResourceNotFound
		}
		return &ReadResourceResult{Contents: []*ResourceContents{{URI: req.Params.URI, Text: "item " + req.Vars["id"]}}}, nil
	})
	s.AddPrompt(&Prompt{Name: "p", Description: "a prompt", Arguments: []*PromptArgument{{Name: "x", Required: true}}}, func(ctx context.Context, req *GetPromptRequest) (*GetPromptResult, error) {
		return &GetPromptResult{Messages: []*PromptMessage{{Role: RoleUser, Content: &TextContent{Text: "x=" + req.Params.Arguments["x"]}}}}, nil
	})
	return s
}

func TestServerBasics(t *testing.T) {
	cs, _ := connectPair(t, newTestServer(), nil)
	ctx := context.Background()

	init := cs.InitializeResult()
	if init.ProtocolVersion != LatestProtocolVersion || init.ServerInfo.Name != "test-server" || init.Instructions != "be nice" {
		t.Errorf("initialize result = %+v", init)
	}
	caps := init.Capabilities
	if caps.Tools == nil || !caps.Tools.ListChanged || caps.Resources == nil || !caps.Resources.Subscribe || caps.Prompts == nil || caps.Completions == nil || caps.Logging == nil {
		t.Errorf("capabilities = %+v", caps)
	}

	res, err := cs.CallTool(ctx, &CallToolParams{Name: "greet", Arguments: jsontext.Value(`{"name":"bob"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if got := textOf(t, res); got != "hello bob" || res.IsError {
		t.Errorf("greet = %q (isError %v)", got, res.IsError)
	}

	// Invalid arguments are a tool error, not a protocol error.
	res, err = cs.CallTool(ctx, &CallToolParams{Name: "greet", Arguments: jsontext.Value(`{"name":""}`)})
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsError || !strings.Contains(textOf(t, res), "invalid arguments") {
		t.Errorf("bad args: %+v", res)
	}
	res, err = cs.CallTool(ctx, &CallToolParams{Name: "greet"})
	if err != nil || !res.IsError {
		t.Errorf("missing args: %v %+v", err, res)
	}

	// A handler error is a tool error.
	res, err = cs.CallTool(ctx, &CallToolParams{Name: "fail"})
	if err != nil || !res.IsError || textOf(t, res) != "it broke" {
		t.Errorf("fail: %v %+v", err, res)
	}

	// Structured content that does not match the output schema is a protocol error.
	_, err = cs.CallTool(ctx, &CallToolParams{Name: "structured"})
	if jsonrpc.ErrorCode(err) != jsonrpc.CodeInternalError || !strings.Contains(err.Error(), "output schema") {
		t.Errorf("structured: %v", err)
	}

	// Unknown tool.
	_, err = cs.CallTool(ctx, &CallToolParams{Name: "nope"})
	if jsonrpc.ErrorCode(err) != jsonrpc.CodeInvalidParams {
		t.Errorf("unknown tool: %v", err)
	}

	rr, err := cs.ReadResource(ctx, &ReadResourceParams{URI: "test://a"})
	if err != nil || rr.Contents[0].Text != "A" {
		t.Errorf("read a: %v %+v", err, rr)
	}
	rr, err = cs.ReadResource(ctx, &ReadResourceParams{URI: "test://items/42/data"})
	if err != nil || rr.Contents[0].Text != "item 42" {
		t.Errorf("read template: %v %+v", err, rr)
	}
	for _, uri := range []string{"test://nope", "test://items/missing/data"} {
		_, err = cs.ReadResource(ctx, &ReadResourceParams{URI: uri})
		if jsonrpc.ErrorCode(err) != jsonrpc.CodeResourceNotFound {
			t.Errorf("read %s: %v", uri, err)
		}
	}
	if err := cs.Subscribe(ctx, &SubscribeParams{URI: "test://a"}); err != nil {
		t.Errorf("subscribe: %v", err)
	}

	gp, err := cs.GetPrompt(ctx, &GetPromptParams{Name: "p", Arguments: map[string]string{"x": "1"}})
	if err != nil || gp.Messages[0].Content.(*TextContent).Text != "x=1" {
		t.Errorf("get prompt: %v %+v", err, gp)
	}
	if _, err = cs.GetPrompt(ctx, &GetPromptParams{Name: "p"}); jsonrpc.ErrorCode(err) != jsonrpc.CodeInvalidParams {
		t.Errorf("prompt missing arg: %v", err)
	}

	cr, err := cs.Complete(ctx, &CompleteParams{Ref: &CompleteReference{Type: "ref/prompt", Name: "p"}, Argument: CompleteArgument{Name: "x", Value: "v"}})
	if err != nil || len(cr.Completion.Values) != 1 || cr.Completion.Values[0] != "v1" {
		t.Errorf("complete: %v %+v", err, cr)
	}
	if err := cs.SetLoggingLevel(ctx, "bogus"); err == nil {
		t.Error("client sent an unknown logging level")
	}
	if err := cs.Ping(ctx); err != nil {
		t.Errorf("ping: %v", err)
	}
	if _, err := cs.CallRaw(ctx, "no/such/method", nil); jsonrpc.ErrorCode(err) != jsonrpc.CodeMethodNotFound {
		t.Errorf("unknown method: %v", err)
	}
}

func TestServerRejectsInvalidRequests(t *testing.T) {
	cs, _ := connectPairCheck(t, newTestServer(), nil, false)
	ctx := context.Background()
	tests := []struct {
		method string
		params string
		code   int64
	}{
		{MethodLoggingSetLevel, `{"level":"bogus"}`, jsonrpc.CodeInvalidParams},
		{MethodToolsCall, `{"name":3}`, jsonrpc.CodeInvalidParams},
		{MethodResourcesRead, `{}`, jsonrpc.CodeInvalidParams},
		{MethodPromptsGet, `{"name":"nope"}`, jsonrpc.CodeInvalidParams},
		{MethodInitialize, `{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}`, jsonrpc.CodeInvalidRequest},
	}
	for _, tt := range tests {
		_, err := cs.CallRaw(ctx, tt.method, jsontext.Value(tt.params))
		if got := jsonrpc.ErrorCode(err); got != tt.code {
			t.Errorf("%s %s: code %d (%v), want %d", tt.method, tt.params, got, err, tt.code)
		}
	}
}

func TestPagination(t *testing.T) {
	s := NewServer(&Implementation{Name: "s", Version: "1"}, &ServerOptions{PageSize: 3})
	for i := range 10 {
		s.AddTool(&Tool{Name: fmt.Sprintf("t%02d", i)}, func(context.Context, *CallToolRequest) (*CallToolResult, error) { return nil, nil })
	}
	cs, _ := connectPair(t, s, nil)
	var names []string
	for tool, err := range cs.Tools(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tool.Name)
	}
	if len(names) != 10 || names[0] != "t00" || names[9] != "t09" {
		t.Errorf("names = %v", names)
	}
	if _, err := cs.ListTools(context.Background(), &ListToolsParams{Cursor: "!!!"}); jsonrpc.ErrorCode(err) != jsonrpc.CodeInvalidParams {
		t.Errorf("bad cursor: %v", err)
	}
}

func TestProgressLoggingAndCancellation(t *testing.T) {
	s := NewServer(&Implementation{Name: "s", Version: "1"}, nil)
	started := make(chan struct{})
	cancelled := make(chan struct{})
	s.AddTool(&Tool{Name: "slow"}, func(ctx context.Context, req *CallToolRequest) (*CallToolResult, error) {
		for i := range 3 {
			req.Progress(ctx, float64(i), 3, "step")
		}
		req.Session.Log(ctx, &LoggingMessageParams{Level: LoggingLevelDebug, Data: jsontext.Value(`"dbg"`)})
		req.Session.Log(ctx, &LoggingMessageParams{Level: LoggingLevelError, Data: jsontext.Value(`"err"`)})
		close(started)
		<-ctx.Done()
		close(cancelled)
		return nil, ctx.Err()
	})
	var mu sync.Mutex
	var progress []float64
	var logs []LoggingLevel
	cs, _ := connectPair(t, s, &ClientOptions{
		LoggingMessageHandler: func(_ context.Context, _ *ClientSession, p *LoggingMessageParams) {
			mu.Lock()
			logs = append(logs, p.Level)
			mu.Unlock()
		},
	})
	if err := cs.SetLoggingLevel(context.Background(), LoggingLevelInfo); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ctx = WithProgress(ctx, func(p *ProgressNotificationParams) {
		mu.Lock()
		progress = append(progress, p.Progress)
		mu.Unlock()
	})
	errc := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(ctx, &CallToolParams{Name: "slow"})
		errc <- err
	}()
	<-started
	// Let the notifications arrive before cancelling.
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n, l := len(progress), len(logs)
		mu.Unlock()
		if n == 3 && l == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("call error = %v, want context.Canceled", err)
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("server handler was not cancelled")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(progress) != 3 || progress[2] != 2 {
		t.Errorf("progress = %v", progress)
	}
	if len(logs) != 1 || logs[0] != LoggingLevelError {
		t.Errorf("logs = %v (debug must be filtered at level info)", logs)
	}
}

func TestServerToClientRequests(t *testing.T) {
	s := NewServer(&Implementation{Name: "s", Version: "1"}, nil)
	s.AddTool(&Tool{Name: "ask"}, func(ctx context.Context, req *CallToolRequest) (*CallToolResult, error) {
		msg, err := req.Session.CreateMessage(ctx, &CreateMessageParams{
			Messages:  []*SamplingMessage{{Role: RoleUser, Content: []Content{&TextContent{Text: "hi"}}}},
			MaxTokens: 10,
		})
		if err != nil {
			return nil, err
		}
		el, err := req.Session.Elicit(ctx, &ElicitParams{Message: "who?", RequestedSchema: &ElicitationSchema{
			Type: "object",
			Properties: map[string]PrimitiveSchemaDefinition{
				"name": {Type: "string"},
				"age":  {Type: "integer", Default: jsontext.Value("30")},
			},
		}})
		if err != nil {
			return nil, err
		}
		roots, err := req.Session.ListRoots(ctx)
		if err != nil {
			return nil, err
		}
		text := msg.Content[0].(*TextContent).Text
		return &CallToolResult{Content: []Content{&TextContent{Text: fmt.Sprintf("%s|%v|%v|%s", text, el.Content["name"], el.Content["age"], roots.Roots[0].URI)}}}, nil
	})
	cs, _ := connectPair(t, s, &ClientOptions{
		CreateMessageHandler: func(ctx context.Context, req *CreateMessageRequest) (*CreateMessageResult, error) {
			return &CreateMessageResult{Role: RoleAssistant, Model: "m", Content: []Content{&TextContent{Text: "sampled"}}}, nil
		},
		ElicitationHandler: func(ctx context.Context, req *ElicitRequest) (*ElicitResult, error) {
			return &ElicitResult{Action: ElicitActionAccept, Content: map[string]any{"name": "ann"}}, nil
		},
	})
	cs.client.AddRoots(&Root{URI: "file:///tmp", Name: "tmp"})
	res, err := cs.CallTool(context.Background(), &CallToolParams{Name: "ask"})
	if err != nil {
		t.Fatal(err)
	}
	if got := textOf(t, res); got != "sampled|ann|30|file:///tmp" {
		t.Errorf("got %q", got)
	}
}

func TestVersionNegotiation(t *testing.T) {
	for _, v := range []string{Version20250618, Version20250326, Version20241105} {
		t.Run(v, func(t *testing.T) {
			s := newTestServer()
			s.AddTool(&Tool{Name: "tasky", Title: "T", Execution: &ToolExecution{TaskSupport: TaskSupportOptional}, Icons: []Icon{{Src: "https://x/i.png"}}},
				func(context.Context, *CallToolRequest) (*CallToolResult, error) { return nil, nil })
			cs, _ := connectPair(t, s, &ClientOptions{ProtocolVersion: v})
			if got := cs.ProtocolVersion(); got != v {
				t.Fatalf("negotiated %s, want %s", got, v)
			}
			if cs.InitializeResult().Capabilities.Tasks != nil {
				t.Error("tasks capability advertised below 2025-11-25")
			}
			lt, err := cs.ListTools(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, tool := range lt.Tools {
				if tool.Icons != nil || tool.Execution != nil {
					t.Errorf("tool %s has 2025-11-25 fields at %s", tool.Name, v)
				}
			}
			if _, err := cs.CallRaw(context.Background(), MethodTasksList, nil); jsonrpc.ErrorCode(err) != jsonrpc.CodeMethodNotFound {
				t.Errorf("tasks/list at %s: %v", v, err)
			}
		})
	}
	// An unknown version is answered with the latest.
	s := newTestServer()
	cs, _ := connectPair(t, s, &ClientOptions{ProtocolVersion: "2099-01-01"})
	if got := cs.ProtocolVersion(); got != LatestProtocolVersion {
		t.Errorf("unknown version answered with %s, want %s", got, LatestProtocolVersion)
	}
}
