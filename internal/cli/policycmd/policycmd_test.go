package policycmd_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"
	"github.com/spf13/cobra"

	"github.com/mcpgate/mcpgate/internal/cli/policycmd"
)

const examples = "../../../policy/testdata/example"

func run(args ...string) (string, error) {
	return runWith(nil, args...)
}

func runWith(sources func(context.Context) ([]string, bool, error), args ...string) (string, error) {
	root := &cobra.Command{Use: "mcpgate", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(policycmd.Commands(sources)...)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestValidateWarnsOfUnprovidedAttributes(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "p.cedar"), []byte(`permit(principal, action, resource);
forbid(principal, action, resource) when { principal.groups.contains("contractors") };
forbid(principal, action, resource) when { principal.email like "*@evil.example" };
forbid(principal, action, resource) when { principal.department == "x" };
`), 0o600)
	for _, tt := range []struct {
		name     string
		provided []string
		ok       bool
		want     []string
		notWant  []string
	}{
		{"no configuration named", nil, false, nil, []string{"warning"}},
		{"nothing provided", nil, true, []string{"p.cedar:2:1: principal.groups is read, but no configured source", "p.cedar:3:1: principal.email", "principal.department is not an attribute"}, nil},
		{"groups from an IdP", []string{"email", "groups", "idp", "name", "roles"}, true, []string{"principal.department"}, []string{"principal.groups is read", "principal.email is read"}},
		{"email from local users", []string{"email"}, true, []string{"principal.groups is read"}, []string{"principal.email is read"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runWith(func(context.Context) ([]string, bool, error) { return tt.provided, tt.ok, nil }, "policy", "validate", dir)
			if err != nil || !strings.HasPrefix(out, "ok: 4 policies") {
				t.Fatalf("validate: %q %v", out, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(out, w) {
					t.Errorf("output has %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestTestWithIdentityAttributes(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "p.cedar"), []byte(`permit(principal, action, resource);
forbid(principal, action, resource) when { principal.groups.contains("contractors") };
`), 0o600)
	args := []string{"policy", "test", "--policies", dir, "--principal", "alice", "--action", "tools/call", "--resource", "up/t"}
	if out, err := run(append(args, "--group", "eng", "--expect", "allow")...); err != nil {
		t.Fatalf("eng: %q %v", out, err)
	}
	if out, err := run(append(args, "--group", "eng", "--group", "contractors", "--expect", "deny")...); err != nil {
		t.Fatalf("contractors: %q %v", out, err)
	}
}

func TestValidate(t *testing.T) {
	out, err := run("policy", "validate", examples)
	if err != nil || !strings.HasPrefix(out, "ok: 7 policies, version ") {
		t.Fatalf("validate examples: %q %v", out, err)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.cedar")
	os.WriteFile(bad, []byte("permit(principal, action, resource);\nforbid(principal, action == Action::\"tool/call\", resource);\n"), 0o600)
	_, err = run("policy", "validate", dir)
	if err == nil || !strings.Contains(err.Error(), bad+":2:1: action: unknown action") {
		t.Fatalf("validate bad: %v", err)
	}
	limits := filepath.Join(dir, "limits.yaml")
	os.WriteFile(limits, []byte("limits:\n  - {match: {user: \"*\"}, rate: 10/s}\n"), 0o600)
	if out, err := run("policy", "validate", examples, "--limits", limits); err != nil || !strings.Contains(out, "ok: 1 rate limits") {
		t.Fatalf("validate limits: %q %v", out, err)
	}
	os.WriteFile(limits, []byte("limits:\n  - {match: {user: \"*\"}, rate: 10/fortnight}\n"), 0o600)
	if _, err := run("policy", "validate", examples, "--limits", limits); err == nil || !strings.Contains(err.Error(), "unknown unit") {
		t.Fatalf("validate bad limits: %v", err)
	}
	if _, err := run("policy", "validate"); err == nil {
		t.Fatal("validate without paths accepted")
	}
}

func TestTest(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string // substrings of the output
		err  string
	}{
		{"allowed in folder",
			[]string{"--principal", "alice", "--client", "app", "--registration", "cimd", "--action", "tools/call", "--resource", `Tool::"fs/fs_read"`, "--args", `{"path":"/srv/docs/a.txt"}`, "--expect", "allow"},
			[]string{"decision: allow\n", "policies: users-baseline\n", "version:  "}, ""},
		{"traversal denied",
			[]string{"--principal", `User::"alice"`, "--action", "tools/call", "--resource", "fs/fs_read", "--args", `{"path":"/srv/docs/../etc/passwd"}`, "--expect", "deny"},
			[]string{"decision: deny\n", `reason:   denied by policy "fs-read-docs-folder"`, "policies: fs-read-docs-folder\n"}, ""},
		{"approval",
			[]string{"--principal", "alice", "--action", "tools/call", "--resource", `Tool::"fs/delete_file"`, "--args", `{}`, "--expect", "approval"},
			[]string{"decision: allow (approval required)", "approve-deletes"}, ""},
		{"m2m",
			[]string{"--principal", `Client::"reporter"`, "--action", "tools/call", "--resource", `Tool::"reports/weekly"`, "--expect", "allow"},
			[]string{"policies: m2m-reports-only"}, ""},
		{"m2m elsewhere",
			[]string{"--principal", `Client::"reporter"`, "--action", "tools/list", "--resource", `Tool::"fs/fs_read"`, "--expect", "deny"},
			[]string{"decision: deny"}, ""},
		{"expectation fails",
			[]string{"--principal", "bob", "--action", "tools/list", "--resource", `Tool::"ops/run_shell"`, "--expect", "allow"},
			[]string{"no-shell"}, "expected allow, got deny"},
		{"resource needs upstream",
			[]string{"--principal", "bob", "--action", "resources/read", "--resource", `Resource::"file:///a"`},
			nil, "--resource: a Resource needs an upstream"},
		{"bad args",
			[]string{"--principal", "bob", "--action", "tools/call", "--resource", "a/b", "--args", `{"a":1,"a":2}`},
			nil, "--args"},
		{"bad principal",
			[]string{"--principal", `Group::"x"`, "--action", "tools/call", "--resource", "a/b"},
			nil, "--principal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(append([]string{"policy", "test", "--policies", examples}, tc.args...)...)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("err = %v, want %q\n%s", err, tc.err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestTestJSON(t *testing.T) {
	out, err := run("policy", "test", "--policies", examples, "--json", "--principal", "bob",
		"--action", "tools/call", "--resource", `Tool::"ops/run_shell"`, "--args", `{"cmd":"id"}`)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Decision      string   `json:"decision"`
		Policies      []string `json:"policies"`
		PolicyVersion string   `json:"policy_version"`
		Reason        string   `json:"reason"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got.Decision != "deny" || len(got.Policies) != 1 || got.Policies[0] != "no-shell" || len(got.PolicyVersion) != 16 || !strings.Contains(got.Reason, "shell access is disabled") {
		t.Fatalf("%+v", got)
	}
}

func TestTestTaskPolicies(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "p.cedar"), []byte(`
@id("contractor-tasks") @max_task_ttl("10m") @max_concurrent_tasks("3")
permit(principal, action == Action::"tools/call", resource) when { principal.groups.contains("contractors") };
@id("no-shell-tasks")
forbid(principal, action == Action::"tools/call", resource == Tool::"sh/exec") when { context has task };
`), 0o600)
	args := []string{"policy", "test", "--policies", dir, "--principal", "carol", "--group", "contractors", "--action", "tools/call"}
	out, err := run(append(args, "--resource", "fs/index", "--task-ttl", "5m", "--running-tasks", "1", "--expect", "allow")...)
	if err != nil || !strings.Contains(out, "max task ttl: 10m0s (policy contractor-tasks)") || !strings.Contains(out, "max concurrent tasks: 3 (policy contractor-tasks)") {
		t.Fatalf("task: %q %v", out, err)
	}
	if out, err := run(append(args, "--resource", "sh/exec", "--task", "--expect", "deny")...); err != nil {
		t.Fatalf("shell task: %q %v", out, err)
	}
	if out, err := run(append(args, "--resource", "sh/exec", "--expect", "allow")...); err != nil {
		t.Fatalf("shell call: %q %v", out, err)
	}
}
