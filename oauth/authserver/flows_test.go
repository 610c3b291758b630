package authserver_test

import (
	"context"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/oauth/authserver"
	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/oauth/resource"
	"github.com/mcpgate/mcpgate/store"
)

func getJSON(t *testing.T, u string, v any) *http.Response {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v (%s)", u, err, body)
		}
	}
	return resp
}

func TestMetadata(t *testing.T) {
	e := newEnv(t, nil)
	origin := e.srv.URL
	for _, u := range []string{
		origin + "/.well-known/oauth-authorization-server/oauth",
		origin + "/.well-known/openid-configuration/oauth",
		origin + "/oauth/.well-known/openid-configuration",
	} {
		var m meta.AuthorizationServerMetadata
		resp := getJSON(t, u, &m)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("%s: HTTP %d %s", u, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if m.Issuer != e.issuer || m.AuthorizationEndpoint != e.url("/authorize") || m.TokenEndpoint != e.url("/token") {
			t.Errorf("%s: endpoints %+v", u, m)
		}
		if !slices.Equal(m.CodeChallengeMethodsSupported, []string{"S256"}) {
			t.Errorf("code_challenge_methods_supported = %v, want only S256", m.CodeChallengeMethodsSupported)
		}
		if !m.ClientIDMetadataDocumentSupported || !m.AuthorizationResponseIssParameterSupported {
			t.Error("CIMD support or iss parameter support not advertised")
		}
		if !slices.Equal(m.AuthorizationGrantProfilesSupported, []string{meta.GrantProfileIDJAG}) {
			t.Errorf("authorization_grant_profiles_supported = %v", m.AuthorizationGrantProfilesSupported)
		}
		for _, g := range []string{"authorization_code", "refresh_token", "client_credentials", meta.GrantTypeJWTBearer} {
			if !m.SupportsGrantType(g) {
				t.Errorf("grant %s not advertised", g)
			}
		}
		for _, a := range []string{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"} {
			if !m.SupportsAuthMethod(a) {
				t.Errorf("auth method %s not advertised", a)
			}
		}
		if len(m.TokenEndpointAuthSigningAlgValuesSupported) == 0 || m.RegistrationEndpoint == "" || m.RevocationEndpoint == "" || m.IntrospectionEndpoint == "" || m.JWKSURI == "" {
			t.Errorf("metadata incomplete: %+v", m)
		}
		if !slices.Equal(m.ResponseTypesSupported, []string{"code"}) {
			t.Errorf("response_types_supported = %v", m.ResponseTypesSupported)
		}
		// Trusted ID-JAG issuers are never published.
		raw, _ := json.Marshal(&m)
		if strings.Contains(string(raw), "idp.example.test") {
			t.Error("metadata names a trusted issuer")
		}
	}
	var jwks struct {
		Keys []map[string]any `json:"keys"`
	}
	getJSON(t, e.url("/jwks"), &jwks)
	if len(jwks.Keys) != 1 || jwks.Keys[0]["alg"] != "ES256" || jwks.Keys[0]["d"] != nil {
		t.Fatalf("jwks = %v", jwks)
	}
	// Without trusted issuers, no grant profile and no jwt-bearer grant.
	plain := newEnv(t, &envOptions{path: "", mutate: func(o *authserver.Options) { o.TrustedIssuers = nil; o.Registration.Disabled = true }})
	var m meta.AuthorizationServerMetadata
	getJSON(t, plain.srv.URL+"/.well-known/oauth-authorization-server", &m)
	if m.AuthorizationGrantProfilesSupported != nil || m.SupportsGrantType(meta.GrantTypeJWTBearer) || m.RegistrationEndpoint != "" {
		t.Errorf("root-issuer metadata advertises disabled features: %+v", m)
	}
}

// browser drives the login and consent pages like a user agent would,
// with a cookie jar, stopping at redirects to the client.
type browser struct {
	t  *testing.T
	hc *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, hc: &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(r *http.Request, via []*http.Request) error {
		if r.URL.Path == "/callback" || r.URL.Host == "app.example.test" {
			return http.ErrUseLastResponse
		}
		return nil
	}}}
}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) get(u string) (*http.Response, string) {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(req)
}

