package inventory_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/inventory"
	"github.com/mcpgate/mcpgate/principal"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

// hookRecorder records every hook call.
type hookRecorder struct {
	mu    sync.Mutex
	calls []string
}

func (h *hookRecorder) add(s string) {
	h.mu.Lock()
	h.calls = append(h.calls, s)
	h.mu.Unlock()
}

func (h *hookRecorder) got() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := slices.Clone(h.calls)
	slices.Sort(out)
	return out
}

func (h *hookRecorder) hooks() inventory.RevocationHooks {
	count := func(name string, n int) func(context.Context, inventory.Match) (int, error) {
		return func(ctx context.Context, m inventory.Match) (int, error) {
			if _, ok := ctx.Deadline(); !ok {
				h.add(name + " WITHOUT DEADLINE")
			}
			h.add(name + " " + m.String())
			return n, nil
		}
	}
	return inventory.RevocationHooks{
		RevokeTokens:      count("RevokeTokens", 3),
		CloseSessions:     count("CloseSessions", 2),
		CancelTasks:       count("CancelTasks", 1),
		EndUpstreamAccess: count("EndUpstreamAccess", 1),
		DropUpstreamCredential: func(ctx context.Context, principal, upstream string) error {
			h.add("DropUpstreamCredential " + principal + " " + upstream)
			return nil
		},
		DistrustIdP: func(ctx context.Context, issuer string) error {
			h.add("DistrustIdP " + issuer)
			return nil
		},
	}
}

func TestRevokeRunsHooksWithMatch(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		kind, id string
		calls    []string
		match    inventory.Match
	}{
		{"user", "alice", []string{"CancelTasks user=alice", "CloseSessions user=alice", "EndUpstreamAccess user=alice", "RevokeTokens user=alice"}, inventory.Match{User: "alice"}},
		{"client", cimdID, []string{"CancelTasks client=" + cimdID, "CloseSessions client=" + cimdID, "EndUpstreamAccess client=" + cimdID, "RevokeTokens client=" + cimdID}, inventory.Match{Client: cimdID}},
		{"grant", "fam-1", []string{"CancelTasks grant=fam-1", "CloseSessions grant=fam-1", "EndUpstreamAccess grant=fam-1", "RevokeTokens grant=fam-1"}, inventory.Match{Grant: "fam-1"}},
		{"idp", idpIss, []string{"CancelTasks idp=" + idpIss, "CloseSessions idp=" + idpIss, "DistrustIdP " + idpIss, "EndUpstreamAccess idp=" + idpIss, "RevokeTokens idp=" + idpIss}, inventory.Match{IdP: idpIss}},
		{"upstream-credential", "drive/alice", []string{"DropUpstreamCredential alice drive"}, inventory.Match{}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			st := store.NewInventoryMemory()
			if err := st.PutUpstreamCredential(ctx, &store.UpstreamCredential{Principal: "alice", Upstream: "drive", Kind: "oauth_user"}); err != nil {
				t.Fatal(err)
			}
			rec := &hookRecorder{}
			var evs events
			rv, err := inventory.NewRevoker(ctx, st, &inventory.RevokerOptions{Hooks: rec.hooks(), OnEvent: evs.add})
			if err != nil {
				t.Fatal(err)
			}
			res, err := rv.Revoke(ctx, tc.kind, tc.id, "admin")
			if err != nil {
				t.Fatalf("Revoke: %v", err)
			}
			if got := rec.got(); !slices.Equal(got, tc.calls) {
				t.Errorf("hook calls %v, want %v", got, tc.calls)
			}
			if !res.Durable || res.Match != tc.match || res.By != "admin" || res.Steps[0].Name != "record" {
				t.Errorf("result = %+v", res)
			}
			for _, s := range res.Steps {
				if s.Skipped || s.Err != nil {
					t.Errorf("step %+v", s)
				}
				if s.Name == "CloseSessions" && s.Count != 2 {
					t.Errorf("CloseSessions count %d, want 2", s.Count)
				}
			}
			if e := evs.last(); e.Kind != inventory.EventRevoked || e.Revocation != res || e.By != "admin" {
				t.Errorf("event = %+v", e)
			}
			revs, _ := st.ListRevocations(ctx)
			if len(revs) != 1 || revs[0].Kind != tc.kind || revs[0].ID != tc.id || revs[0].By != "admin" {
				t.Errorf("recorded = %+v", revs)
			}
			if tc.kind == "upstream-credential" {
				if creds, _ := st.ListUpstreamCredentials(ctx); len(creds) != 0 {
					t.Errorf("credential record not removed: %+v", creds)
				}
				if !rv.IsUpstreamCredentialRevoked(ctx, "alice", "drive") || rv.IsUpstreamCredentialRevoked(ctx, "bob", "drive") {
					t.Error("IsUpstreamCredentialRevoked wrong")
				}
			} else if !rv.IsRevoked(ctx, tc.match) {
				t.Errorf("IsRevoked(%v) = false after revocation", tc.match)
			}
		})
	}
}

