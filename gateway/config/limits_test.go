package config

import (
	"strings"
	"testing"
	"time"
)

func TestServerLimits(t *testing.T) {
	c := &Config{Upstreams: []Upstream{{Name: "a", URL: "https://a/mcp"}}}
	l := c.Limits()
	if l.StartupWait != DefaultStartupWait || l.ReadyUpstreams != 1 || l.ReadBodyTimeout != DefaultReadBodyTimeout ||
		l.MaxSessionsPerPrincipal != DefaultMaxSessionsPerPrincipal || l.MaxPasswordHashes < 2 || l.UpstreamCircuitFailures != DefaultUpstreamCircuitFailures {
		t.Fatalf("defaults = %+v", l)
	}
	perUser := &Config{Upstreams: []Upstream{{Name: "u", URL: "https://u/mcp", Credentials: &Credentials{Type: CredentialsOAuthUser}}}}
	if n := perUser.Limits().ReadyUpstreams; n != 0 {
		t.Errorf("ready_upstreams with only per-user upstreams = %d, want 0", n)
	}
	c.Server = &Server{MaxSessionsPerPrincipal: -1, StartupWait: time.Second}
	if l := c.Limits(); l.MaxSessionsPerPrincipal != -1 || l.StartupWait != time.Second {
		t.Errorf("set values = %+v", l)
	}

	for _, tc := range []struct {
		s    Server
		want string
	}{
		{Server{ReadBodyTimeout: -1}, "server.read_body_timeout: must not be negative"},
		{Server{MaxSessions: -5}, "server.max_sessions: must not be negative"},
		{Server{ReadyUpstreams: 3}, "server.ready_upstreams: 3, but only 1 upstream is configured"},
	} {
		c := &Config{Listen: DefaultListen, Auth: AuthNone, Upstreams: []Upstream{{Name: "a", URL: "https://a/mcp"}}, Server: &tc.s}
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.s, err, tc.want)
		}
	}
}
