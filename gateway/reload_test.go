package gateway

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/store"
)

// toolNames lists the tools the client sees.
func toolNames(t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()
	var names []string
	for tool, err := range cs.Tools(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tool.Name)
	}
	return names
}

// waitTools polls the client's tool list until ok holds, with a generous
// deadline.
func waitTools(t *testing.T, cs *mcp.ClientSession, what string, ok func([]string) bool) {
	t.Helper()
	var names []string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if names = toolNames(t, cs); ok(names) {
			return
		}
	}
	t.Fatalf("tools never %s: %v", what, names)
}

// TestApplyUpstreams: a reload adds, removes and changes upstreams while a
// client's session, and the gateway's session with the upstream that did
// not change, stay up and keep working; the client is told the lists
// changed.
func TestApplyUpstreams(t *testing.T) {
	urlA, _ := httpUpstream(t, "a")
	urlB, _ := httpUpstream(t, "b")
	urlC, _ := httpUpstream(t, "c")
	cfg := &config.Config{Upstreams: []config.Upstream{{Name: "a", URL: urlA + "/mcp"}, {Name: "b", URL: urlB + "/mcp"}}}
	g, url := startGateway(t, cfg)
	changed := make(chan struct{}, 16)
	cs := connect(t, url, &mcp.ClientOptions{ToolListChangedHandler: func(context.Context, *mcp.ClientSession) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}})
	if got := callText(t, cs, "a_whoami"); got != "a" {
		t.Fatalf("a_whoami = %q", got)
	}
	if got := callText(t, cs, "b_whoami"); got != "b" {
		t.Fatalf("b_whoami = %q", got)
	}
	primaryA := g.upstreamNamed("a").primary.cs

	// Remove b, add c.
	ch, err := g.ApplyUpstreams(context.Background(), []config.Upstream{{Name: "a", URL: urlA + "/mcp"}, {Name: "c", URL: urlC + "/mcp"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ch.Added, []string{"c"}) || !slices.Equal(ch.Removed, []string{"b"}) || len(ch.Changed) != 0 {
		t.Fatalf("changes = %+v", ch)
	}
	select {
	case <-changed:
	case <-time.After(30 * time.Second):
		t.Fatal("no tools/list_changed after the reload")
	}
	waitTools(t, cs, "show c without b", func(n []string) bool {
		return slices.Contains(n, "c_whoami") && !slices.Contains(n, "b_whoami")
	})
	if got := callText(t, cs, "a_whoami"); got != "a" {
		t.Fatalf("a_whoami after the reload = %q", got)
	}
	if got := callText(t, cs, "c_whoami"); got != "c" {
		t.Fatalf("c_whoami = %q", got)
	}
	if res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "b_whoami"}); err == nil && !res.IsError {
		t.Fatalf("b_whoami after b was removed: %+v", res)
	}
	if g.upstreamNamed("a").primary.cs != primaryA {
		t.Fatal("the session with the unchanged upstream a was replaced")
	}

	// Change c (a new prefix): it is replaced, a is untouched.
	ch, err = g.ApplyUpstreams(context.Background(), []config.Upstream{{Name: "a", URL: urlA + "/mcp"}, {Name: "c", URL: urlC + "/mcp", Prefix: ptr("cc_")}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ch.Changed, []string{"c"}) || len(ch.Added)+len(ch.Removed) != 0 {
		t.Fatalf("changes = %+v", ch)
	}
	waitTools(t, cs, "show cc_ tools", func(n []string) bool {
		return slices.Contains(n, "cc_whoami") && !slices.Contains(n, "c_whoami")
	})
	if got := callText(t, cs, "cc_whoami"); got != "c" {
		t.Fatalf("cc_whoami = %q", got)
	}
	if got := callText(t, cs, "a_whoami"); got != "a" || g.upstreamNamed("a").primary.cs != primaryA {
		t.Fatalf("a after the second reload: %q, same session %v", got, g.upstreamNamed("a").primary.cs == primaryA)
	}
	var states []string
	for _, st := range g.UpstreamStates() {
		states = append(states, st.Name)
	}
	if strings.Join(states, ",") != "a,c" {
		t.Fatalf("upstream states after reloads: %v", states)
	}

	// The same set again changes nothing.
	if ch, err := g.ApplyUpstreams(context.Background(), []config.Upstream{{Name: "a", URL: urlA + "/mcp"}, {Name: "c", URL: urlC + "/mcp", Prefix: ptr("cc_")}}); err != nil || !ch.Empty() {
		t.Fatalf("no-op reload: %+v, %v", ch, err)
	}
}

