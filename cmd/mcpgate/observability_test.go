package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/gateway"
)

// TestVersionIsGatewayVersion: "mcpgate version" says the version the
// server reports to clients.
func TestVersionIsGatewayVersion(t *testing.T) {
	code, stdout, _ := execute(t, "version")
	if code != 0 || !strings.HasPrefix(stdout, "mcpgate "+gateway.Version+" (") {
		t.Errorf("version: code %d, output %q, want it to start with mcpgate %s", code, stdout, gateway.Version)
	}
}

func TestBuildDetails(t *testing.T) {
	bi := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123"},
		{Key: "vcs.time", Value: "2026-12-07T10:00:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	got := strings.Join(buildDetails(bi), ", ")
	if want := "commit 0123456789ab-dirty, 2026-12-07T10:00:00Z"; got != want {
		t.Errorf("details = %q, want %q", got, want)
	}
	bi = &debug.BuildInfo{Main: debug.Module{Version: "v9.9.9"}}
	if got := buildDetails(bi); len(got) != 1 || got[0] != "module v9.9.9" {
		t.Errorf("details of another module version = %q", got)
	}
	bi = &debug.BuildInfo{Main: debug.Module{Version: "v" + gateway.Version}}
	if got := buildDetails(bi); len(got) != 0 {
		t.Errorf("details of the same version = %q", got)
	}
}

func TestLogFormat(t *testing.T) {
	var b strings.Builder
	l, err := newLogger(&b, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hello", "k", "v")
	var rec map[string]any
	if err := json.Unmarshal([]byte(b.String()), &rec); err != nil || rec["msg"] != "hello" || rec["k"] != "v" {
		t.Errorf("json log line %q: %v", b.String(), err)
	}
	if _, err := newLogger(&b, "info", "xml"); err == nil || !strings.Contains(err.Error(), "--log-format") {
		t.Errorf("format xml: %v", err)
	}
	file := writeFile(t, "gw.yaml", "upstreams:\n  - name: a\n    url: http://127.0.0.1:1/mcp\n")
	if code, _, stderr := execute(t, "serve", "--config", file, "--log-format", "xml"); code != 1 || !strings.Contains(stderr, "--log-format") {
		t.Errorf("serve --log-format xml: code %d, stderr %q", code, stderr)
	}
}

// TestServeOneLogFormat: with --log-format json, every line serve writes
// is a progress line for people or a JSON log record.
func TestServeOneLogFormat(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gw.yaml")
	if err := os.WriteFile(cfg, []byte("data_dir: "+filepath.Join(dir, "data")+"\nserver:\n  startup_wait: 1ms\nupstreams:\n  - name: down\n    url: http://127.0.0.1:1/mcp\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		var stdout syncBuffer
		done <- run(ctx, []string{"serve", "--config", cfg, "--listen", "127.0.0.1:0", "--log-level", "debug", "--log-format", "json"}, &stdout, stderr)
	}()
	endpoint := waitForEndpoint(t, stderr, done)
	resp, err := http.Post(endpoint, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`))
	if err == nil {
		resp.Body.Close()
	}
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	progress := regexp.MustCompile(`^(mcpgate: |warning: |  \S)`)
	records := 0
	for _, line := range strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n") {
		if progress.MatchString(line) {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec["level"] == nil || rec["msg"] == nil {
			t.Errorf("neither progress nor a JSON log record: %q", line)
			continue
		}
		records++
	}
	if records == 0 {
		t.Errorf("no JSON log records at debug level:\n%s", stderr.String())
	}
}

// TestServeMetrics: /metrics is served on the main listener by default
// (to loopback callers), and only on metrics_listen when that is set.
func TestServeMetrics(t *testing.T) {
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	const up = "upstreams:\n  - name: down\n    url: http://127.0.0.1:1/mcp\n"
	srv := serveYAML(t, "data_dir: ./data\nserver:\n  startup_wait: 1ms\n"+up)
	base := strings.TrimSuffix(srv.endpoint, "/mcp")
	if code, body := get(base + "/metrics"); code != http.StatusOK || !strings.Contains(body, `mcpgate_upstream_state{state=`) || !strings.Contains(body, "go_goroutines") {
		t.Errorf("main /metrics: %d\n%.400s", code, body)
	}

	srv = serveYAML(t, "data_dir: ./data\nserver:\n  startup_wait: 1ms\nobservability:\n  metrics_listen: 127.0.0.1:0\n"+up)
	waitForOutput(t, srv.stderr, srv.done, "serving metrics at")
	m := regexp.MustCompile(`serving metrics at (http://\S+/metrics)`).FindStringSubmatch(srv.stderr.String())
	if m == nil {
		t.Fatalf("no metrics URL in:\n%s", srv.stderr.String())
	}
	// The gauge's value is not asserted: the port of this gateway may have
	// been another test's a moment before, and that test's client may still
	// reach it (TestTaskSurvivesGatewayKill restarts on a fixed port).
	sessionsGauge := regexp.MustCompile(`(?m)^mcpgate_sessions_open \d+$`)
	if code, body := get(m[1]); code != http.StatusOK || !sessionsGauge.MatchString(body) {
		// Only the gateway's own lines (the Go runtime's come first).
		var own []string
		for line := range strings.SplitSeq(body, "\n") {
			if strings.HasPrefix(line, "mcpgate_") {
				own = append(own, line)
			}
		}
		t.Errorf("metrics_listen /metrics: %d, mcpgate lines:\n%s", code, strings.Join(own, "\n"))
	}
	if code, _ := get(strings.TrimSuffix(srv.endpoint, "/mcp") + "/metrics"); code != http.StatusNotFound {
		t.Errorf("main /metrics with metrics_listen set: %d, want 404", code)
	}
}
