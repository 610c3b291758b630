package mcp

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	gomcp "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate/jsonrpc"
)

const ctHelperEnv = "MCPGATE_TEST_STDIO_HELPER"

// TestHelperStdioServer is not a test: it is the body of the child process
// that the CommandTransport tests start (the test binary re-executed with
// ctHelperEnv set). It speaks raw JSON-RPC over stdio; its mode chooses how it
// behaves at shutdown.
func TestHelperStdioServer(t *testing.T) {
	mode := os.Getenv(ctHelperEnv)
	if mode == "" {
		return // run normally: nothing to do
	}
	if mode == "ignore-term" {
		signal.Ignore(syscall.SIGTERM)
	}
	if mode == "gosdk" {
		// A server built on the official Go SDK over stdio.
		if err := ctGoSDKServer().Run(context.Background(), &gomcp.StdioTransport{}); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
		}
		os.Exit(0)
	}
	if mode == "server" {
		// A real Server over stdio.
		ss, err := ctE2EServer().Connect(context.Background(), &StdioTransport{}, nil)
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(2)
		}
		ss.Wait()
		os.Exit(0)
	}
	conn, _ := (&StdioTransport{}).Connect(context.Background())
	ctx := context.Background()
	for {
		msg, err := conn.Read(ctx)
		if err != nil {
			break
		}
		r, ok := msg.(*jsonrpc.Request)
		if !ok || r.IsNotification() {
			continue
		}
		switch r.Method {
		case "crash":
			os.Exit(3)
		case "garbage":
			os.Stdout.WriteString("this is not JSON\n")
		case "stderr":
			os.Stderr.WriteString("a log line\n")
		}
		conn.Write(ctx, &jsonrpc.Response{ID: r.ID, Result: []byte(`{"method":"` + r.Method + `"}`)})
	}
	if mode != "echo" {
		time.Sleep(time.Minute) // ignore the end of input; wait to be signalled
	}
	os.Exit(0)
}

func ctHelperCommand(mode string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperStdioServer$")
	// atexit_sleep_ms=0: under the race detector a process otherwise
	// lingers for a second when it exits.
	cmd.Env = append(os.Environ(), ctHelperEnv+"="+mode, "GORACE=atexit_sleep_ms=0")
	return cmd
}

func TestCommandTransportRoundTrip(t *testing.T) {
	var stderr, logs ctSyncBuffer
	cmd := ctHelperCommand("echo")
	cmd.Stderr = &stderr
	conn, err := (&CommandTransport{Command: cmd, Logger: slog.New(slog.NewTextHandler(&logs, nil))}).Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, method := range []string{"ping", "garbage", "stderr", "tools/list"} {
		if err := conn.Write(ctx, ctReq(int64(i+1), method)); err != nil {
			t.Fatal(err)
		}
		r := ctReadResponse(t, conn)
		if r.ID != jsonrpc.Int64ID(int64(i+1)) || string(r.Result) != `{"method":"`+method+`"}` {
			t.Fatalf("response = %+v", r)
		}
	}
	start := time.Now()
	if err := conn.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close of a server that exits on end of input took %v", d)
	}
	if !cmd.ProcessState.Exited() || cmd.ProcessState.ExitCode() != 0 {
		t.Errorf("process state %v, want a clean exit", cmd.ProcessState)
	}
	if !strings.Contains(logs.String(), "invalid message") {
		t.Errorf("the non-JSON output line was not logged: %q", logs.String())
	}
	if !strings.Contains(stderr.String(), "a log line") {
		t.Errorf("stderr %q was not passed through", stderr.String())
	}
}