func (b *browser) postForm(u string, f url.Values) (*http.Response, string) {
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var hiddenRe = regexp.MustCompile(`<input type="hidden" name="([a-z]+)" value="([^"]*)">`)

// hidden returns the hidden form fields of a page.
func hidden(page string) url.Values {
	v := url.Values{}
	for _, m := range hiddenRe.FindAllStringSubmatch(page, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	return v
}

func TestAuthorizationCodeWithLoginAndConsent(t *testing.T) {
	e := newEnv(t, nil)
	b := newBrowser(t)
	ver, chal := pkce()
	redirect := "http://127.0.0.1:43210/callback"
	q := authzQuery("pub", redirect, chal, "scope", "mcp:read mcp:write")

	resp, page := b.get(e.url("/authorize") + "?" + q.Encode())
	if resp.StatusCode != 200 || !strings.Contains(page, "Sign in") || !strings.Contains(page, "Public App") {
		t.Fatalf("login page: HTTP %d\n%s", resp.StatusCode, page)
	}
	form := hidden(page)
	// Wrong password: 401 and the form again.
	form.Set("username", "alice")
	form.Set("password", "wrong")
	resp, page = b.postForm(e.url("/login"), form)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "wrong password") {
		t.Fatalf("bad password: HTTP %d", resp.StatusCode)
	}
	form = hidden(page)
	// A forged login CSRF token is refused.
	forged := url.Values{"authz": {form.Get("authz")}, "csrf": {"forged"}, "username": {"alice"}, "password": {alicePass}}
	if resp, _ = b.postForm(e.url("/login"), forged); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("forged login CSRF: HTTP %d, want 403", resp.StatusCode)
	}
	resp, page = b.get(e.url("/authorize") + "?" + q.Encode())
	form = hidden(page)
	form.Set("username", "alice")
	form.Set("password", alicePass)
	resp, page = b.postForm(e.url("/login"), form) // follows the 303 back to /authorize
	if resp.StatusCode != 200 || !strings.Contains(page, "Allow access?") {
		t.Fatalf("consent page: HTTP %d\n%s", resp.StatusCode, page)
	}
	for _, want := range []string{"Public App", "pre-registered client pub", "127.0.0.1:43210", "mcp:read", "mcp:write", "alice", `id="localhost-warning"`, resourceURI} {
		if !strings.Contains(page, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	consent := hidden(page)
	// A consent post with a wrong CSRF token is refused.
	bad := url.Values{"authz": {consent.Get("authz")}, "csrf": {"x"}, "action": {"approve"}}
	if resp, _ = b.postForm(e.url("/consent"), bad); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("forged consent: HTTP %d", resp.StatusCode)
	}
	consent.Set("action", "approve")
	resp, _ = b.postForm(e.url("/consent"), consent)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("approve: HTTP %d", resp.StatusCode)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if !strings.HasPrefix(loc.String(), redirect+"?") || loc.Query().Get("state") != "st-123" || loc.Query().Get("iss") != e.issuer {
		t.Fatalf("redirect = %s", loc)
	}
	tr := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "code_verifier": {ver},
		"redirect_uri": {redirect}, "client_id": {"pub"}, "resource": {resourceURI}}, "", "")
	if tr.Status != 200 || tr.str("token_type") != "Bearer" || tr.str("refresh_token") == "" || tr.str("scope") != "mcp:read mcp:write" {
		t.Fatalf("token: %d %v", tr.Status, tr.Body)
	}
	if tr.Header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(tr.Header.Get("Content-Type"), "application/json") {
		t.Errorf("token response headers: %v", tr.Header)
	}
	// The resource server accepts it and sees alice; the token is not forwarded.
	rresp, body := e.callRS("/mcp", tr.str("access_token"))
	if rresp.StatusCode != 200 {
		t.Fatalf("RS: HTTP %d %s", rresp.StatusCode, body)
	}
	var p map[string]any
	json.Unmarshal(body, &p)
	if p["sub"] != "alice" || p["client_id"] != "pub" || p["authorization_forwarded"] != false || p["jti"] == "" {
		t.Errorf("principal = %v", p)
	}
	// Refresh with rotation.
	rr := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.str("refresh_token")}, "client_id": {"pub"}, "scope": {"mcp:read"}}, "", "")
	if rr.Status != 200 || rr.str("refresh_token") == "" || rr.str("refresh_token") == tr.str("refresh_token") || rr.str("scope") != "mcp:read" {
		t.Fatalf("refresh: %d %v", rr.Status, rr.Body)
	}
	// Deny sends access_denied to the client.
	resp, page = b.get(e.url("/authorize") + "?" + q.Encode())
	deny := hidden(page)
	deny.Set("action", "deny")
	resp, _ = b.postForm(e.url("/consent"), deny)
	loc, _ = url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc.Query().Get("error") != "access_denied" || loc.Query().Get("state") != "st-123" {
		t.Fatalf("deny: HTTP %d %s", resp.StatusCode, loc)
	}
}

