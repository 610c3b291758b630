// Package approvaltest is a conformance test for store.Approvals
// implementations.
package approvaltest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

// Run runs the conformance test against stores made by open; each call of
// open must return a new, empty store.
func Run(t *testing.T, open func(t *testing.T) store.Approvals) {
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, open(t)) })
	t.Run("CreateDeduplicates", func(t *testing.T) { testCreateDeduplicates(t, open(t)) })
	t.Run("CreateInvalid", func(t *testing.T) { testCreateInvalid(t, open(t)) })
	t.Run("Lists", func(t *testing.T) { testLists(t, open(t)) })
	t.Run("Decide", func(t *testing.T) { testDecide(t, open(t)) })
	t.Run("Consume", func(t *testing.T) { testConsume(t, open(t)) })
	t.Run("ConcurrentConsume", func(t *testing.T) { testConcurrentConsume(t, open(t)) })
	t.Run("ConcurrentCreate", func(t *testing.T) { testConcurrentCreate(t, open(t)) })
	t.Run("DeleteExpired", func(t *testing.T) { testDeleteExpired(t, open(t)) })
}

var base = time.Date(2026, 11, 26, 9, 0, 0, 123456789, time.UTC)

func record(id, binding string, created time.Time) *store.ApprovalRecord {
	return &store.ApprovalRecord{
		ID: id, Binding: binding,
		Principal: "alice", Client: "https://client.example/cimd.json", Session: "s-1",
		Upstream: "files", Tool: "files__delete", Arguments: []byte(`{"path":"/srv/é","force":true}`),
		PolicyVersion: "pv-1", Policies: []string{"require-approval-delete", "p2"}, Reason: "deleting files needs a second pair of eyes",
		Status: store.ApprovalPending, CreatedAt: created, ExpiresAt: created.Add(10 * time.Minute),
	}
}

func create(t *testing.T, st store.Approvals, a *store.ApprovalRecord, now time.Time) *store.ApprovalRecord {
	t.Helper()
	got, created, err := st.CreateApproval(context.Background(), a, now)
	if err != nil {
		t.Fatalf("CreateApproval(%s): %v", a.ID, err)
	}
	if !created {
		t.Fatalf("CreateApproval(%s): created = false, want true (got %s)", a.ID, got.ID)
	}
	return got
}

func same(t *testing.T, what string, got, want *store.ApprovalRecord) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: nil record", what)
	}
	g, w := *got, *want
	if !bytes.Equal(g.Arguments, w.Arguments) || (g.Arguments == nil) != (w.Arguments == nil) {
		t.Errorf("%s: Arguments = %q (nil %v), want %q (nil %v)", what, g.Arguments, g.Arguments == nil, w.Arguments, w.Arguments == nil)
	}
	if !slices.Equal(g.Policies, w.Policies) {
		t.Errorf("%s: Policies = %q, want %q", what, g.Policies, w.Policies)
	}
	for _, c := range []struct {
		name      string
		got, want time.Time
	}{
		{"CreatedAt", g.CreatedAt, w.CreatedAt}, {"ExpiresAt", g.ExpiresAt, w.ExpiresAt},
		{"DecidedAt", g.DecidedAt, w.DecidedAt}, {"ConsumedAt", g.ConsumedAt, w.ConsumedAt},
	} {
		if !c.got.Equal(c.want) || c.got.IsZero() != c.want.IsZero() {
			t.Errorf("%s: %s = %v, want %v", what, c.name, c.got, c.want)
		}
	}
	g.Arguments, w.Arguments, g.Policies, w.Policies = nil, nil, nil, nil
	g.CreatedAt, g.ExpiresAt, g.DecidedAt, g.ConsumedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	w.CreatedAt, w.ExpiresAt, w.DecidedAt, w.ConsumedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, g, w)
	}
}

