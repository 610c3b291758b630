package sqlite

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

// segRecord returns record seq, chained to prev.
func segRecord(seq uint64, prev string) *store.AuditRecord {
	r := &store.AuditRecord{Seq: seq, Time: time.Unix(0, int64(seq)*1000+7), User: "alice", Action: "tools/call",
		Target: fmt.Sprintf("t%d", seq), Policies: []string{"p1", "p2"}, Phase: "decided", PrevHash: prev,
		Hash: fmt.Sprintf("h%d", seq), LatencyMicros: -3}
	if seq%2 == 0 {
		r.Args, r.Result = []byte(`{"a":1}`), []byte{}
	}
	return r
}

// chainAfter is a chain function that links recs after the head.
func chainAfter(recs []*store.AuditRecord) func(*store.AuditRecord) error {
	return func(last *store.AuditRecord) error {
		var seq uint64
		prev := ""
		if last != nil {
			seq, prev = last.Seq, last.Hash
		}
		for _, r := range recs {
			seq++
			r.Seq, r.PrevHash, r.Hash = seq, prev, fmt.Sprintf("h%d", seq)
			prev = r.Hash
		}
		return nil
	}
}

func openSeg(t *testing.T, path string) *Store {
	t.Helper()
	st, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if st.seg == nil {
		t.Skip("no audit segment file on this system")
	}
	return st
}

// readAll reads the whole log and checks that it is contiguous from 1.
func readAll(t *testing.T, st *Store) []*store.AuditRecord {
	t.Helper()
	var out []*store.AuditRecord
	for r, err := range st.ReadAudit(context.Background(), 0) {
		if err != nil {
			t.Fatal(err)
		}
		if want := uint64(len(out) + 1); r.Seq != want {
			t.Fatalf("ReadAudit yielded seq %d at position %d", r.Seq, want)
		}
		out = append(out, r)
	}
	return out
}

