package console

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/approval"
	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/internal/cli/cliaudit"
	"github.com/mcpgate/mcpgate/inventory"
	"github.com/mcpgate/mcpgate/policy"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/sqlite"
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

func (f *fakeSignIn) issue(who string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tickets == nil {
		f.tickets = map[string]string{}
	}
	t := "t-" + who + "-" + time.Now().Format("150405.000000000")
	f.tickets[t] = who
	return t
}

const testPolicies = `
@id("read-files")
permit (principal, action == Action::"tools/call", resource == Tool::"files/read");

@id("deploy-needs-approval")
@approval("required")
permit (principal, action == Action::"tools/call", resource == Tool::"files/deploy")
when { context.arguments.env == "prod" };

@id("no-mallory")
forbid (principal == User::"mallory", action, resource);
`

// world is a console on a SQLite store with every control.
type world struct {
	t     *testing.T
	h     http.Handler
	c     *Console
	st    *sqlite.Store
	log   *audit.Log
	inv   *inventory.Inventory
	rv    *inventory.Revoker
	apps  *approval.Service
	si    *fakeSignIn
	ended []string // users whose sessions the revoker's hook ended
	mu    sync.Mutex
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w := &world{t: t, st: st, si: &fakeSignIn{}}
	if w.log, err = audit.New(st, &audit.Options{KeyPath: filepath.Join(dir, "audit.key")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.log.Close() })
	if w.inv, err = inventory.New(st, st, &inventory.Options{HoldNewTools: true}); err != nil {
		t.Fatal(err)
	}
	w.rv, err = inventory.NewRevoker(ctx, st, &inventory.RevokerOptions{Hooks: inventory.RevocationHooks{
		RevokeTokens: inventory.StoreTokenRevoker(st, time.Now),
		CloseSessions: func(_ context.Context, m inventory.Match) (int, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.ended = append(w.ended, m.User)
			return 1, nil
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	pdir := t.TempDir()
	if err := os.WriteFile(filepath.Join(pdir, "p.cedar"), []byte(testPolicies), 0o600); err != nil {
		t.Fatal(err)
	}
	eng, err := policy.NewEngine(&policy.Options{Paths: []string{pdir}})
	if err != nil {
		t.Fatal(err)
	}
	w.apps = approval.New(st, &approval.Options{BaseURL: "https://gw.example.com/approvals", Audit: w.log})
	for _, u := range []string{"ada", "carol", "vic", "alice", "eve"} {
		if err := st.CreateUser(ctx, &store.User{Username: u, Groups: []string{"staff"}, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	roles := map[string]string{"ada": RoleAdministrator, "carol": RoleApprover, "vic": RoleViewer, "alice": RoleViewer}
	w.c, err = New(&Options{
		BaseURL: "https://gw.example.com/console", SignIn: w.si, TicketParam: "signin_ticket", SignOutURL: "/oauth/logout",
		Role:  func(_ context.Context, u string, _ []string) string { return roles[u] },
		Store: st, Inventory: w.inv, Revoker: w.rv, Audit: w.log, AuditStore: st,
		Policy: eng, PolicyPaths: []string{pdir}, Approvals: w.apps,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/console/", http.StripPrefix("/console", w.c.Handler()))
	w.h = mux
	return w
}

// client is a signed-in browser.
type client struct {
	w       *world
	cookies []*http.Cookie
	csrf    string
}

type answer struct {
	code   int
	header http.Header
	body   string
}

func (a answer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(a.body), v); err != nil {
		t.Fatalf("decoding %q: %v", a.body, err)
	}
}

func (w *world) do(method, path string, body any, cookies []*http.Cookie, hdr map[string]string) answer {
	w.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		var b []byte
		switch v := body.(type) {
		case string:
			b = []byte(v)
		default:
			var err error
			if b, err = json.Marshal(v); err != nil {
				w.t.Fatal(err)
			}
		}
		rd = bytes.NewReader(b)
	}
	var r *http.Request
	if rd != nil {
		r = httptest.NewRequest(method, "https://gw.example.com"+path, rd)
		r.Header.Set("Content-Type", "application/json")
	} else {
		r = httptest.NewRequest(method, "https://gw.example.com"+path, nil)
	}
	for _, c := range cookies {
		r.AddCookie(c)
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	w.h.ServeHTTP(rec, r)
	return answer{rec.Code, rec.Header(), rec.Body.String()}
}

// signIn returns a browser signed in as who.
func (w *world) signIn(who string) *client {
	w.t.Helper()
	a := w.do("GET", "/console/?signin_ticket="+w.si.issue(who), nil, nil, nil)
	if a.code != http.StatusSeeOther || a.header.Get("Location") != "/console/" {
		w.t.Fatalf("sign-in of %s: HTTP %d to %q: %s", who, a.code, a.header.Get("Location"), a.body)
	}
	c := &client{w: w}
	res := http.Response{Header: a.header}
	c.cookies = res.Cookies()
	if len(c.cookies) != 1 || c.cookies[0].Name != "__Secure-mcpgate-console-session" || c.cookies[0].Path != "/console/" || !c.cookies[0].HttpOnly || !c.cookies[0].Secure {
		w.t.Fatalf("session cookie: %+v", c.cookies)
	}
	var m me
	c.get("/console/api/me").decode(w.t, &m)
	if m.User != who || m.CSRFToken == "" {
		w.t.Fatalf("me: %+v", m)
	}
	c.csrf = m.CSRFToken
	return c
}

func (c *client) get(path string) answer { return c.w.do("GET", path, nil, c.cookies, nil) }

func (c *client) post(path string, body any) answer {
	return c.w.do("POST", path, body, c.cookies, map[string]string{"X-CSRF-Token": c.csrf, "Sec-Fetch-Site": "same-origin"})
}

// records returns the audit records with action.
func (w *world) records(action string) []*audit.Record {
	w.t.Helper()
	res, err := searchAudit(context.Background(), w.st, &auditQuery{Action: action})
	if err != nil {
		w.t.Fatal(err)
	}
	return res.Records
}

func TestSignIn(t *testing.T) {
	w := newWorld(t)
	// Not signed in: the page goes to the sign-in page, the API says 401.
	if a := w.do("GET", "/console/", nil, nil, nil); a.code != http.StatusSeeOther || a.header.Get("Location") != w.si.SignInURL("/console/") {
		t.Errorf("page without sign-in: HTTP %d to %q", a.code, a.header.Get("Location"))
	}
	a := w.do("GET", "/console/api/overview", nil, nil, nil)
	if a.code != http.StatusUnauthorized || !strings.Contains(a.body, `"sign_in"`) {
		t.Errorf("API without sign-in: HTTP %d %s", a.code, a.body)
	}
	// The assets load without sign-in; nothing else does.
	if a := w.do("GET", "/console/assets/app.js", nil, nil, nil); a.code != http.StatusOK || !strings.Contains(a.body, "X-CSRF-Token") {
		t.Errorf("app.js: HTTP %d", a.code)
	}
	// A user without a role is refused, and the refusal recorded.
	if a := w.do("GET", "/console/?signin_ticket="+w.si.issue("eve"), nil, nil, nil); a.code != http.StatusForbidden || len(a.header.Values("Set-Cookie")) != 0 {
		t.Errorf("eve: HTTP %d %v", a.code, a.header.Values("Set-Cookie"))
	}
	if a := w.do("GET", "/console/?signin_ticket=forged", nil, nil, nil); a.code != http.StatusUnauthorized {
		t.Errorf("forged ticket: HTTP %d", a.code)
	}
	ada := w.signIn("ada")
	if a := ada.get("/console/"); a.code != http.StatusOK || !strings.Contains(a.body, "assets/app.js") || !strings.Contains(a.header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Errorf("page: HTTP %d %.200s", a.code, a.body)
	}
	if len(w.records(ActionSignedIn)) != 1 || len(w.records(ActionRefused)) != 1 {
		t.Errorf("sign-in records: %d signed in, %d refused", len(w.records(ActionSignedIn)), len(w.records(ActionRefused)))
	}
	// A tampered cookie signs nobody in.
	bad := *ada.cookies[0]
	bad.Value = "x" + bad.Value
	if a := w.do("GET", "/console/api/me", nil, []*http.Cookie{&bad}, nil); a.code != http.StatusUnauthorized {
		t.Errorf("tampered cookie: HTTP %d", a.code)
	}
	// Sign-out needs the CSRF token, then clears the cookie.
	if a := w.do("POST", "/console/api/signout", nil, ada.cookies, nil); a.code != http.StatusForbidden {
		t.Errorf("sign-out without token: HTTP %d", a.code)
	}
	a = ada.post("/console/api/signout", nil)
	if a.code != http.StatusOK || !strings.Contains(a.body, "/oauth/logout") || !strings.Contains(strings.Join(a.header.Values("Set-Cookie"), ";"), "Max-Age=0") {
		t.Errorf("sign-out: HTTP %d %s %v", a.code, a.body, a.header.Values("Set-Cookie"))
	}
}

func TestCSRF(t *testing.T) {
	w := newWorld(t)
	ada := w.signIn("ada")
	body := map[string]string{"kind": "user", "id": "alice"}
	for name, hdr := range map[string]map[string]string{
		"no token":     {"Sec-Fetch-Site": "same-origin"},
		"wrong token":  {"Sec-Fetch-Site": "same-origin", "X-CSRF-Token": "AAAA" + ada.csrf[4:]},
		"cross-site":   {"Sec-Fetch-Site": "cross-site", "X-CSRF-Token": ada.csrf},
		"other origin": {"Origin": "https://evil.example", "X-CSRF-Token": ada.csrf},
	} {
		if a := w.do("POST", "/console/api/revoke", body, ada.cookies, hdr); a.code != http.StatusForbidden || !strings.Contains(a.body, "CSRF") {
			t.Errorf("%s: HTTP %d %s", name, a.code, a.body)
		}
	}
	// A form post (not JSON) is refused too.
	r := httptest.NewRequest("POST", "https://gw.example.com/console/api/revoke", strings.NewReader("kind=user&id=alice"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("X-CSRF-Token", ada.csrf)
	r.AddCookie(ada.cookies[0])
	rec := httptest.NewRecorder()
	w.h.ServeHTTP(rec, r)
	if rec.Code != http.StatusForbidden {
		t.Errorf("form post: HTTP %d", rec.Code)
	}
	if w.rv.IsRevoked(context.Background(), inventory.Match{User: "alice"}) {
		t.Fatal("a refused request revoked alice")
	}
	// Another session's token does not fit.
	vic := w.signIn("vic")
	if a := w.do("POST", "/console/api/audit/verify", nil, ada.cookies, map[string]string{"X-CSRF-Token": vic.csrf}); a.code != http.StatusForbidden {
		t.Errorf("another session's token: HTTP %d", a.code)
	}
}

func TestRoles(t *testing.T) {
	w := newWorld(t)
	vic, carol := w.signIn("vic"), w.signIn("carol")
	for _, c := range []struct {
		who  *client
		path string
		body any
	}{
		{vic, "/console/api/revoke", map[string]string{"kind": "user", "id": "alice"}},
		{carol, "/console/api/revoke", map[string]string{"kind": "user", "id": "alice"}},
		{vic, "/console/api/reinstate", map[string]string{"kind": "user", "id": "alice"}},
		{vic, "/console/api/approvals/x", map[string]string{"decision": "approve"}},
		{carol, "/console/api/trust/tools", map[string]string{"upstream": "files", "tool": "read"}},
		{vic, "/console/api/trust/clients", map[string]string{"client_id": "x", "decision": "refuse"}},
	} {
		a := c.who.post(c.path, c.body)
		var e map[string]string
		a.decode(t, &e)
		if a.code != http.StatusForbidden || !strings.Contains(e["error"], "needs the") || e["needs"] == "" {
			t.Errorf("%s %s: HTTP %d %s", c.who.cookies[0].Value[:4], c.path, a.code, a.body)
		}
	}
	if n := len(w.records(ActionRefused)); n != 6 {
		t.Errorf("%d refusals recorded, want 6", n)
	}
	// Reads are open to viewers.
	for _, p := range []string{"overview", "inventory", "inventory?kind=users", "audit", "policies", "approvals", "trust"} {
		if a := vic.get("/console/api/" + p); a.code != http.StatusOK {
			t.Errorf("viewer GET %s: HTTP %d %s", p, a.code, a.body)
		}
	}
	if a := vic.post("/console/api/audit/verify", nil); a.code != http.StatusOK {
		t.Errorf("viewer verify: HTTP %d", a.code)
	}
}

func TestRevokeAndReinstate(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	ada := w.signIn("ada")
	alice := w.signIn("alice")
	a := ada.post("/console/api/revoke", map[string]string{"kind": "user", "id": "alice", "reason": "left"})
	if a.code != http.StatusOK {
		t.Fatalf("revoke: HTTP %d %s", a.code, a.body)
	}
	if !w.rv.IsRevoked(ctx, inventory.Match{User: "alice"}) {
		t.Error("alice is not revoked")
	}
	w.mu.Lock()
	ended := strings.Join(w.ended, ",")
	w.mu.Unlock()
	if ended != "alice" {
		t.Errorf("sessions ended for %q, want alice", ended)
	}
	recs := w.records(cliaudit.ActionRevocation)
	if len(recs) != 1 || recs[0].User != "ada" || recs[0].Client != ClientName || recs[0].Target != "user:alice" || !strings.Contains(recs[0].Error, `"console:ada"`) {
		t.Errorf("revocation record: %+v", recs)
	}
	// A revoked user's console session ends too.
	if a := alice.get("/console/api/me"); a.code != http.StatusUnauthorized {
		t.Errorf("revoked alice: HTTP %d", a.code)
	}
	var inv []inventory.User
	ada.get("/console/api/inventory?kind=users").decode(t, &inv)
	for _, u := range inv {
		if u.Name == "alice" && !u.Revoked {
			t.Error("inventory shows alice active")
		}
	}
	if a := ada.post("/console/api/reinstate", map[string]string{"kind": "user", "id": "alice"}); a.code != http.StatusOK {
		t.Fatalf("reinstate: HTTP %d %s", a.code, a.body)
	}
	if w.rv.IsRevoked(ctx, inventory.Match{User: "alice"}) || len(w.records(cliaudit.ActionRevocationLifted)) != 1 {
		t.Error("reinstate did not lift the revocation or was not recorded")
	}
	if a := ada.post("/console/api/reinstate", map[string]string{"kind": "user", "id": "alice"}); a.code != http.StatusNotFound {
		t.Errorf("second reinstate: HTTP %d", a.code)
	}
	// Bad input.
	for _, body := range []string{`{"kind":"planet","id":"x"}`, `{"kind":"user","id":""}`, `{"kind":"user","id":"a","extra":1}`, `{"kind":"user","kind":"user","id":"a"}`, `not json`} {
		if a := ada.post("/console/api/revoke", body); a.code != http.StatusBadRequest {
			t.Errorf("revoke %s: HTTP %d %s", body, a.code, a.body)
		}
	}
}

func TestPathAndInventory(t *testing.T) {
	w := newWorld(t)
	vic := w.signIn("vic")
	var n inventory.Node
	a := vic.get("/console/api/inventory/path?kind=user&id=alice")
	if a.code != http.StatusOK {
		t.Fatalf("path: HTTP %d %s", a.code, a.body)
	}
	a.decode(t, &n)
	if n.Kind != "user" || n.ID != "alice" {
		t.Errorf("path root %+v", n)
	}
	if a := vic.get("/console/api/inventory/path?kind=user&id=nobody"); a.code != http.StatusNotFound {
		t.Errorf("unknown user: HTTP %d", a.code)
	}
	if a := vic.get("/console/api/inventory?kind=planets"); a.code != http.StatusBadRequest {
		t.Errorf("unknown kind: HTTP %d", a.code)
	}
	if a := vic.get("/console/api/nothing"); a.code != http.StatusNotFound || !strings.Contains(a.body, "docs/console.md") {
		t.Errorf("unknown endpoint: HTTP %d %s", a.code, a.body)
	}
}

func TestAuditSearchAndVerify(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	for _, r := range []*audit.Record{
		{User: "alice", Client: "desk", Action: "tools/call", Target: "files/read", Decision: audit.DecisionAllow, PolicyVersion: "v1", Policies: []string{"read-files"}, Phase: audit.PhaseDecided, Outcome: audit.OutcomeOK},
		{User: "mallory", Client: "desk", Action: "tools/call", Target: "files/deploy", Decision: audit.DecisionDeny, PolicyVersion: "v1", Policies: []string{"no-mallory"}, Phase: audit.PhaseDecided, Outcome: audit.OutcomeDenied},
		{User: "alice", Client: "desk", Action: "tools/call", Target: "files/deploy", Decision: audit.DecisionApprovalRequired, PolicyVersion: "v1", Policies: []string{"deploy-needs-approval"}, Phase: audit.PhaseDecided, Outcome: audit.OutcomePending},
	} {
		if err := w.log.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	vic := w.signIn("vic")
	var res auditResult
	vic.get("/console/api/audit?decision=deny").decode(t, &res)
	if len(res.Records) != 1 || res.Records[0].User != "mallory" || res.Records[0].Policies[0] != "no-mallory" || res.Records[0].PolicyVersion != "v1" {
		t.Errorf("deny search: %+v", res.Records)
	}
	vic.get("/console/api/audit?principal=ALICE&tool=deploy").decode(t, &res)
	if len(res.Records) != 1 || res.Records[0].Decision != audit.DecisionApprovalRequired {
		t.Errorf("alice deploy: %+v", res.Records)
	}
	vic.get("/console/api/audit?action=tools/call&limit=2").decode(t, &res)
	if len(res.Records) != 2 || res.Records[0].Seq < res.Records[1].Seq || !res.Truncated {
		t.Errorf("limit 2, newest first: %+v truncated=%v", res.Records, res.Truncated)
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	vic.get("/console/api/audit?since="+future).decode(t, &res)
	if len(res.Records) != 0 {
		t.Errorf("since the future: %d records", len(res.Records))
	}
	for _, q := range []string{"since=yesterday", "limit=0", "limit=5000", "scan=-1"} {
		if a := vic.get("/console/api/audit?" + q); a.code != http.StatusBadRequest {
			t.Errorf("%s: HTTP %d", q, a.code)
		}
	}
	var v verifyResult
	a := vic.post("/console/api/audit/verify", nil)
	a.decode(t, &v)
	if a.code != http.StatusOK || !v.OK || !v.SignaturesChecked || v.Records < 4 || !strings.Contains(v.Message, "audit log OK") {
		t.Errorf("verify: HTTP %d %+v", a.code, v)
	}
	if len(w.records(ActionAuditVerified)) != 1 {
		t.Error("verification not recorded")
	}
	var o overview
	vic.get("/console/api/overview").decode(t, &o)
	calls, denials := 0, 0
	for _, m := range o.PerMinute {
		calls += m.Calls
		denials += m.Denials
	}
	if len(o.PerMinute) != overviewMinutes || calls != 3 || denials != 1 {
		t.Errorf("per minute: %d minutes, %d calls, %d denials", len(o.PerMinute), calls, denials)
	}
}

func TestDryRun(t *testing.T) {
	w := newWorld(t)
	vic := w.signIn("vic")
	for _, c := range []struct {
		body     string
		decision string
		policy   string
	}{
		{`{"principal":"alice","tool":"files/read"}`, audit.DecisionAllow, "read-files"},
		{`{"principal":"alice","tool":"files/deploy","arguments":{"env":"prod"}}`, audit.DecisionApprovalRequired, "deploy-needs-approval"},
		{`{"principal":"alice","tool":"files/deploy","arguments":{"env":"dev"}}`, audit.DecisionDeny, ""},
		{`{"principal":"mallory","tool":"files/read"}`, audit.DecisionDeny, "no-mallory"},
	} {
		var r dryRunResult
		a := vic.post("/console/api/policies/dry-run", c.body)
		a.decode(t, &r)
		if a.code != http.StatusOK || r.Decision != c.decision || (c.policy != "" && (len(r.Policies) != 1 || r.Policies[0] != c.policy)) || r.PolicyVersion == "" {
			t.Errorf("%s: HTTP %d %+v", c.body, a.code, r)
		}
	}
	for _, body := range []string{`{"tool":"files/read"}`, `{"principal":"alice","tool":"read"}`, `{"principal":"alice","tool":"files/read","arguments":[1]}`} {
		if a := vic.post("/console/api/policies/dry-run", body); a.code != http.StatusBadRequest {
			t.Errorf("%s: HTTP %d %s", body, a.code, a.body)
		}
	}
	var p policies
	vic.get("/console/api/policies").decode(t, &p)
	if !p.Configured || p.Count != 3 || p.Version == "" {
		t.Errorf("policies: %+v", p)
	}
	if d := p.OnDisk; d == nil || len(d.Files) != 1 || d.Files[0].Name != "p.cedar" || !strings.Contains(d.Files[0].Text, "no-mallory") || d.Version != p.Version {
		t.Errorf("policy files on disk: %+v (loaded version %s)", d, p.Version)
	}
}

func TestApprovals(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	a, err := w.apps.Request(ctx, &approval.Request{Principal: "alice", Client: "desk", Tool: "files/deploy", Upstream: "files",
		Arguments: jsontext.Value(`{"env":"prod"}`), PolicyVersion: "v1", Policies: []string{"deploy-needs-approval"}})
	if err != nil {
		t.Fatal(err)
	}
	carol := w.signIn("carol")
	var v approvalsView
	carol.get("/console/api/approvals").decode(t, &v)
	if len(v.Pending) != 1 || v.Pending[0].ID != a.ID || string(v.Pending[0].Request.Arguments) != `{"env":"prod"}` || v.Pending[0].ArgumentsText != "{\n  \"env\": \"prod\"\n}" {
		t.Fatalf("pending: %+v", v.Pending)
	}
	if r := carol.post("/console/api/approvals/"+a.ID, `{"decision":"maybe"}`); r.code != http.StatusBadRequest {
		t.Errorf("bad decision: HTTP %d", r.code)
	}
	if r := carol.post("/console/api/approvals/nope", `{"decision":"approve"}`); r.code != http.StatusNotFound {
		t.Errorf("unknown approval: HTTP %d", r.code)
	}
	if r := carol.post("/console/api/approvals/"+a.ID, `{"decision":"approve","note":"ok"}`); r.code != http.StatusOK {
		t.Fatalf("approve: HTTP %d %s", r.code, r.body)
	}
	got, err := w.apps.Get(ctx, a.ID)
	if err != nil || got.Status != approval.StatusApproved || got.Approver != "carol" {
		t.Errorf("after approval: %+v %v", got, err)
	}
	if r := carol.post("/console/api/approvals/"+a.ID, `{"decision":"deny"}`); r.code != http.StatusConflict {
		t.Errorf("second decision: HTTP %d", r.code)
	}
	carol.get("/console/api/approvals").decode(t, &v)
	if len(v.Pending) != 0 || len(v.History) != 1 || v.History[0].User != "carol" {
		t.Errorf("after: pending %d, history %+v", len(v.Pending), v.History)
	}
	// Invisible characters reach the approver escaped.
	h, err := w.apps.Request(ctx, &approval.Request{Principal: "alice", Tool: "files/deploy", Arguments: jsontext.Value(`{"env":"pro\u200bd"}`), PolicyVersion: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	var one pendingApproval
	carol.get("/console/api/approvals/"+h.ID).decode(t, &one)
	if !strings.Contains(one.ArgumentsText, `pro\u200bd`) || one.ArgumentsNote == "" {
		t.Errorf("arguments as shown: %q (%q)", one.ArgumentsText, one.ArgumentsNote)
	}

	// Nobody decides on their own request.
	b, err := w.apps.Request(ctx, &approval.Request{Principal: "carol", Tool: "files/deploy", Arguments: jsontext.Value(`{"env":"prod"}`), PolicyVersion: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	if r := carol.post("/console/api/approvals/"+b.ID, `{"decision":"approve"}`); r.code != http.StatusForbidden {
		t.Errorf("self-approval: HTTP %d", r.code)
	}
}

func TestTrust(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	// The first listing is the baseline; a tool that appears later is
	// held (HoldNewTools) until approved.
	if _, err := w.inv.RecordTools(ctx, "files", []jsontext.Value{jsontext.Value(`{"name":"read","inputSchema":{"type":"object"}}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.inv.RecordTools(ctx, "files", []jsontext.Value{jsontext.Value(`{"name":"read","inputSchema":{"type":"object"}}`), jsontext.Value(`{"name":"wipe","inputSchema":{"type":"object"}}`)}); err != nil {
		t.Fatal(err)
	}
	if err := w.st.CreateClient(ctx, &store.Client{ID: "newapp", Kind: store.ClientDynamic, Name: "New app", Status: store.ClientPending, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	ada := w.signIn("ada")
	var v trustView
	ada.get("/console/api/trust").decode(t, &v)
	var ids []string
	for _, d := range v.Waiting {
		ids = append(ids, d.Kind+":"+d.ID+":"+d.State)
	}
	if !strings.Contains(strings.Join(ids, " "), "tool:files/wipe:pending") {
		t.Errorf("waiting: %v", ids)
	}
	if a := ada.post("/console/api/trust/tools", map[string]string{"upstream": "files", "tool": "wipe"}); a.code != http.StatusOK {
		t.Fatalf("approve tool: HTTP %d %s", a.code, a.body)
	}
	if w.inv.IsToolBlocked(ctx, "files", "wipe") || len(w.records(cliaudit.ActionToolApproved)) != 1 {
		t.Error("tool still blocked or approval not recorded")
	}
	if a := ada.post("/console/api/trust/tools", map[string]string{"upstream": "files", "tool": "nope"}); a.code != http.StatusNotFound {
		t.Errorf("unknown tool: HTTP %d", a.code)
	}
	if a := ada.post("/console/api/trust/clients", map[string]string{"client_id": "newapp", "decision": "refuse", "reason": "unknown vendor"}); a.code != http.StatusOK {
		t.Fatalf("refuse client: HTTP %d %s", a.code, a.body)
	}
	cl, err := w.st.GetClient(ctx, "newapp")
	if err != nil || cl.Status != store.ClientRefused || cl.StatusBy != "console:ada" {
		t.Errorf("client after refusal: %+v %v", cl, err)
	}
	if recs := w.records(cliaudit.ActionClientRefused); len(recs) != 1 || recs[0].Target != "newapp" {
		t.Errorf("refusal records: %+v", recs)
	}
	if a := ada.post("/console/api/trust/clients", map[string]string{"client_id": "ghost", "decision": "approve"}); a.code != http.StatusNotFound {
		t.Errorf("unknown client: HTTP %d", a.code)
	}
}
