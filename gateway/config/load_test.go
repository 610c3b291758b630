package config

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadFull(t *testing.T) {
	c, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := filepath.Abs("testdata")
	if c.Listen != "127.0.0.1:9090" || c.Auth != "oauth" || c.PublicURL != "https://mcp.example.com" {
		t.Errorf("top level = %q %q %q", c.Listen, c.Auth, c.PublicURL)
	}
	if want := filepath.Join(dir, "state"); c.DataDir != want {
		t.Errorf("data_dir = %q, want %q (relative to the file)", c.DataDir, want)
	}
	if len(c.Upstreams) != 6 {
		t.Fatalf("got %d upstreams, want 6", len(c.Upstreams))
	}
	demo, gh, search, legacy, crm, drive := c.Upstreams[0], c.Upstreams[1], c.Upstreams[2], c.Upstreams[3], c.Upstreams[4], c.Upstreams[5]
	if got := strings.Join(demo.Command, " "); got != "go run ./examples/demo-server" {
		t.Errorf("demo command = %q", got)
	}
	if demo.Env["DEMO_GREETING"] != "hello" || demo.Cwd != filepath.Dir(dir) {
		t.Errorf("demo env/cwd = %v %q", demo.Env, demo.Cwd)
	}
	if demo.EffectivePrefix() != "demo_" {
		t.Errorf("demo prefix = %q, want demo_", demo.EffectivePrefix())
	}
	if gh.Transport != "streamable" || gh.EffectivePrefix() != "gh_" || gh.Timeout != 2*time.Minute {
		t.Errorf("github = %+v", gh)
	}
	if gh.Credentials == nil || gh.Credentials.Type != "bearer" || gh.Credentials.ValueEnv != "GITHUB_TOKEN" {
		t.Errorf("github credentials = %+v", gh.Credentials)
	}
	if search.Prefix == nil || search.EffectivePrefix() != "" {
		t.Errorf(`search prefix: want explicit ""`)
	}
	if search.Headers["X-Client"] != "mcpgate" || search.Credentials.Header != "X-API-Key" ||
		search.Credentials.ValueFile != filepath.Join(dir, "secrets", "search-key") {
		t.Errorf("search = %+v %+v", search, search.Credentials)
	}
	if legacy.Transport != "sse" || legacy.Credentials.Type != "none" {
		t.Errorf("legacy = %+v", legacy)
	}
	if cr := crm.Credentials; cr.ClientID != "mcpgate" || cr.ClientSecretEnv != "CRM_CLIENT_SECRET" ||
		len(cr.Scopes) != 1 || cr.TokenURL != "https://auth.example.com/oauth/token" {
		t.Errorf("crm credentials = %+v", cr)
	}
	if cr := drive.Credentials; cr.Type != "oauth_user" || cr.ClientSecretFile != "/run/secrets/drive" || len(cr.Scopes) != 2 {
		t.Errorf("drive credentials = %+v", cr)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

// TestLoadErrors checks that every decoding error names the file, line and
// column of the problem.
func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name      string
		yaml      string
		line, col int
		want      string
	}{
		{"unknown top-level key", "listen: 127.0.0.1:1\nlisen: x\n", 2, 1, `unknown field "lisen"`},
		{"unknown upstream key", "upstreams:\n  - name: a\n    comand: [x]\n", 3, 5, `unknown field "comand"`},
		{"unknown credentials key", "upstreams:\n  - name: a\n    url: http://x\n    credentials:\n      type: bearer\n      value: s3cret\n", 6, 7, `unknown field "value"`},
		{"wrong type list for string", "listen: [1, 2]\n", 1, 9, "expected a string, got a list"},
		{"wrong type scalar for list", "upstreams: x\n", 1, 12, "sequence"},
		{"command as string", "upstreams:\n  - name: a\n    command: npx server\n", 3, 14, "command must be a list"},
		{"env as list", "upstreams:\n  - name: a\n    env: [A]\n", 3, 10, "sequence was used where mapping is expected"},
		{"bad duration", "upstreams:\n  - name: a\n    timeout: 5 minutes\n", 3, 14, "not a duration"},
		{"duration without unit", "upstreams:\n  - name: a\n    timeout: 30\n", 3, 14, "needs a unit"},
		{"duplicate key", "auth: none\nauth: oauth\n", 2, 1, `"auth" already defined`},
		{"two documents", "auth: none\n---\nauth: oauth\n", 3, 5, "more than one YAML document"},
		{"syntax error", "upstreams:\n  - name: [a\n", 2, 11, "not found"},
		{"top level list", "- a\n", 1, 1, "sequence was used where mapping is expected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), "gw.yaml", tt.yaml)
			_, err := Load(p)
			if err == nil {
				t.Fatal("no error")
			}
			var pe *PositionError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *PositionError", err)
			}
			if pe.Line != tt.line || pe.Column != tt.col {
				t.Errorf("position = %d:%d, want %d:%d (%v)", pe.Line, pe.Column, tt.line, tt.col, err)
			}
			prefix := p + ":" + strconv.Itoa(tt.line) + ":" + strconv.Itoa(tt.col) + ": "
			if !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("error %q does not start with %q", err, prefix)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q repeats a secret", err)
			}
		})
	}
}

