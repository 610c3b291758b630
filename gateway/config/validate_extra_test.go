package config

import (
	"strings"
	"testing"
)

func TestValidateOAuthSection(t *testing.T) {
	base := func() *Config {
		c := &Config{Listen: "127.0.0.1:8080", Auth: AuthOAuth, Upstreams: []Upstream{{Name: "a", Command: []string{"x"}}}}
		return c
	}
	good := base()
	good.OAuth = &OAuth{TrustedIssuers: []TrustedIssuer{{Issuer: "https://idp.example.com", JWKSURL: "https://idp.example.com/keys"}},
		OIDC: &OIDCLogin{Issuer: "https://idp.example.com", ClientID: "gw", ClientSecretEnv: "S"}}
	if err := good.Validate(); err != nil {
		t.Errorf("valid oauth section refused: %v", err)
	}
	bad := base()
	bad.Auth = AuthNone
	bad.OAuth = &OAuth{TrustedIssuers: []TrustedIssuer{{Issuer: "not a url"}}, OIDC: &OIDCLogin{Issuer: "https://idp"}}
	err := bad.Validate()
	for _, want := range []string{"only used with auth: oauth", "trusted_issuers[0].issuer", "trusted_issuers[0].jwks_url", "oidc.client_id", "client_secret_env and client_secret_file"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
}
