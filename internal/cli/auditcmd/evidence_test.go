package auditcmd_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/cli/cliaudit"
	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

// runWith runs the command line with the configuration's audit section a,
// as the root command does after loading --config.
func runWith(t *testing.T, dir string, a *config.Audit, args ...string) (string, error) {
	t.Helper()
	var out syncBuffer
	err := runCtx(cliaudit.WithConfig(context.Background(), a), dir, &out, args...)
	t.Logf("$ mcpgate %s\n%s", strings.Join(args, " "), out.String())
	return out.String(), err
}

// gatewayLog appends n records as the gateway does with the options o
// (signing key, checkpoint file), with a checkpoint every 4 records.
func gatewayLog(t *testing.T, dir string, o audit.Options, from, n int) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, datadir.DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	o.CheckpointEvery, o.Logger = 4, slog.New(slog.DiscardHandler)
	l, err := audit.New(st, &o)
	if err != nil {
		t.Fatal(err)
	}
	for i := from; i < from+n; i++ {
		if err := l.Append(context.Background(), &audit.Record{User: "alice", Action: "tools/call", Target: fmt.Sprintf("tool_%d", i+1), Decision: audit.DecisionAllow, Outcome: audit.OutcomeOK}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// newKey writes an Ed25519 key pair in dir.
func newKey(t *testing.T, dir string) (priv, pub string) {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	priv, pub = filepath.Join(dir, "audit-signing.key"), filepath.Join(dir, "audit.pub")
	if err := os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	b, _ := audit.EncodePublicKey(k.Public().(ed25519.PublicKey))
	if err := os.WriteFile(pub, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

// rewriteChain replaces every audit record and checkpoint of the
// database with a forged chain in which bob did what alice did, written
// through the audit package with the signing key at keyPath — as someone
// who can write the database, and holds that key, would.
func rewriteChain(t *testing.T, dir, keyPath string) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, datadir.DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	var recs []*audit.Record
	for r, err := range st.ReadAudit(ctx, 1) {
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, audit.FromStore(r))
	}
	st.Close()
	tamper(t, dir, `DELETE FROM audit_records`, `DELETE FROM audit_checkpoints`)
	st, err = sqlite.Open(ctx, filepath.Join(dir, datadir.DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l, err := audit.New(st, &audit.Options{KeyPath: keyPath, CheckpointEvery: 4, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		f := &audit.Record{User: strings.ReplaceAll(r.User, "alice", "bob"), Action: r.Action, Target: r.Target, Decision: r.Decision, Outcome: r.Outcome}
		if err := l.Append(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyCheckpointsTruncation: the last records are deleted with
// their checkpoints. The database alone verifies (the documented limit);
// the checkpoint file names the first missing record.
func TestVerifyCheckpointsTruncation(t *testing.T) {
	dir, elsewhere := t.TempDir(), t.TempDir()
	cpFile := filepath.Join(elsewhere, "checkpoints.jsonl")
	// The default setup: the key in the data directory; the operator kept
	// its public key (audit public-key) and ships the checkpoint file.
	gatewayLog(t, dir, audit.Options{KeyPath: filepath.Join(dir, audit.DefaultKeyFile), CheckpointFile: cpFile}, 0, 12)
	pemOut, err := run(t, dir, "audit", "public-key")
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(elsewhere, "audit.pub")
	os.WriteFile(pub, []byte(pemOut), 0o644)
	if out, err := run(t, dir, "audit", "verify", "--checkpoints", cpFile, "--public-key", pub); err != nil || !strings.Contains(out, "external checkpoints OK: 3 checkpoints") {
		t.Fatalf("intact log: %q %v", out, err)
	}

	// Delete the last K = 7 records (6..12) and the checkpoints at 8 and 12.
	tamper(t, dir, `DELETE FROM audit_records WHERE seq > 5`, `DELETE FROM audit_checkpoints WHERE seq > 5`)
	out, err := runWith(t, dir, nil, "audit", "verify", "--public-key", pub)
	if err != nil || !strings.Contains(out, "audit log OK: 5 records, 1 checkpoints, last signed checkpoint at record 4") {
		t.Fatalf("the database alone should pass after the truncation (the documented limit): %q %v", out, err)
	}
	out, err = runWith(t, dir, nil, "audit", "verify", "--checkpoints", cpFile, "--public-key", pub)
	want := regexp.MustCompile(`audit log FAILED verification: record 6 missing: checkpoint at seq 8 \(signed \d{4}-\d\d-\d\dT[^ ]+Z, ` + regexp.QuoteMeta(cpFile) + ` line 2\) covers it, but the database ends at record 5`)
	if err == nil || !want.MatchString(out) {
		t.Fatalf("truncation with --checkpoints: %q %v, want %s", out, err, want)
	}

	// Without --public-key, the key in the data directory is refused ...
	out, err = runWith(t, dir, nil, "audit", "verify", "--checkpoints", cpFile)
	if err == nil || !strings.Contains(err.Error(), "refusing to verify with the key") || !strings.Contains(err.Error(), "whoever could rewrite the database could also have read that key") {
		t.Fatalf("data-directory key not refused: %q %v", out, err)
	}
	// ... unless explicitly allowed; the configured public key is used.
	if _, err := runWith(t, dir, nil, "audit", "verify", "--checkpoints", cpFile, "--allow-data-dir-key"); err == nil || !strings.Contains(err.Error(), "record 6 missing") {
		t.Fatalf("--allow-data-dir-key: %v", err)
	}
	if _, err := runWith(t, dir, &config.Audit{PublicKeyFile: pub}, "audit", "verify", "--checkpoints", cpFile); err == nil || !strings.Contains(err.Error(), "record 6 missing") {
		t.Fatalf("audit.public_key_file: %v", err)
	}
}

// TestVerifyCheckpointsRewrite: the whole chain rewritten and re-signed.
func TestVerifyCheckpointsRewrite(t *testing.T) {
	t.Run("stolen key from the data directory", func(t *testing.T) {
		dir, elsewhere := t.TempDir(), t.TempDir()
		cpFile := filepath.Join(elsewhere, "checkpoints.jsonl")
		gatewayLog(t, dir, audit.Options{KeyPath: filepath.Join(dir, audit.DefaultKeyFile), CheckpointFile: cpFile}, 0, 10)
		pemOut, _ := run(t, dir, "audit", "public-key")
		pub := filepath.Join(elsewhere, "audit.pub")
		os.WriteFile(pub, []byte(pemOut), 0o644)

		rewriteChain(t, dir, filepath.Join(dir, audit.DefaultKeyFile))
		// The forged chain is signed with the operator's own key: the
		// database alone passes, even with the exported public key.
		if out, err := runWith(t, dir, nil, "audit", "verify", "--public-key", pub); err != nil || !strings.Contains(out, "audit log OK: 10 records") {
			t.Fatalf("re-signed rewrite should pass on the database alone: %q %v", out, err)
		}
		out, err := runWith(t, dir, nil, "audit", "verify", "--checkpoints", cpFile, "--public-key", pub)
		if err == nil || !strings.Contains(out, "audit log FAILED verification: record 4 differs from checkpoint at seq 4 (signed ") ||
			!strings.Contains(out, "a record in 1..4 was changed and the chain after it recomputed") {
			t.Fatalf("rewrite with a stolen key not caught: %q %v", out, err)
		}
	})
	t.Run("signing key outside the data directory", func(t *testing.T) {
		dir, keyDir, elsewhere := t.TempDir(), t.TempDir(), t.TempDir()
		keyFile, pub := newKey(t, keyDir)
		cpFile := filepath.Join(elsewhere, "checkpoints.jsonl")
		jsonl := filepath.Join(elsewhere, "audit.jsonl")
		exp, err := audit.NewJSONLExporter(jsonl)
		if err != nil {
			t.Fatal(err)
		}
		gatewayLog(t, dir, audit.Options{SigningKeyFile: keyFile, PublicKeyFile: pub, CheckpointFile: cpFile, Exporters: []audit.Exporter{exp}}, 0, 10)
		if _, err := os.Stat(filepath.Join(dir, audit.DefaultKeyFile)); !os.IsNotExist(err) {
			t.Fatalf("a key was created in the data directory: %v", err)
		}
		cfg := &config.Audit{SigningKeyFile: keyFile, PublicKeyFile: pub, CheckpointFile: cpFile}
		if out, err := runWith(t, dir, cfg, "audit", "verify", "--checkpoints", jsonl); err != nil || !strings.Contains(out, "(and 10 exported records)") {
			t.Fatalf("intact, against the JSONL export: %q %v", out, err)
		}
		// The attacker cannot read the key: they re-sign with their own.
		rewriteChain(t, dir, filepath.Join(dir, "attacker.key"))
		out, err := runWith(t, dir, cfg, "audit", "verify")
		if err == nil || !strings.Contains(out, "checkpoint at record 4 invalid: signed with key") {
			t.Fatalf("checkpoints re-signed with another key: %q %v", out, err)
		}
		out, err = runWith(t, dir, cfg, "audit", "verify", "--checkpoints", cpFile)
		if err == nil || !strings.Contains(out, "record 4 differs from checkpoint at seq 4") && !strings.Contains(out, "checkpoint at record 4 invalid") {
			t.Fatalf("--checkpoints: %q %v", out, err)
		}
		// The JSON export names the first differing record exactly.
		out, err = runWith(t, dir, cfg, "audit", "verify", "--checkpoints", jsonl, "--public-key", pub)
		if err == nil || !strings.Contains(out, "audit log FAILED verification: record 1 differs from its exported copy ("+jsonl+" line 1)") {
			t.Fatalf("--checkpoints export: %q %v", out, err)
		}
		// Checkpoints the attacker adds to the file are not signed by the
		// operator's key.
		st, err := sqlite.Open(context.Background(), filepath.Join(dir, datadir.DatabaseFile))
		if err != nil {
			t.Fatal(err)
		}
		forged, _ := st.ListAuditCheckpoints(context.Background())
		st.Close()
		f, _ := os.OpenFile(cpFile, os.O_APPEND|os.O_WRONLY, 0)
		for _, c := range forged {
			fmt.Fprintf(f, `{"kind":"checkpoint","seq":%d,"hash":%q,"time":%q,"key_id":%q,"signature":%q}`+"\n",
				c.Seq, c.Hash, c.Time.Format("2006-01-02T15:04:05.999999999Z07:00"), c.KeyID, base64.StdEncoding.EncodeToString(c.Signature))
		}
		f.Close()
		out, err = runWith(t, dir, cfg, "audit", "verify", "--checkpoints", cpFile)
		if err == nil || !strings.Contains(out, "line 4 is not signed by the given public key") {
			t.Fatalf("forged checkpoint lines: %q %v", out, err)
		}
	})
}

// TestSigningCommandEndToEnd: the command line's administrative records
// are signed by a signing command (this test binary as a key service),
// published to the checkpoint file, and verified with the configured
// public key.
func TestSigningCommandEndToEnd(t *testing.T) {
	dir, keyDir, elsewhere := t.TempDir(), t.TempDir(), t.TempDir()
	keyFile, pub := newKey(t, keyDir)
	t.Setenv("AUDITCMD_TEST_SIGNER_KEY", keyFile)
	cpFile := filepath.Join(elsewhere, "checkpoints.jsonl")
	cfg := &config.Audit{SigningCommand: []string{os.Args[0], "-test.run=^TestHelperSigner$"}, PublicKeyFile: pub, CheckpointFile: cpFile}
	ctx := cliaudit.WithConfig(context.Background(), cfg)
	st, err := sqlite.Open(ctx, filepath.Join(dir, datadir.DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		rec, err := cliaudit.Open(ctx, st, dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := rec.Record(ctx, &audit.Record{Action: cliaudit.ActionUserAdded, Target: fmt.Sprint("user", i)}); err != nil {
			t.Fatal(err)
		}
		if err := rec.Close(); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	if _, err := os.Stat(filepath.Join(dir, audit.DefaultKeyFile)); !os.IsNotExist(err) {
		t.Fatalf("a key was created in the data directory: %v", err)
	}
	b, _ := os.ReadFile(cpFile)
	if n := strings.Count(string(b), `"kind":"checkpoint"`); n != 3 {
		t.Fatalf("checkpoint file holds %d checkpoints, want 3:\n%s", n, b)
	}
	out, err := runWith(t, dir, cfg, "audit", "verify", "--checkpoints", cpFile)
	if err != nil || !strings.Contains(out, "audit log OK: 3 records, 3 checkpoints") || !strings.Contains(out, "the database matches them up to record 3") {
		t.Fatalf("verify: %q %v", out, err)
	}
	if out, err := runWith(t, dir, cfg, "audit", "public-key"); err != nil || !strings.HasPrefix(out, "-----BEGIN PUBLIC KEY-----") {
		t.Fatalf("public-key: %q %v", out, err)
	}
}

// TestHelperSigner is not a test: run as a signing command, it signs its
// standard input with the key in $AUDITCMD_TEST_SIGNER_KEY and writes the
// signature in base64.
func TestHelperSigner(t *testing.T) {
	path := os.Getenv("AUDITCMD_TEST_SIGNER_KEY")
	if path == "" || os.Getenv("MCPGATE_CHECKPOINT_SEQ") == "" {
		t.Skip("only run as a signing command")
	}
	msg, _ := io.ReadAll(os.Stdin)
	b, _ := os.ReadFile(path)
	block, _ := pem.Decode(b)
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println(base64.StdEncoding.EncodeToString(ed25519.Sign(k.(ed25519.PrivateKey), msg)))
	os.Exit(0)
}

var _ store.AuditLog = (*sqlite.Store)(nil)
