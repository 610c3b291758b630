package authserver_test

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/oauth/authserver"
	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/oauth/resource"
	"github.com/mcpgate/mcpgate/principal"
	"github.com/mcpgate/mcpgate/store"
)

// verify checks an access token as the resource server does and returns
// the principal.
func (e *env) verify(t *testing.T, token string) *resource.Principal {
	t.Helper()
	p, err := resource.NewJWTVerifier(e.issuer, e.resource, e.as, nil).Verify(context.Background(), token)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return p
}

func (e *env) jagToken(jti string, mod ...func(map[string]any)) *tokenResp {
	form := url.Values{"grant_type": {meta.GrantTypeJWTBearer}, "assertion": {e.idJAG(jti, mod...)},
		"client_assertion_type": {meta.ClientAssertionTypeJWTBearer}, "client_assertion": {e.clientAssertion(jti + "-client")}}
	return e.token(form, "", "")
}

func TestIDJAGIdentityClaims(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.jagToken("jag-groups", func(c map[string]any) {
		c["groups"] = []string{"eng", "contractors", "eng"}
		c["roles"] = "viewer"
		c["name"] = "Uma User"
	})
	if tr.Status != 200 {
		t.Fatalf("token: %d %v", tr.Status, tr.Body)
	}
	claims := decodeJWT(t, tr.str("access_token"))
	if g, _ := claims["groups"].([]any); len(g) != 2 || g[0] != "contractors" || g[1] != "eng" {
		t.Fatalf("groups claim = %v", claims["groups"])
	}
	if claims["idp"] != idpIssuer || claims["email"] != "user@example.com" || claims["name"] != "Uma User" {
		t.Fatalf("claims = %v", claims)
	}
	p := e.verify(t, tr.str("access_token"))
	if !slices.Equal(p.Groups, []string{"contractors", "eng"}) || !slices.Equal(p.Roles, []string{"viewer"}) ||
		p.Email != "user@example.com" || p.Name != "Uma User" || p.IdP != idpIssuer {
		t.Fatalf("principal = %+v", p)
	}

	// Bounds: too many groups, an overlong role, a claim of the wrong
	// type are refused, never truncated or ignored.
	many := make([]string, principal.MaxValues+1)
	for i := range many {
		many[i] = "g" + strings.Repeat("x", i)
	}
	for name, mod := range map[string]func(map[string]any){
		"too many groups": func(c map[string]any) { c["groups"] = many },
		"overlong role":   func(c map[string]any) { c["roles"] = []string{strings.Repeat("r", principal.MaxValueLen+1)} },
		"groups object":   func(c map[string]any) { c["groups"] = map[string]any{"a": 1} },
		"groups numbers":  func(c map[string]any) { c["groups"] = []int{1, 2} },
		"email number":    func(c map[string]any) { c["email"] = 7 },
		"control char":    func(c map[string]any) { c["name"] = "a\u0007b" },
	} {
		tr := e.jagToken("jag-"+strings.ReplaceAll(name, " ", "-"), mod)
		if tr.Status != 400 || tr.str("error") != "invalid_grant" {
			t.Errorf("%s: %d %v, want 400 invalid_grant", name, tr.Status, tr.Body)
		}
	}
	// Exactly at the bound is fine.
	if tr := e.jagToken("jag-max", func(c map[string]any) { c["groups"] = many[:principal.MaxValues] }); tr.Status != 200 {
		t.Errorf("%d groups: %d %v", principal.MaxValues, tr.Status, tr.Body)
	}
}

func TestIDJAGClaimMapping(t *testing.T) {
	e := newEnv(t, &envOptions{path: "/oauth", mutate: func(o *authserver.Options) {
		o.TrustedIssuers[0].Claims = authserver.ClaimMapping{Groups: "memberOf", Email: "-"}
	}})
	tr := e.jagToken("jag-mapped", func(c map[string]any) {
		c["memberOf"] = []string{"contractors"}
		c["groups"] = []string{"ignored"}
	})
	if tr.Status != 200 {
		t.Fatalf("token: %d %v", tr.Status, tr.Body)
	}
	p := e.verify(t, tr.str("access_token"))
	if !slices.Equal(p.Groups, []string{"contractors"}) || p.Email != "" {
		t.Fatalf("principal = %+v", p)
	}
}

