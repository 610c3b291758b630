package config

import (
	"net"
	"net/netip"
)

// debugListen checks server.debug_listen: the profiles it serves show the
// gateway's internals, so it must be a loopback address.
func (v *validator) debugListen(addr string) {
	if addr == "" {
		return
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		v.add("server.debug_listen: %q is not host:port: %v", addr, err)
		return
	}
	if host == "localhost" {
		return
	}
	if ip, err := netip.ParseAddr(host); err != nil || !ip.IsLoopback() {
		v.add("server.debug_listen: %q must be a loopback address (127.0.0.1:6060, [::1]:6060 or localhost:6060): the profiles show the gateway's internals", addr)
	}
}
