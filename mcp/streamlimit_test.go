package mcp

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestStreamLimits: the streams one session, one principal and one
// address hold open (GET streams and POST requests being answered) are
// bounded; one beyond gets 429 with Retry-After and a clear message, and
// another principal is not affected.
func TestStreamLimits(t *testing.T) {
	entered := make(chan struct{}, 8)
	gate := make(chan struct{})
	srv := NewServer(&Implementation{Name: "s", Version: "1"}, nil)
	srv.AddTool(&Tool{Name: "block"}, func(ctx context.Context, req *CallToolRequest) (*CallToolResult, error) {
		entered <- struct{}{}
		select {
		case <-gate:
		case <-ctx.Done():
		}
		return &CallToolResult{}, nil
	})
	h := NewStreamableHTTPHandler(func(*http.Request) *Server { return srv }, &StreamableHTTPOptions{
		MaxStreamsPerSession:   2,
		MaxStreamsPerPrincipal: 3,
		MaxStreamsPerAddress:   -1,
		SessionPrincipal:       func(r *http.Request) string { return r.Header.Get("X-Who") },
	})
	defer h.Close()
	ts := httptest.NewServer(h)
	defer ts.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer close(gate) // first of all: the held calls end, and the server can close

	send := func(method, who, sid, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, ts.URL, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("X-Who", who)
		if sid != "" {
			req.Header.Set("Mcp-Session-Id", sid)
			req.Header.Set("Mcp-Protocol-Version", LatestProtocolVersion)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	readAll := func(resp *http.Response) string {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return string(b)
	}
	session := func(who string) string {
		t.Helper()
		resp := send("POST", who, "", fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":%q,"capabilities":{},"clientInfo":{"name":"c","version":"1"}}}`, LatestProtocolVersion))
		readAll(resp)
		sid := resp.Header.Get("Mcp-Session-Id")
		if resp.StatusCode != http.StatusOK || sid == "" {
			t.Fatalf("initialize: %d", resp.StatusCode)
		}
		readAll(send("POST", who, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`))
		return sid
	}
	// hold starts a call that blocks and waits until it runs.
	hold := func(who, sid string, id int) {
		t.Helper()
		go func() {
			resp, err := http.DefaultClient.Do(func() *http.Request {
				req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL, strings.NewReader(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"block"}}`, id)))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				req.Header.Set("X-Who", who)
				req.Header.Set("Mcp-Session-Id", sid)
				req.Header.Set("Mcp-Protocol-Version", LatestProtocolVersion)
				return req
			}())
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
		select {
		case <-entered:
		case <-time.After(30 * time.Second):
			t.Fatal("the held call did not start")
		}
	}
	refused := func(resp *http.Response, want string) {
		t.Helper()
		body := readAll(resp)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" || !strings.Contains(body, want) {
			t.Fatalf("got %d, Retry-After %q, %s; want 429 with %q", resp.StatusCode, resp.Header.Get("Retry-After"), body, want)
		}
	}

	s1 := session("alice")
	get := send("GET", "alice", s1, "") // the standalone stream: 1 of 2
	if get.StatusCode != http.StatusOK {
		t.Fatalf("GET = %d", get.StatusCode)
	}
	defer get.Body.Close()
	hold("alice", s1, 2) // 2 of 2
	refused(send("POST", "alice", s1, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"block"}}`), "this session already has 2 requests and streams open")
	// Notifications are not streams: still accepted.
	if resp := send("POST", "alice", s1, `{"jsonrpc":"2.0","method":"notifications/roots/list_changed"}`); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("notification = %d", resp.StatusCode)
	}

	s2 := session("alice")
	hold("alice", s2, 4) // alice's third
	refused(send("GET", "alice", s2, ""), "this principal already has 3 requests and streams open")

	// Bob is not affected.
	s3 := session("bob")
	if resp := send("GET", "bob", s3, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("bob's GET = %d", resp.StatusCode)
	} else {
		resp.Body.Close()
	}
}