func TestConfidentialClientCodeFlow(t *testing.T) {
	e := newEnv(t, nil)
	ver, chal := pkce()
	// Through the pages: an https-only client gets no localhost warning.
	b := newBrowser(t)
	q := authzQuery("web", webRedirect, chal)
	_, page := b.get(e.url("/authorize") + "?" + q.Encode())
	f := hidden(page)
	f.Set("username", "alice")
	f.Set("password", alicePass)
	resp, page := b.postForm(e.url("/login"), f)
	if resp.StatusCode != 200 || !strings.Contains(page, "Web App") || !strings.Contains(page, "app.example.test") || strings.Contains(page, "localhost-warning") {
		t.Fatalf("consent page: HTTP %d\n%s", resp.StatusCode, page)
	}
	// The session persists: a second request goes straight to consent.
	if _, page = b.get(e.url("/authorize") + "?" + q.Encode()); !strings.Contains(page, "Allow access?") {
		t.Fatal("session not kept")
	}
	f = hidden(page)
	f.Set("action", "approve")
	resp, _ = b.postForm(e.url("/consent"), f)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	code := loc.Query().Get("code")
	// Without the secret the confidential client is refused.
	if tr := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {ver}, "redirect_uri": {webRedirect}, "client_id": {"web"}}, "", ""); tr.Status != 401 || tr.str("error") != "invalid_client" || !strings.HasPrefix(tr.Header.Get("WWW-Authenticate"), "Basic") {
		t.Fatalf("unauthenticated confidential client: %d %v", tr.Status, tr.Body)
	}
	tr := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {ver}, "redirect_uri": {webRedirect}}, "web", webSecret)
	if tr.Status != 200 || tr.str("refresh_token") == "" || tr.str("scope") != "mcp:read" {
		t.Fatalf("token: %d %v", tr.Status, tr.Body)
	}
	rr := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.str("refresh_token")}}, "web", webSecret)
	if rr.Status != 200 || rr.str("refresh_token") == tr.str("refresh_token") {
		t.Fatalf("refresh: %d %v", rr.Status, rr.Body)
	}
}

func TestMetadataDocumentPrivateKeyJWT(t *testing.T) {
	// A self-asserted machine client gets client credentials only where
	// the configuration allows them for metadata documents (see
	// TestAdmission for the default refusal).
	e := newEnv(t, &envOptions{path: "/oauth", mutate: func(o *authserver.Options) {
		o.MetadataDocuments.Admission.GrantTypes = []string{"client_credentials"}
	}})
	jwksURL := e.cimdURL("/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		b, _ := json.Marshal(map[string]any{"keys": []map[string]any{jwkOf(e.clientKey, "doc-key")}})
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	})
	var id string
	id = e.cimdURL("/agent.json", func(w http.ResponseWriter, r *http.Request) {
		serveDoc(`{"client_id":"`+id+`","client_name":"Agent","redirect_uris":["https://agent.example.test/cb"],"grant_types":["client_credentials"],"token_endpoint_auth_method":"private_key_jwt","jwks_uri":"`+jwksURL+`"}`)(w, r)
	})
	assertion := signJWT(t, e.clientKey, "doc-key", "", map[string]any{"iss": id, "sub": id, "aud": e.issuer, "jti": "doc-1", "exp": time.Now().Add(time.Minute).Unix()})
	tr := e.token(url.Values{"grant_type": {"client_credentials"}, "resource": {resourceURI}, "client_assertion_type": {meta.ClientAssertionTypeJWTBearer}, "client_assertion": {assertion}}, "", "")
	if tr.Status != 200 || decodeJWT(t, tr.str("access_token"))["client_id"] != id {
		t.Fatalf("token: %d %v", tr.Status, tr.Body)
	}
}

