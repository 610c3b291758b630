package oauthclient

import (
	"context"
	"crypto"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/oauth/safehttp"
)

const testRedirect = "http://localhost:3000/callback"

// codeConfig is a Config for the authorization code flow against rs with
// the headless handler.
func codeConfig(rs *fakeRS, mod func(*Config)) *Config {
	safe := testSafe
	c := &Config{
		ServerURL:            rs.url(),
		RedirectURL:          testRedirect,
		AuthorizationHandler: NewHeadlessHandler(&safe),
		SafeHTTP:             &safe,
	}
	if mod != nil {
		mod(c)
	}
	return c
}

func newClient(t *testing.T, cfg *Config) *http.Client {
	t.Helper()
	tr, err := NewTransport(nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

func post(t *testing.T, c *http.Client, u, body string) (*http.Response, string, error) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	// Hide GetBody so the transport has to buffer the body itself.
	req.GetBody = nil
	req.Body = io.NopCloser(strings.NewReader(body))
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), nil
}

func TestAuthorizationCodeFlowDCR(t *testing.T) {
	as := newFakeAS(t, func(a *fakeAS) { a.issSupported = true; a.authMethods = []string{"none"} })
	rs := newFakeRS(t, as, func(s *fakeRS) { s.scopeInHeader = "mcp:read"; s.scopesSupported = []string{"a", "b"} })
	c := newClient(t, codeConfig(rs, nil))

	resp, body, err := post(t, c, rs.url(), `{"method":"tools/list"}`)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.Contains(body, `tools/list`) {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	auth, tok, _, regs, _ := as.snapshot()
	if len(regs) != 1 || regs[0].RedirectURIs[0] != testRedirect || regs[0].TokenEndpointAuthMethod != "none" || regs[0].ApplicationType != "native" {
		t.Fatalf("registrations: %+v", regs)
	}
	if len(auth) != 1 || len(tok) != 1 {
		t.Fatalf("auth requests %d, token requests %d", len(auth), len(tok))
	}
	a := auth[0]
	if a.Get("resource") != rs.resource() || tok[0].Get("resource") != rs.resource() {
		t.Fatalf("resource: authorization %q token %q want %q", a.Get("resource"), tok[0].Get("resource"), rs.resource())
	}
	if a.Get("code_challenge_method") != "S256" || a.Get("code_challenge") == "" || a.Get("state") == "" || a.Get("response_type") != "code" {
		t.Fatalf("authorization request %v", a)
	}
	if a.Get("scope") != "mcp:read" {
		t.Fatalf("scope %q, want the challenge's", a.Get("scope"))
	}
	seen := rs.seenAuth()
	if len(seen) != 2 || seen[0] != "" || !strings.HasPrefix(seen[1], "Bearer at-") {
		t.Fatalf("RS saw Authorization headers %q", seen)
	}
	// The request body was replayed intact.
	rs.mu.Lock()
	bodies := rs.bodies
	rs.mu.Unlock()
	if bodies[0] != bodies[1] || bodies[1] != `{"method":"tools/list"}` {
		t.Fatalf("bodies %q", bodies)
	}
	// A second request reuses the token: no new authorization.
	if resp, _, err := post(t, c, rs.url(), `{"method":"ping"}`); err != nil || resp.StatusCode != 200 {
		t.Fatalf("second request: %v %v", resp, err)
	}
	if auth, _, _, _, _ := as.snapshot(); len(auth) != 1 {
		t.Fatalf("second request re-authorized (%d)", len(auth))
	}
}

func TestScopeSelection(t *testing.T) {
	tests := []struct {
		name       string
		challenge  string
		supported  []string
		wantScope  string
		wantOmited bool
	}{
		{"challenge wins", "x y", []string{"a"}, "x y", false},
		{"scopes_supported", "", []string{"a", "b", "c"}, "a b c", false},
		{"omitted", "", nil, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newFakeAS(t, nil)
			rs := newFakeRS(t, as, func(s *fakeRS) { s.scopeInHeader = tt.challenge; s.scopesSupported = tt.supported })
			if _, _, err := post(t, newClient(t, codeConfig(rs, nil)), rs.url(), "{}"); err != nil {
				t.Fatal(err)
			}
			auth, _, _, _, _ := as.snapshot()
			_, has := auth[0]["scope"]
			if auth[0].Get("scope") != tt.wantScope || has == tt.wantOmited {
				t.Fatalf("scope %q (present %t), want %q", auth[0].Get("scope"), has, tt.wantScope)
			}
		})
	}
}

