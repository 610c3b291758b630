package approval

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// stores are the store implementations every service test runs against.
var stores = []struct {
	name string
	open func(t *testing.T) store.Approvals
}{
	{"memory", func(t *testing.T) store.Approvals { return store.NewApprovalsMemory() }},
	{"sqlite", func(t *testing.T) store.Approvals {
		st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "approvals.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}},
}

func forEachStore(t *testing.T, f func(t *testing.T, st store.Approvals)) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) { f(t, s.open(t)) })
	}
}

const testBase = "https://gw.example.com/approvals"

func newService(st store.Approvals, c *clock, opts *Options) *Service {
	o := Options{BaseURL: testBase + "/", Now: c.Now}
	if opts != nil {
		o = *opts
		if o.Now == nil {
			o.Now = c.Now
		}
	}
	s := New(st, &o)
	s.pollInterval = 5 * time.Millisecond
	return s
}

func deleteRequest() *Request {
	return &Request{
		Principal: "alice", Client: "https://client.example/cimd.json", Session: "sess-1", Upstream: "files",
		Tool: "files__delete", Arguments: jsontext.Value(`{"path":"/srv/data","recursive":true,"n":1.0}`),
		PolicyVersion: "pv-1", Policies: []string{"require-approval-delete"}, Reason: "deletes data",
	}
}

// isOnly reports whether err matches want and none of the other specific
// reasons.
func isOnly(err, want error) bool {
	if !errors.Is(err, want) || !errors.Is(err, ErrNotApproved) {
		return false
	}
	for _, other := range []error{ErrDenied, ErrExpired, ErrPending, ErrConsumed, ErrNotFound} {
		if other != want && errors.Is(err, other) {
			return false
		}
	}
	return true
}

