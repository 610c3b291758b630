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

	"github.com/mcpgate/mcpgate/jsonrpc"
)

// TestIOTransportOversizeResponseFailsCall: a response over the size limit
// fails the request it answers at once, with a clear error, instead of
// leaving the caller waiting for its timeout.
func TestIOTransportOversizeResponseFailsCall(t *testing.T) {
	conn, peerW, peerR := ctPipePeer(t, 1024, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go peerR.ReadBytes('\n') // the request (the pipe does not buffer)
	if err := conn.Write(ctx, &jsonrpc.Request{ID: jsonrpc.Int64ID(7), Method: "tools/call"}); err != nil {
		t.Fatal(err)
	}
	go io.WriteString(peerW, `{"jsonrpc":"2.0","id":7,"result":{"big":"`+strings.Repeat("x", 4096)+"\"}}\n")
	m, err := conn.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	resp, ok := m.(*jsonrpc.Response)
	if !ok || resp.ID.String() != jsonrpc.Int64ID(7).String() || resp.Error == nil || !strings.Contains(resp.Error.Message, "exceeds the message size limit of 1024 bytes") {
		t.Fatalf("got %#v", m)
	}
}

// TestSessionLimits: one principal opening sessions until refused gets 429
// with a clear message, while another principal still opens one; the
// global bound gives 503; closing a session frees its place.
func TestSessionLimits(t *testing.T) {
	srv := NewServer(&Implementation{Name: "s", Version: "1"}, nil)
	h := NewStreamableHTTPHandler(func(*http.Request) *Server { return srv }, &StreamableHTTPOptions{
		MaxSessions:             5,
		MaxSessionsPerPrincipal: 3,
		SessionPrincipal:        func(r *http.Request) string { return r.Header.Get("X-Who") },
	})
	defer h.Close()
	ts := httptest.NewServer(h)
	defer ts.Close()
	initialize := func(who string) (*http.Response, string) {
		body := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":%q,"capabilities":{},"clientInfo":{"name":"c","version":"1"}}}`, LatestProtocolVersion)
		req, _ := http.NewRequest("POST", ts.URL, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("X-Who", who)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	var ids []string
	for i := 0; ; i++ {
		resp, body := initialize("flooder")
		if resp.StatusCode == http.StatusOK {
			ids = append(ids, resp.Header.Get("Mcp-Session-Id"))
			if i > 10 {
				t.Fatal("never refused")
			}
			continue
		}
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "this principal already has 3 open sessions") {
			t.Fatalf("refusal: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
		break
	}
	if len(ids) != 3 {
		t.Fatalf("flooder opened %d sessions, want 3", len(ids))
	}
	for _, who := range []string{"other", "third"} {
		if resp, body := initialize(who); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", who, resp.StatusCode, body)
		}
	}
	resp, body := initialize("fourth")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "limit of 5 sessions") {
		t.Fatalf("global bound: %d %s", resp.StatusCode, body)
	}
	// Deleting one of the flooder's sessions frees its place.
	req, _ := http.NewRequest("DELETE", ts.URL, nil)
	req.Header.Set("Mcp-Session-Id", ids[0])
	req.Header.Set("X-Who", "flooder")
	req.Header.Set("Mcp-Protocol-Version", LatestProtocolVersion)
	dr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	dr.Body.Close()
	if resp, body := initialize("flooder"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after delete: %d %s", resp.StatusCode, body)
	}
}

// TestSSESessionLimits: legacy sessions have a global cap and a cap per
// principal.
func TestSSESessionLimits(t *testing.T) {
	srv := NewServer(&Implementation{Name: "s", Version: "1"}, nil)
	h := NewSSEHandler(func(*http.Request) *Server { return srv }, &SSEOptions{
		MaxSessions:             3,
		MaxSessionsPerPrincipal: 2,
		SessionPrincipal:        func(r *http.Request) string { return r.Header.Get("X-Who") },
	})
	defer h.Close()
	ts := httptest.NewServer(h)
	defer ts.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func(who string) *http.Response {
		req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL, nil)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("X-Who", who)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	for _, who := range []string{"a", "a"} {
		if r := open(who); r.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", who, r.StatusCode)
		}
	}
	if r := open("a"); r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("per principal: %d", r.StatusCode)
	}
	if r := open("b"); r.StatusCode != http.StatusOK {
		t.Fatalf("b: %d", r.StatusCode)
	}
	r := open("c")
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "limit of 3 sessions") {
		t.Fatalf("global: %d %s", r.StatusCode, b)
	}
}

// TestStreamLimitsOpen: the handler's count of open streams follows
// acquire and release.
func TestStreamLimitsOpen(t *testing.T) {
	l := newStreamLimits(2, 0, 0)
	r := httptest.NewRequest("GET", "/mcp", nil)
	a, refused := l.acquire(r, "s1", "alice")
	if refused != nil {
		t.Fatal(refused.msg)
	}
	b, _ := l.acquire(r, "s1", "alice")
	if _, refused := l.acquire(r, "s1", "alice"); refused == nil {
		t.Error("a third stream of the session was not refused")
	}
	if n := l.open(); n != 2 {
		t.Errorf("open = %d, want 2 (a refused stream is not counted)", n)
	}
	a.release()
	b.release()
	if n := l.open(); n != 0 {
		t.Errorf("open = %d after release, want 0", n)
	}
}
