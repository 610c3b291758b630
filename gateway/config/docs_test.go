package config

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestAuditDocsExamples checks that the YAML examples of docs/audit.md
// decode strictly and validate.
func TestAuditDocsExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/audit.md")
	if err != nil {
		t.Skipf("docs not found: %v", err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 2 {
		t.Fatalf("found only %d yaml examples", len(blocks))
	}
	for i, b := range blocks {
		c, err := parseYAML("docs example", []byte(b[1]))
		if err != nil {
			t.Errorf("example %d:\n%s\n%v", i, b[1], err)
			continue
		}
		if err := c.ApplyDefaults(); err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("example %d does not validate:\n%s\n%v", i, b[1], err)
		}
	}
}

// TestDocsExamples checks that every YAML example in docs/configuration.md
// decodes strictly, so the documentation names only real keys.
func TestDocsExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Skipf("docs not found: %v", err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 15 {
		t.Fatalf("found only %d yaml examples", len(blocks))
	}
	indent := func(s, by string) string {
		lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
		for i := range lines {
			lines[i] = by + lines[i]
		}
		return strings.Join(lines, "\n") + "\n"
	}
	for i, b := range blocks {
		src := b[1]
		switch {
		case strings.HasPrefix(src, "- "):
			src = "upstreams:\n" + indent(src, "  ")
		case strings.HasPrefix(src, "credentials:"):
			src = "upstreams:\n  - name: x\n    url: https://x/mcp\n" + indent(src, "    ")
		}
		c, err := parseYAML("docs example", []byte(src))
		if err != nil {
			t.Errorf("example %d:\n%s\n%v", i, b[1], err)
			continue
		}
		if strings.HasPrefix(b[1], "credentials:") {
			c.Auth = AuthOAuth
			if err := c.ApplyDefaults(); err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("example %d does not validate:\n%s\n%v", i, b[1], err)
			}
		}
	}
}
