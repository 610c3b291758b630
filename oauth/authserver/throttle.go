package authserver

import (
	"sync"
	"time"
)

// loginThrottle limits failed password attempts per username within one
// process: after maxFailures failures in window, further attempts for
// that username are refused until the window passes.
type loginThrottle struct {
	mu       sync.Mutex
	failures map[string][]time.Time
}

const (
	maxLoginFailures   = 5
	loginFailureWindow = 15 * time.Minute
	maxThrottleEntries = 10000
)

func (t *loginThrottle) recent(name string, now time.Time) []time.Time {
	var keep []time.Time
	for _, at := range t.failures[name] {
		if now.Sub(at) < loginFailureWindow {
			keep = append(keep, at)
		}
	}
	return keep
}

// blocked reports whether username may not try now.
func (t *loginThrottle) blocked(username string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.recent(username, now)) >= maxLoginFailures
}

// fail records a failed attempt.
func (t *loginThrottle) fail(username string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.failures == nil {
		t.failures = map[string][]time.Time{}
	}
	if len(t.failures) >= maxThrottleEntries {
		for k := range t.failures {
			if len(t.recent(k, now)) == 0 {
				delete(t.failures, k)
			}
		}
		if len(t.failures) >= maxThrottleEntries {
			clear(t.failures)
		}
	}
	t.failures[username] = append(t.recent(username, now), now)
}

// succeed forgets the failures of username.
func (t *loginThrottle) succeed(username string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.failures, username)
}