func TestLifecycle(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Approvals) {
		ctx := context.Background()
		c := newClock()
		var decided []*Approval
		svc := newService(st, c, &Options{BaseURL: testBase, OnDecision: func(a *Approval) { decided = append(decided, a) }})

		req := deleteRequest()
		a, err := svc.Request(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		wantBinding := mustBinding(t, "alice", "files__delete", `{"n":1,"path":"/srv/data","recursive":true}`, "pv-1")
		switch {
		case a.Status != StatusPending:
			t.Errorf("new approval status %s, want pending", a.Status)
		case a.URL != testBase+"/"+a.ID:
			t.Errorf("URL = %s, want %s/%s", a.URL, testBase, a.ID)
		case a.Binding != wantBinding:
			t.Errorf("Binding = %s, want %s", a.Binding, wantBinding)
		case !a.ExpiresAt.Equal(c.Now().Add(DefaultTTL)) || !a.CreatedAt.Equal(c.Now()):
			t.Errorf("created %v expires %v, want now and now+10m", a.CreatedAt, a.ExpiresAt)
		case a.Request.Principal != "alice" || a.Request.Client != req.Client || a.Request.Session != "sess-1" || a.Request.Upstream != "files" ||
			string(a.Request.Arguments) != string(req.Arguments) || !slices.Equal(a.Request.Policies, req.Policies) || a.Request.Reason != req.Reason:
			t.Errorf("request not kept: %+v", a.Request)
		case len(a.ID) < 22:
			t.Errorf("id %q is too short to be unguessable", a.ID)
		}

		// A retry before any decision gets the same approval, even with
		// the arguments reordered.
		c.Advance(time.Minute)
		retry := deleteRequest()
		retry.Arguments = jsontext.Value(`{"recursive":true,"n":1,"path":"/srv/data"}`)
		if again, err := svc.Request(ctx, retry); err != nil || again.ID != a.ID {
			t.Fatalf("second Request = %v, %v; want the pending %s", again, err, a.ID)
		}

		if _, err := svc.Consume(ctx, deleteRequest()); !isOnly(err, ErrPending) {
			t.Errorf("Consume(pending) = %v, want ErrPending", err)
		}
		pending, err := svc.Pending(ctx)
		if err != nil || len(pending) != 1 || pending[0].ID != a.ID {
			t.Fatalf("Pending = %v, %v; want [%s]", pending, err, a.ID)
		}

		// The requester cannot approve their own request.
		if err := svc.Decide(ctx, a.ID, "alice", true, ""); !errors.Is(err, ErrSelfApproval) {
			t.Errorf("self-approval: %v, want ErrSelfApproval", err)
		}
		if got, _ := svc.Get(ctx, a.ID); got.Status != StatusPending {
			t.Errorf("after refused self-approval: status %s", got.Status)
		}
		if err := svc.Decide(ctx, a.ID, "", true, ""); err == nil {
			t.Error("decision without approver accepted")
		}

		if err := svc.Decide(ctx, a.ID, "carol", true, "ok for today"); err != nil {
			t.Fatal(err)
		}
		if len(decided) != 1 || decided[0].ID != a.ID || decided[0].Status != StatusApproved || decided[0].Approver != "carol" || decided[0].Note != "ok for today" {
			t.Errorf("OnDecision got %+v", decided)
		}
		if err := svc.Decide(ctx, a.ID, "dave", false, ""); !errors.Is(err, ErrDecided) {
			t.Errorf("second decision: %v, want ErrDecided", err)
		}
		if len(decided) != 1 {
			t.Errorf("OnDecision called %d times, want 1", len(decided))
		}
		if pending, _ := svc.Pending(ctx); len(pending) != 0 {
			t.Errorf("Pending after decision = %v", pending)
		}

		// Anything but the exact call is not approved.
		altered := deleteRequest()
		altered.Arguments = jsontext.Value(`{"path":"/srv","recursive":true,"n":1}`)
		otherPrincipal := deleteRequest()
		otherPrincipal.Principal = "bob"
		otherVersion := deleteRequest()
		otherVersion.PolicyVersion = "pv-2"
		otherTool := deleteRequest()
		otherTool.Tool = "files__wipe"
		noArgs := deleteRequest()
		noArgs.Arguments = nil
		for name, r := range map[string]*Request{"altered arguments": altered, "other principal": otherPrincipal, "other policy version": otherVersion, "other tool": otherTool, "no arguments": noArgs} {
			if got, err := svc.Consume(ctx, r); !isOnly(err, ErrNotApproved) || got != nil {
				t.Errorf("Consume(%s) = %v, %v; want only ErrNotApproved", name, got, err)
			}
		}

		// The exact call (in any member order) is approved, once.
		c.Advance(time.Minute)
		used, err := svc.Consume(ctx, retry)
		if err != nil {
			t.Fatalf("Consume(approved) = %v", err)
		}
		if used.ID != a.ID || used.Status != StatusConsumed || used.Approver != "carol" {
			t.Errorf("consumed approval = %+v", used)
		}
		if _, err := svc.Consume(ctx, deleteRequest()); !isOnly(err, ErrConsumed) {
			t.Errorf("replayed Consume = %v, want ErrConsumed", err)
		}
		if got, err := svc.Get(ctx, a.ID); err != nil || got.Status != StatusConsumed {
			t.Errorf("Get after use = %+v, %v", got, err)
		}
		// A new request for the same call needs a new approval.
		next, err := svc.Request(ctx, deleteRequest())
		if err != nil || next.ID == a.ID || next.Status != StatusPending {
			t.Errorf("Request after use = %+v, %v; want a new pending approval", next, err)
		}
		if _, err := svc.Consume(ctx, deleteRequest()); !isOnly(err, ErrPending) {
			t.Errorf("Consume with a new pending approval = %v, want ErrPending", err)
		}
	})
}

