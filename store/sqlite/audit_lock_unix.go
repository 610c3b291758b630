//go:build unix

package sqlite

import (
	"os"
	"syscall"
)

// segmentSupported says whether databases get an audit segment file: it
// needs flock(2).
const segmentSupported = true

// flock takes (exclusive) or releases the advisory lock of f, waiting
// for it.
func flock(f *os.File, take bool) error {
	how := syscall.LOCK_UN
	if take {
		how = syscall.LOCK_EX
	}
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			return err
		}
	}
}