func testRoundTrip(t *testing.T, st store.Approvals) {
	ctx := context.Background()
	a := record("a1", "b1", base)
	got := create(t, st, a, base)
	same(t, "created", got, a)
	got, err := st.GetApproval(ctx, "a1")
	if err != nil {
		t.Fatal(err)
	}
	same(t, "get", got, a)
	// The store returns copies: changing them changes nothing stored.
	got.Arguments[0], got.Policies[0], got.Status = 'X', "changed", store.ApprovalApproved
	again, err := st.GetApproval(ctx, "a1")
	if err != nil {
		t.Fatal(err)
	}
	same(t, "get after caller edits", again, a)

	// Absent arguments and policies, empty strings.
	b := &store.ApprovalRecord{ID: "a2", Binding: "b2", Principal: "bob", Tool: "t", Status: store.ApprovalPending, CreatedAt: base, ExpiresAt: base.Add(time.Second)}
	create(t, st, b, base)
	got, err = st.GetApproval(ctx, "a2")
	if err != nil {
		t.Fatal(err)
	}
	same(t, "minimal", got, b)

	if _, err := st.GetApproval(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetApproval(unknown) = %v, want ErrNotFound", err)
	}
}

func testCreateDeduplicates(t *testing.T, st store.Approvals) {
	ctx := context.Background()
	first := create(t, st, record("a1", "b1", base), base)
	// Same binding while pending: the existing one comes back.
	got, created, err := st.CreateApproval(ctx, record("a2", "b1", base.Add(time.Minute)), base.Add(time.Minute))
	if err != nil || created || got.ID != first.ID {
		t.Fatalf("CreateApproval(same binding) = %v, %v, %v; want a1, false, nil", got, created, err)
	}
	if _, err := st.GetApproval(ctx, "a2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deduplicated approval a2 was stored: %v", err)
	}
	// Other binding: a new one.
	create(t, st, record("a3", "b2", base), base)
	// Same id: refused.
	if _, _, err := st.CreateApproval(ctx, record("a3", "b3", base), base); !errors.Is(err, store.ErrExists) {
		t.Errorf("CreateApproval(duplicate id) = %v, want ErrExists", err)
	}
	// Once the pending one has expired, a new one is created.
	later := base.Add(10 * time.Minute)
	create(t, st, record("a4", "b1", later), later)
	// Once it is decided, a new one is created too.
	if _, err := st.DecideApproval(ctx, "a4", store.ApprovalDenied, "carol", "", later); err != nil {
		t.Fatal(err)
	}
	create(t, st, record("a5", "b1", later.Add(time.Second)), later.Add(time.Second))
}

func testCreateInvalid(t *testing.T, st store.Approvals) {
	ctx := context.Background()
	for name, edit := range map[string]func(*store.ApprovalRecord){
		"no id":       func(a *store.ApprovalRecord) { a.ID = "" },
		"no binding":  func(a *store.ApprovalRecord) { a.Binding = "" },
		"not pending": func(a *store.ApprovalRecord) { a.Status = store.ApprovalApproved },
		"no expiry":   func(a *store.ApprovalRecord) { a.ExpiresAt = time.Time{} },
	} {
		a := record("x", "bx", base)
		edit(a)
		if _, _, err := st.CreateApproval(ctx, a, base); err == nil {
			t.Errorf("%s: CreateApproval succeeded", name)
		}
	}
	if _, _, err := st.CreateApproval(ctx, nil, base); err == nil {
		t.Error("CreateApproval(nil) succeeded")
	}
	if got, err := st.PendingApprovals(ctx, base); err != nil || len(got) != 0 {
		t.Errorf("after invalid creates: pending = %v, %v; want none", got, err)
	}
}

func ids(as []*store.ApprovalRecord) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.ID)
	}
	return out
}

