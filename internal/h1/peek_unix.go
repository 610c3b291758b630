//go:build unix

package h1

import (
	"net"
	"syscall"
)

// peekClosed reports whether the peer closed nc or sent something: one
// recv with MSG_PEEK|MSG_DONTWAIT on the socket, which neither waits nor
// takes any byte. A connection that cannot be inspected counts as open.
func peekClosed(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	var buf [1]byte
	rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// n == 0 without an error is the peer's close; n > 0 is data
		// nobody asked for; EAGAIN is a quiet, open connection.
		closed = err == nil || (err != syscall.EAGAIN && err != syscall.EWOULDBLOCK && err != syscall.EINTR)
		return true
	})
	return closed
}
