//go:build !unix

package sqlite

import (
	"errors"
	"os"
)

// segmentSupported says whether databases get an audit segment file: it
// needs flock(2), so elsewhere audit records go to the table directly.
const segmentSupported = false

func flock(f *os.File, take bool) error {
	return errors.New("sqlite: file locks are not supported on this system")
}

func mapHeader(f *os.File, n int) ([]byte, error) {
	return nil, errors.New("sqlite: memory maps are not supported on this system")
}

func unmapHeader(b []byte) error { return nil }

func tryFlock(f *os.File) (bool, error) { return false, flock(f, true) }