func testLists(t *testing.T, st store.Approvals) {
	ctx := context.Background()
	create(t, st, record("c", "b1", base), base)
	create(t, st, record("a", "b2", base.Add(time.Second)), base)
	create(t, st, record("b", "b3", base.Add(2*time.Second)), base)
	short := record("e", "b4", base.Add(3*time.Second))
	short.ExpiresAt = base.Add(5 * time.Second)
	create(t, st, short, base)
	if _, err := st.DecideApproval(ctx, "c", store.ApprovalApproved, "carol", "", base.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	// A second approval with binding b1 (c is no longer pending).
	create(t, st, record("d", "b1", base.Add(4*time.Second)), base.Add(4*time.Second))

	got, err := st.PendingApprovals(ctx, base.Add(4*time.Second))
	if want := []string{"a", "b", "e", "d"}; err != nil || !slices.Equal(ids(got), want) {
		t.Errorf("PendingApprovals = %v, %v; want %v", ids(got), err, want)
	}
	got, err = st.PendingApprovals(ctx, base.Add(5*time.Second))
	if want := []string{"a", "b", "d"}; err != nil || !slices.Equal(ids(got), want) {
		t.Errorf("PendingApprovals after e expired = %v, %v; want %v", ids(got), err, want)
	}
	got, err = st.FindApprovals(ctx, "b1")
	if want := []string{"d", "c"}; err != nil || !slices.Equal(ids(got), want) {
		t.Errorf("FindApprovals(b1) = %v, %v; want %v", ids(got), err, want)
	}
	got, err = st.FindApprovals(ctx, "none")
	if err != nil || len(got) != 0 {
		t.Errorf("FindApprovals(none) = %v, %v; want none", ids(got), err)
	}
}

func testDecide(t *testing.T, st store.Approvals) {
	ctx := context.Background()
	create(t, st, record("a1", "b1", base), base)
	create(t, st, record("a2", "b2", base), base)
	now := base.Add(time.Minute)

	if _, err := st.DecideApproval(ctx, "a1", store.ApprovalConsumed, "carol", "", now); err == nil || errors.Is(err, store.ErrApprovalState) {
		t.Errorf("DecideApproval(status consumed) = %v, want a usage error", err)
	}
	got, err := st.DecideApproval(ctx, "a1", store.ApprovalApproved, "carol", "looks fine", now)
	if err != nil {
		t.Fatal(err)
	}
	want := record("a1", "b1", base)
	want.Status, want.Approver, want.Note, want.DecidedAt = store.ApprovalApproved, "carol", "looks fine", now
	same(t, "decided", got, want)
	stored, err := st.GetApproval(ctx, "a1")
	if err != nil {
		t.Fatal(err)
	}
	same(t, "decided, stored", stored, want)

	// A second decision is refused and changes nothing.
	got, err = st.DecideApproval(ctx, "a1", store.ApprovalDenied, "dave", "no", now.Add(time.Second))
	if !errors.Is(err, store.ErrApprovalState) {
		t.Fatalf("second DecideApproval = %v, want ErrApprovalState", err)
	}
	same(t, "second decision's record", got, want)
	stored, _ = st.GetApproval(ctx, "a1")
	same(t, "after refused second decision", stored, want)

	// Expired: refused.
	exp := base.Add(10 * time.Minute)
	if got, err := st.DecideApproval(ctx, "a2", store.ApprovalApproved, "carol", "", exp); !errors.Is(err, store.ErrApprovalState) || got == nil || got.Status != store.ApprovalPending {
		t.Errorf("DecideApproval(expired) = %+v, %v; want pending record, ErrApprovalState", got, err)
	}
	if _, err := st.DecideApproval(ctx, "nope", store.ApprovalApproved, "carol", "", now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DecideApproval(unknown) = %v, want ErrNotFound", err)
	}
	// Deny works the same way.
	create(t, st, record("a3", "b3", base), base)
	if got, err := st.DecideApproval(ctx, "a3", store.ApprovalDenied, "carol", "no", now); err != nil || got.Status != store.ApprovalDenied {
		t.Errorf("DecideApproval(deny) = %+v, %v", got, err)
	}
}

func testConsume(t *testing.T, st store.Approvals) {
	ctx := context.Background()
	create(t, st, record("a1", "b1", base), base)
	now := base.Add(time.Minute)
	if got, err := st.ConsumeApproval(ctx, "a1", now); !errors.Is(err, store.ErrApprovalState) || got.Status != store.ApprovalPending {
		t.Errorf("ConsumeApproval(pending) = %+v, %v; want ErrApprovalState", got, err)
	}
	if _, err := st.DecideApproval(ctx, "a1", store.ApprovalApproved, "carol", "", now); err != nil {
		t.Fatal(err)
	}
	use := now.Add(time.Second)
	got, err := st.ConsumeApproval(ctx, "a1", use)
	if err != nil || got.Status != store.ApprovalConsumed || !got.ConsumedAt.Equal(use) || got.Approver != "carol" {
		t.Fatalf("ConsumeApproval = %+v, %v; want consumed at %v", got, err, use)
	}
	got, err = st.ConsumeApproval(ctx, "a1", use.Add(time.Second))
	if !errors.Is(err, store.ErrApprovalState) || got.Status != store.ApprovalConsumed || !got.ConsumedAt.Equal(use) {
		t.Errorf("second ConsumeApproval = %+v, %v; want consumed record, ErrApprovalState", got, err)
	}
	// Approved but expired: refused.
	create(t, st, record("a2", "b2", base), base)
	if _, err := st.DecideApproval(ctx, "a2", store.ApprovalApproved, "carol", "", now); err != nil {
		t.Fatal(err)
	}
	if got, err := st.ConsumeApproval(ctx, "a2", base.Add(10*time.Minute)); !errors.Is(err, store.ErrApprovalState) || got.Status != store.ApprovalApproved {
		t.Errorf("ConsumeApproval(expired) = %+v, %v; want ErrApprovalState", got, err)
	}
	// Denied: refused.
	create(t, st, record("a3", "b3", base), base)
	if _, err := st.DecideApproval(ctx, "a3", store.ApprovalDenied, "carol", "", now); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ConsumeApproval(ctx, "a3", now); !errors.Is(err, store.ErrApprovalState) {
		t.Errorf("ConsumeApproval(denied) = %v; want ErrApprovalState", err)
	}
	if _, err := st.ConsumeApproval(ctx, "nope", now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ConsumeApproval(unknown) = %v, want ErrNotFound", err)
	}
}

func testConcurrentConsume(t *testing.T, st store.Approvals) {
	ctx := context.Background()
	create(t, st, record("a1", "b1", base), base)
	now := base.Add(time.Minute)
	if _, err := st.DecideApproval(ctx, "a1", store.ApprovalApproved, "carol", "", now); err != nil {
		t.Fatal(err)
	}
	const n = 12
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, errs[i] = st.ConsumeApproval(ctx, "a1", now) })
	}
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrApprovalState):
			t.Errorf("consumer %d: %v", i, err)
		}
	}
	if ok != 1 {
		t.Errorf("%d concurrent consumers succeeded, want exactly 1", ok)
	}
}

