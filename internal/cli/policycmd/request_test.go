package policycmd_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/internal/cli/policycmd"
	"github.com/mcpgate/mcpgate/policy"
)

// bareResources is a bare resource, with its upstream, for each kind of
// resource, and the resource it must become.
var bareResources = map[string]struct {
	resource, upstream string
	want               policy.Resource
}{
	policy.KindTool:          {"files/read", "", policy.Resource{Kind: policy.KindTool, Upstream: "files", Name: "read"}},
	policy.KindPrompt:        {"files/read", "", policy.Resource{Kind: policy.KindPrompt, Upstream: "files", Name: "read"}},
	policy.KindCompletion:    {"files/read", "", policy.Resource{Kind: policy.KindCompletion, Upstream: "files", Name: "read"}},
	policy.KindResource:      {"file:///srv/a.txt", "files", policy.Resource{Kind: policy.KindResource, Upstream: "files", Name: "file:///srv/a.txt"}},
	policy.KindTask:          {"task-1", "files", policy.Resource{Kind: policy.KindTask, Upstream: "files", Name: "task-1"}},
	policy.KindUpstream:      {"files", "", policy.Resource{Kind: policy.KindUpstream, Upstream: "files"}},
	policy.KindClientRequest: {"files", "", policy.Resource{Kind: policy.KindClientRequest, Upstream: "files"}},
}

// TestBuildRequestCoversEveryAction: every method the policy model
// governs has a resource kind, its bare resource becomes the resource
// the gateway decides on, the engine decides the request without
// errors, and `policy test` decides it the same way.
func TestBuildRequestCoversEveryAction(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.cedar"), []byte(`@id("all")
permit(principal, action, resource) when { principal.groups.contains("staff") };
@id("no-mallory")
forbid(principal == User::"mallory", action, resource);
`), 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := policy.NewEngine(&policy.Options{Paths: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	for _, action := range policy.Actions() {
		kind, ok := policycmd.ResourceKind(action)
		if !ok {
			t.Errorf("%s: no resource kind (a method the policy model governs that BuildRequest does not know)", action)
			continue
		}
		br, ok := bareResources[kind]
		if !ok {
			t.Fatalf("%s: no test resource of kind %q", action, kind)
		}
		for _, user := range []string{"alice", "mallory"} {
			spec := &policycmd.RequestSpec{Principal: user, Groups: []string{"staff"}, Action: action, Resource: br.resource, Upstream: br.upstream}
			req, err := policycmd.BuildRequest(spec)
			if err != nil {
				t.Errorf("%s: %v", action, err)
				continue
			}
			want := br.want
			if kind == policy.KindClientRequest {
				want.Name = action
			}
			if req.Resource != want || req.Action != action || req.Principal.User != user {
				t.Errorf("%s: request %+v, want resource %+v", action, req, want)
			}
			d := e.Decide(req)
			wantPolicy := map[string]string{"alice": "all", "mallory": "no-mallory"}[user]
			if d.Allow != (user == "alice") || len(d.Errors) > 0 || len(d.Policies) != 1 || d.Policies[0] != wantPolicy {
				t.Errorf("%s as %s: decision %+v", action, user, d)
			}
			args := []string{"policy", "test", "--policies", dir, "--principal", user, "--group", "staff", "--action", action, "--resource", br.resource, "--json"}
			if br.upstream != "" {
				args = append(args, "--upstream", br.upstream)
			}
			out, err := run(args...)
			var got struct {
				Decision string   `json:"decision"`
				Policies []string `json:"policies"`
			}
			if err != nil || json.Unmarshal([]byte(out), &got) != nil || got.Decision != map[bool]string{true: "allow", false: "deny"}[d.Allow] || strings.Join(got.Policies, ",") != wantPolicy {
				t.Errorf("policy test %s as %s: %v %s", action, user, err, out)
			}
		}
	}
}

func TestBuildRequestErrors(t *testing.T) {
	for _, tc := range []struct {
		spec  policycmd.RequestSpec
		field string
		want  string
	}{
		{policycmd.RequestSpec{Principal: "alice"}, "action", "name the MCP method"},
		{policycmd.RequestSpec{Principal: "alice", Action: "tools/destroy", Resource: "a/b"}, "action", "not a method the gateway decides"},
		{policycmd.RequestSpec{Principal: `Group::"x"`, Action: "tools/call", Resource: "a/b"}, "principal", "want User"},
		{policycmd.RequestSpec{Principal: `Client::"a"`, Client: "b", Action: "tools/call", Resource: "a/b"}, "principal", "names a Client"},
		{policycmd.RequestSpec{Principal: "alice", Action: "tools/call", Resource: "read"}, "resource", `"<upstream>/<name>"`},
		{policycmd.RequestSpec{Principal: "alice", Action: "resources/read", Resource: "file:///a"}, "resource", "its upstream"},
		{policycmd.RequestSpec{Principal: "alice", Action: "tasks/get"}, "resource", "its id"},
		{policycmd.RequestSpec{Principal: "alice", Action: "logging/setLevel", Resource: "a/b"}, "resource", "an upstream"},
		{policycmd.RequestSpec{Principal: "alice", Action: "roots/list"}, "resource", "the upstream that sends it"},
		{policycmd.RequestSpec{Principal: "alice", Action: "tools/call", Resource: "a/b", Arguments: []byte(`[1]`)}, "arguments", "JSON object"},
		{policycmd.RequestSpec{Principal: "alice", Action: "tools/call", Resource: "a/b", Arguments: []byte(`{"a":1,"a":2}`)}, "arguments", "JSON object"},
		{policycmd.RequestSpec{Principal: "alice", Action: "tools/call", Resource: "a/b", Task: &policy.TaskContext{Running: -1}}, "task", "negative"},
	} {
		_, err := policycmd.BuildRequest(&tc.spec)
		var fe *policycmd.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want a %s error containing %q", tc.spec, err, tc.field, tc.want)
		}
	}
	// A client on its own is machine-to-machine unless said otherwise.
	for _, spec := range []policycmd.RequestSpec{{Client: "reporter"}, {Principal: `Client::"reporter"`}} {
		spec.Action, spec.Resource = "tools/call", "a/b"
		req, err := policycmd.BuildRequest(&spec)
		if err != nil || req.Principal.Client.ID != "reporter" || req.Principal.Client.Registration != "m2m" || req.Principal.User != "" {
			t.Errorf("%+v: %+v %v", spec, req, err)
		}
	}
}