func TestLocalUserAttributes(t *testing.T) {
	e := newEnv(t, nil)
	if err := e.st.CreateUser(context.Background(), &store.User{Username: "carol", PasswordHash: "x", Groups: []string{"ops", "contractors"},
		Roles: []string{"admin"}, Email: "carol@example.com", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	ver, chal := pkce()
	q := authzQuery("web", webRedirect, chal)
	resp := e.authorize(q.Encode(), "carol")
	loc, _ := url.Parse(resp.Header.Get("Location"))
	tr := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "code_verifier": {ver}, "redirect_uri": {webRedirect}}, "web", webSecret)
	if tr.Status != 200 {
		t.Fatalf("token: %d %v", tr.Status, tr.Body)
	}
	p := e.verify(t, tr.str("access_token"))
	if p.Subject != "carol" || !slices.Equal(p.Groups, []string{"contractors", "ops"}) || !slices.Equal(p.Roles, []string{"admin"}) || p.Email != "carol@example.com" || p.IdP != "" {
		t.Fatalf("principal = %+v", p)
	}
	// Refreshing reads the user's attributes as they are now.
	if err := e.st.DeleteUser(context.Background(), "carol"); err != nil {
		t.Fatal(err)
	}
	if err := e.st.CreateUser(context.Background(), &store.User{Username: "carol", PasswordHash: "x", Groups: []string{"ops"}, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	rr := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.str("refresh_token")}}, "web", webSecret)
	if rr.Status != 200 {
		t.Fatalf("refresh: %d %v", rr.Status, rr.Body)
	}
	if p := e.verify(t, rr.str("access_token")); !slices.Equal(p.Groups, []string{"ops"}) || len(p.Roles) != 0 || p.Email != "" {
		t.Fatalf("after refresh = %+v", p)
	}
	// A user without attributes and a client acting for itself carry
	// none.
	ver, chal = pkce()
	resp = e.authorize(authzQuery("web", webRedirect, chal).Encode(), "alice")
	loc, _ = url.Parse(resp.Header.Get("Location"))
	tr = e.token(url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "code_verifier": {ver}, "redirect_uri": {webRedirect}}, "web", webSecret)
	if c := decodeJWT(t, tr.str("access_token")); c["groups"] != nil || c["email"] != nil || c["idp"] != nil {
		t.Fatalf("alice's claims = %v", c)
	}
	cc := e.token(url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {svcSecret}, "resource": {resourceURI}}, "", "")
	if cc.Status != 200 {
		t.Fatalf("client credentials: %d %v", cc.Status, cc.Body)
	}
	if c := decodeJWT(t, cc.str("access_token")); c["groups"] != nil || c["idp"] != nil {
		t.Fatalf("client's claims = %v", c)
	}
}

func TestOIDCLoginIdentityClaims(t *testing.T) {
	idp := newFakeIdP(t)
	idp.tamper = func(c map[string]any) {
		c["groups"] = []string{"contractors"}
		c["roles"] = []string{"dev"}
		c["name"] = "Bob"
	}
	e := newEnv(t, &envOptions{path: "/oauth", mutate: func(o *authserver.Options) {
		o.OIDC = &authserver.OIDCLogin{Issuer: idp.srv.URL, ClientID: "gw-client", ClientSecret: "gw-secret"}
		o.DisableLocalLogin = true
	}})
	b := newBrowser(t)
	ver, chal := pkce()
	_, page := b.get(e.url("/authorize") + "?" + authzQuery("web", webRedirect, chal).Encode())
	_, page = b.get(e.url("/login/oidc") + "?" + url.Values{"authz": {hidden(page).Get("authz")}}.Encode())
	f := hidden(page)
	f.Set("action", "approve")
	resp, _ := b.postForm(e.url("/consent"), f)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	tr := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "code_verifier": {ver}, "redirect_uri": {webRedirect}}, "web", webSecret)
	if tr.Status != 200 {
		t.Fatalf("token: %d %v", tr.Status, tr.Body)
	}
	check := func(what, tok string) {
		t.Helper()
		p := e.verify(t, tok)
		if !slices.Equal(p.Groups, []string{"contractors"}) || !slices.Equal(p.Roles, []string{"dev"}) || p.Email != "Bob@Corp.example" ||
			p.Name != "Bob" || p.IdP != idp.srv.URL || principal.Subject(p.Subject).IdP([]string{idp.srv.URL}) != idp.srv.URL {
			t.Fatalf("%s: principal = %+v", what, p)
		}
	}
	check("code", tr.str("access_token"))
	// The claims of the sign-in travel with the refresh token.
	rr := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.str("refresh_token")}}, "web", webSecret)
	if rr.Status != 200 {
		t.Fatalf("refresh: %d %v", rr.Status, rr.Body)
	}
	check("refresh", rr.str("access_token"))

	// An ID token over the bounds is refused at sign-in.
	idp.tamper = func(c map[string]any) { c["groups"] = strings.Repeat("x", principal.MaxValueLen+1) }
	b = newBrowser(t)
	_, page = b.get(e.url("/authorize") + "?" + authzQuery("web", webRedirect, chal).Encode())
	resp, page = b.get(e.url("/login/oidc") + "?" + url.Values{"authz": {hidden(page).Get("authz")}}.Encode())
	if resp.StatusCode != 400 || !strings.Contains(page, "invalid_grant") {
		t.Fatalf("oversized ID token: HTTP %d\n%s", resp.StatusCode, page)
	}
}
