package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/mcp"
)

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServe runs "mcpgate serve" in front of an upstream over Streamable
// HTTP, calls a tool through it, and shuts it down.
func TestServe(t *testing.T) {
	up := mcp.NewServer(&mcp.Implementation{Name: "up", Version: "1"}, nil)
	up.AddTool(&mcp.Tool{Name: "ping_tool", InputSchema: jsontext.Value(`{"type":"object"}`)}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "pong"}}}, nil
	})
	hs := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up }, nil))
	defer hs.Close()

	srv := serveYAML(t, "data_dir: ./data\nupstreams:\n  - name: up\n    url: "+hs.URL+"\n  - name: broken\n    url: http://127.0.0.1:1/mcp\n")
	cancel, stderr, done, endpoint := srv.cancel, srv.stderr, srv.done, srv.endpoint
	ctx := context.Background()
	waitForOutput(t, stderr, done, "catalogue:")
	out := stderr.String()
	for _, w := range []string{"up      connecting", "up      ready", "broken  failed: ", "catalogue: 1 tool, 0 prompts"} {
		if !strings.Contains(out, w) {
			t.Errorf("progress does not contain %q:\n%s", w, out)
		}
	}

	cs, err := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil).Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "up_ping_tool"})
	if err != nil {
		t.Fatal(err)
	}
	if tc, ok := r.Content[0].(*mcp.TextContent); !ok || tc.Text != "pong" {
		t.Errorf("result = %+v", r.Content)
	}
	cs.Close()

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code %d:\n%s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop after the context was cancelled")
	}
	if out := stderr.String(); !strings.Contains(out, "shutting down") || !strings.Contains(out, "stopped") {
		t.Errorf("shutdown not reported:\n%s", out)
	}
}

// TestServeDemoOverStdio runs the quickstart's setup: the gateway in front of
// examples/demo-server over stdio, with an empty prefix.
func TestServeDemoOverStdio(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the demo server")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "demo-server")
	build := exec.Command("go", "build", "-o", bin, "../../examples/demo-server")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the demo server: %v\n%s", err, out)
	}
	servers := filepath.Join(dir, "servers.json")
	js := `{"mcpServers": {"demo": {"command": "${workspaceFolder}/demo-server", "env": {"DEMO_GREETING": "Hey"}}}}`
	if err := os.WriteFile(servers, []byte(js), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--servers", servers, "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data")}, &stdout, &stderr)
	}()
	endpoint := waitForEndpoint(t, &stderr, done)
	waitForOutput(t, &stderr, done, "catalogue:")
	if out := stderr.String(); !strings.Contains(out, "catalogue: 4 tools, 1 prompt, 1 resource, 1 resource template") {
		t.Errorf("catalogue summary missing:\n%s", out)
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil).Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	r, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "demo_echo", Arguments: jsontext.Value(`{"text":"through the gateway"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if tc, ok := r.Content[0].(*mcp.TextContent); !ok || tc.Text != "through the gateway" {
		t.Errorf("echo = %+v", r.Content)
	}
	rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "demo://greeting/Ada"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rr.Contents) != 1 || rr.Contents[0].Text != "Hey, Ada!" {
		t.Errorf("greeting = %+v (env not passed?)", rr.Contents)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code %d:\n%s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
}

// waitForOutput waits for serve to print want.
func waitForOutput(t *testing.T, stderr *syncBuffer, done <-chan int, want string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(stderr.String(), want) {
			return
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited with %d:\n%s", code, stderr.String())
		default:
		}
	}
	t.Fatalf("serve did not print %q:\n%s", want, stderr.String())
}

// waitForEndpoint waits for serve to print its URL and returns it.
func waitForEndpoint(t *testing.T, stderr *syncBuffer, done <-chan int) string {
	t.Helper()
	re := regexp.MustCompile(`serving MCP at (http://\S+/mcp)`)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(stderr.String()); m != nil {
			return m[1]
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited with %d:\n%s", code, stderr.String())
		default:
		}
	}
	t.Fatalf("serve did not report its URL:\n%s", stderr.String())
	return ""
}

// served is a "mcpgate serve" started by serveYAML.
type served struct {
	cancel   context.CancelFunc // stops it
	stderr   *syncBuffer        // its progress output
	done     chan int           // its exit code
	endpoint string             // its /mcp URL
	config   string             // its configuration file
}

// serveYAML runs "mcpgate serve" with the configuration yaml (written to
// a temporary directory) on a free loopback port, and waits until it
// listens. The test's cleanup stops it.
func serveYAML(t *testing.T, yaml string) *served {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "gw.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s := &served{cancel: cancel, stderr: &syncBuffer{}, done: make(chan int, 1), config: cfg}
	go func() {
		var stdout syncBuffer
		s.done <- run(ctx, []string{"serve", "--config", cfg, "--listen", "127.0.0.1:0", "--log-level", "error"}, &stdout, s.stderr)
	}()
	s.endpoint = waitForEndpoint(t, s.stderr, s.done)
	return s
}
