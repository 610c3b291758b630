package approval

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/store"
)

// approverHeader carries the signed-in approver in these tests (a real
// deployment authenticates with its console session).
const approverHeader = "X-Test-Approver"

type pages struct {
	t   *testing.T
	svc *Service
	c   *clock
	h   http.Handler
}

func newPages(t *testing.T, approver func(*http.Request) (string, bool)) *pages {
	c := newClock()
	if approver == nil {
		approver = func(r *http.Request) (string, bool) {
			who := r.Header.Get(approverHeader)
			return who, who != ""
		}
	}
	svc := New(store.NewApprovalsMemory(), &Options{BaseURL: testBase, Now: c.Now, Approver: approver})
	mux := http.NewServeMux()
	mux.Handle("/approvals/", http.StripPrefix("/approvals", svc.Handler()))
	return &pages{t: t, svc: svc, c: c, h: mux}
}

type response struct {
	code    int
	body    string
	header  http.Header
	cookies []*http.Cookie
}

func (p *pages) do(method, path, approver string, form url.Values, cookies []*http.Cookie, extra map[string]string) response {
	p.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, "https://gw.example.com"+path, body)
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if approver != "" {
		r.Header.Set(approverHeader, approver)
	}
	for _, c := range cookies {
		r.AddCookie(c)
	}
	for k, v := range extra {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	p.h.ServeHTTP(w, r)
	res := w.Result()
	b, _ := io.ReadAll(res.Body)
	return response{code: res.StatusCode, body: string(b), header: res.Header, cookies: res.Cookies()}
}

func (p *pages) request(r *Request) *Approval {
	p.t.Helper()
	a, err := p.svc.Request(context.Background(), r)
	if err != nil {
		p.t.Fatal(err)
	}
	return a
}

func (p *pages) status(id string) Status {
	p.t.Helper()
	a, err := p.svc.Get(context.Background(), id)
	if err != nil {
		p.t.Fatal(err)
	}
	return a.Status
}

var csrfInput = regexp.MustCompile(`name="csrf_token" value="([^"]*)"`)

// openForm loads the detail page as approver and returns the CSRF cookie
// and the token in the form.
func (p *pages) openForm(id, approver string) (*http.Cookie, string) {
	p.t.Helper()
	res := p.do("GET", "/approvals/"+id, approver, nil, nil, nil)
	if res.code != http.StatusOK {
		p.t.Fatalf("GET detail: %d %s", res.code, res.body)
	}
	m := csrfInput.FindStringSubmatch(res.body)
	if m == nil {
		p.t.Fatalf("detail page has no CSRF field:\n%s", res.body)
	}
	for _, c := range res.cookies {
		if c.Name == "__Host-mcpgate-approval-csrf" {
			return c, m[1]
		}
	}
	p.t.Fatalf("detail page set no CSRF cookie: %v", res.cookies)
	return nil, ""
}

func decision(d, token string) url.Values {
	v := url.Values{"decision": {d}, "note": {"fine by me"}}
	if token != "" {
		v.Set("csrf_token", token)
	}
	return v
}

func TestPagesRequireApprover(t *testing.T) {
	p := newPages(t, nil)
	a := p.request(deleteRequest())
	for _, tc := range []struct{ method, path string }{
		{"GET", "/approvals/"}, {"GET", "/approvals/" + a.ID}, {"POST", "/approvals/" + a.ID},
	} {
		var form url.Values
		if tc.method == "POST" {
			form = decision("approve", "x")
		}
		res := p.do(tc.method, tc.path, "", form, nil, nil)
		if res.code != http.StatusUnauthorized {
			t.Errorf("%s %s without approver: %d, want 401", tc.method, tc.path, res.code)
		}
		if strings.Contains(res.body, "alice") || strings.Contains(res.body, "files__delete") {
			t.Errorf("%s %s without approver leaks the approval: %s", tc.method, tc.path, res.body)
		}
	}
	if got := p.status(a.ID); got != StatusPending {
		t.Errorf("status after unauthenticated POST: %s", got)
	}

	// No Approver function: every page is refused.
	svc := New(store.NewApprovalsMemory(), &Options{BaseURL: testBase})
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set(approverHeader, "carol")
	svc.Handler().ServeHTTP(w, r)
	if w.Code != http.StatusForbidden {
		t.Errorf("pages without Approver: %d, want 403", w.Code)
	}
}

