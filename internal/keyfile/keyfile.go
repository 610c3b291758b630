// Package keyfile keeps secret keys in files of the data directory: it
// reads a key file, refusing one that group or others can access, and
// creates it on first use, once, even when several processes start at
// the same time.
package keyfile

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// LoadOrCreate returns the size-byte random key in the file at path (one
// line of standard base64), generating the key and writing the file first
// if it does not exist. See LoadOrCreateFunc for how the file is made.
func LoadOrCreate(path string, size int) ([]byte, error) {
	if size <= 0 {
		return nil, fmt.Errorf("key file %s: invalid key size %d", path, size)
	}
	b, err := LoadOrCreateFunc(path, func() ([]byte, error) {
		key := make([]byte, size)
		rand.Read(key)
		return []byte(base64.StdEncoding.EncodeToString(key) + "\n"), nil
	})
	if err != nil {
		return nil, err
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != size {
		return nil, fmt.Errorf("key file %s does not hold a base64 %d-bit key", path, size*8)
	}
	return key, nil
}

// LoadOrCreateFunc returns the contents of the key file at path. If the
// file does not exist, it is written first with what gen returns: the
// directory is created with mode 0700 if needed, and the file, with mode
// 0600, is written under a temporary name and then linked into place, so
// that a concurrent reader never sees a half-written key and, when two
// processes race, the first link wins and both return its contents.
func LoadOrCreateFunc(path string, gen func() ([]byte, error)) ([]byte, error) {
	b, err := Read(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return b, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	content, err := gen()
	if err != nil {
		return nil, fmt.Errorf("key file %s: generating the key: %w", path, err)
	}
	if err := writeNew(path, content); err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return Read(path)
}

// writeNew writes content to a temporary file next to path and links it
// to path; an existing path (another process was first) is not an error.
func writeNew(path string, content []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		tmp.Close()
		return err
	}
	_, err = tmp.Write(content)
	if serr := tmp.Sync(); err == nil {
		err = serr
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	// Make the new name durable; not every system can sync a directory.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Read returns the contents of the key file at path. A file that group
// or others can access is refused (except on Windows, which has no such
// mode bits). An error for a missing file matches fs.ErrNotExist.
func Read(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key file %s is accessible by group or others (permissions %04o); run chmod 600 on it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	return b, nil
}
