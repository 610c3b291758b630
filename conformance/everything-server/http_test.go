package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/conformance/everything"
	"github.com/mcpgate/mcpgate/mcp"
)

// newHTTPFixture serves a fresh fixture server on a loopback httptest
// server and returns the endpoint URL.
func newHTTPFixture(t *testing.T) string {
	t.Helper()
	handler, h := newHandler(everything.NewServer(nil))
	srv := httptest.NewServer(handler)
	t.Cleanup(func() { h.Close(); srv.Close() })
	return srv.URL + endpointPath
}

func connectHTTP(t *testing.T, endpoint string, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "http-test", Version: "1.0.0"}, opts).
		Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// TestHTTPReconnection calls test_reconnection over HTTP: the tool closes
// its response stream, and the client gets the result by resuming the stream
// with GET and Last-Event-ID.
func firstText(t *testing.T, res *mcp.CallToolResult) string {
	t.Helper()
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			return tc.Text
		}
	}
	t.Fatalf("result has no text content: %#v", res.Content)
	return ""
}

func TestHTTPReconnection(t *testing.T) {
	cs := connectHTTP(t, newHTTPFixture(t), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_reconnection", Arguments: jsontext.Value(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	if got := firstText(t, res); got != everything.ReconnectionText {
		t.Errorf("text = %q, want %q", got, everything.ReconnectionText)
	}
}

// TestHTTPReconnectionStream checks the raw stream of test_reconnection: it
// is SSE, starts with a priming event with an id and a retry field, and
// ends without the result.
func TestHTTPReconnectionStream(t *testing.T) {
	endpoint := newHTTPFixture(t)
	sid := rawInitialize(t, endpoint)
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"test_reconnection","arguments":{}}}`
	resp := rawPost(t, endpoint, sid, body)
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("content type = %q, want text/event-stream", ct)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	stream := string(b)
	// The first event is the priming event: an id and no data.
	first := strings.SplitN(stream, "\n\n", 2)[0]
	hasID, hasData := false, false
	for _, line := range strings.Split(first, "\n") {
		name, value, _ := strings.Cut(line, ":")
		switch name {
		case "id":
			hasID = strings.TrimSpace(value) != ""
		case "data":
			hasData = strings.TrimSpace(value) != ""
		}
	}
	if !hasID || hasData {
		t.Errorf("first event %q is not a priming event (id, empty data)", first)
	}
	if !strings.Contains(stream, "retry:") {
		t.Errorf("stream has no retry field: %q", stream)
	}
	if strings.Contains(stream, everything.ReconnectionText) {
		t.Errorf("the result arrived on the POST stream, which should have been closed first: %q", stream)
	}
}

func rawPost(t *testing.T, endpoint, sid, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", mcp.LatestProtocolVersion)
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// rawInitialize opens a session with raw HTTP and returns its id.
func rawInitialize(t *testing.T, endpoint string) string {
	t.Helper()
	resp := rawPost(t, endpoint, "", `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	io.Copy(io.Discard, bufio.NewReader(resp.Body))
	resp.Body.Close()
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || sid == "" {
		t.Fatalf("initialize: status %d, session id %q", resp.StatusCode, sid)
	}
	resp = rawPost(t, endpoint, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("initialized: status %d, want 202", resp.StatusCode)
	}
	return sid
}

// TestHTTPNotificationsPrecedeResult checks that progress and log
// notifications arrive before the tool result over HTTP, as the suite needs.
func TestHTTPNotificationsPrecedeResult(t *testing.T) {
	var mu sync.Mutex
	var logs int
	cs := connectHTTP(t, newHTTPFixture(t), &mcp.ClientOptions{
		LoggingMessageHandler: func(context.Context, *mcp.ClientSession, *mcp.LoggingMessageParams) {
			mu.Lock()
			logs++
			mu.Unlock()
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cs.SetLoggingLevel(ctx, mcp.LoggingLevelDebug); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_tool_with_logging", Arguments: jsontext.Value(`{}`)}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if logs != 3 {
		t.Errorf("got %d log messages before the result, want 3", logs)
	}
	mu.Unlock()

	var progress []float64
	pctx := mcp.WithProgress(ctx, func(p *mcp.ProgressNotificationParams) {
		mu.Lock()
		progress = append(progress, p.Progress)
		mu.Unlock()
	})
	p := &mcp.CallToolParams{Name: "test_tool_with_progress", Arguments: jsontext.Value(`{}`)}
	p.Meta.SetProgressToken("progress-test-1")
	if _, err := cs.CallTool(pctx, p); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(progress) != 3 {
		t.Errorf("got progress %v before the result, want 3 notifications", progress)
	}
}

// TestHTTPDNSRebinding checks the Host/Origin protection the suite's
// dns-rebinding-protection scenario probes.
func TestHTTPDNSRebinding(t *testing.T) {
	endpoint := newHTTPFixture(t)
	port := endpoint[strings.LastIndex(endpoint, ":")+1 : strings.LastIndex(endpoint, "/")]
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"dns","version":"1"}}}`
	tests := []struct {
		host, origin string
		ok           bool
	}{
		{"evil.example.com", "http://evil.example.com", false},
		{"localhost:" + port, "http://localhost:" + port, true},
		{"127.0.0.1:" + port, "", true},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = tt.host
		if tt.origin != "" {
			req.Header.Set("Origin", tt.origin)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if ok := resp.StatusCode >= 200 && resp.StatusCode < 300; ok != tt.ok {
			t.Errorf("Host %s: status %d, want success %v", tt.host, resp.StatusCode, tt.ok)
		}
	}
}

// TestHTTPSessionLifecycle checks DELETE ends a session and later requests
// get 404.
func TestHTTPSessionLifecycle(t *testing.T) {
	endpoint := newHTTPFixture(t)
	sid := rawInitialize(t, endpoint)
	req, err := http.NewRequest(http.MethodDelete, endpoint, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("MCP-Protocol-Version", mcp.LatestProtocolVersion)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		t.Fatalf("DELETE: status %d", resp.StatusCode)
	}
	resp = rawPost(t, endpoint, sid, `{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}`)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("request on a deleted session: status %d, want 404", resp.StatusCode)
	}
}