func TestDeny(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Approvals) {
		ctx := context.Background()
		c := newClock()
		svc := newService(st, c, nil)
		a, err := svc.Request(ctx, deleteRequest())
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.Decide(ctx, a.ID, "carol", false, "no"); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Consume(ctx, deleteRequest()); !isOnly(err, ErrDenied) {
			t.Errorf("Consume(denied) = %v, want ErrDenied", err)
		}
		if err := svc.Decide(ctx, a.ID, "dave", true, ""); !errors.Is(err, ErrDecided) {
			t.Errorf("approve after deny: %v, want ErrDecided", err)
		}
		got, err := svc.Get(ctx, a.ID)
		if err != nil || got.Status != StatusDenied || got.Approver != "carol" || got.Note != "no" || got.DecidedAt.IsZero() {
			t.Errorf("Get = %+v, %v", got, err)
		}
		// The denial holds until the approval's expiry, then the caller
		// may ask again.
		c.Advance(DefaultTTL - time.Nanosecond)
		if _, err := svc.Consume(ctx, deleteRequest()); !isOnly(err, ErrDenied) {
			t.Errorf("Consume(denied) just before expiry = %v, want ErrDenied", err)
		}
		c.Advance(time.Nanosecond)
		if _, err := svc.Consume(ctx, deleteRequest()); !isOnly(err, ErrExpired) {
			t.Errorf("Consume(denied, expired) = %v, want ErrExpired", err)
		}
		if got, _ := svc.Get(ctx, a.ID); got.Status != StatusDenied {
			t.Errorf("expired denial reads as %s, want denied", got.Status)
		}
		// Asking again makes a new pending approval.
		b, err := svc.Request(ctx, deleteRequest())
		if err != nil || b.ID == a.ID {
			t.Errorf("Request after denial = %+v, %v; want a new one", b, err)
		}
	})
}

func TestExpiry(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Approvals) {
		ctx := context.Background()
		c := newClock()
		svc := newService(st, c, &Options{TTL: 2 * time.Minute})

		// Pending until expiry: then not decidable.
		a, err := svc.Request(ctx, deleteRequest())
		if err != nil {
			t.Fatal(err)
		}
		if !a.ExpiresAt.Equal(c.Now().Add(2 * time.Minute)) {
			t.Errorf("ExpiresAt = %v, want TTL of 2m", a.ExpiresAt)
		}
		c.Advance(2 * time.Minute)
		if got, _ := svc.Get(ctx, a.ID); got.Status != StatusExpired {
			t.Errorf("status at expiry = %s, want expired", got.Status)
		}
		if err := svc.Decide(ctx, a.ID, "carol", true, ""); !errors.Is(err, ErrExpired) {
			t.Errorf("Decide(expired) = %v, want ErrExpired", err)
		}
		if _, err := svc.Consume(ctx, deleteRequest()); !isOnly(err, ErrExpired) {
			t.Errorf("Consume(expired pending) = %v, want ErrExpired", err)
		}
		if p, _ := svc.Pending(ctx); len(p) != 0 {
			t.Errorf("Pending lists an expired approval: %v", p)
		}

		// Approved, but used too late.
		b, err := svc.Request(ctx, deleteRequest())
		if err != nil || b.ID == a.ID {
			t.Fatalf("Request after expiry = %v, %v; want a new approval", b, err)
		}
		if err := svc.Decide(ctx, b.ID, "carol", true, ""); err != nil {
			t.Fatal(err)
		}
		c.Advance(2*time.Minute - time.Nanosecond)
		if got, _ := svc.Get(ctx, b.ID); got.Status != StatusApproved {
			t.Errorf("status just before expiry = %s", got.Status)
		}
		c.Advance(time.Nanosecond)
		if _, err := svc.Consume(ctx, deleteRequest()); !isOnly(err, ErrExpired) {
			t.Errorf("Consume(expired approval) = %v, want ErrExpired", err)
		}
	})
}

