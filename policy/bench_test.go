package policy_test

import (
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/policy"
)

// BenchmarkDecide measures one decision against a 20-policy set.
func BenchmarkDecide(b *testing.B) {
	e := newEngine(b, &policy.Options{Paths: []string{"testdata/bench"}})
	if e.Len() != 20 {
		b.Fatalf("bench set has %d policies, want 20", e.Len())
	}
	md := map[string]any{"client_name": "App", "redirect_uris": []any{"https://app.example/cb"}}
	now := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	for _, bc := range []struct {
		name  string
		req   policy.Request
		allow bool
	}{
		{"call-with-args", policy.Request{
			Principal: alice, Action: "tools/call", Resource: tool("fs", "fs_read"),
			Arguments:  jsontext.Value(`{"path":"/srv/docs/reports/2026/q1.pdf","encoding":"utf-8","limit":200,"follow":false}`),
			Scopes:     []string{"tools:read", "tools:write"},
			Time:       now,
			SourceAddr: "10.1.2.3:5123", ClientMetadata: md,
		}, true},
		{"list-item", policy.Request{
			Principal: alice, Action: "tools/list", Resource: tool("fs", "fs_read"),
			Scopes: []string{"tools:read"}, Time: now, SourceAddr: "10.1.2.3:5123",
		}, true},
		{"denied-call", policy.Request{
			Principal: bob, Action: "tools/call", Resource: tool("ops", "run_shell"),
			Arguments: jsontext.Value(`{"cmd":"rm -rf /"}`), Time: now,
		}, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if d := e.Decide(&bc.req); d.Allow != bc.allow {
				b.Fatalf("unexpected decision %+v", d)
			}
			b.ReportAllocs()
			for b.Loop() {
				e.Decide(&bc.req)
			}
		})
	}
}

// BenchmarkDecideParallel measures decisions from all CPUs at once, as a
// gateway filtering lists for many sessions does.
func BenchmarkDecideParallel(b *testing.B) {
	e := newEngine(b, &policy.Options{Paths: []string{"testdata/bench"}})
	req := policy.Request{
		Principal: alice, Action: "tools/call", Resource: tool("fs", "fs_read"),
		Arguments: jsontext.Value(`{"path":"/srv/docs/reports/2026/q1.pdf","limit":200}`),
		Scopes:    []string{"tools:read"}, SourceAddr: "10.1.2.3:5123",
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := req
		for pb.Next() {
			if !e.Decide(&r).Allow {
				b.Fatal("denied")
			}
		}
	})
}
