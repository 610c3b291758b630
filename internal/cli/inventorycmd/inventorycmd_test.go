package inventorycmd_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/spf13/cobra"

	"github.com/mcpgate/mcpgate/internal/cli/inventorycmd"
	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/inventory"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

func run(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	root := &cobra.Command{Use: "mcpgate", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(inventorycmd.Commands(func() string { return dir })...)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

const cimd = "https://app.example/client.json"

// populate writes what a gateway would have recorded into the data
// directory's database, then closes it.
func populate(t *testing.T, dir string) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, datadir.Database(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	inv, err := inventory.New(st, st, &inventory.Options{BlockChangedClients: true, BlockChangedTools: true})
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	must(st.CreateUser(ctx, &store.User{Username: "alice", CreatedAt: now}))
	must(st.PutClient(ctx, &store.Client{ID: cimd, Kind: store.ClientMetadataDocument, Name: "App", RedirectURIs: []string{"https://app.example/cb"}}))
	must(st.CreateClient(ctx, &store.Client{ID: "robot", Kind: store.ClientPreRegistered, Name: "Robot", GrantTypes: []string{"client_credentials"}}))
	_, err = inv.RecordClientMetadata(ctx, cimd, []byte(`{"client_id":"`+cimd+`","redirect_uris":["https://app.example/cb"]}`))
	must(err)
	_, err = inv.RecordClientMetadata(ctx, cimd, []byte(`{"client_id":"`+cimd+`","redirect_uris":["https://app.example/cb","https://evil.example/cb"]}`))
	must(err)
	_, err = inv.RecordTools(ctx, "fs", []jsontext.Value{jsontext.Value(`{"name":"read","description":"Read"}`)})
	must(err)
	_, err = inv.RecordTools(ctx, "fs", []jsontext.Value{jsontext.Value(`{"name":"read","description":"Read, and more"}`)})
	must(err)
	must(st.RecordAccessToken(ctx, &store.AccessToken{ID: "jti-1", FamilyID: "fam-1", ClientID: cimd, Subject: "alice", Scope: "mcp:tools", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}))
	must(st.RecordAccessToken(ctx, &store.AccessToken{ID: "jti-2", ClientID: "robot", Subject: "robot", Scope: "mcp:tools", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}))
	must(inv.RecordUpstreamCredential(ctx, &store.UpstreamCredential{Principal: "alice", Upstream: "drive", Kind: "oauth_user"}))
	// A sealed per-user token the gateway stored for bob (upstream_tokens).
	must(st.PutUpstreamToken(ctx, &store.UpstreamToken{Principal: "bob", Upstream: "crm", Ciphertext: []byte("sealed"), UpdatedAt: now}))
	// What a running gateway records: its upstreams, its clients' sessions
	// and its tasks.
	must(inv.RecordUpstreams(ctx, []*store.UpstreamRecord{
		{Name: "fs", Transport: "stdio", Command: []string{"mcp-fs", "--root", "/srv"}, CredentialType: "none", Owner: "platform-team"},
		{Name: "drive", Transport: "streamable", URL: "https://drive.example/mcp", CredentialType: "oauth_user", PerUser: true},
	}))
	// The states the running gateway writes as its upstreams change.
	must(st.PutUpstreamStates(ctx, []*store.UpstreamStateRecord{
		{Name: "fs", State: "backoff", Since: now, Failures: 2, LastError: "exec: mcp-fs: not found", RetryAt: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), UpdatedAt: now},
		{Name: "drive", State: "per_user", UpdatedAt: now},
	}))
	must(st.PutGatewaySession(ctx, &store.GatewaySession{ID: "sess-a", Principal: "alice", ClientID: cimd, TokenID: "jti-1", Grant: "fam-1",
		Transport: store.TransportStreamable, SourceAddr: "192.0.2.10", CreatedAt: now, LastSeen: now}))
	must(st.PutGatewaySession(ctx, &store.GatewaySession{ID: "sess-ended", Principal: "alice", ClientID: cimd, Transport: store.TransportSSE,
		CreatedAt: now.Add(-time.Hour), EndedAt: now.Add(-time.Minute)}))
	must(st.PutGatewaySession(ctx, &store.GatewaySession{ID: "sess-robot", Principal: "robot", ClientID: "robot", Grant: "jti-2",
		Transport: store.TransportStreamable, SourceAddr: "198.51.100.4", CreatedAt: now, LastSeen: now}))
	must(st.PutGatewayTask(ctx, &store.GatewayTask{ID: "task-1", Principal: "alice", ClientID: cimd, Grant: "fam-1", Upstream: "fs", UpstreamTaskID: "u-1",
		Status: "working", CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}))
}

// TestShowWalk checks `inventory show KIND ID`: the path user → client →
// grant and session → upstream → credential → tools, from each kind, as
// text and JSON.
func TestShowWalk(t *testing.T) {
	dir := t.TempDir()
	populate(t, dir)
	for _, tc := range []struct {
		args      []string
		want, not []string
	}{
		{[]string{"user", "alice"}, []string{
			"user alice — local account",
			"  client " + cimd + " — registered cimd; metadata sha256 ",
			"    grant fam-1 — scopes \"mcp:tools\"",
			"    session sess-a — streamable from 192.0.2.10",
			"      upstream fs — stdio: mcp-fs --root /srv; credential none; owner platform-team",
			"        credential gateway:none — the gateway's own credential",
			"      upstream drive — streamable: https://drive.example/mcp; credential oauth_user (per user); owner -",
			"        credential user:oauth_user — the user's own credential",
			"    task task-1 — on fs; working",
			"ttl 10m0s",
			"          tool read — sha256 ", // changed: listed with its approved definition (blocking) or as it is
		}, []string{"sess-ended", "sess-robot"}},
		{[]string{"client", "robot"}, []string{"client robot — registered pre-registered", "grant jti-2", "session sess-robot — streamable from 198.51.100.4", "upstream fs", "upstream drive — ", "no credential for robot yet"}, []string{"sess-a"}},
		{[]string{"client", cimd}, []string{"client " + cimd, "  user alice", "    grant fam-1", "    session sess-a", "    task task-1"}, []string{"sess-robot"}},
		{[]string{"session", "sess-a"}, []string{"user alice", "client " + cimd, "session sess-a", "upstream fs", "credential gateway:none"}, []string{"grant fam-1", "task-1", "sess-robot"}},
		{[]string{"upstream", "fs"}, []string{"upstream fs — stdio: mcp-fs --root /srv; credential none; owner platform-team", "credential gateway:none", "session sess-a — of alice via " + cimd, "session sess-robot — of robot via robot", "task task-1 — of alice; on fs"}, nil},
		{[]string{"upstream", "drive"}, []string{"upstream drive", "credential user:oauth_user — of alice", "session sess-a"}, []string{"sess-robot"}},
		{[]string{"tool", "fs/read"}, []string{"tool fs/read — sha256 ", "changed since", "upstream fs", "session sess-a", "session sess-robot"}, nil},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, err := run(t, dir, append([]string{"inventory", "show"}, tc.args...)...)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(out, w) {
					t.Errorf("output has %q:\n%s", w, out)
				}
			}
		})
	}

	out, err := run(t, dir, "inventory", "show", "user", "alice", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var root inventory.Node
	if err := json.Unmarshal([]byte(out), &root); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var path []string
	for n := &root; n != nil; {
		path = append(path, n.Kind+" "+n.ID)
		var next *inventory.Node
		for _, c := range n.Children {
			if c.Kind != "grant" && c.Kind != "task" {
				next = c
				break
			}
		}
		n = next
	}
	if want := []string{"user alice", "client " + cimd, "session sess-a", "upstream drive", "credential user:oauth_user"}; strings.Join(path, " → ") != strings.Join(want, " → ") {
		t.Errorf("JSON path = %q, want %q", path, want)
	}
	if !strings.Contains(out, `"Transport": "streamable"`) || !strings.Contains(out, `"SourceAddr": "192.0.2.10"`) || !strings.Contains(out, `"Owner": "platform-team"`) {
		t.Errorf("JSON lacks the session's or upstream's fields:\n%s", out)
	}

	for _, args := range [][]string{{"user", "nobody"}, {"session", "sess-ended"}, {"tool", "fs"}, {"upstream", "nope"}, {"grant", "fam-1"}} {
		if out, err := run(t, dir, append([]string{"inventory", "show"}, args...)...); err == nil {
			t.Errorf("show %v: no error:\n%s", args, out)
		}
	}
}

