package authserver_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/oauth/authserver"
)

// ticketOf returns the sign-in ticket the browser was sent back with to
// next.
func ticketOf(t *testing.T, resp *http.Response, next string) string {
	t.Helper()
	u := resp.Request.URL
	tk := u.Query().Get(authserver.SignInTicketParam)
	if u.Path != next || tk == "" {
		t.Fatalf("browser ended at %s (HTTP %d), want %s with a ticket", u, resp.StatusCode, next)
	}
	return tk
}

func TestBrowserSignInPassword(t *testing.T) {
	e := newEnv(t, &envOptions{path: "/oauth", mutate: func(o *authserver.Options) { o.SignInReturns = []string{"/approvals/"} }})
	ctx := context.Background()
	b := newBrowser(t)
	const next = "/approvals/abc"
	resp, page := b.get(e.as.SignInURL(next))
	f := hidden(page)
	if resp.StatusCode != http.StatusOK || f.Get("next") != next || f.Get("csrf") == "" || f.Has("authz") {
		t.Fatalf("sign-in page: HTTP %d, fields %v\n%s", resp.StatusCode, f, page)
	}
	f.Set("username", "alice")
	f.Set("password", "wrong")
	if resp, page := b.postForm(e.url("/login"), f); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "wrong password") {
		t.Fatalf("wrong password: HTTP %d\n%s", resp.StatusCode, page)
	}
	_, page = b.get(e.as.SignInURL(next))
	f = hidden(page)
	f.Set("username", "alice")
	f.Set("password", alicePass)
	resp, _ = b.postForm(e.url("/login"), f)
	tk := ticketOf(t, resp, next)
	if who, err := e.as.RedeemSignIn(ctx, tk); err != nil || who != "alice" {
		t.Fatalf("RedeemSignIn: %q %v", who, err)
	}
	if _, err := e.as.RedeemSignIn(ctx, tk); !errors.Is(err, authserver.ErrSignInTicket) {
		t.Errorf("second redemption: %v", err)
	}
	// Signed in to the server, the browser gets a new ticket at once.
	resp, _ = b.get(e.as.SignInURL(next))
	if who, err := e.as.RedeemSignIn(ctx, ticketOf(t, resp, next)); err != nil || who != "alice" {
		t.Errorf("second sign-in: %q %v", who, err)
	}

	for _, bad := range []string{"/mcp", "https://evil.example/approvals/", "//evil.example/approvals/", "/approvals/../oauth/token"} {
		resp, _ := b.get(e.url("/signin") + "?" + url.Values{"next": {bad}}.Encode())
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("next %q: HTTP %d, want 400", bad, resp.StatusCode)
		}
		f.Set("next", bad)
		if resp, _ := b.postForm(e.url("/login"), f); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("login with next %q: HTTP %d, want 400", bad, resp.StatusCode)
		}
	}
	if _, err := e.as.RedeemSignIn(ctx, "forged"); !errors.Is(err, authserver.ErrSignInTicket) {
		t.Errorf("forged ticket: %v", err)
	}
}

func TestBrowserSignInDisabled(t *testing.T) {
	e := newEnv(t, nil)
	resp, _ := newBrowser(t).get(e.as.SignInURL("/approvals/abc"))
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("sign-in endpoint without SignInReturns: HTTP %d, want 404", resp.StatusCode)
	}
}

func TestBrowserSignInOIDC(t *testing.T) {
	idp := newFakeIdP(t)
	e := newEnv(t, &envOptions{path: "/oauth", mutate: func(o *authserver.Options) {
		o.OIDC = &authserver.OIDCLogin{Issuer: idp.srv.URL, ClientID: "gw-client", ClientSecret: "gw-secret", DisplayName: "Corp SSO"}
		o.DisableLocalLogin = true
		o.SignInReturns = []string{"/approvals/"}
	}})
	b := newBrowser(t)
	const next = "/approvals/xyz"
	_, page := b.get(e.as.SignInURL(next))
	if !strings.Contains(page, "Sign in with Corp SSO") || strings.Contains(page, `name="password"`) {
		t.Fatalf("sign-in page:\n%s", page)
	}
	idp.tamper = func(c map[string]any) { c["groups"] = []string{"staff", "security"} }
	resp, _ := b.get(e.url("/login/oidc") + "?" + url.Values{"next": {hidden(page).Get("next")}}.Encode())
	who, groups, err := e.as.RedeemSignInGroups(context.Background(), ticketOf(t, resp, next))
	if want := "oidc:" + strings.TrimPrefix(idp.srv.URL, "http://") + ":emp-42"; err != nil || who != want {
		t.Errorf("RedeemSignInGroups: %q %v, want %q", who, err, want)
	}
	// The groups the provider asserted travel with the ticket (the
	// console's group:NAME roles read them).
	if !slices.Equal(groups, []string{"security", "staff"}) {
		t.Errorf("RedeemSignInGroups: groups %q, want [security staff]", groups)
	}
	// A second ticket of the same sign-in, redeemed as RedeemSignIn.
	resp, _ = b.get(e.as.SignInURL(next))
	if who2, err := e.as.RedeemSignIn(context.Background(), ticketOf(t, resp, next)); err != nil || who2 != who {
		t.Errorf("RedeemSignIn: %q %v, want %q", who2, err, who)
	}
	if resp, _ := b.get(e.url("/login/oidc") + "?" + url.Values{"next": {"/elsewhere"}}.Encode()); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("OIDC sign-in to /elsewhere: HTTP %d, want 400", resp.StatusCode)
	}
}
