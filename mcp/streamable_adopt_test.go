package mcp

import (
	"net/http"
	"sync"
	"testing"
)

// TestStreamableAdoptSession checks the AdoptSession and SessionDeleted
// hooks: a session id the handler does not hold is adopted when the hook
// allows it (bound to the request's principal, initialized with the
// hook's params), refused with 404 otherwise, and a DELETE reports the id.
func TestStreamableAdoptSession(t *testing.T) {
	var (
		mu      sync.Mutex
		asked   []string
		deleted []string
	)
	e := newSHEnv(t, &StreamableHTTPOptions{
		SessionPrincipal: func(r *http.Request) string { return r.Header.Get("X-User") },
		AdoptSession: func(r *http.Request, id string) (*InitializeParams, bool) {
			mu.Lock()
			asked = append(asked, id)
			mu.Unlock()
			if id != "elsewhere" || r.Header.Get("X-User") != "alice" {
				return nil, false
			}
			return &InitializeParams{ProtocolVersion: Version20251125, Capabilities: ClientCapabilities{Sampling: &SamplingCapabilities{}},
				ClientInfo: Implementation{Name: "moved", Version: "1"}}, true
		},
		SessionDeleted: func(id string) {
			mu.Lock()
			deleted = append(deleted, id)
			mu.Unlock()
		},
	})
	ping := `{"jsonrpc":"2.0","id":1,"method":"ping"}`
	for _, tt := range []struct {
		sid, user string
		status    int
	}{
		{"nowhere", "alice", 404},
		{"elsewhere", "mallory", 404},
		{"elsewhere", "alice", 200},
		{"elsewhere", "alice", 200}, // held now: not asked again
		{"elsewhere", "mallory", 404},
	} {
		resp := e.do("POST", tt.sid, ping, map[string]string{"X-User": tt.user, "Mcp-Protocol-Version": Version20251125})
		shReadAll(t, resp)
		if resp.StatusCode != tt.status {
			t.Errorf("%s by %s: status %d, want %d", tt.sid, tt.user, resp.StatusCode, tt.status)
		}
	}
	mu.Lock()
	if len(asked) != 3 {
		t.Errorf("AdoptSession asked %d times (%v), want 3 (not for a session held)", len(asked), asked)
	}
	mu.Unlock()
	var adopted *ServerSession
	for _, ss := range e.srv.Sessions() {
		if ss.ID() == "elsewhere" {
			adopted = ss
		}
	}
	if adopted == nil {
		t.Fatal("no session elsewhere on the server")
	}
	if p := adopted.InitializeParams(); p == nil || p.ClientInfo.Name != "moved" || p.Capabilities.Sampling == nil {
		t.Errorf("the adopted session's params = %+v", p)
	}

	resp := e.do("DELETE", "elsewhere", "", map[string]string{"X-User": "alice"})
	shReadAll(t, resp)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(deleted) != 1 || deleted[0] != "elsewhere" {
		t.Errorf("SessionDeleted got %v, want [elsewhere]", deleted)
	}
}
