package gateway

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"github.com/go-json-experiment/json"
)

// inflight bounds the MCP requests being processed at once, in all and per
// principal (server.max_inflight, server.max_inflight_per_principal). A
// request beyond either bound is refused at once, with a retry hint,
// instead of waiting in a queue: admitted calls keep their latency, and
// the gateway keeps answering its probes. The bounds may change while
// requests are in flight (a reload); requests already admitted finish.
type inflight struct {
	mu           sync.Mutex
	max          int // <= 0: no bound
	perPrincipal int // <= 0: no bound
	total        int
	byPrincipal  map[string]int
	shed         int64 // requests refused so far
}

func newInflight(max, perPrincipal int) *inflight {
	return &inflight{max: max, perPrincipal: perPrincipal, byPrincipal: map[string]int{}}
}

// setBounds changes the bounds (a reload).
func (l *inflight) setBounds(max, perPrincipal int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.max, l.perPrincipal = max, perPrincipal
}

// Retry hints of a refused request, in seconds.
const (
	inflightRetryAfter             = 1
	inflightPrincipalRetryAfter    = 1
	inflightRefusedGlobalStatus    = http.StatusServiceUnavailable
	inflightRefusedPrincipalStatus = http.StatusTooManyRequests
)

// acquire admits one request of principal ("" for none: only the global
// bound applies), or returns the status and
// message of its refusal. release must be called once the request is done.
func (l *inflight) acquire(principal string) (release func(), status int, msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perPrincipal > 0 && principal != "" && l.byPrincipal[principal] >= l.perPrincipal {
		l.shed++
		return nil, inflightRefusedPrincipalStatus, fmt.Sprintf("too many requests in progress: this principal already has %d requests being processed (the limit); retry after %d s", l.perPrincipal, inflightPrincipalRetryAfter)
	}
	if l.max > 0 && l.total >= l.max {
		l.shed++
		return nil, inflightRefusedGlobalStatus, fmt.Sprintf("the gateway is overloaded: %d requests are being processed (the limit); retry after %d s", l.max, inflightRetryAfter)
	}
	l.total++
	l.byPrincipal[principal]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.total--
			if l.byPrincipal[principal]--; l.byPrincipal[principal] <= 0 {
				delete(l.byPrincipal, principal)
			}
		})
	}, 0, ""
}

// Shed returns how many MCP requests the gateway has refused because too
// many were being processed (server.max_inflight and
// server.max_inflight_per_principal).
func (g *Gateway) Shed() int64 {
	g.inflight.mu.Lock()
	defer g.inflight.mu.Unlock()
	return g.inflight.shed
}

// shedding wraps an MCP endpoint's handler with the in-flight bounds. Only
// POST requests (the messages clients send) count: GET streams and DELETE
// are not request processing. It must run after authentication, so that
// the principal is known.
func (g *Gateway) shedding(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			h.ServeHTTP(w, r)
			return
		}
		// Without a way to name callers (auth none) there is no
		// per-principal bound: everyone would share one.
		principal := ""
		if g.opts.Principal != nil {
			principal = g.opts.Principal(r.Context())
		}
		release, status, msg := g.inflight.acquire(principal)
		if release == nil {
			retry := inflightRetryAfter
			if status == inflightRefusedPrincipalStatus {
				retry = inflightPrincipalRetryAfter
			}
			writeOverload(w, status, retry, msg)
			return
		}
		defer release()
		h.ServeHTTP(w, r)
	})
}

// writeOverload answers a refused request: the HTTP status with
// Retry-After, and a JSON-RPC error body (id null, code -32603) that says
// why.
func writeOverload(w http.ResponseWriter, status, retryAfter int, msg string) {
	body, _ := json.Marshal(map[string]any{
		"jsonrpc": "2.0",
		"id":      nil,
		"error":   map[string]any{"code": -32603, "message": msg},
	})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	w.WriteHeader(status)
	w.Write(body)
}
