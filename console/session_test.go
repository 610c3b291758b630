package console

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/gateway/config"
)

// groupsSignIn is a GroupsSignIn: its tickets carry the groups an OIDC
// provider asserted.
type groupsSignIn struct {
	fakeSignIn
	mu     sync.Mutex
	groups map[string][]string // by ticket
}

func (g *groupsSignIn) issueWithGroups(who string, groups ...string) string {
	t := g.issue(who)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.groups == nil {
		g.groups = map[string][]string{}
	}
	g.groups[t] = groups
	return t
}

func (g *groupsSignIn) RedeemSignInGroups(ctx context.Context, ticket string) (string, []string, error) {
	g.mu.Lock()
	groups := g.groups[ticket]
	g.mu.Unlock()
	who, err := g.RedeemSignIn(ctx, ticket)
	return who, groups, err
}

// rebuild replaces w's console by one made with opts changed by edit
// (the same controls), as a restarted gateway would.
func (w *world) rebuild(edit func(o *Options)) {
	w.t.Helper()
	o := w.c.opts
	edit(&o)
	c, err := New(&o)
	if err != nil {
		w.t.Fatal(err)
	}
	w.c = c
	mux := http.NewServeMux()
	mux.Handle("/console/", http.StripPrefix("/console", c.Handler()))
	w.h = mux
}

// TestOIDCGroupsGiveRoles: a user who signed in through the OIDC
// provider gets the role its asserted groups give ("group:NAME" entries
// of the configuration), on every request of the session; the session
// keeps only the groups that give a role; a user whose groups give none
// is refused.
func TestOIDCGroupsGiveRoles(t *testing.T) {
	w := newWorld(t)
	cfg := &config.Config{Console: &config.Console{Administrators: []string{"group:security"}, Viewers: []string{"group:staff"}}}
	gs := &groupsSignIn{}
	var asked [][]string
	var mu sync.Mutex
	w.rebuild(func(o *Options) {
		o.SignIn = gs
		o.Role = func(_ context.Context, user string, groups []string) string {
			mu.Lock()
			asked = append(asked, slices.Clone(groups))
			mu.Unlock()
			return cfg.ConsoleRole(user, groups)
		}
	})
	const who = "oidc:idp.example:emp-42"
	signIn := func(groups ...string) answer {
		return w.do("GET", "/console/?signin_ticket="+gs.issueWithGroups(who, groups...), nil, nil, nil)
	}
	a := signIn("engineering", "security", "staff")
	if a.code != http.StatusSeeOther {
		t.Fatalf("sign-in with group security: HTTP %d %s", a.code, a.body)
	}
	c := &client{w: w, cookies: (&http.Response{Header: a.header}).Cookies()}
	var m me
	c.get("/console/api/me").decode(t, &m)
	if m.User != who || m.Role != RoleAdministrator {
		t.Errorf("me after an OIDC sign-in with group security: %+v, want administrator", m)
	}
	// The cookie keeps the groups that give a role, and Role is asked
	// with them on each request.
	id, groups, ok := w.c.sessionOf(&http.Request{Header: http.Header{"Cookie": {c.cookies[0].String()}}})
	if !ok || id != who || !slices.Equal(groups, []string{"security", "staff"}) {
		t.Errorf("session: %q %q %v; want the groups security and staff only", id, groups, ok)
	}
	mu.Lock()
	last := asked[len(asked)-1]
	mu.Unlock()
	if !slices.Equal(last, []string{"security", "staff"}) {
		t.Errorf("Role asked with groups %q", last)
	}

	a = signIn("staff")
	c = &client{w: w, cookies: (&http.Response{Header: a.header}).Cookies()}
	c.get("/console/api/me").decode(t, &m)
	if m.Role != RoleViewer {
		t.Errorf("me with group staff: %+v, want viewer", m)
	}
	if a := signIn("engineering"); a.code != http.StatusForbidden || !strings.Contains(a.body, "no role") {
		t.Errorf("sign-in with no group that gives a role: HTTP %d %s", a.code, a.body)
	}
}

// TestSessionGroupsBounded: groups that give a role but do not fit in
// the cookie are cut to the one that gives the highest role.
func TestSessionGroupsBounded(t *testing.T) {
	w := newWorld(t)
	var many []string
	for i := range 200 {
		many = append(many, "viewers-"+strings.Repeat("x", 20)+string(rune('a'+i%26))+strings.Repeat("y", i%7))
	}
	many = slices.Compact(many)
	w.rebuild(func(o *Options) {
		o.Role = func(_ context.Context, _ string, groups []string) string {
			switch {
			case slices.Contains(groups, "admins"):
				return RoleAdministrator
			case len(groups) > 0:
				return RoleViewer
			}
			return ""
		}
	})
	got := w.c.sessionGroups(context.Background(), "u", append(many, "admins"))
	if !slices.Equal(got, []string{"admins"}) {
		t.Errorf("kept %d groups, want only admins", len(got))
	}
	b, _ := json.Marshal(sessionIdentity{User: "u", Groups: w.c.sessionGroups(context.Background(), "u", many[:10])})
	if len(b) > maxSessionGroupBytes {
		t.Errorf("10 groups: %d bytes", len(b))
	}
}

// TestSessionSurvivesRestart: with a SessionKey, a console made again
// (a restarted gateway) accepts the session and CSRF token of the one
// before; without one, the sign-in ends with the process.
func TestSessionSurvivesRestart(t *testing.T) {
	w := newWorld(t)
	key := []byte(strings.Repeat("k", 32))
	w.rebuild(func(o *Options) { o.SessionKey = key })
	ada := w.signIn("ada")
	w.rebuild(func(o *Options) {})
	var m me
	if a := ada.get("/console/api/me"); a.code != http.StatusOK {
		t.Fatalf("after the restart with the same key: HTTP %d %s", a.code, a.body)
	} else if a.decode(t, &m); m.User != "ada" || m.CSRFToken != ada.csrf {
		t.Errorf("after the restart: %+v (CSRF token %q before)", m, ada.csrf)
	}
	if a := ada.post("/console/api/audit/verify", nil); a.code != http.StatusOK {
		t.Errorf("a POST with the CSRF token of before the restart: HTTP %d %s", a.code, a.body)
	}
	w.rebuild(func(o *Options) { o.SessionKey = []byte(strings.Repeat("j", 32)) })
	if a := ada.get("/console/api/me"); a.code != http.StatusUnauthorized {
		t.Errorf("with another key: HTTP %d, want 401", a.code)
	}
	w.rebuild(func(o *Options) { o.SessionKey = nil })
	if a := ada.get("/console/api/me"); a.code != http.StatusUnauthorized {
		t.Errorf("without a key: HTTP %d, want 401", a.code)
	}
}
