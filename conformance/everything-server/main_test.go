package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/conformance/everything"
	"github.com/mcpgate/mcpgate/mcp"
)

// envRunMain makes the test binary run the server's main instead of the
// tests, so that tests can start the real program as a subprocess.
const envRunMain = "EVERYTHING_SERVER_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envRunMain) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestStdio starts the program with -stdio as a subprocess and talks to it
// over its standard input and output, as a stdio client does.
func TestStdio(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-stdio")
	// Under -race the runtime sleeps a second at exit unless told not to.
	cmd.Env = append(os.Environ(), envRunMain+"=1", "GORACE=atexit_sleep_ms=0")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := mcp.NewClient(&mcp.Implementation{Name: "stdio-test", Version: "1.0.0"}, &mcp.ClientOptions{
		CreateMessageHandler: func(context.Context, *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Role: mcp.RoleAssistant, Content: []mcp.Content{&mcp.TextContent{Text: "pong"}}, Model: "m"}, nil
		},
	})
	cs, err := c.Connect(ctx, &mcp.CommandTransport{Command: cmd, TerminateDuration: 2 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := cs.InitializeResult().ServerInfo.Name; got != "mcpgate-everything-server" {
		t.Errorf("server name = %q", got)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_simple_text"})
	if err != nil {
		t.Fatal(err)
	}
	if got := firstText(t, res); got != everything.SimpleText {
		t.Errorf("test_simple_text = %q", got)
	}
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_sampling", Arguments: jsontext.Value(`{"prompt":"ping"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if got := firstText(t, res); got != "LLM response: pong" {
		t.Errorf("test_sampling = %q", got)
	}
	start := time.Now()
	if err := cs.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	// Closing stdin must end the server by itself, before the transport
	// resorts to signals.
	if d := time.Since(start); d > time.Second {
		t.Errorf("the server took %v to exit after its input closed", d)
	}
	if cmd.ProcessState == nil || !cmd.ProcessState.Success() {
		t.Errorf("server exit: %v", cmd.ProcessState)
	}
}

// TestBadFlagsExit checks that the program refuses bad flags with a
// non-zero exit status.
func TestBadFlagsExit(t *testing.T) {
	for _, args := range [][]string{{}, {"-addr", "nonsense"}, {"-stdio", "-addr", "127.0.0.1:0"}} {
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), envRunMain+"=1")
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Errorf("%q: err = %v (output %q), want exit status 1", args, err, out)
		}
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
		addr    string
		stdio   bool
	}{
		{args: []string{"-addr", "127.0.0.1:3000"}, addr: "127.0.0.1:3000"},
		{args: []string{"-stdio"}, stdio: true},
		{args: nil, wantErr: "required"},
		{args: []string{"-addr", "127.0.0.1:1", "-stdio"}, wantErr: "mutually exclusive"},
		{args: []string{"-addr", "nonsense"}, wantErr: "missing port"},
		{args: []string{"-stdio", "extra"}, wantErr: "unexpected arguments"},
		{args: []string{"-bogus"}, wantErr: "not defined"},
	}
	for _, tt := range tests {
		c, err := parseFlags(tt.args)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseFlags(%q) error = %v, want %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil || c.addr != tt.addr || c.stdio != tt.stdio {
			t.Errorf("parseFlags(%q) = %+v, %v", tt.args, c, err)
		}
	}
}