func TestLoopbackRedirects(t *testing.T) {
	e := newEnv(t, nil)
	_, chal := pkce()
	for _, tt := range []struct {
		redirect string
		ok       bool
	}{
		{"http://127.0.0.1/callback", true},
		{"http://127.0.0.1:1234/callback", true},
		{"http://[::1]:4321/callback", true},
		{"http://localhost:8080/callback", true},
		{"http://localhost:8081/callback", false},
		{"http://localhost/callback", false},
		{"http://127.0.0.1:1234/callback?x=1", false},
		{"https://127.0.0.1:1234/callback", false},
		{"http://127.0.0.2:1234/callback", false},
	} {
		resp := e.authorize(authzQuery("pub", tt.redirect, chal).Encode(), "alice")
		got := resp.StatusCode == http.StatusFound && strings.HasPrefix(resp.Header.Get("Location"), tt.redirect)
		if got != tt.ok {
			t.Errorf("%s: accepted=%v, want %v (HTTP %d)", tt.redirect, got, tt.ok, resp.StatusCode)
		}
	}
}

func TestMetadataDocumentClient(t *testing.T) {
	e := newEnv(t, nil)
	var id string
	body := func() string {
		return `{"client_id":"` + id + `","client_name":"Doc App","redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"]}`
	}
	fail := true
	id = e.cimdURL("/client.json", func(w http.ResponseWriter, r *http.Request) {
		if fail {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		serveDoc(body(), "Cache-Control", "max-age=600")(w, r)
	})
	ver, chal := pkce()
	// First fetch fails: refused, and the failure is not cached.
	if resp := e.authorize(authzQuery(id, "http://127.0.0.1:9999/cb", chal).Encode(), "alice"); resp.StatusCode != 400 {
		t.Fatalf("failing document: HTTP %d", resp.StatusCode)
	}
	fail = false
	hits := e.cimdHits.Load()
	code := e.code(authzQuery(id, "http://127.0.0.1:9999/cb", chal))
	if e.cimdHits.Load() != hits+1 {
		t.Fatalf("document fetched %d times, want 1", e.cimdHits.Load()-hits)
	}
	tr := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {ver}, "redirect_uri": {"http://127.0.0.1:9999/cb"}, "client_id": {id}}, "", "")
	if tr.Status != 200 {
		t.Fatalf("token: %d %v", tr.Status, tr.Body)
	}
	// Cached within max-age: no more fetches.
	e.code(authzQuery(id, "http://127.0.0.1:9999/cb", chal))
	if e.cimdHits.Load() != hits+1 {
		t.Fatalf("cached document refetched")
	}
	// The consent page shows the document's host.
	doc, err := e.st.GetMetadataDocument(context.Background(), id)
	if err != nil || doc.Body != body() || doc.Digest != store.Digest(body()) {
		t.Fatalf("stored document = %+v, %v", doc, err)
	}
	c, _ := e.st.GetClient(context.Background(), id)
	if c.Kind != store.ClientMetadataDocument || c.Name != "Doc App" {
		t.Fatalf("client record = %+v", c)
	}
}

func TestMetadataDocumentChangeDetection(t *testing.T) {
	e := newEnv(t, nil)
	var id string
	name := "First Name"
	id = e.cimdURL("/changing.json", func(w http.ResponseWriter, r *http.Request) {
		serveDoc(`{"client_id":"`+id+`","client_name":"`+name+`","redirect_uris":["http://127.0.0.1/cb"]}`, "Cache-Control", "no-store")(w, r)
	})
	_, chal := pkce()
	e.code(authzQuery(id, "http://127.0.0.1/cb", chal))
	first, _ := e.st.GetMetadataDocument(context.Background(), id)
	name = "Second Name"
	e.code(authzQuery(id, "http://127.0.0.1/cb", chal))
	second, _ := e.st.GetMetadataDocument(context.Background(), id)
	if second.PreviousDigest != first.Digest || second.ChangedAt.IsZero() || second.Digest == first.Digest {
		t.Fatalf("change not recorded: first %+v second %+v", first, second)
	}
	c, _ := e.st.GetClient(context.Background(), id)
	if c.Name != "Second Name" {
		t.Fatalf("client not updated: %q", c.Name)
	}
}

