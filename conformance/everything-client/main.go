// Command everything-client is the MCP client that the official conformance
// suite (github.com/modelcontextprotocol/conformance) drives. The suite starts
// a mock server for each client scenario and runs
//
//	everything-client [flags] <server-url>
//
// with the scenario's name in the environment variable
// MCP_CONFORMANCE_SCENARIO (and MCP_CONFORMANCE_PROTOCOL_VERSION,
// MCP_CONFORMANCE_CONTEXT where the scenario sets them). The server URL is
// always the last argument. The client plays the scenario with the mcp
// package and exits 0 on success and non-zero on failure (2 for a usage
// error or an unknown scenario). Diagnostics go to stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Environment variables the suite sets.
const (
	envScenario        = "MCP_CONFORMANCE_SCENARIO"
	envProtocolVersion = "MCP_CONFORMANCE_PROTOCOL_VERSION"
	envContext         = "MCP_CONFORMANCE_CONTEXT"
)

// defaultTimeout bounds a whole scenario; the suite kills clients after 30 s.
const defaultTimeout = 25 * time.Second

// exitUsage is the exit code for bad invocations and unknown scenarios.
const exitUsage = 2

// usageError is an invocation problem (exit code 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func main() {
	err := run(os.Args[1:], os.Getenv)
	if err == nil {
		return
	}
	fmt.Fprintf(os.Stderr, "everything-client: %v\n", err)
	var ue *usageError
	if errors.As(err, &ue) {
		os.Exit(exitUsage)
	}
	os.Exit(1)
}

// env is what a scenario gets to work with.
type env struct {
	// serverURL is the URL of the suite's mock server.
	serverURL string
	// scenario is the scenario's name.
	scenario string
	// protocolVersion is the version the suite asks for ("" for the
	// library's default).
	protocolVersion string
	// context is the raw MCP_CONFORMANCE_CONTEXT JSON ("" if unset).
	context string
	logger  *slog.Logger
}

func run(args []string, getenv func(string) string) error {
	fs := flag.NewFlagSet("everything-client", flag.ContinueOnError)
	timeout := fs.Duration("timeout", defaultTimeout, "give up on the scenario after this long")
	verbose := fs.Bool("v", false, "log debug diagnostics (including the mcp package's) to stderr")
	if err := fs.Parse(args); err != nil {
		return &usageError{err.Error()}
	}
	if fs.NArg() == 0 {
		return &usageError{"usage: everything-client [flags] <server-url>"}
	}
	rest := fs.Args()
	serverURL := rest[len(rest)-1]
	if u, err := url.Parse(serverURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return &usageError{fmt.Sprintf("the last argument must be the server's http(s) URL, got %q", serverURL)}
	}
	scenario := getenv(envScenario)
	if scenario == "" {
		return &usageError{envScenario + " is not set"}
	}
	h, ok := scenarioHandler(scenario)
	if !ok {
		return &usageError{fmt.Sprintf("unknown scenario %q", scenario)}
	}

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("scenario", scenario)
	e := &env{
		serverURL:       serverURL,
		scenario:        scenario,
		protocolVersion: getenv(envProtocolVersion),
		context:         getenv(envContext),
		logger:          logger,
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeoutCause(ctx, *timeout, fmt.Errorf("scenario %s did not finish within %v", scenario, *timeout))
	defer cancel()

	logger.Info("starting", "server", serverURL, "protocolVersion", e.protocolVersion)
	start := time.Now()
	if err := h(ctx, e); err != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
			err = fmt.Errorf("%w (%v)", err, cause)
		}
		return fmt.Errorf("scenario %s: %w", scenario, err)
	}
	logger.Info("scenario completed", "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}
