package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/audittest"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

func openAudit(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestAuditConformance(t *testing.T) {
	audittest.Run(t, func(t *testing.T) store.AuditLog { return openAudit(t) })
}

func TestAuditConformanceInMemoryDB(t *testing.T) {
	audittest.Run(t, func(t *testing.T) store.AuditLog {
		st, err := sqlite.Open(context.Background(), ":memory:")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	})
}

// TestAuditAppendOnlyTriggers checks that the schema refuses UPDATE and
// DELETE of audit rows made through the database itself.
func TestAuditAppendOnlyTriggers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.db")
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if err := st.AppendAudit(ctx, []*store.AuditRecord{{Seq: 1, Time: time.Now(), Action: "a", Hash: "h1"}}); err != nil {
		t.Fatal(err)
	}
	db := auditRawDB(t, path)
	for _, q := range []string{
		`UPDATE audit_records SET target = 'x' WHERE seq = 1`,
		`DELETE FROM audit_records WHERE seq = 1`,
	} {
		if _, err := db.ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want append-only refusal", q, err)
		}
	}
}

// auditRawDB opens the database file directly, as someone with access to
// the file would.
func auditRawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestAppendAuditWritten checks the audit connection: a batch appended
// without a sync is chained like AppendAuditChained, visible to another
// handle on the file at once, and SyncAudit succeeds (in memory too).
func TestAppendAuditWritten(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	other, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	mem, err := sqlite.Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	for _, s := range []*sqlite.Store{st, mem} {
		for i := range 3 {
			rec := &store.AuditRecord{Time: time.Unix(0, int64(i+1)), Action: "a"}
			err := s.AppendAuditWritten(ctx, []*store.AuditRecord{rec}, func(last *store.AuditRecord) error {
				rec.Seq, rec.Hash = 1, "h1"
				if last != nil {
					rec.Seq, rec.PrevHash, rec.Hash = last.Seq+1, last.Hash, last.Hash+"x"
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := s.SyncAudit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	last, err := other.LastAudit(ctx)
	if err != nil || last.Seq != 3 || last.Hash != "h1xx" {
		t.Fatalf("other handle sees %+v, %v; want seq 3", last, err)
	}
}
