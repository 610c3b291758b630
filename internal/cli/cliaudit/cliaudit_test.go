package cliaudit_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/internal/cli/cliaudit"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

// TestRecordWhileGatewayRuns appends administrative records from
// "command line" processes (each its own connection and Log, opened and
// closed per command) while a "gateway" Log on another connection to the
// same database keeps appending: the chain verifies whole.
func TestRecordWhileGatewayRuns(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, sqlite.DefaultFile)
	gst, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer gst.Close()
	gw, err := audit.New(gst, &audit.Options{KeyPath: filepath.Join(dir, audit.DefaultKeyFile), CheckpointEvery: 10, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var gwN int
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := gw.Append(ctx, &audit.Record{User: "alice", Action: "tools/call", Target: fmt.Sprint(gwN), Outcome: audit.OutcomeOK}); err != nil {
				t.Error(err)
				return
			}
			gwN++
		}
	})
	const commands = 15
	for i := range commands {
		st, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
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
		st.Close()
	}
	close(stop)
	wg.Wait()
	if err := gw.Close(); err != nil {
		t.Fatal(err)
	}
	pub, err := audit.LoadPublicKey(filepath.Join(dir, audit.DefaultKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(ctx, gst, pub)
	if err != nil || !rep.OK || rep.Records != gwN+commands || rep.Unanchored != 0 {
		t.Fatalf("Verify: %+v %v (want %d records)", rep, err, gwN+commands)
	}
	var admin int
	for r, err := range gst.ReadAudit(ctx, 1) {
		if err != nil {
			t.Fatal(err)
		}
		if r.Action == cliaudit.ActionUserAdded {
			admin++
			if r.User != cliaudit.Actor() || r.Client != cliaudit.Client || r.Outcome != audit.OutcomeOK {
				t.Errorf("record %d = %+v", r.Seq, r)
			}
		}
	}
	if admin != commands || gwN == 0 {
		t.Errorf("%d administrative records (want %d), %d gateway records", admin, commands, gwN)
	}
}
