package approval

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestSignOut: a browser signed in to the pages signs out with the form
// on every page (POST /signout with the CSRF token): the session cookie
// is dropped, and the page offers the authorization server's sign-out.
// Without the token, or with GET, nothing happens.
func TestSignOut(t *testing.T) {
	p := newPages(t, func(*http.Request) (string, bool) { return "", false })
	fs := &fakeSignIn{}
	if err := p.svc.SetBrowserSignIn(SignInOptions{SignIn: fs, TicketParam: "signin_ticket",
		MayApprove: func(who string) bool { return who == "carol" }, SignOutURL: "/oauth/logout"}); err != nil {
		t.Fatal(err)
	}
	carol := signedIn(t, p, fs, "/approvals/", "carol")
	res := p.do("GET", "/approvals/", "", nil, []*http.Cookie{carol}, nil)
	if res.code != http.StatusOK || !strings.Contains(res.body, `action="/approvals/signout"`) {
		t.Fatalf("list page: HTTP %d, no sign-out form: %.400s", res.code, res.body)
	}
	m := csrfInput.FindStringSubmatch(res.body)
	var csrf *http.Cookie
	for _, c := range res.cookies {
		if c.Name == "__Host-mcpgate-approval-csrf" {
			csrf = c
		}
	}
	if m == nil || csrf == nil {
		t.Fatal("no CSRF token for the sign-out form")
	}
	form := url.Values{"csrf_token": {m[1]}}
	if res := p.do("POST", "/approvals/signout", "", url.Values{}, []*http.Cookie{carol, csrf}, nil); res.code != http.StatusForbidden {
		t.Errorf("sign-out without the token: HTTP %d", res.code)
	}
	if res := p.do("GET", "/approvals/signout", "", nil, []*http.Cookie{carol, csrf}, nil); res.code != http.StatusMethodNotAllowed {
		t.Errorf("sign-out with GET: HTTP %d", res.code)
	}
	res = p.do("POST", "/approvals/signout", "", form, []*http.Cookie{carol, csrf}, nil)
	if res.code != http.StatusOK || !strings.Contains(res.body, `action="/oauth/logout"`) {
		t.Fatalf("sign-out: HTTP %d: %.400s", res.code, res.body)
	}
	cleared := false
	for _, c := range res.cookies {
		if c.Name == "__Secure-mcpgate-approval-session" && c.MaxAge < 0 && c.Path == "/approvals/" {
			cleared = true
		}
	}
	if !cleared {
		t.Errorf("sign-out did not clear the session cookie: %v", res.cookies)
	}
}