func TestPagesListAndDetail(t *testing.T) {
	p := newPages(t, nil)
	a := p.request(deleteRequest())
	evil := deleteRequest()
	evil.Principal = `<script>alert("x")</script>`
	evil.Tool = `t"><img src=x onerror=alert(1)>`
	evil.Arguments = jsontext.Value(`{"z":"</pre><script>alert(2)</script>","a":1.0}`)
	evil.Policies = []string{"<b>policy</b>"}
	b := p.request(evil)

	res := p.do("GET", "/approvals/", "carol", nil, nil, nil)
	if res.code != http.StatusOK {
		t.Fatalf("list: %d %s", res.code, res.body)
	}
	for _, want := range []string{`href="/approvals/` + a.ID + `"`, `href="/approvals/` + b.ID + `"`, "alice", "files__delete", "require-approval-delete", "Signed in as carol", "in 10m0s"} {
		if !strings.Contains(res.body, want) {
			t.Errorf("list page lacks %q:\n%s", want, res.body)
		}
	}
	checkEscaped(t, "list", res.body)
	checkSecurityHeaders(t, res)

	res = p.do("GET", "/approvals/"+a.ID, "carol", nil, nil, nil)
	if res.code != http.StatusOK {
		t.Fatalf("detail: %d %s", res.code, res.body)
	}
	for _, want := range []string{
		"alice", "https://client.example/cimd.json", "sess-1", "files", "files__delete", "require-approval-delete", "pv-1", "deletes data",
		"2026-11-26 09:10:00 UTC", // expiry
		"{\n  &#34;n&#34;: 1,\n  &#34;path&#34;: &#34;/srv/data&#34;,\n  &#34;recursive&#34;: true\n}", // canonical, indented
		`value="approve"`, `value="deny"`, `method="post"`,
	} {
		if !strings.Contains(res.body, want) {
			t.Errorf("detail page lacks %q:\n%s", want, res.body)
		}
	}
	checkSecurityHeaders(t, res)
	var csrf *http.Cookie
	for _, c := range res.cookies {
		if c.Name == "__Host-mcpgate-approval-csrf" {
			csrf = c
		}
	}
	if csrf == nil || !csrf.HttpOnly || !csrf.Secure || csrf.SameSite != http.SameSiteStrictMode || csrf.Path != "/" || !validToken(csrf.Value) {
		t.Errorf("CSRF cookie = %+v, want __Host-, HttpOnly, Secure, SameSite=Strict, Path=/", csrf)
	}

	res = p.do("GET", "/approvals/"+b.ID, "carol", nil, nil, nil)
	checkEscaped(t, "detail", res.body)
	if strings.Contains(res.body, "</pre><script>") {
		t.Errorf("arguments not escaped:\n%s", res.body)
	}

	// The requester sees their own request without a form.
	res = p.do("GET", "/approvals/"+a.ID, "alice", nil, nil, nil)
	if res.code != http.StatusOK || strings.Contains(res.body, `value="approve"`) || !strings.Contains(res.body, "your own request") {
		t.Errorf("own request page: %d\n%s", res.code, res.body)
	}

	if res := p.do("GET", "/approvals/nope", "carol", nil, nil, nil); res.code != http.StatusNotFound {
		t.Errorf("unknown approval: %d, want 404", res.code)
	}
	if res := p.do("DELETE", "/approvals/"+a.ID, "carol", nil, nil, nil); res.code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %d, want 405", res.code)
	}
}

func checkEscaped(t *testing.T, page, body string) {
	t.Helper()
	for _, bad := range []string{`<script>alert`, `<img src=x`, `<b>policy</b>`} {
		if strings.Contains(body, bad) {
			t.Errorf("%s page contains unescaped %q", page, bad)
		}
	}
	if !strings.Contains(body, "&lt;script&gt;") {
		t.Errorf("%s page lacks the escaped principal:\n%s", page, body)
	}
}

