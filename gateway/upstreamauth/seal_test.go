package upstreamauth

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/oauth/oauthclient"
)

// TestUpstreamTokenSealing covers the key file and the sealed format.
func TestUpstreamTokenSealing(t *testing.T) {
	dir := t.TempDir()
	s := NewSealer(filepath.Join(dir, "sub", KeyFile))
	tk := &oauthclient.Token{AccessToken: "at-secret", RefreshToken: "rt-secret", Resource: "https://up.example/mcp", Expiry: time.Unix(1800000000, 0)}
	sealed, err := s.Seal("alice", "files", tk)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("secret")) {
		t.Fatal("sealed token contains the plaintext")
	}
	if st, err := os.Stat(s.keyPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, %v; want mode 0600", st, err)
	}
	// Another instance reads the same key file.
	s2 := NewSealer(s.keyPath)
	got, err := s2.Open("alice", "files", sealed)
	if err != nil || got.AccessToken != "at-secret" || got.RefreshToken != "rt-secret" || !got.Expiry.Equal(tk.Expiry) {
		t.Fatalf("open: %+v, %v", got, err)
	}
	for name, tc := range map[string]struct {
		principal, upstream string
		sealed              []byte
	}{
		"other principal": {"bob", "files", sealed},
		"other upstream":  {"alice", "mail", sealed},
		"truncated":       {"alice", "files", sealed[:10]},
		"empty":           {"alice", "files", nil},
		"bad version":     {"alice", "files", append([]byte{9}, sealed[1:]...)},
		"flipped bit":     {"alice", "files", append(slices.Clone(sealed[:len(sealed)-1]), sealed[len(sealed)-1]^1)},
	} {
		if _, err := s2.Open(tc.principal, tc.upstream, tc.sealed); err == nil {
			t.Errorf("%s: opened", name)
		}
	}
	// Another key does not open it.
	if _, err := NewSealer("").Open("alice", "files", sealed); err == nil {
		t.Error("opened with another key")
	}
	// A key file others can read is refused; so is a malformed one.
	loose := filepath.Join(dir, "loose.key")
	os.WriteFile(loose, []byte("AAAA\n"), 0o644)
	os.Chmod(loose, 0o644)
	if _, err := NewSealer(loose).Seal("alice", "files", tk); err == nil || !strings.Contains(err.Error(), "permissions") {
		t.Errorf("loose key file: %v", err)
	}
	short := filepath.Join(dir, "short.key")
	os.WriteFile(short, []byte("AAAA\n"), 0o600)
	if _, err := NewSealer(short).Seal("alice", "files", tk); err == nil {
		t.Error("short key accepted")
	}
}

// FuzzOpenSealedToken: whatever the database holds, opening it fails
// cleanly or yields a token.
func FuzzOpenSealedToken(f *testing.F) {
	s := NewSealer("")
	sealed, err := s.Seal("p", "u", &oauthclient.Token{AccessToken: "x"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed)
	f.Add([]byte{1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if tk, err := s.Open("p", "u", b); err == nil && tk == nil {
			t.Fatal("nil token without error")
		}
	})
}

// BenchmarkUpstreamTokenSealing measures sealing and opening one token,
// which happens on every per-user connect and refresh.
func BenchmarkUpstreamTokenSealing(b *testing.B) {
	s := NewSealer("")
	tk := &oauthclient.Token{AccessToken: strings.Repeat("a", 800), RefreshToken: strings.Repeat("r", 43), Resource: "https://up.example/mcp", Expiry: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		sealed, err := s.Seal("alice", "files", tk)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Open("alice", "files", sealed); err != nil {
			b.Fatal(err)
		}
	}
}
