package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/internal/pgtest"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/postgres"
)

// TestDatabaseURLPrecedence checks where the database URL comes from:
// --database-url over MCPGATE_DATABASE_URL over database_url, and that a
// URL that is not PostgreSQL's is refused without being repeated.
func TestDatabaseURLPrecedence(t *testing.T) {
	file := writeFile(t, "gw.yaml", "data_dir: /d\ndatabase_url: postgres://file/db\nupstreams:\n  - name: a\n    command: [srv]\n")
	build := func(f *configFlags) string {
		t.Helper()
		cfg, err := buildConfig(f)
		if err != nil {
			t.Fatal(err)
		}
		return cfg.DatabaseURL
	}
	t.Setenv(datadir.DatabaseURLEnv, "")
	if got := build(&configFlags{configFile: file}); got != "postgres://file/db" {
		t.Errorf("from the file: %q", got)
	}
	t.Setenv(datadir.DatabaseURLEnv, "postgres://env/db")
	if got := build(&configFlags{configFile: file}); got != "postgres://env/db" {
		t.Errorf("environment over file: %q", got)
	}
	if got := build(&configFlags{configFile: file, databaseURL: "postgresql://flag/db", setDatabaseURL: true}); got != "postgresql://flag/db" {
		t.Errorf("flag over environment: %q", got)
	}
	_, err := buildConfig(&configFlags{configFile: file, databaseURL: "mysql://u:secret@h/db", setDatabaseURL: true})
	if err == nil || !strings.Contains(err.Error(), "database_url") || strings.Contains(err.Error(), "secret") {
		t.Errorf("bad URL: err = %v", err)
	}
	t.Setenv(datadir.DatabaseURLEnv, "")
	none := writeFile(t, "none.yaml", "data_dir: /d\nupstreams:\n  - name: a\n    command: [srv]\n")
	if got := build(&configFlags{configFile: none}); got != "" {
		t.Errorf("default: %q, want SQLite (no URL)", got)
	}
}