func testConcurrentCreate(t *testing.T, st store.Approvals) {
	ctx := context.Background()
	const n = 8
	var wg sync.WaitGroup
	got := make([]string, n)
	created := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			a, c, err := st.CreateApproval(ctx, record(fmt.Sprintf("a%d", i), "b1", base), base)
			if err == nil {
				got[i], created[i] = a.ID, c
			}
			errs[i] = err
		})
	}
	wg.Wait()
	nc := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("creator %d: %v", i, errs[i])
		}
		if created[i] {
			nc++
		}
		if got[i] != got[0] {
			t.Errorf("creator %d got %s, creator 0 got %s: want one shared approval", i, got[i], got[0])
		}
	}
	if nc != 1 {
		t.Errorf("%d creators created, want 1", nc)
	}
	if all, err := st.FindApprovals(ctx, "b1"); err != nil || len(all) != 1 {
		t.Errorf("FindApprovals = %v, %v; want one", ids(all), err)
	}
}

func testDeleteExpired(t *testing.T, st store.Approvals) {
	ctx := context.Background()
	create(t, st, record("a1", "b1", base), base)                  // expires base+10m
	create(t, st, record("a2", "b2", base.Add(time.Minute)), base) // expires base+11m
	n, err := st.DeleteApprovalsExpiredBefore(ctx, base.Add(10*time.Minute))
	if err != nil || n != 0 {
		t.Errorf("DeleteApprovalsExpiredBefore(at expiry) = %d, %v; want 0", n, err)
	}
	n, err = st.DeleteApprovalsExpiredBefore(ctx, base.Add(10*time.Minute+1))
	if err != nil || n != 1 {
		t.Errorf("DeleteApprovalsExpiredBefore = %d, %v; want 1", n, err)
	}
	if _, err := st.GetApproval(ctx, "a1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a1 after delete: %v, want ErrNotFound", err)
	}
	if _, err := st.GetApproval(ctx, "a2"); err != nil {
		t.Errorf("a2 after delete: %v", err)
	}
}
