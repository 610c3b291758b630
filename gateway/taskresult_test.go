package gateway

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/store"
)

func TestResultSealer(t *testing.T) {
	path := filepath.Join(t.TempDir(), TaskResultKeyFile)
	s := &resultSealer{keyPath: path}
	sealed, err := s.seal("t1", "alice", []byte(`{"result":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(sealed), "result") {
		t.Error("sealed result holds the plain text")
	}
	// Another sealer with the same key file opens it (a restart).
	if plain, err := (&resultSealer{keyPath: path}).open("t1", "alice", sealed); err != nil || string(plain) != `{"result":1}` {
		t.Errorf("open after restart: %s %v", plain, err)
	}
	for _, c := range [][2]string{{"t2", "alice"}, {"t1", "bob"}} {
		if _, err := s.open(c[0], c[1], sealed); err == nil {
			t.Errorf("sealed for t1/alice opens as %s/%s", c[0], c[1])
		}
	}
	if _, err := s.open("t1", "alice", sealed[:5]); err == nil {
		t.Error("truncated sealed result opens")
	}
	if _, err := (&resultSealer{}).open("t1", "alice", sealed); err == nil {
		t.Error("opens with another key")
	}
}

// TestStoredResultBound: a result above the bound keeps only its digest
// and size, and says so when it cannot be fetched.
func TestStoredResultBound(t *testing.T) {
	g := &Gateway{storedResultMax: 16}
	rec := &store.GatewayTask{ID: "t1", Principal: "alice", Status: string(mcp.TaskStatusCompleted)}
	small := []byte(`{"result":{"a":1}}`)
	if err := g.keepResult(rec, small); err != nil {
		t.Fatal(err)
	}
	if rec.ResultSealed != nil || rec.ResultDigest == "" || rec.ResultSize != int64(len(small)) {
		t.Fatalf("over the bound: sealed %d bytes, digest %q, size %d", len(rec.ResultSealed), rec.ResultDigest, rec.ResultSize)
	}
	_, ok, err := g.storedResult(rec)
	if !ok || err == nil || !strings.Contains(err.Error(), "larger than the gateway keeps") {
		t.Errorf("stored result over the bound: ok %v, err %v", ok, err)
	}

	g.storedResultMax = 0 // the default, 4 MiB
	if err := g.keepResult(rec, small); err != nil {
		t.Fatal(err)
	}
	res, ok, err := g.storedResult(rec)
	if !ok || err != nil || string(res) != `{"a":1}` {
		t.Errorf("stored result: %s %v %v", res, ok, err)
	}
	// A task that ended with an error keeps the error.
	if err := g.keepResult(rec, []byte(`{"error":{"code":-32602,"message":"bad"}}`)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := g.storedResult(rec); jsonrpc.ErrorCode(err) != -32602 || !strings.Contains(err.Error(), "bad") {
		t.Errorf("stored error: %v", err)
	}
}
