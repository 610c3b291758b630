// Package pwguard bounds what password checks can make a server spend.
//
// A password check (argon2id with 64 MiB) is the most expensive thing an
// unauthenticated client can ask for. A Guard runs at most MaxConcurrent
// checks at once and lets at most Queue more wait for a turn; beyond that
// a check is refused at once (HTTP 503 with Retry-After). It also
// throttles failures: after Failures failed checks for one user name
// within Window, or AddressFailures from one source address within
// AddressWindow, further checks for that name or from that address are
// refused without hashing (HTTP 429 with Retry-After) until the oldest
// failure leaves the window.
//
// One Guard is meant to be shared by every page that checks passwords
// (the sign-in form, the approval pages), so that the bounds hold across
// them.
package pwguard

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"time"
)

// Options configure a Guard. Zero values mean the defaults given.
type Options struct {
	// MaxConcurrent bounds the checks running at once (default 2 ×
	// GOMAXPROCS).
	MaxConcurrent int
	// Queue bounds the checks waiting for a turn (default 8; negative:
	// none wait).
	Queue int
	// MaxWait bounds how long a check waits for a turn (default 10s).
	MaxWait time.Duration
	// Failures is the number of failures per user name within Window
	// after which checks for that name are refused (default 5 within 15
	// minutes).
	Failures int
	Window   time.Duration
	// AddressFailures is the number of failures from one source address
	// within AddressWindow after which checks from it are refused (default
	// 20 within a minute). It is laxer than the bound per name because
	// many users may share an address (a proxy, a NAT).
	AddressFailures int
	AddressWindow   time.Duration
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

// Guard bounds password checks. Its methods are safe for concurrent use.
type Guard struct {
	opts    Options
	sem     chan struct{}
	waiting chan struct{} // a slot per check allowed to wait

	mu    sync.Mutex
	users failureLog
	addrs failureLog
}

// New returns a Guard with opts (nil: the defaults).
func New(opts *Options) *Guard {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = 2 * runtime.GOMAXPROCS(0)
	}
	if o.Queue == 0 {
		o.Queue = 8
	}
	o.Queue = max(o.Queue, 0)
	if o.MaxWait <= 0 {
		o.MaxWait = 10 * time.Second
	}
	if o.Failures <= 0 {
		o.Failures = 5
	}
	if o.Window <= 0 {
		o.Window = 15 * time.Minute
	}
	if o.AddressFailures <= 0 {
		o.AddressFailures = 20
	}
	if o.AddressWindow <= 0 {
		o.AddressWindow = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Guard{opts: o, sem: make(chan struct{}, o.MaxConcurrent), waiting: make(chan struct{}, o.Queue),
		users: failureLog{m: map[string][]time.Time{}}, addrs: failureLog{m: map[string][]time.Time{}}}
}

// RefusedError is the error of a check the Guard refused to run.
type RefusedError struct {
	// Status is the HTTP status to answer with: 429 for a throttled user
	// name or address, 503 when too many checks are running.
	Status int
	// RetryAfter is when to try again.
	RetryAfter time.Duration
	// Reason says why, for people.
	Reason string
}

func (e *RefusedError) Error() string { return "password check refused: " + e.Reason }

// HTTPStatus returns e.Status.
func (e *RefusedError) HTTPStatus() int { return e.Status }

// RetryAfterSeconds returns RetryAfter in whole seconds, at least 1, for
// a Retry-After header.
func (e *RefusedError) RetryAfterSeconds() int {
	return max(1, int((e.RetryAfter+time.Second-1)/time.Second))
}

// Check runs verify, a password check for user coming from addr, within
// the Guard's bounds, and records its outcome. It returns a *RefusedError
// without running verify when the user name or the address has too many
// recent failures, or when too many checks are running and waiting.
func (g *Guard) Check(ctx context.Context, user, addr string, verify func() (bool, error)) (bool, error) {
	if err := g.throttled(user, addr); err != nil {
		return false, err
	}
	if err := g.acquire(ctx); err != nil {
		return false, err
	}
	ok, err := func() (bool, error) {
		defer func() { <-g.sem }()
		return verify()
	}()
	if err != nil {
		return false, err
	}
	now := g.opts.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if ok {
		g.users.forget(user)
	} else {
		g.users.add(user, now, g.opts.Window)
		g.addrs.add(addr, now, g.opts.AddressWindow)
	}
	return ok, nil
}

// throttled returns a *RefusedError if user or addr has too many recent
// failures.
func (g *Guard) throttled(user, addr string) error {
	now := g.opts.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if wait, over := g.users.over(user, now, g.opts.Window, g.opts.Failures); over {
		return &RefusedError{Status: http.StatusTooManyRequests, RetryAfter: wait,
			Reason: fmt.Sprintf("too many failed sign-ins for this user name (%d within %s); try again in %s", g.opts.Failures, g.opts.Window, wait.Round(time.Second))}
	}
	if wait, over := g.addrs.over(addr, now, g.opts.AddressWindow, g.opts.AddressFailures); over {
		return &RefusedError{Status: http.StatusTooManyRequests, RetryAfter: wait,
			Reason: fmt.Sprintf("too many failed sign-ins from this address (%d within %s); try again in %s", g.opts.AddressFailures, g.opts.AddressWindow, wait.Round(time.Second))}
	}
	return nil
}

// acquire takes a turn to run a check, waiting in the queue if there is
// room in it.
func (g *Guard) acquire(ctx context.Context) error {
	select {
	case g.sem <- struct{}{}:
		return nil
	default:
	}
	busy := &RefusedError{Status: http.StatusServiceUnavailable, RetryAfter: time.Second,
		Reason: "the server is busy checking other passwords; try again in a moment"}
	select {
	case g.waiting <- struct{}{}:
	default:
		return busy // the queue is full
	}
	defer func() { <-g.waiting }()
	t := time.NewTimer(g.opts.MaxWait)
	defer t.Stop()
	select {
	case g.sem <- struct{}{}:
		return nil
	case <-t.C:
		return busy
	case <-ctx.Done():
		return ctx.Err()
	}
}

// failureLog keeps recent failure times per key, bounded in size.
type failureLog struct {
	m map[string][]time.Time
}

// maxKeys bounds the keys a failureLog keeps; past it, keys with no
// recent failure are dropped, and if none is, the oldest entries go with
// the rest (an attacker spraying names or addresses then loses their
// throttle state rather than growing memory).
const maxKeys = 10000

func (l *failureLog) recent(key string, now time.Time, window time.Duration) []time.Time {
	var keep []time.Time
	for _, at := range l.m[key] {
		if now.Sub(at) < window {
			keep = append(keep, at)
		}
	}
	return keep
}

// over reports whether key has limit or more failures within window, and
// how long until the oldest of them leaves it.
func (l *failureLog) over(key string, now time.Time, window time.Duration, limit int) (time.Duration, bool) {
	r := l.recent(key, now, window)
	if len(r) < limit {
		return 0, false
	}
	return r[len(r)-limit].Add(window).Sub(now), true
}

func (l *failureLog) add(key string, now time.Time, window time.Duration) {
	if len(l.m) >= maxKeys {
		for k := range l.m {
			if len(l.recent(k, now, window)) == 0 {
				delete(l.m, k)
			}
		}
		if len(l.m) >= maxKeys {
			clear(l.m)
		}
	}
	l.m[key] = append(l.recent(key, now, window), now)
}

func (l *failureLog) forget(key string) { delete(l.m, key) }
