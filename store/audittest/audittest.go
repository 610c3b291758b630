// Package audittest is a conformance test for store.AuditLog
// implementations.
package audittest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

// Run runs the conformance test against logs made by open; each call of
// open must return a new, empty log.
func Run(t *testing.T, open func(t *testing.T) store.AuditLog) {
	t.Run("Empty", func(t *testing.T) { testEmpty(t, open(t)) })
	t.Run("AppendRead", func(t *testing.T) { testAppendRead(t, open(t)) })
	t.Run("Conflict", func(t *testing.T) { testConflict(t, open(t)) })
	t.Run("Checkpoints", func(t *testing.T) { testCheckpoints(t, open(t)) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, open(t)) })
}

// chain returns n linked records following (seq, hash). The hashes are
// arbitrary strings: stores do not interpret them.
func chain(seq uint64, hash string, n int) []*store.AuditRecord {
	var out []*store.AuditRecord
	base := time.Date(2026, 11, 26, 9, 0, 0, 123456789, time.UTC)
	for i := range n {
		seq++
		r := &store.AuditRecord{
			Seq: seq, Time: base.Add(time.Duration(seq) * time.Millisecond),
			User: "alice", Client: "https://client.example/cimd.json", Session: fmt.Sprintf("s-%d", i%2),
			Upstream: "files", Action: "tools/call", Target: "read_file",
			Decision: "allow", PolicyVersion: "pv1", Policies: []string{"p1", "p2"},
			ArgsDigest: "ad", ResultDigest: "rd", Args: []byte(`{"path":"/tmp/é"}`), Result: []byte(`{"ok":true}`),
			Outcome: "ok", Error: "", LatencyMicros: int64(seq) * 7, Phase: "completed",
			PrevHash: hash, Hash: fmt.Sprintf("h%d", seq),
		}
		if i == 1 { // a record with every optional field empty
			r.User, r.Policies, r.Args, r.Result, r.Decision, r.Phase = "", nil, nil, nil, "", ""
		}
		hash = r.Hash
		out = append(out, r)
	}
	return out
}

func read(t *testing.T, l store.AuditLog, from uint64) []*store.AuditRecord {
	t.Helper()
	var out []*store.AuditRecord
	for r, err := range l.ReadAudit(context.Background(), from) {
		if err != nil {
			t.Fatalf("ReadAudit(%d): %v", from, err)
		}
		out = append(out, r)
	}
	return out
}

func equal(a, b *store.AuditRecord) bool {
	return a.Seq == b.Seq && a.Time.Equal(b.Time) && a.User == b.User && a.Client == b.Client && a.Session == b.Session &&
		a.Upstream == b.Upstream && a.Action == b.Action && a.Target == b.Target && a.Decision == b.Decision &&
		a.PolicyVersion == b.PolicyVersion && slices.Equal(a.Policies, b.Policies) &&
		a.ArgsDigest == b.ArgsDigest && a.ResultDigest == b.ResultDigest &&
		bytes.Equal(a.Args, b.Args) && bytes.Equal(a.Result, b.Result) && a.Outcome == b.Outcome && a.Error == b.Error &&
		a.LatencyMicros == b.LatencyMicros && a.Phase == b.Phase && a.PrevHash == b.PrevHash && a.Hash == b.Hash
}

func testEmpty(t *testing.T, l store.AuditLog) {
	ctx := context.Background()
	if _, err := l.LastAudit(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("LastAudit on empty log: err = %v, want ErrNotFound", err)
	}
	if got := read(t, l, 1); len(got) != 0 {
		t.Errorf("ReadAudit on empty log: %d records", len(got))
	}
	if cps, err := l.ListAuditCheckpoints(ctx); err != nil || len(cps) != 0 {
		t.Errorf("ListAuditCheckpoints on empty log: %v, %v", cps, err)
	}
	if err := l.AppendAudit(ctx, nil); err != nil {
		t.Errorf("AppendAudit(nil): %v", err)
	}
}

