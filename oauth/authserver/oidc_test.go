package authserver_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/oauth/authserver"
	"github.com/mcpgate/mcpgate/oauth/meta"
)

// fakeIdP is an OpenID provider on 127.0.0.1: discovery, authorize
// (signs the user in at once), token and JWKS.
type fakeIdP struct {
	srv   *httptest.Server
	key   *ecdsa.PrivateKey
	mu    sync.Mutex
	codes map[string]string // code -> nonce
	// tamper changes the ID token claims before signing.
	tamper    func(map[string]any)
	tokenReqs []url.Values
}

func newFakeIdP(t *testing.T) *fakeIdP {
	p := &fakeIdP{codes: map[string]string{}}
	p.key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	mux := http.NewServeMux()
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	iss := p.srv.URL
	writeJSON := func(w http.ResponseWriter, v any) {
		b, _ := json.Marshal(v)
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	}
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"issuer": iss, "authorization_endpoint": iss + "/authorize", "token_endpoint": iss + "/token",
			"jwks_uri": iss + "/jwks", "response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"ES256"}, "code_challenge_methods_supported": []string{"S256"}})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &p.key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	})
	mux.HandleFunc("/authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("code_challenge_method") != "S256" || q.Get("client_id") != "gw-client" {
			http.Error(w, "bad request", 400)
			return
		}
		code := meta.RandomToken(16)
		p.mu.Lock()
		p.codes[code] = q.Get("nonce")
		p.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		p.mu.Lock()
		p.tokenReqs = append(p.tokenReqs, r.PostForm)
		nonce, ok := p.codes[r.PostForm.Get("code")]
		delete(p.codes, r.PostForm.Get("code"))
		p.mu.Unlock()
		id, secret, _ := r.BasicAuth()
		if !ok || id != "gw-client" || secret != "gw-secret" || r.PostForm.Get("code_verifier") == "" {
			w.WriteHeader(400)
			writeJSON(w, map[string]string{"error": "invalid_grant"})
			return
		}
		claims := map[string]any{"iss": iss, "sub": "emp-42", "aud": "gw-client", "exp": time.Now().Add(time.Hour).Unix(),
			"iat": time.Now().Unix(), "nonce": nonce, "email": "Bob@Corp.example", "email_verified": true}
		if p.tamper != nil {
			p.tamper(claims)
		}
		signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: p.key, KeyID: "k1"}}, nil)
		payload, _ := json.Marshal(claims)
		jws, _ := signer.Sign(payload)
		idt, _ := jws.CompactSerialize()
		writeJSON(w, map[string]any{"access_token": "idp-at", "token_type": "Bearer", "id_token": idt, "expires_in": 3600})
	})
	return p
}

func TestEnterpriseOIDCLogin(t *testing.T) {
	idp := newFakeIdP(t)
	for _, tt := range []struct {
		name      string
		claim     string
		tamper    func(map[string]any)
		wantSub   string
		wantError bool
	}{
		{"sub claim", "", nil, "oidc:" + strings.TrimPrefix(idp.srv.URL, "http://") + ":emp-42", false},
		{"verified email", "email", nil, "bob@corp.example", false},
		{"wrong nonce", "", func(c map[string]any) { c["nonce"] = "other" }, "", true},
		{"wrong audience", "", func(c map[string]any) { c["aud"] = "someone-else" }, "", true},
		{"unverified email", "email", func(c map[string]any) { c["email_verified"] = false }, "", true},
		{"expired ID token", "", func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }, "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			idp.tamper = tt.tamper
			e := newEnv(t, &envOptions{path: "/oauth", mutate: func(o *authserver.Options) {
				o.OIDC = &authserver.OIDCLogin{Issuer: idp.srv.URL, ClientID: "gw-client", ClientSecret: "gw-secret", DisplayName: "Corp SSO", SubjectClaim: tt.claim}
				o.DisableLocalLogin = true
			}})
			b := newBrowser(t)
			ver, chal := pkce()
			q := authzQuery("web", webRedirect, chal)
			_, page := b.get(e.url("/authorize") + "?" + q.Encode())
			if !strings.Contains(page, "Sign in with Corp SSO") || strings.Contains(page, `name="password"`) {
				t.Fatalf("login page:\n%s", page)
			}
			resp, page := b.get(e.url("/login/oidc") + "?" + url.Values{"authz": {hidden(page).Get("authz")}}.Encode())
			if tt.wantError {
				if resp.StatusCode < 400 || !strings.Contains(page, "access_denied") {
					t.Fatalf("HTTP %d, want a refusal:\n%s", resp.StatusCode, page)
				}
				return
			}
			if resp.StatusCode != 200 || !strings.Contains(page, "Allow access?") || !strings.Contains(page, html_escape(tt.wantSub)) {
				t.Fatalf("after sign-in: HTTP %d\n%s", resp.StatusCode, page)
			}
			f := hidden(page)
			f.Set("action", "approve")
			resp, _ = b.postForm(e.url("/consent"), f)
			loc, _ := url.Parse(resp.Header.Get("Location"))
			tr := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "code_verifier": {ver}, "redirect_uri": {webRedirect}}, "web", webSecret)
			if tr.Status != 200 || decodeJWT(t, tr.str("access_token"))["sub"] != tt.wantSub {
				t.Fatalf("token: %d %v", tr.Status, tr.Body)
			}
		})
	}
}

func html_escape(s string) string { return strings.ReplaceAll(s, "+", "&#43;") }
