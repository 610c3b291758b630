package inventory_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/inventory"
	"github.com/mcpgate/mcpgate/principal"
	"github.com/mcpgate/mcpgate/store"
)

// fakeLive is a LiveSource with fixed contents.
type fakeLive struct {
	sessions []inventory.Session
	ups      []inventory.UpstreamSession
	tasks    []inventory.Task
}

func (f *fakeLive) Sessions() []inventory.Session                 { return slices.Clone(f.sessions) }
func (f *fakeLive) UpstreamSessions() []inventory.UpstreamSession { return slices.Clone(f.ups) }
func (f *fakeLive) Tasks() []inventory.Task                       { return slices.Clone(f.tasks) }

const (
	cimdID = "https://app.example/client.json"
	idpIss = "https://idp.example"
)

// populate fills the stores with two users (one local, one federated), a
// CIMD client, a machine-to-machine client, grants, tools, a per-user
// credential and an identity provider, and returns a live source.
func populate(t *testing.T, inv *inventory.Inventory, ids store.Store, st store.InventoryStore, now time.Time) (*fakeLive, string) {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	fed := principal.Federated(idpIss, "u-42").String()
	must(ids.CreateUser(ctx, &store.User{Username: "alice", CreatedAt: now.Add(-time.Hour)}))
	must(ids.CreateUser(ctx, &store.User{Username: "bob", CreatedAt: now.Add(-time.Hour)}))
	must(ids.PutClient(ctx, &store.Client{ID: cimdID, Kind: store.ClientMetadataDocument, Name: "App",
		RedirectURIs: []string{"https://app.example/cb"}, GrantTypes: []string{"authorization_code", "refresh_token"}}))
	must(ids.CreateClient(ctx, &store.Client{ID: "m2m", Kind: store.ClientPreRegistered, Name: "Robot", GrantTypes: []string{"client_credentials"}}))
	must(ids.CreateClient(ctx, &store.Client{ID: "dyn-1", Kind: store.ClientDynamic, Name: "Dyn", RedirectURIs: []string{"http://127.0.0.1:9999/cb"}}))
	if _, err := inv.RecordClientMetadata(ctx, cimdID, clientDoc("App", []string{"https://app.example/cb"}, jwk(t))); err != nil {
		t.Fatal(err)
	}
	exp := now.Add(time.Hour)
	for _, tok := range []*store.AccessToken{
		{ID: "at-alice-1", FamilyID: "fam-alice", ClientID: cimdID, Subject: "alice", Scope: "mcp:tools", IssuedAt: now, ExpiresAt: exp},
		{ID: "at-alice-2", FamilyID: "fam-alice", ClientID: cimdID, Subject: "alice", Scope: "mcp:tools", IssuedAt: now, ExpiresAt: exp.Add(time.Minute)},
		{ID: "at-bob", FamilyID: "fam-bob", ClientID: "dyn-1", Subject: "bob", Scope: "mcp:tools", IssuedAt: now, ExpiresAt: exp},
		{ID: "at-m2m", ClientID: "m2m", Subject: "m2m", Scope: "mcp:tools", IssuedAt: now, ExpiresAt: exp},
		{ID: "at-fed", FamilyID: "fam-fed", ClientID: cimdID, Subject: fed, Scope: "mcp:tools", IssuedAt: now, ExpiresAt: exp},
		{ID: "at-old", FamilyID: "fam-old", ClientID: cimdID, Subject: "alice", IssuedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)},
	} {
		must(ids.RecordAccessToken(ctx, tok))
	}
	must(ids.CreateRefreshToken(ctx, &store.RefreshToken{TokenHash: "rt-alice", FamilyID: "fam-alice", ClientID: cimdID, Subject: "alice", Scope: "mcp:tools", ExpiresAt: now.Add(24 * time.Hour)}))
	must(ids.CreateRefreshToken(ctx, &store.RefreshToken{TokenHash: "rt-fed", FamilyID: "fam-fed", ClientID: cimdID, Subject: fed, Scope: "mcp:tools", ExpiresAt: now.Add(24 * time.Hour)}))
	if _, err := inv.RecordTools(ctx, "fs", []jsontext.Value{tool("read", "Read"), tool("write", "Write")}); err != nil {
		t.Fatal(err)
	}
	if _, err := inv.RecordTools(ctx, "drive", []jsontext.Value{tool("search", "Search")}); err != nil {
		t.Fatal(err)
	}
	must(inv.RecordUpstreamCredential(ctx, &store.UpstreamCredential{Principal: "alice", Upstream: "drive", Kind: "oauth_user", Scope: "drive.read"}))
	must(inv.RecordIdentityProvider(ctx, &store.IdentityProvider{Issuer: idpIss, Name: "Corp", Kind: "id-jag"}))
	live := &fakeLive{
		sessions: []inventory.Session{
			{ID: "s-alice", Principal: "alice", ClientID: cimdID, Grant: "fam-alice", Created: now, LastSeen: now},
			{ID: "s-bob", Principal: "bob", ClientID: "dyn-1", Grant: "fam-bob", Created: now, LastSeen: now},
			{ID: "s-m2m", Principal: "m2m", ClientID: "m2m", Grant: "at-m2m", Created: now, LastSeen: now},
		},
		ups: []inventory.UpstreamSession{
			{Upstream: "fs", Principal: "alice", CredentialKind: "bearer", Connected: now},
			{Upstream: "drive", Principal: "alice", CredentialKind: "oauth_user", Connected: now},
			{Upstream: "fs", Principal: "bob", CredentialKind: "bearer", Connected: now},
		},
		tasks: []inventory.Task{
			{ID: "t1", Owner: "alice", ClientID: cimdID, Upstream: "fs", Status: "working", Created: now},
			{ID: "t2", Owner: "bob", ClientID: "dyn-1", Upstream: "fs", Status: "completed", Created: now},
		},
	}
	inv.RegisterLiveSource(live)
	return live, fed
}

