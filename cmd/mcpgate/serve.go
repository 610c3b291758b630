package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/app"
	"github.com/mcpgate/mcpgate/mcp"
)

// shutdownTimeout bounds how long in-flight requests may take to finish
// after SIGINT or SIGTERM.
const shutdownTimeout = 10 * time.Second

// defaultGCPercent is the garbage collector's target serve sets when the
// environment has no GOGC: a gateway's live heap is small and its garbage
// is per request, so collecting less often buys throughput (1.20× at 16
// sessions on 2 cores, docs/benchmarks.md) for a larger heap between
// collections (peak RSS 53 MiB instead of 42 MiB in the same benchmark).
const defaultGCPercent = 400

// setGCPercent applies defaultGCPercent unless GOGC is set (the runtime
// has read it already) and returns the target in force.
func setGCPercent() int {
	if _, set := os.LookupEnv("GOGC"); set {
		p := debug.SetGCPercent(100)
		debug.SetGCPercent(p)
		return p
	}
	debug.SetGCPercent(defaultGCPercent)
	return defaultGCPercent
}

// runGateway runs the gateway for cfg until ctx is done, printing progress
// for people to out. On SIGHUP it reads the configuration again with
// reread and applies it (reload.go); nil reread means reloading is off.
func runGateway(ctx context.Context, cfg *config.Config, logger *slog.Logger, out io.Writer, reread func() (*config.Config, error)) error {
	p := &progressPrinter{out: out, width: nameWidth(cfg)}
	logger.Debug("garbage collector target", "gogc", setGCPercent())
	fmt.Fprintf(out, "mcpgate: %d upstream%s, auth %s, data in %s%s\n", len(cfg.Upstreams), plural(len(cfg.Upstreams)), cfg.Auth, cfg.DataDir, databaseNote(cfg))

	// Listen first, so that a port already in use fails before any
	// upstream is started.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	defer ln.Close()

	a, err := app.New(ctx, cfg, &app.Options{Logger: logger, Progress: p.report})
	if err != nil {
		return err
	}
	defer a.Close()
	g := a.Gateway
	// Start returns at once: upstreams come up in the background, and
	// join the catalogue as they become ready.
	if err := g.Start(ctx); err != nil {
		return err
	}
	if ws, err := policyAttributeWarnings(ctx, cfg); err != nil {
		logger.Warn("checking the principal attributes policies read", "error", err)
	} else {
		for _, w := range ws {
			fmt.Fprintf(out, "warning: policy %s\n", w)
		}
	}

	lim := cfg.Limits()
	srv := newHTTPServer(g.Handler(), lim, logger)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(out, "mcpgate: serving MCP at %s (Ctrl-C to stop)\n", endpointURL(cfg, ln.Addr()))
	if lim.DebugListen != "" {
		addr, stop, err := serveDebug(lim.DebugListen, logger)
		if err != nil {
			return fmt.Errorf("server.debug_listen: %w", err)
		}
		defer stop()
		fmt.Fprintf(out, "mcpgate: serving Go runtime profiles at http://%s/debug/pprof/\n", addr)
	}
	if oc := cfg.Observability; oc != nil && oc.MetricsListen != "" {
		addr, stop, err := serveMetrics(oc.MetricsListen, g.MetricsHandler(), logger)
		if err != nil {
			return fmt.Errorf("observability.metrics_listen: %w", err)
		}
		defer stop()
		fmt.Fprintf(out, "mcpgate: serving metrics at http://%s/metrics\n", addr)
	}

	// Once the upstreams have had their first attempt (or startup_wait
	// has passed), report name collisions and what the catalogue holds.
	startup := make(chan struct{})
	go func() {
		defer close(startup)
		g.WaitStartup(ctx)
		if ctx.Err() != nil {
			return
		}
		if cfg.Auth == config.AuthNone {
			if s, err := catalogSummary(ctx, g.Server()); err != nil {
				logger.Debug("counting the catalogue", "error", err)
			} else {
				fmt.Fprintf(out, "mcpgate: catalogue: %s\n", s)
			}
		}
		for _, c := range g.Collisions() {
			fmt.Fprintf(out, "warning: %s\n", c)
		}
	}()
	defer func() { <-startup }()

	// SIGHUP (sent by `mcpgate reload`, which finds this process by the
	// pid file) reads the configuration again and applies it.
	removePID, err := writePID(cfg.DataDir)
	if err != nil {
		logger.Warn("recording the process id for mcpgate reload", "error", err)
		removePID = func() {}
	}
	defer removePID()
	rl := &reloader{app: a, reread: reread, dir: cfg.DataDir, out: out}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
wait:
	for {
		select {
		case err := <-served:
			return fmt.Errorf("serving: %w", err)
		case <-hup:
			if reread == nil {
				fmt.Fprintln(out, "mcpgate: SIGHUP received: this gateway was not started from files; nothing to reload")
				continue
			}
			fmt.Fprintln(out, "mcpgate: SIGHUP received: reloading the configuration")
			rl.reload(ctx)
		case <-ctx.Done():
			break wait
		}
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
	if err := a.Close(); err != nil {
		logger.Warn("closing the gateway", "error", err)
	}
	fmt.Fprintln(out, "mcpgate: stopped")
	return nil
}

// newHTTPServer returns the gateway's HTTP server with the configured
// bounds on slow clients: request headers must arrive within
// read_header_timeout and a body within read_body_timeout (see
// bodyDeadline), and idle keep-alive connections close after
// idle_timeout. There is no write timeout: responses may be SSE streams
// that stay open.
func newHTTPServer(h http.Handler, lim config.Server, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           bodyDeadline(h, lim.ReadBodyTimeout),
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// bodyDeadline bounds the time to read a request's body: a client sending
// it slowly (a byte every few seconds) loses the connection once d has
// passed since the headers were read, and the handler's read fails. The
// deadline is lifted once the body has been read, so that a long response
// (an SSE stream) is not cut.
func bodyDeadline(h http.Handler, d time.Duration) http.Handler {
	if d <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			h.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(time.Now().Add(d)); err != nil {
			h.ServeHTTP(w, r)
			return
		}
		r.Body = &deadlineBody{ReadCloser: r.Body, lift: func() { _ = rc.SetReadDeadline(time.Time{}) }}
		h.ServeHTTP(w, r)
	})
}