func TestClientCredentials(t *testing.T) {
	e := newEnv(t, nil)
	for _, tt := range []struct {
		name       string
		form       url.Values
		id, secret string
		sub        string
	}{
		{"client_secret_post", url.Values{"client_id": {"svc"}, "client_secret": {svcSecret}}, "", "", "svc"},
		{"client_secret_basic", url.Values{}, "svc", svcSecret, "svc"},
		{"private_key_jwt", url.Values{"client_assertion_type": {meta.ClientAssertionTypeJWTBearer}, "client_assertion": {e.clientAssertion("cc-1")}}, "", "", "jwtsvc"},
		{"private_key_jwt with token endpoint aud", url.Values{"client_assertion_type": {meta.ClientAssertionTypeJWTBearer},
			"client_assertion": {e.clientAssertion("cc-2", func(c map[string]any) { c["aud"] = []string{e.url("/token")} })}}, "", "", "jwtsvc"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.form.Set("grant_type", "client_credentials")
			tt.form.Set("resource", resourceURI)
			tt.form.Set("scope", "mcp:read mcp:write")
			tr := e.token(tt.form, tt.id, tt.secret)
			if tr.Status != 200 || tr.str("refresh_token") != "" || tr.str("scope") != "mcp:read mcp:write" {
				t.Fatalf("token: %d %v", tr.Status, tr.Body)
			}
			resp, body := e.callRS("/mcp", tr.str("access_token"))
			var p map[string]any
			json.Unmarshal(body, &p)
			if resp.StatusCode != 200 || p["sub"] != "client:"+tt.sub || p["client_id"] != tt.sub {
				t.Fatalf("RS: %d %s", resp.StatusCode, body)
			}
		})
	}
}

func TestIDJAGGrant(t *testing.T) {
	e := newEnv(t, nil)
	form := url.Values{"grant_type": {meta.GrantTypeJWTBearer}, "assertion": {e.idJAG("jag-ok")}, "scope": {"mcp:write"},
		"client_assertion_type": {meta.ClientAssertionTypeJWTBearer}, "client_assertion": {e.clientAssertion("jag-client")}}
	tr := e.token(form, "", "")
	if tr.Status != 200 || tr.str("refresh_token") != "" || tr.str("scope") != "mcp:write" || tr.str("token_type") != "Bearer" {
		t.Fatalf("token: %d %v", tr.Status, tr.Body)
	}
	// The token is a JWT for the resource named in the ID-JAG.
	claims := decodeJWT(t, tr.str("access_token"))
	if claims["aud"] != resourceURI || claims["sub"] != "oidc:idp.example.test:U019488227" || claims["client_id"] != "jwtsvc" || claims["iss"] != e.issuer {
		t.Fatalf("claims = %v", claims)
	}
	// Asking for more than the IdP granted is refused.
	form.Set("assertion", e.idJAG("jag-more"))
	form.Set("client_assertion", e.clientAssertion("jag-client-2"))
	form.Set("scope", "mcp:admin")
	if tr := e.token(form, "", ""); tr.Status != 400 || tr.str("error") != "invalid_scope" {
		t.Fatalf("widening: %d %v", tr.Status, tr.Body)
	}
}

