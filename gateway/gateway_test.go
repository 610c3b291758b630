package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
)

// The test binary doubles as a stdio upstream: with this variable set it
// serves testUpstream(name) on stdin/stdout.
const upstreamEnv = "MCPGATE_TEST_UPSTREAM"

func TestMain(m *testing.M) {
	if name := os.Getenv(upstreamEnv); name != "" {
		if err := testUpstream(name, nil).Run(context.Background(), &mcp.StdioTransport{}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testUpstream is an upstream server whose tools say which upstream they
// are. seen, if set, records the Authorization header of HTTP requests.
func testUpstream(name string, _ *[]string) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: name, Version: "1"}, nil)
	s.AddTool(&mcp.Tool{Name: "whoami", InputSchema: jsontext.Value(`{"type":"object"}`)}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		req.Progress(ctx, 1, 2, "working")
		req.Progress(ctx, 2, 2, "done")
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name}}}, nil
	})
	s.AddTool(&mcp.Tool{Name: name + "-only"}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "only " + name}}}, nil
	})
	s.AddTool(&mcp.Tool{Name: "ask"}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		msg, err := req.Session.CreateMessage(ctx, &mcp.CreateMessageParams{
			Messages:  []*mcp.SamplingMessage{{Role: mcp.RoleUser, Content: []mcp.Content{&mcp.TextContent{Text: "q"}}}},
			MaxTokens: 5,
		})
		if err != nil {
			return nil, err
		}
		el, err := req.Session.Elicit(ctx, &mcp.ElicitParams{Message: "name?", RequestedSchema: &mcp.ElicitationSchema{
			Type: "object", Properties: map[string]mcp.PrimitiveSchemaDefinition{"n": {Type: "string"}},
		}})
		if err != nil {
			return nil, err
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf("%s:%s:%v", name, msg.Content[0].(*mcp.TextContent).Text, el.Content["n"])}}}, nil
	})
	if name == "huge" {
		// An answer over the gateway's 4 MiB message limit.
		s.AddTool(&mcp.Tool{Name: "big"}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: strings.Repeat("x", 5<<20)}}}, nil
		})
	}
	s.AddTool(&mcp.Tool{Name: "crash"}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		os.Exit(3) // only meaningful for stdio upstreams
		return nil, nil
	})
	s.AddTool(&mcp.Tool{Name: "slowtask", Execution: &mcp.ToolExecution{TaskSupport: mcp.TaskSupportOptional}}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	s.AddTool(&mcp.Tool{Name: "hang"}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	s.AddResource(&mcp.Resource{URI: "test://" + name + "/r", Name: "r"}, func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: "from " + name}}}, nil
	})
	s.AddPrompt(&mcp.Prompt{Name: "greet"}, func(ctx context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: mcp.RoleUser, Content: &mcp.TextContent{Text: "hello from " + name}}}}, nil
	})
	return s
}

// authRecorder wraps an upstream's handler and records the Authorization
// headers it receives.
type authRecorder struct {
	h    http.Handler
	mu   sync.Mutex
	seen []string
}

func (a *authRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.seen = append(a.seen, r.Header.Get("Authorization"))
	a.mu.Unlock()
	a.h.ServeHTTP(w, r)
}

func httpUpstream(t *testing.T, name string) (string, *authRecorder) {
	t.Helper()
	return httpUpstreamServer(t, testUpstream(name, nil))
}