func TestIsRevoked(t *testing.T) {
	ctx := context.Background()
	rv, err := inventory.NewRevoker(ctx, store.NewInventoryMemory(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]string{{"user", "alice"}, {"client", "c1"}, {"grant", "fam-9"}, {"idp", idpIss}} {
		if _, err := rv.Revoke(ctx, r[0], r[1], "admin"); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		m    inventory.Match
		want bool
	}{
		{inventory.Match{User: "alice"}, true},
		{inventory.Match{User: "bob"}, false},
		{inventory.Match{User: "bob", Client: "c1"}, true},
		{inventory.Match{User: "bob", Client: "c2", Grant: "fam-9"}, true},
		{inventory.Match{User: "bob", Client: "c2", Grant: "fam-1"}, false},
		{inventory.Match{IdP: idpIss}, true},
		{inventory.Match{User: principal.Federated(idpIss, "u1").String()}, true},
		{inventory.Match{User: principal.Federated("https://other.example", "u1").String()}, false},
		{inventory.Match{}, false},
	} {
		if got := rv.IsRevoked(ctx, tc.m); got != tc.want {
			t.Errorf("IsRevoked(%v) = %v, want %v", tc.m, got, tc.want)
		}
	}
	if err := rv.Reinstate(ctx, "user", "alice", "admin"); err != nil {
		t.Fatal(err)
	}
	if rv.IsRevoked(ctx, inventory.Match{User: "alice"}) {
		t.Error("alice still revoked after Reinstate")
	}
	if err := rv.Reinstate(ctx, "user", "alice", "admin"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second Reinstate = %v, want ErrNotFound", err)
	}
}

func TestRevokeBadInput(t *testing.T) {
	ctx := context.Background()
	rv, _ := inventory.NewRevoker(ctx, store.NewInventoryMemory(), nil)
	for _, tc := range [][2]string{{"user", ""}, {"team", "x"}, {"upstream-credential", "drive"}, {"upstream-credential", "/alice"}, {"upstream-credential", "drive/"}} {
		if _, err := rv.Revoke(ctx, tc[0], tc[1], "admin"); err == nil {
			t.Errorf("Revoke(%q, %q) accepted", tc[0], tc[1])
		}
	}
	if revs := rv.Revocations(ctx); len(revs) != 0 {
		t.Errorf("bad input recorded %v", revs)
	}
}

func TestRevokeDurableAcrossRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mcpgate.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	rv, err := inventory.NewRevoker(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]string{{"client", cimdID}, {"user", "alice"}, {"idp", idpIss}} {
		if res, err := rv.Revoke(ctx, r[0], r[1], "admin"); err != nil || !res.Durable {
			t.Fatalf("Revoke %v: %v, %+v", r, err, res)
		}
	}
	db.Close()

	db, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rv, err = inventory.NewRevoker(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []inventory.Match{{Client: cimdID}, {User: "alice"}, {IdP: idpIss}, {User: principal.Federated(idpIss, "x").String()}} {
		if !rv.IsRevoked(ctx, m) {
			t.Errorf("after restart IsRevoked(%v) = false", m)
		}
	}
	if rv.IsRevoked(ctx, inventory.Match{User: "bob", Client: "other"}) {
		t.Error("after restart an unrelated identity is revoked")
	}
	// Revocations made before the restart are not applied again by Sync.
	if res, err := rv.Sync(ctx); err != nil || len(res) != 0 {
		t.Errorf("Sync after restart = %v, %v; want nothing to apply", res, err)
	}
}

func TestRevokePartialFailure(t *testing.T) {
	ctx := context.Background()
	rec := &hookRecorder{}
	h := rec.hooks()
	h.CloseSessions = func(context.Context, inventory.Match) (int, error) { return 1, errors.New("session store unreachable") }
	h.CancelTasks = func(context.Context, inventory.Match) (int, error) { panic("boom") }
	h.DistrustIdP = nil
	var evs events
	st := store.NewInventoryMemory()
	rv, _ := inventory.NewRevoker(ctx, st, &inventory.RevokerOptions{Hooks: h, OnEvent: evs.add})
	res, err := rv.Revoke(ctx, "idp", idpIss, "admin")
	if err == nil || !strings.Contains(err.Error(), "session store unreachable") || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("error = %v, want the failing and panicking hooks named", err)
	}
	if res == nil || !res.Durable {
		t.Fatalf("result = %+v: the record step succeeded", res)
	}
	steps := map[string]inventory.Step{}
	for _, s := range res.Steps {
		steps[s.Name] = s
	}
	if s := steps["RevokeTokens"]; s.Err != nil || s.Count != 3 {
		t.Errorf("RevokeTokens step = %+v", s)
	}
	if s := steps["DistrustIdP"]; !s.Skipped {
		t.Errorf("unregistered DistrustIdP step = %+v, want skipped", s)
	}
	if s := steps["CloseSessions"]; s.Err == nil {
		t.Errorf("CloseSessions step = %+v, want failed", s)
	}
	if e := evs.last(); !strings.Contains(e.Detail, "partial failure") {
		t.Errorf("event detail %q does not report the partial failure", e.Detail)
	}
	if !rv.IsRevoked(ctx, inventory.Match{IdP: idpIss}) {
		t.Error("a partial failure must not undo the revocation")
	}
	if !strings.Contains(res.Summary(), "FAILED") || !strings.Contains(res.Summary(), "skipped") {
		t.Errorf("summary:\n%s", res.Summary())
	}
}

