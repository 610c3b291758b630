//go:build unix

package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/mcp"
)

// TestServeSurvivesSIGHUP: SIGHUP does not end the gateway; it re-reads
// the configuration (unchanged here: nothing added or removed) and keeps
// serving.
func TestServeSurvivesSIGHUP(t *testing.T) {
	srv := serveYAML(t, "data_dir: ./data\nserver:\n  startup_wait: 1ms\nupstreams:\n  - name: down\n    url: http://127.0.0.1:1/mcp\n")
	cancel, stderr, done, endpoint := srv.cancel, srv.stderr, srv.done, srv.endpoint
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitForOutput(t, stderr, done, "configuration reloaded: upstreams added: none; removed: none; changed: none")
	resp, err := http.Get(strings.TrimSuffix(endpoint, "/mcp") + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz after SIGHUP = %d", resp.StatusCode)
	}
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

// reloadHelperEnv makes TestReloadHelper run "mcpgate reload" with the
// arguments in the variable (separated by newlines), as a separate
// process would.
const reloadHelperEnv = "MCPGATE_TEST_RELOAD_ARGS"

// TestReloadHelper is not a test: TestReloadCommand runs the test binary
// with it to have "mcpgate reload" run in another process.
func TestReloadHelper(t *testing.T) {
	args := os.Getenv(reloadHelperEnv)
	if args == "" {
		t.Skip("helper process for TestReloadCommand")
	}
	os.Exit(run(context.Background(), strings.Split(args, "\n"), os.Stdout, os.Stderr))
}

// reloadCommand runs "mcpgate reload --data-dir dir" in another process
// and returns its output and exit code.
func reloadCommand(t *testing.T, dir string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestReloadHelper$")
	cmd.Env = append(os.Environ(), reloadHelperEnv+"=reload\n--data-dir\n"+dir)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("running mcpgate reload: %v\n%s", err, out)
	return "", 0
}

// toolUpstream serves one tool, name, that answers name.
func toolUpstream(t *testing.T, name string) string {
	s := mcp.NewServer(&mcp.Implementation{Name: name, Version: "1"}, nil)
	s.AddTool(&mcp.Tool{Name: "who"}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name}}}, nil
	})
	hs := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(hs.Close)
	return hs.URL
}

// TestReloadCommand: "mcpgate reload", run in another process, makes the
// running gateway add an upstream while a client's session with the other
// stays up and keeps working; a configuration with errors is rejected
// (the command prints them and exits 1) and the running one stays.
func TestReloadCommand(t *testing.T) {
	urlA, urlB := toolUpstream(t, "a"), toolUpstream(t, "b")
	data := filepath.Join(t.TempDir(), "data")
	head := "data_dir: " + data + "\nupstreams:\n  - name: a\n    url: " + urlA + "\n"
	srv := serveYAML(t, head)
	waitForOutput(t, srv.stderr, srv.done, "catalogue:")
	ctx := context.Background()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil).Connect(ctx, &mcp.StreamableClientTransport{Endpoint: srv.endpoint}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	call := func(name, want string) {
		t.Helper()
		r, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if tc, ok := r.Content[0].(*mcp.TextContent); !ok || tc.Text != want {
			t.Fatalf("%s = %+v", name, r.Content)
		}
	}
	call("a_who", "a")

	if err := os.WriteFile(srv.config, []byte(head+"  - name: b\n    url: "+urlB+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := reloadCommand(t, data)
	if code != 0 || !strings.Contains(out, "configuration reloaded: upstreams added: b; removed: none; changed: none") {
		t.Fatalf("mcpgate reload exited %d:\n%s", code, out)
	}
	call("a_who", "a") // the same session, still working
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "b_who"})
		if err == nil && !r.IsError {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b_who never became callable: %v %+v", err, r)
		}
	}
	call("b_who", "b")

	if err := os.WriteFile(srv.config, []byte(head+"  - name: broken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code = reloadCommand(t, data)
	if code != 1 || !strings.Contains(out, "reload rejected; the running configuration stays in force") || !strings.Contains(out, "broken") {
		t.Fatalf("reload of a bad configuration exited %d:\n%s", code, out)
	}
	waitForOutput(t, srv.stderr, srv.done, "mcpgate: reload rejected")
	call("a_who", "a")
	call("b_who", "b")
}
