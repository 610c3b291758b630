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

// tryFlock takes the exclusive lock of f if no one holds it, without
// waiting.
func tryFlock(f *os.File) (bool, error) {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch err {
		case nil:
			return true, nil
		case syscall.EWOULDBLOCK:
			return false, nil
		case syscall.EINTR:
			continue
		}
		return false, err
	}
}

// mapHeader maps the first n bytes of f (which has at least n) into
// memory, shared with every process that maps it.
func mapHeader(f *os.File, n int) ([]byte, error) {
	return syscall.Mmap(int(f.Fd()), 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
}

// unmapHeader undoes mapHeader.
func unmapHeader(b []byte) error { return syscall.Munmap(b) }
