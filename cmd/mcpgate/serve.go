//go:build mcpgate_gateway

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/gateway"
	"github.com/mcpgate/mcpgate/gateway/config"
)

// shutdownTimeout bounds how long in-flight requests may take to finish
// after SIGINT or SIGTERM.
const shutdownTimeout = 10 * time.Second

// runGateway runs the gateway for cfg until ctx is done, printing progress
// for people to out.
func runGateway(ctx context.Context, cfg *config.Config, logger *slog.Logger, out io.Writer) error {
	p := &progressPrinter{out: out, width: nameWidth(cfg)}
	fmt.Fprintf(out, "mcpgate: %d upstream%s, auth %s, data in %s\n", len(cfg.Upstreams), plural(len(cfg.Upstreams)), cfg.Auth, cfg.DataDir)

	// Listen first, so that a port already in use fails before any
	// upstream is started.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	defer ln.Close()

	g, err := gateway.New(cfg, &gateway.Options{Logger: logger, Progress: p.report})
	if err != nil {
		return err
	}
	defer g.Close()
	if err := g.Start(ctx); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return nil
	}
	for _, c := range g.Collisions() {
		fmt.Fprintf(out, "warning: %s\n", c)
	}

	srv := &http.Server{
		Handler:           g.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(out, "mcpgate: serving MCP at %s (Ctrl-C to stop)\n", endpointURL(cfg, ln.Addr()))

	select {
	case err := <-served:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	fmt.Fprintln(out, "mcpgate: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		logger.Warn("shutdown did not finish in time; closing connections", "error", err)
		_ = srv.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Warn("server", "error", err)
	}
	if err := g.Close(); err != nil {
		logger.Warn("closing upstreams", "error", err)
	}
	fmt.Fprintln(out, "mcpgate: stopped")
	return nil
}

// progressPrinter prints one line per upstream state change.
type progressPrinter struct {
	mu    sync.Mutex
	out   io.Writer
	width int
}

func (p *progressPrinter) report(upstream, state string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	line := fmt.Sprintf("  %-*s  %s", p.width, upstream, state)
	if err != nil {
		line += ": " + err.Error()
	}
	fmt.Fprintln(p.out, line)
}

func nameWidth(cfg *config.Config) int {
	w := 0
	for _, u := range cfg.Upstreams {
		w = max(w, len(u.Name))
	}
	return w
}
