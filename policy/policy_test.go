package policy_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/policy"
)

var (
	alice = policy.Principal{User: "alice", Client: policy.Client{ID: "https://app.example/cimd.json", Name: "App", Registration: "cimd"}, Session: "s1"}
	bob   = policy.Principal{User: "bob", Client: policy.Client{ID: "https://app.example/cimd.json", Name: "App", Registration: "cimd"}}
	m2m   = policy.Principal{Client: policy.Client{ID: "reporter", Name: "Reporter", Registration: "m2m"}}
	dyn   = policy.Principal{User: "alice", Client: policy.Client{ID: "c-123", Registration: "dynamic"}}
)

func tool(upstream, name string) policy.Resource {
	return policy.Resource{Kind: policy.KindTool, Upstream: upstream, Name: name}
}

func newEngine(t testing.TB, opts *policy.Options) *policy.Engine {
	t.Helper()
	e, err := policy.NewEngine(opts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func exampleEngine(t testing.TB) *policy.Engine {
	return newEngine(t, &policy.Options{Paths: []string{"testdata/example"}})
}

type decisionCase struct {
	name      string
	principal policy.Principal
	action    string
	resource  policy.Resource
	args      string
	allow     bool
	approval  bool
	policy    string // expected first deciding policy; "" means none expected
}

func runCases(t *testing.T, e *policy.Engine, cases []decisionCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := &policy.Request{Principal: tc.principal, Action: tc.action, Resource: tc.resource}
			if tc.args != "" {
				req.Arguments = jsontext.Value(tc.args)
			}
			d := e.Decide(req)
			if d.Allow != tc.allow || d.RequireApproval != tc.approval {
				t.Fatalf("Decide = allow %v approval %v (%s, errors %v), want allow %v approval %v",
					d.Allow, d.RequireApproval, d.Reason, d.Errors, tc.allow, tc.approval)
			}
			if d.PolicyVersion != e.Version() || d.PolicyVersion == "" {
				t.Errorf("PolicyVersion = %q, want %q", d.PolicyVersion, e.Version())
			}
			if tc.policy != "" {
				if !slices.Contains(d.Policies, tc.policy) {
					t.Errorf("Policies = %v, want %q among them", d.Policies, tc.policy)
				}
				if !tc.allow && !strings.Contains(d.Reason, tc.policy) {
					t.Errorf("Reason %q does not name %q", d.Reason, tc.policy)
				}
			}
			if d.Reason == "" {
				t.Error("empty Reason")
			}
		})
	}
}

