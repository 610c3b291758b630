package keyfile

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func TestLoadOrCreate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "k.key")
	k1, err := LoadOrCreate(path, 32)
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != 32 {
		t.Fatalf("key of %d bytes, want 32", len(k1))
	}
	if runtime.GOOS != "windows" {
		for p, want := range map[string]fs.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
			fi, err := os.Stat(p)
			if err != nil || fi.Mode().Perm() != want {
				t.Errorf("%s: mode %v (%v), want %04o", p, fi.Mode().Perm(), err, want)
			}
		}
	}
	k2, err := LoadOrCreate(path, 32)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("second load: %v (same key: %v)", err, bytes.Equal(k1, k2))
	}
	if b, _ := os.ReadFile(path); strings.TrimSpace(string(b)) != base64.StdEncoding.EncodeToString(k1) {
		t.Errorf("file holds %q, want the base64 key", b)
	}
	if _, err := LoadOrCreate(path, 16); err == nil {
		t.Error("a 32-byte key was accepted as a 16-byte one")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "sub", ".*")); len(left) != 0 {
		t.Errorf("temporary files left behind: %q", left)
	}

	for name, tc := range map[string]struct {
		content string
		mode    fs.FileMode
		want    string
	}{
		"readable by others": {base64.StdEncoding.EncodeToString(k1), 0o644, "chmod 600"},
		"not base64":         {"not a key!", 0o600, "base64"},
		"too short":          {"AAAA\n", 0o600, "base64"},
		"empty":              {"", 0o600, "base64"},
	} {
		if name == "readable by others" && runtime.GOOS == "windows" {
			continue
		}
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if err := os.WriteFile(p, []byte(tc.content), tc.mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, tc.mode) // whatever the umask
		if _, err := LoadOrCreate(p, 32); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error about %q", name, err, tc.want)
		}
		if b, _ := os.ReadFile(p); string(b) != tc.content {
			t.Errorf("%s: the file was changed", name)
		}
	}
	if _, err := LoadOrCreate(filepath.Join(dir, "zero"), 0); err == nil {
		t.Error("size 0 accepted")
	}
}

func TestLoadOrCreateFunc(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.pem")
	calls := 0
	gen := func() ([]byte, error) { calls++; return []byte("content"), nil }
	for range 2 {
		b, err := LoadOrCreateFunc(path, gen)
		if err != nil || string(b) != "content" {
			t.Fatalf("LoadOrCreateFunc = %q, %v", b, err)
		}
	}
	if calls != 1 {
		t.Errorf("gen called %d times, want once", calls)
	}
	boom := errors.New("boom")
	other := filepath.Join(filepath.Dir(path), "other")
	if _, err := LoadOrCreateFunc(other, func() ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("gen error: %v", err)
	}
	if _, err := os.Stat(other); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a failed generation left a file: %v", err)
	}
	if _, err := Read(other); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Read of a missing file: %v, want fs.ErrNotExist", err)
	}
}

// TestLoadOrCreateRace: goroutines and processes that start together all
// end up with the one key that was written first.
func TestLoadOrCreateRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "race", "k.key")
	const goroutines, processes = 8, 4
	keys := make([]string, goroutines+processes)
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i := range goroutines {
		wg.Go(func() {
			k, err := LoadOrCreate(path, 32)
			keys[i], errs[i] = base64.StdEncoding.EncodeToString(k), err
		})
	}
	for i := goroutines; i < len(keys); i++ {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
			cmd.Env = append(os.Environ(), "KEYFILE_HELPER_PATH="+path)
			out, err := cmd.Output()
			keys[i], errs[i] = strings.TrimSpace(string(out)), err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("contender %d: %v", i, err)
		}
		if keys[i] == "" || keys[i] != keys[0] {
			t.Fatalf("contender %d got key %q, contender 0 %q", i, keys[i], keys[0])
		}
	}
}

// TestHelperProcess is a contender of TestLoadOrCreateRace in its own
// process: it prints the key it gets.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv("KEYFILE_HELPER_PATH")
	if path == "" {
		t.Skip("helper process for TestLoadOrCreateRace")
	}
	k, err := LoadOrCreate(path, 32)
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	os.Stdout.WriteString(base64.StdEncoding.EncodeToString(k) + "\n")
	os.Exit(0)
}
