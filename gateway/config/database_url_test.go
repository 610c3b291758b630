package config

import (
	"strings"
	"testing"
)

// TestDatabaseURL checks that database_url decodes and that only
// PostgreSQL URLs are accepted, without the URL (it may hold a password)
// in the error.
func TestDatabaseURL(t *testing.T) {
	c, err := parseYAML("test", []byte("database_url: postgres://gw:pw@db.internal/mcpgate?sslmode=verify-full\nupstreams:\n  - name: a\n    command: [srv]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.DatabaseURL != "postgres://gw:pw@db.internal/mcpgate?sslmode=verify-full" {
		t.Fatalf("DatabaseURL = %q", c.DatabaseURL)
	}
	for _, tt := range []struct {
		url string
		ok  bool
	}{
		{"", true},
		{"postgres://h/db", true},
		{"postgresql://u@h:5432/db", true},
		{"mysql://u:hunter2@h/db", false},
		{"/var/lib/mcpgate/db", false},
	} {
		c := &Config{Listen: DefaultListen, Auth: AuthNone, DataDir: "/d", DatabaseURL: tt.url, Upstreams: []Upstream{{Name: "a", Command: []string{"srv"}}}}
		err := c.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("%q: err = %v, want ok %v", tt.url, err, tt.ok)
		}
		if err != nil && (!strings.Contains(err.Error(), "database_url") || strings.Contains(err.Error(), "hunter2")) {
			t.Errorf("%q: err = %v", tt.url, err)
		}
	}
}