// httpUpstreamServer serves s over Streamable HTTP, recording the
// Authorization headers it receives.
func httpUpstreamServer(t *testing.T, s *mcp.Server) (string, *authRecorder) {
	t.Helper()
	rec := &authRecorder{h: mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	return srv.URL, rec
}

func stdioUpstream(name string) config.Upstream {
	return config.Upstream{Name: name, Command: []string{os.Args[0], "-test.run=^$"}, Env: map[string]string{upstreamEnv: name}}
}

func ptr[T any](v T) *T { return &v }

// startGateway starts a gateway for cfg behind an HTTP server and returns
// its /mcp URL.
func startGateway(t *testing.T, cfg *config.Config) (*Gateway, string) {
	t.Helper()
	g, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(func() { srv.Close(); g.Close() })
	return g, srv.URL + "/mcp"
}

// bearerClient sends a fixed Authorization header, like a client holding a
// token for the gateway.
type bearerClient struct{ token string }

func (b bearerClient) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

func connect(t *testing.T, url string, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "downstream", Version: "1"}, opts).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: url, HTTPClient: &http.Client{Transport: bearerClient{"caller-secret-token"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func callText(t *testing.T, cs *mcp.ClientSession, name string) string {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name})
	if err != nil {
		t.Fatalf("call %s: %v", name, err)
	}
	if res.IsError {
		t.Fatalf("call %s: tool error %+v", name, res.Content)
	}
	return res.Content[0].(*mcp.TextContent).Text
}

func TestCollidingUpstreams(t *testing.T) {
	urlA, recA := httpUpstream(t, "alpha")
	urlB, recB := httpUpstream(t, "beta")
	g, gw := startGateway(t, &config.Config{Upstreams: []config.Upstream{
		{Name: "a", URL: urlA},                  // default prefix "a_"
		{Name: "b", URL: urlB},                  // default prefix "b_"
		{Name: "c", URL: urlB, Prefix: ptr("")}, // no prefix: collides with nobody yet
		{Name: "d", URL: urlA, Prefix: ptr("")}, // no prefix: collides with c
	}})
	cs := connect(t, gw, nil)
	ctx := context.Background()

	var names []string
	for tool, err := range cs.Tools(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tool.Name)
	}
	for _, want := range []string{"a_whoami", "b_whoami", "whoami", "a_alpha-only", "b_beta-only", "beta-only", "alpha-only"} {
		if !slices.Contains(names, want) {
			t.Errorf("tool %q missing from %v", want, names)
		}
	}
	if got := callText(t, cs, "a_whoami"); got != "alpha" {
		t.Errorf("a_whoami = %q", got)
	}
	if got := callText(t, cs, "b_whoami"); got != "beta" {
		t.Errorf("b_whoami = %q", got)
	}
	// "whoami" is offered by c and d: c comes first and is kept.
	if got := callText(t, cs, "whoami"); got != "beta" {
		t.Errorf("whoami = %q, want beta (first upstream wins)", got)
	}
	if got := callText(t, cs, "alpha-only"); got != "only alpha" {
		t.Errorf("alpha-only = %q", got)
	}
	coll := strings.Join(g.Collisions(), "\n")
	if !strings.Contains(coll, `tool "whoami" of upstream d collides with the one of upstream c`) {
		t.Errorf("collision not reported: %q", coll)
	}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "nope"}); jsonrpc.ErrorCode(err) != jsonrpc.CodeInvalidParams {
		t.Errorf("unknown tool: %v", err)
	}

	// Resources route by URI, prompts by prefixed name.
	rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "test://beta/r"})
	if err != nil || rr.Contents[0].Text != "from beta" {
		t.Errorf("read: %v %+v", err, rr)
	}
	if _, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "test://none"}); jsonrpc.ErrorCode(err) != jsonrpc.CodeResourceNotFound {
		t.Errorf("read unknown: %v", err)
	}
	gp, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "a_greet"})
	if err != nil || gp.Messages[0].Content.(*mcp.TextContent).Text != "hello from alpha" {
		t.Errorf("prompt: %v %+v", err, gp)
	}

	// The caller's token never reaches an upstream.
	for _, rec := range []*authRecorder{recA, recB} {
		rec.mu.Lock()
		for _, h := range rec.seen {
			if strings.Contains(h, "caller-secret-token") {
				t.Errorf("upstream received the caller's Authorization header %q", h)
			}
		}
		if len(rec.seen) == 0 {
			t.Error("upstream saw no requests")
		}
		rec.mu.Unlock()
	}
}

