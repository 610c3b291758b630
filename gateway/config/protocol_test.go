package config

import (
	"strings"
	"testing"
)

// TestUpstreamProtocolYAML: the protocol pin reads as written, quoted or
// not (an unquoted date stays a string), and an unknown revision is a
// clear error.
func TestUpstreamProtocolYAML(t *testing.T) {
	for _, v := range []string{`2026-07-28`, `"2026-07-28"`, `2025-11-25`} {
		c, err := parseYAML("x", []byte("listen: 127.0.0.1:1\nauth: none\ndata_dir: /d\nupstreams:\n  - name: a\n    url: https://a/mcp\n    protocol: "+v+"\n"))
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if got := c.Upstreams[0].Protocol; got != strings.Trim(v, `"`) {
			t.Errorf("protocol %s read as %q", v, got)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("protocol %s: %v", v, err)
		}
	}
	c, err := parseYAML("x", []byte("listen: 127.0.0.1:1\nauth: none\ndata_dir: /d\nupstreams:\n  - name: a\n    url: https://a/mcp\n    protocol: latest\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `protocol "latest" is not a revision the gateway speaks`) {
		t.Errorf("protocol latest: %v", err)
	}
}