func TestTokenEndpointAuthMethods(t *testing.T) {
	tests := []struct {
		name    string
		methods []string
		client  *ClientAuth
		check   func(t *testing.T, form url.Values, authz string)
	}{
		{"pre-registered basic", []string{"client_secret_basic"}, &ClientAuth{ClientID: "pre", ClientSecret: "s3cret"}, func(t *testing.T, f url.Values, h string) {
			if !strings.HasPrefix(h, "Basic ") || f.Get("client_secret") != "" {
				t.Fatalf("want basic: header %q form %v", h, f)
			}
		}},
		{"pre-registered post", []string{"client_secret_post"}, &ClientAuth{ClientID: "pre", ClientSecret: "s3cret"}, func(t *testing.T, f url.Values, h string) {
			if h != "" || f.Get("client_secret") != "s3cret" || f.Get("client_id") != "pre" {
				t.Fatalf("want post: header %q form %v", h, f)
			}
		}},
		{"dcr basic", []string{"client_secret_basic"}, nil, func(t *testing.T, f url.Values, h string) {
			if !strings.HasPrefix(h, "Basic ") {
				t.Fatalf("want basic: header %q", h)
			}
		}},
		{"dcr post", []string{"client_secret_post"}, nil, func(t *testing.T, f url.Values, h string) {
			if h != "" || f.Get("client_secret") != "dcr-secret" {
				t.Fatalf("want post: header %q form %v", h, f)
			}
		}},
		{"dcr none", []string{"none"}, nil, func(t *testing.T, f url.Values, h string) {
			if h != "" || f.Get("client_secret") != "" || f.Get("client_id") == "" {
				t.Fatalf("want none: header %q form %v", h, f)
			}
		}},
	}
	pkjKey := genKey(t)
	tests = append(tests, struct {
		name    string
		methods []string
		client  *ClientAuth
		check   func(t *testing.T, form url.Values, authz string)
	}{"pre-registered private_key_jwt", []string{"private_key_jwt"}, &ClientAuth{ClientID: "pkj", PrivateKey: pkjKey, KeyID: "k1"}, func(t *testing.T, f url.Values, h string) {
		// The fake AS verified signature, iss, sub, aud (issuer), exp and jti.
		if h != "" || f.Get("client_assertion_type") != meta.ClientAssertionTypeJWTBearer || f.Get("client_secret") != "" {
			t.Fatalf("want private_key_jwt: header %q form %v", h, f)
		}
	}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newFakeAS(t, func(a *fakeAS) {
				a.authMethods = tt.methods
				if tt.client != nil {
					a.noRegistration = true
					if tt.client.ClientSecret != "" {
						a.secrets[tt.client.ClientID] = tt.client.ClientSecret
					}
					if k, ok := tt.client.PrivateKey.(interface{ Public() crypto.PublicKey }); ok {
						a.clientKeys[tt.client.ClientID] = k.Public()
					}
				}
			})
			rs := newFakeRS(t, as, nil)
			c := newClient(t, codeConfig(rs, func(c *Config) { c.Client = tt.client }))
			resp, _, err := post(t, c, rs.url(), "{}")
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("%v %v", resp, err)
			}
			_, tok, tokAuth, regs, _ := as.snapshot()
			if tt.client != nil && len(regs) != 0 {
				t.Fatal("registered although pre-registered")
			}
			tt.check(t, tok[0], tokAuth[0])
		})
	}
}

func TestClientIDMetadataDocument(t *testing.T) {
	const cimd = "https://conformance-test.local/client-metadata.json"
	as := newFakeAS(t, func(a *fakeAS) { a.cimd = true })
	rs := newFakeRS(t, as, nil)
	c := newClient(t, codeConfig(rs, func(c *Config) { c.ClientIDMetadataURL = cimd }))
	if resp, _, err := post(t, c, rs.url(), "{}"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	auth, tok, _, regs, _ := as.snapshot()
	if len(regs) != 0 || auth[0].Get("client_id") != cimd || tok[0].Get("client_id") != cimd {
		t.Fatalf("regs %d auth client %q token client %q", len(regs), auth[0].Get("client_id"), tok[0].Get("client_id"))
	}

	// Without CIMD support the same config falls back to registration.
	as2 := newFakeAS(t, nil)
	rs2 := newFakeRS(t, as2, nil)
	c2 := newClient(t, codeConfig(rs2, func(c *Config) { c.ClientIDMetadataURL = cimd }))
	if resp, _, err := post(t, c2, rs2.url(), "{}"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	if _, _, _, regs, _ := as2.snapshot(); len(regs) != 1 {
		t.Fatalf("want dynamic registration, got %d", len(regs))
	}
}

func TestNoClientIdentity(t *testing.T) {
	as := newFakeAS(t, func(a *fakeAS) { a.noRegistration = true })
	rs := newFakeRS(t, as, nil)
	_, _, err := post(t, newClient(t, codeConfig(rs, nil)), rs.url(), "{}")
	if !errors.Is(err, ErrNoClientIdentity) {
		t.Fatalf("err = %v, want ErrNoClientIdentity", err)
	}
}

func TestRefusals(t *testing.T) {
	tests := []struct {
		name    string
		as      func(*fakeAS)
		rs      func(*fakeRS)
		want    error
		noToken bool // no token request may have happened
		noAuth  bool // no authorization request may have happened
	}{
		{"resource mismatch", nil, func(s *fakeRS) { s.resourceOverride = "https://evil.example.com/mcp" }, ErrResourceMismatch, true, true},
		{"resource other path", nil, func(s *fakeRS) { s.resourceOverride = "PLACEHOLDER/other" }, ErrResourceMismatch, true, true},
		{"missing PKCE", func(a *fakeAS) { a.noPKCE = true }, nil, ErrPKCENotSupported, true, true},
		{"state mismatch", func(a *fakeAS) { a.tamperState = true }, nil, ErrStateMismatch, true, false},
		{"state missing", func(a *fakeAS) { a.omitState = true }, nil, ErrStateMismatch, true, false},
		{"iss wrong (advertised)", func(a *fakeAS) { a.issSupported = true; a.issMode = "wrong" }, nil, ErrIssuerMismatch, true, false},
		{"iss missing (advertised)", func(a *fakeAS) { a.issSupported = true; a.issMode = "omit" }, nil, ErrIssuerMismatch, true, false},
		{"iss wrong (not advertised)", func(a *fakeAS) { a.issMode = "wrong" }, nil, ErrIssuerMismatch, true, false},
		{"iss trailing slash", func(a *fakeAS) { a.issSupported = true; a.issMode = "slash" }, nil, ErrIssuerMismatch, true, false},
		{"metadata issuer mismatch", func(a *fakeAS) { a.issuerOverride = "https://attacker.example.com" }, nil, ErrDiscovery, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newFakeAS(t, tt.as)
			rs := newFakeRS(t, as, tt.rs)
			if strings.HasPrefix(rs.resourceOverride, "PLACEHOLDER") {
				rs.resourceOverride = rs.srv.URL + "/other"
			}
			resp, _, err := post(t, newClient(t, codeConfig(rs, nil)), rs.url(), "{}")
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v (resp %v), want %v", err, resp, tt.want)
			}
			auth, tok, _, _, _ := as.snapshot()
			if tt.noAuth && len(auth) != 0 {
				t.Fatalf("authorization request made despite refusal")
			}
			if tt.noToken && len(tok) != 0 {
				t.Fatalf("token request made despite refusal")
			}
			for _, h := range rs.seenAuth() {
				if h != "" {
					t.Fatalf("RS received a token %q", h)
				}
			}
		})
	}
}

