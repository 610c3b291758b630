package policy_test

import (
	"os"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/policy"
)

func FuzzParseFiles(f *testing.F) {
	b, err := os.ReadFile("testdata/example/policies.cedar")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(b))
	f.Add(`@id("x") @approval permit(principal, action in Action::"tools", resource is Tool) when { context has arguments };`)
	f.Add(`forbid(principal, action, resource == Tool::"a")`)
	f.Fuzz(func(t *testing.T, src string) {
		v, n, err := policy.ParseFiles(policy.File{Name: "f.cedar", Content: []byte(src)})
		if err != nil {
			if !strings.Contains(err.Error(), "f.cedar") {
				t.Fatalf("error without file name: %v", err)
			}
			return
		}
		if len(v) != 16 || n < 0 {
			t.Fatalf("version %q count %d", v, n)
		}
	})
}

func FuzzDecideArguments(f *testing.F) {
	e := newEngine(f, &policy.Options{Paths: []string{"testdata/example"}})
	for _, s := range []string{`{"path":"/srv/docs/a"}`, `{"path":"/srv/docs/../x"}`, `{"a":[1,2.5,{"b":null}],"c":true}`, `{"n":1e400}`, `[]`, `{`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, args string) {
		d := e.Decide(&policy.Request{Principal: alice, Action: "tools/call", Resource: tool("fs", "fs_read"), Arguments: jsontext.Value(args)})
		if d.Allow {
			// Only a path inside /srv/docs (or the folder itself, as
			// "/srv/docs/") with no traversal may pass.
			cleaned, err := policy.CleanPathArgs(jsontext.Value(args), "path")
			if err != nil {
				t.Fatalf("allowed arguments that CleanPathArgs rejects: %q: %v", args, err)
			}
			if !strings.Contains(string(cleaned), `"/srv/docs/`) && !strings.Contains(string(cleaned), `"/srv/docs"`) {
				t.Fatalf("allowed %q", args)
			}
		}
		if d.Reason == "" || d.PolicyVersion == "" {
			t.Fatalf("incomplete decision %+v", d)
		}
	})
}

func FuzzCleanPathArgs(f *testing.F) {
	for _, s := range []string{`{"path":"/srv/docs/../x"}`, `{"path":1}`, `{"path":"a\\b"}`, `[]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, args string) {
		out, err := policy.CleanPathArgs(jsontext.Value(args), "path")
		if err != nil {
			return
		}
		if !jsontext.Value(out).IsValid() {
			t.Fatalf("invalid output %q for %q", out, args)
		}
		again, err := policy.CleanPathArgs(out, "path")
		if err != nil || string(again) != string(out) {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", args, out, again, err)
		}
	})
}
