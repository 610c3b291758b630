// Command everything-server is the MCP server that the official conformance
// suite (github.com/modelcontextprotocol/conformance) drives. It serves the
// server of package conformance/everything, which exposes every tool,
// resource, prompt and behaviour the suite's server scenarios look for.
//
// Usage:
//
//	everything-server -addr 127.0.0.1:3000   # Streamable HTTP at http://127.0.0.1:3000/mcp
//	everything-server -stdio                 # one session over stdin/stdout
//
// Diagnostics go to stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mcpgate/mcpgate/conformance/everything"
	"github.com/mcpgate/mcpgate/mcp"
)

// endpointPath is where the Streamable HTTP endpoint is served.
const endpointPath = "/mcp"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "everything-server: %v\n", err)
		os.Exit(1)
	}
}

// config is the parsed command line.
type config struct {
	addr    string
	stdio   bool
	verbose bool
}

// parseFlags parses the command line. Exactly one of -addr and -stdio must be
// given.
func parseFlags(args []string) (*config, error) {
	fs := flag.NewFlagSet("everything-server", flag.ContinueOnError)
	var c config
	fs.StringVar(&c.addr, "addr", "", "serve Streamable HTTP on `host:port` at "+endpointPath)
	fs.BoolVar(&c.stdio, "stdio", false, "serve one session over stdin/stdout")
	fs.BoolVar(&c.verbose, "v", false, "log debug diagnostics to stderr")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch {
	case c.stdio && c.addr != "":
		return nil, errors.New("-addr and -stdio are mutually exclusive")
	case !c.stdio && c.addr == "":
		return nil, errors.New("one of -addr host:port or -stdio is required")
	case c.addr != "":
		if _, _, err := net.SplitHostPort(c.addr); err != nil {
			return nil, fmt.Errorf("-addr %q: %w", c.addr, err)
		}
	}
	return &c, nil
}

func run(args []string) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if cfg.verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	f := everything.NewServer(&everything.Options{Logger: logger})
	go f.Run(ctx)

	if cfg.stdio {
		err := f.MCPServer().Run(ctx, &mcp.StdioTransport{})
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}
	return serveHTTP(ctx, cfg.addr, f, logger)
}

// newHandler returns the HTTP handler of the fixture: the Streamable HTTP
// endpoint at endpointPath, and 404 elsewhere. Close the returned
// StreamableHTTPHandler to end its sessions.
func newHandler(s *everything.Server) (http.Handler, *mcp.StreamableHTTPHandler) {
	h := s.NewStreamableHTTPHandler()
	mux := http.NewServeMux()
	mux.Handle(endpointPath, h)
	return mux, h
}

// serveHTTP serves the Streamable HTTP endpoint on addr until ctx is done.
func serveHTTP(ctx context.Context, addr string, s *everything.Server, logger *slog.Logger) error {
	mux, h := newHandler(s)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	logger.Info("serving Streamable HTTP", "url", "http://"+ln.Addr().String()+endpointPath)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Ending the sessions first ends their open SSE streams, so that
	// Shutdown need not wait for them.
	if err := h.Close(); err != nil {
		logger.Warn("closing sessions", "error", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// Open SSE streams keep Shutdown waiting; cut them.
		srv.Close()
	}
	return nil
}
