package mcp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	gosdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate/jsonrpc"
)

func newSSETestServer(t *testing.T, opts *SSEOptions) (*Server, *httptest.Server) {
	t.Helper()
	srv := NewServer(&Implementation{Name: "legacy", Version: "1"}, nil)
	srv.AddTool(&Tool{Name: "echo", Description: "echoes", InputSchema: jsontext.Value(`{"type":"object"}`)}, func(ctx context.Context, req *CallToolRequest) (*CallToolResult, error) {
		if err := req.Progress(ctx, 1, 1, ""); err != nil {
			return nil, err
		}
		return &CallToolResult{Content: []Content{&TextContent{Text: "echo"}}}, nil
	})
	ts := httptest.NewServer(NewSSEHandler(func(*http.Request) *Server { return srv }, opts))
	t.Cleanup(ts.Close)
	return srv, ts
}

func TestSSEHandler(t *testing.T) {
	srv, ts := newSSETestServer(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/sse", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	ch := shEvents(resp.Body)
	ev, ok := shNext(t, ch)
	if !ok || ev.event != "endpoint" {
		t.Fatalf("first event %+v, want endpoint", ev)
	}
	u, err := url.Parse(ev.data)
	if err != nil || u.Path != "/sse" || u.Query().Get("sessionId") == "" {
		t.Fatalf("endpoint %q", ev.data)
	}
	endpoint := ts.URL + ev.data

	post := func(body string, hdr ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", endpoint, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		shReadAll(t, resp)
		return resp
	}
	if r := post(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"old","version":"1"}}}`); r.StatusCode != 202 {
		t.Fatalf("initialize POST: %d", r.StatusCode)
	}
	_, msg := shNextMessage(t, ch)
	if r, ok := msg.(*jsonrpc.Response); !ok || r.Error != nil || !strings.Contains(string(r.Result), `"2024-11-05"`) {
		t.Fatalf("initialize response %+v", msg)
	}
	post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	if r := post(callBody(2, "echo", "t")); r.StatusCode != 202 {
		t.Fatalf("tools/call POST: %d", r.StatusCode)
	}
	_, msg = shNextMessage(t, ch)
	if n, ok := msg.(*jsonrpc.Request); !ok || n.Method != NotificationProgress {
		t.Fatalf("got %+v, want progress", msg)
	}
	_, msg = shNextMessage(t, ch)
	if got := shResultText(t, msg); got != "echo" {
		t.Errorf("result %q", got)
	}

	// Errors.
	for _, tt := range []struct {
		body   string
		hdr    []string
		status int
	}{
		{`{"jsonrpc":"2.0",`, nil, 400},
		{`[]`, nil, 400},
		{`{"jsonrpc":"2.0","id":3,"method":"ping"}`, []string{"Content-Type", "text/plain"}, 415},
	} {
		if r := post(tt.body, tt.hdr...); r.StatusCode != tt.status {
			t.Errorf("POST %s: %d, want %d", tt.body, r.StatusCode, tt.status)
		}
	}
	for _, target := range []string{ts.URL + "/sse?sessionId=nope", ts.URL + "/sse"} {
		req, _ := http.NewRequest("POST", target, strings.NewReader(`{"jsonrpc":"2.0","id":3,"method":"ping"}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		shReadAll(t, resp)
		if want := map[bool]int{true: 404, false: 400}[strings.Contains(target, "nope")]; resp.StatusCode != want {
			t.Errorf("POST %s: %d, want %d", target, resp.StatusCode, want)
		}
	}

	// The client going away ends the session.
	if n := len(srv.Sessions()); n != 1 {
		t.Fatalf("%d sessions", n)
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for len(srv.Sessions()) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(srv.Sessions()); n != 0 {
		t.Errorf("%d sessions after the stream closed", n)
	}
	if r := post(`{"jsonrpc":"2.0","id":4,"method":"ping"}`); r.StatusCode != 404 {
		t.Errorf("POST after the stream closed: %d, want 404", r.StatusCode)
	}
}

func TestSSEHandlerOriginAndEndpoint(t *testing.T) {
	_, ts := newSSETestServer(t, &SSEOptions{Endpoint: "/messages"})
	req, _ := http.NewRequest("GET", ts.URL, nil)
	req.Host = "evil.example.com"
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	shReadAll(t, resp)
	if resp.StatusCode != 403 {
		t.Errorf("evil host: %d, want 403", resp.StatusCode)
	}

	req, _ = http.NewRequest("GET", ts.URL, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err = ts.Client().Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	ev, _ := shNext(t, shEvents(resp.Body))
	if ev.event != "endpoint" || !strings.HasPrefix(ev.data, "/messages?sessionId=") {
		t.Errorf("endpoint event %+v", ev)
	}

	req, _ = http.NewRequest("DELETE", ts.URL, nil)
	resp, err = ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	shReadAll(t, resp)
	if resp.StatusCode != 405 {
		t.Errorf("DELETE: %d, want 405", resp.StatusCode)
	}
}

func TestSSEHandlerClose(t *testing.T) {
	srv := NewServer(&Implementation{Name: "legacy", Version: "1"}, nil)
	h := NewSSEHandler(func(*http.Request) *Server { return srv }, &SSEOptions{KeepAlive: 10 * time.Millisecond})
	ts := httptest.NewServer(h)
	defer ts.Close()
	resp, err := ts.Client().Get(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	ch := shEvents(resp.Body)
	if ev, _ := shNext(t, ch); ev.event != "endpoint" {
		t.Fatalf("first event %+v", ev)
	}
	time.Sleep(50 * time.Millisecond) // a few keep-alive comments go by
	h.Close()
	for {
		if _, ok := shNext(t, ch); !ok {
			break
		}
	}
	if n := len(srv.Sessions()); n != 0 {
		t.Errorf("%d sessions after Close", n)
	}
}

// TestSSEHandlerGoSDKClient runs the official go-sdk's HTTP+SSE client
// against the handler.
func TestSSEHandlerGoSDKClient(t *testing.T) {
	srv, ts := newSSETestServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := gosdk.NewClient(&gosdk.Implementation{Name: "old", Version: "1"}, nil).Connect(ctx, &gosdk.SSEClientTransport{Endpoint: ts.URL + "/sse"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := cs.CallTool(ctx, &gosdk.CallToolParams{Name: "echo", Arguments: map[string]any{}})
	if err != nil || len(res.Content) != 1 || res.Content[0].(*gosdk.TextContent).Text != "echo" {
		t.Fatalf("CallTool: %+v, %v", res, err)
	}
	if err := cs.Ping(ctx, nil); err != nil {
		t.Fatal(err)
	}
	cs.Close()
	deadline := time.Now().Add(5 * time.Second)
	for len(srv.Sessions()) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(srv.Sessions()); n != 0 {
		t.Errorf("%d sessions after the client closed", n)
	}
}