// failingStore fails every revocation write.
type failingStore struct{ store.InventoryStore }

func (failingStore) PutRevocation(context.Context, *store.Revocation) error {
	return errors.New("disk full")
}

func TestRevokeRecordFailureReported(t *testing.T) {
	ctx := context.Background()
	rec := &hookRecorder{}
	clk := newClock()
	rv, _ := inventory.NewRevoker(ctx, failingStore{store.NewInventoryMemory()}, &inventory.RevokerOptions{Hooks: rec.hooks(), RefreshInterval: time.Second, Now: clk.Now})
	res, err := rv.Revoke(ctx, "user", "alice", "admin")
	if err == nil || !strings.Contains(err.Error(), "disk full") || res.Durable {
		t.Fatalf("Revoke = %+v, %v; want a non-durable result and the store error", res, err)
	}
	if len(rec.got()) != 4 {
		t.Errorf("hooks still run when recording fails: %v", rec.got())
	}
	clk.Add(time.Second) // IsRevoked reloads from the store
	if !rv.IsRevoked(ctx, inventory.Match{User: "alice"}) {
		t.Error("revocation lost in this process after a reload because recording failed")
	}
}

// TestRevokeDeadline and TestRevokeDefaultDeadlineIsOneSecond run in a
// synctest bubble: the deadline is measured in bubble time, which only
// passes when every goroutine is blocked, so it is exact on a loaded
// machine too.
func TestRevokeDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		rec := &hookRecorder{}
		h := rec.hooks()
		hookHadDeadline := make(chan bool, 1)
		release := make(chan struct{})
		t.Cleanup(func() { close(release) })
		h.CancelTasks = func(ctx context.Context, _ inventory.Match) (int, error) {
			_, ok := ctx.Deadline()
			<-ctx.Done()
			hookHadDeadline <- ok
			<-release // a broken hook that ignores cancellation
			return 0, nil
		}
		const deadline = 200 * time.Millisecond
		rv, _ := inventory.NewRevoker(ctx, store.NewInventoryMemory(), &inventory.RevokerOptions{Hooks: h, Deadline: deadline})
		start := time.Now()
		res, err := rv.Revoke(ctx, "client", "c1", "admin")
		if took := time.Since(start); took != deadline {
			t.Errorf("Revoke returned after %v with a hanging hook, want the %v deadline", took, deadline)
		}
		if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "CancelTasks") {
			t.Fatalf("error = %v, want CancelTasks deadline exceeded", err)
		}
		if !res.Durable {
			t.Error("record step should have finished")
		}
		synctest.Wait() // the hook has seen its context end
		select {
		case ok := <-hookHadDeadline:
			if !ok {
				t.Error("hook context had no deadline")
			}
		default:
			t.Error("hook context was not cancelled at the deadline")
		}
		for _, s := range res.Steps {
			// EndUpstreamAccess runs after CancelTasks: it never started.
			if s.Name != "CancelTasks" && s.Name != "EndUpstreamAccess" && s.Err != nil {
				t.Errorf("step %s failed: %v", s.Name, s.Err)
			}
		}
	})
}

