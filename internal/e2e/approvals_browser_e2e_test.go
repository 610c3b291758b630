package e2e

import (
	"context"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/oauth/meta"
)

// pageBrowser is a browser on the approval pages: a cookie jar, Accept
// text/html on every request, and a record of the Set-Cookie headers of
// the redirects it followed.
type pageBrowser struct {
	*browser
	mu         sync.Mutex
	setCookies []string
}

func newPageBrowser(user string) *pageBrowser {
	b := &pageBrowser{browser: newBrowser(user, user+"-password")}
	b.hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) > 10 {
			return errors.New("too many redirects")
		}
		b.mu.Lock()
		b.setCookies = append(b.setCookies, req.Response.Header.Values("Set-Cookie")...)
		b.mu.Unlock()
		return nil
	}
	return b
}

// get opens page as a browser does.
func (b *pageBrowser) get(ctx context.Context, t *testing.T, page string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, page, nil)
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	resp, body, err := b.do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// signIn opens page, expects the sign-in form and submits the user's
// password; it returns the page the browser lands on.
func (b *pageBrowser) signIn(ctx context.Context, t *testing.T, page string) (*http.Response, string) {
	t.Helper()
	resp, body := b.get(ctx, t, page)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="password"`) || resp.Request.URL.Path != "/oauth/signin" {
		t.Fatalf("approval link without credentials: HTTP %d at %s, want the sign-in form: %.300s", resp.StatusCode, resp.Request.URL.Path, body)
	}
	resp, body, err := b.postForm(ctx, resp, body, url.Values{"username": {b.user}, "password": {b.password}})
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// decide posts the decision form of an approval page; token "" omits
// the CSRF field.
func (b *pageBrowser) decide(ctx context.Context, t *testing.T, page, token string) (int, string) {
	t.Helper()
	form := url.Values{"decision": {"approve"}, "note": {"from a browser"}}
	if token != "" {
		form.Set("csrf_token", token)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, page, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, body, err := b.do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// TestApprovalsInABrowser is issue 15's browser sign-in to the approval
// pages: an approval link opened without credentials leads to the
// authorization server's sign-in form and back to the request, signed in
// with a cookie scoped to /approvals/; a non-approver is refused, a
// decision without the CSRF token is refused, and scripts get a Basic
// challenge.
func TestApprovalsInABrowser(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	w := newControlsWorld(t)
	recvA := newReceiver(t, newBrowser("alice", "alice-password"))
	w.cimdDoc, _ = json.Marshal(map[string]any{
		"client_id": w.cimd.URL + "/client.json", "client_name": "E2E Desktop Agent",
		"redirect_uris": []string{recvA.RedirectURL()}, "grant_types": []string{meta.GrantTypeAuthorizationCode, meta.GrantTypeRefreshToken},
		"response_types": []string{meta.ResponseTypeCode}, "token_endpoint_auth_method": meta.AuthMethodNone,
	})
	alice := w.userSession(ctx, t, "alice", recvA)
	_, err := callTool(ctx, alice, "deploy", `{"env":"prod"}`)
	var we *jsonrpc.Error
	if !errors.As(err, &we) || we.Code != mcp.CodeURLElicitationRequired {
		t.Fatalf("deploy before approval: %v", err)
	}
	var data mcp.URLElicitationRequiredErrorData
	if err := json.Unmarshal(we.Data, &data); err != nil || len(data.Elicitations) != 1 {
		t.Fatalf("elicitation data %s: %v", we.Data, err)
	}
	u, _ := url.Parse(data.Elicitations[0].URL)
	page := w.base + u.Path

	t.Run("a script gets a Basic challenge", func(t *testing.T) {
		resp, err := http.Get(page)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if ch := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(ch, `Basic realm=`) {
			t.Errorf("HTTP %d, WWW-Authenticate %q; want 401 with a Basic challenge", resp.StatusCode, ch)
		}
	})

	t.Run("a non-approver is refused after signing in", func(t *testing.T) {
		b := newPageBrowser("bob")
		resp, body := b.signIn(ctx, t, page)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "not a configured approver") {
			t.Errorf("bob after sign-in: HTTP %d at %s: %.300s", resp.StatusCode, resp.Request.URL, body)
		}
		// Signed in to the authorization server, bob is sent back with a
		// new ticket, and refused again.
		if resp, _ := b.get(ctx, t, page); resp.StatusCode != http.StatusForbidden {
			t.Errorf("bob again: HTTP %d at %s, want 403", resp.StatusCode, resp.Request.URL)
		}
	})

	t.Run("an approver signs in and decides", func(t *testing.T) {
		b := newPageBrowser("carol")
		resp, body := b.signIn(ctx, t, page)
		if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != page || !strings.Contains(body, "Signed in as carol") {
			t.Fatalf("carol after sign-in: HTTP %d at %s: %.300s", resp.StatusCode, resp.Request.URL, body)
		}
		var session string
		b.mu.Lock()
		for _, c := range b.setCookies {
			if strings.HasPrefix(c, "mcpgate-approval-session=") {
				session = c
			}
		}
		b.mu.Unlock()
		for _, attr := range []string{"Path=/approvals/", "HttpOnly", "SameSite=Lax", "Max-Age=1800"} {
			if !strings.Contains(session, attr) {
				t.Errorf("session cookie %q lacks %s", session, attr)
			}
		}
		root, _ := url.Parse(w.base + "/mcp")
		for _, c := range b.hc.Jar.(*cookiejar.Jar).Cookies(root) {
			if c.Name == "mcpgate-approval-session" {
				t.Error("the approval session cookie is sent outside /approvals/")
			}
		}
		m := csrfRe.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no CSRF token on the approval page: %.300s", body)
		}
		if code, body := b.decide(ctx, t, page, ""); code != http.StatusForbidden {
			t.Errorf("decision without the CSRF token: HTTP %d: %.300s", code, body)
		}
		if code, body := b.decide(ctx, t, page, m[1]); code != http.StatusOK || !strings.Contains(body, "Approved") {
			t.Fatalf("decision: HTTP %d: %.300s", code, body)
		}
		if got, err := callTool(ctx, alice, "deploy", `{"env":"prod"}`); err != nil || !strings.Contains(got, "prod") {
			t.Errorf("approved deploy: %q %v", got, err)
		}
	})

	t.Run("a used ticket is refused", func(t *testing.T) {
		resp, body := newPageBrowser("mallory").get(ctx, t, page+"?signin_ticket=forged")
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "no longer valid") {
			t.Errorf("forged ticket: HTTP %d: %.300s", resp.StatusCode, body)
		}
	})
}
