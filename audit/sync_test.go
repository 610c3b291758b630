package audit_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

// appendConcurrently appends n records from each of callers goroutines,
// calling pause (if not nil) between two appends of one goroutine.
func appendConcurrently(t *testing.T, l *audit.Log, callers, n int, pause func()) {
	t.Helper()
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for i := range n {
				if err := l.Append(context.Background(), decided(c*n+i)); err != nil {
					t.Error(err)
					return
				}
				if pause != nil {
					pause()
				}
			}
		})
	}
	wg.Wait()
}

// TestSyncAlwaysSyncsEveryCommit checks that with SyncAlways every store
// transaction is followed by exactly one sync, and that concurrent
// callers share transactions (and so syncs).
func TestSyncAlwaysSyncsEveryCommit(t *testing.T) {
	sq, _ := openSQLite(t)
	cs := &countingStore{AuditLog: sq}
	l, err := audit.New(cs, &audit.Options{Sync: audit.SyncAlways})
	if err != nil {
		t.Fatal(err)
	}
	const callers, n = 8, 40
	appendConcurrently(t, l, callers, n, nil)
	st := l.Stats()
	if st.Records != callers*n || st.Syncs != st.Commits || cs.syncs.Load() != cs.txns.Load() {
		t.Errorf("stats %+v, store saw %d transactions and %d syncs: want one sync per commit", st, cs.txns.Load(), cs.syncs.Load())
	}
	t.Logf("%d records, %d commits, %d syncs", st.Records, st.Commits, st.Syncs)
	// Each sync is an fsync of the segment file the records went to.
	if n := sq.AuditSegmentSyncs(); n != uint64(cs.syncs.Load()) {
		t.Errorf("%d fsyncs of the segment file for %d syncs", n, cs.syncs.Load())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestSyncOSNeverSyncs checks that with SyncOS appends never sync; Close
// syncs once.
func TestSyncOSNeverSyncs(t *testing.T) {
	sq, _ := openSQLite(t)
	cs := &countingStore{AuditLog: sq}
	l, err := audit.New(cs, &audit.Options{Sync: audit.SyncOS})
	if err != nil {
		t.Fatal(err)
	}
	appendConcurrently(t, l, 8, 40, nil)
	if st := l.Stats(); st.Syncs != 0 || cs.syncs.Load() != 0 || st.Records != 320 {
		t.Errorf("stats %+v: want 320 records and no sync", st)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := cs.syncs.Load(); n != 1 {
		t.Errorf("%d syncs after Close, want 1", n)
	}
	if n := sq.AuditSegmentSyncs(); n != 1 {
		t.Errorf("%d fsyncs of the segment file after Close, want 1", n)
	}
}

// TestSyncGroupWindow checks, on a fake clock (testing/synctest), that
// SyncGroup syncs at most once per window however many records are
// written, and that the last records written are synced one window
// later without waiting for Close.
func TestSyncGroupWindow(t *testing.T) {
	sq, _ := openSQLite(t)
	cs := &countingStore{AuditLog: sq}
	const window = 10 * time.Millisecond
	synctest.Test(t, func(t *testing.T) {
		l, err := audit.New(cs, &audit.Options{Sync: audit.SyncGroup, GroupWindow: window, BatchWindow: -1})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		// 8 callers, each appending every millisecond for 100 ms.
		const callers, n = 8, 100
		appendConcurrently(t, l, callers, n, func() { time.Sleep(time.Millisecond) })
		elapsed := time.Since(start)
		synctest.Wait()
		atEnd := l.Stats()
		maxSyncs := uint64(elapsed/window) + 1
		if atEnd.Syncs < 1 || atEnd.Syncs > maxSyncs {
			t.Errorf("%d syncs in %v for %d records in %d commits: want 1 to %d (one per %v window at most)",
				atEnd.Syncs, elapsed, atEnd.Records, atEnd.Commits, maxSyncs, window)
		}
		// The records written last are synced within one window.
		time.Sleep(window)
		synctest.Wait()
		after := l.Stats()
		if after.Syncs != atEnd.Syncs+1 {
			t.Errorf("%d syncs one window after the last append, want %d", after.Syncs, atEnd.Syncs+1)
		}
		// Idle: no more syncs.
		time.Sleep(5 * window)
		synctest.Wait()
		if idle := l.Stats(); idle.Syncs != after.Syncs {
			t.Errorf("%d syncs while idle, want %d", idle.Syncs, after.Syncs)
		}
		t.Logf("%d records, %d commits, %d syncs in %v (window %v)", after.Records, after.Commits, after.Syncs, elapsed, window)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	})
	if cs.syncs.Load() == 0 {
		t.Error("the store saw no sync")
	}
}

// TestParseSyncPolicy checks the policy names and the default.
func TestParseSyncPolicy(t *testing.T) {
	for in, want := range map[string]audit.SyncPolicy{"": audit.SyncGroup, "always": audit.SyncAlways, "group": audit.SyncGroup, "os": audit.SyncOS} {
		if got, err := audit.ParseSyncPolicy(in); err != nil || got != want {
			t.Errorf("ParseSyncPolicy(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := audit.ParseSyncPolicy("sometimes"); err == nil {
		t.Error("ParseSyncPolicy(sometimes) succeeded")
	}
	if _, err := audit.New(store.NewAuditMemory(), &audit.Options{Sync: "never"}); err == nil {
		t.Error("New with sync policy never succeeded")
	}
}

// Environment of the child process of TestSIGKILLDurability.
const (
	killChildDB     = "MCPGATE_AUDIT_KILL_DB"
	killChildPolicy = "MCPGATE_AUDIT_KILL_POLICY"
)

// TestSIGKILLDurability starts a child process (this test binary) that
// appends records from 8 goroutines and prints each acknowledged record,
// kills it with SIGKILL after 300 acknowledgements, and checks, for each
// sync policy, that every acknowledged record is in the database with the
// hash it was acknowledged with and that the chain and its checkpoints
// verify. The child copies its segment file into the table all along, so
// the kill finds records in both, and the reopening recovers those left
// in the segment. It proves crash (not power-loss) safety, at the
// audit.Log level.
func TestSIGKILLDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	for _, policy := range []audit.SyncPolicy{audit.SyncAlways, audit.SyncGroup, audit.SyncOS} {
		t.Run(string(policy), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, sqlite.DefaultFile)
			cmd := exec.Command(os.Args[0], "-test.run=^TestSIGKILLChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), killChildDB+"="+path, killChildPolicy+"="+string(policy))
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			acked := map[uint64]string{}
			sc := bufio.NewScanner(out)
			killed := false
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) != 3 || f[0] != "ack" {
					continue
				}
				seq, err := strconv.ParseUint(f[1], 10, 64)
				if err != nil {
					t.Fatalf("child printed %q", sc.Text())
				}
				acked[seq] = f[2]
				if len(acked) >= 300 && !killed {
					if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
						t.Fatal(err)
					}
					killed = true
				}
			}
			err = cmd.Wait()
			if !killed {
				t.Fatalf("the child ended before 300 acknowledgements (%d): %v", len(acked), err)
			}
			checkAcked(t, path, filepath.Join(dir, audit.DefaultKeyFile), acked)
		})
	}
}

