package config

import (
	"slices"
	"testing"
)

func TestIdentityAttributes(t *testing.T) {
	for _, tt := range []struct {
		name string
		c    Config
		want []string
	}{
		{"no auth", Config{Auth: AuthNone, OAuth: &OAuth{OIDC: &OIDCLogin{Issuer: "https://idp.example"}}}, nil},
		{"oauth without IdP", Config{Auth: AuthOAuth}, nil},
		{"oauth with empty section", Config{Auth: AuthOAuth, OAuth: &OAuth{}}, nil},
		{"trusted issuer", Config{Auth: AuthOAuth, OAuth: &OAuth{TrustedIssuers: []TrustedIssuer{{Issuer: "https://idp.example"}}}}, []string{"email", "groups", "idp", "name", "roles"}},
		{"oidc", Config{Auth: AuthOAuth, OAuth: &OAuth{OIDC: &OIDCLogin{Issuer: "https://idp.example"}}}, []string{"email", "groups", "idp", "name", "roles"}},
	} {
		if got := tt.c.IdentityAttributes(); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
