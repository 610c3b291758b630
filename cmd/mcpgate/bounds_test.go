package main

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/gateway/config"
)

// TestSlowBodyIsCut: a client sending its body a byte at a time loses the
// request once read_body_timeout has passed, while the headers and a body
// sent in time get their answer, and a long response after the body is not
// cut by the deadline.
func TestSlowBodyIsCut(t *testing.T) {
	const limit = 200 * time.Millisecond
	handlerErr := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		if r.URL.Path == "/slow" {
			handlerErr <- err
			return
		}
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		// A response that lasts longer than the body deadline (like an
		// SSE stream) is not cut: the deadline was lifted at EOF.
		select {
		case <-time.After(3 * limit):
			io.WriteString(w, "done")
		case <-r.Context().Done():
			t.Error("request cancelled after its body was read")
		}
	})
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = newHTTPServer(h, config.Server{ReadHeaderTimeout: time.Second, ReadBodyTimeout: limit, IdleTimeout: time.Second}, slog.New(slog.DiscardHandler))
	srv.Start()
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
	start := time.Now()
	select {
	case err := <-handlerErr:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("handler read error = %v, want a timeout", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("slow body still being read after 10s")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("slow body cut after %s", d)
	}
	// The server closes the connection.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatalf("connection not closed: %v", err)
	}

	resp, err := http.Post(srv.URL+"/fast", "application/json", strings.NewReader(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "done" {
		t.Fatalf("fast request: %d %q", resp.StatusCode, b)
	}
}

// TestServeListensAtOnce: serve answers at once although its only
// upstream hangs: /healthz is 200, /readyz 503 and says the upstream is
// connecting; serve keeps running.
func TestServeListensAtOnce(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(release)
	srv := serveYAML(t, "data_dir: ./data\nserver:\n  startup_wait: 100ms\nupstreams:\n  - name: hang\n    url: "+hang.URL+"\n")
	cancel, stderr, done, endpoint := srv.cancel, srv.stderr, srv.done, srv.endpoint
	base := strings.TrimSuffix(endpoint, "/mcp")
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d", code)
	}
	code, body := get("/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"state":"connecting"`) || !strings.Contains(body, `"database":"ok"`) {
		t.Fatalf("/readyz = %d %s", code, body)
	}
	waitForOutput(t, stderr, done, "catalogue: 0 tools")
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

// TestIdleConnectionClosed: a keep-alive connection left idle after its
// answer is closed by the server once idle_timeout has passed.
func TestIdleConnectionClosed(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = newHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		config.Server{ReadHeaderTimeout: time.Second, ReadBodyTimeout: time.Second, IdleTimeout: 200 * time.Millisecond}, slog.New(slog.DiscardHandler))
	srv.Start()
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	// The answer, then the server's close: ReadAll ends without error at
	// EOF. A server that kept the connection would hit the deadline.
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	b, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("idle connection not closed: %v (read %q)", err, b)
	}
	if !strings.Contains(string(b), "200 OK") {
		t.Fatalf("answer: %q", b)
	}
}
