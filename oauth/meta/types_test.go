package meta

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"
)

func TestWellKnownURLs(t *testing.T) {
	tests := []struct {
		in      string
		prm     []string
		as      []string
		wantErr bool
	}{
		{
			in:  "https://example.com/public/mcp",
			prm: []string{"https://example.com/.well-known/oauth-protected-resource/public/mcp", "https://example.com/.well-known/oauth-protected-resource"},
			as: []string{
				"https://example.com/.well-known/oauth-authorization-server/public/mcp",
				"https://example.com/.well-known/openid-configuration/public/mcp",
				"https://example.com/public/mcp/.well-known/openid-configuration",
			},
		},
		{
			in:  "https://auth.example.com",
			prm: []string{"https://auth.example.com/.well-known/oauth-protected-resource"},
			as:  []string{"https://auth.example.com/.well-known/oauth-authorization-server", "https://auth.example.com/.well-known/openid-configuration"},
		},
		{
			in:  "http://127.0.0.1:8080/",
			prm: []string{"http://127.0.0.1:8080/.well-known/oauth-protected-resource"},
			as:  []string{"http://127.0.0.1:8080/.well-known/oauth-authorization-server", "http://127.0.0.1:8080/.well-known/openid-configuration"},
		},
		{
			in:  "https://auth.example.com/tenant1/",
			prm: []string{"https://auth.example.com/.well-known/oauth-protected-resource/tenant1", "https://auth.example.com/.well-known/oauth-protected-resource"},
			as: []string{
				"https://auth.example.com/.well-known/oauth-authorization-server/tenant1",
				"https://auth.example.com/.well-known/openid-configuration/tenant1",
				"https://auth.example.com/tenant1/.well-known/openid-configuration",
			},
		},
		{in: "example.com/mcp", wantErr: true},
		{in: "ftp://example.com/x", wantErr: true},
		{in: "https://user:pw@example.com/x", wantErr: true},
	}
	for _, tt := range tests {
		prm, err1 := ProtectedResourceMetadataURLs(tt.in)
		as, err2 := AuthorizationServerMetadataURLs(tt.in)
		if tt.wantErr {
			if err1 == nil || err2 == nil {
				t.Errorf("%q: want errors, got %v %v", tt.in, err1, err2)
			}
			continue
		}
		if err1 != nil || err2 != nil {
			t.Fatalf("%q: %v %v", tt.in, err1, err2)
		}
		if !reflect.DeepEqual(prm, tt.prm) {
			t.Errorf("PRM URLs(%q) = %q, want %q", tt.in, prm, tt.prm)
		}
		if !reflect.DeepEqual(as, tt.as) {
			t.Errorf("AS URLs(%q) = %q, want %q", tt.in, as, tt.as)
		}
	}
	if u, _ := AuthorizationServerMetadataURL("https://a.example/t"); u != "https://a.example/.well-known/oauth-authorization-server/t" {
		t.Errorf("AuthorizationServerMetadataURL = %q", u)
	}
	if u, _ := ProtectedResourceMetadataURL("https://a.example/mcp"); u != "https://a.example/.well-known/oauth-protected-resource/mcp" {
		t.Errorf("ProtectedResourceMetadataURL = %q", u)
	}
}

func TestOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"HTTPS://Example.COM:443/x": "https://example.com",
		"http://[::1]:80/":          "http://[::1]",
		"http://127.0.0.1:8080/mcp": "http://127.0.0.1:8080",
	} {
		got, err := Origin(in)
		if err != nil || got != want {
			t.Errorf("Origin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := Origin("/relative"); err == nil {
		t.Error("Origin accepted relative URL")
	}
}

func TestPKCE(t *testing.T) {
	// RFC 7636 Appendix B.
	v := "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	if got := S256Challenge(v); got != "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" {
		t.Fatalf("S256Challenge = %q", got)
	}
	if !VerifyS256(v, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM") || VerifyS256(v+"x", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM") {
		t.Fatal("VerifyS256 wrong")
	}
	g1, g2 := GenerateCodeVerifier(), GenerateCodeVerifier()
	if g1 == g2 {
		t.Fatal("verifiers repeat")
	}
	if err := ValidateCodeVerifier(g1); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"short", strings.Repeat("a", 129), strings.Repeat("a", 42) + "!"} {
		if ValidateCodeVerifier(bad) == nil {
			t.Errorf("ValidateCodeVerifier(%q) accepted", bad)
		}
	}
}

