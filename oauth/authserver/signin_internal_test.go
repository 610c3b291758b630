package authserver

import "testing"

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
