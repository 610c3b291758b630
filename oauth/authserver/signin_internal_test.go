package authserver

import (
	"net/url"
	"path"
	"strings"
	"testing"
)

func TestSignInReturnAllowed(t *testing.T) {
	s := &Server{opts: Options{SignInReturns: []string{"/approvals/"}}}
	for next, want := range map[string]bool{
		"/approvals/":                     true,
		"/approvals/abc":                  true,
		"/approvals/abc?x=1":              true,
		"":                                false,
		"approvals/abc":                   false,
		"//evil.example/approvals/":       false,
		"https://evil.example/approvals/": false,
		"/approvals/../oauth/token":       false,
		"/approvals/./x":                  false,
		"/approvals\\..\\x":               false,
		"/mcp":                            false,
		"/approvals/x#frag":               false,
		"/approvals/x\r\nSet-Cookie: a=b": false,
	} {
		if got := s.signInReturnAllowed(next); got != want {
			t.Errorf("signInReturnAllowed(%q) = %v, want %v", next, got, want)
		}
	}
}

// FuzzSignInReturnAllowed: a return path the sign-in accepts, resolved
// against the gateway's address, stays on the gateway's host and, once
// cleaned, under a configured prefix.
func FuzzSignInReturnAllowed(f *testing.F) {
	for _, s := range []string{"/approvals/abc", "//evil/approvals/", "/approvals/%2e%2e/oauth", "/approvals/..%2f", "/approvals/x?next=//evil", "/approvals\\x"} {
		f.Add(s)
	}
	s := &Server{opts: Options{SignInReturns: []string{"/approvals/"}}}
	base, _ := url.Parse("https://gw.example/oauth/signin")
	f.Fuzz(func(t *testing.T, next string) {
		if !s.signInReturnAllowed(next) {
			return
		}
		ref, err := url.Parse(next)
		if err != nil {
			t.Fatalf("allowed %q does not parse: %v", next, err)
		}
		u := base.ResolveReference(ref)
		if u.Host != "gw.example" || u.Scheme != "https" || u.User != nil {
			t.Fatalf("allowed %q leaves the gateway: %s", next, u)
		}
		if p := path.Clean(u.Path); !strings.HasPrefix(p+"/", "/approvals/") {
			t.Fatalf("allowed %q resolves outside /approvals/: %s", next, p)
		}
	})
}