func TestParseAuthorizationServerMetadata(t *testing.T) {
	good := `{"issuer":"https://as.example","authorization_endpoint":"https://as.example/authorize","token_endpoint":"https://as.example/token",
	"code_challenge_methods_supported":["S256"],"client_id_metadata_document_supported":true,"authorization_response_iss_parameter_supported":true,
	"authorization_grant_profiles_supported":["urn:ietf:params:oauth:grant-profile:id-jag"],"x_vendor":{"a":1}}`
	m, err := ParseAuthorizationServerMetadata([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if !m.SupportsPKCES256() || !m.ClientIDMetadataDocumentSupported || !m.AuthorizationResponseIssParameterSupported ||
		m.AuthorizationGrantProfilesSupported[0] != GrantProfileIDJAG {
		t.Fatalf("decoded %+v", m)
	}
	if !strings.Contains(string(m.Unknown), "x_vendor") {
		t.Fatalf("unknown members not preserved: %s", m.Unknown)
	}
	out, err := json.Marshal(m)
	if err != nil || !strings.Contains(string(out), `"x_vendor":{"a":1}`) {
		t.Fatalf("re-encode: %s %v", out, err)
	}
	if err := m.ValidateIssuer("https://as.example/"); err != nil {
		t.Fatal(err)
	}
	if err := m.ValidateIssuer("https://evil.example"); err == nil {
		t.Fatal("ValidateIssuer accepted a different issuer")
	}
	for name, bad := range map[string]string{
		"dup key":    `{"issuer":"https://a","issuer":"https://b"}`,
		"no issuer":  `{"token_endpoint":"https://a/token"}`,
		"bad scheme": `{"issuer":"https://a","token_endpoint":"javascript:alert(1)"}`,
		"fragment":   `{"issuer":"https://a#x"}`,
		"query":      `{"issuer":"https://a?x=1"}`,
		"wrong type": `{"issuer":"https://a","code_challenge_methods_supported":"S256"}`,
		"bad utf8":   "{\"issuer\":\"https://a\xff\"}",
		"not object": `[]`,
		"trailing":   `{"issuer":"https://a"} x`,
	} {
		if _, err := ParseAuthorizationServerMetadata([]byte(bad)); err == nil {
			t.Errorf("%s: accepted %q", name, bad)
		}
	}
}

func TestParseProtectedResourceMetadata(t *testing.T) {
	m, err := ParseProtectedResourceMetadata([]byte(`{"resource":"https://mcp.example/mcp","authorization_servers":["https://as.example"],"scopes_supported":["a","b"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if m.Resource != "https://mcp.example/mcp" || len(m.ScopesSupported) != 2 {
		t.Fatalf("%+v", m)
	}
	for _, bad := range []string{`{}`, `{"resource":"mcp.example"}`, `{"resource":"https://a","authorization_servers":["nope"]}`} {
		if _, err := ParseProtectedResourceMetadata([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

func TestClientMetadataAndInformation(t *testing.T) {
	doc := `{"client_id":"https://app.example/client.json","client_name":"App","redirect_uris":["http://localhost:3000/callback"],"token_endpoint_auth_method":"none","x":1}`
	m, err := ParseClientMetadata([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.ValidateClientIDMetadataDocument("https://app.example/client.json"); err != nil {
		t.Fatal(err)
	}
	if err := m.ValidateClientIDMetadataDocument("https://app.example/other.json"); err == nil {
		t.Fatal("accepted client_id mismatch")
	}
	for _, bad := range []string{"http://app.example/c.json", "https://app.example", "https://app.example/", "https://app.example/a/../c", "https://u@app.example/c", "https://app.example/c#f"} {
		if ValidateClientIDMetadataURL(bad) == nil {
			t.Errorf("ValidateClientIDMetadataURL(%q) accepted", bad)
		}
	}
	ci, err := ParseClientInformation([]byte(`{"client_id":"abc","client_secret":"s","client_id_issued_at":5,"redirect_uris":["http://localhost/cb"],"extra":true}`))
	if err != nil {
		t.Fatal(err)
	}
	if ci.ClientID != "abc" || ci.ClientSecret != "s" || ci.ClientIDIssuedAt != 5 || ci.RedirectURIs[0] != "http://localhost/cb" {
		t.Fatalf("%+v", ci)
	}
	if _, err := ParseClientInformation([]byte(`{"client_secret":"s"}`)); err == nil {
		t.Fatal("accepted registration without client_id")
	}
}

func TestTokenAndError(t *testing.T) {
	tr, err := ParseTokenResponse([]byte(`{"access_token":"a","token_type":"Bearer","expires_in":60,"refresh_token":"r","scope":"x y"}`))
	if err != nil || tr.AccessToken != "a" || tr.ExpiresIn != 60 || tr.RefreshToken != "r" {
		t.Fatalf("%+v %v", tr, err)
	}
	for _, bad := range []string{`{"token_type":"Bearer"}`, `{"access_token":"a"}`, `{"access_token":"a","token_type":"Bearer","expires_in":-1}`} {
		if _, err := ParseTokenResponse([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
	e, err := ParseError([]byte(`{"error":"invalid_grant","error_description":"expired"}`), 400)
	if err != nil {
		t.Fatal(err)
	}
	var target *Error
	if !errors.As(error(e), &target) || target.Code != ErrInvalidGrant || !strings.Contains(e.Error(), "expired") || !strings.Contains(e.Error(), "400") {
		t.Fatalf("%v", e)
	}
	if _, err := ParseError([]byte(`{"error_description":"x"}`), 400); err == nil {
		t.Fatal("accepted error without code")
	}
}

func FuzzParseMetadata(f *testing.F) {
	f.Add([]byte(`{"issuer":"https://as.example","code_challenge_methods_supported":["S256"]}`))
	f.Add([]byte(`{"resource":"https://mcp.example","authorization_servers":["https://as.example"]}`))
	f.Add([]byte(`{"client_id":"https://a/c.json","client_name":"n","redirect_uris":["http://localhost/cb"]}`))
	f.Add([]byte(`{"access_token":"a","token_type":"Bearer","expires_in":1}`))
	f.Add([]byte(`{"error":"invalid_request"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if m, err := ParseAuthorizationServerMetadata(data); err == nil {
			if m.Issuer == "" {
				t.Fatal("accepted metadata without issuer")
			}
			if _, err := json.Marshal(m); err != nil {
				t.Fatalf("re-encode AS metadata: %v", err)
			}
		}
		if m, err := ParseProtectedResourceMetadata(data); err == nil && m.Resource == "" {
			t.Fatal("accepted PRM without resource")
		}
		if m, err := ParseClientMetadata(data); err == nil {
			_ = m.ValidateClientIDMetadataDocument("https://a/c.json")
		}
		if c, err := ParseClientInformation(data); err == nil && c.ClientID == "" {
			t.Fatal("accepted registration without client_id")
		}
		if tr, err := ParseTokenResponse(data); err == nil && (tr.AccessToken == "" || tr.ExpiresIn < 0) {
			t.Fatal("accepted bad token response")
		}
		if e, err := ParseError(data, 400); err == nil && e.Code == "" {
			t.Fatal("accepted error without code")
		}
	})
}

func BenchmarkParseAuthorizationServerMetadata(b *testing.B) {
	data := []byte(`{"issuer":"https://as.example","authorization_endpoint":"https://as.example/authorize","token_endpoint":"https://as.example/token","code_challenge_methods_supported":["S256"],"grant_types_supported":["authorization_code","refresh_token"]}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseAuthorizationServerMetadata(data); err != nil {
			b.Fatal(err)
		}
	}
}
