package app_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/app"
	"github.com/mcpgate/mcpgate/mcp"
)

// TestObservability: by default /metrics is on the gateway's handler; with
// otlp_traces_endpoint, the spans of requests reach the collector by the
// time Close returns.
func TestObservability(t *testing.T) {
	var mu sync.Mutex
	var posts []string
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		posts = append(posts, r.URL.Path+" "+string(body))
		mu.Unlock()
	}))
	defer collector.Close()

	cfg := testConfig(t)
	cfg.Server = &config.Server{StartupWait: -1}
	cfg.Observability = &config.Observability{OTLPTracesEndpoint: collector.URL}
	ctx := context.Background()
	a, err := app.New(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Gateway.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Gateway.Handler())
	defer srv.Close()

	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil).Connect(cctx, &mcp.StreamableClientTransport{Endpoint: srv.URL + "/mcp"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CallTool(cctx, &mcp.CallToolParams{Name: "traced-tool"}); err == nil {
		t.Error("a tool of an unreachable upstream: no error")
	}
	cs.Close()

	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `mcpgate_requests_total{decision="deny",method="tools/call",outcome="unknown",upstream=""} 1`) {
		t.Errorf("/metrics: %d\n%s", resp.StatusCode, body)
	}

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	found := false
	for _, p := range posts {
		if strings.HasPrefix(p, "/v1/traces ") && strings.Contains(p, "tools/call") {
			found = true
		}
	}
	if !found {
		t.Errorf("no tools/call span reached the collector (%d posts)", len(posts))
	}
}
