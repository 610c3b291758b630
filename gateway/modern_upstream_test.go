package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/gateway/config"
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
	if os.Getenv("MCPGATE_SKIP_TSCLIENT") != "" {
		t.Skip("MCPGATE_SKIP_TSCLIENT is set")
	}
	if testing.Short() {
		t.Skip("skipped in -short mode: it runs npm and Node")
	}
	node := os.Getenv("MCPGATE_NODE")
	var err error
	if node == "" {
		node, err = exec.LookPath("node")
	}
	npm := ""
	if err == nil {
		npm, err = exec.LookPath("npm")
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("node and npm are required in CI: %v", err)
		}
		t.Skipf("node or npm not found (%v): install Node.js >= 20 with npm", err)
	}
	var files [2][]byte
	for i, name := range []string{"package.json", "package-lock.json"} {
		if files[i], err = os.ReadFile(filepath.Join(tsServerDir, name)); err != nil {
			t.Fatal(err)
		}
	}
	h := sha256.New()
	h.Write(files[0])
	h.Write([]byte{0})
	h.Write(files[1])
	root := os.Getenv("MCPGATE_TSCLIENT_CACHE")
	if root == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			t.Fatalf("no cache folder (set MCPGATE_TSCLIENT_CACHE): %v", err)
		}
		root = filepath.Join(cache, "mcpgate-tsclient")
	}
	// The same folder as mcp's interop test uses.
	dir := filepath.Join(root, "server2026-"+hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@modelcontextprotocol", "server", "package.json")); err != nil {
		if err := os.MkdirAll(root, 0o755); err != nil {
			t.Fatal(err)
		}
		stage, err := os.MkdirTemp(root, ".stage-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(stage)
		for i, name := range []string{"package.json", "package-lock.json"} {
			if err := os.WriteFile(filepath.Join(stage, name), files[i], 0o644); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error")
		cmd.Dir = stage
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci: %v\n%s", err, out)
		}
		os.Chmod(stage, 0o755)
		if err := os.Rename(stage, dir); err != nil {
			if _, serr := os.Stat(filepath.Join(dir, "node_modules")); serr != nil {
				t.Fatal(err)
			}
		}
	}
	script, err := os.ReadFile(filepath.Join(tsServerDir, "server.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	// A private copy: the mcp package's test may write its own at once.
	scriptPath := filepath.Join(dir, "server-gateway-test.mjs")
	if err := os.WriteFile(scriptPath, script, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, scriptPath)
	cmd.Dir = dir
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	port := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), "LISTENING "); ok {
				port <- p
			}
		}
		close(port)
	}()
	select {
	case p, ok := <-port:
		if !ok {
			t.Fatal("the TypeScript server exited before listening")
		}
		return "http://127.0.0.1:" + p + "/mcp"
	case <-time.After(60 * time.Second):
		t.Fatal("the TypeScript server did not start within 60s")
	}
	return ""
}
