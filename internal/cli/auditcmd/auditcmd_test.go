package auditcmd_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/spf13/cobra"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/internal/cli/auditcmd"
	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

// syncBuffer is a bytes.Buffer safe for a command writing while the test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func runCtx(ctx context.Context, dir string, out *syncBuffer, args ...string) error {
	root := &cobra.Command{Use: "mcpgate", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(auditcmd.Commands(func() string { return dir })...)
	root.SetOut(out)
	root.SetErr(out)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

func run(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	var out syncBuffer
	err := runCtx(context.Background(), dir, &out, args...)
	return out.String(), err
}

// makeLog writes n records through the audit log into a SQLite database
// in a new data directory, with a checkpoint every 4 records and a final
// one at Close.
func makeLog(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), datadir.Database(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	appendRecords(t, dir, st, 0, n)
	return dir
}

func appendRecords(t *testing.T, dir string, st *sqlite.Store, from, n int) {
	t.Helper()
	l, err := audit.New(st, &audit.Options{KeyPath: filepath.Join(dir, audit.DefaultKeyFile), CheckpointEvery: 4})
	if err != nil {
		t.Fatal(err)
	}
	for i := from; i < from+n; i++ {
		r := &audit.Record{
			User: "alice", Client: "https://client.example/cimd.json", Session: "sess-1",
			Upstream: "files", Action: "tools/call", Target: fmt.Sprintf("tool_%d", i+1),
			Decision: audit.DecisionAllow, PolicyVersion: "pv1", Policies: []string{"permit-files"},
			Args:    jsontext.Value(fmt.Sprintf(`{"path":"/srv/%d"}`, i)),
			Outcome: audit.OutcomeOK, LatencyMicros: 42, Phase: audit.PhaseCompleted,
		}
		if err := l.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// tamper runs SQL on the database directly, as someone with access to
// the file would, first dropping the append-only triggers.
func tamper(t *testing.T, dir string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+datadir.Database(dir)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stmts = append([]string{
		`DROP TRIGGER IF EXISTS audit_records_no_update`,
		`DROP TRIGGER IF EXISTS audit_records_no_delete`,
	}, stmts...)
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

const cols = `time, principal_user, principal_client, principal_session, upstream, action, target, decision, policy_version, policies, args_digest, result_digest, args, result, outcome, error, latency_us, phase, prev_hash, hash`

func TestVerify(t *testing.T) {
	dir := makeLog(t, 10)
	out, err := run(t, dir, "audit", "verify")
	if err != nil || !strings.Contains(out, "audit log OK: 10 records, 3 checkpoints, last signed checkpoint at record 10") {
		t.Fatalf("verify on intact log: %q %v", out, err)
	}
	for _, tt := range []struct {
		name  string
		stmts []string
		want  string
	}{
		{"edit target", []string{`UPDATE audit_records SET target = 'delete_everything' WHERE seq = 6`}, "record 6 edited"},
		{"edit decision", []string{`UPDATE audit_records SET decision = 'deny' WHERE seq = 3`}, "record 3 edited"},
		{"delete one", []string{`DELETE FROM audit_records WHERE seq = 6`}, "record 6 deleted"},
		{"delete last", []string{`DELETE FROM audit_records WHERE seq = 10`}, "record 10 deleted"},
		{"insert one", []string{
			`UPDATE audit_records SET seq = seq + 1000000 WHERE seq >= 6`,
			`UPDATE audit_records SET seq = seq - 999999 WHERE seq >= 1000000`,
			`INSERT INTO audit_records (seq, ` + cols + `) SELECT 6, ` + cols + ` FROM audit_records WHERE seq = 5`,
			`UPDATE audit_records SET target = 'forged' WHERE seq = 6`,
		}, "record 6 inserted"},
		{"insert at end", []string{
			`INSERT INTO audit_records (seq, ` + cols + `) SELECT 11, ` + cols + ` FROM audit_records WHERE seq = 4`,
		}, "record 11 inserted"},
		{"swap two", []string{
			`UPDATE audit_records SET seq = -1 WHERE seq = 6`,
			`UPDATE audit_records SET seq = 6 WHERE seq = 7`,
			`UPDATE audit_records SET seq = 7 WHERE seq = -1`,
		}, "record 6 reordered"},
		{"forge checkpoint", []string{`UPDATE audit_checkpoints SET hash = (SELECT hash FROM audit_records WHERE seq = 3) WHERE seq = 4`}, "checkpoint at record 4 invalid"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := makeLog(t, 10)
			tamper(t, dir, tt.stmts...)
			out, err := run(t, dir, "audit", "verify")
			if err == nil {
				t.Fatalf("verify passed on a tampered log: %q", out)
			}
			t.Log(strings.TrimSpace(out))
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(out, tt.want) {
				t.Errorf("verify: err %q, output %q; want them to name %q", err, out, tt.want)
			}
		})
	}
}

func TestVerifyWithPublicKey(t *testing.T) {
	dir := makeLog(t, 5)
	pem, err := run(t, dir, "audit", "public-key")
	if err != nil || !strings.HasPrefix(pem, "-----BEGIN PUBLIC KEY-----") {
		t.Fatalf("public-key: %q %v", pem, err)
	}
	elsewhere := t.TempDir()
	pubPath := filepath.Join(elsewhere, "audit.pub")
	os.WriteFile(pubPath, []byte(pem), 0o644)
	// The signing key leaves the data directory: verification with the
	// public key alone still checks signatures.
	os.Rename(filepath.Join(dir, audit.DefaultKeyFile), filepath.Join(elsewhere, "moved.pem"))
	out, err := run(t, dir, "audit", "verify", "--public-key", pubPath)
	if err != nil || !strings.Contains(out, "audit log OK: 5 records") || strings.Contains(out, "warning") {
		t.Fatalf("verify --public-key: %q %v", out, err)
	}
	out, err = run(t, dir, "audit", "verify")
	if err != nil || !strings.Contains(out, "signatures were not checked") {
		t.Fatalf("verify without key: %q %v", out, err)
	}
	// Another key: the checkpoints do not verify.
	other := makeLog(t, 1)
	out, err = run(t, dir, "audit", "verify", "--public-key", filepath.Join(other, audit.DefaultKeyFile))
	if err == nil || !strings.Contains(out, "checkpoint at record") {
		t.Fatalf("verify with another key: %q %v", out, err)
	}
}

func TestNoDatabase(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{{"audit", "verify"}, {"audit", "tail"}, {"audit", "export"}} {
		if _, err := run(t, dir, args...); err == nil || !strings.Contains(err.Error(), "no mcpgate database") {
			t.Errorf("%v: err = %v", args, err)
		}
	}
	if _, err := os.Stat(datadir.Database(dir)); err == nil {
		t.Error("a database was created")
	}
}

var seqRE = regexp.MustCompile(`(?m)^(\d+)\s`)

func seqs(out string) []string {
	var s []string
	for _, m := range seqRE.FindAllStringSubmatch(out, -1) {
		s = append(s, m[1])
	}
	return s
}

func TestTail(t *testing.T) {
	dir := makeLog(t, 10)
	out, err := run(t, dir, "audit", "tail", "-n", "3")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(seqs(out), ","); got != "8,9,10" {
		t.Fatalf("tail -n 3 printed records %s:\n%s", got, out)
	}
	if !strings.Contains(out, "alice / https://client.example/cimd.json / sess-1") || !strings.Contains(out, "files:tool_10") || !strings.Contains(out, "tools/call (completed)") {
		t.Errorf("tail row lacks fields:\n%s", out)
	}
	out, err = run(t, dir, "audit", "tail", "-n", "50", "--json")
	if err != nil || strings.Count(out, "\n") != 10 {
		t.Fatalf("tail --json: %q %v", out, err)
	}
	if _, err := run(t, dir, "audit", "tail", "-n", "-1"); err == nil {
		t.Error("negative -n accepted")
	}

	// -f prints records appended after it started.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var buf syncBuffer
	done := make(chan error, 1)
	go func() { done <- runCtx(ctx, dir, &buf, "audit", "tail", "-f", "-n", "1", "--interval", "20ms") }()
	waitFor(t, func() bool { return strings.Join(seqs(buf.String()), ",") == "10" })
	st, err := sqlite.Open(context.Background(), datadir.Database(dir))
	if err != nil {
		t.Fatal(err)
	}
	appendRecords(t, dir, st, 10, 2)
	st.Close()
	waitFor(t, func() bool { return strings.Join(seqs(buf.String()), ",") == "10,11,12" })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("tail -f ended with %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestExport(t *testing.T) {
	dir := makeLog(t, 10)
	outFile := filepath.Join(t.TempDir(), "audit.jsonl")
	msg, err := run(t, dir, "audit", "export", "--format", "jsonl", "--since", "1h", "--out", outFile)
	if err != nil || !strings.Contains(msg, "exported 10 records") {
		t.Fatalf("export: %q %v", msg, err)
	}
	b, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 10 {
		t.Fatalf("%d lines", len(lines))
	}
	var r audit.Record
	if err := json.Unmarshal([]byte(lines[9]), &r); err != nil || r.Seq != 10 || r.Target != "tool_10" || len(r.Hash) != 64 {
		t.Fatalf("last line %s: %+v %v", lines[9], r, err)
	}
	// --since in the future: nothing; --from-seq: the tail.
	out, err := run(t, dir, "audit", "export", "--since", time.Now().Add(time.Hour).Format(time.RFC3339))
	if err != nil || out != "" {
		t.Errorf("export --since future: %q %v", out, err)
	}
	out, err = run(t, dir, "audit", "export", "--from-seq", "9")
	if err != nil || strings.Count(out, "\n") != 2 || !strings.Contains(out, `"seq":9`) {
		t.Errorf("export --from-seq 9: %q %v", out, err)
	}
	for _, args := range [][]string{
		{"audit", "export", "--format", "csv"},
		{"audit", "export", "--since", "yesterday"},
		{"audit", "export", "--since", "-5h"},
	} {
		if _, err := run(t, dir, args...); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