// tableCount returns the rows in audit_records.
func tableCount(t *testing.T, st *Store) int {
	t.Helper()
	var n int
	if err := st.db.QueryRow(`SELECT count(*) FROM audit_records`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAuditSegmentRoundTrip checks that a record read back from the
// segment and from the table after the copy is the record written.
func TestAuditSegmentRoundTrip(t *testing.T) {
	ctx := context.Background()
	st := openSeg(t, filepath.Join(t.TempDir(), "a.db"))
	recs := []*store.AuditRecord{segRecord(0, ""), segRecord(0, ""), segRecord(0, "")}
	recs[2].Policies, recs[2].Error = nil, "invalid \xff utf-8 kept as given"
	if err := st.AppendAuditWritten(ctx, recs, chainAfter(recs)); err != nil {
		t.Fatal(err)
	}
	check := func(when string, norm func(*store.AuditRecord)) {
		got := readAll(t, st)
		if len(got) != len(recs) {
			t.Fatalf("%s: %d records, want %d", when, len(got), len(recs))
		}
		for i, r := range got {
			want := store.CloneAuditRecord(recs[i])
			want.Time = fromTS(ts(want.Time))
			norm(r)
			norm(want)
			if !reflect.DeepEqual(r, want) {
				t.Errorf("%s: record %d\n got %+v\nwant %+v", when, i+1, r, want)
			}
		}
	}
	// The segment keeps every field exactly, nil and empty payloads
	// apart.
	check("in the segment", func(*store.AuditRecord) {})
	if n := tableCount(t, st); n != 0 {
		t.Fatalf("%d rows in the table before the copy", n)
	}
	if err := st.CompactAudit(ctx); err != nil {
		t.Fatal(err)
	}
	if n := tableCount(t, st); n != len(recs) {
		t.Fatalf("%d rows in the table after the copy, want %d", n, len(recs))
	}
	// The table keeps them as it always did (time zone and empty
	// payloads aside).
	check("in the table", func(r *store.AuditRecord) {
		r.Time = r.Time.UTC()
		if len(r.Result) == 0 {
			r.Result = nil
		}
	})
}

// TestAuditSegmentRecovery writes a segment as a killed process leaves
// it (records not copied, the last frame cut short) and checks that
// Open copies the whole frames into the table and drops the torn one.
func TestAuditSegmentRecovery(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a.db")
	st := openSeg(t, path)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, segHeaderLen) // the end is set below
	copy(b, segMagic)
	binary.LittleEndian.PutUint64(b[8:], 9)
	prev := ""
	for seq := uint64(1); seq <= 5; seq++ {
		r := segRecord(seq, prev)
		prev = r.Hash
		b = appendFrame(b, r)
	}
	whole := len(b)
	b = appendFrame(b, segRecord(6, prev))
	b = b[:len(b)-3] // torn
	// The header's end covers the torn frame, as after a power loss that
	// kept the header's page and lost part of the frame's.
	binary.LittleEndian.PutUint64(b[16:], uint64(len(b)))
	if err := os.WriteFile(path+SegmentSuffix, b, 0o600); err != nil {
		t.Fatal(err)
	}
	st = openSeg(t, path)
	if n := tableCount(t, st); n != 5 {
		t.Fatalf("%d rows in the table after recovery, want 5", n)
	}
	if got := readAll(t, st); len(got) != 5 {
		t.Fatalf("%d records after recovery, want 5", len(got))
	}
	fi, err := os.Stat(path + SegmentSuffix)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != segHeaderLen {
		t.Errorf("segment is %d bytes after recovery (%d of whole frames), want the header only", fi.Size(), whole)
	}
	// The chain goes on from the recovered head.
	more := []*store.AuditRecord{segRecord(0, "")}
	if err := st.AppendAuditWritten(ctx, more, chainAfter(more)); err != nil {
		t.Fatal(err)
	}
	if more[0].Seq != 6 || more[0].PrevHash != "h5" {
		t.Errorf("appended seq %d after %q, want 6 after h5", more[0].Seq, more[0].PrevHash)
	}
}

// TestAuditSegmentAlreadyCopied checks recovery when a process was
// killed after its copy committed but before it emptied the segment: the
// records in both are not copied twice, and a segment that disagrees
// with the table is refused.
func TestAuditSegmentAlreadyCopied(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a.db")
	st := openSeg(t, path)
	recs := []*store.AuditRecord{segRecord(0, ""), segRecord(0, "")}
	if err := st.AppendAuditWritten(ctx, recs, chainAfter(recs)); err != nil {
		t.Fatal(err)
	}
	seg, err := os.ReadFile(path + SegmentSuffix)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil { // copies
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		extra   *store.AuditRecord
		wantErr bool
	}{
		// In this order: the first leaves records 1 and 2 in the table.
		{"forked", &store.AuditRecord{Seq: 2, PrevHash: "h1", Hash: "other"}, true},
		{"same records", segRecord(3, "h2"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := appendFrame(bytes.Clone(seg), tc.extra)
			if tc.wantErr {
				// Record 1, then a record 2 other than the table's.
				b = appendFrame(appendFrame(bytes.Clone(seg[:segHeaderLen]), recs[0]), tc.extra)
			}
			// Acknowledged: the header's end covers them.
			binary.LittleEndian.PutUint64(b[16:], uint64(len(b)))
			if err := os.WriteFile(path+SegmentSuffix, b, 0o600); err != nil {
				t.Fatal(err)
			}
			st := openSeg(t, path)
			err := st.CompactAudit(ctx)
			if tc.wantErr {
				if !errors.Is(err, store.ErrAuditConflict) {
					t.Fatalf("copying a forked segment: %v, want ErrAuditConflict", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n := tableCount(t, st); n != 3 {
				t.Errorf("%d rows, want 3", n)
			}
			readAll(t, st)
		})
	}
}

// TestAuditSegmentTwoStores runs two stores on one file, as a gateway and
// the command line: one appends through the segment, the other
// directly (AppendAuditChained), interleaved; the chain never forks and
// each reads what the other wrote.
func TestAuditSegmentTwoStores(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a.db")
	a, b := openSeg(t, path), openSeg(t, path)
	n := 0
	for i := range 20 {
		r := []*store.AuditRecord{segRecord(0, "")}
		var err error
		switch i % 4 {
		case 0, 1:
			err = a.AppendAuditWritten(ctx, r, chainAfter(r))
		case 2:
			err = b.AppendAuditChained(ctx, r, chainAfter(r))
		case 3:
			err = b.AppendAuditWritten(ctx, r, chainAfter(r))
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		if r[0].Seq != uint64(n) {
			t.Fatalf("append %d got seq %d, want %d", i, r[0].Seq, n)
		}
		for _, st := range []*Store{a, b} {
			last, err := st.LastAudit(ctx)
			if err != nil || last.Seq != uint64(n) {
				t.Fatalf("LastAudit after append %d: %+v %v", i, last, err)
			}
		}
	}
	// AppendAudit (unchained) must continue the head the other store
	// wrote to the segment.
	bad := []*store.AuditRecord{segRecord(uint64(n), fmt.Sprintf("h%d", n-1))}
	if err := b.AppendAudit(ctx, bad); !errors.Is(err, store.ErrAuditConflict) {
		t.Errorf("AppendAudit not continuing the head: %v, want ErrAuditConflict", err)
	}
	if got := readAll(t, b); len(got) != n {
		t.Fatalf("%d records, want %d", len(got), n)
	}
}

// TestAuditSegmentReadDuringCopy reads the log while records are
// appended and copied: every read is contiguous and holds every record
// acknowledged before it started.
func TestAuditSegmentReadDuringCopy(t *testing.T) {
	ctx := context.Background()
	st := openSeg(t, filepath.Join(t.TempDir(), "a.db"))
	var mu sync.Mutex
	acked := 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 300 {
			r := []*store.AuditRecord{segRecord(0, "")}
			if err := st.AppendAuditWritten(ctx, r, chainAfter(r)); err != nil {
				t.Error(err)
				break
			}
			mu.Lock()
			acked++
			mu.Unlock()
			if i%7 == 0 {
				if err := st.CompactAudit(ctx); err != nil {
					t.Error(err)
					break
				}
			}
		}
		close(stop)
	})
	for done := false; !done; {
		select {
		case <-stop:
			done = true
		default:
		}
		mu.Lock()
		before := acked
		mu.Unlock()
		if got := readAll(t, st); len(got) < before {
			t.Fatalf("read %d records, %d were acknowledged before the read", len(got), before)
		}
	}
	wg.Wait()
}

// TestAuditSegmentFull checks that appends fail, storing nothing, once
// the segment holds its maximum (the copy is failing).
func TestAuditSegmentFull(t *testing.T) {
	ctx := context.Background()
	st := openSeg(t, filepath.Join(t.TempDir(), "a.db"))
	st.seg.mu.Lock()
	st.seg.maxBytes = 400
	st.seg.mu.Unlock()
	var err error
	n := 0
	for range 100 {
		r := []*store.AuditRecord{segRecord(0, "")}
		if err = st.AppendAuditWritten(ctx, r, chainAfter(r)); err != nil {
			break
		}
		n++
	}
	if err == nil || !strings.Contains(err.Error(), "full") {
		t.Fatalf("after %d appends: %v, want a full segment", n, err)
	}
	if got := readAll(t, st); len(got) != n {
		t.Errorf("%d records stored, %d acknowledged", len(got), n)
	}
}

// FuzzSegment decodes arbitrary bytes as segment frames: no panic, no
// allocation beyond the input's size, and the valid frames it finds
// encode to frames that decode to the same records.
func FuzzSegment(f *testing.F) {
	prev := ""
	var b []byte
	for seq := uint64(1); seq <= 3; seq++ {
		r := segRecord(seq, prev)
		prev = r.Hash
		b = appendFrame(b, r)
		f.Add(bytes.Clone(b))
	}
	f.Add(b[:len(b)-1])
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add(appendRecord(nil, segRecord(4, "h3")))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, n, err := decodeFrames(data)
		if n > len(data) || (n < len(data)) != (err != nil) {
			t.Fatalf("decoded %d of %d bytes, err %v", n, len(data), err)
		}
		if err != nil && !errors.Is(err, errTorn) {
			t.Fatalf("error %v is not errTorn", err)
		}
		var again []byte
		for _, r := range recs {
			again = appendFrame(again, r)
		}
		back, m, err := decodeFrames(again)
		if err != nil || m != len(again) || !reflect.DeepEqual(back, recs) {
			t.Fatalf("re-encoded %d records decode to %d (%d of %d bytes, %v)", len(recs), len(back), m, len(again), err)
		}
		// The payload decoder on its own (the checksum keeps most
		// mutations away from it above).
		if r, err := decodeRecord(data); err == nil {
			back, err := decodeRecord(appendRecord(nil, r))
			if err != nil || !reflect.DeepEqual(back, r) {
				t.Fatalf("payload %x: decoded %+v, re-encoded decodes to %+v, %v", data, r, back, err)
			}
		}
	})
}

// BenchmarkAuditSegmentAppend measures AppendAuditWritten of one record
// to the segment file (the lock, the checks and one write), with the
// background copy into the table running as it does in the gateway.
func BenchmarkAuditSegmentAppend(b *testing.B) {
	ctx := context.Background()
	st, err := Open(ctx, filepath.Join(b.TempDir(), "a.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	b.ReportAllocs()
	for b.Loop() {
		r := []*store.AuditRecord{segRecord(0, "")}
		if err := st.AppendAuditWritten(ctx, r, chainAfter(r)); err != nil {
			b.Fatal(err)
		}
	}
}
