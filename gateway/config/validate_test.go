package config

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func ptr[T any](v T) *T { return &v }

func TestValidate(t *testing.T) {
	good := func() Config {
		return Config{Listen: "127.0.0.1:8080", Auth: "none", DataDir: "/d", Upstreams: []Upstream{
			{Name: "a", Command: []string{"srv"}},
			{Name: "b", URL: "https://b.example/mcp"},
		}}
	}
	tests := []struct {
		name   string
		change func(c *Config)
		want   []string // substrings, one per expected problem; nil means valid
	}{
		{"valid", func(c *Config) {}, nil},
		{"valid ipv6 and any host", func(c *Config) { c.Listen = "[::1]:0" }, nil},
		{"valid port only", func(c *Config) { c.Listen = ":8080" }, nil},
		{"listen no port", func(c *Config) { c.Listen = "localhost" }, []string{"listen: \"localhost\" is not host:port"}},
		{"listen bad port", func(c *Config) { c.Listen = "127.0.0.1:99999" }, []string{"port must be a number"}},
		{"listen empty", func(c *Config) { c.Listen = "" }, []string{"listen: empty"}},
		{"auth", func(c *Config) { c.Auth = "basic" }, []string{`auth: "basic" is not supported`}},
		{"new tools", func(c *Config) { c.Inventory = &Inventory{NewTools: "ask"} }, []string{`inventory.new_tools: "ask" is not supported (want allow or approve)`}},
		{"public url", func(c *Config) { c.PublicURL = "mcp.example.com" }, []string{"public_url: must be absolute"}},
		{"public url query", func(c *Config) { c.PublicURL = "https://x/?a=1" }, []string{"public_url: must not have a query"}},
		{"no upstreams", func(c *Config) { c.Upstreams = nil }, []string{"upstreams: none configured"}},
		{"duplicate names", func(c *Config) { c.Upstreams[1].Name = "a" }, []string{`upstream "a": name used twice (upstreams[0] and upstreams[1])`}},
		{"missing name", func(c *Config) { c.Upstreams[0].Name = "" }, []string{"upstreams[0]: name is required"}},
		{"bad name", func(c *Config) { c.Upstreams[0].Name = "my server" }, []string{`upstream "my server": name may contain only`}},
		{"bad prefix", func(c *Config) { c.Upstreams[0].Prefix = ptr("a/") }, []string{`prefix "a/" may contain only`}},
		{"empty prefix ok", func(c *Config) { c.Upstreams[0].Prefix = ptr("") }, nil},
		{"both url and command", func(c *Config) { c.Upstreams[0].URL = "http://x" }, []string{`upstream "a": set either url or command, not both`}},
		{"neither", func(c *Config) { c.Upstreams[0].Command = nil }, []string{`upstream "a": set url (a remote server) or command`}},
		{"url scheme", func(c *Config) { c.Upstreams[1].URL = "ftp://x/mcp" }, []string{`upstream "b": url: scheme "ftp" is not supported (want http or https)`}},
		{"url relative", func(c *Config) { c.Upstreams[1].URL = "/mcp" }, []string{`upstream "b": url: must be absolute`}},
		{"url userinfo", func(c *Config) { c.Upstreams[1].URL = "https://u:pw@x/mcp" }, []string{"must not contain a user name or password"}},
		{"url unparsable", func(c *Config) { c.Upstreams[1].URL = "http://[::1" }, []string{"not a valid URL"}},
		{"transport", func(c *Config) { c.Upstreams[1].Transport = "websocket" }, []string{`transport "websocket" is not supported`}},
		{"transport on command", func(c *Config) { c.Upstreams[0].Transport = "sse" }, []string{"transport applies only to url upstreams"}},
		{"env on url", func(c *Config) { c.Upstreams[1].Env = map[string]string{"A": "1"} }, []string{"env applies only to command upstreams"}},
		{"cwd on url", func(c *Config) { c.Upstreams[1].Cwd = "/tmp" }, []string{"cwd applies only to command upstreams"}},
		{"bad env name", func(c *Config) { c.Upstreams[0].Env = map[string]string{"A=B": "1"} }, []string{`env: "A=B" is not a valid variable name`}},
		{"pass_env on url", func(c *Config) { c.Upstreams[1].PassEnv = []string{"HTTPS_PROXY"} }, []string{"pass_env applies only to command upstreams"}},
		{"pass_env with a value", func(c *Config) { c.Upstreams[0].PassEnv = []string{"TOKEN=abc", ""} }, []string{`pass_env: "TOKEN=abc" is not a variable name`, `pass_env: "" is not a variable name`}},
		{"empty program", func(c *Config) { c.Upstreams[0].Command = []string{""} }, []string{"the program (first element) is empty"}},
		{"headers on command", func(c *Config) { c.Upstreams[0].Headers = map[string]string{"X": "1"} }, []string{"headers apply only to url upstreams"}},
		{"bad header name", func(c *Config) { c.Upstreams[1].Headers = map[string]string{"X Y": "1"} }, []string{`headers: "X Y" is not a valid header name`}},
		{"reserved header", func(c *Config) { c.Upstreams[1].Headers = map[string]string{"Mcp-Session-Id": "1"} }, []string{"Mcp-Session-Id is set by the gateway"}},
		{"protocol modern", func(c *Config) { c.Upstreams[1].Protocol = "2026-07-28" }, nil},
		{"protocol legacy", func(c *Config) { c.Upstreams[0].Protocol = "2025-11-25" }, nil},
		{"protocol unknown", func(c *Config) { c.Upstreams[1].Protocol = "2026-01-01" }, []string{`upstream "b": protocol "2026-01-01" is not a revision the gateway speaks (want one of 2026-07-28, 2025-11-25`}},
		{"negative timeout", func(c *Config) { c.Upstreams[0].Timeout = -1 }, []string{"timeout must not be negative"}},
		{"credentials on command", func(c *Config) { c.Upstreams[0].Credentials = &Credentials{Type: "bearer", ValueEnv: "T"} }, []string{"credentials apply only to url upstreams"}},
		{"credentials none ok", func(c *Config) { c.Upstreams[1].Credentials = &Credentials{Type: "none"} }, nil},
		{"credentials none with extras", func(c *Config) { c.Upstreams[1].Credentials = &Credentials{Type: "none", ValueEnv: "T"} }, []string{"value_env does not apply to type none"}},
		{"credentials missing type", func(c *Config) { c.Upstreams[1].Credentials = &Credentials{} }, []string{"credentials: type is required"}},
		{"credentials unknown type", func(c *Config) { c.Upstreams[1].Credentials = &Credentials{Type: "basic"} }, []string{`type "basic" is not supported`}},
		{"bearer ok", func(c *Config) { c.Upstreams[1].Credentials = &Credentials{Type: "bearer", ValueFile: "/s"} }, nil},
		{"bearer literal ok", func(c *Config) { c.Upstreams[1].Credentials = &Credentials{Type: "bearer", Value: "tok"} }, nil},
		{"bearer no source", func(c *Config) { c.Upstreams[1].Credentials = &Credentials{Type: "bearer"} }, []string{"type bearer needs exactly one of value_env or value_file"}},
		{"bearer two sources", func(c *Config) {
			c.Upstreams[1].Credentials = &Credentials{Type: "bearer", ValueEnv: "T", ValueFile: "/f"}
		}, []string{"type bearer needs exactly one of value_env or value_file"}},
		{"bearer with header", func(c *Config) {
			c.Upstreams[1].Credentials = &Credentials{Type: "bearer", ValueEnv: "T", Header: "X"}
		}, []string{"header does not apply to type bearer"}},
		{"header without name", func(c *Config) { c.Upstreams[1].Credentials = &Credentials{Type: "header", ValueEnv: "T"} }, []string{"type header needs header"}},
		{"header bad name", func(c *Config) {
			c.Upstreams[1].Credentials = &Credentials{Type: "header", Header: "X:Y", ValueEnv: "T"}
		}, []string{`header "X:Y" is not a valid header name`}},
		{"client credentials ok", func(c *Config) {
			c.Upstreams[1].Credentials = &Credentials{Type: "oauth_client_credentials", ClientID: "id", ClientSecretEnv: "S", Scopes: []string{"a", "b"}}
		}, nil},
		{"client credentials incomplete", func(c *Config) {
			c.Upstreams[1].Credentials = &Credentials{Type: "oauth_client_credentials", TokenURL: "tokens", ValueEnv: "X", Scopes: []string{"a b"}}
		}, []string{"value_env does not apply", "needs client_id", "exactly one of client_secret_env or client_secret_file", "token_url: must be absolute", `scope "a b" is not a valid`}},
		{"oauth_user needs oauth auth", func(c *Config) { c.Upstreams[1].Credentials = &Credentials{Type: "oauth_user"} }, []string{"type oauth_user needs auth: oauth"}},
		{"oauth_user ok", func(c *Config) {
			c.Auth = "oauth"
			c.Upstreams[1].Credentials = &Credentials{Type: "oauth_user", ClientID: "id", Scopes: []string{"s"}}
		}, nil},
		{"oauth_user secret without id", func(c *Config) {
			c.Auth = "oauth"
			c.Upstreams[1].Credentials = &Credentials{Type: "oauth_user", ClientSecretEnv: "S", ClientSecretFile: "/f"}
		}, []string{"at most one of client_secret_env and client_secret_file", "a client secret needs client_id"}},
		{"enterprise ok", func(c *Config) {
			c.Auth = "oauth"
			c.Upstreams[1].Credentials = &Credentials{Type: "enterprise", ClientID: "gw", IdPTokenURL: "https://idp.example/token",
				IdPClientID: "gw-at-idp", IdPClientSecretEnv: "S", Scopes: []string{"tools"}}
		}, nil},
		{"enterprise incomplete", func(c *Config) {
			c.Upstreams[1].Credentials = &Credentials{Type: "enterprise", IdPTokenURL: "token", ValueEnv: "X"}
		}, []string{"value_env does not apply", "type enterprise needs client_id", "idp_token_url: must be absolute", "needs idp_client_id",
			"exactly one of idp_client_secret_env or idp_client_secret_file", "type enterprise needs auth: oauth"}},
		{"enterprise fields on another type", func(c *Config) {
			c.Upstreams[1].Credentials = &Credentials{Type: "bearer", ValueEnv: "T", IdPClientID: "x"}
		}, []string{"idp_client_id does not apply to type bearer"}},
		{"many problems at once", func(c *Config) {
			c.Listen = "x"
			c.Auth = "basic"
			c.Upstreams[0].Command = nil
			c.Upstreams[1].URL = "ftp://x"
		}, []string{"listen:", "auth:", `upstream "a": set url`, `upstream "b": url: scheme`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good()
			tt.change(&c)
			err := c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want *ValidationError", err)
			}
			if len(ve.Problems) != len(tt.want) {
				t.Errorf("got %d problems, want %d:\n%v", len(ve.Problems), len(tt.want), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestValidateNeverRepeatsSecrets(t *testing.T) {
	c := Config{Listen: ":1", Auth: "none", Upstreams: []Upstream{{
		Name:        "x",
		URL:         "https://user:hunter2@x/?token=hunter2",
		Headers:     map[string]string{"Bad Header": "hunter2"},
		Credentials: &Credentials{Type: "bearer", Value: "hunter2", ValueEnv: "ALSO"},
	}}}
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("validation error repeats a secret:\n%v", err)
	}
}

func TestLogValueRedacts(t *testing.T) {
	u := Upstream{
		Name:        "x",
		URL:         "https://user:hunter2@x/mcp?key=hunter2",
		Env:         map[string]string{"TOKEN": "hunter2"},
		Headers:     map[string]string{"X-Key": "hunter2"},
		Credentials: &Credentials{Type: "bearer", Value: "hunter2"},
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("upstream", "upstream", u, "credentials", *u.Credentials)
	out := buf.String()
	if strings.Contains(out, "hunter2") {
		t.Errorf("log output contains a secret: %s", out)
	}
	if !strings.Contains(out, "upstream.name=x") || !strings.Contains(out, "credentials.type=bearer") {
		t.Errorf("log output lacks the name or type: %s", out)
	}
}