func TestDecideExamples(t *testing.T) {
	e := exampleEngine(t)
	runCases(t, e, []decisionCase{
		// Deny a tool to everyone: hidden and not callable.
		{"shell hidden from alice", alice, "tools/list", tool("ops", "run_shell"), "", false, false, "no-shell"},
		{"shell call refused", alice, "tools/call", tool("ops", "run_shell"), `{"cmd":"ls"}`, false, false, "no-shell"},
		{"shell hidden from m2m", m2m, "tools/list", tool("ops", "run_shell"), "", false, false, "no-shell"},
		{"other ops tool fine", alice, "tools/call", tool("ops", "status"), `{}`, true, false, "users-baseline"},

		// Argument restricted to a folder.
		{"fs_read visible to alice", alice, "tools/list", tool("fs", "fs_read"), "", true, false, "users-baseline"},
		{"fs_read in folder", alice, "tools/call", tool("fs", "fs_read"), `{"path":"/srv/docs/a/b.txt"}`, true, false, "users-baseline"},
		{"fs_read outside folder", alice, "tools/call", tool("fs", "fs_read"), `{"path":"/etc/passwd"}`, false, false, "fs-read-docs-folder"},
		{"fs_read traversal", alice, "tools/call", tool("fs", "fs_read"), `{"path":"/srv/docs/../etc/passwd"}`, false, false, "fs-read-docs-folder"},
		{"fs_read deep traversal", alice, "tools/call", tool("fs", "fs_read"), `{"path":"/srv/docs/a/../../../etc/shadow"}`, false, false, "fs-read-docs-folder"},
		{"fs_read encoded traversal", alice, "tools/call", tool("fs", "fs_read"), `{"path":"/srv/docs/%2e%2e/etc/passwd"}`, false, false, "fs-read-docs-folder"},
		{"fs_read backslash traversal", alice, "tools/call", tool("fs", "fs_read"), `{"path":"/srv/docs/..\\etc\\passwd"}`, false, false, "fs-read-docs-folder"},
		{"fs_read traversal in other arg", alice, "tools/call", tool("fs", "fs_read"), `{"path":"/srv/docs/a","opts":{"base":"../.."}}`, false, false, "fs-read-docs-folder"},
		{"fs_read sibling folder", alice, "tools/call", tool("fs", "fs_read"), `{"path":"/srv/docsevil/x"}`, false, false, "fs-read-docs-folder"},
		{"fs_read folder itself", alice, "tools/call", tool("fs", "fs_read"), `{"path":"/srv/docs"}`, false, false, "fs-read-docs-folder"},
		{"fs_read no path", alice, "tools/call", tool("fs", "fs_read"), ``, false, false, "fs-read-docs-folder"},
		{"fs_read path not a string", alice, "tools/call", tool("fs", "fs_read"), `{"path":42}`, false, false, "fs-read-docs-folder"},
		{"fs_read hidden from bob", bob, "tools/list", tool("fs", "fs_read"), "", false, false, "fs-read-alice-only"},
		{"fs_read refused to bob", bob, "tools/call", tool("fs", "fs_read"), `{"path":"/srv/docs/a"}`, false, false, "fs-read-alice-only"},

		// Require approval.
		{"delete needs approval", alice, "tools/call", tool("fs", "delete_file"), `{"path":"/tmp/x"}`, true, true, "approve-deletes"},
		{"delete listed without approval", alice, "tools/list", tool("fs", "delete_file"), "", true, false, "users-baseline"},
		{"non-delete no approval", alice, "tools/call", tool("fs", "write_file"), `{}`, true, false, "users-baseline"},

		// Machine-to-machine clients.
		{"m2m calls reports", m2m, "tools/call", tool("reports", "weekly"), `{"week":12}`, true, false, "m2m-reports-only"},
		{"m2m lists reports", m2m, "tools/list", tool("reports", "weekly"), "", true, false, "m2m-reports-only"},
		{"m2m cannot call fs", m2m, "tools/call", tool("fs", "write_file"), `{}`, false, false, ""},
		{"m2m cannot see fs", m2m, "tools/list", tool("fs", "write_file"), "", false, false, ""},
		{"m2m cannot read resources of reports", m2m, "resources/read", policy.Resource{Kind: "resource", Upstream: "reports", Name: "file:///r/1"}, "", false, false, ""},

		// Dynamically registered clients.
		{"dynamic client denied call", dyn, "tools/call", tool("ops", "status"), `{}`, false, false, "no-dynamic-clients"},
		{"dynamic client denied list", dyn, "tools/list", tool("ops", "status"), "", false, false, "no-dynamic-clients"},
		{"dynamic client denied prompts", dyn, "prompts/get", policy.Resource{Kind: "prompt", Upstream: "p", Name: "hello"}, "", false, false, "no-dynamic-clients"},

		// Other actions and kinds pass through the same model.
		{"prompt get", alice, "prompts/get", policy.Resource{Kind: "prompt", Upstream: "p", Name: "hello"}, `{"who":"x"}`, true, false, "users-baseline"},
		{"sampling relay", alice, "sampling/createMessage", policy.Resource{Kind: "client-request", Upstream: "fs"}, "", true, false, "users-baseline"},
		{"task cancel", alice, "tasks/cancel", policy.Resource{Kind: "task", Upstream: "fs", Name: "t-1"}, "", true, false, "users-baseline"},
	})
}

func TestDecideReasonNamesPolicy(t *testing.T) {
	e := exampleEngine(t)
	d := e.Decide(&policy.Request{Principal: alice, Action: "tools/call", Resource: tool("ops", "run_shell"), Arguments: jsontext.Value(`{}`)})
	want := `denied by policy "no-shell" (policies.cedar:17:1): shell access is disabled`
	if d.Reason != want {
		t.Errorf("Reason = %q\nwant     %q", d.Reason, want)
	}
	d = e.Decide(&policy.Request{Principal: m2m, Action: "tools/call", Resource: tool("fs", "x"), Arguments: jsontext.Value(`{}`)})
	if !strings.HasPrefix(d.Reason, "denied by default: no policy permits tools/call on Tool::\"fs/x\"") || len(d.Policies) != 0 {
		t.Errorf("default deny: Reason %q Policies %v", d.Reason, d.Policies)
	}
}

