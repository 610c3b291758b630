package authserver_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/oauth/authserver"
	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/oauth/resource"
	"github.com/mcpgate/mcpgate/oauth/safehttp"
	"github.com/mcpgate/mcpgate/store"
)

const (
	resourceURI = "https://mcp.example.test/mcp"
	otherRes    = "https://other.example.test/mcp"
	idpIssuer   = "https://idp.example.test"
	webRedirect = "https://app.example.test/cb"
	svcSecret   = "svc-secret-0123456789"
	webSecret   = "web-secret-0123456789"
	alicePass   = "correct horse battery staple"
)

// cheapArgon2 keeps tests fast; production uses DefaultArgon2Params.
var cheapArgon2 = authserver.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}

// env is an authorization server and a protected resource on 127.0.0.1
// with a set of clients, a user, a trusted ID-JAG issuer and a CIMD
// document host.
type env struct {
	t          testing.TB
	st         store.Store
	as         *authserver.Server
	srv        *httptest.Server
	issuer     string
	rs         *resource.Resource
	rsURL      string            // protected handler URL
	resource   string            // the protected resource's canonical URI
	clientKey  *ecdsa.PrivateKey // private_key_jwt key of "jwtsvc"
	idpKey     *ecdsa.PrivateKey // ID-JAG signing key
	cimd       *httptest.Server  // TLS server for metadata documents
	cimdDocs   map[string]func(w http.ResponseWriter, r *http.Request)
	cimdHits   atomic.Int64
	noRedirect *http.Client
}

type envOptions struct {
	path   string
	mutate func(o *authserver.Options)
	// safeCIMD uses the default SSRF-safe client (refusing loopback).
	safeCIMD bool
	// localResource makes the protected resource's URI the real URL of
	// the /mcp handler (for clients that discover it).
	localResource bool
}

func newEnv(t testing.TB, eo *envOptions) *env {
	t.Helper()
	if eo == nil {
		eo = &envOptions{path: "/oauth"}
	}
	ctx := context.Background()
	e := &env{t: t, st: store.NewMemory(), cimdDocs: map[string]func(http.ResponseWriter, *http.Request){}}
	e.noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
	var err error
	e.clientKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	e.idpKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	// The ID-JAG issuer's JWKS.
	idpJWKS := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &e.idpKey.PublicKey, KeyID: "idp-1", Algorithm: "ES256", Use: "sig"}}})
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	t.Cleanup(idpJWKS.Close)

	// Client ID Metadata Documents over TLS on 127.0.0.1.
	e.cimd = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.cimdHits.Add(1)
		if h, ok := e.cimdDocs[r.URL.Path]; ok {
			h(w, r)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(e.cimd.Close)

	mux := http.NewServeMux()
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	e.issuer = e.srv.URL + eo.path

	e.resource = resourceURI
	if eo.localResource {
		e.resource = e.srv.URL + "/mcp"
	}
	pool := x509.NewCertPool()
	pool.AddCert(e.cimd.Certificate())
	opts := &authserver.Options{
		Resources: []authserver.Resource{
			{URI: e.resource, Scopes: []string{"mcp:read", "mcp:write", "mcp:admin"}, DefaultScopes: []string{"mcp:read"}},
			{URI: otherRes, Scopes: []string{"other"}},
		},
		TrustedIssuers: []authserver.TrustedIssuer{{Issuer: idpIssuer, JWKSURL: idpJWKS.URL}},
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		AutoApprove: func(r *http.Request, c *store.Client, _ []string) (string, bool) {
			sub := r.Header.Get("X-Test-Approve-As")
			return sub, sub != ""
		},
	}
	if !eo.safeCIMD {
		opts.MetadataDocuments.HTTPClient = safehttp.NewClient(&safehttp.Options{AllowLoopback: true, NoRedirects: true,
			TLSClientConfig: &tls.Config{RootCAs: pool}, Timeout: 5 * time.Second})
	}
	if eo.mutate != nil {
		eo.mutate(opts)
	}
	e.as, err = authserver.New(ctx, e.issuer, e.st, opts)
	if err != nil {
		t.Fatal(err)
	}
	e.as.Mount(mux)

	// The protected resource, checking tokens against the co-hosted AS.
	e.rs, err = resource.New(e.resource, resource.NewJWTVerifier(e.issuer, e.resource, e.as, &resource.JWTOptions{Revocation: e.as}),
		&resource.Options{AuthorizationServers: []string{e.issuer}, ScopesSupported: []string{"mcp:read", "mcp:write"}, RequiredScopes: []string{"mcp:read"}})
	if err != nil {
		t.Fatal(err)
	}
	e.rs.Mount(mux)
	mux.Handle("/mcp", e.rs.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := resource.PrincipalFromContext(r.Context())
		body, _ := json.Marshal(map[string]any{"sub": p.Subject, "client_id": p.ClientID, "scopes": p.Scopes, "jti": p.TokenID,
			"authorization_forwarded": r.Header.Get("Authorization") != ""})
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})))
	mux.Handle("/mcp/admin", e.rs.Middleware(e.rs.RequireScopes(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "admin ok")
	}), "mcp:admin")))
	e.rsURL = e.srv.URL + "/mcp"

	// Clients and a user.
	jwk := jose.JSONWebKey{Key: &e.clientKey.PublicKey, KeyID: "client-1", Algorithm: "ES256", Use: "sig"}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}})
	now := time.Now()
	for _, c := range []*store.Client{
		{ID: "pub", Kind: store.ClientPreRegistered, Name: "Public App", TokenEndpointAuthMethod: "none",
			RedirectURIs: []string{"http://127.0.0.1/callback", "http://localhost:8080/callback", "http://[::1]/callback"},
			GrantTypes:   []string{"authorization_code", "refresh_token"}},
		{ID: "web", Kind: store.ClientPreRegistered, Name: "Web App", TokenEndpointAuthMethod: "client_secret_basic",
			SecretHash: store.Digest(webSecret), RedirectURIs: []string{webRedirect}, GrantTypes: []string{"authorization_code", "refresh_token"}},
		{ID: "svc", Kind: store.ClientPreRegistered, Name: "Service", TokenEndpointAuthMethod: "client_secret_post",
			SecretHash: store.Digest(svcSecret), GrantTypes: []string{"client_credentials"}, Scope: "mcp:read mcp:write"},
		{ID: "jwtsvc", Kind: store.ClientPreRegistered, Name: "JWT Service", TokenEndpointAuthMethod: "private_key_jwt",
			JWKS: string(jwks), GrantTypes: []string{"client_credentials", meta.GrantTypeJWTBearer}},
	} {
		c.CreatedAt = now
		if err := e.st.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	hash, err := authserver.HashPassword(alicePass, &cheapArgon2)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.CreateUser(ctx, &store.User{Username: "alice", PasswordHash: hash, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) url(p string) string { return e.issuer + p }

// cimdURL registers a metadata document handler and returns its URL.
func (e *env) cimdURL(path string, h func(w http.ResponseWriter, r *http.Request)) string {
	e.cimdDocs[path] = h
	return e.cimd.URL + path
}

// serveDoc returns a handler serving body as JSON with extra headers.
func serveDoc(body string, hdr ...string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		io.WriteString(w, body)
	}
}

// pkce returns a verifier and its S256 challenge.
func pkce() (string, string) {
	v := meta.GenerateCodeVerifier()
	return v, meta.S256Challenge(v)
}

// authzQuery builds an authorization request with defaults.
func authzQuery(clientID, redirect, challenge string, extra ...string) url.Values {
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "state": {"st-123"}, "resource": {resourceURI}}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			q.Del(extra[i])
		} else {
			q.Set(extra[i], extra[i+1])
		}
	}
	return q
}

