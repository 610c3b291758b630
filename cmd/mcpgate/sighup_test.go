//go:build unix

package main

import (
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeSurvivesSIGHUP: SIGHUP does not end the gateway; it says that
// reloading is not supported and keeps serving.
func TestServeSurvivesSIGHUP(t *testing.T) {
	srv := serveYAML(t, "data_dir: ./data\nserver:\n  startup_wait: 1ms\nupstreams:\n  - name: down\n    url: http://127.0.0.1:1/mcp\n")
	cancel, stderr, done, endpoint := srv.cancel, srv.stderr, srv.done, srv.endpoint
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitForOutput(t, stderr, done, "SIGHUP received: reloading the configuration is not supported yet")
	resp, err := http.Get(strings.TrimSuffix(endpoint, "/mcp") + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz after SIGHUP = %d", resp.StatusCode)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code %d:\n%s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
}