// TestListVersusCall shows the two ways of restricting a tool: a policy that
// only constrains arguments leaves the tool listed (list-time requests carry
// no context.arguments), while a plain forbid on the tool hides it.
func TestListVersusCall(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p.cedar"), `
permit(principal, action, resource);

@id("hide-secret")
forbid(principal, action, resource == Tool::"vault/read_secret");

@id("limit-args-with-has")
forbid(principal, action, resource == Tool::"db/query")
when { context has arguments && !(context.arguments has table && context.arguments.table == "public") };

@id("limit-args-call-only")
forbid(principal, action == Action::"tools/call", resource == Tool::"http/fetch")
unless { context.arguments has url && context.arguments.url like "https://intranet.example/*" };

@id("careless")
forbid(principal, action, resource == Tool::"mail/send")
when { context.arguments.to like "*@external.example" };
`)
	e := newEngine(t, &policy.Options{Paths: []string{dir}})
	runCases(t, e, []decisionCase{
		{"hidden at list", alice, "tools/list", tool("vault", "read_secret"), "", false, false, "hide-secret"},
		{"hidden at call", alice, "tools/call", tool("vault", "read_secret"), `{}`, false, false, "hide-secret"},
		{"has-guard listed", alice, "tools/list", tool("db", "query"), "", true, false, ""},
		{"has-guard good args", alice, "tools/call", tool("db", "query"), `{"table":"public"}`, true, false, ""},
		{"has-guard bad args", alice, "tools/call", tool("db", "query"), `{"table":"users"}`, false, false, "limit-args-with-has"},
		{"has-guard nil args at call", alice, "tools/call", tool("db", "query"), "", false, false, "limit-args-with-has"},
		{"call-only listed", alice, "tools/list", tool("http", "fetch"), "", true, false, ""},
		{"call-only good", alice, "tools/call", tool("http", "fetch"), `{"url":"https://intranet.example/x"}`, true, false, ""},
		{"call-only bad", alice, "tools/call", tool("http", "fetch"), `{"url":"https://evil.example/"}`, false, false, "limit-args-call-only"},
		// Without a guard, list-time evaluation errors (no arguments) and a
		// forbid that errors denies: the tool disappears from lists.
		{"unguarded hidden at list", alice, "tools/list", tool("mail", "send"), "", false, false, "careless"},
		{"unguarded call ok", alice, "tools/call", tool("mail", "send"), `{"to":"a@corp.example"}`, true, false, ""},
		{"unguarded call bad", alice, "tools/call", tool("mail", "send"), `{"to":"x@external.example"}`, false, false, "careless"},
		{"unguarded call missing attr", alice, "tools/call", tool("mail", "send"), `{}`, false, false, "careless"},
	})
}

func TestErrorsDoNotAllow(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p.cedar"), `
@id("permit-if-admin")
permit(principal, action, resource) when { context.arguments.admin == true };

@id("forbid-broken")
forbid(principal, action, resource == Tool::"x/y") when { context.arguments.n > 3 };

@id("permit-x-y")
permit(principal, action, resource == Tool::"x/y");
`)
	e := newEngine(t, &policy.Options{Paths: []string{dir}})
	// A permit that errors grants nothing.
	d := e.Decide(&policy.Request{Principal: alice, Action: "tools/call", Resource: tool("a", "b"), Arguments: jsontext.Value(`{}`)})
	if d.Allow || len(d.Errors) == 0 {
		t.Errorf("erroring permit: %+v", d)
	}
	// A forbid that errors denies even though a permit matches.
	d = e.Decide(&policy.Request{Principal: alice, Action: "tools/call", Resource: tool("x", "y"), Arguments: jsontext.Value(`{"n":"many"}`)})
	if d.Allow || !slices.Contains(d.Policies, "forbid-broken") || !strings.Contains(d.Reason, "failed to evaluate") {
		t.Errorf("erroring forbid: %+v", d)
	}
	d = e.Decide(&policy.Request{Principal: alice, Action: "tools/call", Resource: tool("x", "y"), Arguments: jsontext.Value(`{"n":1}`)})
	if !d.Allow || len(d.Errors) != 1 || !strings.HasPrefix(d.Errors[0], "permit-if-admin: ") {
		t.Errorf("working forbid: %+v", d)
	}
	// Bad requests deny with an error.
	for _, req := range []policy.Request{
		{Principal: alice, Action: "tools/call", Resource: tool("x", "y"), Arguments: jsontext.Value(`[1]`)},
		{Principal: alice, Action: "tools/call", Resource: tool("x", "y"), Arguments: jsontext.Value(`{"a":1,"a":2}`)},
		{Principal: alice, Action: "tools/call", Resource: tool("x", "y"), Arguments: jsontext.Value(`{"a":`)},
		{Principal: alice, Action: "tools/call", Resource: tool("x", "y"), Arguments: jsontext.Value("{\"a\":\"\xff\"}")},
		{Principal: alice, Action: "tools/call", Resource: tool("x", "y"), Arguments: jsontext.Value(`{} {}`)},
		{Principal: alice, Action: "tools/call", Resource: tool("x", "y"), Arguments: jsontext.Value(`{} x`)},
		{Principal: alice, Action: "tools/call", Resource: tool("x", "y"), Arguments: jsontext.Value(`{"n":1}]`)},
		{Principal: alice, Action: "tools/call", Resource: tool("x", "y"), Arguments: jsontext.Value(strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100))},
		{Principal: alice, Action: "tools/call", Resource: policy.Resource{Kind: "gadget", Upstream: "x", Name: "y"}},
		{Principal: alice, Action: "tools/call", Resource: policy.Resource{Kind: "tool", Name: "y"}},
		{Principal: alice, Action: "", Resource: tool("x", "y")},
	} {
		d := e.Decide(&req)
		if d.Allow || len(d.Errors) == 0 || !strings.HasPrefix(d.Reason, "denied") {
			t.Errorf("bad request %+v: %+v", req, d)
		}
	}
}

func TestContextAttributes(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p.cedar"), `
@id("idp") permit(principal in IdP::"https://idp.example", action == Action::"tools/call", resource == Tool::"a/idp");
@id("scope") permit(principal, action == Action::"tools/call", resource == Tool::"a/scope") when { context.scopes.contains("tools:write") };
@id("office-hours") permit(principal, action == Action::"tools/call", resource == Tool::"a/time") when { context.hour >= 9 && context.hour < 17 && context.time > datetime("2026-01-01") };
@id("net") permit(principal, action == Action::"tools/call", resource == Tool::"a/net") when { context has source_ip && context.source_ip.isInRange(ip("10.0.0.0/8")) };
@id("client-host") permit(principal, action == Action::"tools/call", resource == Tool::"a/host") when { context.client.redirect_hosts.contains("app.example") && context.client.name == "App" };
@id("group") permit(principal, action in Action::"read", resource in Upstream::"docs");
@id("nums") permit(principal, action == Action::"tools/call", resource == Tool::"a/nums") when { context.arguments.n == 3 && context.arguments.d == decimal("1.5") && context.arguments.tags.contains("x") && context.arguments.o.b };
@id("session") permit(principal, action == Action::"tools/call", resource == Tool::"a/session") when { context.session == "s1" };
`)
	at := func(h int) time.Time { return time.Date(2026, 3, 4, h, 0, 0, 0, time.UTC) }
	e := newEngine(t, &policy.Options{Paths: []string{dir}})
	enterprise := policy.Principal{User: "carol", IdP: "https://idp.example", Client: policy.Client{ID: "ent", Registration: "enterprise"}}
	md := map[string]any{"redirect_uris": []any{"https://app.example/cb", "http://127.0.0.1:99/cb"}}
	for _, tc := range []struct {
		name  string
		req   policy.Request
		allow bool
	}{
		{"idp member", policy.Request{Principal: enterprise, Action: "tools/call", Resource: tool("a", "idp")}, true},
		{"idp non member", policy.Request{Principal: alice, Action: "tools/call", Resource: tool("a", "idp")}, false},
		{"scope ok", policy.Request{Principal: alice, Action: "tools/call", Resource: tool("a", "scope"), Scopes: []string{"tools:read", "tools:write"}}, true},
		{"scope missing", policy.Request{Principal: alice, Action: "tools/call", Resource: tool("a", "scope"), Scopes: []string{"tools:read"}}, false},
		{"office hours", policy.Request{Principal: alice, Action: "tools/call", Resource: tool("a", "time"), Time: at(10)}, true},
		{"night", policy.Request{Principal: alice, Action: "tools/call", Resource: tool("a", "time"), Time: at(22)}, false},
		{"net in", policy.Request{Principal: alice, Action: "tools/call", Resource: tool("a", "net"), SourceAddr: "10.1.2.3:5555"}, true},
		{"net v4-mapped", policy.Request{Principal: alice, Action: "tools/call", Resource: tool("a", "net"), SourceAddr: "[::ffff:10.1.2.3]:1"}, true},
		{"net out", policy.Request{Principal: alice, Action: "tools/call", Resource: tool("a", "net"), SourceAddr: "192.168.1.1"}, false},
		{"net absent", policy.Request{Principal: alice, Action: "tools/call", Resource: tool("a", "net"), SourceAddr: "garbage"}, false},
		{"client host", policy.Request{Principal: alice, Action: "tools/call", Resource: tool("a", "host"), ClientMetadata: md}, true},
		{"client host missing", policy.Request{Principal: alice, Action: "tools/call", Resource: tool("a", "host")}, false},
		{"read group list", policy.Request{Principal: alice, Action: "resources/list", Resource: policy.Resource{Kind: "resource", Upstream: "docs", Name: "file:///a"}}, true},
		{"read group read", policy.Request{Principal: alice, Action: "resources/read", Resource: policy.Resource{Kind: "resource", Upstream: "docs", Name: "file:///a"}}, true},
		{"read group excludes call", policy.Request{Principal: alice, Action: "tools/call", Resource: tool("docs", "x")}, false},
		{"numbers sets records", policy.Request{Principal: alice, Action: "tools/call", Resource: tool("a", "nums"), Arguments: jsontext.Value(`{"n":3,"d":1.5,"tags":["x","y",null],"o":{"b":true},"z":null}`)}, true},
		{"numbers mismatch", policy.Request{Principal: alice, Action: "tools/call", Resource: tool("a", "nums"), Arguments: jsontext.Value(`{"n":4,"d":1.5,"tags":["x"],"o":{"b":true}}`)}, false},
		{"session", policy.Request{Principal: alice, Action: "tools/call", Resource: tool("a", "session")}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.req.Time.IsZero() {
				tc.req.Time = at(12)
			}
			d := e.Decide(&tc.req)
			if d.Allow != tc.allow {
				t.Errorf("allow = %v, want %v (%s; %v)", d.Allow, tc.allow, d.Reason, d.Errors)
			}
		})
	}
}

func TestDenyByDefault(t *testing.T) {
	empty := t.TempDir()
	writeFile(t, filepath.Join(empty, "comments.cedar"), "// nothing yet\n")
	req := &policy.Request{Principal: alice, Action: "tools/call", Resource: tool("a", "b")}
	for _, tc := range []struct {
		paths []string
		deny  bool
	}{{nil, false}, {nil, true}, {[]string{empty}, false}, {[]string{empty}, true}} {
		e := newEngine(t, &policy.Options{Paths: tc.paths, DenyByDefault: tc.deny})
		if d := e.Decide(req); d.Allow == tc.deny || d.Reason == "" {
			t.Errorf("paths %v deny %v: %+v", tc.paths, tc.deny, d)
		}
	}
	// With policies loaded, Cedar's rule applies whatever DenyByDefault says.
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p.cedar"), `forbid(principal, action, resource == Tool::"x/y");`)
	e := newEngine(t, &policy.Options{Paths: []string{dir}})
	if d := e.Decide(req); d.Allow {
		t.Errorf("no permit but allowed: %+v", d)
	}
}

func TestValidationErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
	}{
		{"syntax", "permit(principal, action, resource);\n\nforbid(principal, action, resource) when { context.a like };", "bad.cedar:3:"},
		{"unknown action", `permit(principal, action == Action::"tools/cal", resource);`, `bad.cedar:1:1: action: unknown action Action::"tools/cal"`},
		{"unknown group", `permit(principal, action in Action::"writes", resource);`, "unknown action"},
		{"unknown type", `permit(principal is Usr, action, resource);`, `unknown entity type "Usr"`},
		{"unknown type in condition", `permit(principal, action, resource) when { principal in Group::"x" };`, `condition: unknown entity type "Group"`},
		{"unknown action in condition", `permit(principal, action, resource) when { action == Action::"nope" };`, "unknown action"},
		{"tool without upstream", `forbid(principal, action, resource == Tool::"run_shell");`, `ids have the form "<upstream>/<name>"`},
		{"approval on forbid", `@approval("required") forbid(principal, action, resource);`, "on a forbid"},
		{"approval value", `@approval("maybe") permit(principal, action, resource);`, `@approval must be`},
		{"empty id", `@id("") permit(principal, action, resource);`, "empty @id"},
		{"duplicate id", "@id(\"a\") permit(principal, action, resource);\n@id(\"a\") permit(principal, action, resource);", `bad.cedar:2:1: duplicate policy id "a" (first at bad.cedar:1:1)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := policy.ParseFiles(policy.File{Name: "bad.cedar", Content: []byte(tc.src)})
			var ve *policy.ValidationError
			if !errors.As(err, &ve) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a ValidationError containing %q", err, tc.want)
			}
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "bad.cedar"), tc.src)
			if _, err := policy.NewEngine(&policy.Options{Paths: []string{dir}}); err == nil {
				t.Fatal("NewEngine accepted an invalid file")
			}
		})
	}
	if _, err := policy.NewEngine(&policy.Options{Paths: []string{filepath.Join(t.TempDir(), "missing")}}); err == nil {
		t.Error("missing path accepted")
	}
	v, n, err := policy.ParseFiles(policy.File{Name: "ok.cedar", Content: []byte(`@approval permit(principal, action in Action::"tools", resource in Upstream::"x");`)})
	if err != nil || n != 1 || len(v) != 16 {
		t.Errorf("valid file: %q %d %v", v, n, err)
	}
}

