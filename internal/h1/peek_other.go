//go:build !unix

package h1

import "net"

// peekClosed cannot look at the socket on this platform: idle connections
// count as open, and a request sent on one the server closed fails.
func peekClosed(net.Conn) bool { return false }