func TestUnknownAndInvalid(t *testing.T) {
	ctx := context.Background()
	svc := newService(store.NewApprovalsMemory(), newClock(), nil)
	if _, err := svc.Get(ctx, "nope"); !isOnly(err, ErrNotFound) {
		t.Errorf("Get(unknown) = %v, want ErrNotFound", err)
	}
	if err := svc.Decide(ctx, "nope", "carol", true, ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("Decide(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := svc.Wait(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Wait(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := svc.Consume(ctx, nil); !errors.Is(err, ErrNotApproved) {
		t.Errorf("Consume(nil) = %v", err)
	}
	bad := deleteRequest()
	bad.Arguments = jsontext.Value(`{"id":12345678901234567890}`)
	if _, err := svc.Request(ctx, bad); err == nil {
		t.Error("Request with an inexact number accepted")
	}
	if _, err := svc.Consume(ctx, bad); !isOnly(err, ErrNotApproved) {
		t.Errorf("Consume with an inexact number = %v, want ErrNotApproved", err)
	}
	for name, edit := range map[string]func(*Request){
		"no principal":      func(r *Request) { r.Principal = "" },
		"no tool":           func(r *Request) { r.Tool = "" },
		"no policy version": func(r *Request) { r.PolicyVersion = "" },
		"bad JSON":          func(r *Request) { r.Arguments = jsontext.Value(`{`) },
		"bad client":        func(r *Request) { r.Client = "\xff" },
	} {
		r := deleteRequest()
		edit(r)
		if _, err := svc.Request(ctx, r); err == nil {
			t.Errorf("%s: Request accepted", name)
		}
	}
	if _, err := svc.Request(ctx, nil); err == nil {
		t.Error("Request(nil) accepted")
	}
	a, err := svc.Request(ctx, deleteRequest())
	if err != nil {
		t.Fatal(err)
	}
	long := make([]byte, MaxNoteLength+1)
	for i := range long {
		long[i] = 'x'
	}
	if err := svc.Decide(ctx, a.ID, "carol", true, string(long)); err == nil {
		t.Error("over-long note accepted")
	}
	if err := svc.Decide(ctx, a.ID, "carol", true, "\xff"); err == nil {
		t.Error("invalid UTF-8 note accepted")
	}
	if got, _ := svc.Get(ctx, a.ID); got.Status != StatusPending {
		t.Errorf("refused decisions changed status to %s", got.Status)
	}
}

// failing is a store whose every call fails, wrapping a working one so
// that it can first be filled.
type failing struct {
	store.Approvals
	mu   sync.Mutex
	fail bool
}

var errBroken = errors.New("database is on fire")

func (f *failing) broken() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fail
}

func (f *failing) CreateApproval(ctx context.Context, a *store.ApprovalRecord, now time.Time) (*store.ApprovalRecord, bool, error) {
	if f.broken() {
		return nil, false, errBroken
	}
	return f.Approvals.CreateApproval(ctx, a, now)
}
func (f *failing) GetApproval(ctx context.Context, id string) (*store.ApprovalRecord, error) {
	if f.broken() {
		return nil, errBroken
	}
	return f.Approvals.GetApproval(ctx, id)
}
func (f *failing) FindApprovals(ctx context.Context, b string) ([]*store.ApprovalRecord, error) {
	if f.broken() {
		return nil, errBroken
	}
	return f.Approvals.FindApprovals(ctx, b)
}
func (f *failing) PendingApprovals(ctx context.Context, now time.Time) ([]*store.ApprovalRecord, error) {
	if f.broken() {
		return nil, errBroken
	}
	return f.Approvals.PendingApprovals(ctx, now)
}
func (f *failing) DecideApproval(ctx context.Context, id, status, approver, note string, now time.Time) (*store.ApprovalRecord, error) {
	if f.broken() {
		return nil, errBroken
	}
	return f.Approvals.DecideApproval(ctx, id, status, approver, note, now)
}
func (f *failing) ConsumeApproval(ctx context.Context, id string, now time.Time) (*store.ApprovalRecord, error) {
	if f.broken() {
		return nil, errBroken
	}
	return f.Approvals.ConsumeApproval(ctx, id, now)
}

