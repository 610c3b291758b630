package mcp

// Interop of the 2026-07-28 client with the TypeScript SDK's modern-only
// server (@modelcontextprotocol/server 2.4.0, createMcpHandler with
// legacy: 'reject'), pinned with its lock in testdata/tsserver2026.

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/mcpgate/mcpgate/internal/npmtest"
)

const tsServerDir = "testdata/tsserver2026"

// startTSServer installs (npm ci from the committed lock, cached) and runs
// testdata/tsserver2026/server.mjs, and returns its endpoint URL; the
// server ends with the test. It skips when node or npm is missing outside
// CI (internal/npmtest).
func startTSServer(t *testing.T) string {
	env := npmtest.Require(t)
	work := npmtest.Workdir(t, env.Install(t, tsServerDir), filepath.Join(tsServerDir, "server.mjs"))
	cmd := exec.Command(env.Node, "server.mjs")
	cmd.Dir = work
	cmd.Stderr = &npmtest.LogWriter{T: t, Prefix: "ts server"}
	return npmtest.StartServer(t, cmd, "TypeScript server")
}

func TestInteropTypeScriptModernServer(t *testing.T) {
	url := startTSServer(t)
	ctx := testCtx(t)
	c := newModernTestClient(&ClientOptions{ElicitationHandler: func(_ context.Context, r *ElicitRequest) (*ElicitResult, error) {
		return &ElicitResult{Action: ElicitActionAccept, Content: map[string]any{"name": "Ada"}}, nil
	}, CreateMessageHandler: sampleAda})
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
	if got := strings.Join(names, ","); got != "add,region,greet,sample,poke" {
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
	if got := text(cs.CallTool(ctx, &CallToolParams{Name: "sample", Arguments: jsontext.Value(`{}`)})); got != "sampled:Ada" {
		t.Errorf("sample = %q", got)
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
	cmd.Stderr = &npmtest.LogWriter{T: t, Prefix: "mcp-go server"}
	return npmtest.StartServer(t, cmd, "mcp-go server")
}

func TestInteropMCPGoModernServer(t *testing.T) {
	url := startMCPGoServer(t)
	ctx := testCtx(t)
	c := newModernTestClient(&ClientOptions{ModernOnly: true, ElicitationHandler: func(_ context.Context, r *ElicitRequest) (*ElicitResult, error) {
		return &ElicitResult{Action: ElicitActionAccept, Content: map[string]any{"name": "Ada"}}, nil
	}, CreateMessageHandler: sampleAda})
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
	if len(lt.Tools) != 4 {
		t.Errorf("tools = %+v", lt.Tools)
	}
	for name, want := range map[string]string{"add": "5", "greet": "hello Ada (state round-1)", "sample": "sampled:Ada"} {
		res, err := cs.CallTool(ctx, &CallToolParams{Name: name, Arguments: jsontext.Value(`{"a":2,"b":3}`)})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if res.IsError || len(res.Content) == 0 || res.Content[0].(*TextContent).Text != want {
			t.Errorf("%s = %+v, want %q", name, res, want)
		}
	}
}

// sampleAda answers an MRTR sampling request with the text "Ada".
func sampleAda(context.Context, *CreateMessageRequest) (*CreateMessageResult, error) {
	return &CreateMessageResult{Role: RoleAssistant, Model: "m", Content: []Content{&TextContent{Text: "Ada"}}}, nil
}