func TestLoadEmptyAndMissing(t *testing.T) {
	dir := t.TempDir()
	for _, content := range []string{"", "\n# only a comment\n", "---\n"} {
		c, err := Load(writeFile(t, dir, "empty.yaml", content))
		if err != nil {
			t.Errorf("Load(%q): %v", content, err)
			continue
		}
		if c.Listen != "" || len(c.Upstreams) != 0 {
			t.Errorf("Load(%q) = %+v, want zero config", content, c)
		}
	}
	_, err := Load(filepath.Join(dir, "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v, want ErrNotExist", err)
	}
	big := writeFile(t, dir, "big.yaml", "# "+strings.Repeat("x", maxFileSize)+"\n")
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("big file: err = %v", err)
	}
}

func TestPrefixNullMeansDefault(t *testing.T) {
	c, err := parseYAML("x.yaml", []byte("upstreams:\n  - name: a\n    prefix:\n  - name: b\n    prefix: \"\"\n  - name: c\n    prefix: c.\n"))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"a_", "", "c."} {
		if got := c.Upstreams[i].EffectivePrefix(); got != want {
			t.Errorf("upstream %d prefix = %q, want %q", i, got, want)
		}
	}
}

func TestApplyDefaults(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", "/xdg/data")
	var c Config
	if err := c.ApplyDefaults(); err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8080" || c.Auth != "none" {
		t.Errorf("defaults = %q %q", c.Listen, c.Auth)
	}
	if want := filepath.Join("/xdg/data", "mcpgate"); c.DataDir != want {
		t.Errorf("data dir = %q, want %q", c.DataDir, want)
	}
	c = Config{Listen: ":1", Auth: "oauth", DataDir: "/d"}
	if err := c.ApplyDefaults(); err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":1" || c.Auth != "oauth" || c.DataDir != "/d" {
		t.Errorf("set values changed: %+v", c)
	}
}

func TestDefaultDataDirWithoutXDG(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", "")
	home := t.TempDir()
	t.Setenv("HOME", home)
	d, err := DefaultDataDir()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(d, home) || filepath.Base(d) != "mcpgate" {
		t.Errorf("DefaultDataDir = %q, want under %q ending in mcpgate", d, home)
	}
}

func FuzzLoad(f *testing.F) {
	for _, s := range []string{
		"", "listen: 1\n", "upstreams:\n  - name: a\n    command: [x]\n    timeout: 3s\n",
		"upstreams:\n  - &a {name: a, url: 'http://x'}\n  - *a\n", "a: !!binary x\n", "{", "- - - -",
		"upstreams: [{credentials: {type: bearer}}]", "listen: &x [*x]",
	} {
		f.Add([]byte(s))
	}
	if b, err := os.ReadFile("testdata/full.yaml"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseYAML("fuzz.yaml", data)
		if err != nil {
			if c != nil {
				t.Fatal("config and error both returned")
			}
			return
		}
		_ = c.Validate()
		for i := range c.Upstreams {
			_ = c.Upstreams[i].EffectivePrefix()
		}
	})
}
