// Command mcpgate is an MCP gateway: one endpoint in front of many upstream
// MCP servers.
//
// Usage:
//
//	mcpgate serve --config mcpgate.yaml
//	mcpgate serve --servers ~/.cursor/mcp.json
//	mcpgate config validate --config mcpgate.yaml
//	mcpgate version
//
// Run "mcpgate help" for the full list of commands and flags.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line args, writing to stdout and stderr, and
// returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintf(stderr, "mcpgate: %v\n", err)
	return 1
}

// exitError ends the program with code after the command has already told
// the user what went wrong.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }
