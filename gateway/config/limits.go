package config

import (
	"runtime"
	"time"
)

// Defaults of the Server section.
const (
	DefaultStartupWait              = 10 * time.Second
	DefaultReadHeaderTimeout        = 10 * time.Second
	DefaultReadBodyTimeout          = 30 * time.Second
	DefaultIdleTimeout              = 2 * time.Minute
	DefaultMaxSessions              = 10000
	DefaultMaxSessionsPerPrincipal  = 64
	DefaultMaxSessionsPerAddress    = 1000
	DefaultMaxLegacySessions        = 1000
	DefaultPasswordQueue            = 8
	DefaultPasswordFailures         = 5
	DefaultPasswordFailureWindow    = 15 * time.Minute
	DefaultPasswordAddressFailures  = 20
	DefaultUpstreamCircuitFailures  = 5
	DefaultUpstreamCircuitOpen      = time.Minute
	DefaultMaxInflight              = 512
	DefaultMaxInflightPerPrincipal  = 64
	DefaultUpstreamNotificationRate = 1000
	DefaultMaxStreamsPerSession     = 32
	DefaultMaxStreamsPerPrincipal   = 256
	DefaultMaxStreamsPerAddress     = 1024
	DefaultUpstreamSessionIdle      = 10 * time.Minute
	DefaultMaxUpstreamSessions      = 1000
	DefaultMaxStdioSessions         = 32
)

// Limits returns the Server section with every default filled in. Fields
// that a negative value turns off keep it (negative); see Server.
func (c *Config) Limits() Server {
	var s Server
	if c.Server != nil {
		s = *c.Server
	}
	dur := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	num := func(n *int, def int) {
		if *n == 0 {
			*n = def
		}
	}
	dur(&s.StartupWait, DefaultStartupWait)
	dur(&s.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	dur(&s.ReadBodyTimeout, DefaultReadBodyTimeout)
	dur(&s.IdleTimeout, DefaultIdleTimeout)
	dur(&s.UpstreamCircuitOpen, DefaultUpstreamCircuitOpen)
	dur(&s.PasswordFailureWindow, DefaultPasswordFailureWindow)
	num(&s.MaxSessions, DefaultMaxSessions)
	num(&s.MaxSessionsPerPrincipal, DefaultMaxSessionsPerPrincipal)
	num(&s.MaxSessionsPerAddress, DefaultMaxSessionsPerAddress)
	num(&s.MaxLegacySessions, DefaultMaxLegacySessions)
	num(&s.MaxPasswordHashes, 2*runtime.GOMAXPROCS(0))
	num(&s.PasswordQueue, DefaultPasswordQueue)
	num(&s.PasswordFailures, DefaultPasswordFailures)
	num(&s.PasswordAddressFailures, DefaultPasswordAddressFailures)
	num(&s.UpstreamCircuitFailures, DefaultUpstreamCircuitFailures)
	num(&s.MaxInflight, DefaultMaxInflight)
	num(&s.MaxInflightPerPrincipal, DefaultMaxInflightPerPrincipal)
	num(&s.UpstreamNotificationRate, DefaultUpstreamNotificationRate)
	num(&s.MaxStreamsPerSession, DefaultMaxStreamsPerSession)
	num(&s.MaxStreamsPerPrincipal, DefaultMaxStreamsPerPrincipal)
	num(&s.MaxStreamsPerAddress, DefaultMaxStreamsPerAddress)
	dur(&s.UpstreamSessionIdle, DefaultUpstreamSessionIdle)
	num(&s.MaxUpstreamSessions, DefaultMaxUpstreamSessions)
	num(&s.MaxStdioSessions, DefaultMaxStdioSessions)
	if s.ReadyUpstreams == 0 {
		for _, u := range c.Upstreams {
			if !u.Credentials.PerUser() {
				s.ReadyUpstreams = 1
				break
			}
		}
	}
	return s
}

// server checks the Server section; upstreams is how many upstreams there
// are.
func (v *validator) server(s *Server, upstreams int) {
	if s == nil {
		return
	}
	if s.ReadyUpstreams > upstreams {
		v.add("server.ready_upstreams: %d, but only %d upstream%s configured", s.ReadyUpstreams, upstreams, map[bool]string{true: "s are", false: " is"}[upstreams != 1])
	}
	positive := []struct {
		name string
		d    time.Duration
	}{
		{"read_header_timeout", s.ReadHeaderTimeout},
		{"read_body_timeout", s.ReadBodyTimeout},
		{"idle_timeout", s.IdleTimeout},
		{"upstream_circuit_open", s.UpstreamCircuitOpen},
		{"password_failure_window", s.PasswordFailureWindow},
	}
	for _, p := range positive {
		if p.d < 0 {
			v.add("server.%s: must not be negative (zero means the default)", p.name)
		}
	}
	counts := []struct {
		name string
		n    int
	}{
		{"max_sessions", s.MaxSessions},
		{"max_legacy_sessions", s.MaxLegacySessions},
		{"max_password_hashes", s.MaxPasswordHashes},
		{"password_queue", s.PasswordQueue},
		{"password_failures", s.PasswordFailures},
		{"password_address_failures", s.PasswordAddressFailures},
		{"upstream_circuit_failures", s.UpstreamCircuitFailures},
	}
	for _, p := range counts {
		if p.n < 0 {
			v.add("server.%s: must not be negative (zero means the default)", p.name)
		}
	}
	v.debugListen(s.DebugListen)
}
