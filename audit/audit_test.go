package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/store"
)

// testClock returns a clock that advances one millisecond per call.
func testClock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Millisecond)
		return t
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func sampleRecord(i int) *Record {
	r := &Record{
		User: fmt.Sprintf("user%d", i%3), Client: "https://client.example/cimd.json", Session: fmt.Sprintf("sess-%d", i%2),
		Upstream: "files", Action: "tools/call", Target: fmt.Sprintf("tool-%d", i),
		Decision: DecisionAllow, PolicyVersion: "pv-1", Policies: []string{"permit-files"},
		Args:    jsontext.Value(fmt.Sprintf(`{"path": "/srv/%d", "n": %d}`, i, i)),
		Outcome: OutcomeOK, LatencyMicros: int64(i * 10), Phase: PhaseCompleted,
	}
	if i%4 == 0 {
		r.Action, r.Target, r.Decision, r.Phase, r.Policies, r.Args = "token.issued", "client-1", "", "", nil, nil
	}
	return r
}

// build appends n records to a fresh fakeLog with a checkpoint every 5
// records and closes the log.
func build(t *testing.T, n int, keep bool) (*fakeLog, ed25519.PublicKey) {
	t.Helper()
	f := &fakeLog{}
	l, err := New(f, &Options{KeyPath: filepath.Join(t.TempDir(), DefaultKeyFile), CheckpointEvery: 5, CheckpointInterval: -1,
		KeepPayloads: keep, Clock: testClock(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range n {
		r := sampleRecord(i)
		if i%3 == 1 {
			r.Result = jsontext.Value(`{"content":[{"type":"text","text":"ok"}]}`)
		}
		if err := l.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	pub := l.PublicKey()
	buildKeys.Store(f, l.signer.(*KeySigner).key)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return f, pub
}

func TestAppendFillsRecord(t *testing.T) {
	f := &fakeLog{}
	clock := testClock()
	l, err := New(f, &Options{Clock: clock, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	var prev string
	for i := 1; i <= 3; i++ {
		r := sampleRecord(1)
		r.Result = jsontext.Value(`{"b":1,"a":[1.0,2e0]}`)
		if err := l.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
		if r.Seq != uint64(i) || r.PrevHash != prev || len(r.Hash) != 64 || r.Time.IsZero() || r.Time.Location() != time.UTC {
			t.Errorf("append %d: seq %d prev %q hash %q time %v", i, r.Seq, r.PrevHash, r.Hash, r.Time)
		}
		wantArgs, _ := Digest(jsontext.Value(`{"n":1,"path":"/srv/1"}`))
		wantResult, _ := Digest(jsontext.Value(`{"a":[1,2],"b":1}`))
		if r.ArgsDigest != wantArgs || r.ResultDigest != wantResult {
			t.Errorf("digests %s %s, want %s %s", r.ArgsDigest, r.ResultDigest, wantArgs, wantResult)
		}
		prev = r.Hash
	}
	// Payloads are not stored by default.
	if got := f.recs[0]; got.Args != nil || got.Result != nil || got.ArgsDigest == "" {
		t.Errorf("stored payloads without KeepPayloads: %+v", got)
	}
	// A digest that disagrees with the payload is refused.
	r := sampleRecord(1)
	r.ArgsDigest = strings.Repeat("0", 64)
	if err := l.Append(ctx, r); err == nil || !strings.Contains(err.Error(), "digest") {
		t.Errorf("mismatched digest: err = %v", err)
	}
	for _, bad := range []string{`{"a":1,"a":2}`, `{"a":`, "\"\xff\""} {
		r := sampleRecord(1)
		r.Args = jsontext.Value(bad)
		if err := l.Append(ctx, r); err == nil {
			t.Errorf("args %q accepted", bad)
		}
	}
	if len(f.recs) != 3 {
		t.Errorf("%d records stored, want 3", len(f.recs))
	}
	// Invalid UTF-8 in text (an upstream's error message) does not lose
	// the record: it is stored with U+FFFD.
	r = sampleRecord(2)
	r.Error = "upstream said \xff\xfe"
	if err := l.Append(ctx, r); err != nil {
		t.Fatalf("record with invalid UTF-8 error text: %v", err)
	}
	if got := f.recs[3].Error; got != "upstream said \uFFFD" {
		t.Errorf("stored error %q", got)
	}
	if err := l.Append(ctx, nil); err == nil {
		t.Error("nil record accepted")
	}
}

func TestKeepPayloads(t *testing.T) {
	f, pub := build(t, 6, true)
	if f.recs[1].Args == nil || f.recs[1].Result == nil {
		t.Fatalf("payloads not kept: %+v", f.recs[1])
	}
	rep, err := Verify(context.Background(), f, pub)
	if err != nil || !rep.OK {
		t.Fatalf("Verify: %+v %v", rep, err)
	}
	f.recs[1].Args = []byte(`{"path":"/etc/shadow","n":1}`)
	rep, err = Verify(context.Background(), f, pub)
	if err != nil || rep.OK || rep.FirstBad.Seq != 2 || rep.FirstBad.Kind != ProblemEdited || !strings.Contains(rep.FirstBad.Detail, "arguments") {
		t.Fatalf("Verify after payload edit: %+v %v", rep.FirstBad, err)
	}
}

func TestVerifyIntact(t *testing.T) {
	f, pub := build(t, 23, false)
	rep, err := Verify(context.Background(), f, pub)
	if err != nil {
		t.Fatal(err)
	}
	// Checkpoints every 5 records (5, 10, 15, 20) and the final one (23).
	if !rep.OK || rep.Records != 23 || rep.Checkpoints != 5 || rep.LastCheckpointSeq != 23 || rep.Unanchored != 0 || !rep.SignaturesChecked {
		t.Fatalf("report = %+v (first bad %v)", rep, rep.FirstBad)
	}
	// Without a key the chain is still walked.
	rep, err = Verify(context.Background(), f, nil)
	if err != nil || !rep.OK || rep.SignaturesChecked {
		t.Fatalf("without key: %+v %v", rep, err)
	}
	// An empty log verifies.
	rep, err = Verify(context.Background(), &fakeLog{}, pub)
	if err != nil || !rep.OK || rep.Records != 0 {
		t.Fatalf("empty: %+v %v", rep, err)
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	otherPub, _, _ := ed25519.GenerateKey(nil)
	for _, tt := range []struct {
		name   string
		tamper func(f *fakeLog)
		pub    ed25519.PublicKey // nil: the log's key
		seq    uint64
		kind   string
	}{
		{"edit target", func(f *fakeLog) { f.recs[f.index(7)].Target = "other" }, nil, 7, ProblemEdited},
		{"edit first", func(f *fakeLog) { f.recs[0].User = "mallory" }, nil, 1, ProblemEdited},
		{"edit last", func(f *fakeLog) { f.recs[19].Outcome = OutcomeError }, nil, 20, ProblemEdited},
		{"edit time", func(f *fakeLog) { f.recs[f.index(9)].Time = f.recs[f.index(9)].Time.Add(time.Second) }, nil, 9, ProblemEdited},
		{"edit decision", func(f *fakeLog) { f.recs[f.index(3)].Decision = DecisionDeny }, nil, 3, ProblemEdited},
		{"edit policies", func(f *fakeLog) { f.recs[f.index(3)].Policies = nil }, nil, 3, ProblemEdited},
		{"edit prev hash", func(f *fakeLog) { f.recs[f.index(7)].PrevHash = strings.Repeat("a", 64) }, nil, 7, ProblemEdited},
		{"edit and rehash one", func(f *fakeLog) { i := f.index(7); f.recs[i].Target = "other"; f.rehash(i, false) }, nil, 7, ProblemEdited},
		{"edit and rehash the chain", func(f *fakeLog) { i := f.index(7); f.recs[i].Target = "other"; f.rehash(i, true) }, nil, 6, ProblemEdited},
		{"delete middle", func(f *fakeLog) { i := f.index(7); f.recs = append(f.recs[:i], f.recs[i+1:]...) }, nil, 7, ProblemDeleted},
		{"delete two", func(f *fakeLog) { i := f.index(7); f.recs = append(f.recs[:i], f.recs[i+2:]...) }, nil, 7, ProblemDeleted},
		{"delete first", func(f *fakeLog) { f.recs = f.recs[1:] }, nil, 1, ProblemDeleted},
		{"delete last", func(f *fakeLog) { f.recs = f.recs[:19] }, nil, 20, ProblemDeleted},
		{"delete and renumber", func(f *fakeLog) {
			i := f.index(7)
			f.recs = append(f.recs[:i], f.recs[i+1:]...)
			for _, r := range f.recs[i:] {
				r.Seq--
			}
		}, nil, 7, ProblemDeleted},
		{"delete next to last and renumber", func(f *fakeLog) {
			f.recs = append(f.recs[:18], f.recs[19])
			f.recs[18].Seq = 19
		}, nil, 19, ProblemDeleted},
		{"insert copy and renumber", func(f *fakeLog) {
			i := f.index(7)
			dup := store.CloneAuditRecord(f.recs[i-1])
			f.recs = append(f.recs[:i], append([]*store.AuditRecord{dup}, f.recs[i:]...)...)
			for _, r := range f.recs[i:] {
				r.Seq++
			}
		}, nil, 7, ProblemInserted},
		{"insert forged and renumber", func(f *fakeLog) {
			i := f.index(7)
			forged := store.CloneAuditRecord(f.recs[i])
			forged.Target, forged.Hash = "forged", strings.Repeat("f", 64)
			f.recs = append(f.recs[:i], append([]*store.AuditRecord{forged}, f.recs[i:]...)...)
			for _, r := range f.recs[i+1:] {
				r.Seq++
			}
		}, nil, 7, ProblemInserted},
		{"insert well-formed and renumber", func(f *fakeLog) {
			i := f.index(7)
			forged := store.CloneAuditRecord(f.recs[i])
			forged.Target = "forged"
			f.recs = append(f.recs[:i], append([]*store.AuditRecord{forged}, f.recs[i:]...)...)
			for _, r := range f.recs[i+1:] {
				r.Seq++
			}
			f.rehash(i, false) // hashed correctly as record 7 after record 6
		}, nil, 7, ProblemInserted},
		{"insert at end", func(f *fakeLog) {
			forged := store.CloneAuditRecord(f.recs[3])
			forged.Seq, forged.Target = 21, "forged"
			f.recs = append(f.recs, forged)
		}, nil, 21, ProblemInserted},
		{"duplicate sequence number", func(f *fakeLog) {
			i := f.index(7)
			f.recs = append(f.recs[:i+1], append([]*store.AuditRecord{store.CloneAuditRecord(f.recs[i])}, f.recs[i+1:]...)...)
		}, nil, 7, ProblemInserted},
		{"swap adjacent", func(f *fakeLog) {
			a, b := f.recs[f.index(7)], f.recs[f.index(8)]
			a.Seq, b.Seq = 8, 7
			f.recs[6], f.recs[7] = b, a
		}, nil, 7, ProblemReordered},
		{"swap distant", func(f *fakeLog) {
			a, b := f.recs[f.index(7)], f.recs[f.index(12)]
			a.Seq, b.Seq = 12, 7
			f.recs[6], f.recs[11] = b, a
		}, nil, 7, ProblemReordered},
		{"swap last two", func(f *fakeLog) {
			a, b := f.recs[18], f.recs[19]
			a.Seq, b.Seq = 20, 19
			f.recs[18], f.recs[19] = b, a
		}, nil, 19, ProblemReordered},
		{"swap and re-forge", func(f *fakeLog) {
			// Record 8's content is re-linked and re-hashed as record 7:
			// a well-formed forgery at 7, so record 7 (now at 8) shows
			// that 7 was inserted.
			a, b := f.recs[6], f.recs[7]
			a.Seq, b.Seq = 8, 7
			f.recs[6], f.recs[7] = b, a
			b.PrevHash = f.recs[5].Hash
			f.rehash(6, false)
		}, nil, 7, ProblemInserted},
		{"forged checkpoint signature", func(f *fakeLog) { f.cps[1].Signature[0] ^= 1 }, nil, 10, ProblemCheckpoint},
		{"checkpoint hash changed", func(f *fakeLog) { f.cps[0].Hash = f.recs[3].Hash }, nil, 5, ProblemCheckpoint},
		{"other key", func(f *fakeLog) {}, otherPub, 5, ProblemCheckpoint},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, pub := build(t, 20, false)
			if tt.pub != nil {
				pub = tt.pub
			}
			tt.tamper(f)
			rep, err := Verify(context.Background(), f, pub)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK || rep.FirstBad == nil {
				t.Fatalf("tampering not detected: %+v", rep)
			}
			if rep.FirstBad.Seq != tt.seq || rep.FirstBad.Kind != tt.kind {
				t.Errorf("FirstBad = %v, want record %d %s", rep.FirstBad, tt.seq, tt.kind)
			}
			if !strings.Contains(rep.FirstBad.String(), fmt.Sprint(tt.seq)) {
				t.Errorf("message %q does not name record %d", rep.FirstBad, tt.seq)
			}
		})
	}
}

func TestFailClosedAndOpen(t *testing.T) {
	ctx := context.Background()
	f := &fakeLog{}
	l, err := New(f, &Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append(ctx, sampleRecord(1)); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.failErr = errStoreDown
	f.mu.Unlock()
	r := sampleRecord(2)
	r.Phase = PhaseDecided
	if err := l.Append(ctx, r); !errors.Is(err, ErrNotStored) || !errors.Is(err, errStoreDown) {
		t.Fatalf("store down: err = %v, want ErrNotStored wrapping the cause", err)
	}
	if r.Seq != 0 || r.Hash != "" {
		t.Errorf("unstored record got seq %d hash %q", r.Seq, r.Hash)
	}
	// The store comes back: the chain continues where it was.
	f.mu.Lock()
	f.failErr = nil
	f.mu.Unlock()
	if err := l.Append(ctx, sampleRecord(3)); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if rep, err := Verify(ctx, f, nil); err != nil || !rep.OK || rep.Records != 2 {
		t.Fatalf("after recovery: %+v %v", rep, err)
	}

	var logged bytes.Buffer
	var mu sync.Mutex
	f2 := &fakeLog{failErr: nil}
	l2, err := New(f2, &Options{FailOpen: true, Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &logged, mu: &mu}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	f2.mu.Lock()
	f2.failErr = errStoreDown
	f2.mu.Unlock()
	if err := l2.Append(ctx, sampleRecord(1)); err != nil {
		t.Fatalf("FailOpen: err = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logged.String(), "records not stored") {
		t.Errorf("FailOpen failure not logged: %q", logged.String())
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

func TestNewStoreDown(t *testing.T) {
	if _, err := New(&fakeLog{failErr: errStoreDown}, nil); !errors.Is(err, errStoreDown) {
		t.Fatalf("New with store down: %v", err)
	}
	if _, err := New(nil, nil); err == nil {
		t.Fatal("New(nil) succeeded")
	}
}

func TestConcurrentAppend(t *testing.T) {
	ctx := context.Background()
	f := &fakeLog{}
	keyPath := filepath.Join(t.TempDir(), "k.pem")
	l, err := New(f, &Options{KeyPath: keyPath, CheckpointEvery: 50, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 100
	var wg sync.WaitGroup
	seqs := make(chan uint64, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				r := sampleRecord(w*each + i)
				if err := l.Append(ctx, r); err != nil {
					t.Error(err)
					return
				}
				seqs <- r.Seq
			}
		})
	}
	wg.Wait()
	close(seqs)
	seen := map[uint64]bool{}
	for s := range seqs {
		if seen[s] {
			t.Fatalf("seq %d given twice", s)
		}
		seen[s] = true
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// How many transactions that took depends on how the scheduler
	// interleaved the workers (on a loaded machine they can run one after
	// the other); the grouping itself is checked exactly below.
	t.Logf("%d records in %d transactions", workers*each, f.appends)
	pub, err := LoadPublicKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(ctx, f, pub)
	if err != nil || !rep.OK || rep.Records != workers*each || rep.Unanchored != 0 {
		t.Fatalf("Verify: %+v %v", rep, err)
	}

	t.Run("grouped", func(t *testing.T) { synctest.Test(t, testAppendsGrouped) })
}

// testAppendsGrouped checks that the appends arriving while a transaction
// is being committed are stored together in the next transactions, at most
// MaxBatch to a transaction. It runs in a synctest bubble: synctest.Wait
// returns once the writer is blocked in the held store and every other
// appender is blocked handing its record over, whatever the scheduler does.
func testAppendsGrouped(t *testing.T) {
	ctx := context.Background()
	const waiting, maxBatch = 63, 16
	f := &fakeLog{gate: make(chan struct{})}
	l, err := New(f, &Options{KeyPath: filepath.Join(t.TempDir(), "k.pem"), MaxBatch: maxBatch, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	seqs := make(chan uint64, 1+waiting)
	appendOne := func(i int) {
		r := sampleRecord(i)
		if err := l.Append(ctx, r); err != nil {
			t.Error(err)
			return
		}
		seqs <- r.Seq
	}
	wg.Go(func() { appendOne(0) })
	synctest.Wait() // the writer holds record 0 and waits for the store
	for i := range waiting {
		wg.Go(func() { appendOne(i + 1) })
	}
	synctest.Wait() // every other append waits for the writer
	close(f.gate)
	wg.Wait()
	close(seqs)
	seen := map[uint64]bool{}
	for s := range seqs {
		if s == 0 || s > 1+waiting || seen[s] {
			t.Fatalf("seq %d given twice or out of range", s)
		}
		seen[s] = true
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// 1, then the 63 waiting ones in groups of at most 16.
	if want := []int{1, 16, 16, 16, 15}; !slices.Equal(f.sizes, want) {
		t.Errorf("transactions of %v records, want %v", f.sizes, want)
	}
	rep, err := Verify(ctx, f, l.PublicKey())
	if err != nil || !rep.OK || rep.Records != 1+waiting || rep.Unanchored != 0 {
		t.Fatalf("Verify: %+v %v", rep, err)
	}
}

// TestTwoWriters runs two Logs on one store (two gateway processes):
// conflicts are resolved by re-chaining, and the chain stays whole.
func TestTwoWriters(t *testing.T) {
	ctx := context.Background()
	st := store.NewAuditMemory()
	var logs []*Log
	for range 2 {
		l, err := New(st, &Options{Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, l)
	}
	var wg sync.WaitGroup
	for _, l := range logs {
		wg.Go(func() {
			for i := range 50 {
				if err := l.Append(ctx, sampleRecord(i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, l := range logs {
		l.Close()
	}
	rep, err := Verify(ctx, st, nil)
	if err != nil || !rep.OK || rep.Records != 100 {
		t.Fatalf("Verify: %+v %v", rep, err)
	}
}

func TestReopenContinuesChain(t *testing.T) {
	ctx := context.Background()
	st := store.NewAuditMemory()
	key := filepath.Join(t.TempDir(), "k.pem")
	for round := range 3 {
		l, err := New(st, &Options{KeyPath: key, CheckpointEvery: -1, CheckpointInterval: -1, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 4 {
			r := sampleRecord(i)
			if err := l.Append(ctx, r); err != nil {
				t.Fatal(err)
			}
			if want := uint64(round*4 + i + 1); r.Seq != want {
				t.Fatalf("seq %d, want %d", r.Seq, want)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if err := l.Append(ctx, sampleRecord(0)); !errors.Is(err, ErrClosed) {
			t.Fatalf("Append after Close: %v", err)
		}
	}
	pub, _ := LoadPublicKey(key)
	rep, err := Verify(ctx, st, pub)
	// Only the final checkpoint of each Close.
	if err != nil || !rep.OK || rep.Records != 12 || rep.Checkpoints != 3 {
		t.Fatalf("Verify: %+v %v", rep, err)
	}
}

func TestCheckpointInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 20 * time.Millisecond
		ctx := context.Background()
		st := store.NewAuditMemory()
		l, err := New(st, &Options{KeyPath: filepath.Join(t.TempDir(), "k.pem"), CheckpointEvery: -1, CheckpointInterval: interval, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if err := l.Append(ctx, sampleRecord(1)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if cps, _ := st.ListAuditCheckpoints(ctx); len(cps) != 0 {
			t.Fatalf("checkpoint before the interval: %v", cps)
		}
		time.Sleep(interval)
		synctest.Wait() // the writer has handled the tick
		if cps, _ := st.ListAuditCheckpoints(ctx); len(cps) != 1 || cps[0].Seq != 1 {
			t.Fatalf("no interval checkpoint: %v", cps)
		}
	})
}

// TestBatchWindow runs in a synctest bubble: time only passes when every
// goroutine is blocked, so "5ms apart" and "the writer is blocked in the
// store" are exact, however loaded the machine is.
func TestBatchWindow(t *testing.T) {
	for _, tt := range []struct {
		window time.Duration
		want   int // transactions for the spaced appends
	}{
		{500 * time.Millisecond, 1},
		{-1, 4},
	} {
		synctest.Test(t, func(t *testing.T) {
			ctx := context.Background()
			f := &fakeLog{gate: make(chan struct{})}
			l, err := New(f, &Options{BatchWindow: tt.window, Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			// A burst while the store is busy: the writer learns that
			// appends are concurrent.
			var wg sync.WaitGroup
			wg.Go(func() { l.Append(ctx, sampleRecord(0)) })
			synctest.Wait() // the writer is now blocked in the store
			for i := range 6 {
				wg.Go(func() { l.Append(ctx, sampleRecord(i+1)) })
			}
			synctest.Wait() // the six wait for the writer
			close(f.gate)
			wg.Wait()
			if want := []int{1, 6}; !slices.Equal(f.sizes, want) {
				t.Errorf("burst in transactions of %v records, want %v", f.sizes, want)
			}
			before := len(f.sizes)
			// Four appends 5ms apart.
			for i := range 4 {
				wg.Go(func() {
					if err := l.Append(ctx, sampleRecord(i)); err != nil {
						t.Error(err)
					}
				})
				time.Sleep(5 * time.Millisecond)
			}
			wg.Wait()
			l.Close()
			if got := len(f.sizes) - before; got != tt.want {
				t.Errorf("window %v: 4 spaced appends in %d transactions, want %d", tt.window, got, tt.want)
			}
			if len(f.recs) != 11 {
				t.Errorf("%d records stored, want 11", len(f.recs))
			}
		})
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "key.pem")
	k1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %04o, want 0600", fi.Mode().Perm())
	}
	k2, err := LoadOrCreateKey(path)
	if err != nil || !k1.Equal(k2) {
		t.Fatalf("second load: %v (same key: %v)", err, k1.Equal(k2))
	}
	pub, err := LoadPublicKey(path)
	if err != nil || !pub.Equal(k1.Public()) {
		t.Fatalf("LoadPublicKey(private file): %v", err)
	}
	pemPub, err := EncodePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pubPath := filepath.Join(dir, "pub.pem")
	os.WriteFile(pubPath, pemPub, 0o644)
	if p2, err := LoadPublicKey(pubPath); err != nil || !p2.Equal(pub) {
		t.Fatalf("LoadPublicKey(public file): %v", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable key accepted: %v", err)
	}
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("not a key"), 0o600)
	if _, err := LoadOrCreateKey(bad); err == nil {
		t.Error("garbage key accepted")
	}
	if _, err := LoadPublicKey(bad); err == nil {
		t.Error("garbage public key accepted")
	}
}
