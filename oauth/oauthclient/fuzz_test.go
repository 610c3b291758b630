package oauthclient

import (
	"net/url"
	"testing"

	"github.com/mcpgate/mcpgate/oauth/meta"
)

func FuzzResourceMatches(f *testing.F) {
	f.Add("https://a.example/mcp", "https://a.example/mcp/x")
	f.Add("https://a.example", "https://A.example:443/")
	f.Add("http://[::1]:80/a", "http://[::1]/a/b")
	f.Add("https://a.example/mcp?x=1", "https://a.example/mcp?x=1")
	f.Fuzz(func(t *testing.T, resource, server string) {
		got := ResourceMatches(resource, server)
		if !got {
			return
		}
		// A match implies the same origin.
		ro, err1 := meta.Origin(resource)
		so, err2 := meta.Origin(server)
		if err1 != nil || err2 != nil || ro != so {
			t.Fatalf("ResourceMatches(%q, %q) = true across origins %q %q", resource, server, ro, so)
		}
	})
}

func FuzzParseAuthorizationResponse(f *testing.F) {
	f.Add("http://localhost:3000/callback?code=c&state=s&iss=https%3A%2F%2Fas")
	f.Add("http://localhost/cb?error=access_denied&state=s")
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		r := ParseAuthorizationResponse(u)
		as := &meta.AuthorizationServerMetadata{Issuer: "https://as", AuthorizationResponseIssParameterSupported: true}
		if err := CheckAuthorizationResponse(r, "expected-state", as); err == nil {
			if r.State != "expected-state" || r.Iss != "https://as" || r.Code == "" {
				t.Fatalf("accepted %+v", r)
			}
		}
	})
}

func BenchmarkResourceMatches(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if !ResourceMatches("https://mcp.example.com/mcp", "https://mcp.example.com/mcp") {
			b.Fatal("no match")
		}
	}
}
