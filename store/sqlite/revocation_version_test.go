package sqlite_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

// TestTokenRevocationVersion checks that every revocation of access
// tokens, by this handle or another one on the same file, changes the
// version, that other writes do not, and that OnTokenRevoked runs for
// this handle's revocations.
func TestTokenRevocationVersion(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "test.db")
	a, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var hooked atomic.Int64
	a.OnTokenRevoked(func() { hooked.Add(1) })
	now := time.Now()
	for _, id := range []string{"t1", "t2", "t3"} {
		if err := a.RecordAccessToken(ctx, &store.AccessToken{ID: id, FamilyID: "fam", ClientID: "c", Subject: "alice", Resource: "r", Scope: "s", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	version := func() int64 {
		t.Helper()
		v, err := a.TokenRevocationVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	v0 := version()
	if err := a.RevokeAccessToken(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	v1 := version()
	if v1 == v0 || hooked.Load() != 1 {
		t.Fatalf("after RevokeAccessToken: version %d → %d, %d hook calls", v0, v1, hooked.Load())
	}
	if _, err := b.RevokeFamily(ctx, "fam"); err != nil {
		t.Fatal(err)
	}
	v2 := version()
	if v2 == v1 || hooked.Load() != 1 {
		t.Fatalf("after RevokeFamily by the other handle: version %d → %d, %d hook calls (want the version changed, no hook here)", v1, v2, hooked.Load())
	}
	if err := a.RecordAccessToken(ctx, &store.AccessToken{ID: "t4", ClientID: "c", Subject: "alice", Resource: "r", Scope: "s", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if v := version(); v != v2 {
		t.Fatalf("issuing a token changed the version %d → %d", v2, v)
	}
}