// decodeJWT returns a JWT's claims without verification (tests only).
func decodeJWT(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	raw, err := decodeSegment(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	hdr, _ := decodeSegment(parts[0])
	if !strings.Contains(string(hdr), `"typ":"at+jwt"`) || !strings.Contains(string(hdr), `"alg":"ES256"`) {
		t.Fatalf("header = %s", hdr)
	}
	return c
}

func TestDynamicRegistration(t *testing.T) {
	e := newEnv(t, nil)
	resp, err := http.Post(e.url("/register"), "application/json", strings.NewReader(`{"client_name":"Dyn","redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none"}`))
	if err != nil {
		t.Fatal(err)
	}
	var ci meta.ClientInformation
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("register: %d %s", resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, &ci); err != nil || ci.ClientID == "" || ci.ClientSecret != "" || ci.TokenEndpointAuthMethod != "none" {
		t.Fatalf("registration response %s", body)
	}
	ver, chal := pkce()
	code := e.code(authzQuery(ci.ClientID, "http://127.0.0.1:777/cb", chal))
	if tr := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {ver}, "redirect_uri": {"http://127.0.0.1:777/cb"}, "client_id": {ci.ClientID}}, "", ""); tr.Status != 200 {
		t.Fatalf("token: %d %v", tr.Status, tr.Body)
	}
	// A secret-based client gets a secret that works.
	resp, _ = http.Post(e.url("/register"), "application/json", strings.NewReader(`{"client_name":"Conf","redirect_uris":["https://c.example.test/cb"]}`))
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	json.Unmarshal(body, &ci)
	if resp.StatusCode != 201 || ci.ClientSecret == "" || ci.TokenEndpointAuthMethod != "client_secret_basic" {
		t.Fatalf("confidential registration: %d %s", resp.StatusCode, body)
	}

	// Disabled registration: no endpoint.
	off := newEnv(t, &envOptions{path: "/oauth", mutate: func(o *authserver.Options) { o.Registration.Disabled = true }})
	resp, _ = http.Post(off.url("/register"), "application/json", strings.NewReader(`{}`))
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("disabled registration: HTTP %d", resp.StatusCode)
	}
	// Restricted registration: initial access token and redirect hosts.
	restricted := newEnv(t, &envOptions{path: "/oauth", mutate: func(o *authserver.Options) {
		o.Registration.InitialAccessToken = "iat-secret"
		o.Registration.AllowedRedirectHosts = []string{"trusted.example.test"}
	}})
	for _, tt := range []struct {
		token, body string
		status      int
	}{
		{"", `{"redirect_uris":["https://trusted.example.test/cb"],"token_endpoint_auth_method":"none"}`, 401},
		{"iat-secret", `{"redirect_uris":["https://evil.example.test/cb"],"token_endpoint_auth_method":"none"}`, 400},
		{"iat-secret", `{"redirect_uris":["https://app.trusted.example.test/cb"],"token_endpoint_auth_method":"none"}`, 201},
		{"iat-secret", `{"redirect_uris":["https://trusted.example.test/cb"],"token_endpoint_auth_method":"none","token_endpoint_auth_method":"none"}`, 400},
	} {
		req, _ := http.NewRequest(http.MethodPost, restricted.url("/register"), strings.NewReader(tt.body))
		req.Header.Set("Content-Type", "application/json")
		if tt.token != "" {
			req.Header.Set("Authorization", "Bearer "+tt.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s with %q: HTTP %d, want %d", tt.body, tt.token, resp.StatusCode, tt.status)
		}
	}
}

func TestRevocationAndIntrospection(t *testing.T) {
	e := newEnv(t, &envOptions{path: "/oauth", mutate: func(o *authserver.Options) { o.IntrospectionClients = []string{"svc"} }})
	ver, chal := pkce()
	code := e.code(authzQuery("web", webRedirect, chal))
	tr := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {ver}, "redirect_uri": {webRedirect}}, "web", webSecret)
	at, rt := tr.str("access_token"), tr.str("refresh_token")

	in := e.post("/introspect", url.Values{"token": {at}}, "svc", svcSecret)
	if in.Status != 200 || in.Body["active"] != true || in.Body["sub"] != "alice" || in.Body["aud"] != resourceURI || in.Body["client_id"] != "web" {
		t.Fatalf("introspect: %d %v", in.Status, in.Body)
	}
	// Public clients cannot introspect; unauthenticated callers neither.
	if r := e.post("/introspect", url.Values{"token": {at}, "client_id": {"pub"}}, "", ""); r.Status != 401 || r.str("error") != "invalid_client" {
		t.Fatalf("public introspection: %d %v", r.Status, r.Body)
	}
	if r := e.post("/introspect", url.Values{"token": {at}}, "", ""); r.Status != 401 {
		t.Fatalf("anonymous introspection: %d %v", r.Status, r.Body)
	}
	// Another client cannot revoke web's tokens (200 per RFC 7009, no effect).
	if r := e.post("/revoke", url.Values{"token": {rt}}, "svc", svcSecret); r.Status != 200 {
		t.Fatalf("foreign revoke: %d", r.Status)
	}
	if resp, _ := e.callRS("/mcp", at); resp.StatusCode != 200 {
		t.Fatalf("token revoked by another client")
	}
	// Revoking the refresh token revokes the grant, access token included.
	if r := e.post("/revoke", url.Values{"token": {rt}, "token_type_hint": {"refresh_token"}}, "web", webSecret); r.Status != 200 {
		t.Fatalf("revoke: %d %v", r.Status, r.Body)
	}
	if resp, _ := e.callRS("/mcp", at); resp.StatusCode != 401 {
		t.Fatalf("access token still accepted after its grant was revoked")
	}
	if r := e.post("/introspect", url.Values{"token": {at}}, "svc", svcSecret); r.Body["active"] != false {
		t.Fatalf("revoked token introspects as %v", r.Body)
	}
	if r := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "web", webSecret); r.Status != 400 || r.str("error") != "invalid_grant" {
		t.Fatalf("revoked refresh token: %d %v", r.Status, r.Body)
	}
	if r := e.post("/introspect", url.Values{"token": {"garbage"}}, "svc", svcSecret); r.Status != 200 || r.Body["active"] != false {
		t.Fatalf("garbage: %d %v", r.Status, r.Body)
	}
}