func TestStoreErrorsFailClosed(t *testing.T) {
	ctx := context.Background()
	st := &failing{Approvals: store.NewApprovalsMemory()}
	svc := newService(st, newClock(), nil)
	a, err := svc.Request(ctx, deleteRequest())
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Decide(ctx, a.ID, "carol", true, ""); err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	st.fail = true
	st.mu.Unlock()
	if _, err := svc.Consume(ctx, deleteRequest()); !errors.Is(err, ErrNotApproved) || !errors.Is(err, errBroken) {
		t.Errorf("Consume with a broken store = %v, want ErrNotApproved wrapping the store error", err)
	}
	if _, err := svc.Get(ctx, a.ID); !errors.Is(err, ErrNotApproved) {
		t.Errorf("Get with a broken store = %v, want ErrNotApproved", err)
	}
	if _, err := svc.Request(ctx, deleteRequest()); err == nil {
		t.Error("Request with a broken store succeeded")
	}
	if err := svc.Decide(ctx, a.ID, "dave", true, ""); err == nil {
		t.Error("Decide with a broken store succeeded")
	}
	if _, err := svc.Pending(ctx); err == nil {
		t.Error("Pending with a broken store succeeded")
	}
	// Only Consume's own store call failing (the approval is found
	// approved, but marking it used fails) still refuses.
	st2 := &consumeFails{Approvals: store.NewApprovalsMemory()}
	svc2 := newService(st2, newClock(), nil)
	b, _ := svc2.Request(ctx, deleteRequest())
	if err := svc2.Decide(ctx, b.ID, "carol", true, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := svc2.Consume(ctx, deleteRequest()); !errors.Is(err, ErrNotApproved) || !errors.Is(err, errBroken) {
		t.Errorf("Consume whose update fails = %v, want ErrNotApproved", err)
	}

	// A Service without a store approves nothing.
	none := New(nil, nil)
	if _, err := none.Consume(ctx, deleteRequest()); !errors.Is(err, ErrNotApproved) {
		t.Errorf("Consume without store = %v", err)
	}
	if _, err := none.Request(ctx, deleteRequest()); err == nil {
		t.Error("Request without store succeeded")
	}
}

type consumeFails struct{ store.Approvals }

func (consumeFails) ConsumeApproval(context.Context, string, time.Time) (*store.ApprovalRecord, error) {
	return nil, errBroken
}

func TestConcurrentConsume(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Approvals) {
		ctx := context.Background()
		c := newClock()
		// Two services (as two gateway replicas) share the store.
		svcs := []*Service{newService(st, c, nil), newService(st, c, nil)}
		a, err := svcs[0].Request(ctx, deleteRequest())
		if err != nil {
			t.Fatal(err)
		}
		if err := svcs[1].Decide(ctx, a.ID, "carol", true, ""); err != nil {
			t.Fatal(err)
		}
		const n = 16
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() { _, errs[i] = svcs[i%2].Consume(ctx, deleteRequest()) })
		}
		wg.Wait()
		ok := 0
		for i, err := range errs {
			switch {
			case err == nil:
				ok++
			case !isOnly(err, ErrConsumed):
				t.Errorf("consumer %d: %v, want success or ErrConsumed", i, err)
			}
		}
		if ok != 1 {
			t.Errorf("%d of %d concurrent Consume calls succeeded, want exactly 1", ok, n)
		}
	})
}

