package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

// writeKey writes a new Ed25519 private key (mode 0600) and its public key
// to dir, returning their paths and the key.
func writeKey(t *testing.T, dir, name string) (priv, pub string, key ed25519.PrivateKey) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	priv, pub = filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
	if err := os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := EncodePublicKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return priv, pub, key
}

// TestHelperSigner is not a test: run as a signing command (see
// signerArgv), it signs its standard input with the key in
// $AUDIT_TEST_SIGNER_KEY, as a key service client would.
func TestHelperSigner(t *testing.T) {
	path := os.Getenv("AUDIT_TEST_SIGNER_KEY")
	if path == "" {
		t.Skip("only run as a signing command")
	}
	msg, _ := io.ReadAll(os.Stdin)
	switch os.Getenv("AUDIT_TEST_SIGNER_MODE") {
	case "fail":
		fmt.Fprintln(os.Stderr, "key service unavailable")
		os.Exit(3)
	case "hang":
		time.Sleep(time.Minute)
	case "garbage":
		fmt.Println("not a signature")
		os.Exit(0)
	}
	if os.Getenv("MCPGATE_CHECKPOINT_SEQ") == "" {
		fmt.Fprintln(os.Stderr, "no MCPGATE_CHECKPOINT_SEQ")
		os.Exit(4)
	}
	k, err := loadPrivateKey(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println(base64.StdEncoding.EncodeToString(ed25519.Sign(k, msg)))
	os.Exit(0)
}

func signerArgv() []string { return []string{os.Args[0], "-test.run=^TestHelperSigner$", "--"} }

// recLogger collects log messages.
type recLogger struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recLogger) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, string(p))
	return len(p), nil
}

func (r *recLogger) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.msgs, "")
}

