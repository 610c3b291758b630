package config

import (
	"strings"
	"testing"
)

func TestDebugListen(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:6060": "",
		"[::1]:0":        "",
		"localhost:6060": "",
		"0.0.0.0:6060":   "must be a loopback address",
		"10.0.0.1:6060":  "must be a loopback address",
		"6060":           "is not host:port",
	} {
		c := &Config{Listen: DefaultListen, Auth: AuthNone, Upstreams: []Upstream{{Name: "a", URL: "https://a/mcp"}}, Server: &Server{DebugListen: addr}}
		err := c.Validate()
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", addr, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: %v, want %q", addr, err, want)
		}
	}
}