// checkAcked opens the database at path and checks that every record in
// acked (seq → hash) is stored with that hash and that the log verifies.
func checkAcked(t *testing.T, path, keyPath string, acked map[uint64]string) {
	t.Helper()
	ctx := context.Background()
	if fi, err := os.Stat(path + sqlite.SegmentSuffix); err == nil {
		t.Logf("the segment file holds %d bytes left to recover", fi.Size())
	}
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stored := map[uint64]string{}
	for r, err := range st.ReadAudit(ctx, 1) {
		if err != nil {
			t.Fatal(err)
		}
		stored[r.Seq] = r.Hash
	}
	for seq, hash := range acked {
		if stored[seq] != hash {
			t.Errorf("acknowledged record %d (hash %.12s) stored as %q", seq, hash, stored[seq])
		}
	}
	key, err := audit.LoadOrCreateKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(ctx, st, key.Public().(ed25519.PublicKey))
	if err != nil || !rep.OK || rep.Checkpoints == 0 {
		t.Fatalf("Verify: %+v, %v", rep, err)
	}
	t.Logf("%d acknowledged, %d stored, %d checkpoints verified (last at %d)", len(acked), len(stored), rep.Checkpoints, rep.LastCheckpointSeq)
}

// TestSIGKILLChild is the child process of TestSIGKILLDurability; it does
// nothing unless started by it.
func TestSIGKILLChild(t *testing.T) {
	path := os.Getenv(killChildDB)
	if path == "" {
		t.Skip("run by TestSIGKILLDurability")
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	l, err := audit.New(st, &audit.Options{
		Sync: audit.SyncPolicy(os.Getenv(killChildPolicy)), KeyPath: filepath.Join(filepath.Dir(path), audit.DefaultKeyFile),
		CheckpointEvery: 50, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	// Copy the segment file into the table over and over, so that the
	// kill also lands in the middle of copies (the store copies within
	// a second on its own).
	go func() {
		for {
			if err := st.CompactAudit(ctx); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				r := decided(c*1_000_000 + i)
				if err := l.Append(ctx, r); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "ack %d %s\n", r.Seq, r.Hash)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// failingSync is a SQLite store whose syncs fail while fail is set.
type failingSync struct {
	*countingStore
	fail atomic.Bool
}

func (f *failingSync) SyncAudit(ctx context.Context) error {
	if f.fail.Load() {
		return errors.New("fsync: input/output error")
	}
	return f.countingStore.SyncAudit(ctx)
}

// TestSyncFailureFailsClosed checks that a record whose sync failed is
// not acknowledged (always), that after a failed background sync the next
// appends are refused until a sync succeeds (group), and that FailOpen
// still lets them through.
func TestSyncFailureFailsClosed(t *testing.T) {
	ctx := context.Background()
	t.Run("always", func(t *testing.T) {
		sq, _ := openSQLite(t)
		st := &failingSync{countingStore: &countingStore{AuditLog: sq}}
		l, err := audit.New(st, &audit.Options{Sync: audit.SyncAlways, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		st.fail.Store(true)
		if err := l.Append(ctx, decided(1)); !errors.Is(err, audit.ErrNotStored) {
			t.Fatalf("Append with a failing sync: %v, want ErrNotStored", err)
		}
		st.fail.Store(false)
		if err := l.Append(ctx, decided(2)); err != nil {
			t.Fatalf("Append once syncs work again: %v", err)
		}
	})
	t.Run("group", func(t *testing.T) {
		sq, _ := openSQLite(t)
		st := &failingSync{countingStore: &countingStore{AuditLog: sq}}
		synctest.Test(t, func(t *testing.T) {
			l, err := audit.New(st, &audit.Options{Sync: audit.SyncGroup, GroupWindow: time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			st.fail.Store(true)
			if err := l.Append(ctx, decided(1)); err != nil {
				t.Fatalf("Append before the sync: %v", err)
			}
			time.Sleep(2 * time.Millisecond) // the background sync fails
			synctest.Wait()
			if l.Stats().Syncs != 1 {
				t.Fatalf("%d syncs, want 1", l.Stats().Syncs)
			}
			if err := l.Append(ctx, decided(2)); !errors.Is(err, audit.ErrNotStored) {
				t.Fatalf("Append after a failed sync: %v, want ErrNotStored", err)
			}
			st.fail.Store(false)
			if err := l.Append(ctx, decided(3)); err != nil {
				t.Fatalf("Append once syncs work again: %v", err)
			}
			l.Close()
		})
	})
	t.Run("fail open", func(t *testing.T) {
		sq, _ := openSQLite(t)
		st := &failingSync{countingStore: &countingStore{AuditLog: sq}}
		l, err := audit.New(st, &audit.Options{Sync: audit.SyncAlways, FailOpen: true, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		st.fail.Store(true)
		if err := l.Append(ctx, decided(1)); err != nil {
			t.Fatalf("Append with FailOpen: %v", err)
		}
		st.fail.Store(false)
	})
}