func checkSecurityHeaders(t *testing.T, res response) {
	t.Helper()
	for k, want := range map[string]string{
		"X-Frame-Options": "DENY", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
		"Content-Type": "text/html; charset=utf-8",
	} {
		if got := res.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if csp := res.header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
}

func TestPagesApprove(t *testing.T) {
	p := newPages(t, nil)
	a := p.request(deleteRequest())
	cookie, token := p.openForm(a.ID, "carol")
	if cookie.Value != token {
		t.Fatalf("form token %q differs from cookie %q", token, cookie.Value)
	}
	res := p.do("POST", "/approvals/"+a.ID, "carol", decision("approve", token), []*http.Cookie{cookie}, nil)
	if res.code != http.StatusOK || !strings.Contains(res.body, "Approved") {
		t.Fatalf("approve: %d %s", res.code, res.body)
	}
	got, _ := p.svc.Get(context.Background(), a.ID)
	if got.Status != StatusApproved || got.Approver != "carol" || got.Note != "fine by me" {
		t.Errorf("after approve: %+v", got)
	}
	if _, err := p.svc.Consume(context.Background(), deleteRequest()); err != nil {
		t.Errorf("Consume after page approval: %v", err)
	}
	// Posting again: already decided.
	res = p.do("POST", "/approvals/"+a.ID, "carol", decision("deny", token), []*http.Cookie{cookie}, nil)
	if res.code != http.StatusConflict {
		t.Errorf("second decision: %d, want 409", res.code)
	}
}

func TestPagesDeny(t *testing.T) {
	p := newPages(t, nil)
	a := p.request(deleteRequest())
	cookie, token := p.openForm(a.ID, "carol")
	res := p.do("POST", "/approvals/"+a.ID, "carol", decision("deny", token), []*http.Cookie{cookie}, nil)
	if res.code != http.StatusOK || !strings.Contains(res.body, "Denied") {
		t.Fatalf("deny: %d %s", res.code, res.body)
	}
	if got := p.status(a.ID); got != StatusDenied {
		t.Errorf("status %s, want denied", got)
	}
}

func TestPagesRefuseBadDecisions(t *testing.T) {
	p := newPages(t, nil)
	a := p.request(deleteRequest())
	cookie, token := p.openForm(a.ID, "carol")
	other := &http.Cookie{Name: cookie.Name, Value: strings.Repeat("A", 43)}
	tests := []struct {
		name    string
		form    url.Values
		cookies []*http.Cookie
		extra   map[string]string
		code    int
	}{
		{"no token", decision("approve", ""), []*http.Cookie{cookie}, nil, http.StatusForbidden},
		{"wrong token", decision("approve", strings.Repeat("B", 43)), []*http.Cookie{cookie}, nil, http.StatusForbidden},
		{"token without cookie", decision("approve", token), nil, nil, http.StatusForbidden},
		{"token of another cookie", decision("approve", token), []*http.Cookie{other}, nil, http.StatusForbidden},
		{"malformed cookie and token", decision("approve", "short"), []*http.Cookie{{Name: cookie.Name, Value: "short"}}, nil, http.StatusForbidden},
		{"cross-site browser request", decision("approve", token), []*http.Cookie{cookie}, map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"foreign origin", decision("approve", token), []*http.Cookie{cookie}, map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"bad decision", decision("maybe", token), []*http.Cookie{cookie}, nil, http.StatusBadRequest},
		{"note too long", url.Values{"decision": {"approve"}, "csrf_token": {token}, "note": {strings.Repeat("x", MaxNoteLength+1)}}, []*http.Cookie{cookie}, nil, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := p.do("POST", "/approvals/"+a.ID, "carol", tt.form, tt.cookies, tt.extra)
			if res.code != tt.code {
				t.Errorf("code %d, want %d: %s", res.code, tt.code, res.body)
			}
			if got := p.status(a.ID); got != StatusPending {
				t.Fatalf("status %s after refused decision", got)
			}
		})
	}
	// A same-origin browser request with the right token is accepted.
	res := p.do("POST", "/approvals/"+a.ID, "carol", decision("approve", token), []*http.Cookie{cookie}, map[string]string{"Sec-Fetch-Site": "same-origin"})
	if res.code != http.StatusOK {
		t.Errorf("same-origin approve: %d %s", res.code, res.body)
	}
}

func TestPagesSelfApprovalExpiryUnknown(t *testing.T) {
	p := newPages(t, nil)
	a := p.request(deleteRequest())
	// alice gets a CSRF cookie from the list of someone else's request...
	b := p.request(&Request{Principal: "bob", Tool: "t", PolicyVersion: "p"})
	cookie, token := p.openForm(b.ID, "alice")
	// ...and posts a decision on her own.
	res := p.do("POST", "/approvals/"+a.ID, "alice", decision("approve", token), []*http.Cookie{cookie}, nil)
	if res.code != http.StatusForbidden || !strings.Contains(res.body, "own request") {
		t.Errorf("self-approval: %d %s", res.code, res.body)
	}
	if got := p.status(a.ID); got != StatusPending {
		t.Errorf("status %s after self-approval", got)
	}
	if res := p.do("POST", "/approvals/nope", "carol", decision("approve", token), []*http.Cookie{cookie}, nil); res.code != http.StatusNotFound {
		t.Errorf("unknown: %d, want 404", res.code)
	}
	p.c.Advance(DefaultTTL)
	if res := p.do("POST", "/approvals/"+b.ID, "alice", decision("approve", token), []*http.Cookie{cookie}, nil); res.code != http.StatusGone {
		t.Errorf("expired: %d, want 410: %s", res.code, res.body)
	}
	if got := p.status(b.ID); got != StatusExpired {
		t.Errorf("status %s, want expired", got)
	}
	// Expired requests are no longer listed and show no form.
	res = p.do("GET", "/approvals/", "carol", nil, nil, nil)
	if strings.Contains(res.body, b.ID) || !strings.Contains(res.body, "No approval requests are waiting") {
		t.Errorf("list after expiry:\n%s", res.body)
	}
	res = p.do("GET", "/approvals/"+b.ID, "carol", nil, nil, nil)
	if strings.Contains(res.body, `value="approve"`) || !strings.Contains(res.body, "expired") {
		t.Errorf("expired detail page:\n%s", res.body)
	}
}

