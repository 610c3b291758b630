package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func testExpander(env map[string]string) *expander {
	return &expander{
		lookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		home:      "/home/u",
		workspace: "/work/proj",
	}
}

func TestParseServers(t *testing.T) {
	env := map[string]string{"TOKEN": "t0k", "KEY": "k3y", "EMPTY": ""}
	tests := []struct {
		name string
		json string
		want []Upstream
	}{
		{
			name: "claude desktop stdio",
			json: `{"mcpServers": {"fs": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"], "env": {"DEBUG": "1", "PORT": 3000}}}, "globalShortcut": "x"}`,
			want: []Upstream{{Name: "fs", Command: []string{"npx", "-y", "@modelcontextprotocol/server-filesystem", "/tmp"}, Env: map[string]string{"DEBUG": "1", "PORT": "3000"}}},
		},
		{
			name: "cursor remote with bearer and other header",
			json: `{"mcpServers": {"api": {"url": "https://api.example.com/mcp", "headers": {"Authorization": "Bearer ${env:TOKEN}", "X-Org": "acme"}}}}`,
			want: []Upstream{{Name: "api", URL: "https://api.example.com/mcp",
				Headers:     map[string]string{"X-Org": "acme"},
				Credentials: &Credentials{Type: "bearer", Value: "t0k"}}},
		},
		{
			name: "authorization that is not bearer",
			json: `{"mcpServers": {"api": {"url": "https://x/mcp", "headers": {"authorization": "Token abc"}}}}`,
			want: []Upstream{{Name: "api", URL: "https://x/mcp", Credentials: &Credentials{Type: "header", Header: "authorization", Value: "Token abc"}}},
		},
		{
			name: "claude code types and ${VAR:-default}",
			json: `{"mcpServers": {
				"h": {"type": "http", "url": "${BASE:-https://h.example}/mcp", "headers": {"X-API-Key": "${KEY}"}},
				"s": {"type": "sse", "url": "https://s.example/sse"},
				"p": {"type": "stdio", "command": "${userHome}/bin/srv", "args": ["--dir", "${workspaceFolder}${/}data"], "cwd": "sub"}
			}}`,
			want: []Upstream{
				{Name: "h", URL: "https://h.example/mcp", Transport: "streamable", Headers: map[string]string{"X-API-Key": "k3y"}},
				{Name: "s", URL: "https://s.example/sse", Transport: "sse"},
				{Name: "p", Command: []string{"/home/u/bin/srv", "--dir", "/work/proj" + string(os.PathSeparator) + "data"}, Cwd: "/work/proj/sub"},
			},
		},
		{
			name: "vs code servers with jsonc",
			json: `// VS Code user mcp.json
			{
				"inputs": [{"type": "promptString", "id": "k", "password": true}],
				"servers": {
					/* a local server */
					"local": {"type": "stdio", "command": "node", "args": ["server.js",], "env": {"A": "${env:EMPTY}"},},
					"remote": {"type": "http", "url": "https://r.example/mcp", "dev": {"watch": "x"}}, // trailing
				},
			}`,
			want: []Upstream{
				{Name: "local", Command: []string{"node", "server.js"}, Env: map[string]string{"A": ""}},
				{Name: "remote", URL: "https://r.example/mcp", Transport: "streamable"},
			},
		},
		{
			name: "disabled skipped, cline extras, windsurf serverUrl, timeout",
			json: `{"mcpServers": {
				"off": {"command": "x", "disabled": true},
				"on": {"command": "y", "autoApprove": ["a"], "alwaysAllow": [], "timeout": 60, "disabled": false},
				"w": {"serverUrl": "https://w.example/mcp", "timeout": "90s"}
			}}`,
			want: []Upstream{
				{Name: "on", Command: []string{"y"}, Timeout: time.Minute},
				{Name: "w", URL: "https://w.example/mcp", Timeout: 90 * time.Second},
			},
		},
		{
			name: "both objects",
			json: `{"servers": {"a": {"command": "a"}}, "mcpServers": {"b": {"command": "b"}}}`,
			want: []Upstream{{Name: "a", Command: []string{"a"}}, {Name: "b", Command: []string{"b"}}},
		},
		{
			name: "dollar without brace kept, url slashes in strings not comments",
			json: `{"mcpServers": {"a": {"command": "sh", "args": ["-c", "echo $HOME // not a comment /* nor this */"]}}}`,
			want: []Upstream{{Name: "a", Command: []string{"sh", "-c", "echo $HOME // not a comment /* nor this */"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseServers("servers.json", []byte(tt.json), testExpander(env))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%+v\nwant\n%+v", dump(got), dump(tt.want))
			}
		})
	}
}

func dump(ups []Upstream) string {
	var b strings.Builder
	for _, u := range ups {
		b.WriteString(u.Name + ": ")
		cp := u
		cp.Credentials = nil
		b.WriteString(strings.ReplaceAll(strings.TrimSpace(fmt.Sprintf("%+v", cp)), "\n", " "))
		if u.Credentials != nil {
			b.WriteString(fmt.Sprintf(" creds=%+v", *u.Credentials))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestParseServersErrors(t *testing.T) {
	tests := []struct {
		name string
		json string
		want []string // substrings
	}{
		{"not an object", `[1]`, []string{"expected a JSON object", "got an array"}},
		{"no servers", `{"foo": {}}`, []string{`no "mcpServers" or "servers" object`}},
		{"servers not an object", `{"mcpServers": []}`, []string{"servers.json:1:16:", "mcpServers must be an object"}},
		{"syntax error with position", "{\n  \"mcpServers\": {\n    \"a\": {\"command\": \"x\",, }\n  }\n}", []string{"servers.json:3:"}},
		{"truncated", `{"mcpServers": {"a": {"command": "x"`, []string{"servers.json:1:"}},
		{"unknown member", "{\"mcpServers\": {\n  \"a\": {\"command\": \"x\", \"comand\": \"y\"}}}", []string{`servers.json:2:25: server "a": `, `unknown member "comand"`}},
		{"wrong type", "{\"mcpServers\": {\n  \"a\": {\"command\": \"x\", \"args\": \"-y pkg\"}}}", []string{"servers.json:2:", "args: expected an array, got a string"}},
		{"duplicate member", `{"mcpServers": {"a": {"command": "x", "command": "y"}}}`, []string{"servers.json:1:", "duplicate"}},
		{"duplicate server", `{"mcpServers": {"a": {"command": "x"}}, "servers": {"a": {"command": "y"}}}`, []string{`server "a" is defined twice`}},
		{"unset env", `{"mcpServers": {"a": {"url": "https://x", "headers": {"Authorization": "Bearer ${env:NOPE}"}}}}`, []string{`server "a": headers Authorization: environment variable NOPE is not set`}},
		{"unset bare env", `{"mcpServers": {"a": {"command": "${NOPE}"}}}`, []string{"environment variable NOPE is not set (use ${NOPE:-default}"}},
		{"input variable", `{"servers": {"a": {"type": "http", "url": "https://x", "headers": {"K": "${input:key}"}}}}`, []string{"input variables need an interactive prompt"}},
		{"unknown variable", `{"servers": {"a": {"command": "${config:x}"}}}`, []string{"${config:x} is not a supported variable"}},
		{"unterminated", `{"servers": {"a": {"command": "${HOME"}}}`, []string{"unterminated ${"}},
		{"bad type", `{"servers": {"a": {"type": "websocket", "url": "wss://x"}}}`, []string{`type "websocket" is not supported`}},
		{"stdio with url", `{"servers": {"a": {"type": "stdio", "url": "https://x"}}}`, []string{"type stdio needs command"}},
		{"http with command", `{"servers": {"a": {"type": "http", "command": "x"}}}`, []string{"type http needs url"}},
		{"envFile", `{"servers": {"a": {"command": "x", "envFile": "${workspaceFolder}/.env"}}}`, []string{"envFile is not supported"}},
		{"env null", `{"servers": {"a": {"command": "x", "env": {"A": null}}}}`, []string{"env A: expected a string, got null"}},
		{"bad timeout", `{"servers": {"a": {"command": "x", "timeout": "soon"}}}`, []string{`timeout: "soon" is not a duration`}},
		{"several problems", `{"servers": {"a": {"command": "${X1}"}, "b": {"command": "${X2}"}}}`, []string{"X1 is not set", "X2 is not set"}},
		{"trailing data", `{"servers": {}} {}`, []string{"unexpected data after"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ups, err := parseServers("servers.json", []byte(tt.json), testExpander(nil))
			if err == nil {
				t.Fatalf("no error; got %+v", ups)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestServersSecretsNotInErrors checks that literal secrets from a servers
// file never show up in errors about it.
func TestServersSecretsNotInErrors(t *testing.T) {
	for _, js := range []string{
		`{"mcpServers": {"a": {"url": "https://x", "headers": {"Authorization": "Bearer hunter2"}, "bogus": 1}}}`,
		`{"mcpServers": {"a": {"command": "x", "env": {"TOKEN": "hunter2", "N": {"v": "hunter2"}}}}}`,
		`{"mcpServers": {"a": {"command": "x", "env": {"TOKEN": ["hunter2"]}}}}`,
		`{"mcpServers": {"a": {"url": "https://x", "headers": {"Authorization": 7}}}}`,
		`{"mcpServers": {"a": {"url": "https://x", "headers": {"X": "hunter2 ${NOPE}"}}}}`,
	} {
		_, err := parseServers("s.json", []byte(js), testExpander(nil))
		if err == nil {
			t.Errorf("%s: no error", js)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error repeats a secret: %v", err)
		}
	}
}

func TestLoadServersJSONWorkspace(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, ".vscode/mcp.json", `{"servers": {"a": {"command": "${workspaceFolder}/bin/a", "args": ["${workspaceFolderBasename}"], "cwd": "tools"}}}`)
	ups, err := LoadServersJSON(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(ups) != 1 {
		t.Fatalf("got %d upstreams", len(ups))
	}
	if want := dir + "/bin/a"; ups[0].Command[0] != want {
		t.Errorf("command = %q, want %q", ups[0].Command[0], want)
	}
	if ups[0].Command[1] != filepath.Base(dir) {
		t.Errorf("basename = %q", ups[0].Command[1])
	}
	if want := filepath.Join(dir, "tools"); ups[0].Cwd != want {
		t.Errorf("cwd = %q, want %q", ups[0].Cwd, want)
	}
	t.Setenv("MCPGATE_TEST_TOKEN", "abc")
	p = writeFile(t, dir, "claude.json", `{"mcpServers": {"r": {"url": "https://r/mcp", "headers": {"Authorization": "Bearer ${MCPGATE_TEST_TOKEN}"}}}}`)
	ups, err = LoadServersJSON(p)
	if err != nil {
		t.Fatal(err)
	}
	if c := ups[0].Credentials; c == nil || c.Type != "bearer" || c.Value != "abc" {
		t.Errorf("credentials = %+v", c)
	}
	if _, err := LoadServersJSON(filepath.Join(dir, "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestStripJSONC(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"a": 1}`, `{"a": 1}`},
		{"{\"a\": 1, // c\n}", "{\"a\": 1      \n}"},
		{`{"a": [1, 2,], }`, `{"a": [1, 2 ]  }`},
		{`{"a": "x,}"}`, `{"a": "x,}"}`},
		{`{"a": "\"//"}`, `{"a": "\"//"}`},
		{"/* a\nb */{}", "    \n    {}"},
		{"{} /* open", "{}        "},
		{`[1, /* c */ ]`, `[1          ]`},
	}
	for _, tt := range tests {
		if got := string(stripJSONC([]byte(tt.in))); got != tt.want {
			t.Errorf("stripJSONC(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if len(stripJSONC([]byte(tt.in))) != len(tt.in) {
			t.Errorf("stripJSONC(%q) changed the length", tt.in)
		}
	}
}

func TestExpand(t *testing.T) {
	x := testExpander(map[string]string{"A": "1", "E": ""})
	tests := []struct {
		in, want, err string
	}{
		{"plain", "plain", ""},
		{"$A ${A}", "$A 1", ""},
		{"${env:A}${env:A}", "11", ""},
		{"${E:-d}", "d", ""},
		{"${E}", "", ""},
		{"${Z:-d:-e}", "d:-e", ""},
		{"${Z:-}", "", ""},
		{"${userHome}/x", "/home/u/x", ""},
		{"${workspaceFolderBasename}", "proj", ""},
		{"${", "", "unterminated"},
		{"${}", "", "not a supported variable"},
		{"${env:}", "", "not a valid environment variable name"},
		{"${env:Z}", "", "Z is not set"},
		{"${1A}", "", "not a supported variable"},
	}
	for _, tt := range tests {
		got, err := x.expand(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("expand(%q) err = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("expand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func FuzzServersJSON(f *testing.F) {
	for _, s := range []string{
		`{"mcpServers": {"a": {"command": "x", "args": ["${A}"], "env": {"B": 1}}}}`,
		`{"servers": {"b": {"type": "http", "url": "${env:A}", "headers": {"Authorization": "Bearer x"}}}}`,
		"// c\n{\"servers\": {\"a\": {\"command\": \"x\",},}}",
		`{"mcpServers": []}`, `{`, `/*`, `"\"`, `{"servers": {"a": {"timeout": 1e400}}}`,
	} {
		f.Add([]byte(s))
	}
	x := testExpander(map[string]string{"A": "a"})
	f.Fuzz(func(t *testing.T, data []byte) {
		if got := stripJSONC(data); len(got) != len(data) {
			t.Fatalf("stripJSONC changed the length: %d -> %d", len(data), len(got))
		}
		ups, err := parseServers("fuzz.json", data, x)
		if err != nil && ups != nil {
			t.Fatal("upstreams and error both returned")
		}
		c := Config{Listen: DefaultListen, Auth: AuthNone, Upstreams: ups}
		_ = c.Validate()
	})
}