func TestRevokeDefaultDeadlineIsOneSecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		h := inventory.RevocationHooks{CloseSessions: func(ctx context.Context, _ inventory.Match) (int, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		}}
		rv, _ := inventory.NewRevoker(ctx, store.NewInventoryMemory(), &inventory.RevokerOptions{Hooks: h})
		start := time.Now()
		_, err := rv.Revoke(ctx, "user", "alice", "admin")
		if took := time.Since(start); took != time.Second {
			t.Errorf("took %v, want 1s", took)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error = %v", err)
		}
	})
}

func TestSyncAppliesRevocationsFromAnotherProcess(t *testing.T) {
	ctx := context.Background()
	st := store.NewInventoryMemory()
	rec := &hookRecorder{}
	clk := newClock()
	gw, _ := inventory.NewRevoker(ctx, st, &inventory.RevokerOptions{Hooks: rec.hooks(), Now: clk.Now})
	cli, _ := inventory.NewRevoker(ctx, st, nil) // the command line: no hooks
	res, err := cli.Revoke(ctx, "client", "c1", "ops")
	if err != nil {
		t.Fatalf("Revoke without hooks: %v", err)
	}
	skipped := 0
	for _, s := range res.Steps {
		if s.Skipped {
			skipped++
		}
	}
	if skipped != 4 {
		t.Errorf("%d skipped steps, want 4: %+v", skipped, res.Steps)
	}
	if gw.IsRevoked(ctx, inventory.Match{Client: "c1"}) {
		t.Fatal("seen before the refresh interval: the test clock is not used")
	}
	clk.Add(2 * time.Second)
	if !gw.IsRevoked(ctx, inventory.Match{Client: "c1"}) {
		t.Fatal("revocation by another process not seen after the refresh interval")
	}
	results, err := gw.Sync(ctx)
	if err != nil || len(results) != 1 || results[0].Durable {
		t.Fatalf("Sync = %+v, %v", results, err)
	}
	if got := rec.got(); !slices.Equal(got, []string{"CancelTasks client=c1", "CloseSessions client=c1", "EndUpstreamAccess client=c1", "RevokeTokens client=c1"}) {
		t.Errorf("hooks run by Sync: %v", got)
	}
	if results, _ := gw.Sync(ctx); len(results) != 0 {
		t.Errorf("second Sync applied again: %+v", results)
	}
}

