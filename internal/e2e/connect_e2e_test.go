package e2e

import (
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/internal/connect"
	"github.com/mcpgate/mcpgate/mcp"
)

// runConnect starts connect.Run on pipes and returns an MCP client
// session over them, as a stdio host would have; stop closes the session
// and returns Run's error.
func runConnect(ctx context.Context, t *testing.T, o connect.Options) (cs *mcp.ClientSession, stop func() error) {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	o.Stdin, o.Stdout, o.Stderr = inR, outW, io.Discard
	o.Logger = discardLogger()
	done := make(chan error, 1)
	go func() { done <- connect.Run(ctx, &o) }()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "stdio-host", Version: "1"}, nil).Connect(ctx,
		&mcp.IOTransport{Reader: outR, Writer: inW}, nil)
	if err != nil {
		inW.Close()
		t.Fatalf("initialize through mcpgate connect: %v (Run: %v)", err, <-done)
	}
	return cs, func() error {
		cs.Close()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			return errors.New("mcpgate connect did not stop after the host closed stdin")
		}
	}
}

// TestConnect is issue 15's "clients in one step": mcpgate connect serves
// MCP on stdio and relays to a gateway with OAuth, signing in through the
// browser once (dynamic registration, PKCE, loopback redirect) and reusing
// the stored token on the next run.
func TestConnect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	w := newControlsWorld(t)
	tokenFile := filepath.Join(t.TempDir(), "tokens", "gw.json")
	b := newBrowser("alice", "alice-password")
	var opened atomic.Int32
	o := connect.Options{URL: w.base + "/mcp", TokenFile: tokenFile, OpenURL: func(ctx context.Context, u string) error {
		opened.Add(1)
		return b.open(ctx, u)
	}}

	cs, stop := runConnect(ctx, t, o)
	if got, want := toolNames(ctx, t, cs), []string{"deploy", "long_job", "read_file", "report"}; !slices.Equal(got, want) {
		t.Errorf("tools/list through connect: %v, want %v", got, want)
	}
	if got, err := callTool(ctx, cs, "read_file", `{"path":"/srv/docs/guide.md"}`); err != nil || !strings.Contains(got, "guide.md") {
		t.Errorf("tools/call through connect: %q %v", got, err)
	}
	if err := stop(); err != nil {
		t.Errorf("first run: %v", err)
	}
	if n := opened.Load(); n != 1 {
		t.Errorf("the browser was opened %d times, want 1", n)
	}
	fi, err := os.Stat(tokenFile)
	if err != nil {
		t.Fatalf("token file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", fi.Mode().Perm())
	}

	// The second run uses the stored token: no sign-in.
	cs, stop = runConnect(ctx, t, o)
	if got, err := callTool(ctx, cs, "read_file", `{"path":"/srv/docs/guide.md"}`); err != nil || !strings.Contains(got, "guide.md") {
		t.Errorf("tools/call on the second run: %q %v", got, err)
	}
	if err := stop(); err != nil {
		t.Errorf("second run: %v", err)
	}
	if n := opened.Load(); n != 1 {
		t.Errorf("the second run opened the browser (%d sign-ins in all)", n)
	}

	// An expired access token is refreshed without the browser.
	first := editToken(t, tokenFile, o.URL, func(tok map[string]any) { tok["expiry"] = time.Now().Add(-time.Hour).Format(time.RFC3339) })
	cs, stop = runConnect(ctx, t, o)
	if got := toolNames(ctx, t, cs); len(got) != 4 {
		t.Errorf("tools/list after expiry: %v", got)
	}
	if err := stop(); err != nil {
		t.Errorf("run after expiry: %v", err)
	}
	refreshed := editToken(t, tokenFile, o.URL, func(map[string]any) {})
	if n := opened.Load(); n != 1 || refreshed["access_token"] == first["access_token"] {
		t.Errorf("after expiry: %d sign-ins, access token changed %v; want 1 and a refreshed token", n, refreshed["access_token"] != first["access_token"])
	}

	// A refresh token the server refuses (invalid_grant) leads to a new
	// sign-in.
	editToken(t, tokenFile, o.URL, func(tok map[string]any) {
		tok["expiry"] = time.Now().Add(-time.Hour).Format(time.RFC3339)
		tok["refresh_token"] = "not-a-refresh-token"
	})
	cs, stop = runConnect(ctx, t, o)
	if got := toolNames(ctx, t, cs); len(got) != 4 {
		t.Errorf("tools/list after a refused refresh: %v", got)
	}
	if err := stop(); err != nil {
		t.Errorf("run after a refused refresh: %v", err)
	}
	if n := opened.Load(); n != 2 {
		t.Errorf("after a refused refresh: %d sign-ins in all, want 2", n)
	}

	// With a static Authorization header there is no OAuth at all.
	stored := editToken(t, tokenFile, o.URL, func(map[string]any) {})
	cs, stop = runConnect(ctx, t, connect.Options{URL: o.URL, Header: http.Header{"Authorization": {"Bearer " + stored["access_token"].(string)}},
		OpenURL: func(context.Context, string) error { return errors.New("no sign-in expected") }})
	if got := toolNames(ctx, t, cs); len(got) != 4 {
		t.Errorf("tools/list with a static header: %v", got)
	}
	if err := stop(); err != nil {
		t.Errorf("static header run: %v", err)
	}
}

// editToken changes the token stored for key in the token file and
// returns it as it was before the change.
func editToken(t *testing.T, file, key string, edit func(tok map[string]any)) map[string]any {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]map[string]any
	if err := json.Unmarshal(data, &m); err != nil || m[key] == nil {
		t.Fatalf("token file %s: %v", data, err)
	}
	before := maps.Clone(m[key])
	edit(m[key])
	if data, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return before
}