func TestGraph(t *testing.T) {
	ctx := context.Background()
	inv, ids, st, _, clk := newInventory(t, inventory.Options{})
	_, fed := populate(t, inv, ids, st, clk.Now())
	g, err := inv.Graph(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var users []string
	for _, u := range g.Users {
		users = append(users, u.Name)
		switch u.Name {
		case "alice":
			if !u.Local || u.IdP != "" {
				t.Errorf("alice = %+v", u)
			}
		case fed:
			if u.Local || u.IdP != idpIss {
				t.Errorf("federated user = %+v, want IdP %s", u, idpIss)
			}
		}
	}
	// The machine-to-machine client acts as itself: it is a client, not a user.
	if want := []string{"alice", "bob", fed}; !slices.Equal(users, sorted(want)) {
		t.Errorf("users = %v, want %v", users, sorted(want))
	}
	clients := map[string]inventory.Client{}
	for _, c := range g.Clients {
		clients[c.ID] = c
	}
	if c := clients[cimdID]; c.RegistrationMethod != store.ClientMetadataDocument || c.CIMDURL != cimdID || len(c.KeyThumbprints) != 1 ||
		!slices.Equal(c.RedirectHosts, []string{"app.example"}) || c.FirstSeen.IsZero() || c.Metadata == "" || c.MachineToMachine {
		t.Errorf("cimd client = %+v", c)
	}
	if c := clients["m2m"]; !c.MachineToMachine || c.RegistrationMethod != store.ClientPreRegistered {
		t.Errorf("m2m client = %+v", c)
	}
	if c := clients["dyn-1"]; c.RegistrationMethod != store.ClientDynamic || !slices.Equal(c.RedirectHosts, []string{"127.0.0.1:9999"}) {
		t.Errorf("dynamic client = %+v", c)
	}
	grants := map[string]inventory.Grant{}
	for _, gr := range g.Grants {
		grants[gr.ID] = gr
	}
	if len(grants) != 4 {
		t.Errorf("grants = %v, want fam-alice, fam-bob, fam-fed, at-m2m (expired left out)", g.Grants)
	}
	if gr := grants["fam-alice"]; !slices.Equal(gr.TokenIDs, []string{"at-alice-1", "at-alice-2"}) || gr.RefreshTokens != 1 ||
		gr.User != "alice" || gr.Client != cimdID || !slices.Equal(gr.Scopes, []string{"mcp:tools"}) || !gr.ExpiresAt.Equal(clk.Now().Add(24*time.Hour)) {
		t.Errorf("alice's grant = %+v", gr)
	}
	if len(g.Upstreams) != 2 || g.Upstreams[0].Name != "drive" || len(g.Upstreams[1].Tools) != 2 || g.Upstreams[1].Tools[0].Digest == "" {
		t.Errorf("upstreams = %+v", g.Upstreams)
	}
	if len(g.IdentityProviders) != 1 || g.IdentityProviders[0].Issuer != idpIss || g.IdentityProviders[0].Distrusted {
		t.Errorf("identity providers = %+v", g.IdentityProviders)
	}
	if len(g.Sessions) != 3 || len(g.Tasks) != 2 || len(g.UpstreamSessions) != 3 || len(g.Credentials) != 1 {
		t.Errorf("live: %d sessions, %d tasks, %d upstream sessions, %d credentials", len(g.Sessions), len(g.Tasks), len(g.UpstreamSessions), len(g.Credentials))
	}
	for _, e := range []inventory.Edge{
		{From: "idp:" + idpIss, To: "user:" + fed, Kind: "vouches-for"},
		{From: "user:alice", To: "grant:fam-alice", Kind: "holds"},
		{From: "grant:fam-alice", To: "client:" + cimdID, Kind: "issued-to"},
		{From: "client:" + cimdID, To: "session:s-alice", Kind: "opened"},
		{From: "session:s-alice", To: "upstream:drive", Kind: "reaches"},
		{From: "upstream:drive", To: "credential:drive/alice", Kind: "authenticates-with"},
		{From: "upstream:fs", To: "credential:fs/*", Kind: "authenticates-with"},
		{From: "user:bob", To: "task:t2", Kind: "owns"},
		{From: "task:t1", To: "upstream:fs", Kind: "runs-on"},
		{From: "client:m2m", To: "session:s-m2m", Kind: "opened"},
	} {
		if !slices.Contains(g.Edges, e) {
			t.Errorf("missing edge %+v", e)
		}
	}
	if slices.Contains(g.Edges, inventory.Edge{From: "session:s-bob", To: "upstream:drive", Kind: "reaches"}) {
		t.Error("bob's session reaches drive, but bob has no drive session")
	}
	for _, e := range g.Edges {
		if e.From == "user:m2m" || e.To == "user:m2m" {
			t.Errorf("edge %+v names the m2m client as a user", e)
		}
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestPaths(t *testing.T) {
	ctx := context.Background()
	inv, ids, st, _, clk := newInventory(t, inventory.Options{})
	_, fed := populate(t, inv, ids, st, clk.Now())
	for _, tc := range []struct {
		principal string
		want      []string
	}{
		{"alice", []string{
			"user alice → client " + cimdID + " → session s-alice → upstream drive → credential user:oauth_user",
			"user alice → client " + cimdID + " → session s-alice → upstream fs → credential gateway:bearer [tasks: t1]",
		}},
		{"bob", []string{"user bob → client dyn-1 → session s-bob → upstream fs → credential gateway:bearer [tasks: t2]"}},
		{"m2m", []string{"user m2m → client m2m → session s-m2m"}},
		{fed, []string{"user " + fed + " (via " + idpIss + ") → client " + cimdID}},
		{"nobody", nil},
	} {
		t.Run(tc.principal, func(t *testing.T) {
			paths, err := inv.Paths(ctx, tc.principal)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range paths {
				got = append(got, p.String())
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("paths:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
	// A per-user credential without a live session still shows.
	if err := inv.RecordUpstreamCredential(ctx, &store.UpstreamCredential{Principal: "bob", Upstream: "drive", Kind: "oauth_user"}); err != nil {
		t.Fatal(err)
	}
	paths, _ := inv.Paths(ctx, "bob")
	if !slices.ContainsFunc(paths, func(p inventory.Path) bool {
		return p.Upstream == "drive" && p.Credential == "user:oauth_user" && p.Session == ""
	}) {
		t.Errorf("bob's idle drive credential missing from %v", paths)
	}
}

func TestGraphMarksRevoked(t *testing.T) {
	ctx := context.Background()
	inv, ids, st, _, clk := newInventory(t, inventory.Options{})
	_, fed := populate(t, inv, ids, st, clk.Now())
	rv, err := inventory.NewRevoker(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]string{{"idp", idpIss}, {"client", "dyn-1"}} {
		if _, err := rv.Revoke(ctx, r[0], r[1], "admin"); err != nil {
			t.Fatal(err)
		}
	}
	g, err := inv.Graph(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range g.Users {
		if (u.Name == fed) != u.Revoked {
			t.Errorf("user %s revoked = %v", u.Name, u.Revoked)
		}
	}
	for _, c := range g.Clients {
		if (c.ID == "dyn-1") != c.Revoked {
			t.Errorf("client %s revoked = %v", c.ID, c.Revoked)
		}
	}
	for _, gr := range g.Grants {
		if (gr.ID == "fam-bob") != gr.Revoked {
			t.Errorf("grant %s revoked = %v", gr.ID, gr.Revoked)
		}
	}
	if !g.IdentityProviders[0].Distrusted || len(g.Revocations) != 2 {
		t.Errorf("idp %+v, revocations %+v", g.IdentityProviders, g.Revocations)
	}
}