func TestPagesStoreFailure(t *testing.T) {
	st := &failing{Approvals: store.NewApprovalsMemory()}
	c := newClock()
	svc := New(st, &Options{BaseURL: testBase, Now: c.Now, Approver: func(*http.Request) (string, bool) { return "carol", true }})
	a, err := svc.Request(context.Background(), deleteRequest())
	if err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	st.fail = true
	st.mu.Unlock()
	for _, path := range []string{"/", "/" + a.ID} {
		w := httptest.NewRecorder()
		svc.Handler().ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != http.StatusInternalServerError || strings.Contains(w.Body.String(), errBroken.Error()) {
			t.Errorf("GET %s with broken store: %d %s", path, w.Code, w.Body)
		}
	}
}

func TestPagesWithoutBaseURL(t *testing.T) {
	c := newClock()
	svc := New(store.NewApprovalsMemory(), &Options{Now: c.Now, Approver: func(*http.Request) (string, bool) { return "carol", true }})
	a, _ := svc.Request(context.Background(), deleteRequest())
	if a.URL != "/"+a.ID {
		t.Errorf("URL without BaseURL = %q", a.URL)
	}
	w := httptest.NewRecorder()
	svc.Handler().ServeHTTP(w, httptest.NewRequest("GET", "http://127.0.0.1/"+a.ID, nil))
	var cookie *http.Cookie
	for _, c := range w.Result().Cookies() {
		cookie = c
	}
	// Over plain http the cookie cannot be Secure or __Host- prefixed.
	if w.Code != http.StatusOK || cookie == nil || cookie.Name != "mcpgate-approval-csrf" || cookie.Secure {
		t.Errorf("detail over http: %d, cookie %+v", w.Code, cookie)
	}
}

// TestPagesBehindProxy checks that a browser that sends only Origin (no
// Sec-Fetch-Site) may post from the external origin in BaseURL even when
// a proxy changed the Host header.
func TestPagesBehindProxy(t *testing.T) {
	p := newPages(t, nil)
	a := p.request(deleteRequest())
	cookie, token := p.openForm(a.ID, "carol")
	post := func(origin string) int {
		r := httptest.NewRequest("POST", "http://10.0.0.5:8080/approvals/"+a.ID, strings.NewReader(decision("approve", token).Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set(approverHeader, "carol")
		r.Header.Set("Origin", origin)
		r.AddCookie(cookie)
		w := httptest.NewRecorder()
		p.h.ServeHTTP(w, r)
		return w.Code
	}
	if code := post("https://other.example.com"); code != http.StatusForbidden {
		t.Errorf("foreign origin behind proxy: %d, want 403", code)
	}
	if code := post("https://gw.example.com"); code != http.StatusOK {
		t.Errorf("BaseURL origin behind proxy: %d, want 200", code)
	}
	if got := p.status(a.ID); got != StatusApproved {
		t.Errorf("status %s, want approved", got)
	}
}

// TestPagesShowHiddenCharacters checks that characters that could hide or
// reorder text on the page are shown as escapes.
func TestPagesShowHiddenCharacters(t *testing.T) {
	p := newPages(t, nil)
	r := deleteRequest()
	r.Principal = "mallory\u202e"
	r.Arguments = jsontext.Value(`{"path":"/srv/\u202Eatad\u200b","x":"\ud83d\ude00\u0085"}`)
	a := p.request(r)
	res := p.do("GET", "/approvals/"+a.ID, "carol", nil, nil, nil)
	for _, want := range []string{`/srv/\u202eatad\u200b`, `😀\u0085`, `mallory\u202e`, "invisible or direction-changing characters"} {
		if !strings.Contains(res.body, want) {
			t.Errorf("page lacks %q:\n%s", want, res.body)
		}
	}
	for _, bad := range []string{"\u202e", "\u200b", "\u0085"} {
		if strings.Contains(res.body, bad) {
			t.Errorf("page contains raw %U", []rune(bad)[0])
		}
	}
	if got := visible("a\tb\nc\U000E0001"); got != `a\u0009b`+"\n"+`c\udb40\udc01` {
		t.Errorf("visible = %q", got)
	}
}
