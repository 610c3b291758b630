package config

import (
	"strings"
	"testing"
)

func TestConsoleRole(t *testing.T) {
	c := &Config{
		Approvals: &Approvals{Approvers: []string{"carol"}},
		Console:   &Console{Viewers: []string{"vic", "ann"}, Approvers: []string{"ann"}, Administrators: []string{"ada"}},
	}
	for user, want := range map[string]string{
		"ada": RoleAdministrator, "ann": RoleApprover, "carol": RoleApprover, "vic": RoleViewer, "eve": RoleNone, "": RoleNone,
	} {
		if got := c.ConsoleRole(user); got != want {
			t.Errorf("ConsoleRole(%q) = %q, want %q", user, got, want)
		}
	}
	if got := (&Config{Approvals: c.Approvals}).ConsoleRole("carol"); got != RoleNone {
		t.Errorf("without a console section: %q", got)
	}
}

func TestConsoleValidate(t *testing.T) {
	c, err := parseYAML("test", []byte("listen: 127.0.0.1:0\nauth: none\ndata_dir: /tmp/x\nupstreams: [{name: a, url: 'https://a.example/mcp'}]\nconsole: {administrators: [ada, '']}\n"))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil || !strings.Contains(err.Error(), "console: needs auth: oauth") || !strings.Contains(err.Error(), "console.administrators[1]: empty") {
		t.Errorf("Validate: %v", err)
	}
}
