package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/mcp"
)

// roundRobin is a reverse proxy that sends every request to the next of
// its backends in turn.
type roundRobin struct {
	backends []*url.URL
	next     atomic.Uint64
}

func (rr *roundRobin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u := rr.backends[(rr.next.Add(1)-1)%uint64(len(rr.backends))]
	p := &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.Out.Host = u.Host },
		FlushInterval: -1,
	}
	p.ServeHTTP(w, r)
}

// TestReplicasRoundRobin runs three gateways on one PostgreSQL database
// behind a proxy that sends every request to the next replica: a client
// initializes through one and lists and calls tools through the others
// (each replica continues the session from its record); a session
// deleted through one replica is refused by all; and a user revoked from
// the command line is refused by every replica. The time from the
// revocation to the last replica refusing is logged.
func TestReplicasRoundRobin(t *testing.T) {
	_, dbURL := newPostgres(t)
	up := mcp.NewServer(&mcp.Implementation{Name: "up", Version: "1"}, nil)
	up.AddTool(&mcp.Tool{Name: "ping_tool", InputSchema: jsontext.Value(`{"type":"object"}`)}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "pong"}}}, nil
	})
	hs := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up }, nil))
	defer hs.Close()

	t.Setenv(datadir.DatabaseURLEnv, "")
	dir := t.TempDir()
	yaml := "data_dir: " + dir + "\ndatabase_url: '" + dbURL + "'\nupstreams:\n  - name: up\n    url: " + hs.URL + "\n"
	rr := &roundRobin{}
	var replicas []*served
	for range 3 {
		r := serveYAML(t, yaml)
		waitForOutput(t, r.stderr, r.done, "catalogue:")
		replicas = append(replicas, r)
		u, err := url.Parse(r.endpoint)
		if err != nil {
			t.Fatal(err)
		}
		rr.backends = append(rr.backends, u)
	}
	proxy := httptest.NewServer(rr)
	defer proxy.Close()
	ctx := context.Background()
	connect := func() *mcp.ClientSession {
		t.Helper()
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil).Connect(ctx,
			&mcp.StreamableClientTransport{Endpoint: proxy.URL + "/mcp", MaxRetries: -1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}

	// Every request goes to the next replica: the session continues.
	cs := connect()
	defer cs.Close()
	for i := range 6 {
		if _, err := cs.ListTools(ctx, nil); err != nil {
			t.Fatalf("tools/list %d: %v", i, err)
		}
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "up_ping_tool"})
		if err != nil || res.IsError {
			t.Fatalf("tools/call %d: %+v, %v", i, res, err)
		}
	}

	// A session deleted through one replica is refused by every one.
	other := connect()
	if _, err := other.ListTools(ctx, nil); err != nil {
		t.Fatal(err)
	}
	id := other.ID()
	other.Close() // DELETE through the proxy
	for i, r := range replicas {
		waitStatus(t, r.endpoint, id, http.StatusNotFound, 30*time.Second, "deleted session on replica "+string(rune('0'+i)))
	}

	// A user revoked from the command line is refused by every replica.
	start := time.Now()
	if code, out, errOut := execute(t, "revoke", "user", "anonymous", "--reason", "test", "--config", replicas[0].config); code != 0 {
		t.Fatalf("revoke: %d %s %s", code, out, errOut)
	}
	revoked := time.Now()
	var last time.Duration
	for i, r := range replicas {
		waitStatus(t, r.endpoint, cs.ID(), http.StatusNotFound, 30*time.Second, "revoked session on replica "+string(rune('0'+i)))
		last = max(last, time.Since(revoked))
	}
	t.Logf("revocation from the command line (took %s) refused by all 3 replicas %s after it returned", revoked.Sub(start).Round(time.Millisecond), last.Round(time.Millisecond))
	if last > 5*time.Second {
		t.Errorf("the revocation took %s to reach every replica, want well under 5 s", last)
	}
}

// waitStatus polls endpoint with a tools/list on session id until it
// answers want, at most for limit.
func waitStatus(t *testing.T, endpoint, id string, want int, limit time.Duration, what string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Session-Id", id)
		req.Header.Set("Mcp-Protocol-Version", mcp.LatestProtocolVersion)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: status %d after %s, want %d", what, resp.StatusCode, limit, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
