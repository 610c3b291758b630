package main

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// serveDebug serves the Go runtime's profiles (net/http/pprof) on addr,
// which the configuration holds to loopback (server.debug_listen). It
// returns the listener's address and a function that stops it.
func serveDebug(addr string, logger *slog.Logger) (net.Addr, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("debug listener", "error", err)
		}
	}()
	return ln.Addr(), func() { _ = srv.Close() }, nil
}

// serveMetrics serves the Prometheus metrics handler h at /metrics on addr
// (observability.metrics_listen), to any caller that can reach it. It
// returns the listener's address and a function that stops it.
func serveMetrics(addr string, h http.Handler, logger *slog.Logger) (net.Addr, func(), error) {
	if h == nil {
		return nil, nil, errors.New("metrics are off")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("metrics listener", "error", err)
		}
	}()
	return ln.Addr(), func() { _ = srv.Close() }, nil
}
