package oauthclient

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestBrowserCommand(t *testing.T) {
	const u = "https://as.example/authorize?x=1"
	tests := []struct {
		browser, goos string
		want          []string
	}{
		{"", "linux", []string{"xdg-open", u}},
		{"  ", "darwin", []string{"open", u}},
		{"", "windows", []string{"rundll32", "url.dll,FileProtocolHandler", u}},
		{"sh", "linux", []string{"sh", u}},
		{"sh -c 'x'", "linux", []string{"sh", "-c", "'x'", u}},
		{"sh --url=%s --new", "linux", []string{"sh", "--url=" + u, "--new"}},
		{"no-such-browser-mcpgate:sh", "linux", []string{"sh", u}},
		{"::sh", "linux", []string{"sh", u}},
	}
	for _, tt := range tests {
		got, err := browserCommand(tt.browser, tt.goos, u)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("browserCommand(%q, %s) = %q, %v; want %q", tt.browser, tt.goos, got, err, tt.want)
		}
	}
	if _, err := browserCommand("no-such-browser-mcpgate:/no/such/path", "linux", u); err == nil || !strings.Contains(err.Error(), "$BROWSER") {
		t.Errorf("BROWSER naming no program: err = %v", err)
	}
}

// TestOpenBrowserHonoursBROWSER: the command $BROWSER names receives the
// URL as its argument.
func TestOpenBrowserHonoursBROWSER(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("uses a shell script as the browser")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "opened")
	script := filepath.Join(dir, "browser.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nprintf '%s' \"$1\" > "+out+".tmp && mv "+out+".tmp "+out+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BROWSER", script)
	const u = "http://127.0.0.1:1/authorize?state=a&b=c"
	if err := OpenBrowser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		data, err := os.ReadFile(out)
		if err == nil {
			if string(data) != u {
				t.Fatalf("the browser received %q, want %q", data, u)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the browser command did not run within 30 s")
		}
	}
}
