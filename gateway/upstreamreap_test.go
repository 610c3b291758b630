package gateway

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/mcp"
)

// sessionPrincipals lists the principals u holds sessions for.
func sessionPrincipals(u *upstream) map[string]bool {
	out := map[string]bool{}
	for _, us := range u.snapshot() {
		out[us.principal] = true
	}
	return out
}

// waitGone waits until the gateway has no session of principal.
func waitGone(t *testing.T, g *Gateway, principal string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); len(g.sessions.ofPrincipal(principal)) > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the gateway still holds a session of %s", principal)
		}
	}
}

// TestUpstreamSessionBound: an upstream holds at most
// server.max_upstream_sessions sessions; at the bound a session whose
// principal left is ended to make room, and when every session is in use
// the request fails with a clear error. Idle sessions of principals that
// left are ended; those of connected principals and the start-up session
// are not.
func TestUpstreamSessionBound(t *testing.T) {
	upURL, _ := httpUpstream(t, "up")
	g, err := New(&config.Config{
		Upstreams: []config.Upstream{{Name: "up", URL: upURL, Prefix: ptr("")}},
		// The start-up session and two more; the reaper is off (the
		// test calls reapIdle itself).
		Server: &config.Server{MaxUpstreamSessions: 3, UpstreamSessionIdle: -1},
	}, &Options{Principal: func(ctx context.Context) string { s, _ := ctx.Value(userKey{}).(string); return s }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	url := userHeaderGateway(t, g)
	t.Cleanup(func() { g.Close() })
	u := g.upstreamNamed("up")

	call := func(cs *mcp.ClientSession) error {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "whoami"})
		if err == nil && res.IsError {
			t.Fatalf("whoami: tool error %v", res.Content)
		}
		return err
	}
	alice, bob, carol := connectAs(t, url, "alice"), connectAs(t, url, "bob"), connectAs(t, url, "carol")
	if err := call(alice); err != nil {
		t.Fatal(err)
	}
	if err := call(bob); err != nil {
		t.Fatal(err)
	}
	// Carol's catalogue could not be built from up (the bound), so she
	// does not see its tools, and a session for her is refused.
	if err := call(carol); err == nil {
		t.Fatal("carol called a tool of an upstream with no session for her")
	}
	_, err = u.sessionAs(ctx, "carol", "")
	if err == nil || !strings.Contains(err.Error(), "holds its limit of 3 sessions (server.max_upstream_sessions") {
		t.Fatalf("a fourth session while all are in use: %v, want the limit error", err)
	}

	bob.Close()
	waitGone(t, g, "bob")
	if err := call(carol); err != nil {
		t.Fatalf("after bob left, carol's call: %v", err)
	}
	if p := sessionPrincipals(u); p["bob"] || !p["carol"] || !p["alice"] || len(p) != 3 {
		t.Fatalf("sessions after making room: %v, want the start-up session, alice and carol", p)
	}

	carol.Close()
	waitGone(t, g, "carol")
	if n := g.reapIdle(time.Now().Add(time.Hour)); n != 1 {
		t.Fatalf("reapIdle ended %d sessions, want carol's alone", n)
	}
	if p := sessionPrincipals(u); p["carol"] || !p["alice"] || len(p) != 2 {
		t.Fatalf("sessions after reaping: %v, want the start-up session and alice", p)
	}
	g.mu.Lock()
	_, carolCat := g.catalogs["carol"]
	_, aliceCat := g.catalogs["alice"]
	g.mu.Unlock()
	if carolCat || !aliceCat {
		t.Fatalf("catalogues after reaping: carol's kept %v, alice's kept %v; want only alice's", carolCat, aliceCat)
	}
	// Alice's session was not ended: her calls still work.
	if err := call(alice); err != nil {
		t.Fatal(err)
	}
}