// TestServeOnPostgres runs "mcpgate serve" with its state in a PostgreSQL
// database: a tool call through it is audited there, and the audit chain
// it leaves verifies.
func TestServeOnPostgres(t *testing.T) {
	srv, err := pgtest.Start(context.Background())
	if errors.Is(err, pgtest.ErrNoPostgres) && os.Getenv("CI") == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	ctx := context.Background()
	url, err := srv.NewDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	up := mcp.NewServer(&mcp.Implementation{Name: "up", Version: "1"}, nil)
	up.AddTool(&mcp.Tool{Name: "ping_tool", InputSchema: jsontext.Value(`{"type":"object"}`)}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "pong"}}}, nil
	})
	hs := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up }, nil))
	defer hs.Close()

	t.Setenv(datadir.DatabaseURLEnv, "")
	s := serveYAML(t, "data_dir: ./data\ndatabase_url: '"+url+"'\nupstreams:\n  - name: up\n    url: "+hs.URL+"\n")
	waitForOutput(t, s.stderr, s.done, "catalogue:")
	if out := s.stderr.String(); !strings.Contains(out, "database PostgreSQL") {
		t.Errorf("start-up does not say the state is in PostgreSQL:\n%s", out)
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil).Connect(ctx, &mcp.StreamableClientTransport{Endpoint: s.endpoint}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "up_ping_tool"})
	if err != nil {
		t.Fatal(err)
	}
	if tc, ok := r.Content[0].(*mcp.TextContent); !ok || tc.Text != "pong" {
		t.Errorf("result = %+v", r.Content)
	}
	cs.Close()
	s.cancel()
	select {
	case code := <-s.done:
		if code != 0 {
			t.Fatalf("exit code %d:\n%s", code, s.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop after the context was cancelled")
	}

	// Nothing went to a SQLite database; the audit chain is in PostgreSQL
	// and verifies with the checkpoint key of the data directory.
	dir := filepath.Join(filepath.Dir(s.config), "data")
	if _, err := os.Stat(datadir.Database(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a SQLite database was created in the data directory: %v", err)
	}
	st, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	signer, err := audit.LoadKeySigner(datadir.AuditKey(dir))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(ctx, st, signer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Records == 0 || rep.Checkpoints == 0 || !rep.SignaturesChecked {
		t.Fatalf("audit verify on PostgreSQL: %+v (first bad %v)", rep, rep.FirstBad)
	}
	calls := 0
	for rec, err := range st.ReadAudit(ctx, 1) {
		if err != nil {
			t.Fatal(err)
		}
		if rec.Target == "up_ping_tool" || strings.Contains(rec.Target, "ping_tool") {
			calls++
		}
	}
	if calls == 0 {
		t.Error("the tool call was not audited in PostgreSQL")
	}
}

// newPostgres starts a throwaway PostgreSQL server for the test (stopped
// when it ends) and returns the URL of a new database on it. It skips the
// test when no PostgreSQL can be found outside CI.
func newPostgres(t *testing.T) (*pgtest.Server, string) {
	t.Helper()
	srv, err := pgtest.Start(context.Background())
	if errors.Is(err, pgtest.ErrNoPostgres) && os.Getenv("CI") == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	url, err := srv.NewDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return srv, url
}

// TestDataCommandsOnPostgres runs the data commands against a PostgreSQL
// database named in each of the three places (--database-url,
// MCPGATE_DATABASE_URL, database_url of the --config file): they change
// and read that database, record their acts in its audit chain, which
// `audit verify` then checks, and never create a SQLite database.
func TestDataCommandsOnPostgres(t *testing.T) {
	_, url := newPostgres(t)
	dir := t.TempDir()
	cfg := writeFile(t, "gw.yaml", "data_dir: "+dir+"\ndatabase_url: '"+url+"'\n")
	t.Setenv(datadir.DatabaseURLEnv, "")
	steps := []struct {
		env  string
		args []string
		want string
	}{
		{"", []string{"user", "add", "alice", "--generate-password", "--data-dir", dir, "--database-url", url}, "alice"},
		{url, []string{"user", "list", "--data-dir", dir}, "alice"},
		{"", []string{"client", "add", "cli-app", "--redirect-uri", "http://127.0.0.1:9/cb", "--config", cfg}, "cli-app"},
		{"", []string{"revoke", "user", "alice", "--reason", "left", "--config", cfg}, "alice"},
		{"", []string{"inventory", "list", "--config", cfg}, ""},
		{url, []string{"tasks", "list", "--data-dir", dir}, ""},
		{"", []string{"audit", "verify", "--config", cfg}, "OK"},
	}
	for _, s := range steps {
		t.Setenv(datadir.DatabaseURLEnv, s.env)
		code, stdout, stderr := execute(t, s.args...)
		if code != 0 || !strings.Contains(stdout, s.want) {
			t.Fatalf("%v: code %d\nstdout %s\nstderr %s", s.args, code, stdout, stderr)
		}
	}
	if _, err := os.Stat(datadir.Database(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a SQLite database was created: %v", err)
	}

	ctx := context.Background()
	st, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if u, err := st.GetUser(ctx, "alice"); err != nil || u == nil {
		t.Fatalf("alice in PostgreSQL: %+v, %v", u, err)
	}
	revs, err := st.ListRevocations(ctx)
	if err != nil || len(revs) != 1 || revs[0].Kind != store.RevokeUser || revs[0].ID != "alice" {
		t.Fatalf("revocations in PostgreSQL: %+v, %v", revs, err)
	}

	t.Setenv(datadir.DatabaseURLEnv, "mysql://u:secret@h/db")
	if code, _, stderr := execute(t, "user", "list", "--data-dir", dir); code == 0 || strings.Contains(stderr, "secret") || !strings.Contains(stderr, "postgres://") {
		t.Errorf("a non-PostgreSQL URL: code %d, stderr %q", code, stderr)
	}
}

// TestTwoReplicasOneAuditChain runs two gateways on one PostgreSQL
// database (sharing the data directory, hence the keys), calls tools
// through both at once, and checks that they wrote one audit chain that
// verifies, with every call in it.
func TestTwoReplicasOneAuditChain(t *testing.T) {
	srv, err := pgtest.Start(context.Background())
	if errors.Is(err, pgtest.ErrNoPostgres) && os.Getenv("CI") == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	ctx := context.Background()
	url, err := srv.NewDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	up := mcp.NewServer(&mcp.Implementation{Name: "up", Version: "1"}, nil)
	up.AddTool(&mcp.Tool{Name: "ping_tool", InputSchema: jsontext.Value(`{"type":"object"}`)}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "pong"}}}, nil
	})
	hs := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up }, nil))
	defer hs.Close()

	t.Setenv(datadir.DatabaseURLEnv, "")
	dir := t.TempDir()
	yaml := "data_dir: " + dir + "\ndatabase_url: '" + url + "'\nupstreams:\n  - name: up\n    url: " + hs.URL + "\n"
	// The first replica creates the keys; the second, started after it,
	// uses them.
	replicas := []*served{serveYAML(t, yaml)}
	waitForOutput(t, replicas[0].stderr, replicas[0].done, "catalogue:")
	replicas = append(replicas, serveYAML(t, yaml))
	waitForOutput(t, replicas[1].stderr, replicas[1].done, "catalogue:")

	const clientsPerReplica, callsPerClient = 3, 5
	var wg sync.WaitGroup
	for _, r := range replicas {
		for range clientsPerReplica {
			wg.Go(func() {
				cs, err := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil).Connect(ctx, &mcp.StreamableClientTransport{Endpoint: r.endpoint}, nil)
				if err != nil {
					t.Error(err)
					return
				}
				defer cs.Close()
				for range callsPerClient {
					if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "up_ping_tool"}); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	for i, r := range replicas {
		r.cancel()
		select {
		case code := <-r.done:
			if code != 0 {
				t.Fatalf("replica %d: exit code %d:\n%s", i, code, r.stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("replica %d did not stop", i)
		}
	}

	st, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	signer, err := audit.LoadKeySigner(datadir.AuditKey(dir))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(ctx, st, signer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || !rep.SignaturesChecked || rep.Checkpoints == 0 {
		t.Fatalf("audit verify of the replicas' chain: %+v (first bad %v)", rep, rep.FirstBad)
	}
	completed := 0
	for rec, err := range st.ReadAudit(ctx, 1) {
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(rec.Target, "ping_tool") && rec.Phase == "completed" {
			completed++
		}
	}
	if want := len(replicas) * clientsPerReplica * callsPerClient; completed != want {
		t.Fatalf("%d completed calls in the audit chain, want %d", completed, want)
	}
	t.Logf("%d records, %d checkpoints, one chain from two replicas", rep.Records, rep.Checkpoints)
}
