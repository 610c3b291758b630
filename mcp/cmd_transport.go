package mcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// defaultTerminateDuration is how long CommandTransport waits for the
// server process at each step of its shutdown.
const defaultTerminateDuration = 5 * time.Second

// CommandTransport is the client side of the stdio transport: it starts
// Command as the server process and exchanges newline-delimited messages
// with it over its standard input and output.
//
// The process's standard error goes where Command.Stderr says; nil means
// this process's os.Stderr. Command.Stdin and Command.Stdout must be nil.
//
// Closing the connection shuts the server down as the specification says:
// it closes the server's standard input and waits up to TerminateDuration
// for the process to exit, then sends SIGTERM and waits as long again, and
// finally kills it. If the process exits on its own, Read fails promptly
// with an error carrying its exit status.
type CommandTransport struct {
	// Command is the server command. It must not have been started.
	Command *exec.Cmd
	// TerminateDuration is the time given to the process to exit after its
	// input is closed, and again after SIGTERM. Zero means 5 seconds.
	TerminateDuration time.Duration
	// MaxMessageSize bounds one incoming message (one line). Zero means
	// jsonrpc.DefaultMaxMessageSize.
	MaxMessageSize int
	// Logger receives reports of malformed output. Nil means
	// slog.Default().
	Logger *slog.Logger
}

// Connect starts the server process.
func (t *CommandTransport) Connect(ctx context.Context) (Connection, error) {
	cmd := t.Command
	if cmd == nil {
		return nil, errors.New("mcp: CommandTransport has no Command")
	}
	if cmd.Process != nil {
		return nil, errors.New("mcp: CommandTransport's Command was already started")
	}
	if cmd.Stdin != nil || cmd.Stdout != nil {
		return nil, errors.New("mcp: CommandTransport's Command must not have Stdin or Stdout set")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("mcp: %w", err)
	}
	// An os.Pipe rather than StdoutPipe: Wait closes StdoutPipe's reader
	// when the process exits, which could lose the last messages it wrote.
	pr, pw, err := os.Pipe()
	if err != nil {
		stdin.Close()
		return nil, fmt.Errorf("mcp: %w", err)
	}
	cmd.Stdout = pw
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		stdin.Close()
		cmd.Stdout = nil
		return nil, fmt.Errorf("mcp: starting %s: %w", cmd.Path, err)
	}
	pw.Close()
	td := t.TerminateDuration
	if td <= 0 {
		td = defaultTerminateDuration
	}
	cc := &cmdConn{cmd: cmd, stdin: stdin, stdout: pr, td: td, exited: make(chan struct{})}
	cc.conn = newIOConn(pr, stdin, t.MaxMessageSize, t.Logger)
	cc.conn.endErr = cc.endErr
	cc.conn.onClose = cc.shutdown
	go func() {
		cc.waitErr = cmd.Wait()
		close(cc.exited)
		// Normally the output ends with the process. If a descendant keeps
		// it open, stop reading it a little later anyway.
		t := time.NewTimer(time.Second)
		defer t.Stop()
		select {
		case <-t.C:
			pr.Close()
		case <-cc.conn.readDone:
		}
	}()
	return cc.conn, nil
}

type cmdConn struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	stdout  *os.File
	td      time.Duration
	conn    *ioConn
	exited  chan struct{}
	waitErr error // set before exited closes
}

// endErr reports the end of the server's output, with the process's exit
// status when it has exited.
func (cc *cmdConn) endErr(readErr error) error {
	t := time.NewTimer(min(cc.td, time.Second))
	defer t.Stop()
	select {
	case <-cc.exited:
	case <-t.C:
		return fmt.Errorf("mcp: the server process closed its output: %w", readErr)
	}
	if cc.waitErr != nil {
		return fmt.Errorf("mcp: the server process exited: %w", cc.waitErr)
	}
	// A clean exit is an orderly end of the connection.
	return fmt.Errorf("mcp: the server process exited: %w", io.EOF)
}

// shutdown closes the server's input, then escalates to SIGTERM and
// SIGKILL if the process does not exit in time.
func (cc *cmdConn) shutdown() error {
	cc.stdin.Close()
	defer cc.stdout.Close()
	if cc.waitFor(cc.td) {
		return nil
	}
	if err := cc.cmd.Process.Signal(syscall.SIGTERM); err == nil {
		if cc.waitFor(cc.td) {
			return nil
		}
	}
	cc.cmd.Process.Kill()
	<-cc.exited
	return fmt.Errorf("mcp: the server process did not exit after its input was closed and SIGTERM; killed it")
}

// waitFor waits up to d for the process to exit.
func (cc *cmdConn) waitFor(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-cc.exited:
		return true
	case <-t.C:
		return false
	}
}
