package console

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/go-json-experiment/json"
	"github.com/spf13/cobra"

	"github.com/mcpgate/mcpgate/internal/cli/policycmd"
	"github.com/mcpgate/mcpgate/policy"
)

// dryRunResources is a resource, with its upstream, for each kind.
var dryRunResources = map[string][2]string{
	policy.KindTool:          {"files/read", ""},
	policy.KindPrompt:        {"files/read", ""},
	policy.KindCompletion:    {"files/read", ""},
	policy.KindResource:      {"file:///srv/a.txt", "files"},
	policy.KindTask:          {"task-1", "files"},
	policy.KindUpstream:      {"files", ""},
	policy.KindClientRequest: {"files", ""},
}

// TestDryRunSameAsPolicyTest: for every method the policy model governs,
// the console's dry run and `mcpgate policy test --json` build the same
// request (policycmd.BuildRequest) and print the same decision, deciding
// policies and version. The console reads a local user's groups from the
// store; the command line is given them.
func TestDryRunSameAsPolicyTest(t *testing.T) {
	w := newWorld(t)
	vic := w.signIn("vic")
	for _, action := range policy.Actions() {
		kind, ok := policycmd.ResourceKind(action)
		if !ok {
			t.Errorf("%s: not known to policycmd.BuildRequest", action)
			continue
		}
		res := dryRunResources[kind]
		for _, user := range []string{"alice", "mallory"} {
			body := dryRun{Principal: user, Action: action, Resource: res[0], Upstream: res[1], Arguments: []byte(`{"env":"prod"}`)}
			if !slices.Contains([]string{"tools/call", "prompts/get", "completion/complete"}, action) {
				body.Arguments = nil
			}
			var console dryRunResult
			a := vic.post("/console/api/policies/dry-run", body)
			if a.code != http.StatusOK {
				t.Errorf("%s as %s: console HTTP %d %s", action, user, a.code, a.body)
				continue
			}
			a.decode(t, &console)

			args := []string{"policy", "test", "--json", "--policies", w.c.opts.PolicyPaths[0], "--principal", user, "--action", action, "--resource", res[0]}
			if res[1] != "" {
				args = append(args, "--upstream", res[1])
			}
			if user == "alice" {
				args = append(args, "--group", "staff")
			}
			if body.Arguments != nil {
				args = append(args, "--args", string(body.Arguments))
			}
			root := &cobra.Command{Use: "mcpgate", SilenceUsage: true, SilenceErrors: true}
			root.AddCommand(policycmd.Commands(nil)...)
			var out bytes.Buffer
			root.SetOut(&out)
			root.SetArgs(args)
			if err := root.ExecuteContext(context.Background()); err != nil {
				t.Errorf("%s as %s: policy test: %v %s", action, user, err, out.String())
				continue
			}
			var cli dryRunResult
			if err := json.Unmarshal(out.Bytes(), &cli); err != nil {
				t.Fatalf("policy test --json: %v %s", err, out.String())
			}
			// policy test prints "allow" with require_approval for an
			// approval; the console prints approval_required.
			if cli.Decision == "allow" && cli.RequireApproval {
				cli.Decision = "approval_required"
			}
			if console.Decision != cli.Decision || !slices.Equal(console.Policies, cli.Policies) || console.PolicyVersion != cli.PolicyVersion || console.Reason != cli.Reason {
				t.Errorf("%s as %s: console %+v, policy test %+v", action, user, console, cli)
			}
		}
	}
}
