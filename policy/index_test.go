package policy

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cedar-policy/cedar-go/types"
	"github.com/go-json-experiment/json/jsontext"
)

// TestIndexMatchesExhaustive checks that the action/type index, context
// pruning and scope pre-check give exactly the decisions (allow, approval,
// deciding policies, errors) of evaluating every policy with the whole
// context.
func TestIndexMatchesExhaustive(t *testing.T) {
	principals := []Principal{
		{User: "alice", Client: Client{ID: "https://app.example/cimd.json", Name: "App", Registration: "cimd"}, Session: "s1"},
		{User: "bob", IdP: "https://idp.example", Client: Client{ID: "ent", Registration: "enterprise"}},
		{User: "carol", Client: Client{ID: "c-1", Registration: "dynamic"}},
		{Client: Client{ID: "reporter", Registration: "m2m"}},
		{Client: Client{ID: "svc", Registration: "m2m"}, IdP: "https://idp.example"},
		{},
	}
	resources := []Resource{
		{Kind: KindTool, Upstream: "fs", Name: "fs_read"},
		{Kind: KindTool, Upstream: "fs", Name: "delete_file"},
		{Kind: KindTool, Upstream: "ops", Name: "run_shell"},
		{Kind: KindTool, Upstream: "reports", Name: "weekly"},
		{Kind: KindTool, Upstream: "billing", Name: "pay"},
		{Kind: KindTool, Upstream: "db", Name: "query"},
		{Kind: KindTool, Upstream: "hr", Name: "lookup"},
		{Kind: KindResource, Upstream: "docs", Name: "secret://x"},
		{Kind: KindResource, Upstream: "docs", Name: "file:///a"},
		{Kind: KindPrompt, Upstream: "admin", Name: "p"},
		{Kind: KindTask, Upstream: "fs", Name: "t1"},
		{Kind: KindCompletion, Upstream: "admin", Name: "p"},
		{Kind: KindUpstream, Upstream: "untrusted"},
		{Kind: KindClientRequest, Upstream: "untrusted"},
	}
	args := []string{"", `{}`, `{"path":"/srv/docs/a"}`, `{"path":"/srv/docs/../etc"}`, `{"path":"/etc/passwd","limit":5000}`, `{"amount":150,"x":[1,"a"]}`, `{"limit":"many"}`}
	actions := append(Actions(), "custom/method")
	md := map[string]any{"redirect_uris": []any{"https://evil.example/cb"}}
	for _, dir := range []string{"testdata/example", "testdata/bench"} {
		fast, err := NewEngine(&Options{Paths: []string{dir}})
		if err != nil {
			t.Fatal(err)
		}
		slow, _ := NewEngine(&Options{Paths: []string{dir}})
		slow.exhaustive = true
		n := 0
		for _, p := range principals {
			for _, a := range actions {
				for _, r := range resources {
					for _, arg := range args {
						req := &Request{Principal: p, Action: a, Resource: r, Scopes: []string{"crm:write"},
							Time: time.Date(2026, 3, 4, 20, 0, 0, 0, time.UTC), SourceAddr: "10.0.0.1", ClientMetadata: md}
						if arg != "" {
							req.Arguments = jsontext.Value(arg)
						}
						df, ds := fast.Decide(req), slow.Decide(req)
						slices.Sort(df.Errors)
						slices.Sort(ds.Errors)
						if fmt.Sprint(df) != fmt.Sprint(ds) {
							t.Fatalf("%s: %+v\nindexed:    %+v\nexhaustive: %+v", dir, req, df, ds)
						}
						n++
					}
				}
			}
		}
		t.Logf("%s: %d requests agree", dir, n)
	}
}