// authorize sends an authorization request (auto-approved as approveAs if
// not empty) and returns the response without following redirects.
func (e *env) authorize(rawQuery, approveAs string) *http.Response {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.url("/authorize")+"?"+rawQuery, nil)
	req.Header.Set("Accept", "application/json")
	if approveAs != "" {
		req.Header.Set("X-Test-Approve-As", approveAs)
	}
	resp, err := e.noRedirect.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// code runs an auto-approved authorization request and returns the code.
func (e *env) code(q url.Values) string {
	e.t.Helper()
	resp := e.authorize(q.Encode(), "alice")
	if resp.StatusCode != http.StatusFound {
		b, _ := io.ReadAll(resp.Body)
		e.t.Fatalf("authorize: HTTP %d %s", resp.StatusCode, b)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	lq := loc.Query()
	if lq.Get("error") != "" || lq.Get("code") == "" {
		e.t.Fatalf("authorize redirect without code: %s", loc)
	}
	if lq.Get("iss") != e.issuer || lq.Get("state") != q.Get("state") {
		e.t.Fatalf("authorize redirect iss=%q state=%q", lq.Get("iss"), lq.Get("state"))
	}
	return lq.Get("code")
}

// tokenResp is a decoded token endpoint response.
type tokenResp struct {
	Status int
	Header http.Header
	Body   map[string]any
}

func (r *tokenResp) str(k string) string { s, _ := r.Body[k].(string); return s }

// post sends a form to an endpoint with optional Basic credentials.
func (e *env) post(path string, form url.Values, basicID, basicSecret string) *tokenResp {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.url(path), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicID != "" {
		req.SetBasicAuth(url.QueryEscape(basicID), url.QueryEscape(basicSecret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := &tokenResp{Status: resp.StatusCode, Header: resp.Header}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &out.Body); err != nil {
			e.t.Fatalf("%s: non-JSON body %q", path, body)
		}
	}
	return out
}

func (e *env) token(form url.Values, basicID, basicSecret string) *tokenResp {
	return e.post("/token", form, basicID, basicSecret)
}

// signJWT signs claims with key as a compact JWS with a typ header.
func signJWT(t testing.TB, key *ecdsa.PrivateKey, kid, typ string, claims map[string]any) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := jws.CompactSerialize()
	return s
}

// clientAssertion is a private_key_jwt assertion for "jwtsvc".
func (e *env) clientAssertion(jti string, mod ...func(map[string]any)) string {
	now := time.Now()
	c := map[string]any{"iss": "jwtsvc", "sub": "jwtsvc", "aud": e.issuer, "jti": jti, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
	for _, m := range mod {
		m(c)
	}
	return signJWT(e.t, e.clientKey, "client-1", "", c)
}

// idJAG is an ID-JAG from the trusted IdP for "jwtsvc".
func (e *env) idJAG(jti string, mod ...func(map[string]any)) string {
	now := time.Now()
	c := map[string]any{"iss": idpIssuer, "sub": "U019488227", "aud": e.issuer, "client_id": "jwtsvc", "resource": resourceURI,
		"scope": "mcp:read mcp:write", "jti": jti, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "email": "user@example.com"}
	for _, m := range mod {
		m(c)
	}
	return signJWT(e.t, e.idpKey, "idp-1", meta.IDJAGJWTType, c)
}

// callRS calls the protected resource with a bearer token.
func (e *env) callRS(path, token string) (*http.Response, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}
