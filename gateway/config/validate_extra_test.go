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

func TestValidateClientAdmission(t *testing.T) {
	src := `
auth: oauth
oauth:
  clients:
    cimd:
      mode: allowlist
      allow: ["https://apps.example.com/mcp/", "*.corp.example.com", "tools.example.org:8443"]
    dynamic:
      mode: approval
      grant_types: [authorization_code, refresh_token, client_credentials]
      rate_limit: {per_minute: 5, burst: 10}
      max_clients: 500
      max_metadata_bytes: 8192
      unused_ttl: 6h
    pre_registered:
      mode: allowlist
      allow: [reporting-robot]
      grant_types: [client_credentials, jwt-bearer]
  introspection_clients: [rs-billing]
upstreams:
  - name: a
    command: [x]
`
	c, err := parseYAML("t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyDefaults(); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("valid clients section refused: %v", err)
	}
	d := c.OAuth.Clients.Dynamic
	if d.RateLimit.PerMinute != 5 || d.RateLimit.Burst != 10 || d.MaxClients != 500 || d.UnusedTTL.Hours() != 6 || d.Mode != ClientsApproval {
		t.Fatalf("dynamic = %+v", d)
	}
	if g := NormalizeGrantTypes(c.OAuth.Clients.PreRegistered.GrantTypes); g[1] != GrantTypeJWTBearer {
		t.Fatalf("grant types = %v", g)
	}

	bad := &Config{Listen: "127.0.0.1:8080", Auth: AuthOAuth, Upstreams: []Upstream{{Name: "a", Command: []string{"x"}}},
		OAuth: &OAuth{Clients: &Clients{
			CIMD:          &ClientPath{Mode: "sometimes", Allow: []string{"http://apps.example.com/"}, GrantTypes: []string{"implicit"}},
			Dynamic:       &DynamicClients{Mode: ClientsAllowlist, RateLimit: &RateLimit{PerMinute: -1}, MaxClients: -1, MaxMetadataBytes: 1 << 30, UnusedTTL: -1},
			PreRegistered: &ClientPath{Mode: ClientsOpen, Allow: []string{"robot"}, GrantTypes: []string{}},
		}, IntrospectionClients: []string{"has space"}}}
	err = bad.Validate()
	for _, want := range []string{
		`oauth.clients.cimd.mode: "sometimes"`, "oauth.clients.cimd.allow[0]", `oauth.clients.cimd.grant_types[0]: "implicit"`,
		"oauth.clients.dynamic: mode allowlist needs a non-empty allow list", "rate_limit", "max_clients: negative", "max_metadata_bytes", "unused_ttl: negative",
		"oauth.clients.pre_registered.allow: only used with mode: allowlist", "oauth.clients.pre_registered.grant_types: empty",
		"oauth.introspection_clients[0]",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\ndoes not mention %q", err, want)
		}
	}
	for _, a := range []string{"https://x.example/q?a=1", "exa mple.com", "a/b", ".example.com", "ftp://x.example/"} {
		if checkAllowEntry(a, "dynamic") == nil {
			t.Errorf("allow entry %q accepted", a)
		}
	}
	for _, a := range []string{"example.com", "*.example.com", "127.0.0.1", "[::1]", "example.com:8443", "http://127.0.0.1/cb", "https://apps.example.com/mcp/"} {
		if err := checkAllowEntry(a, "dynamic"); err != nil {
			t.Errorf("allow entry %q refused: %v", a, err)
		}
	}
}
