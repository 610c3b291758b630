package policy_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/policy"
)

// TestProbe: a probe of a call action (no arguments record) allows, or is
// indeterminate when only the arguments could decide, or denies when a
// policy forbids the call whatever the arguments. The rows are the
// intents of docs/policy.md ("List-time and call-time evaluation").
func TestProbe(t *testing.T) {
	cases := []struct {
		name, policies string
		visible        bool // probe allows or is indeterminate
		withArgs       string
		callAllowed    bool
	}{
		{"hide", `permit(principal, action, resource);
forbid(principal, action in Action::"tools", resource == Tool::"fs/read");`, false, `{"path":"/srv/docs/a"}`, false},
		{"call forbidden whatever the arguments", `permit(principal, action, resource);
forbid(principal, action == Action::"tools/call", resource == Tool::"fs/read");`, false, `{"path":"/srv/docs/a"}`, false},
		{"restrict arguments", `permit(principal, action, resource);
forbid(principal, action == Action::"tools/call", resource == Tool::"fs/read") unless { context.arguments has path && context.arguments.path like "/srv/docs/*" };`, true, `{"path":"/etc/passwd"}`, false},
		{"restrict arguments, guarded", `permit(principal, action, resource);
forbid(principal, action, resource == Tool::"fs/read") when { context has arguments && !(context.arguments has path && context.arguments.path like "/srv/docs/*") };`, true, `{"path":"/srv/docs/a"}`, true},
		{"grant only with arguments", `permit(principal == User::"alice", action in Action::"tools", resource == Tool::"fs/read") when { context.arguments.path like "/srv/docs/*" };`, true, `{"path":"/srv/docs/a"}`, true},
		{"deny by default", `permit(principal == User::"bob", action, resource);`, false, `{}`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "p.cedar"), []byte(c.policies), 0o600); err != nil {
				t.Fatal(err)
			}
			e := newEngine(t, &policy.Options{Paths: []string{dir}})
			d := e.Decide(&policy.Request{Principal: alice, Action: "tools/call", Resource: tool("fs", "read"), Probe: true})
			if got := d.Allow || d.Indeterminate; got != c.visible {
				t.Errorf("probe: %+v, want visible=%v", d, c.visible)
			}
			d = e.Decide(&policy.Request{Principal: alice, Action: "tools/call", Resource: tool("fs", "read"), Arguments: jsontext.Value(c.withArgs)})
			if d.Allow != c.callAllowed {
				t.Errorf("call with %s: %+v, want allow=%v", c.withArgs, d, c.callAllowed)
			}
			if d.Indeterminate && d.Allow {
				t.Error("an allow is never indeterminate")
			}
		})
	}
}