func TestKeyRotation(t *testing.T) {
	now := time.Now()
	clock := &now
	e := newEnv(t, &envOptions{path: "/oauth", mutate: func(o *authserver.Options) {
		o.KeyRotation = time.Hour
		o.AccessTokenTTL = 2 * time.Hour
		o.Now = func() time.Time { return *clock }
	}})
	cc := func() string {
		r := e.token(url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {svcSecret}, "resource": {resourceURI}}, "", "")
		if r.Status != 200 {
			t.Fatalf("token: %d %v", r.Status, r.Body)
		}
		return r.str("access_token")
	}
	old := cc()
	*clock = now.Add(90 * time.Minute)
	fresh := cc()
	var jwks struct {
		Keys []map[string]any `json:"keys"`
	}
	getJSON(t, e.url("/jwks"), &jwks)
	if len(jwks.Keys) != 2 {
		t.Fatalf("after rotation the JWKS has %d keys, want 2", len(jwks.Keys))
	}
	kid := func(tok string) string {
		h, _ := decodeSegment(strings.Split(tok, ".")[0])
		var m map[string]any
		json.Unmarshal(h, &m)
		return m["kid"].(string)
	}
	if kid(old) == kid(fresh) {
		t.Fatal("token signed with the old key after rotation")
	}
	for _, tok := range []string{old, fresh} {
		if _, err := e.as.VerifySignature(context.Background(), tok); err != nil {
			t.Fatalf("verify after rotation: %v", err)
		}
	}
}

func TestIntrospectionVerifierAgainstServer(t *testing.T) {
	e := newEnv(t, &envOptions{path: "/oauth", mutate: func(o *authserver.Options) { o.IntrospectionClients = []string{"svc"} }})
	r := e.token(url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {svcSecret}, "resource": {resourceURI}}, "", "")
	v := resource.NewIntrospectionVerifier(e.url("/introspect"), "svc", svcSecret, resourceURI, e.issuer, nil)
	p, err := v.Verify(context.Background(), r.str("access_token"))
	if err != nil || p.Subject != "client:svc" || p.ClientID != "svc" || !p.HasScopes("mcp:read") || p.TokenID == "" {
		t.Fatalf("Verify = %+v, %v", p, err)
	}
	// A token for another resource is refused by audience.
	other := resource.NewIntrospectionVerifier(e.url("/introspect"), "svc", svcSecret, otherRes, e.issuer, nil)
	if _, err := other.Verify(context.Background(), r.str("access_token")); !errors.Is(err, resource.ErrInvalidToken) {
		t.Fatalf("foreign audience: %v", err)
	}
}

func BenchmarkClientCredentialsToken(b *testing.B) {
	e := newEnv(b, nil)
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {svcSecret}, "resource": {resourceURI}}.Encode()
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodPost, e.url("/token"), strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("HTTP %d", resp.StatusCode)
		}
	}
}

func TestLoginThrottle(t *testing.T) {
	e := newEnv(t, nil)
	b := newBrowser(t)
	_, chal := pkce()
	q := authzQuery("pub", "http://127.0.0.1:1/callback", chal)
	attempt := func(pw string) int {
		_, page := b.get(e.url("/authorize") + "?" + q.Encode())
		f := hidden(page)
		f.Set("username", "alice")
		f.Set("password", pw)
		resp, _ := b.postForm(e.url("/login"), f)
		return resp.StatusCode
	}
	for i := range 5 {
		if got := attempt("wrong"); got != http.StatusUnauthorized {
			t.Fatalf("attempt %d: HTTP %d", i, got)
		}
	}
	// Even the right password is refused while throttled.
	if got := attempt(alicePass); got != http.StatusTooManyRequests {
		t.Fatalf("throttled attempt: HTTP %d, want 429", got)
	}
}