// TestWait runs in synctest bubbles: synctest.Wait returns once Wait is
// blocked waiting for a wake-up, so the decision always comes while it
// waits (the path under test), and "Wait returned" is checked without a
// wall-clock timeout.
func TestWait(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				st := s.open(t)
				ctx := context.Background()
				c := newClock()
				svc := newService(st, c, nil)
				svc.pollInterval = time.Hour // only the wake-up can end the wait

				a, err := svc.Request(ctx, deleteRequest())
				if err != nil {
					t.Fatal(err)
				}
				done := make(chan *Approval, 1)
				errc := make(chan error, 1)
				go func() {
					got, err := svc.Wait(ctx, a.ID)
					errc <- err
					done <- got
				}()
				synctest.Wait() // Wait is waiting
				select {
				case <-errc:
					t.Fatal("Wait returned before a decision")
				default:
				}
				if err := svc.Decide(ctx, a.ID, "carol", true, ""); err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				select {
				case err := <-errc:
					got := <-done
					if err != nil || got.Status != StatusApproved {
						t.Errorf("Wait = %+v, %v; want approved", got, err)
					}
				default:
					t.Fatal("Wait did not return after the decision")
				}
				// Already decided: returns at once.
				if got, err := svc.Wait(ctx, a.ID); err != nil || got.Status != StatusApproved {
					t.Errorf("Wait(decided) = %+v, %v", got, err)
				}
				svc.mu.Lock()
				left := len(svc.waiters)
				svc.mu.Unlock()
				if left != 0 {
					t.Errorf("%d waiter entries left behind", left)
				}
			})
		})
	}
}

// TestWaitOtherProcessAndExpiry runs in a synctest bubble: each wait has
// begun before the decision, expiry or deadline that ends it (bubble time
// only passes when Wait is blocked), so every path is exercised, whatever
// the machine load.
func TestWaitOtherProcessAndExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		st := store.NewApprovalsMemory()
		c := newClock()
		waiter, decider := newService(st, c, nil), newService(st, c, nil)

		// A decision made by another Service is seen by polling.
		a, _ := waiter.Request(ctx, deleteRequest())
		go func() {
			time.Sleep(20 * time.Millisecond)
			decider.Decide(ctx, a.ID, "carol", false, "")
		}()
		got, err := waiter.Wait(ctx, a.ID)
		if err != nil || got.Status != StatusDenied {
			t.Errorf("Wait = %+v, %v; want denied", got, err)
		}

		// Expiry ends the wait.
		b, _ := waiter.Request(ctx, &Request{Principal: "alice", Tool: "t", PolicyVersion: "p"})
		go func() {
			time.Sleep(20 * time.Millisecond)
			c.Advance(DefaultTTL)
		}()
		got, err = waiter.Wait(ctx, b.ID)
		if err != nil || got.Status != StatusExpired {
			t.Errorf("Wait = %+v, %v; want expired", got, err)
		}

		// The context ends the wait.
		d, _ := waiter.Request(ctx, &Request{Principal: "alice", Tool: "t2", PolicyVersion: "p"})
		cctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
		defer cancel()
		if got, err := waiter.Wait(cctx, d.ID); !errors.Is(err, context.DeadlineExceeded) || got != nil {
			t.Errorf("Wait(cancelled) = %v, %v; want DeadlineExceeded", got, err)
		}
	})
}

func TestConcurrentRequestsShareOneApproval(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Approvals) {
		ctx := context.Background()
		svc := newService(st, newClock(), nil)
		const n = 8
		ids := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				a, err := svc.Request(ctx, deleteRequest())
				if err != nil {
					ids[i] = fmt.Sprint("error: ", err)
					return
				}
				ids[i] = a.ID
			})
		}
		wg.Wait()
		for i := range n {
			if ids[i] != ids[0] {
				t.Fatalf("concurrent requests got %v, want one shared id", ids)
			}
		}
	})
}

func BenchmarkConsume(b *testing.B) {
	ctx := context.Background()
	var svc *Service
	req := deleteRequest()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%100 == 0 { // keep the in-memory store small
			svc = New(store.NewApprovalsMemory(), nil)
		}
		a, err := svc.Request(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		if err := svc.Decide(ctx, a.ID, "carol", true, ""); err != nil {
			b.Fatal(err)
		}
		if _, err := svc.Consume(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
