package approval

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSignIn is a BrowserSignIn that issues tickets on request.
type fakeSignIn struct {
	mu      sync.Mutex
	tickets map[string]string
}

func (f *fakeSignIn) SignInURL(next string) string {
	return "https://gw.example.com/oauth/signin?" + url.Values{"next": {next}}.Encode()
}

func (f *fakeSignIn) RedeemSignIn(_ context.Context, ticket string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	who, ok := f.tickets[ticket]
	if !ok {
		return "", errors.New("unknown ticket")
	}
	delete(f.tickets, ticket)
	return who, nil
}

func (f *fakeSignIn) issue(ticket, who string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tickets == nil {
		f.tickets = map[string]string{}
	}
	f.tickets[ticket] = who
}

var browserHeaders = map[string]string{"Accept": "text/html,application/xhtml+xml"}

// signedIn redeems a ticket for who and returns the session cookie.
func signedIn(t *testing.T, p *pages, fs *fakeSignIn, path, who string) *http.Cookie {
	t.Helper()
	fs.issue("t-"+who, who)
	res := p.do("GET", path+"?signin_ticket=t-"+who, "", nil, nil, browserHeaders)
	if res.code != http.StatusSeeOther || res.header.Get("Location") != path {
		t.Fatalf("ticket: HTTP %d, Location %q; want 303 to %s", res.code, res.header.Get("Location"), path)
	}
	for _, c := range res.cookies {
		if c.Name == "__Secure-mcpgate-approval-session" {
			if c.Path != "/approvals/" || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.MaxAge != int(DefaultSessionTTL.Seconds()) {
				t.Errorf("session cookie %+v", c)
			}
			return c
		}
	}
	t.Fatalf("no session cookie in %v", res.cookies)
	return nil
}

func TestBrowserSignIn(t *testing.T) {
	p := newPages(t, func(*http.Request) (string, bool) { return "", false })
	fs := &fakeSignIn{}
	approvers := map[string]bool{"carol": true, "dave": true}
	var mu sync.Mutex
	if err := p.svc.SetBrowserSignIn(SignInOptions{SignIn: fs, TicketParam: "signin_ticket", MayApprove: func(who string) bool {
		mu.Lock()
		defer mu.Unlock()
		return approvers[who]
	}}); err != nil {
		t.Fatal(err)
	}
	a := p.request(&Request{Principal: "alice", Tool: "files/deploy", Arguments: []byte(`{"env":"prod"}`), PolicyVersion: "v1"})
	path := "/approvals/" + a.ID

	// A script gets a Basic challenge, a browser the sign-in page.
	if res := p.do("GET", path, "", nil, nil, nil); res.code != http.StatusUnauthorized || !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Basic realm=") {
		t.Errorf("script: HTTP %d, WWW-Authenticate %q", res.code, res.header.Get("WWW-Authenticate"))
	}
	res := p.do("GET", path, "", nil, nil, browserHeaders)
	if want := fs.SignInURL(path); res.code != http.StatusSeeOther || res.header.Get("Location") != want {
		t.Errorf("browser: HTTP %d to %q, want 303 to %q", res.code, res.header.Get("Location"), want)
	}
	// An expired sign-in on a posted form: a page with a sign-in link.
	if res := p.do("POST", path, "", decision("approve", "x"), nil, browserHeaders); res.code != http.StatusUnauthorized || !strings.Contains(res.body, "oauth/signin") || res.header.Get("WWW-Authenticate") != "" {
		t.Errorf("browser post without a session: HTTP %d %q", res.code, res.body)
	}

	// A ticket for a non-approver signs nobody in; an unknown ticket
	// is refused.
	fs.issue("t-bob", "bob")
	if res := p.do("GET", path+"?signin_ticket=t-bob", "", nil, nil, browserHeaders); res.code != http.StatusForbidden || len(res.cookies) != 0 {
		t.Errorf("bob's ticket: HTTP %d, cookies %v", res.code, res.cookies)
	}
	if res := p.do("GET", path+"?signin_ticket=t-bob", "", nil, nil, browserHeaders); res.code != http.StatusUnauthorized {
		t.Errorf("used ticket: HTTP %d", res.code)
	}

	carol := signedIn(t, p, fs, path, "carol")
	res = p.do("GET", path, "", nil, []*http.Cookie{carol}, nil)
	if res.code != http.StatusOK || !strings.Contains(res.body, "Signed in as carol") {
		t.Fatalf("carol's page: HTTP %d %.200s", res.code, res.body)
	}
	m := csrfInput.FindStringSubmatch(res.body)
	var csrf *http.Cookie
	for _, c := range res.cookies {
		if c.Name == "__Host-mcpgate-approval-csrf" {
			csrf = c
		}
	}
	if m == nil || csrf == nil {
		t.Fatal("no CSRF token")
	}

	// Tampered, expired and revoked sessions are refused.
	forged := *carol
	payload, mac, _ := strings.Cut(carol.Value, ".")
	forged.Value = strings.ToUpper(payload[:1]) + payload[1:] + "." + mac
	if forged.Value == carol.Value {
		forged.Value = "x" + forged.Value
	}
	if res := p.do("GET", path, "", nil, []*http.Cookie{&forged}, nil); res.code != http.StatusUnauthorized {
		t.Errorf("forged session: HTTP %d", res.code)
	}
	dave := signedIn(t, p, fs, path, "dave")
	mu.Lock()
	delete(approvers, "dave")
	mu.Unlock()
	if res := p.do("GET", path, "", nil, []*http.Cookie{dave}, nil); res.code != http.StatusUnauthorized {
		t.Errorf("session of a removed approver: HTTP %d", res.code)
	}

	// The decision needs the CSRF token, then is recorded as carol's.
	if res := p.do("POST", path, "", decision("approve", ""), []*http.Cookie{carol, csrf}, nil); res.code != http.StatusForbidden {
		t.Errorf("decision without the CSRF token: HTTP %d", res.code)
	}
	if res := p.do("POST", path, "", decision("approve", m[1]), []*http.Cookie{carol, csrf}, nil); res.code != http.StatusOK {
		t.Fatalf("decision: HTTP %d %.300s", res.code, res.body)
	}
	got, err := p.svc.Get(context.Background(), a.ID)
	if err != nil || got.Status != StatusApproved || got.Approver != "carol" {
		t.Errorf("approval after the decision: %+v %v", got, err)
	}

	// The sign-in lasts SessionTTL.
	p.c.Advance(DefaultSessionTTL - time.Second)
	if res := p.do("GET", "/approvals/", "", nil, []*http.Cookie{carol}, nil); res.code != http.StatusOK {
		t.Errorf("session before expiry: HTTP %d", res.code)
	}
	p.c.Advance(2 * time.Second)
	if res := p.do("GET", "/approvals/", "", nil, []*http.Cookie{carol}, nil); res.code != http.StatusUnauthorized {
		t.Errorf("expired session: HTTP %d", res.code)
	}

	if err := p.svc.SetBrowserSignIn(SignInOptions{}); err == nil {
		t.Error("SetBrowserSignIn accepted empty options")
	}
}
