// Command demo-server is a small MCP server, spoken over stdio, for trying
// mcpgate: it has the tools echo, add, current_time and countdown (with
// progress), the resources demo://readme and demo://greeting/{name}, and the
// prompt code_review.
//
// Run it behind the gateway with examples/quickstart.yaml:
//
//	go run ./cmd/mcpgate serve --config examples/quickstart.yaml
//
// The environment variable DEMO_GREETING changes the greeting (default
// "Hello"). Diagnostics go to stderr; stdout carries only MCP messages.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/mcpgate/mcpgate/mcp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newServer(greetingFromEnv()).Run(ctx, &mcp.StdioTransport{}); err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "demo-server:", err)
		os.Exit(1)
	}
}
