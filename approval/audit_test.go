package approval

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/store"
)

// readAudit returns every stored audit record, after checking the chain.
func readAudit(t *testing.T, st *store.AuditMemory) []*audit.Record {
	t.Helper()
	ctx := context.Background()
	rep, err := audit.Verify(ctx, st, nil)
	if err != nil || !rep.OK {
		t.Fatalf("audit chain: %+v %v", rep, err)
	}
	var out []*audit.Record
	for r, err := range st.ReadAudit(ctx, 1) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, audit.FromStore(r))
	}
	return out
}

// TestDecisionsAudited checks that approving, denying and a refused
// self-approval each append a record naming the approver, the approval
// and the request it is bound to.
func TestDecisionsAudited(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Approvals) {
		ctx := context.Background()
		ast := store.NewAuditMemory()
		alog, err := audit.New(ast, &audit.Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		defer alog.Close()
		var decided []string
		s := newService(st, newClock(), &Options{BaseURL: testBase, Audit: alog, OnDecision: func(a *Approval) { decided = append(decided, a.ID) }})

		req := deleteRequest()
		wantArgs, err := audit.Digest(req.Arguments)
		if err != nil {
			t.Fatal(err)
		}
		a1, err := s.Request(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Decide(ctx, a1.ID, "alice", true, ""); !errors.Is(err, ErrSelfApproval) {
			t.Fatalf("self-approval: %v", err)
		}
		if err := s.Decide(ctx, a1.ID, "bob", true, "checked with alice"); err != nil {
			t.Fatal(err)
		}
		other := deleteRequest()
		other.Arguments = []byte(`{"path":"/srv/other"}`)
		a2, err := s.Request(ctx, other)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Decide(ctx, a2.ID, "carol", false, ""); err != nil {
			t.Fatal(err)
		}
		// A decision on a decided approval changes nothing and is not
		// recorded as a decision.
		if err := s.Decide(ctx, a2.ID, "bob", true, ""); !errors.Is(err, ErrDecided) {
			t.Fatalf("second decision: %v", err)
		}

		recs := readAudit(t, ast)
		if len(recs) != 3 {
			t.Fatalf("%d audit records, want 3: %+v", len(recs), recs)
		}
		otherArgs, _ := audit.Digest(other.Arguments)
		for i, w := range []struct {
			user, target, decision, outcome, args, binding string
			detail                                         []string
		}{
			{"alice", a1.ID, audit.DecisionAllow, "refused", wantArgs, a1.Binding, []string{"cannot decide their own request"}},
			{"bob", a1.ID, audit.DecisionAllow, "approved", wantArgs, a1.Binding, []string{`note: "checked with alice"`}},
			{"carol", a2.ID, audit.DecisionDeny, "denied", otherArgs, a2.Binding, nil},
		} {
			r := recs[i]
			if r.Action != ActionDecided || r.User != w.user || r.Target != w.target || r.Decision != w.decision || r.Outcome != w.outcome ||
				r.ArgsDigest != w.args || r.Upstream != "files" || r.PolicyVersion != "pv-1" || !slices.Equal(r.Policies, req.Policies) {
				t.Errorf("record %d = %+v, want user %s target %s decision %s outcome %s args %s", i, r, w.user, w.target, w.decision, w.outcome, w.args)
			}
			for _, d := range append(w.detail, `principal "alice"`, `tool "files__delete"`, "binding "+w.binding, `session "sess-1"`) {
				if !strings.Contains(r.Error, d) {
					t.Errorf("record %d detail %q lacks %q", i, r.Error, d)
				}
			}
			if len(r.Args) != 0 {
				t.Errorf("record %d keeps the arguments without KeepPayloads", i)
			}
		}
		if !slices.Equal(decided, []string{a1.ID, a2.ID}) {
			t.Errorf("OnDecision saw %v", decided)
		}
	})
}

// TestDecisionAuditFailure checks that a decision the audit log cannot
// record is reported to the approver.
func TestDecisionAuditFailure(t *testing.T) {
	ctx := context.Background()
	alog, err := audit.New(store.NewAuditMemory(), &audit.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	alog.Close() // appends now fail
	s := newService(store.NewApprovalsMemory(), newClock(), &Options{BaseURL: testBase, Audit: alog})
	a, err := s.Request(ctx, deleteRequest())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Decide(ctx, a.ID, "bob", false, ""); !errors.Is(err, audit.ErrClosed) {
		t.Fatalf("Decide with the audit log down: %v, want audit.ErrClosed", err)
	}
}