func TestStoreTokenRevoker(t *testing.T) {
	ctx := context.Background()
	fed := principal.Federated(idpIss, "u1").String()
	for _, tc := range []struct {
		m       inventory.Match
		revoked []string
	}{
		{inventory.Match{User: "alice"}, []string{"a1", "a2"}},
		{inventory.Match{Client: "c2"}, []string{"b1", "cc"}},
		{inventory.Match{Grant: "fa"}, []string{"a1", "a2"}},
		{inventory.Match{Grant: "cc"}, []string{"cc"}},
		{inventory.Match{IdP: idpIss}, []string{"f1"}},
	} {
		t.Run(tc.m.String(), func(t *testing.T) {
			ids := store.NewMemory()
			now := newClock().Now()
			exp := now.Add(time.Hour)
			for _, tok := range []*store.AccessToken{
				{ID: "a1", FamilyID: "fa", ClientID: "c1", Subject: "alice", ExpiresAt: exp},
				{ID: "a2", FamilyID: "fa", ClientID: "c1", Subject: "alice", ExpiresAt: exp},
				{ID: "b1", FamilyID: "fb", ClientID: "c2", Subject: "bob", ExpiresAt: exp},
				{ID: "cc", ClientID: "c2", Subject: "c2", ExpiresAt: exp},
				{ID: "f1", FamilyID: "ff", ClientID: "c1", Subject: fed, ExpiresAt: exp},
			} {
				if err := ids.RecordAccessToken(ctx, tok); err != nil {
					t.Fatal(err)
				}
			}
			if err := ids.CreateRefreshToken(ctx, &store.RefreshToken{TokenHash: "rb", FamilyID: "fb", ClientID: "c2", Subject: "bob", ExpiresAt: exp}); err != nil {
				t.Fatal(err)
			}
			n, err := inventory.StoreTokenRevoker(ids, func() time.Time { return now })(ctx, tc.m)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, id := range []string{"a1", "a2", "b1", "cc", "f1"} {
				if r, _ := ids.IsAccessTokenRevoked(ctx, id); r {
					got = append(got, id)
				}
			}
			if !slices.Equal(got, tc.revoked) {
				t.Errorf("revoked %v, want %v", got, tc.revoked)
			}
			if n < len(tc.revoked) {
				t.Errorf("count %d < %d", n, len(tc.revoked))
			}
			rt, _ := ids.GetRefreshToken(ctx, "rb")
			if want := tc.m.Client == "c2"; rt.Revoked != want {
				t.Errorf("bob's refresh token revoked = %v, want %v", rt.Revoked, want)
			}
		})
	}
}

func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	st := store.NewInventoryMemory()
	rv, _ := inventory.NewRevoker(ctx, st, &inventory.RevokerOptions{RefreshInterval: time.Microsecond})
	inv, _ := inventory.New(store.NewMemory(), st, &inventory.Options{BlockChangedTools: true, CacheTTL: time.Microsecond})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 50 {
				id := fmt.Sprintf("u%d-%d", i, j)
				if _, err := rv.Revoke(ctx, "user", id, "admin"); err != nil {
					t.Error(err)
				}
				if !rv.IsRevoked(ctx, inventory.Match{User: id}) {
					t.Errorf("%s not revoked right after Revoke", id)
				}
				if _, err := inv.RecordTools(ctx, "fs", []jsontext.Value{tool("read", fmt.Sprint(j%2))}); err != nil {
					t.Error(err)
				}
				inv.IsToolBlocked(ctx, "fs", "read")
			}
		})
	}
	wg.Wait()
	if n := len(rv.Revocations(ctx)); n != 200 {
		t.Errorf("%d revocations, want 200", n)
	}
}

