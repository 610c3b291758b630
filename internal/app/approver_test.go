package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/approval"
	"github.com/mcpgate/mcpgate/internal/pwguard"
	"github.com/mcpgate/mcpgate/oauth/authserver"
	"github.com/mcpgate/mcpgate/store"
)

// TestApproverPasswordThrottle: password checks on the approval pages are
// throttled per user name and per source address (429 with Retry-After),
// like the sign-in form, through the shared guard.
func TestApproverPasswordThrottle(t *testing.T) {
	st := store.NewMemory()
	hash, err := authserver.HashPassword("right", &authserver.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateUser(context.Background(), &store.User{Username: "ann", PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	guard := pwguard.New(&pwguard.Options{Failures: 3, Window: time.Minute, AddressFailures: 3})
	h := approval.New(store.NewApprovalsMemory(), &approval.Options{BaseURL: "http://gw/approvals", Authenticate: localApprover(st, []string{"ann"}, guard)}).Handler()
	try := func(user, pw, addr string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = addr + ":1234"
		r.SetBasicAuth(user, pw)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	if w := try("ann", "right", "10.0.0.9"); w.Code != http.StatusOK {
		t.Fatalf("right password: %d", w.Code)
	}
	for range 3 {
		if w := try("ann", "wrong", "10.0.0.1"); w.Code != http.StatusUnauthorized {
			t.Fatalf("wrong password: %d", w.Code)
		}
	}
	w := try("ann", "right", "10.0.0.2")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Fatalf("throttled user: %d %q", w.Code, w.Header().Get("Retry-After"))
	}
	if w := try("bob", "x", "10.0.0.1"); w.Code != http.StatusTooManyRequests {
		t.Fatalf("throttled address: %d", w.Code)
	}
}
