package gateway

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/store"
)

// holdUpstream serves a tool "hold" that signals entered and waits for
// release (or its context), and a tool "quick".
func holdUpstream(t *testing.T) (url string, entered chan struct{}, release func()) {
	t.Helper()
	entered = make(chan struct{}, 16)
	gate := make(chan struct{})
	var once sync.Once
	s := mcp.NewServer(&mcp.Implementation{Name: "hold", Version: "1"}, nil)
	s.AddTool(&mcp.Tool{Name: "hold"}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		entered <- struct{}{}
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "held"}}}, nil
	})
	s.AddTool(&mcp.Tool{Name: "quick"}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "quick"}}}, nil
	})
	url, _ = httpUpstreamServer(t, s)
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	return url + "/mcp", entered, release
}

// overloadGateway starts a gateway with an audit log in memory and the
// given server section, principals named by the X-Test-User header.
func overloadGateway(t *testing.T, upstreamURL string, srv *config.Server) (string, *store.AuditMemory) {
	t.Helper()
	st := store.NewAuditMemory()
	alog, err := audit.New(st, &audit.Options{KeyPath: filepath.Join(t.TempDir(), "audit.key")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alog.Close() })
	g, err := New(&config.Config{Server: srv, Upstreams: []config.Upstream{{Name: "h", URL: upstreamURL}}}, &Options{
		Principal: func(ctx context.Context) string { s, _ := ctx.Value(userKey{}).(string); return s },
		Audit:     alog,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return userHeaderGateway(t, g), st
}

// rawPost sends one MCP request body to the gateway as user, in session
// sid, and returns the response status, Retry-After and body.
func rawPost(t *testing.T, url, user, sid, body string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	req.Header.Set("X-Test-User", user)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), string(b)
}

// TestOverloadSheds: with max_inflight 2 and two calls held in progress, a
// flood of further requests gets 503 with Retry-After at once, /healthz
// still answers, the held calls complete once released, a later call is
// admitted again, and every admitted call has its audit records.
func TestOverloadSheds(t *testing.T) {
	up, entered, release := holdUpstream(t)
	url, st := overloadGateway(t, up, &config.Server{MaxInflight: 2, MaxInflightPerPrincipal: -1})
	cs := connectAs(t, url, "alice")

	var wg sync.WaitGroup
	held := make([]error, 2)
	for i := range held {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, held[i] = cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "h_hold"})
		}()
	}
	for range held {
		select {
		case <-entered:
		case <-time.After(30 * time.Second):
			t.Fatal("the held calls did not reach the upstream")
		}
	}

	const flood = 50
	for i := range flood {
		status, retry, body := rawPost(t, url, "alice", cs.ID(), `{"jsonrpc":"2.0","id":1000,"method":"tools/call","params":{"name":"h_quick"}}`)
		if status != http.StatusServiceUnavailable || retry == "" || !strings.Contains(body, "overloaded") {
			t.Fatalf("flood request %d: status %d, Retry-After %q, body %s", i, status, retry, body)
		}
	}
	if code := getJSON(t, strings.TrimSuffix(url, "/mcp")+"/healthz", nil); code != http.StatusOK {
		t.Fatalf("/healthz under overload = %d", code)
	}
	release()
	wg.Wait()
	for i, err := range held {
		if err != nil {
			t.Fatalf("held call %d: %v", i, err)
		}
	}
	if got := callText(t, cs, "h_quick"); got != "quick" {
		t.Fatalf("call after the flood = %q", got)
	}
	// Every admitted call (two held, one quick) has its two records
	// (decided, completed); none of the refused ones reached the
	// admission stage.
	calls := records(t, st, mcp.MethodToolsCall)
	targets := map[string]int{}
	for _, r := range calls {
		targets[r.Target]++
	}
	if targets["hold"] != 4 || targets["quick"] != 2 || len(calls) != 6 {
		t.Fatalf("audit records of tools/call: %v (%d records)", targets, len(calls))
	}
}

// TestOverloadPerPrincipal: one principal at its max_inflight_per_principal
// gets 429 with Retry-After, while another principal's call goes through.
func TestOverloadPerPrincipal(t *testing.T) {
	up, entered, release := holdUpstream(t)
	url, _ := overloadGateway(t, up, &config.Server{MaxInflightPerPrincipal: 1})
	alice := connectAs(t, url, "alice")
	bob := connectAs(t, url, "bob")
	done := make(chan error, 1)
	go func() {
		_, err := alice.CallTool(context.Background(), &mcp.CallToolParams{Name: "h_hold"})
		done <- err
	}()
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the held call did not reach the upstream")
	}
	status, retry, body := rawPost(t, url, "alice", alice.ID(), `{"jsonrpc":"2.0","id":1000,"method":"tools/call","params":{"name":"h_quick"}}`)
	if status != http.StatusTooManyRequests || retry == "" || !strings.Contains(body, "this principal already has 1 requests") {
		t.Fatalf("alice's second request: status %d, Retry-After %q, body %s", status, retry, body)
	}
	if got := callText(t, bob, "h_quick"); got != "quick" {
		t.Fatalf("bob's call = %q", got)
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