func TestCommandSigner(t *testing.T) {
	dir := t.TempDir()
	keyPath, pubPath, key := writeKey(t, dir, "signer")
	t.Setenv("AUDIT_TEST_SIGNER_KEY", keyPath)
	cpFile := filepath.Join(dir, "checkpoints.jsonl")
	jsonl := filepath.Join(dir, "export.jsonl")
	exp, err := NewJSONLExporter(jsonl)
	if err != nil {
		t.Fatal(err)
	}
	st := store.NewAuditMemory()
	l, err := New(st, &Options{SigningCommand: signerArgv(), PublicKeyFile: pubPath, CheckpointFile: cpFile,
		CheckpointEvery: 3, CheckpointInterval: -1, Exporters: []Exporter{exp}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if !l.PublicKey().Equal(key.Public()) {
		t.Fatal("PublicKey is not the configured public key")
	}
	ctx := context.Background()
	for i := range 7 {
		if err := l.Append(ctx, sampleRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(ctx, st, key.Public().(ed25519.PublicKey))
	if err != nil || !rep.OK || rep.Checkpoints < 2 || rep.LastCheckpointSeq != 7 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	for _, path := range []string{cpFile, jsonl} {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := ReadExternal(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(ev.Checkpoints) != rep.Checkpoints || ev.Checkpoints[len(ev.Checkpoints)-1].Seq != 7 {
			t.Fatalf("%s: %d checkpoints, want %d ending at 7", path, len(ev.Checkpoints), rep.Checkpoints)
		}
		if path == jsonl && len(ev.Records) != 7 {
			t.Errorf("export holds %d records, want 7", len(ev.Records))
		}
		xr, err := VerifyExternal(ctx, st, ev, key.Public().(ed25519.PublicKey), path)
		if err != nil || !xr.OK || xr.Confirmed != 7 {
			t.Fatalf("VerifyExternal %s: %+v %v", path, xr, err)
		}
	}
	if fi, err := os.Stat(cpFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("checkpoint file mode: %v %v", fi, err)
	}
}

// TestSigningFailure checks that a signing command that fails, hangs or
// returns a bad signature never blocks appends, is logged and recorded
// in the chain, and that the records are covered once signing works.
func TestSigningFailure(t *testing.T) {
	for _, mode := range []string{"fail", "hang", "garbage", "wrongkey"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			keyPath, pubPath, key := writeKey(t, dir, "signer")
			other, _, _ := writeKey(t, dir, "other")
			t.Setenv("AUDIT_TEST_SIGNER_KEY", keyPath)
			t.Setenv("AUDIT_TEST_SIGNER_MODE", mode)
			if mode == "wrongkey" {
				t.Setenv("AUDIT_TEST_SIGNER_KEY", other)
			}
			logs := &recLogger{}
			st := store.NewAuditMemory()
			l, err := New(st, &Options{SigningCommand: signerArgv(), PublicKeyFile: pubPath, SigningTimeout: 3 * time.Second,
				CheckpointEvery: 2, CheckpointInterval: -1, Logger: slog.New(slog.NewTextHandler(logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			start := time.Now()
			for i := range 6 {
				if err := l.Append(ctx, sampleRecord(i)); err != nil {
					t.Fatal(err)
				}
			}
			if d := time.Since(start); d > 250*time.Millisecond {
				t.Errorf("appends took %v while signing failed", d)
			}
			for deadline := time.Now().Add(15 * time.Second); !strings.Contains(logs.String(), "checkpoint not signed"); {
				if time.Now().After(deadline) {
					t.Fatalf("failure not logged: %s", logs)
				}
				time.Sleep(10 * time.Millisecond)
			}
			// Signing works again: the final checkpoint covers everything.
			t.Setenv("AUDIT_TEST_SIGNER_MODE", "")
			t.Setenv("AUDIT_TEST_SIGNER_KEY", keyPath)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(logs.String(), "checkpoint not signed") {
				t.Errorf("failure not logged: %s", logs)
			}
			var failed int
			for r, err := range st.ReadAudit(ctx, 1) {
				if err != nil {
					t.Fatal(err)
				}
				if r.Action == ActionCheckpointFailed {
					failed++
					if r.Client != ClientAuditLog || r.Outcome != OutcomeError || r.Error == "" {
						t.Errorf("failure record: %+v", r)
					}
				}
			}
			if failed != 1 {
				t.Errorf("%d failure records, want 1 (the first of the run)", failed)
			}
			rep, err := Verify(ctx, st, key.Public().(ed25519.PublicKey))
			if err != nil || !rep.OK || rep.Unanchored != 0 {
				t.Fatalf("verify: %+v %v", rep, err)
			}
		})
	}
}

func TestSignerOptions(t *testing.T) {
	dir := t.TempDir()
	keyPath, pubPath, _ := writeKey(t, dir, "a")
	_, otherPub, _ := writeKey(t, dir, "b")
	st := store.NewAuditMemory()
	for _, tt := range []struct {
		name string
		o    Options
		want string
	}{
		{"key file matches", Options{SigningKeyFile: keyPath, PublicKeyFile: pubPath}, ""},
		{"key file missing is not created", Options{SigningKeyFile: filepath.Join(dir, "absent.key")}, "no such file"},
		{"key file mismatch", Options{SigningKeyFile: keyPath, PublicKeyFile: otherPub}, "but the public key file"},
		{"command without public key", Options{SigningCommand: []string{"true"}}, "needs a public key file"},
		{"command and key file", Options{SigningCommand: []string{"true"}, SigningKeyFile: keyPath, PublicKeyFile: pubPath}, "not both"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.o
			o.Logger = quietLogger()
			l, err := New(st, &o)
			if err == nil {
				l.Close()
			}
			if (tt.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "absent.key")); !errors.Is(err, os.ErrNotExist) {
		t.Error("a missing signing key file was created")
	}
}

// TestVerifyExternal checks truncation, a rewritten chain (re-signed with
// the same key, as with a stolen key), a checkpoint forged with another
// key, and exported record copies.
func TestVerifyExternal(t *testing.T) {
	ctx := context.Background()
	f, pub := build(t, 20, false) // checkpoints at 5, 10, 15, 20
	var cps []*ExternalCheckpoint
	for i, c := range f.cps {
		cps = append(cps, &ExternalCheckpoint{Checkpoint: *checkpointFromStore(c), Line: i + 1})
	}
	ev := &ExternalEvidence{Checkpoints: cps, Records: map[uint64]ExternalRecord{}}
	if rep, err := VerifyExternal(ctx, f, ev, pub, "cp.jsonl"); err != nil || !rep.OK || rep.Confirmed != 20 {
		t.Fatalf("intact: %+v %v", rep, err)
	}

	// Truncation: records 13..20 and their checkpoints deleted.
	cut := &fakeLog{recs: f.recs[:12], cps: f.cps[:2]}
	if rep, err := Verify(ctx, cut, pub); err != nil || !rep.OK {
		t.Fatalf("the database alone should pass after a clean truncation: %+v %v", rep, err)
	}
	rep, err := VerifyExternal(ctx, cut, ev, pub, "cp.jsonl")
	if err != nil || rep.OK {
		t.Fatalf("truncation not caught: %+v %v", rep, err)
	}
	want := "record 13 missing: checkpoint at seq 15 (signed "
	if got := rep.FirstBad.String(); !strings.HasPrefix(got, want) || !strings.Contains(got, "cp.jsonl line 3) covers it, but the database ends at record 12") {
		t.Errorf("truncation: %q, want prefix %q", got, want)
	}

	// Rewrite from record 7 on, re-signed with the same key.
	rw := rewrite(t, f, 7, "mallory")
	if rep, err := Verify(ctx, rw, pub); err != nil || !rep.OK {
		t.Fatalf("the re-signed rewrite should pass on its own: %+v %v", rep, err)
	}
	rep, err = VerifyExternal(ctx, rw, ev, pub, "cp.jsonl")
	if err != nil || rep.OK || rep.FirstBad.Kind != ProblemDiffers || rep.FirstBad.Seq != 10 {
		t.Fatalf("rewrite not caught: %+v %v", rep, err)
	}
	if got := rep.FirstBad.String(); !strings.HasPrefix(got, "record 10 differs from checkpoint at seq 10 (signed ") || !strings.Contains(got, "a record in 6..10 was changed") {
		t.Errorf("rewrite: %q", got)
	}
	// With exported record copies the first differing record is named.
	for _, r := range f.recs {
		ev.Records[r.Seq] = ExternalRecord{Hash: r.Hash, Line: 100 + int(r.Seq)}
	}
	rep, _ = VerifyExternal(ctx, rw, ev, pub, "export.jsonl")
	if got := rep.FirstBad.String(); !strings.HasPrefix(got, "record 7 differs from its exported copy (export.jsonl line 107)") {
		t.Errorf("rewrite with exported copies: %q", got)
	}
	ev.Records = map[uint64]ExternalRecord{}

	// A checkpoint signed with another key.
	_, mallory, _ := ed25519.GenerateKey(rand.Reader)
	forged := *cps[0]
	forged.Line = 9
	forged.KeyID = KeyID(mallory.Public().(ed25519.PublicKey))
	forged.Signature = ed25519.Sign(mallory, checkpointMessage(forged.Seq, forged.Hash, forged.Time))
	ev2 := &ExternalEvidence{Checkpoints: append([]*ExternalCheckpoint{&forged}, cps...)}
	rep, _ = VerifyExternal(ctx, f, ev2, pub, "cp.jsonl")
	if rep.OK || rep.FirstBad.Kind != ProblemCheckpoint || !strings.Contains(rep.FirstBad.String(), "cp.jsonl line 9 is not signed by the given public key") {
		t.Errorf("forged checkpoint: %+v", rep.FirstBad)
	}
	if _, err := VerifyExternal(ctx, f, &ExternalEvidence{}, pub, "x"); !errors.Is(err, ErrNoCheckpoints) {
		t.Errorf("no checkpoints: %v", err)
	}
}

// rewrite returns a copy of f whose records from seq on have another
// user, the chain recomputed and the checkpoints re-signed with the key
// in f's log (as someone holding the stolen key would).
func rewrite(t *testing.T, f *fakeLog, from uint64, user string) *fakeLog {
	t.Helper()
	out := &fakeLog{}
	prev := ""
	for _, r := range f.recs {
		c := store.CloneAuditRecord(r)
		if c.Seq >= from {
			c.User = user
		}
		d, err := digestContent(c)
		if err != nil {
			t.Fatal(err)
		}
		c.PrevHash, c.Hash = prev, chainHash(c.Seq, prev, d)
		prev = c.Hash
		out.recs = append(out.recs, c)
	}
	key := testSigningKey(t, f)
	for _, c := range f.cps {
		n := *c
		n.Hash = out.recs[n.Seq-1].Hash
		n.Signature = ed25519.Sign(key, checkpointMessage(n.Seq, n.Hash, n.Time))
		out.cps = append(out.cps, &n)
	}
	return out
}

// testSigningKey returns the key build used; build writes it in a temp
// dir, so tests re-derive it by keeping it in a map.
func testSigningKey(t *testing.T, f *fakeLog) ed25519.PrivateKey {
	t.Helper()
	k, ok := buildKeys.Load(f)
	if !ok {
		t.Fatal("no key recorded for this log")
	}
	return k.(ed25519.PrivateKey)
}

var buildKeys sync.Map

func TestReadExternal(t *testing.T) {
	in := `{"seq":1,"time":"2026-01-01T00:00:00Z","action":"x","prev_hash":"","hash":"aa"}

{"kind":"checkpoint","seq":1,"hash":"aa","time":"2026-01-01T00:00:00Z","key_id":"k","signature":"AAAA"}
`
	ev, err := ReadExternal(strings.NewReader(in))
	if err != nil || len(ev.Checkpoints) != 1 || ev.Checkpoints[0].Line != 3 || ev.Records[1].Hash != "aa" {
		t.Fatalf("%+v %v", ev, err)
	}
	if _, err := ReadExternal(bytes.NewReader([]byte("{}\nnot json\n"))); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad line: %v", err)
	}
}
