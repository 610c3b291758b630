package resource_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/oauth/resource"
)

const (
	res    = "https://gw.example.test/mcp"
	issuer = "https://as.example.test"
)

type fakeAS struct {
	key  *ecdsa.PrivateKey
	jwks *httptest.Server
}

func newFakeAS(t *testing.T) *fakeAS {
	a := &fakeAS{}
	a.key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	a.jwks = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &a.key.PublicKey, KeyID: "k", Algorithm: "ES256", Use: "sig"}}})
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	}))
	t.Cleanup(a.jwks.Close)
	return a
}

func (a *fakeAS) token(t testing.TB, typ string, mod ...func(map[string]any)) string {
	c := map[string]any{"iss": issuer, "sub": "alice", "aud": res, "client_id": "app", "scope": "read write", "jti": "t-1",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	for _, m := range mod {
		m(c)
	}
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: a.key, KeyID: "k"}}, opts)
	p, _ := json.Marshal(c)
	jws, err := s.Sign(p)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

type revoked map[string]bool

func (r revoked) IsRevoked(_ context.Context, jti string) (bool, error) { return r[jti], nil }

func newServer(t *testing.T, v resource.TokenVerifier, opts *resource.Options) (*resource.Resource, *httptest.Server) {
	r, err := resource.New(res, v, opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	r.Mount(mux)
	mux.Handle("/mcp", r.Middleware(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		p, ok := resource.PrincipalFromContext(req.Context())
		if !ok || req.Header.Get("Authorization") != "" {
			http.Error(w, "principal missing or token forwarded", 500)
			return
		}
		io.WriteString(w, p.Subject+"|"+p.ClientID+"|"+strings.Join(p.Scopes, ",")+"|"+p.TokenID)
	})))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return r, srv
}

func call(t *testing.T, u string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestMetadataDocument(t *testing.T) {
	a := newFakeAS(t)
	r, srv := newServer(t, resource.NewJWTVerifier(issuer, res, resource.RemoteJWKS(a.jwks.URL, nil), nil),
		&resource.Options{AuthorizationServers: []string{issuer}, ScopesSupported: []string{"read", "write"}, ResourceName: "GW"})
	if r.MetadataPath() != "/.well-known/oauth-protected-resource/mcp" || r.MetadataURL() != "https://gw.example.test/.well-known/oauth-protected-resource/mcp" {
		t.Fatalf("metadata location %s %s", r.MetadataPath(), r.MetadataURL())
	}
	resp, body := call(t, srv.URL+r.MetadataPath())
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("HTTP %d", resp.StatusCode)
	}
	m, err := meta.ParseProtectedResourceMetadata([]byte(body))
	if err != nil || m.Resource != res || len(m.AuthorizationServers) != 1 || m.AuthorizationServers[0] != issuer || m.ResourceName != "GW" || len(m.ScopesSupported) != 2 {
		t.Fatalf("metadata %s: %v", body, err)
	}
}

func TestBearerMiddleware(t *testing.T) {
	a := newFakeAS(t)
	rev := revoked{"gone": true}
	_, srv := newServer(t, resource.NewJWTVerifier(issuer, res, resource.RemoteJWKS(a.jwks.URL, nil), &resource.JWTOptions{Revocation: rev}),
		&resource.Options{AuthorizationServers: []string{issuer}, RequiredScopes: []string{"read"}})
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tt := range []struct {
		name   string
		hdr    []string
		path   string
		status int
		code   string
		scope  string
		body   string
	}{
		{"valid", []string{"Authorization", "Bearer " + a.token(t, "at+jwt")}, "/mcp", 200, "", "", "alice|app|read,write|t-1"},
		{"application/at+jwt typ", []string{"Authorization", "Bearer " + a.token(t, "application/at+jwt")}, "/mcp", 200, "", "", "alice|app|read,write|t-1"},
		{"lowercase scheme", []string{"Authorization", "bearer " + a.token(t, "at+jwt")}, "/mcp", 200, "", "", "alice|app|read,write|t-1"},
		{"no token", nil, "/mcp", 401, "", "read", ""},
		{"not bearer", []string{"Authorization", "Basic Zm9vOmJhcg=="}, "/mcp", 400, "invalid_request", "read", ""},
		{"two headers", []string{"Authorization", "Bearer a", "Authorization", "Bearer b"}, "/mcp", 400, "invalid_request", "read", ""},
		{"token in query too", []string{"Authorization", "Bearer " + a.token(t, "at+jwt")}, "/mcp?access_token=x", 400, "invalid_request", "read", ""},
		{"garbage", []string{"Authorization", "Bearer not-a-jwt"}, "/mcp", 401, "invalid_token", "read", ""},
		{"untyped JWT", []string{"Authorization", "Bearer " + a.token(t, "")}, "/mcp", 401, "invalid_token", "read", ""},
		{"ID token typ", []string{"Authorization", "Bearer " + a.token(t, "JWT")}, "/mcp", 401, "invalid_token", "read", ""},
		{"wrong audience", []string{"Authorization", "Bearer " + a.token(t, "at+jwt", func(c map[string]any) { c["aud"] = "https://other.example.test/mcp" })}, "/mcp", 401, "invalid_token", "read", ""},
		{"audience array", []string{"Authorization", "Bearer " + a.token(t, "at+jwt", func(c map[string]any) { c["aud"] = []string{"x", res} })}, "/mcp", 200, "", "", "alice|app|read,write|t-1"},
		{"wrong issuer", []string{"Authorization", "Bearer " + a.token(t, "at+jwt", func(c map[string]any) { c["iss"] = "https://evil.example.test" })}, "/mcp", 401, "invalid_token", "read", ""},
		{"expired", []string{"Authorization", "Bearer " + a.token(t, "at+jwt", func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() })}, "/mcp", 401, "invalid_token", "read", ""},
		{"no exp", []string{"Authorization", "Bearer " + a.token(t, "at+jwt", func(c map[string]any) { delete(c, "exp") })}, "/mcp", 401, "invalid_token", "read", ""},
		{"revoked", []string{"Authorization", "Bearer " + a.token(t, "at+jwt", func(c map[string]any) { c["jti"] = "gone" })}, "/mcp", 401, "invalid_token", "read", ""},
		{"insufficient scope", []string{"Authorization", "Bearer " + a.token(t, "at+jwt", func(c map[string]any) { c["scope"] = "write" })}, "/mcp", 403, "insufficient_scope", "write read", ""},
		{"foreign key", []string{"Authorization", "Bearer " + func() string {
			s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: other, KeyID: "k"}}, (&jose.SignerOptions{}).WithType("at+jwt"))
			p, _ := json.Marshal(map[string]any{"iss": issuer, "sub": "x", "aud": res, "exp": time.Now().Add(time.Hour).Unix(), "scope": "read"})
			j, _ := s.Sign(p)
			o, _ := j.CompactSerialize()
			return o
		}()}, "/mcp", 401, "invalid_token", "read", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := call(t, srv.URL+tt.path, tt.hdr...)
			if resp.StatusCode != tt.status {
				t.Fatalf("HTTP %d, want %d (%s)", resp.StatusCode, tt.status, body)
			}
			if tt.status == 200 {
				if body != tt.body {
					t.Fatalf("body %q, want %q", body, tt.body)
				}
				return
			}
			ch, err := meta.ParseBearerChallenge(resp.Header)
			if err != nil || ch == nil {
				t.Fatalf("challenge %q: %v", resp.Header.Get("WWW-Authenticate"), err)
			}
			if ch.Error != tt.code || ch.Scope != tt.scope || ch.ResourceMetadata != "https://gw.example.test/.well-known/oauth-protected-resource/mcp" {
				t.Fatalf("challenge = %+v", ch)
			}
			if strings.Contains(resp.Header.Get("WWW-Authenticate"), "eyJ") {
				t.Fatal("challenge echoes the token")
			}
		})
	}
}