// TestUpstreamStatesWritten: the gateway writes its upstreams' states to
// Options.UpstreamStates as they change (a ready one, one failing with its
// error), follows a reload, and records them as stopped at Close.
func TestUpstreamStatesWritten(t *testing.T) {
	urlA, _ := httpUpstream(t, "a")
	st := &store.UpstreamStatesMemory{}
	g, err := New(&config.Config{Server: &config.Server{StartupWait: -1}, Upstreams: []config.Upstream{
		{Name: "a", URL: urlA + "/mcp"}, {Name: "down", URL: "http://127.0.0.1:1/mcp"},
	}}, &Options{UpstreamStates: st})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			g.Close()
		}
	}()
	waitStates := func(what string, ok func(map[string]*store.UpstreamStateRecord) bool) map[string]*store.UpstreamStateRecord {
		t.Helper()
		var m map[string]*store.UpstreamStateRecord
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			recs, err := st.ListUpstreamStates(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			m = map[string]*store.UpstreamStateRecord{}
			for _, r := range recs {
				m[r.Name] = r
			}
			if ok(m) {
				return m
			}
		}
		t.Fatalf("states never %s: %+v", what, m)
		return nil
	}
	m := waitStates("ready and failing", func(m map[string]*store.UpstreamStateRecord) bool {
		return m["a"] != nil && m["a"].State == UpstreamReady && m["down"] != nil && m["down"].LastError != "" &&
			(m["down"].State == UpstreamBackoff || m["down"].State == UpstreamCircuitOpen)
	})
	if d := m["down"]; d.Failures < 1 || d.RetryAt.IsZero() || d.UpdatedAt.IsZero() {
		t.Errorf("down = %+v", d)
	}
	if _, err := g.ApplyUpstreams(context.Background(), []config.Upstream{{Name: "a", URL: urlA + "/mcp"}}); err != nil {
		t.Fatal(err)
	}
	waitStates("without down", func(m map[string]*store.UpstreamStateRecord) bool { return m["down"] == nil && m["a"] != nil })
	closed = true
	g.Close()
	recs, _ := st.ListUpstreamStates(context.Background())
	if len(recs) != 1 || recs[0].Name != "a" || recs[0].State != "stopped" {
		t.Fatalf("states after Close: %+v", recs)
	}
}

// TestApplyUpstreamsFirstPerUser: a reload cannot add the first per-user
// (oauth_user) upstream, whose authorization is set up at start: it is
// refused with why, and nothing changes.
func TestApplyUpstreamsFirstPerUser(t *testing.T) {
	urlA, _ := httpUpstream(t, "a")
	g, _ := startGateway(t, &config.Config{Upstreams: []config.Upstream{{Name: "a", URL: urlA + "/mcp"}}})
	_, err := g.ApplyUpstreams(context.Background(), []config.Upstream{
		{Name: "b", URL: "https://b.example/mcp", Credentials: &config.Credentials{Type: config.CredentialsOAuthUser}},
	})
	if err == nil || !strings.Contains(err.Error(), "restart") {
		t.Fatalf("err = %v", err)
	}
	if g.upstreamNamed("a") == nil || g.upstreamNamed("b") != nil {
		t.Fatal("the refused reload changed the upstream set")
	}
}
