package gateway

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/npmtest"
	"github.com/mcpgate/mcpgate/mcp"
)

// modernOnly wraps an mcp handler so that it refuses initialize as a
// 2026-07-28-only server does (400, -32022 naming 2026-07-28 only).
type modernOnly struct{ h http.Handler }

func (m modernOnly) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if bytes.Contains(body, []byte(`"method":"initialize"`)) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"jsonrpc":"2.0","id":1,"error":{"code":-32022,"message":"Unsupported protocol version","data":{"supported":["2026-07-28"],"requested":"2025-11-25"}}}`)
			return
		}
	}
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	m.h.ServeHTTP(w, r)
}

// TestModernOnlyUpstream: the gateway reaches an upstream that refuses
// initialize, by connecting to it with 2026-07-28; list and call work, and
// the upstream's MRTR elicitation is relayed to the downstream client as an
// elicitation/create request.
func TestModernOnlyUpstream(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "modern-up", Version: "1"}, nil)
	s.AddTool(&mcp.Tool{Name: "echo"}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "echo " + string(req.Params.Arguments)}}}, nil
	})
	s.AddTool(&mcp.Tool{Name: "ask"}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		r, err := req.Session.ElicitInput(ctx, "n", &mcp.ElicitParams{Message: "n?", RequestedSchema: &mcp.ElicitationSchema{
			Properties: map[string]mcp.PrimitiveSchemaDefinition{"n": {Type: "string"}}}})
		if err != nil {
			return nil, err
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "got " + r.Content["n"].(string)}}}, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	srv := httptest.NewServer(modernOnly{h})
	t.Cleanup(func() { srv.Close(); h.Close() })

	_, gw := startGateway(t, &config.Config{Upstreams: []config.Upstream{{Name: "up", URL: srv.URL, Prefix: ptr("")}}})
	cs := connect(t, gw, &mcp.ClientOptions{
		ElicitationHandler: func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: mcp.ElicitActionAccept, Content: map[string]any{"n": "zed"}}, nil
		},
	})
	checkModernUpstream(t, cs, map[string]string{"echo": "echo {\"x\":1}", "ask": "got zed"})
}

// checkModernUpstream lists the tools through the gateway and calls each
// named tool with {"x":1}, checking its text.
func checkModernUpstream(t *testing.T, cs *mcp.ClientSession, want map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lt, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, tl := range lt.Tools {
		have[tl.Name] = true
	}
	for name, text := range want {
		if !have[name] {
			t.Errorf("tool %s not listed (have %v)", name, have)
			continue
		}
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: jsontext.Value(`{"x":1}`)})
		if err != nil {
			t.Fatalf("call %s: %v", name, err)
		}
		if res.IsError || len(res.Content) == 0 {
			t.Fatalf("call %s: %+v", name, res)
		}
		if got := res.Content[0].(*mcp.TextContent).Text; got != text {
			t.Errorf("call %s = %q, want %q", name, got, text)
		}
	}
}

// TestModernOnlyUpstreamTypeScript puts the gateway in front of the
// TypeScript SDK 2.4.0 server with legacy: 'reject'
// (mcp/testdata/tsserver2026): list and call work through the gateway,
// and the server's MRTR elicitation reaches the downstream client.
func TestModernOnlyUpstreamTypeScript(t *testing.T) {
	url := startTSModernServer(t)
	_, gw := startGateway(t, &config.Config{Upstreams: []config.Upstream{{Name: "ts", URL: url, Prefix: ptr("")}}})
	cs := connect(t, gw, &mcp.ClientOptions{
		ElicitationHandler: func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: mcp.ElicitActionAccept, Content: map[string]any{"name": "Ada"}}, nil
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "add", Arguments: jsontext.Value(`{"a":2,"b":3}`)})
	if err != nil || res.IsError || res.Content[0].(*mcp.TextContent).Text != "5" {
		t.Fatalf("add through the gateway: %v %+v", err, res)
	}
	checkModernUpstream(t, cs, map[string]string{"greet": "hello Ada (state round-1)"})
}

const tsServerDir = "../mcp/testdata/tsserver2026"

// startTSModernServer installs (npm ci, cached) and runs the TypeScript
// server of mcp/testdata/tsserver2026, and returns its endpoint. It skips
// when node or npm is missing outside CI.
func startTSModernServer(t *testing.T) string {
	t.Helper()
	env := npmtest.Require(t)
	work := npmtest.Workdir(t, env.Install(t, tsServerDir), filepath.Join(tsServerDir, "server.mjs"))
	cmd := exec.Command(env.Node, "server.mjs")
	cmd.Dir = work
	cmd.Stderr = &npmtest.LogWriter{T: t, Prefix: "ts server"}
	return npmtest.StartServer(t, cmd, "TypeScript server")
}
