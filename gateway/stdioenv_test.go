package gateway

import (
	"context"
	"log/slog"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/mcp"
)

func TestStdioEnv(t *testing.T) {
	environ := []string{
		"PATH=/usr/local/bin:/usr/bin", "HOME=/home/gw", "USER=gw", "LANG=C.UTF-8", "TZ=UTC",
		"GITHUB_TOKEN=ghp_secret", "CRM_CLIENT_SECRET=hunter2", "AWS_SECRET_ACCESS_KEY=x",
		"HTTPS_PROXY=http://proxy:3128", "NODE_EXTRA_CA_CERTS=/etc/ca.pem", "EMPTY=",
		"=C:=C:\\work", "malformed",
		"SystemRoot=C:\\Windows", "Path=C:\\Windows\\system32",
	}
	for _, tc := range []struct {
		name string
		goos string
		env  map[string]string
		pass []string
		want []string
	}{
		{"only the short list", "linux", nil, nil,
			[]string{"HOME=/home/gw", "LANG=C.UTF-8", "PATH=/usr/local/bin:/usr/bin", "TZ=UTC", "USER=gw"}},
		{"configured env added and wins", "linux", map[string]string{"NODE_OPTIONS": "--max-old-space-size=512", "HOME": "/srv/files"}, nil,
			[]string{"HOME=/srv/files", "LANG=C.UTF-8", "NODE_OPTIONS=--max-old-space-size=512", "PATH=/usr/local/bin:/usr/bin", "TZ=UTC", "USER=gw"}},
		{"pass_env by name, when set", "linux", nil, []string{"HTTPS_PROXY", "NODE_EXTRA_CA_CERTS", "EMPTY", "NOT_SET"},
			[]string{"EMPTY=", "HOME=/home/gw", "HTTPS_PROXY=http://proxy:3128", "LANG=C.UTF-8", "NODE_EXTRA_CA_CERTS=/etc/ca.pem", "PATH=/usr/local/bin:/usr/bin", "TZ=UTC", "USER=gw"}},
		{"names are case-sensitive off Windows", "linux", nil, []string{"github_token"},
			[]string{"HOME=/home/gw", "LANG=C.UTF-8", "PATH=/usr/local/bin:/usr/bin", "TZ=UTC", "USER=gw"}},
		{"windows: its own variables, names folded", "windows", map[string]string{"path": "C:\\tools"}, []string{"github_token"},
			[]string{"GITHUB_TOKEN=ghp_secret", "HOME=/home/gw", "LANG=C.UTF-8", "SystemRoot=C:\\Windows", "TZ=UTC", "USER=gw", "path=C:\\tools"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := stdioEnv(environ, tc.goos, tc.env, tc.pass)
			if !slices.Equal(got, tc.want) {
				t.Errorf("stdioEnv =\n  %q\nwant\n  %q", got, tc.want)
			}
		})
	}
}

// TestStdioUpstreamEnvironment starts a real stdio upstream process the
// way the gateway does (upstream.transport) and reads its environment: a
// secret in the gateway's environment does not reach it; PATH, HOME, the
// configured env and a pass_env variable do.
func TestStdioUpstreamEnvironment(t *testing.T) {
	envProg, err := exec.LookPath("env")
	if err != nil {
		t.Skip("no env program (coreutils) on PATH")
	}
	t.Setenv("MCPGATE_TEST_OTHER_UPSTREAM_SECRET", "hunter2")
	t.Setenv("MCPGATE_TEST_PASSED", "passed-value")
	t.Setenv("HOME", "/home/mcpgate-test")
	u := &upstream{
		cfg: config.Upstream{Name: "envdump", Command: []string{envProg},
			Env: map[string]string{"CONFIGURED": "configured-value"}, PassEnv: []string{"MCPGATE_TEST_PASSED"}},
		logger: slog.New(slog.DiscardHandler),
	}
	tr, err := u.transport(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	ct, ok := tr.(*mcp.CommandTransport)
	if !ok {
		t.Fatalf("transport is %T", tr)
	}
	out, err := ct.Command.Output()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSpace(string(out)), "\n")
	if slices.ContainsFunc(got, func(kv string) bool {
		return strings.Contains(kv, "hunter2") || strings.HasPrefix(kv, "MCPGATE_TEST_OTHER")
	}) {
		t.Errorf("the gateway's secret reached the upstream process:\n%s", out)
	}
	for _, want := range []string{"MCPGATE_TEST_PASSED=passed-value", "CONFIGURED=configured-value", "HOME=/home/mcpgate-test"} {
		if !slices.Contains(got, want) {
			t.Errorf("upstream environment lacks %s:\n%s", want, out)
		}
	}
	if !slices.ContainsFunc(got, func(kv string) bool { return strings.HasPrefix(kv, "PATH=") }) {
		t.Errorf("upstream environment lacks PATH:\n%s", out)
	}
}