func TestCommandTransportShutdown(t *testing.T) {
	const td = 300 * time.Millisecond
	tests := []struct {
		mode      string
		minDur    time.Duration
		wantState string
		wantErr   bool
	}{
		{"echo", 0, "exit status 0", false},
		{"ignore-eof", td, "signal: terminated", false},
		{"ignore-term", 2 * td, "signal: killed", true},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			cmd := ctHelperCommand(tt.mode)
			cmd.Stderr = io.Discard
			conn, err := (&CommandTransport{Command: cmd, TerminateDuration: td}).Connect(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			// Make sure the child is up (and has set up its signal
			// handling) before shutting it down.
			if err := conn.Write(context.Background(), ctReq(1, "ping")); err != nil {
				t.Fatal(err)
			}
			ctReadResponse(t, conn)
			start := time.Now()
			err = conn.Close()
			d := time.Since(start)
			if (err != nil) != tt.wantErr {
				t.Errorf("Close = %v, want error: %v", err, tt.wantErr)
			}
			if d < tt.minDur || d > tt.minDur+3*time.Second {
				t.Errorf("Close took %v, want at least %v", d, tt.minDur)
			}
			if got := cmd.ProcessState.String(); got != tt.wantState {
				t.Errorf("process state %q, want %q", got, tt.wantState)
			}
			if _, err := conn.Read(context.Background()); !errors.Is(err, ErrConnectionClosed) {
				t.Errorf("Read after Close = %v", err)
			}
		})
	}
}

func TestCommandTransportCrash(t *testing.T) {
	cmd := ctHelperCommand("echo")
	cmd.Stderr = io.Discard
	conn, err := (&CommandTransport{Command: cmd}).Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Write(context.Background(), ctReq(1, "crash")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err = conn.Read(ctx)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("Read = %v, want the exit status 3", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Read noticed the exit after %v", d)
	}
	if err := conn.Write(context.Background(), ctReq(2, "ping")); err == nil {
		t.Error("Write to an exited process succeeded")
	}
}

func TestCommandTransportErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := (&CommandTransport{}).Connect(ctx); err == nil {
		t.Error("Connect without Command succeeded")
	}
	cmd := exec.Command("/nonexistent/mcp-server")
	if _, err := (&CommandTransport{Command: cmd}).Connect(ctx); err == nil || !strings.Contains(err.Error(), "starting") {
		t.Errorf("Connect of a missing program = %v", err)
	}
	cmd = ctHelperCommand("echo")
	cmd.Stdout = io.Discard
	if _, err := (&CommandTransport{Command: cmd}).Connect(ctx); err == nil {
		t.Error("Connect with Stdout set succeeded")
	}
}

func TestCommandTransportEndToEnd(t *testing.T) {
	cmd := ctHelperCommand("server")
	cmd.Stderr = io.Discard
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := NewClient(&Implementation{Name: "c", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &CommandTransport{Command: cmd, TerminateDuration: 2 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tools, err := cs.ListTools(ctx, nil)
	if err != nil || len(tools.Tools) != 2 {
		t.Fatalf("ListTools = %+v, %v", tools, err)
	}
	res, err := cs.CallTool(ctx, &CallToolParams{Name: "echo", Arguments: []byte(`{"n":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if got := ctTextOf(t, res); got != `echo:{"n":1}` {
		t.Errorf("echo = %q", got)
	}
	res, err = cs.CallTool(ctx, &CallToolParams{Name: "pingback"})
	if err != nil {
		t.Fatal(err)
	}
	if got := ctTextOf(t, res); got != "pinged" {
		t.Errorf("pingback = %q", got)
	}
	start := time.Now()
	if err := cs.Close(); err != nil {
		t.Fatal(err)
	}
	// The server exits when its input closes: no signal needed.
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("Close took %v", d)
	}
	if cmd.ProcessState == nil || !cmd.ProcessState.Exited() || cmd.ProcessState.ExitCode() != 0 {
		t.Errorf("server process state %v, want a clean exit", cmd.ProcessState)
	}
}

func TestCommandTransportInteropGoSDK(t *testing.T) {
	cmd := ctHelperCommand("gosdk")
	cmd.Stderr = io.Discard
	ctInterop(t, &CommandTransport{Command: cmd, TerminateDuration: 2 * time.Second})
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 0 {
		t.Errorf("go-sdk server process state %v, want a clean exit", cmd.ProcessState)
	}
}