// A gateway's revoker marks what it applied; a revocation recorded by the
// command line while no gateway ran is applied (with notes) by the first
// Sync of the next gateway, once.
func TestMarkAppliedAndStartUpSync(t *testing.T) {
	ctx := context.Background()
	st := store.NewInventoryMemory()
	cli, _ := inventory.NewRevoker(ctx, st, nil)
	if _, err := cli.Revoke(ctx, "user", "alice", "ops"); err != nil {
		t.Fatal(err)
	}
	revs, _ := st.ListRevocations(ctx)
	if len(revs) != 1 || !revs[0].AppliedAt.IsZero() {
		t.Fatalf("the command line marked its revocation applied: %+v", revs)
	}
	rec := &hookRecorder{}
	h := rec.hooks()
	h.EndUpstreamAccess = func(ctx context.Context, m inventory.Match) (int, error) {
		inventory.Note(ctx, "drive/%s: the upstream offers no revocation endpoint", m.User)
		return 1, nil
	}
	var evs events
	gw, _ := inventory.NewRevoker(ctx, st, &inventory.RevokerOptions{Hooks: h, OnEvent: evs.add, MarkApplied: true})
	if !gw.IsRevoked(ctx, inventory.Match{User: "alice"}) {
		t.Fatal("not refused before the start-up Sync")
	}
	results, err := gw.Sync(ctx)
	if err != nil || len(results) != 1 || !results[0].Elsewhere {
		t.Fatalf("start-up Sync = %+v, %v", results, err)
	}
	if n := results[0].Notes(); len(n) != 1 || !strings.Contains(n[0], "EndUpstreamAccess: drive/alice") {
		t.Errorf("notes = %q", n)
	}
	if e := evs.last(); e.Kind != inventory.EventRevoked || !strings.Contains(e.Detail, "applied here") || !strings.Contains(e.Detail, "no revocation endpoint") {
		t.Errorf("event = %+v", e)
	}
	revs, _ = st.ListRevocations(ctx)
	if revs[0].AppliedAt.IsZero() || !strings.Contains(revs[0].AppliedNote, "no revocation endpoint") {
		t.Errorf("not marked applied: %+v", revs[0])
	}
	// The next gateway finds it applied.
	gw2, _ := inventory.NewRevoker(ctx, st, &inventory.RevokerOptions{Hooks: h, MarkApplied: true})
	if results, _ := gw2.Sync(ctx); len(results) != 0 {
		t.Errorf("applied again: %+v", results)
	}
	// A revocation made by the gateway itself is marked at once.
	if _, err := gw2.Revoke(ctx, "client", "c1", "admin"); err != nil {
		t.Fatal(err)
	}
	revs, _ = st.ListRevocations(ctx)
	for _, r := range revs {
		if r.AppliedAt.IsZero() {
			t.Errorf("%s %s not marked applied", r.Kind, r.ID)
		}
	}
}

// The upstream token is deleted only after the gateway's hook used it to
// revoke the grant at the upstream; without the hook it is kept for the
// gateway.
func TestUpstreamCredentialTokenOrder(t *testing.T) {
	ctx := context.Background()
	st := &tokenInventory{InventoryMemory: store.NewInventoryMemory(), UpstreamTokensMemory: store.NewUpstreamTokensMemory()}
	put := func() {
		if err := st.PutUpstreamToken(ctx, &store.UpstreamToken{Principal: "alice", Upstream: "drive", Ciphertext: []byte("sealed"), UpdatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	put()
	cli, _ := inventory.NewRevoker(ctx, st, nil)
	if _, err := cli.Revoke(ctx, "upstream-credential", "drive/alice", "ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetUpstreamToken(ctx, "alice", "drive"); err != nil {
		t.Errorf("the command line deleted the sealed token the gateway needs: %v", err)
	}
	sawToken := false
	gw, _ := inventory.NewRevoker(ctx, st, &inventory.RevokerOptions{MarkApplied: true, Hooks: inventory.RevocationHooks{
		DropUpstreamCredential: func(ctx context.Context, principal, upstream string) error {
			_, err := st.GetUpstreamToken(ctx, principal, upstream)
			sawToken = err == nil
			return nil
		},
	}})
	if _, err := gw.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if !sawToken {
		t.Error("the hook ran without the token")
	}
	if _, err := st.GetUpstreamToken(ctx, "alice", "drive"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("token after the gateway applied the revocation: %v", err)
	}
}

type tokenInventory struct {
	*store.InventoryMemory
	*store.UpstreamTokensMemory
}