func TestIssNotAdvertisedAbsentAccepted(t *testing.T) {
	as := newFakeAS(t, func(a *fakeAS) { a.issMode = "omit" })
	rs := newFakeRS(t, as, nil)
	if resp, _, err := post(t, newClient(t, codeConfig(rs, nil)), rs.url(), "{}"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
}

func TestAuthorizationErrorResponse(t *testing.T) {
	as := newFakeAS(t, func(a *fakeAS) { a.authError = "access_denied" })
	rs := newFakeRS(t, as, nil)
	_, _, err := post(t, newClient(t, codeConfig(rs, nil)), rs.url(), "{}")
	var oe *meta.Error
	if !errors.As(err, &oe) || oe.Code != "access_denied" {
		t.Fatalf("err = %v, want access_denied", err)
	}
}

func TestStepUp(t *testing.T) {
	as := newFakeAS(t, nil)
	rs := newFakeRS(t, as, func(s *fakeRS) {
		s.scopeInHeader = "mcp:basic"
		s.needScope = map[string]string{"tools/call": "mcp:write"}
	})
	c := newClient(t, codeConfig(rs, nil))
	if resp, _, err := post(t, c, rs.url(), `{"method":"tools/list"}`); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	resp, body, err := post(t, c, rs.url(), `{"method":"tools/call"}`)
	if err != nil || resp.StatusCode != 200 || !strings.Contains(body, "tools/call") {
		t.Fatalf("%v %v %q", resp, err, body)
	}
	auth, _, _, _, _ := as.snapshot()
	if len(auth) != 2 || auth[0].Get("scope") != "mcp:basic" || auth[1].Get("scope") != "mcp:basic mcp:write" {
		t.Fatalf("authorization scopes: %d requests %v", len(auth), auth)
	}
}

func TestStepUpBounded(t *testing.T) {
	for _, maxStepUps := range []int{-1, 1, 2, 5} {
		as := newFakeAS(t, nil)
		rs := newFakeRS(t, as, func(s *fakeRS) { s.scopeInHeader = "admin"; s.always403 = true })
		c := newClient(t, codeConfig(rs, func(c *Config) { c.MaxStepUps = maxStepUps }))
		for i := range 3 {
			resp, _, err := post(t, c, rs.url(), `{"method":"tools/list"}`)
			if err != nil {
				t.Fatalf("max %d request %d: %v", maxStepUps, i, err)
			}
			if resp.StatusCode != 403 {
				t.Fatalf("max %d: status %d, want the final 403", maxStepUps, resp.StatusCode)
			}
		}
		auth, _, _, _, _ := as.snapshot()
		want := 2 // initial authorization + one futile re-authorization for the same scopes
		if maxStepUps < 0 {
			want = 1
		}
		if len(auth) != want {
			t.Fatalf("max %d: %d authorization requests, want %d", maxStepUps, len(auth), want)
		}
	}
}

func TestTokenNeverSentToAnotherOrigin(t *testing.T) {
	var otherAuth []string
	other := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherAuth = append(otherAuth, r.Header.Get("Authorization"))
		w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="https://other.example/.well-known/oauth-protected-resource"`)
		w.WriteHeader(401)
	}))
	as := newFakeAS(t, nil)
	rs := newFakeRS(t, as, func(s *fakeRS) { s.redirectTo = other.URL + "/landing" })
	c := newClient(t, codeConfig(rs, nil))
	if resp, _, err := post(t, c, rs.url(), "{}"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	// 1. A request for another origin through the same transport.
	resp, _, err := post(t, c, other.URL+"/mcp", "{}")
	if err != nil || resp.StatusCode != 401 {
		t.Fatalf("other origin: %v %v (want its 401 passed through untouched)", resp, err)
	}
	// 2. The MCP server redirects an authorized request to another origin.
	resp, _, err = post(t, c, rs.url(), `{"redirect":true}`)
	if err != nil || resp.StatusCode != 401 || resp.Request.URL.Host != strings.TrimPrefix(other.URL, "http://") {
		t.Fatalf("redirect: %v %v", resp, err)
	}
	if len(otherAuth) != 2 {
		t.Fatalf("other origin saw %d requests, want 2", len(otherAuth))
	}
	for _, h := range otherAuth {
		if h != "" {
			t.Fatalf("other origin received Authorization %q", h)
		}
	}
	// 3. Same origin, path outside the MCP endpoint.
	if _, _, err := post(t, c, rs.srv.URL+"/other", "{}"); err != nil {
		t.Fatal(err)
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if len(rs.otherAuth) == 0 {
		t.Fatal("request to /other not seen")
	}
	for _, h := range rs.otherAuth {
		if h != "" {
			t.Fatalf("/other received Authorization %q", h)
		}
	}
	// The authorization server and metadata endpoints never see the token.
	_, _, tokAuth, _, _ := as.snapshot()
	for _, h := range tokAuth {
		if strings.HasPrefix(h, "Bearer") {
			t.Fatalf("token endpoint received a bearer token")
		}
	}
}

func TestRefreshRotation(t *testing.T) {
	as := newFakeAS(t, func(a *fakeAS) { a.issueRefresh = true; a.expiresIn = 10 }) // < 30s skew: always expired
	rs := newFakeRS(t, as, nil)
	c := newClient(t, codeConfig(rs, nil))
	for i := range 3 {
		if resp, _, err := post(t, c, rs.url(), "{}"); err != nil || resp.StatusCode != 200 {
			t.Fatalf("request %d: %v %v", i, resp, err)
		}
	}
	auth, tok, _, _, _ := as.snapshot()
	if len(auth) != 1 {
		t.Fatalf("%d authorizations, want 1 (then refreshes)", len(auth))
	}
	if len(tok) != 3 || tok[1].Get("grant_type") != "refresh_token" || tok[2].Get("grant_type") != "refresh_token" {
		t.Fatalf("token requests %v", tok)
	}
	if tok[1].Get("refresh_token") == tok[2].Get("refresh_token") {
		t.Fatal("rotated refresh token not used")
	}
	if tok[1].Get("resource") != rs.resource() {
		t.Fatalf("refresh resource %q", tok[1].Get("resource"))
	}
}

func TestClientCredentials(t *testing.T) {
	key := genKey(t)
	tests := []struct {
		name   string
		client *ClientAuth
		check  func(t *testing.T, f url.Values, h string)
	}{
		{"secret basic", &ClientAuth{ClientID: "cc", ClientSecret: "cc-secret"}, func(t *testing.T, f url.Values, h string) {
			if !strings.HasPrefix(h, "Basic ") {
				t.Fatalf("header %q", h)
			}
		}},
		{"private_key_jwt", &ClientAuth{ClientID: "cc", PrivateKey: key}, func(t *testing.T, f url.Values, h string) {
			if h != "" || f.Get("client_assertion_type") != meta.ClientAssertionTypeJWTBearer || f.Has("client_id") {
				t.Fatalf("header %q form %v", h, f)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newFakeAS(t, func(a *fakeAS) {
				a.grantTypes = []string{"client_credentials"}
				a.noPKCE = true // not needed for this grant
				a.secrets["cc"] = "cc-secret"
				a.clientKeys["cc"] = key.Public()
				a.issueRefresh = true
			})
			rs := newFakeRS(t, as, func(s *fakeRS) { s.scopesSupported = []string{"mcp:read"} })
			c := newClient(t, &Config{ServerURL: rs.url(), Flow: FlowClientCredentials, Client: tt.client, SafeHTTP: &testSafe})
			resp, _, err := post(t, c, rs.url(), "{}")
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("%v %v", resp, err)
			}
			auth, tok, tokAuth, _, _ := as.snapshot()
			if len(auth) != 0 || len(tok) != 1 || tok[0].Get("grant_type") != "client_credentials" ||
				tok[0].Get("resource") != rs.resource() || tok[0].Get("scope") != "mcp:read" {
				t.Fatalf("auth %d token %v", len(auth), tok)
			}
			tt.check(t, tok[0], tokAuth[0])
			st, _ := c.Transport.(*Transport).Authorizer().store.Load(context.Background(), rs.url())
			if st == nil || st.RefreshToken != "" {
				t.Fatalf("stored token %v", st)
			}
		})
	}
	// A wrong key is rejected by the server's verification.
	as := newFakeAS(t, func(a *fakeAS) { a.clientKeys["cc"] = key.Public() })
	rs := newFakeRS(t, as, nil)
	c := newClient(t, &Config{ServerURL: rs.url(), Flow: FlowClientCredentials, Client: &ClientAuth{ClientID: "cc", PrivateKey: genKey(t)}, SafeHTTP: &testSafe})
	_, _, err := post(t, c, rs.url(), "{}")
	var oe *meta.Error
	if !errors.As(err, &oe) || oe.Code != "invalid_client" {
		t.Fatalf("wrong key: %v", err)
	}
}

func TestEnterpriseManagedAuthorization(t *testing.T) {
	idp := newFakeIdP(t, "xaa-client")
	as := newFakeAS(t, func(a *fakeAS) {
		a.grantTypes = []string{meta.GrantTypeJWTBearer}
		a.authMethods = []string{"client_secret_basic"}
		a.secrets["xaa-client"] = "xaa-secret"
		a.idpKey = &idp.key.PublicKey
		a.issueRefresh = true
	})
	rs := newFakeRS(t, as, nil)
	c := newClient(t, &Config{
		ServerURL: rs.url(),
		Flow:      FlowEnterprise,
		Client:    &ClientAuth{ClientID: "xaa-client", ClientSecret: "xaa-secret"},
		Enterprise: &Enterprise{
			IDToken:          func(context.Context) (string, error) { return idp.idToken, nil },
			IdPTokenEndpoint: idp.srv.URL + "/token",
			IdPClient:        &ClientAuth{ClientID: "idp-client"},
		},
		SafeHTTP: &testSafe,
	})
	resp, _, err := post(t, c, rs.url(), "{}")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	idp.mu.Lock()
	ex := idp.requests
	idp.mu.Unlock()
	if len(ex) != 1 || ex[0].Get("audience") != as.issuer() || ex[0].Get("resource") != rs.resource() || ex[0].Get("client_id") != "idp-client" {
		t.Fatalf("token exchange %v", ex)
	}
	_, tok, tokAuth, _, _ := as.snapshot()
	if len(tok) != 1 || tok[0].Get("grant_type") != meta.GrantTypeJWTBearer || !strings.HasPrefix(tokAuth[0], "Basic ") {
		t.Fatalf("jwt-bearer %v %v", tok, tokAuth)
	}
	st, _ := c.Transport.(*Transport).Authorizer().store.Load(context.Background(), rs.url())
	if st == nil || st.RefreshToken != "" {
		t.Fatalf("stored %v: enterprise tokens must not keep refresh tokens", st)
	}
}

func TestDiscoveryOrder(t *testing.T) {
	tests := []struct {
		name      string
		asPrefix  string
		asMdPath  string
		prmPath   string
		inHeader  bool
		wantRS    []string
		wantAS    []string
		oidcExtra bool
	}{
		{
			name: "header", prmPath: "/.well-known/oauth-protected-resource/mcp", inHeader: true,
			wantRS: []string{"/mcp", "/.well-known/oauth-protected-resource/mcp"},
			wantAS: []string{"/.well-known/oauth-authorization-server"},
		},
		{
			name: "path-inserted, OIDC", prmPath: "/.well-known/oauth-protected-resource/mcp", asMdPath: "/.well-known/openid-configuration",
			wantRS: []string{"/mcp", "/.well-known/oauth-protected-resource/mcp"},
			wantAS: []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"},
		},
		{
			name: "root PRM, tenant AS", prmPath: "/.well-known/oauth-protected-resource", asPrefix: "/tenant1",
			wantRS: []string{"/mcp", "/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"},
			wantAS: []string{"/.well-known/oauth-authorization-server/tenant1"},
		},
		{
			name: "custom PRM, OIDC path-appended", prmPath: "/custom/metadata/location.json", inHeader: true, asPrefix: "/tenant1", asMdPath: "/tenant1/.well-known/openid-configuration",
			wantRS: []string{"/mcp", "/custom/metadata/location.json"},
			wantAS: []string{"/.well-known/oauth-authorization-server/tenant1", "/.well-known/openid-configuration/tenant1", "/tenant1/.well-known/openid-configuration"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newFakeAS(t, func(a *fakeAS) { a.prefix = tt.asPrefix; a.metadataPath = tt.asMdPath })
			rs := newFakeRS(t, as, func(s *fakeRS) { s.prmPath = tt.prmPath; s.prmInHeader = tt.inHeader })
			if resp, _, err := post(t, newClient(t, codeConfig(rs, nil)), rs.url(), "{}"); err != nil || resp.StatusCode != 200 {
				t.Fatalf("%v %v", resp, err)
			}
			rs.mu.Lock()
			rsPaths := rs.paths
			rs.mu.Unlock()
			if strings.Join(rsPaths[:len(tt.wantRS)], " ") != strings.Join(tt.wantRS, " ") {
				t.Fatalf("RS paths %q, want prefix %q", rsPaths, tt.wantRS)
			}
			_, _, _, _, asPaths := as.snapshot()
			if strings.Join(asPaths[:len(tt.wantAS)], " ") != strings.Join(tt.wantAS, " ") {
				t.Fatalf("AS paths %q, want prefix %q", asPaths, tt.wantAS)
			}
		})
	}
}

func TestLegacy20250326(t *testing.T) {
	t.Run("metadata at root", func(t *testing.T) {
		// The MCP server hosts the authorization server at its root.
		var as *fakeAS
		mux := http.NewServeMux()
		srv := newTestServer(t, mux)
		as = &fakeAS{t: t, issMode: "omit", secrets: map[string]string{}, codes: map[string]codeInfo{}, tokens: map[string]tokInfo{}, refresh: map[string]tokInfo{}, expiresIn: 3600, srv: srv}
		rs := &fakeRS{as: as, prmPath: "-", srv: srv}
		mux.HandleFunc("/mcp", rs.serve)
		mux.HandleFunc("/", as.serve)
		c := newClient(t, &Config{ServerURL: srv.URL + "/mcp", RedirectURL: testRedirect, AuthorizationHandler: NewHeadlessHandler(&testSafe), SafeHTTP: &testSafe, Legacy20250326: true})
		// rs.resource() is the server URL here, which is what legacy mode sends.
		rs.resourceOverride = srv.URL + "/mcp"
		if resp, _, err := post(t, c, srv.URL+"/mcp", "{}"); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%v %v", resp, err)
		}
		_, tok, _, regs, _ := as.snapshot()
		if len(regs) != 1 || len(tok) != 1 || tok[0].Get("resource") != srv.URL+"/mcp" {
			t.Fatalf("regs %d tok %v", len(regs), tok)
		}
	})
	t.Run("endpoint fallback", func(t *testing.T) {
		var got []string
		mux := http.NewServeMux()
		srv := newTestServer(t, mux)
		mux.HandleFunc("/authorize", func(w http.ResponseWriter, r *http.Request) {
			got = append(got, "authorize")
			red, _ := url.Parse(r.URL.Query().Get("redirect_uri"))
			q := red.Query()
			q.Set("code", "c1")
			q.Set("state", r.URL.Query().Get("state"))
			red.RawQuery = q.Encode()
			http.Redirect(w, r, red.String(), 302)
		})
		mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
			got = append(got, "token")
			writeJSON(w, 200, map[string]any{"access_token": "legacy-token", "token_type": "Bearer"})
		})
		mux.HandleFunc("/register", func(w http.ResponseWriter, r *http.Request) {
			got = append(got, "register")
			writeJSON(w, 201, map[string]any{"client_id": "legacy-client"})
		})
		mux.HandleFunc("/mcp", func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer legacy-token" {
				w.WriteHeader(401)
				return
			}
			w.Write([]byte("ok"))
		})
		cfg := &Config{ServerURL: srv.URL + "/mcp", RedirectURL: testRedirect, AuthorizationHandler: NewHeadlessHandler(&testSafe), SafeHTTP: &testSafe, Legacy20250326: true}
		if resp, body, err := post(t, newClient(t, cfg), srv.URL+"/mcp", "{}"); err != nil || resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("%v %v %q", resp, err, body)
		}
		if strings.Join(got, ",") != "register,authorize,token" {
			t.Fatalf("calls %v", got)
		}
		// Without the option, the same server is refused.
		cfg.Legacy20250326 = false
		if _, _, err := post(t, newClient(t, cfg), srv.URL+"/mcp", "{}"); !errors.Is(err, ErrDiscovery) {
			t.Fatalf("without legacy: %v", err)
		}
	})
}

func TestSSRFBlockedDuringDiscovery(t *testing.T) {
	// Default (strict) options: only public addresses. Every target below
	// is refused by the dial-time check before any connection is made.
	strict := safehttp.NewClient(nil)
	tests := []struct {
		name      string
		challenge *meta.BearerChallenge
		server    string
		reason    string
	}{
		{"metadata service PRM", &meta.BearerChallenge{ResourceMetadata: "https://169.254.169.254/latest/meta-data"}, "https://mcp.example.com/mcp", "metadata-service"},
		{"private PRM", &meta.BearerChallenge{ResourceMetadata: "https://10.0.0.1/.well-known/oauth-protected-resource"}, "https://mcp.example.com/mcp", "private"},
		{"ipv6 loopback server", nil, "https://[::1]:1/mcp", "loopback"},
		{"private server", nil, "https://10.1.2.3/mcp", "private"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Discover(context.Background(), strict, tt.server, tt.challenge, nil)
			var be *safehttp.BlockedError
			if !errors.As(err, &be) || be.Reason != tt.reason {
				t.Fatalf("err = %v, want BlockedError %q", err, tt.reason)
			}
		})
	}
	// An authorization server listed by real (loopback) PRM that points to
	// a private address is refused too.
	rs := newFakeRS(t, nil, func(s *fakeRS) { s.authServers = []string{"https://10.0.0.8"} })
	_, err := Discover(context.Background(), safehttp.NewClient(&testSafe), rs.url(), &meta.BearerChallenge{ResourceMetadata: rs.srv.URL + rs.prmPath}, nil)
	var be *safehttp.BlockedError
	if !errors.As(err, &be) || be.Reason != "private" {
		t.Fatalf("private AS: %v", err)
	}
	// ::1 itself is refused when loopback is not allowed, even with a live
	// server listening there.
	ln := httptest.NewUnstartedServer(http.NotFoundHandler())
	ln.Start()
	defer ln.Close()
	_, err = Discover(context.Background(), safehttp.NewClient(&safehttp.Options{AllowInsecureLoopback: true}), ln.URL+"/mcp", nil, nil)
	if !errors.As(err, &be) || be.Reason != "loopback" {
		t.Fatalf("loopback not allowed: %v", err)
	}
}

func TestResourceMatches(t *testing.T) {
	tests := []struct {
		resource, server string
		want             bool
	}{
		{"https://a.example/mcp", "https://a.example/mcp", true},
		{"https://a.example/mcp/", "https://a.example/mcp", true},
		{"https://a.example", "https://a.example/mcp", true},
		{"https://A.EXAMPLE:443", "https://a.example/mcp", true},
		{"https://a.example/mcp", "https://a.example/mcp/sub", true},
		{"https://a.example/mcp", "https://a.example/mcpx", false},
		{"https://a.example/mcp", "https://a.example/other", false},
		{"https://a.example/mcp", "http://a.example/mcp", false},
		{"https://a.example/mcp", "https://a.example:8443/mcp", false},
		{"https://evil.example.com/mcp", "https://a.example/mcp", false},
		{"https://a.example/mcp#f", "https://a.example/mcp", false},
		{"a.example/mcp", "https://a.example/mcp", false},
	}
	for _, tt := range tests {
		if got := ResourceMatches(tt.resource, tt.server); got != tt.want {
			t.Errorf("ResourceMatches(%q, %q) = %v, want %v", tt.resource, tt.server, got, tt.want)
		}
	}
}

func TestCheckAuthorizationResponse(t *testing.T) {
	as := &meta.AuthorizationServerMetadata{Issuer: "https://as.example", AuthorizationResponseIssParameterSupported: true}
	asNo := &meta.AuthorizationServerMetadata{Issuer: "https://as.example"}
	tests := []struct {
		name string
		resp AuthorizationResponse
		as   *meta.AuthorizationServerMetadata
		want error
	}{
		{"ok", AuthorizationResponse{Code: "c", State: "s", Iss: "https://as.example", HasIss: true}, as, nil},
		{"ok no iss not advertised", AuthorizationResponse{Code: "c", State: "s"}, asNo, nil},
		{"state", AuthorizationResponse{Code: "c", State: "t", Iss: "https://as.example", HasIss: true}, as, ErrStateMismatch},
		{"empty state", AuthorizationResponse{Code: "c", Iss: "https://as.example", HasIss: true}, as, ErrStateMismatch},
		{"iss missing", AuthorizationResponse{Code: "c", State: "s"}, as, ErrIssuerMismatch},
		{"iss empty present", AuthorizationResponse{Code: "c", State: "s", HasIss: true}, asNo, ErrIssuerMismatch},
		{"iss wrong unadvertised", AuthorizationResponse{Code: "c", State: "s", Iss: "https://x", HasIss: true}, asNo, ErrIssuerMismatch},
	}
	for _, tt := range tests {
		err := CheckAuthorizationResponse(&tt.resp, "s", tt.as)
		if (tt.want == nil && err != nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	if err := CheckAuthorizationResponse(&AuthorizationResponse{State: "s"}, "s", asNo); err == nil {
		t.Error("accepted a response without code")
	}
}

func TestTokenStores(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "tokens.json")
	fs, err := NewFileTokenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]TokenStore{"memory": NewMemoryTokenStore(), "file": fs} {
		if tok, err := s.Load(ctx, "k"); tok != nil || err != nil {
			t.Fatalf("%s: empty load %v %v", name, tok, err)
		}
		want := &Token{AccessToken: "a", RefreshToken: "r", Scope: "x", Expiry: time.Now().Add(time.Hour).Truncate(time.Second).UTC(), Resource: "https://r"}
		if err := s.Save(ctx, "k", want); err != nil {
			t.Fatal(err)
		}
		got, err := s.Load(ctx, "k")
		if err != nil || got.AccessToken != "a" || got.RefreshToken != "r" || !got.Expiry.Equal(want.Expiry) {
			t.Fatalf("%s: load %v %v", name, got, err)
		}
		if err := s.Delete(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		if tok, _ := s.Load(ctx, "k"); tok != nil {
			t.Fatalf("%s: token survived delete", name)
		}
	}
	fs.Save(ctx, "k", &Token{AccessToken: "a"})
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v %v, want 0600", st.Mode().Perm(), err)
	}
	if dst, _ := os.Stat(filepath.Dir(path)); dst.Mode().Perm() != 0o700 {
		t.Fatalf("token dir mode %v, want 0700", dst.Mode().Perm())
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Load(ctx, "k"); err == nil || !strings.Contains(err.Error(), "permissions") {
		t.Fatalf("world-readable token file accepted: %v", err)
	}
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o600)
	if _, err := fs.Load(ctx, "k"); err == nil {
		t.Fatal("corrupt token file accepted")
	}
	if s := (&Token{AccessToken: "secret-at", RefreshToken: "secret-rt"}).String(); strings.Contains(s, "secret") {
		t.Fatalf("Token.String leaks: %s", s)
	}
}

func TestLoopbackReceiver(t *testing.T) {
	recv, err := NewLoopbackReceiver(&LoopbackOptions{
		OpenURL: func(ctx context.Context, u string) error {
			// Play the browser: follow the authorization URL (a fake AS
			// that redirects) to the loopback redirect URI.
			go func() {
				resp, err := http.Get(u)
				if err == nil {
					resp.Body.Close()
				}
			}()
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	if !strings.HasPrefix(recv.RedirectURL(), "http://127.0.0.1:") || !strings.HasSuffix(recv.RedirectURL(), "/callback") {
		t.Fatalf("redirect URL %q", recv.RedirectURL())
	}
	as := newFakeAS(t, nil)
	rs := newFakeRS(t, as, nil)
	c := newClient(t, codeConfig(rs, func(c *Config) { c.RedirectURL = recv.RedirectURL(); c.AuthorizationHandler = recv }))
	if resp, _, err := post(t, c, rs.url(), "{}"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	if _, err := NewLoopbackReceiver(&LoopbackOptions{Addr: "0.0.0.0:0"}); err == nil {
		t.Fatal("non-loopback listen address accepted")
	}
	if err := OpenBrowser(context.Background(), "file:///etc/passwd"); err == nil {
		t.Fatal("OpenBrowser accepted a file URL")
	}
}

func TestHeadlessHandlerRefusesNonRedirect(t *testing.T) {
	srv := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("login page")) }))
	_, err := NewHeadlessHandler(&testSafe).HandleAuthorization(context.Background(), &AuthorizationRequest{URL: srv.URL + "/authorize", RedirectURL: testRedirect})
	if err == nil || !strings.Contains(err.Error(), "instead of redirecting") {
		t.Fatalf("err = %v", err)
	}
	srv2 := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://elsewhere.example/cb?code=x&state=y", 302)
	}))
	_, err = NewHeadlessHandler(&testSafe).HandleAuthorization(context.Background(), &AuthorizationRequest{URL: srv2.URL + "/authorize", RedirectURL: testRedirect})
	if err == nil || !strings.Contains(err.Error(), "not to the redirect URI") {
		t.Fatalf("err = %v", err)
	}
}

func TestClientMetadataHandler(t *testing.T) {
	md := &meta.ClientMetadata{ClientID: "https://app.example/client.json", ClientName: "App", RedirectURIs: []string{testRedirect}, TokenEndpointAuthMethod: "none"}
	h, err := ClientMetadataHandler(md)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/client.json", nil))
	got, err := meta.ParseClientMetadata(rec.Body.Bytes())
	if err != nil || rec.Header().Get("Content-Type") != "application/json" || got.ValidateClientIDMetadataDocument(md.ClientID) != nil {
		t.Fatalf("served %q %v", rec.Body.String(), err)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/client.json", nil))
	if rec.Code != 405 {
		t.Fatalf("POST status %d", rec.Code)
	}
	for _, bad := range []*meta.ClientMetadata{
		{ClientID: "http://app.example/client.json", ClientName: "A", RedirectURIs: []string{testRedirect}},
		{ClientID: "https://app.example/client.json", RedirectURIs: []string{testRedirect}},
		{ClientID: "https://app.example/client.json", ClientName: "A", RedirectURIs: []string{testRedirect}, TokenEndpointAuthMethod: "client_secret_basic"},
	} {
		if _, err := ClientMetadataHandler(bad); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
}

func TestParsePrivateKeyPEM(t *testing.T) {
	if _, err := ParsePrivateKeyPEM([]byte("nope")); err == nil {
		t.Fatal("accepted garbage")
	}
}

func TestConfigValidation(t *testing.T) {
	for name, cfg := range map[string]*Config{
		"nil":          nil,
		"no server":    {},
		"relative":     {ServerURL: "/mcp"},
		"cc no client": {ServerURL: "https://a/mcp", Flow: FlowClientCredentials},
		"ent no token": {ServerURL: "https://a/mcp", Flow: FlowEnterprise},
		"bad flow":     {ServerURL: "https://a/mcp", Flow: "implicit"},
		"bad cimd url": {ServerURL: "https://a/mcp", ClientIDMetadataURL: "http://a/c.json"},
		"fragment":     {ServerURL: "https://a/mcp#x"},
	} {
		if _, err := NewAuthorizer(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
