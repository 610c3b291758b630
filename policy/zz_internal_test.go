package policy

import (
	"testing"
	"time"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/go-json-experiment/json/jsontext"
)

func BenchmarkZZParts(b *testing.B) {
	e, _ := NewEngine(&Options{Paths: []string{"testdata/bench"}})
	md := map[string]any{"client_name": "App", "redirect_uris": []any{"https://app.example/cb"}}
	req := &Request{Principal: Principal{User: "alice", Client: Client{ID: "https://app.example/cimd.json", Name: "App", Registration: "cimd"}, Session: "s1"}, Action: "tools/call", Resource: Resource{Kind: "tool", Upstream: "fs", Name: "fs_read"},
		Arguments: jsontext.Value(`{"path":"/srv/docs/reports/2026/q1.pdf","encoding":"utf-8","limit":200,"follow":false}`), Scopes: []string{"tools:read", "tools:write"}, Time: time.Now(), SourceAddr: "10.1.2.3:5123", ClientMetadata: md}
	b.Run("toCedar", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			cr := cedarRequest{entities: requestEntities{actions: e.actions}}
			req.toCedar(&cr, e.set.Load(), &e.cache, &e.convs, time.Now)
		}
	})
	b.Run("args", func(b *testing.B) {
		b.ReportAllocs()
		var c argumentsConverter
		for b.Loop() {
			c.convertArguments(req.Arguments)
		}
	})
	cr := cedarRequest{entities: requestEntities{actions: e.actions}}
	req.toCedar(&cr, e.set.Load(), &e.cache, &e.convs, time.Now)
	cands := cr.candidates.policies
	b.Logf("candidates %d", len(cands))
	b.Run("authorize", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			cedar.Authorize(cands, &cr.entities, cr.req)
		}
	})
}
