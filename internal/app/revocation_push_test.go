package app

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/oauth/resource"
	"github.com/mcpgate/mcpgate/store"
)

// pushingStore is a store whose revocation version never changes when
// polled, but which pushes revocations on a channel.
type pushingStore struct {
	store.Store
	push chan int64
}

func (*pushingStore) OnTokenRevoked(func())                                 {}
func (*pushingStore) TokenRevocationVersion(context.Context) (int64, error) { return 0, nil }
func (s *pushingStore) WatchTokenRevocations(ctx context.Context) (<-chan int64, error) {
	out := make(chan int64)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case v := <-s.push:
				select {
				case out <- v:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

// countingVerifier counts the verifications that reach it.
type countingVerifier struct{ n atomic.Int64 }

func (c *countingVerifier) Verify(context.Context, string) (*resource.Principal, error) {
	c.n.Add(1)
	return &resource.Principal{Subject: "alice", ExpiresAt: time.Now().Add(time.Hour)}, nil
}

// TestTokenCachePushed checks that a revocation pushed by the store
// empties the token cache, without waiting for a poll to see the version
// change (here it never does).
func TestTokenCachePushed(t *testing.T) {
	a := &App{logger: slog.New(slog.DiscardHandler)}
	st := &pushingStore{Store: store.NewMemory(), push: make(chan int64)}
	next := &countingVerifier{}
	v := a.tokenVerifier(context.Background(), st, next)
	defer a.Close()
	ctx := context.Background()
	for range 2 {
		if _, err := v.Verify(ctx, "tok"); err != nil {
			t.Fatal(err)
		}
	}
	if n := next.n.Load(); n != 1 {
		t.Fatalf("%d verifications reached the verifier, want 1 (cached)", n)
	}
	st.push <- 1 // received: the cache is emptied right after
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := v.Verify(ctx, "tok"); err != nil {
			t.Fatal(err)
		}
		if next.n.Load() > 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the pushed revocation did not empty the cache within 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
