package config

import (
	"strings"
	"testing"
)

func TestConsoleRole(t *testing.T) {
	c := &Config{
		Approvals: &Approvals{Approvers: []string{"carol"}},
		Console:   &Console{Viewers: []string{"vic", "ann", "group:staff"}, Approvers: []string{"ann"}, Administrators: []string{"ada", "group:sec"}},
	}
	for user, want := range map[string]string{
		"ada": RoleAdministrator, "ann": RoleApprover, "carol": RoleApprover, "vic": RoleViewer, "eve": RoleNone, "": RoleNone,
	} {
		if got := c.ConsoleRole(user, nil); got != want {
			t.Errorf("ConsoleRole(%q) = %q, want %q", user, got, want)
		}
	}
	if got := c.ConsoleRole("eve", []string{"staff"}); got != RoleViewer {
		t.Errorf("eve in staff: %q", got)
	}
	if got := c.ConsoleRole("vic", []string{"staff", "sec"}); got != RoleAdministrator {
		t.Errorf("vic in sec: %q", got)
	}
	if got := c.ConsoleRole("group:sec", nil); got != RoleNone {
		t.Errorf("a user named like a group entry: %q", got)
	}
	if got := (&Config{Approvals: c.Approvals}).ConsoleRole("carol", nil); got != RoleNone {
		t.Errorf("without a console section: %q", got)
	}
}

func TestConsoleValidate(t *testing.T) {
	c, err := parseYAML("test", []byte("listen: 127.0.0.1:0\nauth: none\ndata_dir: /tmp/x\nupstreams: [{name: a, url: 'https://a.example/mcp'}]\nconsole: {administrators: [ada, ''], viewers: ['group:']}\n"))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil || !strings.Contains(err.Error(), "console: needs auth: oauth") || !strings.Contains(err.Error(), "console.administrators[1]: empty") || !strings.Contains(err.Error(), "console.viewers[0]: empty") {
		t.Errorf("Validate: %v", err)
	}
}