// TestListJSONFromTheDatabase checks that `inventory --json` carries the
// sessions, tasks and upstreams recorded in the database.
func TestListJSONFromTheDatabase(t *testing.T) {
	dir := t.TempDir()
	populate(t, dir)
	out, err := run(t, dir, "inventory", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var g inventory.Graph
	if err := json.Unmarshal([]byte(out), &g); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(g.Sessions) != 2 || g.Sessions[0].ID != "sess-a" || g.Sessions[0].Transport != "streamable" || g.Sessions[0].Grant != "fam-1" || g.Sessions[0].TokenID != "jti-1" {
		t.Errorf("sessions = %+v, want the two live ones", g.Sessions)
	}
	if len(g.Tasks) != 1 || g.Tasks[0].TTLSeconds != 600 || g.Tasks[0].Owner != "alice" || g.Tasks[0].Grant != "fam-1" {
		t.Errorf("tasks = %+v", g.Tasks)
	}
	ups := map[string]inventory.Upstream{}
	for _, u := range g.Upstreams {
		ups[u.Name] = u
	}
	if fs := ups["fs"]; !fs.Configured || fs.Owner != "platform-team" || fs.Transport != "stdio" || len(fs.Tools) != 1 || fs.Tools[0].State != "changed" {
		t.Errorf("fs = %+v", fs)
	}
	if d := ups["drive"]; !d.Configured || !d.PerUser || d.CredentialType != "oauth_user" || d.URL != "https://drive.example/mcp" {
		t.Errorf("drive = %+v", d)
	}
	if crm := ups["crm"]; crm.Configured {
		t.Errorf("crm (known only from a token) = %+v, want not configured", crm)
	}
}

func TestListAndShow(t *testing.T) {
	dir := t.TempDir()
	populate(t, dir)
	for _, tc := range []struct {
		args []string
		want []string
		not  []string
	}{
		{[]string{"inventory"}, []string{"== users", "alice", "== clients", cimd, "CHANGED since", "robot", "== upstreams", "fs", "read", "== live grants", "fam-1", "jti-1", "== live sessions", "== tasks"}, nil},
		{[]string{"inventory", "list", "--kind", "clients"}, []string{cimd, "cimd", "app.example,evil.example", "CHANGED", "robot", "pre-registered"}, []string{"== users", "alice"}},
		{[]string{"inventory", "list", "--kind", "upstreams"}, []string{"fs", "read", "CHANGED since"}, []string{cimd}},
		{[]string{"inventory", "list", "--kind", "grants"}, []string{"fam-1", "alice", "jti-2", "robot"}, nil},
		{[]string{"inventory", "list", "--kind", "users"}, []string{"alice"}, []string{cimd, "robot"}},
		{[]string{"inventory", "list", "--kind", "sessions"}, []string{"SESSION", "TRANSPORT", "sess-a", "streamable", "192.0.2.10"}, []string{"sess-ended"}},
		{[]string{"inventory", "list", "--kind", "credentials"}, []string{"drive", "alice", "crm", "bob", "oauth_user"}, []string{"sealed"}},
		{[]string{"inventory", "list", "--kind", "tasks"}, []string{"TASK", "task-1", "working", "10m0s"}, nil},
		{[]string{"inventory", "list", "--kind", "upstreams"}, []string{"fs", "stdio", "mcp-fs --root /srv", "none", "platform-team", "drive", "streamable", "https://drive.example/mcp", "oauth_user (per user)"}, nil},
		{[]string{"inventory", "show", "alice"}, []string{"user alice", "user alice → client " + cimd, "user alice → upstream drive → credential user:oauth_user", "fam-1"}, nil},
		{[]string{"inventory", "show", "robot"}, []string{"client robot", "m2m: yes", "user robot → client robot"}, nil},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, err := run(t, dir, tc.args...)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(out, w) {
					t.Errorf("output has %q:\n%s", w, out)
				}
			}
		})
	}

	out, err := run(t, dir, "inventory", "list", "--kind", "clients", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var clients []inventory.Client
	if err := json.Unmarshal([]byte(out), &clients); err != nil || len(clients) != 2 || !clients[0].Flagged || clients[0].ID != cimd {
		t.Fatalf("JSON clients: %v\n%s", err, out)
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := run(t, dir, "inventory"); err == nil || !strings.Contains(err.Error(), "no mcpgate database") {
		t.Errorf("missing database: %v", err)
	}
	populate(t, dir)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"inventory", "list", "--kind", "pets"}, "unknown --kind"},
		{[]string{"inventory", "show", "nobody"}, "no user or client"},
		{[]string{"inventory", "approve-tool", "fs", "nope"}, `no tool "nope"`},
		{[]string{"inventory", "approve-client", "nope"}, "not in the inventory"},
		{[]string{"revoke", "upstream-credential", "drive"}, "<upstream>/<principal>"},
		{[]string{"revoke", "user"}, "accepts 1 arg"},
		{[]string{"revoke", "team", "x"}, "unknown revocation kind"},
		{[]string{"inventory", "frobnicate"}, "unknown command"},
	} {
		if out, err := run(t, dir, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v (want %q)\n%s", tc.args, err, tc.want, out)
		}
	}
	if _, err := run(t, "", "inventory"); err == nil {
		t.Error("empty data directory accepted")
	}
}

