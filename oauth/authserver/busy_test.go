package authserver_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/mcpgate/mcpgate/internal/pwguard"
	"github.com/mcpgate/mcpgate/oauth/authserver"
)

// TestLoginBusy: when the password checks the guard allows are all
// running and its queue is full, a sign-in gets 503 with Retry-After at
// once instead of starting one more 64 MiB hash.
func TestLoginBusy(t *testing.T) {
	guard := pwguard.New(&pwguard.Options{MaxConcurrent: 1, Queue: -1})
	e := newEnv(t, &envOptions{path: "/oauth", mutate: func(o *authserver.Options) { o.PasswordGuard = guard }})
	// Another page holds the only turn.
	holding, release := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		guard.Check(context.Background(), "other", "10.9.9.9", func() (bool, error) {
			close(holding)
			<-release
			return true, nil
		})
	}()
	<-holding
	b := newBrowser(t)
	_, chal := pkce()
	q := authzQuery("pub", "http://127.0.0.1:1/callback", chal)
	_, page := b.get(e.url("/authorize") + "?" + q.Encode())
	f := hidden(page)
	f.Set("username", "alice")
	f.Set("password", alicePass)
	resp, _ := b.postForm(e.url("/login"), f)
	close(release)
	<-done
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("busy sign-in: HTTP %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}