func testAppendRead(t *testing.T, l store.AuditLog) {
	ctx := context.Background()
	first := chain(0, "", 3)
	if err := l.AppendAudit(ctx, first); err != nil {
		t.Fatal(err)
	}
	second := chain(3, "h3", 2)
	if err := l.AppendAudit(ctx, second); err != nil {
		t.Fatal(err)
	}
	want := append(first, second...)
	got := read(t, l, 0)
	if len(got) != len(want) {
		t.Fatalf("read %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if !equal(got[i], want[i]) {
			t.Errorf("record %d:\n got %+v\nwant %+v", i+1, got[i], want[i])
		}
	}
	if got := read(t, l, 4); len(got) != 2 || got[0].Seq != 4 || got[1].Seq != 5 {
		t.Errorf("ReadAudit(4) = %d records", len(got))
	}
	if got := read(t, l, 99); len(got) != 0 {
		t.Errorf("ReadAudit(99) = %d records", len(got))
	}
	n := 0
	for range l.ReadAudit(ctx, 1) {
		n++
		break
	}
	if n != 1 {
		t.Errorf("early break: %d", n)
	}
	last, err := l.LastAudit(ctx)
	if err != nil || !equal(last, want[4]) {
		t.Errorf("LastAudit = %+v, %v", last, err)
	}
	// The store keeps its own copy.
	got[0].Target = "changed"
	if again := read(t, l, 1); again[0].Target != "read_file" {
		t.Errorf("record changed through a returned pointer")
	}
}

func testConflict(t *testing.T, l store.AuditLog) {
	ctx := context.Background()
	if err := l.AppendAudit(ctx, chain(0, "", 2)); err != nil {
		t.Fatal(err)
	}
	badLink := chain(2, "h2", 3)
	badLink[2].PrevHash = "other"
	gap := chain(2, "h2", 3)
	gap[1].Seq = 9
	for _, tt := range []struct {
		name string
		recs []*store.AuditRecord
	}{
		{"seq already used", chain(1, "h1", 1)},
		{"seq gap", chain(3, "h2", 1)},
		{"wrong prev hash", chain(2, "h9", 1)},
		{"first record again", chain(0, "", 1)},
		{"broken link inside batch", badLink},
		{"gap inside batch", gap},
	} {
		if err := l.AppendAudit(ctx, tt.recs); !errors.Is(err, store.ErrAuditConflict) {
			t.Errorf("%s: err = %v, want ErrAuditConflict", tt.name, err)
		}
	}
	if got := read(t, l, 1); len(got) != 2 {
		t.Errorf("after refused appends: %d records, want 2 (appends must be atomic)", len(got))
	}
	if err := l.AppendAudit(ctx, chain(2, "h2", 1)); err != nil {
		t.Errorf("valid append after conflicts: %v", err)
	}
}

func testCheckpoints(t *testing.T, l store.AuditLog) {
	ctx := context.Background()
	at := time.Date(2026, 11, 26, 9, 30, 0, 987654321, time.UTC)
	for _, seq := range []uint64{20, 10, 30} {
		c := &store.AuditCheckpoint{Seq: seq, Hash: fmt.Sprintf("h%d", seq), Signature: []byte{1, 2, byte(seq)}, KeyID: "k1", Time: at}
		if err := l.PutAuditCheckpoint(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.PutAuditCheckpoint(ctx, &store.AuditCheckpoint{Seq: 20, Hash: "x", Signature: []byte{9}, KeyID: "k1", Time: at}); !errors.Is(err, store.ErrExists) {
		t.Errorf("duplicate checkpoint: err = %v, want ErrExists", err)
	}
	cps, err := l.ListAuditCheckpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cps) != 3 {
		t.Fatalf("%d checkpoints, want 3", len(cps))
	}
	for i, seq := range []uint64{10, 20, 30} {
		c := cps[i]
		if c.Seq != seq || c.Hash != fmt.Sprintf("h%d", seq) || !bytes.Equal(c.Signature, []byte{1, 2, byte(seq)}) || c.KeyID != "k1" || !c.Time.Equal(at) {
			t.Errorf("checkpoint %d = %+v", i, c)
		}
	}
}

func testConcurrent(t *testing.T, l store.AuditLog) {
	// Several writers racing for the tail: each retries on conflict; in the
	// end the chain is complete and linked, with no duplicate.
	ctx := context.Background()
	const writers, each = 4, 10
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			for i := 0; i < each; {
				var seq uint64
				var hash string
				last, err := l.LastAudit(ctx)
				switch {
				case errors.Is(err, store.ErrNotFound):
				case err != nil:
					errs <- err
					return
				default:
					seq, hash = last.Seq, last.Hash
				}
				recs := chain(seq, hash, 1)
				recs[0].Hash = fmt.Sprintf("w%d-%d", w, i)
				err = l.AppendAudit(ctx, recs)
				if errors.Is(err, store.ErrAuditConflict) {
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				i++
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	got := read(t, l, 1)
	if len(got) != writers*each {
		t.Fatalf("%d records, want %d", len(got), writers*each)
	}
	prev := ""
	for i, r := range got {
		if r.Seq != uint64(i+1) || r.PrevHash != prev {
			t.Fatalf("record %d: seq %d prev %q, want seq %d prev %q", i, r.Seq, r.PrevHash, i+1, prev)
		}
		prev = r.Hash
	}
}
