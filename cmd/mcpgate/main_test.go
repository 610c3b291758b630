package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// execute runs the command line args and returns the exit code and output.
func execute(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigValidate(t *testing.T) {
	good := writeFile(t, "good.yaml", "listen: 127.0.0.1:9999\nupstreams:\n  - name: a\n    command: [srv]\n")
	servers := writeFile(t, "servers.json", `{"mcpServers": {"b": {"url": "https://b.example/mcp", "headers": {"Authorization": "Bearer hunter2"}}}}`)
	unknownKey := writeFile(t, "bad.yaml", "listen: 127.0.0.1:9999\nupstreams:\n  - name: a\n    comand: [srv]\n")
	invalid := writeFile(t, "invalid.yaml", "auth: basic\nupstreams:\n  - name: a\n    url: ftp://x\n  - name: a\n")
	badJSON := writeFile(t, "bad.json", "{\"mcpServers\": {\n  \"b\": {\"url\": 3}}}")
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   []string
		stderr   []string
		noSecret bool
	}{
		{"good", []string{"config", "validate", "--config", good}, 0, []string{"OK: 1 upstream (a), listen 127.0.0.1:9999, auth none"}, nil, false},
		{"servers only", []string{"config", "validate", "--servers", servers}, 0, []string{"OK: 1 upstream (b), listen 127.0.0.1:8080"}, nil, true},
		{"both merged", []string{"config", "validate", "-c", good, "--servers", servers}, 0, []string{"OK: 2 upstreams (a, b)"}, nil, true},
		{"unknown key with position", []string{"config", "validate", "--config", unknownKey}, 1, nil, []string{unknownKey + ":4:5: unknown field \"comand\""}, false},
		{"every problem", []string{"config", "validate", "--config", invalid}, 1, nil, []string{
			"configuration has 4 problems:",
			`- auth: "basic" is not supported`,
			`- upstream "a": url: scheme "ftp" is not supported`,
			`- upstream "a": name used twice`,
			`- upstream "a": set url (a remote server) or command`,
		}, false},
		{"bad servers json", []string{"config", "validate", "--servers", badJSON}, 1, nil, []string{badJSON + ":2:"}, false},
		{"nothing given", []string{"config", "validate"}, 1, nil, []string{"give --config FILE"}, false},
		{"missing file", []string{"config", "validate", "--config", filepath.Join(t.TempDir(), "nope.yaml")}, 1, nil, []string{"no such file"}, false},
		{"extra argument", []string{"config", "validate", "x"}, 1, nil, []string{"unknown command"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := execute(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit code = %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			for _, w := range tt.stdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout %q does not contain %q", stdout, w)
				}
			}
			for _, w := range tt.stderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not contain %q", stderr, w)
				}
			}
			if strings.Contains(stdout+stderr, "hunter2") {
				t.Errorf("output contains a secret")
			}
		})
	}
}

func TestExamplesValidate(t *testing.T) {
	for _, args := range [][]string{
		{"config", "validate", "--config", "../../examples/quickstart.yaml"},
		{"config", "validate", "--servers", "../../examples/servers.json"},
	} {
		code, stdout, stderr := execute(t, args...)
		if code != 0 || !strings.Contains(stdout, "OK: 1 upstream (demo)") {
			t.Errorf("%v: code %d\nstdout: %s\nstderr: %s", args, code, stdout, stderr)
		}
	}
}

// TestGovernedExample: examples/governed validates, and its policies
// decide as its comments say (groups from local users or an IdP).
func TestGovernedExample(t *testing.T) {
	code, stdout, stderr := execute(t, "config", "validate", "--config", "../../examples/governed/gateway.yaml")
	if code != 0 || !strings.Contains(stdout, "OK: 1 upstream (demo)") {
		t.Fatalf("validate: code %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	pol := "../../examples/governed/policies"
	for _, c := range []struct {
		group, action, resource, want string
	}{
		{"staff", "tools/call", `Tool::"demo/countdown"`, "allow"},
		{"staff", "tools/list", `Tool::"demo/countdown"`, "allow"},
		{"contractors", "tools/call", `Tool::"demo/countdown"`, "deny"},
		{"contractors", "tools/list", `Tool::"demo/countdown"`, "deny"},
		{"contractors", "tools/call", `Tool::"demo/echo"`, "allow"},
		{"contractors", "resources/read", `Resource::"demo://readme"`, "deny"},
		{"", "tools/call", `Tool::"demo/echo"`, "deny"},
	} {
		args := []string{"policy", "test", "--policies", pol, "--deny-by-default", "--principal", "alice",
			"--action", c.action, "--resource", c.resource, "--expect", c.want}
		if c.group != "" {
			args = append(args, "--group", c.group)
		}
		if c.action == "tools/call" {
			args = append(args, "--args", "{}")
		}
		if strings.HasPrefix(c.resource, "Resource::") {
			args = append(args, "--upstream", "demo")
		}
		if code, stdout, stderr := execute(t, args...); code != 0 {
			t.Errorf("%s %s %s as %q: code %d\n%s%s", c.action, c.resource, c.want, c.group, code, stdout, stderr)
		}
	}
}

func TestBuildConfigPrecedence(t *testing.T) {
	file := writeFile(t, "gw.yaml", "listen: 127.0.0.1:1111\nauth: none\ndata_dir: /from/file\nupstreams:\n  - name: a\n    command: [srv]\n")
	servers := writeFile(t, "servers.json", `{"servers": {"b": {"type": "http", "url": "https://b/mcp"}}}`)

	cfg, err := buildConfig(&configFlags{configFile: file, serversFile: servers})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:1111" || cfg.DataDir != "/from/file" || cfg.Auth != "none" {
		t.Errorf("file values not used: %+v", cfg)
	}
	if len(cfg.Upstreams) != 2 || cfg.Upstreams[0].Name != "a" || cfg.Upstreams[1].Name != "b" {
		t.Errorf("servers not appended after the file's upstreams: %+v", cfg.Upstreams)
	}

	cfg, err = buildConfig(&configFlags{configFile: file,
		listen: "127.0.0.1:2222", setListen: true,
		dataDir: "/from/flag", setDataDir: true,
		auth: "oauth", setAuth: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:2222" || cfg.DataDir != "/from/flag" || cfg.Auth != "oauth" {
		t.Errorf("flags did not override the file: %+v", cfg)
	}

	t.Setenv("XDG_DATA_HOME", "/xdg")
	cfg, err = buildConfig(&configFlags{serversFile: servers})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:8080" || cfg.Auth != "none" || cfg.DataDir != filepath.Join("/xdg", "mcpgate") {
		t.Errorf("defaults not applied: %+v", cfg)
	}

	if _, err := buildConfig(&configFlags{serversFile: servers, auth: "basic", setAuth: true}); err == nil || !strings.Contains(err.Error(), `auth: "basic"`) {
		t.Errorf("bad --auth: err = %v", err)
	}
}

func TestServeConfigErrors(t *testing.T) {
	file := writeFile(t, "gw.yaml", "upstreams:\n  - name: a\n    command: [srv]\n")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"serve"}, "give --config FILE"},
		{[]string{"serve", "--config", file, "--listen", "nonsense"}, `listen: "nonsense" is not host:port`},
		{[]string{"serve", "--config", file, "--auth", "basic"}, `auth: "basic" is not supported`},
		{[]string{"serve", "--config", file, "--log-level", "loud"}, "--log-level"},
		{[]string{"serve", "--bogus"}, "unknown flag: --bogus"},
	}
	for _, tt := range tests {
		code, stdout, stderr := execute(t, tt.args...)
		if code != 1 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: code %d, stderr %q, want %q (stdout %q)", tt.args, code, stderr, tt.want, stdout)
		}
	}
}

