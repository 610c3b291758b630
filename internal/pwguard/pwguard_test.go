package pwguard

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestConcurrencyBound: at most MaxConcurrent checks run, Queue more
// wait, and the next is refused at once with 503 and a Retry-After.
func TestConcurrencyBound(t *testing.T) {
	g := New(&Options{MaxConcurrent: 2, Queue: 1})
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	verify := func() (bool, error) {
		started <- struct{}{}
		<-release
		return true, nil
	}
	var wg sync.WaitGroup
	results := make(chan error, 3)
	for range 3 { // two run, one waits
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := g.Check(context.Background(), "u", "a", verify)
			results <- err
		}()
	}
	<-started
	<-started
	// Wait until the third is queued.
	deadline := time.Now().Add(5 * time.Second)
	for len(g.waiting) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("third check never queued")
		}
		time.Sleep(time.Millisecond)
	}
	_, err := g.Check(context.Background(), "v", "b", func() (bool, error) { t.Error("ran past the bound"); return true, nil })
	var re *RefusedError
	if !errors.As(err, &re) || re.Status != http.StatusServiceUnavailable || re.RetryAfterSeconds() < 1 {
		t.Fatalf("fourth check: %v", err)
	}
	close(release)
	wg.Wait()
	close(results)
	for err := range results {
		if err != nil {
			t.Errorf("admitted check: %v", err)
		}
	}
}

// TestFailureThrottle: failures are counted per user name and per
// address; past the bound, checks are refused with 429 without running,
// until the window passes.
func TestFailureThrottle(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	g := New(&Options{Failures: 3, Window: time.Minute, AddressFailures: 3, AddressWindow: time.Minute, Now: func() time.Time { return now }})
	wrong := func() (bool, error) { return false, nil }
	ran := false
	right := func() (bool, error) { ran = true; return true, nil }
	ctx := context.Background()
	for range 3 {
		if _, err := g.Check(ctx, "alice", "10.0.0.1", wrong); err != nil {
			t.Fatal(err)
		}
	}
	var re *RefusedError
	if _, err := g.Check(ctx, "alice", "10.0.0.2", right); !errors.As(err, &re) || re.Status != http.StatusTooManyRequests || ran {
		t.Fatalf("throttled user: %v (ran %v)", err, ran)
	}
	if re.RetryAfter != time.Minute {
		t.Errorf("retry after %s, want 1m", re.RetryAfter)
	}
	// The address is throttled too: another user from it is refused.
	if _, err := g.Check(ctx, "bob", "10.0.0.1", right); !errors.As(err, &re) || re.Status != http.StatusTooManyRequests || ran {
		t.Fatalf("throttled address: %v", err)
	}
	// Another user from another address is not.
	if ok, err := g.Check(ctx, "bob", "10.0.0.3", right); err != nil || !ok {
		t.Fatalf("bob: %v %v", ok, err)
	}
	now = now.Add(time.Minute)
	if ok, err := g.Check(ctx, "alice", "10.0.0.1", right); err != nil || !ok {
		t.Fatalf("after the window: %v %v", ok, err)
	}
}