func TestApprove(t *testing.T) {
	dir := t.TempDir()
	populate(t, dir)
	out, err := run(t, dir, "inventory", "approve-client", cimd, "--by", "sec-team")
	if err != nil || !strings.Contains(out, "https://evil.example/cb") {
		t.Fatalf("approve-client: %v\n%s", err, out)
	}
	out, err = run(t, dir, "inventory", "approve-tool", "fs", "read")
	if err != nil || !strings.Contains(out, "approved tool read") {
		t.Fatalf("approve-tool: %v\n%s", err, out)
	}
	if out, _ := run(t, dir, "inventory"); strings.Contains(out, "CHANGED") {
		t.Errorf("still flagged after approval:\n%s", out)
	}
	// A gateway opening the database sees neither blocked.
	ctx := context.Background()
	st, err := sqlite.Open(ctx, datadir.Database(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	inv, _ := inventory.New(st, st, &inventory.Options{BlockChangedClients: true, BlockChangedTools: true})
	if inv.IsClientBlocked(ctx, cimd) || inv.IsToolBlocked(ctx, "fs", "read") {
		t.Error("approved client or tool still blocked")
	}
	rec, _ := st.GetClientRecord(ctx, cimd)
	if rec.ApprovedBy != "sec-team" {
		t.Errorf("approved by %q", rec.ApprovedBy)
	}
}

func TestRevoke(t *testing.T) {
	dir := t.TempDir()
	populate(t, dir)
	out, err := run(t, dir, "revoke", "user", "alice", "--by", "sec-team", "--reason", "left the company")
	if err != nil {
		t.Fatalf("revoke user: %v\n%s", err, out)
	}
	for _, w := range []string{"revoked user alice", "durable: true", "record", "RevokeTokens", "ok (1)", "CloseSessions", "skipped"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	out, err = run(t, dir, "revoke", "upstream-credential", "drive/alice")
	if err != nil {
		t.Fatalf("revoke credential: %v\n%s", err, out)
	}
	out, err = run(t, dir, "revoke", "upstream-credential", "crm/bob")
	// The sealed token is left for a gateway to revoke at the upstream's
	// authorization server (RFC 7009) before deleting it.
	if err != nil || !strings.Contains(out, "the sealed upstream token is kept until a gateway revokes it") {
		t.Fatalf("revoke bob's crm token: %v\n%s", err, out)
	}
	out, err = run(t, dir, "revoke", "client", "robot")
	if err != nil {
		t.Fatalf("revoke client: %v\n%s", err, out)
	}

	// What a restarted gateway sees.
	ctx := context.Background()
	st, err := sqlite.Open(ctx, datadir.Database(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, id := range []string{"jti-1", "jti-2"} {
		if r, err := st.IsAccessTokenRevoked(ctx, id); err != nil || !r {
			t.Errorf("token %s revoked = %v, %v", id, r, err)
		}
	}
	rv, err := inventory.NewRevoker(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rv.IsRevoked(ctx, inventory.Match{User: "alice"}) || !rv.IsRevoked(ctx, inventory.Match{Client: "robot"}) || !rv.IsUpstreamCredentialRevoked(ctx, "alice", "drive") {
		t.Error("revocations not durable")
	}
	revs, _ := st.ListRevocations(ctx)
	var found bool
	for _, r := range revs {
		if r.Kind == "user" && r.ID == "alice" && r.By == "sec-team" && r.Reason == "left the company" {
			found = true
		}
	}
	if !found {
		t.Errorf("revocation record = %+v", revs)
	}
	if creds, _ := st.ListUpstreamCredentials(ctx); len(creds) != 0 {
		t.Errorf("credential record kept: %+v", creds)
	}
	if toks, _ := st.ListUpstreamTokens(ctx, ""); len(toks) != 1 || toks[0].Principal != "bob" {
		t.Errorf("sealed upstream tokens after revocation: %+v, want bob's kept for the gateway to revoke", toks)
	}
	// None of these was applied by a gateway: the next one to start
	// applies them before it serves.
	for _, r := range revs {
		if !r.AppliedAt.IsZero() {
			t.Errorf("revocation %s %s marked applied by the command line", r.Kind, r.ID)
		}
	}
	out, _ = run(t, dir, "inventory", "show", "alice")
	if !strings.Contains(out, "REVOKED") || !strings.Contains(out, "user alice") {
		t.Errorf("show after revoke:\n%s", out)
	}
}

// TestUpstreamStates: the upstream states a running gateway wrote show in
// the upstreams table and in --json.
func TestUpstreamStates(t *testing.T) {
	dir := t.TempDir()
	populate(t, dir)
	out, err := run(t, dir, "inventory", "list", "--kind", "upstreams")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"STATE", "backoff until 2030-01-02T03:04:05Z (2 failures, last: exec: mcp-fs: not found), as of ", "per_user, as of "} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	out, err = run(t, dir, "inventory", "list", "--kind", "upstreams", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var ups []inventory.Upstream
	if err := json.Unmarshal([]byte(out), &ups); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, u := range ups {
		if u.Name == "fs" && (u.State == nil || u.State.State != "backoff" || u.State.LastError != "exec: mcp-fs: not found" || u.State.Failures != 2) {
			t.Errorf("fs state = %+v", u.State)
		}
		if u.Name == "crm" && u.State != nil {
			t.Errorf("crm (not run by the gateway) has a state: %+v", u.State)
		}
	}
}