func TestVersion(t *testing.T) {
	code, stdout, _ := execute(t, "version")
	if code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if !strings.HasPrefix(stdout, "mcpgate ") || !strings.Contains(stdout, runtime.Version()) {
		t.Errorf("version output = %q", stdout)
	}
}

func TestHelp(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"Model Context Protocol gateway", "serve", "config", "version", "completion", "--config", "--data-dir"}},
		{[]string{"help", "serve"}, []string{"--servers", "--listen", "--auth", "--log-level", "--data-dir", "SIGTERM", "examples/quickstart.yaml"}},
		{[]string{"config", "validate", "--help"}, []string{"every problem", "--servers", "line and column"}},
	}
	for _, tt := range tests {
		code, stdout, stderr := execute(t, tt.args...)
		if code != 0 {
			t.Errorf("%v: exit code %d (%s)", tt.args, code, stderr)
		}
		for _, w := range tt.want {
			if !strings.Contains(stdout, w) {
				t.Errorf("%v: help does not mention %q:\n%s", tt.args, w, stdout)
			}
		}
	}
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		code, stdout, stderr := execute(t, "completion", shell)
		if code != 0 || !strings.Contains(stdout, "mcpgate") {
			t.Errorf("completion %s: code %d, %d bytes, stderr %s", shell, code, len(stdout), stderr)
		}
	}
	// Dynamic completion of --auth values.
	code, stdout, _ := execute(t, "__complete", "serve", "--auth", "")
	if code != 0 || !strings.Contains(stdout, "none\n") || !strings.Contains(stdout, "oauth\n") {
		t.Errorf("completing --auth: code %d, %q", code, stdout)
	}
}

// TestAuthCommandsDataDir checks that the user and client commands use the
// data directory serve would use, and report a bad --config.
func TestAuthCommandsDataDir(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gw.yaml")
	if err := os.WriteFile(cfg, []byte("data_dir: ./state\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := execute(t, "user", "list", "--config", cfg)
	if code != 0 || !strings.Contains(stdout, "USERNAME") {
		t.Fatalf("user list: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "state", "mcpgate.db")); err != nil {
		t.Errorf("store not created in data_dir of the config: %v", err)
	}
	flagDir := filepath.Join(dir, "flag")
	if code, _, stderr := execute(t, "client", "list", "--config", cfg, "--data-dir", flagDir); code != 0 {
		t.Fatalf("client list: code %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(flagDir, "mcpgate.db")); err != nil {
		t.Errorf("--data-dir did not override data_dir: %v", err)
	}
	bad := writeFile(t, "bad.yaml", "bogus: 1\n")
	code, _, stderr = execute(t, "user", "list", "--config", bad)
	if code != 1 || !strings.Contains(stderr, bad+":1:1: unknown field") {
		t.Errorf("bad config: code %d, stderr %q", code, stderr)
	}
}

// TestTasksCommandMounted: `mcpgate tasks` works on the data directory
// that serve would use.
func TestTasksCommandMounted(t *testing.T) {
	dir := t.TempDir()
	if code, _, stderr := execute(t, "user", "list", "--data-dir", dir); code != 0 {
		t.Fatalf("user list (creates the store): code %d, stderr %q", code, stderr)
	}
	code, stdout, stderr := execute(t, "tasks", "list", "--data-dir", dir)
	if code != 0 || !strings.Contains(stdout, "no tasks") {
		t.Fatalf("tasks list: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, _, stderr = execute(t, "tasks", "cancel", "nope", "--data-dir", dir)
	if code == 0 || !strings.Contains(stderr, `no task "nope"`) {
		t.Errorf("tasks cancel of an unknown task: code %d, stderr %q", code, stderr)
	}
}
