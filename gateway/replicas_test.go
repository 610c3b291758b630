package gateway

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/store"
)

// sharedGateway starts a gateway that shares the session records rec
// with others (Options.SharedSessions), serving the caller named by the
// X-Test-User header, and returns it with its /mcp URL.
func sharedGateway(t *testing.T, rec store.GatewaySessions, upURL string) (*Gateway, string) {
	t.Helper()
	g, err := New(&config.Config{Upstreams: []config.Upstream{{Name: "up", URL: upURL}}}, &Options{
		Principal:      func(ctx context.Context) string { s, _ := ctx.Value(userKey{}).(string); return s },
		Sessions:       rec,
		SharedSessions: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g, userHeaderGateway(t, g)
}

// postAs sends a tools/list on session id as user to url and returns the
// HTTP status.
func postAs(t *testing.T, url, user, id string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"jsonrpc":"2.0","id":7,"method":"tools/list"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", id)
	req.Header.Set("Mcp-Protocol-Version", mcp.LatestProtocolVersion)
	req.Header.Set("X-Test-User", user)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestSharedSessions runs two gateways on one set of session records: a
// gateway that starts leaves the other's live records alone and ends only
// unused ones; a session opened on one continues on the other for its
// principal only, with the client's capabilities; a DELETE on either ends
// the record, and the other drops its copy when told (DropSession, which
// the wiring calls on the store's announcement).
func TestSharedSessions(t *testing.T) {
	ctx := context.Background()
	rec := store.NewMemoryGatewaySessions()
	now := time.Now().UTC()
	elsewhere := &store.GatewaySession{ID: "elsewhere", Principal: "zed", Transport: store.TransportStreamable, CreatedAt: now.Add(-time.Hour), LastSeen: now.Add(-time.Minute)}
	unused := &store.GatewaySession{ID: "unused", Principal: "zed", Transport: store.TransportStreamable, CreatedAt: now.Add(-72 * time.Hour), LastSeen: now.Add(-48 * time.Hour)}
	for _, s := range []*store.GatewaySession{elsewhere, unused} {
		if err := rec.PutGatewaySession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	upURL, _ := httpUpstream(t, "up")
	g1, url1 := sharedGateway(t, rec, upURL)
	g2, url2 := sharedGateway(t, rec, upURL)
	if got, _ := rec.GetGatewaySession(ctx, "elsewhere"); !got.EndedAt.IsZero() {
		t.Errorf("a starting gateway ended another replica's live record: %+v", got)
	}
	if got, _ := rec.GetGatewaySession(ctx, "unused"); got.EndedAt.IsZero() {
		t.Errorf("a record unused for %s was not ended: %+v", DefaultSharedSessionIdle, got)
	}

	cs, err := mcp.NewClient(&mcp.Implementation{Name: "alice-app", Version: "1"}, &mcp.ClientOptions{
		ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "decline"}, nil
		},
	}).Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url1, HTTPClient: &http.Client{Transport: userTransport{"alice"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	id := cs.ID()
	if code := postAs(t, url2, "bob", id); code != http.StatusNotFound {
		t.Errorf("bob on alice's session through the other gateway: %d, want 404", code)
	}
	if code := postAs(t, url2, "alice", id); code != http.StatusOK {
		t.Fatalf("alice's session through the other gateway: %d, want 200", code)
	}
	var adopted *mcp.ServerSession
	for _, ds := range g2.sessions.all() {
		if ds.id() == id {
			adopted = ds.ss
		}
	}
	if adopted == nil {
		t.Fatal("the other gateway holds no copy of the session")
	}
	if p := adopted.InitializeParams(); p == nil || p.Capabilities.Elicitation == nil || p.ClientInfo.Name != "alice-app" {
		t.Errorf("the adopted session's initialize params = %+v, want the client's (elicitation, alice-app)", p)
	}
	if code := postAs(t, url2, "bob", "no-such-session"); code != http.StatusNotFound {
		t.Errorf("an unknown session: %d, want 404", code)
	}

	// DELETE through the second gateway ends the record; the first drops
	// its copy when the store announces it.
	req, _ := http.NewRequest(http.MethodDelete, url2, nil)
	req.Header.Set("Mcp-Session-Id", id)
	req.Header.Set("X-Test-User", "alice")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	if got, _ := rec.GetGatewaySession(ctx, id); got == nil || got.EndedAt.IsZero() {
		t.Fatalf("the record after DELETE: %+v, want ended", got)
	}
	if !g1.DropSession(id) {
		t.Error("DropSession: the first gateway held no copy")
	}
	for _, url := range []string{url1, url2} {
		if code := postAs(t, url, "alice", id); code != http.StatusNotFound {
			t.Errorf("the deleted session at %s: %d, want 404", url, code)
		}
	}
}
