package postgres_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mcpgate/mcpgate/internal/pgtest"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/postgres"
)

// latestMigration returns the number of the newest migration file.
func latestMigration(t *testing.T) int {
	t.Helper()
	names, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(names) == 0 {
		t.Fatalf("no migrations found: %v", err)
	}
	latest := 0
	for _, n := range names {
		base := filepath.Base(n)
		num, err := strconv.Atoi(base[:strings.IndexByte(base, '_')])
		if err != nil {
			t.Fatalf("migration %s: %v", base, err)
		}
		latest = max(latest, num)
	}
	return latest
}

// TestMigrationsMirrorSQLite checks that every SQLite migration has its
// PostgreSQL counterpart with the same name, so the schemas move
// together.
func TestMigrationsMirrorSQLite(t *testing.T) {
	names := func(dir string) []string {
		m, err := fs.Glob(os.DirFS(dir), "*.sql")
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	sq, pg := names("../sqlite/migrations"), names("migrations")
	if fmt.Sprint(sq) != fmt.Sprint(pg) {
		t.Fatalf("migrations differ:\nsqlite:   %v\npostgres: %v", sq, pg)
	}
}

// TestConcurrentOpen opens one new database from many goroutines at once
// (replicas starting together): all succeed and each migration is
// applied once.
func TestConcurrentOpen(t *testing.T) {
	url := pgtest.URL(t)
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			s, err := postgres.Open(context.Background(), url)
			if err != nil {
				errs <- err
				return
			}
			s.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	conn := rawConn(t, url)
	var rows, distinct, latest int
	if err := conn.QueryRow(context.Background(), `SELECT count(*), count(DISTINCT version), max(version) FROM schema_migrations`).Scan(&rows, &distinct, &latest); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("migrations/*.sql")
	if rows != len(files) || distinct != rows || latest != latestMigration(t) {
		t.Fatalf("schema_migrations has %d rows (%d distinct, max %d); want %d, max %d", rows, distinct, latest, len(files), latestMigration(t))
	}
	s := openURL(t, url)
	if v, err := s.SchemaVersion(context.Background()); err != nil || v != latestMigration(t) {
		t.Fatalf("SchemaVersion = %d, %v", v, err)
	}
}

// rawConn connects to url directly, as someone with access to the
// database would.
func rawConn(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestTwoStoresShareState checks that two Stores on one database (two
// replicas) see each other's writes, and that single-use records stay
// single-use across them.
func TestTwoStoresShareState(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	a, b := openURL(t, url), openURL(t, url)
	if err := a.CreateUser(ctx, &store.User{Username: "alice", Groups: []string{"g"}}); err != nil {
		t.Fatal(err)
	}
	if u, err := b.GetUser(ctx, "alice"); err != nil || u.Groups[0] != "g" {
		t.Fatalf("b.GetUser = %+v, %v", u, err)
	}
	if err := b.CreateUser(ctx, &store.User{Username: "alice"}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("b.CreateUser of a's user: %v, want ErrExists", err)
	}
	now := time.Now()
	// One code, redeemed concurrently through both stores: one winner.
	const n = 16
	for i := range n {
		if err := a.CreateAuthCode(ctx, &store.AuthCode{CodeHash: fmt.Sprint("code", i), ClientID: "c", ExpiresAt: now.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins, consumed := 0, 0
		for j := range 4 {
			st := a
			if j%2 == 1 {
				st = b
			}
			wg.Go(func() {
				_, err := st.ConsumeAuthCode(ctx, fmt.Sprint("code", i), now)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case errors.Is(err, store.ErrConsumed):
					consumed++
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if wins != 1 || consumed != 3 {
			t.Fatalf("code %d: %d redemptions won, %d refused; want 1 and 3", i, wins, consumed)
		}
	}
	// An approval consumed concurrently through both: one winner.
	ap := &store.ApprovalRecord{ID: "ap", Binding: "b", Principal: "alice", Tool: "t", Status: store.ApprovalPending, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if _, _, err := a.CreateApproval(ctx, ap, now); err != nil {
		t.Fatal(err)
	}
	if _, err := b.DecideApproval(ctx, "ap", store.ApprovalApproved, "carol", "", now); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	results := make(chan error, 8)
	for j := range 8 {
		st := a
		if j%2 == 1 {
			st = b
		}
		wg.Go(func() {
			_, err := st.ConsumeApproval(ctx, "ap", now)
			results <- err
		})
	}
	wg.Wait()
	close(results)
	wins := 0
	for err := range results {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, store.ErrApprovalState):
			t.Error(err)
		}
	}
	if wins != 1 {
		t.Fatalf("approval consumed %d times", wins)
	}
}

// TestCreateApprovalConcurrent creates approvals with one binding from
// two stores at once: one pending approval results.
func TestCreateApprovalConcurrent(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	stores := []*postgres.Store{openURL(t, url), openURL(t, url)}
	now := time.Now()
	var wg sync.WaitGroup
	ids := make(chan string, 8)
	for i := range 8 {
		wg.Go(func() {
			a := &store.ApprovalRecord{ID: fmt.Sprint("ap", i), Binding: "same", Principal: "alice", Tool: "t", Status: store.ApprovalPending, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
			got, _, err := stores[i%2].CreateApproval(ctx, a, now)
			if err != nil {
				t.Error(err)
				return
			}
			ids <- got.ID
		})
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		seen[id] = true
	}
	if len(seen) != 1 {
		t.Fatalf("concurrent requests yielded approvals %v; want one", seen)
	}
}

// TestRotateRacesRevokeFamily rotates refresh tokens through one store
// while the family is revoked through another: every token stored in the
// family ends revoked.
func TestRotateRacesRevokeFamily(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	a, b := openURL(t, url), openURL(t, url)
	now := time.Now()
	for round := range 10 {
		fam := fmt.Sprint("fam", round)
		tok := func(i int) *store.RefreshToken {
			return &store.RefreshToken{TokenHash: fmt.Sprintf("%s-%d", fam, i), FamilyID: fam, ClientID: "c", Subject: "s", ExpiresAt: now.Add(time.Hour)}
		}
		if err := a.CreateRefreshToken(ctx, tok(0)); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := 0; ; i++ {
				if _, err := a.RotateRefreshToken(ctx, tok(i).TokenHash, tok(i+1), now); err != nil {
					if !errors.Is(err, store.ErrRevoked) {
						t.Error(err)
					}
					return
				}
			}
		})
		wg.Go(func() {
			if _, err := b.RevokeFamily(ctx, fam); err != nil {
				t.Error(err)
			}
		})
		wg.Wait()
		var live int
		if err := rawConn(t, url).QueryRow(ctx, `SELECT count(*) FROM refresh_tokens WHERE family_id = $1 AND NOT revoked`, fam).Scan(&live); err != nil {
			t.Fatal(err)
		}
		if live != 0 {
			t.Fatalf("round %d: %d tokens of the revoked family are live", round, live)
		}
	}
}

// chainHash is a stand-in for the audit package's hash.
func chainHash(prev string, seq uint64, action string) string {
	sum := sha256.Sum256([]byte(prev + "|" + strconv.FormatUint(seq, 10) + "|" + action))
	return hex.EncodeToString(sum[:])
}

// TestConcurrentAuditAppenders appends from many goroutines through two
// pools (two replicas) at once with AppendAuditChained: every record is
// stored and the chain never forks.
func TestConcurrentAuditAppenders(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	stores := []*postgres.Store{openURL(t, url), openURL(t, url)}
	const writers, batches, perBatch = 6, 10, 3
	var wg sync.WaitGroup
	for w := range writers {
		st := stores[w%2]
		wg.Go(func() {
			for i := range batches {
				recs := make([]*store.AuditRecord, perBatch)
				for k := range recs {
					recs[k] = &store.AuditRecord{Time: time.Now(), Action: fmt.Sprintf("w%d-b%d-r%d", w, i, k)}
				}
				err := st.AppendAuditChained(ctx, recs, func(last *store.AuditRecord) error {
					var seq uint64
					var hash string
					if last != nil {
						seq, hash = last.Seq, last.Hash
					}
					for _, r := range recs {
						seq++
						r.Seq, r.PrevHash, r.Hash = seq, hash, chainHash(hash, seq, r.Action)
						hash = r.Hash
					}
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	var prev string
	var n uint64
	actions := map[string]bool{}
	for r, err := range stores[0].ReadAudit(ctx, 1) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if r.Seq != n || r.PrevHash != prev || r.Hash != chainHash(prev, r.Seq, r.Action) {
			t.Fatalf("record %d (seq %d) does not continue the chain", n, r.Seq)
		}
		prev = r.Hash
		actions[r.Action] = true
	}
	if want := writers * batches * perBatch; int(n) != want || len(actions) != want {
		t.Fatalf("%d records (%d distinct), want %d", n, len(actions), want)
	}
}

// TestAuditAppendOnlyTriggers checks that the schema refuses UPDATE,
// DELETE and TRUNCATE of audit rows made through the database itself.
func TestAuditAppendOnlyTriggers(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	st := openURL(t, url)
	if err := st.AppendAudit(ctx, []*store.AuditRecord{{Seq: 1, Time: time.Now(), Action: "a", Hash: "h1"}}); err != nil {
		t.Fatal(err)
	}
	conn := rawConn(t, url)
	for _, q := range []string{
		`UPDATE audit_records SET target = 'x' WHERE seq = 1`,
		`DELETE FROM audit_records WHERE seq = 1`,
		`TRUNCATE audit_records`,
	} {
		if _, err := conn.Exec(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want append-only refusal", q, err)
		}
	}
	if err := st.SyncAudit(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestTokenRevocationPushed checks that a revocation by another Store (or
// plain SQL) changes the version and is pushed to WatchTokenRevocations,
// and that other writes are not.
func TestTokenRevocationPushed(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url := pgtest.URL(t)
	a, b := openURL(t, url), openURL(t, url)
	ch, err := a.WatchTokenRevocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hooked := make(chan struct{}, 10)
	a.OnTokenRevoked(func() { hooked <- struct{}{} })
	now := time.Now()
	for _, id := range []string{"t1", "t2", "t3"} {
		if err := a.RecordAccessToken(ctx, &store.AccessToken{ID: id, FamilyID: "fam", ClientID: "c", Subject: "alice", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	v0, err := a.TokenRevocationVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// wait receives pushed versions until one is at least min.
	wait := func(min int64) int64 {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case v, ok := <-ch:
				if !ok {
					t.Fatal("watch channel closed")
				}
				if v >= min {
					return v
				}
			case <-deadline:
				t.Fatalf("no version >= %d pushed within 30 s", min)
			}
		}
	}
	if err := b.RevokeAccessToken(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	v1 := wait(v0 + 1)
	if got, _ := a.TokenRevocationVersion(ctx); got != v1 {
		t.Fatalf("pushed %d, stored %d", v1, got)
	}
	if len(hooked) != 0 {
		t.Fatal("OnTokenRevoked ran for another store's revocation")
	}
	if _, err := a.RevokeFamily(ctx, "fam"); err != nil {
		t.Fatal(err)
	}
	v2 := wait(v1 + 1)
	if len(hooked) != 1 {
		t.Fatalf("%d OnTokenRevoked calls, want 1", len(hooked))
	}
	if _, err := rawConn(t, url).Exec(ctx, `UPDATE access_tokens SET revoked = false WHERE id = 't1'`); err != nil {
		t.Fatal(err)
	}
	wait(v2 + 1)
	// A write that revokes nothing pushes nothing: the next push is the
	// next revocation.
	if err := a.RecordAccessToken(ctx, &store.AccessToken{ID: "t4", ClientID: "c", Subject: "alice", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	cur, _ := a.TokenRevocationVersion(ctx)
	if err := b.RevokeAccessToken(ctx, "t4"); err != nil {
		t.Fatal(err)
	}
	if v := wait(cur + 1); v != cur+1 {
		t.Fatalf("pushed %d after one revocation from %d", v, cur)
	}
	cancel()
	for range ch {
	}
}

// TestWatchReconnects kills the listening connection: the watch
// reconnects and goes on pushing.
func TestWatchReconnects(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url := pgtest.URL(t)
	a := openURL(t, url)
	ch, err := a.WatchTokenRevocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn := rawConn(t, url)
	if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %' AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := a.RecordAccessToken(ctx, &store.AccessToken{ID: "t1", ClientID: "c", Subject: "alice", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// Revoke (and un-revoke) until a version reaches the watcher: the
	// first may be made before the watcher listens again, and is then
	// reported by the version it reads after reconnecting.
	deadline := time.Now().Add(30 * time.Second)
	for revoked := false; ; revoked = !revoked {
		if _, err := conn.Exec(ctx, `UPDATE access_tokens SET revoked = $1 WHERE id = 't1'`, !revoked); err != nil {
			t.Fatal(err)
		}
		select {
		case v := <-ch:
			// The version read after reconnecting may predate the
			// first revocation.
			if v >= 1 {
				return
			}
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing pushed within 30 s after the listening connection was killed")
		}
	}
}

// TestCheckWritable checks the readiness probe on an open and a closed
// store.
func TestCheckWritable(t *testing.T) {
	ctx := context.Background()
	s, err := postgres.Open(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CheckWritable(ctx); err != nil {
		t.Fatalf("open database: %v", err)
	}
	s.Close()
	if err := s.CheckWritable(ctx); err == nil {
		t.Fatal("closed database reported writable")
	}
}

// TestOpenErrors checks clear errors for a bad URL and an unreachable
// server.
func TestOpenErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, url := range []string{
		"postgres://%zz",
		"postgres://nobody@/db?host=" + t.TempDir() + "&connect_timeout=5",
	} {
		if s, err := postgres.Open(ctx, url); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", url)
		} else if !strings.HasPrefix(err.Error(), "postgres: ") {
			t.Errorf("Open(%q): %v", url, err)
		}
	}
	if !postgres.IsURL("postgres://h/db") || !postgres.IsURL("postgresql://h/db") || postgres.IsURL("/var/lib/mcpgate") {
		t.Error("IsURL")
	}
}

// TestGatewayTasks runs on PostgreSQL the checks store's own
// TestGatewayTasks and TestGatewayTaskGovernance make of the memory and
// SQLite implementations.
func TestGatewayTasks(t *testing.T) {
	ctx := context.Background()
	st := open(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	a := &store.GatewayTask{ID: "g1", Principal: "alice", ClientID: "app", Upstream: "up", UpstreamTaskID: "u1", Status: "working", CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(time.Hour)}
	b := &store.GatewayTask{ID: "g2", Principal: "bob", Upstream: "up", UpstreamTaskID: "u2", Status: "working", CreatedAt: now.Add(time.Second), UpdatedAt: now, ExpiresAt: now.Add(-time.Second)}
	for _, x := range []*store.GatewayTask{a, b} {
		if err := st.PutGatewayTask(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.GetGatewayTask(ctx, "g1")
	if err != nil || got.Principal != "alice" || got.ClientID != "app" || got.UpstreamTaskID != "u1" || !got.CreatedAt.Equal(now) {
		t.Fatalf("get: %+v %v", got, err)
	}
	a.Status, a.StatusMessage = "completed", "done"
	a.Profile, a.UpstreamSession, a.UpstreamProtocol, a.UpstreamInit = "ef", "sess-1", "2025-11-25", []byte(`{"capabilities":{}}`)
	a.ResultSealed, a.ResultDigest, a.ResultSize, a.HeldCall = []byte{1, 2, 3}, "sha256:00", 3, []byte{7, 8}
	if err := st.PutGatewayTask(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, err = st.FindGatewayTask(ctx, "up", "u1")
	if err != nil || got.ID != "g1" || got.Status != "completed" || got.Profile != "ef" || got.UpstreamSession != "sess-1" || got.UpstreamProtocol != "2025-11-25" ||
		string(got.UpstreamInit) != `{"capabilities":{}}` || string(got.ResultSealed) != "\x01\x02\x03" || got.ResultDigest != "sha256:00" || got.ResultSize != 3 ||
		string(got.HeldCall) != "\x07\x08" {
		t.Fatalf("find with session state and result: %+v %v", got, err)
	}
	if _, err := st.GetGatewayTask(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown task: %v", err)
	}
	if l, _ := st.ListGatewayTasks(ctx, "alice"); len(l) != 1 || l[0].ID != "g1" {
		t.Fatalf("list alice: %+v", l)
	}
	if l, _ := st.ListGatewayTasks(ctx, ""); len(l) != 2 || l[0].ID != "g1" {
		t.Fatalf("list all: %+v", l)
	}
	if n, err := st.DeleteExpiredGatewayTasks(ctx, now); err != nil || n != 1 {
		t.Fatalf("delete expired: %d %v", n, err)
	}
	// Two held tasks of one upstream: neither has an upstream task id.
	for _, id := range []string{"h1", "h2"} {
		h := &store.GatewayTask{ID: id, Principal: "alice", Upstream: "up", Tool: "up_deploy", ApprovalID: "ap-" + id, Status: "input_required", CreatedAt: now, UpdatedAt: now}
		if err := st.PutGatewayTask(ctx, h); err != nil {
			t.Fatalf("put held %s: %v", id, err)
		}
	}
	got, err = st.GetGatewayTask(ctx, "h2")
	if err != nil || got.Tool != "up_deploy" || got.ApprovalID != "ap-h2" || !got.Held() {
		t.Fatalf("get held: %+v %v", got, err)
	}
	if _, err := st.FindGatewayTask(ctx, "up", ""); err == nil {
		t.Fatal("a held task was found by an empty upstream task id")
	}
	got.Status, got.StatusMessage = "cancelled", store.TaskCancelRequested
	if err := st.PutGatewayTask(ctx, got); err != nil {
		t.Fatal(err)
	}
	if l, err := st.ListCancelRequestedGatewayTasks(ctx); err != nil || len(l) != 1 || l[0].ID != "h2" {
		t.Fatalf("cancel requested: %+v %v", l, err)
	}
}

// TestServerRestart restarts PostgreSQL under a Store and its revocation
// watch: while it is down calls fail with an error (no hang), and after
// it is back the same Store works again and revocations are pushed again,
// with nothing reopened.
func TestServerRestart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := pgtest.Start(ctx)
	if errors.Is(err, pgtest.ErrNoPostgres) && os.Getenv("CI") == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	url, err := srv.NewDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st := openURL(t, url)
	ch, err := st.WatchTokenRevocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := st.RecordAccessToken(ctx, &store.AccessToken{ID: "t1", ClientID: "c", Subject: "alice", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	err = srv.Restart(ctx, func() {
		down, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if _, err := st.GetUser(down, "alice"); err == nil || errors.Is(err, store.ErrNotFound) || down.Err() != nil {
			t.Errorf("GetUser with the server down: %v (deadline: %v)", err, down.Err())
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	// The pool replaces its broken connections by itself.
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := st.CreateUser(ctx, &store.User{Username: "alice"})
		if err == nil || errors.Is(err, store.ErrExists) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store did not recover within 30 s of the restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := st.GetUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	// The watch listens again: a revocation after the restart is pushed
	// (the version read on reconnecting, 0, may come first).
	if err := st.RevokeAccessToken(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(30 * time.Second)
	for {
		select {
		case v, ok := <-ch:
			if !ok {
				t.Fatal("watch channel closed")
			}
			if v >= 1 {
				return
			}
		case <-timeout:
			t.Fatal("no revocation pushed within 30 s after the restart")
		}
	}
}
