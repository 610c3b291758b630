package mcp

// Interop of the 2026-07-28 client with the TypeScript SDK's modern-only
// server (@modelcontextprotocol/server 2.4.0, createMcpHandler with
// legacy: 'reject'), pinned with its lock in testdata/tsserver2026.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"
)

const tsServerDir = "testdata/tsserver2026"

// tsTools returns node and npm, or skips the test when they are missing
// outside CI (CI must have them).
func tsTools(t *testing.T) (node, npm string) {
	t.Helper()
	if os.Getenv("MCPGATE_SKIP_TSCLIENT") != "" {
		t.Skip("MCPGATE_SKIP_TSCLIENT is set")
	}
	if testing.Short() {
		t.Skip("skipped in -short mode: it runs npm and Node")
	}
	node = os.Getenv("MCPGATE_NODE")
	var err error
	if node == "" {
		node, err = exec.LookPath("node")
	}
	if err == nil {
		npm, err = exec.LookPath("npm")
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("node and npm are required in CI: %v", err)
		}
		t.Skipf("node or npm not found (%v): install Node.js >= 20 with npm to run the TypeScript interop test", err)
	}
	return node, npm
}

// installTSServer installs the pinned packages of testdata/tsserver2026
// (npm ci from the committed lock) into a cache folder keyed by the
// package files, and returns the folder.
func installTSServer(t *testing.T, npm string) string {
	t.Helper()
	pkg, err := os.ReadFile(filepath.Join(tsServerDir, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	lock, err := os.ReadFile(filepath.Join(tsServerDir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	h.Write(pkg)
	h.Write([]byte{0})
	h.Write(lock)
	root := os.Getenv("MCPGATE_TSCLIENT_CACHE")
	if root == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			t.Fatalf("no cache folder (set MCPGATE_TSCLIENT_CACHE): %v", err)
		}
		root = filepath.Join(cache, "mcpgate-tsclient")
	}
	dir := filepath.Join(root, "server2026-"+hex.EncodeToString(h.Sum(nil))[:16])
	marker := filepath.Join(dir, "node_modules", "@modelcontextprotocol", "server", "package.json")
	if _, err := os.Stat(marker); err == nil {
		return dir
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	stage, err := os.MkdirTemp(root, ".stage-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(stage) // a no-op once renamed
	for name, data := range map[string][]byte{"package.json": pkg, "package-lock.json": lock} {
		if err := os.WriteFile(filepath.Join(stage, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error")
	cmd.Dir = stage
	cmd.WaitDelay = 5 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s\n(set MCPGATE_SKIP_TSCLIENT=1 where the npm registry is unreachable)", stage, err, out)
	}
	if err := os.Chmod(stage, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(stage, dir); err != nil {
		if _, statErr := os.Stat(marker); statErr != nil {
			t.Fatalf("installing into %s: %v", dir, err)
		}
	}
	return dir
}

// startTSServer runs testdata/tsserver2026/server.mjs and returns its
// endpoint URL; the server ends with the test.
func startTSServer(t *testing.T) string {
	node, npm := tsTools(t)
	dir := installTSServer(t, npm)
	script, err := os.ReadFile(filepath.Join(tsServerDir, "server.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "server.mjs"), script, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "server.mjs")
	cmd.Dir = dir
	cmd.Stderr = &testLogWriter{t: t}
	return startListening(t, cmd, "TypeScript server")
}

type testLogWriter struct{ t *testing.T }

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.t.Logf("ts server: %s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestInteropTypeScriptModernServer(t *testing.T) {
	url := startTSServer(t)
	ctx := testCtx(t)
	c := newModernTestClient(&ClientOptions{ElicitationHandler: func(_ context.Context, r *ElicitRequest) (*ElicitResult, error) {
		return &ElicitResult{Action: ElicitActionAccept, Content: map[string]any{"name": "Ada"}}, nil
	}})
	cs, err := c.Connect(ctx, &StreamableClientTransport{Endpoint: url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if cs.ProtocolVersion() != Version20260728 || cs.InitializeResult().ServerInfo.Name != "ts-modern" {
		t.Fatalf("version %q, server %+v", cs.ProtocolVersion(), cs.InitializeResult().ServerInfo)
	}
	var names []string
	for tool, err := range cs.Tools(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tool.Name)
	}
	if got := strings.Join(names, ","); got != "add,region,greet" {
		t.Errorf("tools = %s", got)
	}
	text := func(res *CallToolResult, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if res.IsError || len(res.Content) == 0 {
			t.Fatalf("result %+v", res)
		}
		return res.Content[0].(*TextContent).Text
	}
	if got := text(cs.CallTool(ctx, &CallToolParams{Name: "add", Arguments: jsontext.Value(`{"a":2,"b":3}`)})); got != "5" {
		t.Errorf("add = %q", got)
	}
	if got := text(cs.CallTool(ctx, &CallToolParams{Name: "region", Arguments: jsontext.Value(`{"region":"eu-west 1"}`)})); got != "region eu-west 1" {
		t.Errorf("region = %q", got)
	}
	if got := text(cs.CallTool(ctx, &CallToolParams{Name: "greet", Arguments: jsontext.Value(`{}`)})); got != "hello Ada (state round-1)" {
		t.Errorf("greet = %q", got)
	}
	if err := cs.Ping(ctx); err != nil {
		t.Errorf("ping: %v", err)
	}

	// A legacy-only client cannot talk to it: initialize is refused with
	// -32022 naming the modern version.
	legacy := NewClient(&Implementation{Name: "old", Version: "1"}, nil)
	_, err = legacy.Connect(ctx, &StreamableClientTransport{Endpoint: url}, nil)
	if !errors.Is(modernError(errors.Unwrap(err)), ErrUnsupportedProtocolVersion) && !strings.Contains(err.Error(), "-32022") {
		t.Errorf("legacy client against a modern-only server: %v", err)
	}
}

// startMCPGoServer builds and runs testdata/mcpgo2026 (mcp-go v1.6.0
// serving 2026-07-28 only, a module of its own) and returns its endpoint.
// It skips when the module cannot be built outside CI (no module proxy).
func startMCPGoServer(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("skipped in -short mode: it builds a separate module")
	}
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	bin := filepath.Join(t.TempDir(), "mcpgo2026")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, goTool, "build", "-o", bin, ".")
	build.Dir = filepath.Join("testdata", "mcpgo2026")
	if out, err := build.CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("building testdata/mcpgo2026: %v\n%s", err, out)
		}
		t.Skipf("building testdata/mcpgo2026 (mcp-go v1.6.0) failed, module proxy unreachable? %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	cmd.Stderr = &testLogWriter{t: t}
	return startListening(t, cmd, "mcp-go server")
}

// startListening starts cmd, which prints "LISTENING <port>" and exits
// when its stdin closes, and returns its /mcp endpoint.
func startListening(t *testing.T, cmd *exec.Cmd, what string) string {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close() // the server exits when its stdin closes
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	port := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), "LISTENING "); ok {
				port <- p
			}
		}
		close(port)
	}()
	select {
	case p, ok := <-port:
		if !ok {
			t.Fatalf("the %s exited before listening", what)
		}
		return "http://127.0.0.1:" + p + "/mcp"
	case <-time.After(60 * time.Second):
		t.Fatalf("the %s did not start within 60s", what)
	}
	return ""
}

func TestInteropMCPGoModernServer(t *testing.T) {
	url := startMCPGoServer(t)
	ctx := testCtx(t)
	c := newModernTestClient(&ClientOptions{ModernOnly: true, ElicitationHandler: func(_ context.Context, r *ElicitRequest) (*ElicitResult, error) {
		return &ElicitResult{Action: ElicitActionAccept, Content: map[string]any{"name": "Ada"}}, nil
	}})
	cs, err := c.Connect(ctx, &StreamableClientTransport{Endpoint: url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if cs.ProtocolVersion() != Version20260728 || cs.ID() != "" {
		t.Fatalf("version %q, session %q", cs.ProtocolVersion(), cs.ID())
	}
	lt, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(lt.Tools) != 2 {
		t.Errorf("tools = %+v", lt.Tools)
	}
	for name, want := range map[string]string{"add": "5", "greet": "hello Ada (state round-1)"} {
		res, err := cs.CallTool(ctx, &CallToolParams{Name: name, Arguments: jsontext.Value(`{"a":2,"b":3}`)})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if res.IsError || len(res.Content) == 0 || res.Content[0].(*TextContent).Text != want {
			t.Errorf("%s = %+v, want %q", name, res, want)
		}
	}
}
