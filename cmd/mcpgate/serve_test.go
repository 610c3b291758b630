//go:build mcpgate_gateway

package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
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

	dir := t.TempDir()
	cfg := filepath.Join(dir, "gw.yaml")
	yaml := "data_dir: ./data\nupstreams:\n  - name: up\n    url: " + hs.URL + "\n  - name: broken\n    url: http://127.0.0.1:1/mcp\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--config", cfg, "--listen", "127.0.0.1:0", "--log-level", "error"}, &stdout, &stderr)
	}()

	re := regexp.MustCompile(`serving MCP at (http://\S+/mcp)`)
	var endpoint string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(stderr.String()); m != nil {
			endpoint = m[1]
			break
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited with %d:\n%s", code, stderr.String())
		default:
		}
	}
	if endpoint == "" {
		t.Fatalf("serve did not report its URL:\n%s", stderr.String())
	}
	out := stderr.String()
	for _, w := range []string{"up      connecting", "up      ready", "broken  failed: "} {
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
