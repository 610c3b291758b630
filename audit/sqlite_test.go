package audit_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

func openSQLite(t testing.TB) (*sqlite.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mcpgate.db")
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, path
}

func decided(i int) *audit.Record {
	return &audit.Record{
		User: "alice", Client: "https://client.example/cimd.json", Session: "s1",
		Upstream: "files", Action: "tools/call", Target: "read_file",
		Decision: audit.DecisionAllow, PolicyVersion: "pv-1", Policies: []string{"permit-read"},
		Args:    jsontext.Value(fmt.Sprintf(`{"path":"/srv/data/%d.txt"}`, i)),
		Outcome: audit.OutcomePending, Phase: audit.PhaseDecided,
	}
}

// TestDecidedRecordDurable checks that a record is visible to another
// store on the file as soon as Append returns (it is in the segment
// file), in the table once compacted, and that
// Append fails closed when the database is gone.
func TestDecidedRecordDurable(t *testing.T) {
	ctx := context.Background()
	st, path := openSQLite(t)
	l, err := audit.New(st, &audit.Options{KeyPath: filepath.Join(filepath.Dir(path), audit.DefaultKeyFile), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	r := decided(1)
	if err := l.Append(ctx, r); err != nil {
		t.Fatal(err)
	}
	// Another store on the file (another process) reads it through the
	// segment file.
	other, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var got *store.AuditRecord
	for sr, err := range other.ReadAudit(ctx, r.Seq) {
		if err != nil {
			t.Fatal(err)
		}
		got = sr
		break
	}
	if got == nil || got.Phase != audit.PhaseDecided || got.Hash != r.Hash {
		t.Fatalf("record %d read by another store after Append: %+v, want phase %q hash %q", r.Seq, got, audit.PhaseDecided, r.Hash)
	}
	// Once compacted, it is in the table itself.
	if err := st.CompactAudit(ctx); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var phase, hash string
	if err := db.QueryRowContext(ctx, `SELECT phase, hash FROM audit_records WHERE seq = ?`, r.Seq).Scan(&phase, &hash); err != nil {
		t.Fatalf("record %d not in the table after CompactAudit: %v", r.Seq, err)
	}
	if phase != audit.PhaseDecided || hash != r.Hash {
		t.Errorf("stored phase %q hash %q, want %q %q", phase, hash, audit.PhaseDecided, r.Hash)
	}
	st.Close() // the store goes down
	if err := l.Append(ctx, decided(2)); !errors.Is(err, audit.ErrNotStored) {
		t.Errorf("Append with the store down: err = %v, want ErrNotStored", err)
	}
	l.Close()
}

// TestTwoProcessesOneSQLiteFile runs two Logs on two connections to one
// SQLite file, as a running gateway and a command-line tool do: each
// appends while the other's view of the chain head is stale, in turn and
// concurrently. Every append succeeds at once (the head is read inside
// the write transaction, so there is nothing to retry) and the chain
// verifies whole, with the checkpoints both signed.
func TestTwoProcessesOneSQLiteFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, sqlite.DefaultFile)
	key := filepath.Join(dir, audit.DefaultKeyFile)
	var logs [2]*audit.Log
	var stores [2]*countingStore
	for i := range logs {
		sq, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer sq.Close()
		stores[i] = &countingStore{AuditLog: sq}
		logs[i], err = audit.New(stores[i], &audit.Options{KeyPath: key, CheckpointEvery: 7, CheckpointInterval: -1, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
	}
	// In turn: each Log's cached head is behind after the other appends.
	n := 0
	for i := range 10 {
		r := decided(n)
		n++
		if err := logs[i%2].Append(ctx, r); err != nil {
			t.Fatal(err)
		}
		if r.Seq != uint64(n) {
			t.Fatalf("append %d by log %d got seq %d, want %d", i, i%2, r.Seq, n)
		}
	}
	// Concurrently.
	var wg sync.WaitGroup
	for _, l := range logs {
		for range 4 {
			wg.Go(func() {
				for i := range 25 {
					if err := l.Append(ctx, decided(i)); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	n += 2 * 4 * 25
	for _, l := range logs {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for i, st := range stores {
		if p := st.plain.Load(); p != 0 {
			t.Errorf("log %d stored %d batches without letting the store chain them", i, p)
		}
	}
	pub, err := audit.LoadPublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	sq, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	rep, err := audit.Verify(ctx, sq, pub)
	if err != nil || !rep.OK || rep.Records != n || !rep.SignaturesChecked || rep.Checkpoints < 2 {
		t.Fatalf("Verify: %+v %v (want %d records)", rep, err, n)
	}
}

// BenchmarkAppend measures parallel appends to a SQLite file with each
// sync policy and the default group commit: ns/op is the amortized cost
// of one acknowledged append with that many concurrent callers, cpu-ns/op
// the process's CPU time per append (including the background copy of
// the segment file into the table), which a loaded machine does not
// inflate as it does ns/op.
func BenchmarkAppend(b *testing.B) {
	for _, policy := range []audit.SyncPolicy{audit.SyncAlways, audit.SyncGroup, audit.SyncOS} {
		for _, callers := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("sync=%s/callers=%d", policy, callers), func(b *testing.B) {
				sq, _ := openSQLite(b)
				st := &countingStore{AuditLog: sq}
				l, err := audit.New(st, &audit.Options{KeyPath: filepath.Join(b.TempDir(), "k.pem"), Sync: policy})
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				ctx := context.Background()
				b.ReportAllocs()
				b.ResetTimer()
				cpu := cpuTime()
				var wg sync.WaitGroup
				for c := range callers {
					wg.Go(func() {
						for i := c; i < b.N; i += callers {
							if err := l.Append(ctx, decided(i)); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				if err := sq.CompactAudit(ctx); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
				if n := st.txns.Load(); n > 0 {
					b.ReportMetric(float64(st.recs.Load())/float64(n), "records/txn")
				}
				b.ReportMetric(float64(st.syncs.Load())/float64(b.N), "syncs/op")
			})
		}
	}
}

// countingStore counts store transactions and the records they carry.
type countingStore struct {
	store.AuditLog
	txns, recs atomic.Int64
	syncs      atomic.Int64 // SyncAudit calls
	plain      atomic.Int64 // AppendAudit calls (not chained by the store)
}

func (c *countingStore) AppendAudit(ctx context.Context, recs []*store.AuditRecord) error {
	c.txns.Add(1)
	c.plain.Add(1)
	c.recs.Add(int64(len(recs)))
	return c.AuditLog.AppendAudit(ctx, recs)
}

func (c *countingStore) AppendAuditChained(ctx context.Context, recs []*store.AuditRecord, chain func(*store.AuditRecord) error) error {
	c.txns.Add(1)
	c.recs.Add(int64(len(recs)))
	return c.AuditLog.(store.AuditChainer).AppendAuditChained(ctx, recs, chain)
}

func (c *countingStore) AppendAuditWritten(ctx context.Context, recs []*store.AuditRecord, chain func(*store.AuditRecord) error) error {
	c.txns.Add(1)
	c.recs.Add(int64(len(recs)))
	return c.AuditLog.(store.AuditSyncer).AppendAuditWritten(ctx, recs, chain)
}

func (c *countingStore) SyncAudit(ctx context.Context) error {
	c.syncs.Add(1)
	return c.AuditLog.(store.AuditSyncer).SyncAudit(ctx)
}

// BenchmarkAppendMemory measures parallel appends to the in-memory
// store: the CPU cost of an append without disk I/O.
func BenchmarkAppendMemory(b *testing.B) {
	l, err := audit.New(store.NewAuditMemory(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	b.SetParallelism(32)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if err := l.Append(ctx, decided(i)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkAppendSerial measures one caller appending alone, with each
// sync policy: every append is its own transaction (the latency of a
// decided record).
func BenchmarkAppendSerial(b *testing.B) {
	for _, policy := range []audit.SyncPolicy{audit.SyncAlways, audit.SyncGroup, audit.SyncOS} {
		b.Run("sync="+string(policy), func(b *testing.B) {
			sq, _ := openSQLite(b)
			st := &countingStore{AuditLog: sq}
			l, err := audit.New(st, &audit.Options{Sync: policy})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			ctx := context.Background()
			b.ReportAllocs()
			cpu := cpuTime()
			for i := 0; b.Loop(); i++ {
				if err := l.Append(ctx, decided(i)); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if err := sq.CompactAudit(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(st.syncs.Load())/float64(b.N), "syncs/op")
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	st, _ := openSQLite(b)
	l, err := audit.New(st, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for i := range 1000 {
		if err := l.Append(ctx, decided(i)); err != nil {
			b.Fatal(err)
		}
	}
	l.Close()
	b.ReportAllocs()
	for b.Loop() {
		rep, err := audit.Verify(ctx, st, nil)
		if err != nil || !rep.OK {
			b.Fatal(rep, err)
		}
	}
}

func BenchmarkDigest(b *testing.B) {
	v := jsontext.Value(`{"path":"/srv/data/file.txt","options":{"encoding":"utf-8","limit":4096,"follow":true},"tags":["a","b","c"]}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := audit.Digest(v); err != nil {
			b.Fatal(err)
		}
	}
}