func TestRelaySamplingElicitationProgress(t *testing.T) {
	url, _ := httpUpstream(t, "up")
	_, gw := startGateway(t, &config.Config{Upstreams: []config.Upstream{{Name: "up", URL: url, Prefix: ptr("")}}})
	var mu sync.Mutex
	var progress []float64
	cs := connect(t, gw, &mcp.ClientOptions{
		CreateMessageHandler: func(ctx context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Role: mcp.RoleAssistant, Model: "m", Content: []mcp.Content{&mcp.TextContent{Text: "sampled"}}}, nil
		},
		ElicitationHandler: func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: mcp.ElicitActionAccept, Content: map[string]any{"n": "zed"}}, nil
		},
	})
	if got := callText(t, cs, "ask"); got != "up:sampled:zed" {
		t.Errorf("ask = %q", got)
	}
	ctx := mcp.WithProgress(context.Background(), func(p *mcp.ProgressNotificationParams) {
		mu.Lock()
		progress = append(progress, p.Progress)
		mu.Unlock()
	})
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "whoami"})
	if err != nil || res.Content[0].(*mcp.TextContent).Text != "up" {
		t.Fatalf("whoami: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(progress) != 2 || progress[1] != 2 {
		t.Errorf("progress = %v, want [1 2] before the result", progress)
	}
}

func TestCancellationRelayed(t *testing.T) {
	url, _ := httpUpstream(t, "up")
	_, gw := startGateway(t, &config.Config{Upstreams: []config.Upstream{{Name: "up", URL: url, Prefix: ptr("")}}})
	cs := connect(t, gw, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "hang"})
	if err == nil {
		t.Fatal("hang returned")
	}
	// The gateway and the upstream stay usable.
	if got := callText(t, cs, "whoami"); got != "up" {
		t.Errorf("after cancel: %q", got)
	}
}

func TestStdioUpstreamCrash(t *testing.T) {
	url, _ := httpUpstream(t, "steady")
	_, gw := startGateway(t, &config.Config{Upstreams: []config.Upstream{
		stdioUpstream("fragile"),
		{Name: "steady", URL: url},
	}})
	cs := connect(t, gw, nil)
	if got := callText(t, cs, "fragile_whoami"); got != "fragile" {
		t.Fatalf("fragile_whoami = %q", got)
	}
	start := time.Now()
	_, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "fragile_crash"})
	elapsed := time.Since(start)
	var we *jsonrpc.Error
	if !errors.As(err, &we) {
		t.Fatalf("crash: got %v, want a JSON-RPC error", err)
	}
	if elapsed > time.Second {
		t.Errorf("the error took %s, want under a second", elapsed)
	}
	// The other upstream is unaffected.
	if got := callText(t, cs, "steady_whoami"); got != "steady" {
		t.Errorf("steady_whoami = %q", got)
	}
	// The stdio upstream is restarted.
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "fragile_whoami"})
		if err == nil && !res.IsError && res.Content[0].(*mcp.TextContent).Text == "fragile" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fragile upstream not restarted: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRawJSONPassthrough(t *testing.T) {
	// Unknown fields in results survive the gateway.
	s := mcp.NewServer(&mcp.Implementation{Name: "x", Version: "1"}, nil)
	s.AddTool(&mcp.Tool{Name: "t", Meta: mcp.Meta{"vendor/x": "y"}}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Meta: mcp.Meta{"vendor/trace": "abc"}, Content: []mcp.Content{&mcp.TextContent{Text: "ok"}}}, nil
	})
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(srv.Close)
	_, gw := startGateway(t, &config.Config{Upstreams: []config.Upstream{{Name: "x", URL: srv.URL, Prefix: ptr("")}}})
	cs := connect(t, gw, nil)
	raw, err := cs.CallRaw(context.Background(), mcp.MethodToolsCall, jsontext.Value(`{"name":"t"}`))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Meta map[string]any `json:"_meta"`
	}
	if err := json.Unmarshal(raw, &got); err != nil || got.Meta["vendor/trace"] != "abc" {
		t.Errorf("result _meta lost: %s", raw)
	}
	lt, err := cs.ListTools(context.Background(), nil)
	if err != nil || lt.Tools[0].Meta["vendor/x"] != "y" {
		t.Errorf("tool _meta lost: %v %+v", err, lt)
	}
}