func TestVersion(t *testing.T) {
	a := policy.File{Name: "a.cedar", Content: []byte(`permit(principal, action, resource);`)}
	b := policy.File{Name: "b.cedar", Content: []byte(`forbid(principal, action, resource == Tool::"x/y");`)}
	v1, _, _ := policy.ParseFiles(a, b)
	v2, _, _ := policy.ParseFiles(b, a)
	if v1 != v2 {
		t.Errorf("order changed the version: %s %s", v1, v2)
	}
	b2 := b
	b2.Content = []byte(`forbid(principal, action, resource == Tool::"x/z");`)
	v3, _, _ := policy.ParseFiles(a, b2)
	if v3 == v1 {
		t.Error("content change kept the version")
	}
	a2 := a
	a2.Name = "c.cedar"
	if v4, _, _ := policy.ParseFiles(a2, b); v4 == v1 {
		t.Error("rename kept the version")
	}
}

func TestReloadKeepsOldSetOnError(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "p.cedar")
	writeFile(t, file, `permit(principal, action, resource);`)
	e := newEngine(t, &policy.Options{Paths: []string{dir}})
	v1 := e.Version()
	req := &policy.Request{Principal: alice, Action: "tools/call", Resource: tool("a", "b")}
	writeFile(t, file, `permit(principal, action, resource`)
	if err := e.Reload(); err == nil || !strings.Contains(err.Error(), "p.cedar:1:") {
		t.Fatalf("Reload of a broken file: %v", err)
	}
	if e.Version() != v1 || !e.Decide(req).Allow {
		t.Fatal("broken reload replaced the set")
	}
	writeFile(t, file, `forbid(principal, action, resource);`)
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	if e.Version() == v1 || e.Decide(req).Allow {
		t.Fatal("good reload not applied")
	}
}