// deadlineBody lifts the read deadline when the body has been read to its
// end. A body left unread keeps it, so that the server's draining of the
// rest after the handler is bounded too.
type deadlineBody struct {
	io.ReadCloser
	once sync.Once
	lift func()
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.once.Do(b.lift)
	}
	return n, err
}

// catalogSummary counts the merged catalogue, as an anonymous client sees
// it, by listing it over an in-memory session.
func catalogSummary(ctx context.Context, s *mcp.Server) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ct, st := mcp.NewInMemoryTransports()
	ss, err := s.Connect(ctx, st, nil)
	if err != nil {
		return "", err
	}
	defer ss.Close()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "mcpgate-serve", Version: "1"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		return "", err
	}
	defer cs.Close()
	var counts [4]int
	var errs []error
	count := func(i int, seq func(yield func(struct{}, error) bool)) {
		for _, err := range seq {
			if err != nil {
				errs = append(errs, err)
				return
			}
			counts[i]++
		}
	}
	count(0, each(cs.Tools(ctx)))
	count(1, each(cs.Prompts(ctx)))
	count(2, each(cs.Resources(ctx)))
	count(3, func(yield func(struct{}, error) bool) {
		cursor := ""
		for range 1000 { // bounded: a server repeating cursors cannot loop forever
			r, err := cs.ListResourceTemplates(ctx, &mcp.ListResourceTemplatesParams{Cursor: cursor})
			if err != nil {
				yield(struct{}{}, err)
				return
			}
			for range r.ResourceTemplates {
				if !yield(struct{}{}, nil) {
					return
				}
			}
			if cursor = r.NextCursor; cursor == "" {
				return
			}
		}
	})
	if len(errs) > 0 {
		return "", errors.Join(errs...)
	}
	return fmt.Sprintf("%d tool%s, %d prompt%s, %d resource%s, %d resource template%s",
		counts[0], plural(counts[0]), counts[1], plural(counts[1]), counts[2], plural(counts[2]), counts[3], plural(counts[3])), nil
}

// each turns a sequence of items into a sequence of empty values, for
// counting.
func each[T any](seq iter.Seq2[T, error]) func(yield func(struct{}, error) bool) {
	return func(yield func(struct{}, error) bool) {
		for _, err := range seq {
			if !yield(struct{}{}, err) {
				return
			}
		}
	}
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

// databaseNote says where the state is when it is not the SQLite database
// of the data directory (without the URL, which may hold a password).
func databaseNote(cfg *config.Config) string {
	if cfg.DatabaseURL == "" {
		return ""
	}
	return ", database PostgreSQL (database_url)"
}
