package authserver

import (
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/oauth/meta"
)

func FuzzParseTokenRequest(f *testing.F) {
	f.Add("grant_type=authorization_code&code=abc&code_verifier=xyz&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&client_id=pub", "")
	f.Add("grant_type=client_credentials&resource=https%3A%2F%2Fmcp.example%2Fmcp&scope=a+b", "Basic c3ZjOnNlY3JldA==")
	f.Add("grant_type=refresh_token&refresh_token=r&grant_type=x", "")
	f.Add("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b.c", "Basic %%%")
	f.Add("%zz", "Bearer x")
	f.Add("grant_type=\xff", "Basic Og==")
	f.Fuzz(func(t *testing.T, body, auth string) {
		req, err := ParseTokenRequest(body, auth)
		if err != nil {
			var oe *meta.Error
			if !errors.As(err, &oe) || oe.Code == "" || oe.StatusCode == 0 {
				t.Fatalf("error is not an OAuth error with status: %v", err)
			}
			return
		}
		if req.GrantType == "" {
			t.Fatal("accepted a request without grant_type")
		}
		if vals, _ := url.ParseQuery(body); len(vals["grant_type"]) != 1 {
			t.Fatalf("accepted repeated or missing grant_type: %q", body)
		}
		if req.HasBasic && req.BasicID == "" {
			t.Fatal("empty Basic client id accepted")
		}
	})
}

func FuzzParseAuthorizeRequest(f *testing.F) {
	f.Add("response_type=code&client_id=pub&redirect_uri=http%3A%2F%2F127.0.0.1%3A5%2Fcb&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&state=s&resource=https%3A%2F%2Fmcp.example%2Fmcp")
	f.Add("client_id=a&redirect_uri=javascript:alert(1)")
	f.Add("client_id=a&redirect_uri=http://evil.example/cb")
	f.Add("client_id=a&client_id=b")
	f.Add("redirect_uri=https://x/%00#frag")
	f.Fuzz(func(t *testing.T, raw string) {
		req, err := ParseAuthorizeRequest(raw)
		if err != nil {
			var oe *meta.Error
			if !errors.As(err, &oe) || oe.Code == "" {
				t.Fatalf("error is not an OAuth error: %v", err)
			}
			return
		}
		u, perr := url.Parse(req.RedirectURI)
		if perr != nil || !u.IsAbs() || strings.Contains(req.RedirectURI, "#") {
			t.Fatalf("accepted redirect_uri %q", req.RedirectURI)
		}
		if strings.EqualFold(u.Scheme, "http") && !isLoopbackRedirectHost(u.Hostname()) {
			t.Fatalf("accepted plain-http redirect to %q", u.Host)
		}
		if req.ClientID == "" {
			t.Fatal("accepted a request without client_id")
		}
	})
}

func TestParseBasic(t *testing.T) {
	for _, tt := range []struct {
		h, id, secret string
		ok            bool
	}{
		{"Basic " + b64("svc:s3cret"), "svc", "s3cret", true},
		{"basic " + b64("a%3Ab:c%20d"), "a:b", "c d", true},
		{"Basic " + b64(":secret"), "", "", false},
		{"Basic " + b64("a%zz:b"), "", "", false},
		{"Bearer abc", "", "", false},
		{"Basic !!!", "", "", false},
	} {
		id, secret, err := parseBasic(tt.h)
		if (err == nil) != tt.ok || id != tt.id || secret != tt.secret {
			t.Errorf("parseBasic(%q) = %q, %q, %v", tt.h, id, secret, err)
		}
	}
}

func TestPasswordHash(t *testing.T) {
	p := &Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}
	h, err := HashPassword("hunter2-hunter2", p)
	if err != nil || !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("HashPassword = %q, %v", h, err)
	}
	h2, _ := HashPassword("hunter2-hunter2", p)
	if h == h2 {
		t.Fatal("hashes are not salted")
	}
	for _, tt := range []struct {
		pw, hash string
		ok       bool
		err      bool
	}{
		{"hunter2-hunter2", h, true, false},
		{"hunter2-hunter3", h, false, false},
		{"x", "$argon2i$v=19$m=64,t=1,p=1$c2FsdA$aGFzaA", false, true},
		{"x", "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdA$aGFzaA", false, true},
		{"x", "plain", false, true},
	} {
		ok, err := VerifyPassword(tt.pw, tt.hash)
		if ok != tt.ok || (err != nil) != tt.err {
			t.Errorf("VerifyPassword(%q, %q) = %v, %v", tt.pw, tt.hash, ok, err)
		}
	}
	if _, err := HashPassword("", p); err == nil {
		t.Error("empty password accepted")
	}
}

func TestCacheLifetime(t *testing.T) {
	for _, tt := range []struct {
		cc   string
		want int
	}{
		{"", 60}, {"max-age=300", 300}, {"max-age=5", 60}, {"max-age=999999999", 86400},
		{"no-store", 0}, {"public, no-cache", 0}, {"max-age=abc", 60}, {`max-age="120"`, 120},
	} {
		h := map[string][]string{"Cache-Control": {tt.cc}}
		if got := cacheLifetime(h, 60e9, 86400e9); int(got.Seconds()) != tt.want {
			t.Errorf("%q: %v, want %ds", tt.cc, got, tt.want)
		}
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
