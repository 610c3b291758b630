package gateway

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/inventory"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/store"
)

// TestSessionRecords checks that the gateway records its clients'
// sessions in the database, with their transport and source address, ends
// them when they end and at start-up (those a stopped process left open),
// and records its upstreams for the inventory.
func TestSessionRecords(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	db := openDataDir(t, dir)
	stale := &store.GatewaySession{ID: "left-open", Principal: "zed", Transport: store.TransportStreamable, CreatedAt: time.Now().Add(-time.Hour).UTC()}
	if err := db.PutGatewaySession(ctx, stale); err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.New(db, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	up := stdioUpstream("worker")
	up.Owner = "platform-team"
	g, err := New(&config.Config{DataDir: dir, Upstreams: []config.Upstream{up}}, &Options{
		Principal: func(ctx context.Context) string { s, _ := ctx.Value(userKey{}).(string); return s },
		Sessions:  db,
		Tasks:     db,
		Inventory: inv,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	url := userHeaderGateway(t, g)
	live := func() []*store.GatewaySession {
		t.Helper()
		l, err := db.ListGatewaySessions(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	if l := live(); len(l) != 0 {
		t.Fatalf("live sessions after start = %+v, want the stale one ended", l)
	}

	alice := connectAs(t, url, "alice")
	sse, err := mcp.NewClient(&mcp.Implementation{Name: "bob", Version: "1"}, nil).Connect(ctx,
		&mcp.SSEClientTransport{Endpoint: strings.TrimSuffix(url, "/mcp") + "/sse", HTTPClient: &http.Client{Transport: userTransport{"bob"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sse.Close() }) // before the HTTP server closes
	ct, st := mcp.NewInMemoryTransports()
	if _, err := g.Server().Connect(ctx, st, nil); err != nil {
		t.Fatal(err)
	}
	local, err := mcp.NewClient(&mcp.Implementation{Name: "local", Version: "1"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()

	byPrincipal := map[string]*store.GatewaySession{}
	for _, s := range live() {
		byPrincipal[s.Principal] = s
	}
	a, b, anon := byPrincipal["alice"], byPrincipal["bob"], byPrincipal[AnonymousPrincipal]
	switch {
	case a == nil || a.ID != alice.ID() || a.Transport != store.TransportStreamable || a.SourceAddr != "127.0.0.1" || a.CreatedAt.IsZero():
		t.Fatalf("alice's session = %+v, want streamable from 127.0.0.1 with id %s", a, alice.ID())
	case b == nil || b.Transport != store.TransportSSE:
		t.Fatalf("bob's session = %+v, want sse", b)
	case anon == nil || anon.Transport != store.TransportStdio || !strings.HasPrefix(anon.ID, "local-"):
		t.Fatalf("in-process session = %+v, want stdio with a made-up id", anon)
	}

	g2, err := inv.Graph(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(g2.Sessions) != 3 {
		t.Fatalf("graph sessions = %+v, want 3", g2.Sessions)
	}
	if len(g2.Upstreams) != 1 || !g2.Upstreams[0].Configured || g2.Upstreams[0].Transport != "stdio" || g2.Upstreams[0].Owner != "platform-team" ||
		g2.Upstreams[0].CredentialType != "none" || len(g2.Upstreams[0].Command) != 2 {
		t.Fatalf("graph upstreams = %+v", g2.Upstreams)
	}

	// A session that ends is recorded as ended.
	sse.Close()
	deadline := time.Now().Add(10 * time.Second)
	for len(live()) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("live sessions after bob left = %+v", live())
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Closing the gateway ends the others.
	g.Close()
	if l := live(); len(l) != 0 {
		t.Fatalf("live sessions after Close = %+v", l)
	}
	all, _ := db.ListGatewaySessions(ctx, true)
	if len(all) != 4 {
		t.Fatalf("all sessions = %d, want 4 (kept for the retention)", len(all))
	}
}