// TestWatch runs in a synctest bubble: the watcher's ticker only fires
// when every goroutine in the bubble is blocked, so the watcher never looks
// at a file the test is in the middle of writing (os.WriteFile truncates
// first: a poll between the truncation and the write would see an empty
// file), and "no change reported" is decided in bubble time, not by how
// loaded the machine is.
func TestWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		file := filepath.Join(dir, "p.cedar")
		writeFile(t, file, `permit(principal, action, resource);`)
		e := newEngine(t, &policy.Options{Paths: []string{dir}, PollInterval: 10 * time.Millisecond})
		v1 := e.Version()
		type change struct {
			version string
			err     error
		}
		changes := make(chan change, 16)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		e.Watch(ctx, func(v string, err error) { changes <- change{v, err} })
		wait := func() change {
			t.Helper()
			select {
			case c := <-changes:
				return c
			case <-time.After(5 * time.Second):
				t.Fatal("no change reported")
				return change{}
			}
		}
		// noMore checks that the change was reported once: the watcher
		// polls many times in a second and must stay quiet. The last poll
		// falls on the instant the sleep ends; synctest.Wait lets it
		// finish before the test writes to the file again.
		noMore := func() {
			t.Helper()
			time.Sleep(time.Second)
			synctest.Wait()
			select {
			case c := <-changes:
				t.Fatalf("unexpected change reported: %+v", c)
			default:
			}
		}
		req := &policy.Request{Principal: alice, Action: "tools/call", Resource: tool("a", "b")}

		// Nothing changed: nothing reported.
		noMore()

		writeFile(t, file, `forbid(principal, action, resource == Tool::"a/b"); permit(principal, action, resource);`)
		c := wait()
		if c.err != nil || c.version == v1 || c.version != e.Version() || e.Decide(req).Allow {
			t.Fatalf("change not applied: %+v, engine %s", c, e.Version())
		}
		v2 := c.version
		noMore()

		writeFile(t, file, `this is not cedar`)
		c = wait()
		if c.err == nil || c.version != v2 || e.Version() != v2 {
			t.Fatalf("broken file: %+v, engine %s", c, e.Version())
		}
		noMore() // a failed reload is reported once, not at every poll

		writeFile(t, filepath.Join(dir, "p.cedar"), `permit(principal, action, resource);`)
		c = wait()
		if c.err != nil || c.version != v1 || !e.Decide(req).Allow {
			t.Fatalf("fix not applied: %+v", c)
		}
		noMore()
	})
}