func TestIntrospectionVerifier(t *testing.T) {
	var answer map[string]any
	var gotAuth string
	is := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		id, secret, _ := r.BasicAuth()
		id, _ = url.QueryUnescape(id) // RFC 6749 §2.3.1 form-encodes both parts
		secret, _ = url.QueryUnescape(secret)
		gotAuth = id + ":" + secret
		if r.PostForm.Get("token") != "opaque-token" {
			answer = map[string]any{"active": false}
		}
		b, _ := json.Marshal(answer)
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	}))
	defer is.Close()
	v := resource.NewIntrospectionVerifier(is.URL, "rs client", "s:cret", res, issuer, nil)
	for _, tt := range []struct {
		name   string
		answer map[string]any
		ok     bool
	}{
		{"active", map[string]any{"active": true, "sub": "bob", "client_id": "c", "scope": "read", "aud": res, "iss": issuer, "jti": "j", "exp": time.Now().Add(time.Hour).Unix()}, true},
		{"audience list", map[string]any{"active": true, "sub": "bob", "aud": []string{"z", res}, "iss": issuer}, true},
		{"inactive", map[string]any{"active": false}, false},
		{"wrong audience", map[string]any{"active": true, "sub": "bob", "aud": "https://x.example.test", "iss": issuer}, false},
		{"wrong issuer", map[string]any{"active": true, "sub": "bob", "aud": res, "iss": "https://evil.example.test"}, false},
		{"refresh token", map[string]any{"active": true, "sub": "bob", "aud": res, "iss": issuer, "token_type": "refresh_token"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			answer = tt.answer
			p, err := v.Verify(context.Background(), "opaque-token")
			if tt.ok {
				if err != nil || p.Subject != "bob" {
					t.Fatalf("Verify = %+v, %v", p, err)
				}
				if gotAuth != "rs client:s:cret" {
					t.Fatalf("basic auth %q", gotAuth)
				}
				return
			}
			if !errors.Is(err, resource.ErrInvalidToken) {
				t.Fatalf("Verify err = %v, want ErrInvalidToken", err)
			}
		})
	}
}

func TestVerifierUnavailable(t *testing.T) {
	// A JWKS that cannot be fetched is an outage (503), not a bad token.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	a := newFakeAS(t)
	_, srv := newServer(t, resource.NewIntrospectionVerifier(dead.URL, "c", "s", res, "", nil), nil)
	resp, _ := call(t, srv.URL+"/mcp", "Authorization", "Bearer "+a.token(t, "at+jwt"))
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("HTTP %d, want 503", resp.StatusCode)
	}
}

func TestNewRefusesBadResource(t *testing.T) {
	for _, u := range []string{"gw.example.test", "https://gw.example.test/mcp#frag", ""} {
		if _, err := resource.New(u, resource.NewIntrospectionVerifier("https://x", "", "", u, "", nil), nil); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
}

func BenchmarkJWTVerify(b *testing.B) {
	a := &fakeAS{}
	a.key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	v := resource.NewJWTVerifier(issuer, res, staticKeys{&a.key.PublicKey}, nil)
	tok := a.token(b, "at+jwt")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

type staticKeys struct{ pub *ecdsa.PublicKey }

func (s staticKeys) VerifySignature(_ context.Context, tok string) ([]byte, error) {
	j, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, err
	}
	return j.Verify(s.pub)
}
