package main

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// TestServeDebugListen: with server.debug_listen the gateway serves the Go
// runtime profiles there, and says where.
func TestServeDebugListen(t *testing.T) {
	srv := serveYAML(t, "data_dir: ./data\nserver:\n  startup_wait: 1ms\n  debug_listen: 127.0.0.1:0\nupstreams:\n  - name: down\n    url: http://127.0.0.1:1/mcp\n")
	waitForOutput(t, srv.stderr, srv.done, "serving Go runtime profiles at")
	m := regexp.MustCompile(`serving Go runtime profiles at (http://\S+/debug/pprof/)`).FindStringSubmatch(srv.stderr.String())
	if m == nil {
		t.Fatalf("no profile URL in:\n%s", srv.stderr.String())
	}
	resp, err := http.Get(m[1] + "goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "goroutine profile: total ") {
		t.Fatalf("goroutine profile: HTTP %d %.80q", resp.StatusCode, body)
	}
}