func TestContextNeeds(t *testing.T) {
	for _, tc := range []struct {
		src             string
		allCtx, allArgs bool
		attrs, args     []string
	}{
		{`permit(principal, action, resource);`, false, false, nil, nil},
		{`permit(principal, action, resource) when { context.arguments has path && context.arguments.path like "/a/*" };`, false, false, []string{"arguments"}, []string{"path"}},
		{`permit(principal, action, resource) when { context has arguments && context.hour > 3 };`, false, false, []string{"arguments", "hour"}, nil},
		{`permit(principal, action, resource) when { context.arguments == {"a": 1} };`, false, true, []string{"arguments"}, nil},
		{`permit(principal, action, resource) when { context == {} };`, true, false, nil, nil},
		{`permit(principal, action, resource) when { context["arguments"]["path"] == "x" };`, false, false, []string{"arguments"}, []string{"path"}},
	} {
		ps, err := compile([]File{{Name: "f.cedar", Content: []byte(tc.src)}})
		if err != nil {
			t.Fatal(err)
		}
		n := ps.policies[0].needs
		if n.allContext != tc.allCtx || n.allArgs != tc.allArgs {
			t.Errorf("%s: all context %v args %v", tc.src, n.allContext, n.allArgs)
		}
		for _, a := range tc.attrs {
			if !n.context(typesString(a)) {
				t.Errorf("%s: context.%s not needed", tc.src, a)
			}
		}
		for _, a := range tc.args {
			if !n.argument(typesString(a)) {
				t.Errorf("%s: arguments.%s not needed", tc.src, a)
			}
		}
		if !tc.allCtx && n.context("session") {
			t.Errorf("%s: session needed", tc.src)
		}
	}
}

func typesString(s string) types.String { return types.String(s) }

func engineFromSource(t testing.TB, src string) (*Engine, error) {
	set, err := compile([]File{{Name: "f.cedar", Content: []byte(src)}})
	if err != nil {
		return nil, err
	}
	e := &Engine{actions: buildActionEntities(), cache: newEntityCache(), now: time.Now}
	e.set.Store(set)
	return e, nil
}

// FuzzIndexMatchesExhaustive checks the index, pruning and pre-check
// against exhaustive evaluation for arbitrary policies and arguments.
func FuzzIndexMatchesExhaustive(f *testing.F) {
	f.Add(`permit(principal, action, resource) when { context.arguments.a == 1 };`, `{"a":1}`, uint8(1), uint8(0))
	f.Add(`forbid(principal in IdP::"i", action in Action::"read", resource in Upstream::"u") unless { context has arguments && context.arguments.x like "*" }; permit(principal, action, resource);`, `{"x":"y"}`, uint8(3), uint8(2))
	f.Add(`@approval permit(principal is Client, action, resource is Tool) when { context.arguments == {"a":[1]} && context.client.registration == "m2m" };`, `{"a":[1]}`, uint8(1), uint8(0))
	f.Add(`permit(principal, action, resource) when { context.path_traversal || context.session == "s" || context.hour < 12 };`, `{"p":"../x"}`, uint8(1), uint8(1))
	actions := Actions()
	resources := []Resource{
		{Kind: KindTool, Upstream: "u", Name: "t"}, {Kind: KindTool, Upstream: "fs", Name: "t"},
		{Kind: KindResource, Upstream: "u", Name: "file:///a"}, {Kind: KindUpstream, Upstream: "u"},
		{Kind: KindTask, Name: "t1"}, {Kind: KindPrompt, Upstream: "u", Name: "p"},
	}
	principals := []Principal{
		{User: "alice", IdP: "i", Client: Client{ID: "c", Registration: "cimd"}, Session: "s"},
		{Client: Client{ID: "m", Registration: "m2m"}, IdP: "i"},
		{},
	}
	f.Fuzz(func(t *testing.T, src, args string, ai, ri uint8) {
		fast, err := engineFromSource(t, src)
		if err != nil {
			return
		}
		slow, _ := engineFromSource(t, src)
		slow.exhaustive = true
		for _, p := range principals {
			req := &Request{Principal: p, Action: actions[int(ai)%len(actions)], Resource: resources[int(ri)%len(resources)], Arguments: jsontext.Value(args), SourceAddr: "10.0.0.1", Scopes: []string{"a"}}
			if args == "" {
				req.Arguments = nil
			}
			df, ds := fast.Decide(req), slow.Decide(req)
			slices.Sort(df.Errors)
			slices.Sort(ds.Errors)
			if fmt.Sprint(df) != fmt.Sprint(ds) {
				t.Fatalf("indexed %+v\nexhaustive %+v", df, ds)
			}
		}
	})
}