func TestCleanPathArgs(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"path":"/srv/docs/../etc/passwd","n":1}`, `{"path":"/srv/etc/passwd","n":1}`},
		{`{"path":"/srv/docs/../../etc/passwd"}`, `{"path":"/etc/passwd"}`},
		{`{"path":"/srv//docs/./a"}`, `{"path":"/srv/docs/a"}`},
		{`{"path":"\\srv\\docs\\..\\x"}`, `{"path":"/srv/x"}`},
		{`{"path":7,"other":"a/../b"}`, `{"path":7,"other":"a/../b"}`},
		{`{"path":""}`, `{"path":""}`},
	} {
		got, err := policy.CleanPathArgs(jsontext.Value(tc.in), "path")
		if err != nil || string(got) != tc.want {
			t.Errorf("CleanPathArgs(%s) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{`[]`, `{"a":1,"a":2}`, `{"path":`, `{} 1`, `{} x`, `{"path":"a"}}`} {
		if _, err := policy.CleanPathArgs(jsontext.Value(bad), "path"); err == nil {
			t.Errorf("CleanPathArgs(%s) accepted", bad)
		}
	}
	// Cleaned arguments are judged on the real path.
	e := exampleEngine(t)
	args, _ := policy.CleanPathArgs(jsontext.Value(`{"path":"/srv/docs/../etc/passwd"}`), "path")
	if d := e.Decide(&policy.Request{Principal: alice, Action: "tools/call", Resource: tool("fs", "fs_read"), Arguments: args}); d.Allow {
		t.Errorf("cleaned traversal allowed: %+v", d)
	}
	args, _ = policy.CleanPathArgs(jsontext.Value(`{"path":"/srv/docs/a/../b.txt"}`), "path")
	if d := e.Decide(&policy.Request{Principal: alice, Action: "tools/call", Resource: tool("fs", "fs_read"), Arguments: args}); !d.Allow {
		t.Errorf("cleaned in-folder path denied: %+v", d)
	}
}

func TestConcurrentDecideAndReload(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "p.cedar")
	writeFile(t, file, `permit(principal, action, resource);`)
	e := newEngine(t, &policy.Options{Paths: []string{dir}})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 20 {
			if i%2 == 0 {
				writeFile(t, file, `permit(principal, action, resource);`)
			} else {
				writeFile(t, file, `permit(principal, action, resource); forbid(principal, action, resource == Tool::"x/y");`)
			}
			_ = e.Reload()
		}
	}()
	req := &policy.Request{Principal: alice, Action: "tools/call", Resource: tool("a", "b"), Arguments: jsontext.Value(`{"x":1}`)}
	for range 2000 {
		if d := e.Decide(req); !d.Allow {
			t.Fatalf("denied: %+v", d)
		}
	}
	<-done
}

func writeFile(t testing.TB, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestVersionIndependentOfPathSpelling(t *testing.T) {
	abs, err := filepath.Abs("testdata/example")
	if err != nil {
		t.Fatal(err)
	}
	v1 := newEngine(t, &policy.Options{Paths: []string{"testdata/example"}}).Version()
	v2 := newEngine(t, &policy.Options{Paths: []string{"./testdata/example/"}}).Version()
	v3 := newEngine(t, &policy.Options{Paths: []string{abs}}).Version()
	v4 := newEngine(t, &policy.Options{Paths: []string{"testdata/example/policies.cedar"}}).Version()
	if v1 != v2 || v1 != v3 || v1 != v4 {
		t.Errorf("versions differ by path spelling: %s %s %s %s", v1, v2, v3, v4)
	}
	dir := t.TempDir()
	b, _ := os.ReadFile("testdata/example/policies.cedar")
	writeFile(t, filepath.Join(dir, "policies.cedar"), string(b))
	if v := newEngine(t, &policy.Options{Paths: []string{dir}}).Version(); v != v1 {
		t.Errorf("copied set has version %s, want %s", v, v1)
	}
}

func TestReloadRefusesEmptySet(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "p.cedar")
	writeFile(t, file, `forbid(principal, action, resource == Tool::"a/b"); permit(principal, action, resource);`)
	e := newEngine(t, &policy.Options{Paths: []string{dir}})
	v := e.Version()
	req := &policy.Request{Principal: alice, Action: "tools/call", Resource: tool("a", "b")}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(); !errors.Is(err, policy.ErrEmptyReload) {
		t.Fatalf("Reload of an emptied directory: %v", err)
	}
	if e.Version() != v || e.Decide(req).Allow {
		t.Fatal("emptied directory replaced the set")
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(); err == nil || e.Version() != v {
		t.Fatalf("Reload of a deleted directory: %v", err)
	}
}

func TestMalformedArgumentsDenied(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p.cedar"), `permit(principal, action, resource);`)
	e := newEngine(t, &policy.Options{Paths: []string{dir}})
	for _, tc := range []struct{ args, want string }{
		{`{} x`, "trailing data"},
		{`{"n":1}]`, "trailing data"},
		{`{} {}`, "trailing data"},
		{`[1]`, "not a JSON object"},
		{`"s"`, "not a JSON object"},
		{`{"a":1,"a":2}`, "duplicate"},
		{"{\"a\":\"\xff\"}", "UTF-8"},
		{`{"a":`, "EOF"},
		{strings.Repeat(`{"a":`, 70) + "1" + strings.Repeat("}", 70), "nested deeper"},
		{`{"x":` + strings.Repeat(`[`, 70) + strings.Repeat(`]`, 70) + `}`, "nested deeper"},
	} {
		d := e.Decide(&policy.Request{Principal: alice, Action: "tools/call", Resource: tool("a", "b"), Arguments: jsontext.Value(tc.args)})
		if d.Allow || len(d.Errors) != 1 || !strings.Contains(d.Errors[0], tc.want) {
			t.Errorf("args %.40q: %+v, want a deny with error %q", tc.args, d, tc.want)
		}
	}
	if d := e.Decide(&policy.Request{Principal: alice, Action: "tools/call", Resource: tool("a", "b"), Arguments: jsontext.Value(` {"a":[1,{"b":null}]} `)}); !d.Allow {
		t.Errorf("valid arguments denied: %+v", d)
	}
}

func TestDefaultPolicyIDs(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(a, "p.cedar"), "permit(principal, action, resource);\n")
	writeFile(t, filepath.Join(b, "p.cedar"), "\nforbid(principal, action, resource == Tool::\"x/y\");\n")
	if err := os.Mkdir(filepath.Join(a, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(a, "sub", "q.cedar"), "forbid(principal, action, resource == Tool::\"x/z\");\n")

	// One directory: ids are relative to it, whatever its spelling.
	for _, root := range []string{a, a + "/", a + "/./"} {
		e := newEngine(t, &policy.Options{Paths: []string{root}})
		d := e.Decide(&policy.Request{Principal: alice, Action: "tools/call", Resource: tool("x", "z")})
		if d.Allow || !slices.Equal(d.Policies, []string{"sub/q.cedar:1:1"}) || strings.Contains(d.Reason, a) {
			t.Errorf("root %q: %+v", root, d)
		}
	}
	// Two directories with the same file name: no clash, full names used.
	e := newEngine(t, &policy.Options{Paths: []string{a, b}})
	d := e.Decide(&policy.Request{Principal: alice, Action: "tools/call", Resource: tool("x", "y")})
	if d.Allow || !slices.Equal(d.Policies, []string{filepath.Join(b, "p.cedar") + ":2:1"}) {
		t.Errorf("two roots: %+v", d)
	}
}
