package e2e

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

// TestAuditSurvivesSIGKILL runs mcpgate serve (built once) with each audit
// sync policy, calls a tool from 8 sessions, kills the gateway with
// SIGKILL after 600 acknowledged calls, and checks that every
// acknowledged call has its decided and its completed record in the
// database and that the chain verifies (what mcpgate audit verify runs).
func TestAuditSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills mcpgate")
	}
	bin := filepath.Join(t.TempDir(), "mcpgate")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/mcpgate/mcpgate/cmd/mcpgate").CombinedOutput(); err != nil {
		t.Fatalf("building mcpgate: %v\n%s", err, out)
	}
	up := mcp.NewServer(&mcp.Implementation{Name: "upstream", Version: "1"}, nil)
	up.AddTool(&mcp.Tool{Name: "echo", InputSchema: jsontext.Value(`{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}`)},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ok"}}}, nil
		})
	upSrv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up }, nil))
	defer upSrv.Close()
	for _, policy := range []string{"always", "group", "os"} {
		t.Run(policy, func(t *testing.T) {
			dir := t.TempDir()
			data := filepath.Join(dir, "data")
			cfg := filepath.Join(dir, "gw.yaml")
			yaml := fmt.Sprintf("listen: 127.0.0.1:0\ndata_dir: %s\nupstreams:\n  - name: up\n    url: %s\n    prefix: \"\"\naudit:\n  sync: %s\n", data, upSrv.URL, policy)
			if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			// 600 calls are 1200 records: past the first checkpoint
			// (every 1000 records).
			acked := killUnderLoad(t, bin, cfg, 600)
			checkCallsAudited(t, data, acked)
		})
	}
}

// killUnderLoad starts mcpgate serve --config cfg, calls echo from 8
// sessions until n calls were answered, kills it with SIGKILL and returns
// the arguments of every answered call.
func killUnderLoad(t *testing.T, bin, cfg string, n int) []string {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--config", cfg)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	endpoint := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`serving MCP at (http://\S+/mcp)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				endpoint <- m[1]
				break
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	var url string
	select {
	case url = <-endpoint:
	case <-time.After(60 * time.Second):
		t.Fatal("mcpgate serve did not report its URL within 60 s")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var acked []string
	killed := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for s := range 8 {
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "load", Version: "1"}, nil).Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer cs.Close()
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-killed:
					return
				default:
				}
				args := fmt.Sprintf(`{"text":"s%d-%d"}`, s, i)
				r, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: jsontext.Value(args)})
				if err != nil || r.IsError {
					return // the gateway is gone
				}
				mu.Lock()
				acked = append(acked, args)
				if len(acked) >= n {
					once.Do(func() {
						cmd.Process.Signal(syscall.SIGKILL)
						close(killed)
					})
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	select {
	case <-killed:
	default:
		t.Fatalf("calls failed before the gateway was killed (%d answered)", len(acked))
	}
	cmd.Wait()
	return acked
}

// checkCallsAudited checks that each call in acked (its arguments) has a
// decided and a completed tools/call record in the database in data, and
// that the log verifies with the data directory's checkpoint key.
func checkCallsAudited(t *testing.T, data string, acked []string) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(data, sqlite.DefaultFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	phases := map[string]map[string]bool{} // args digest → phases
	records := 0
	for r, err := range st.ReadAudit(ctx, 1) {
		if err != nil {
			t.Fatal(err)
		}
		records++
		if r.Action != mcp.MethodToolsCall {
			continue
		}
		if phases[r.ArgsDigest] == nil {
			phases[r.ArgsDigest] = map[string]bool{}
		}
		phases[r.ArgsDigest][r.Phase] = true
	}
	for _, args := range acked {
		d, err := audit.Digest([]byte(args))
		if err != nil {
			t.Fatal(err)
		}
		if p := phases[d]; !p[audit.PhaseDecided] || !p[audit.PhaseCompleted] {
			t.Errorf("answered call %s: records %v, want decided and completed", args, p)
		}
	}
	key, err := audit.LoadOrCreateKey(datadir.AuditKey(data))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(ctx, st, key.Public().(ed25519.PublicKey))
	if err != nil || !rep.OK || rep.Checkpoints == 0 {
		t.Fatalf("audit verify: %+v, %v (want it OK, with a checkpoint)", rep, err)
	}
	t.Logf("%d calls answered before SIGKILL, %d records stored, chain verified (%d checkpoints)", len(acked), records, rep.Checkpoints)
}
