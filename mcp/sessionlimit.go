package mcp

import (
	"fmt"
	"net"
	"net/http"
	"sync"

	"github.com/mcpgate/mcpgate/jsonrpc"
)

// sessionLimits counts the live sessions of an HTTP handler, in all, per
// principal and per source address, so that one party cannot fill the
// table the others share. A bound of zero or less is no bound.
type sessionLimits struct {
	max, perPrincipal, perAddress int

	mu          sync.Mutex
	total       int
	byPrincipal map[string]int
	byAddress   map[string]int
}

func newSessionLimits(max, perPrincipal, perAddress int) *sessionLimits {
	return &sessionLimits{max: max, perPrincipal: perPrincipal, perAddress: perAddress,
		byPrincipal: map[string]int{}, byAddress: map[string]int{}}
}

// sessionRefusal is why a new session is refused.
type sessionRefusal struct {
	status     int
	retryAfter string
	msg        string
}

// write answers the request with the refusal.
func (f *sessionRefusal) write(w http.ResponseWriter) {
	w.Header().Set("Retry-After", f.retryAfter)
	writeHTTPError(w, f.status, jsonrpc.CodeInternalError, f.msg)
}

// acquire counts a new session of principal from the request's source
// address, or says why it may not start. release undoes it (once).
func (l *sessionLimits) acquire(r *http.Request, principal string) (release func(), refused *sessionRefusal) {
	addr, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		addr = r.RemoteAddr
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	// The party's own bounds first: a client that floods gets 429 for
	// itself, and the shared table stays open to the others.
	if l.perPrincipal > 0 && principal != "" && l.byPrincipal[principal] >= l.perPrincipal {
		return nil, &sessionRefusal{http.StatusTooManyRequests, "30",
			fmt.Sprintf("too many sessions: this principal already has %d open sessions (the limit); close some (HTTP DELETE) or wait for them to expire", l.perPrincipal)}
	}
	if l.perAddress > 0 && l.byAddress[addr] >= l.perAddress {
		return nil, &sessionRefusal{http.StatusTooManyRequests, "30",
			fmt.Sprintf("too many sessions: %d sessions are already open from this address (the limit); close some or wait for them to expire", l.perAddress)}
	}
	if l.max > 0 && l.total >= l.max {
		return nil, &sessionRefusal{http.StatusServiceUnavailable, "10",
			fmt.Sprintf("too many sessions: the server holds its limit of %d sessions; try again later", l.max)}
	}
	l.total++
	if principal != "" {
		l.byPrincipal[principal]++
	}
	l.byAddress[addr]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.total--
			if principal != "" {
				if l.byPrincipal[principal]--; l.byPrincipal[principal] <= 0 {
					delete(l.byPrincipal, principal)
				}
			}
			if l.byAddress[addr]--; l.byAddress[addr] <= 0 {
				delete(l.byAddress, addr)
			}
		})
	}, nil
}

// Defaults of the bounds on open streams (StreamableHTTPOptions).
const (
	DefaultMaxStreamsPerSession   = 32
	DefaultMaxStreamsPerPrincipal = 256
	DefaultMaxStreamsPerAddress   = 1024
)

// streamLimits counts the open streams of an HTTP handler: GET streams
// (the standalone stream and resumptions) and POST requests being
// answered, per session, per principal and per source address. A bound of
// zero or less is no bound.
type streamLimits struct {
	perSession, perPrincipal, perAddress int

	mu          sync.Mutex
	total       int
	bySession   map[string]int
	byPrincipal map[string]int
	byAddress   map[string]int
}

// open returns the number of streams open.
func (l *streamLimits) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

func newStreamLimits(perSession, perPrincipal, perAddress int) *streamLimits {
	return &streamLimits{perSession: perSession, perPrincipal: perPrincipal, perAddress: perAddress,
		bySession: map[string]int{}, byPrincipal: map[string]int{}, byAddress: map[string]int{}}
}

// A streamSlot is one open stream counted by streamLimits.acquire; its
// release gives it back. It is a value, so that counting a request's
// stream allocates nothing.
type streamSlot struct {
	l                        *streamLimits
	addr, session, principal string
}

// acquire counts one more open stream of session (of principal, "" for
// none) from the request's source address, or says why it may not open.
// The slot's release undoes it; call it once.
func (l *streamLimits) acquire(r *http.Request, session, principal string) (streamSlot, *sessionRefusal) {
	addr, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		addr = r.RemoteAddr
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.perSession > 0 && l.bySession[session] >= l.perSession:
		return streamSlot{}, &sessionRefusal{http.StatusTooManyRequests, "1",
			fmt.Sprintf("too many open streams: this session already has %d requests and streams open (the limit); wait for some to finish", l.perSession)}
	case l.perPrincipal > 0 && principal != "" && l.byPrincipal[principal] >= l.perPrincipal:
		return streamSlot{}, &sessionRefusal{http.StatusTooManyRequests, "1",
			fmt.Sprintf("too many open streams: this principal already has %d requests and streams open (the limit); wait for some to finish", l.perPrincipal)}
	case l.perAddress > 0 && l.byAddress[addr] >= l.perAddress:
		return streamSlot{}, &sessionRefusal{http.StatusTooManyRequests, "1",
			fmt.Sprintf("too many open streams: %d requests and streams are already open from this address (the limit); wait for some to finish", l.perAddress)}
	}
	l.total++
	l.bySession[session]++
	if principal != "" {
		l.byPrincipal[principal]++
	}
	l.byAddress[addr]++
	return streamSlot{l: l, addr: addr, session: session, principal: principal}, nil
}

// release gives the slot back; the zero slot has nothing to give.
func (s streamSlot) release() {
	l := s.l
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	dec := func(m map[string]int, k string) {
		if m[k]--; m[k] <= 0 {
			delete(m, k)
		}
	}
	l.total--
	dec(l.bySession, s.session)
	if s.principal != "" {
		dec(l.byPrincipal, s.principal)
	}
	dec(l.byAddress, s.addr)
}
