package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/gateway"
	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/internal/tasktest"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/oauth/oauthclient"
	"github.com/mcpgate/mcpgate/oauth/safehttp"
	"github.com/mcpgate/mcpgate/store"
)

// replicaEnv names the configuration file of a "mcpgate serve" that
// TestReplicaProcess runs as a separate process.
const replicaEnv = "MCPGATE_REPLICA_CONFIG"

// TestReplicaProcess is not a test: it is one replica of
// TestReplicasRoundRobin (the test binary run again with replicaEnv set).
func TestReplicaProcess(t *testing.T) {
	cfg := os.Getenv(replicaEnv)
	if cfg == "" {
		t.Skip("a replica process of TestReplicasRoundRobin")
	}
	os.Exit(run(context.Background(), []string{"serve", "--config", cfg, "--log-level", "error"}, os.Stdout, os.Stderr))
}

// roundRobin is a reverse proxy that sends every request to the next of
// its backends in turn, as a plain load balancer does (no stickiness). A
// request that cannot reach its backend (connection refused: the replica
// is dead) goes to the next one; a request already sent is not retried.
type roundRobin struct {
	backends atomic.Pointer[[]*url.URL]
	next     atomic.Uint64
	proxy    *httputil.ReverseProxy
	mu       sync.Mutex
	served   map[string]int // requests per backend host
}

// setBackends sets the replicas the proxy sends requests to.
func (rr *roundRobin) setBackends(b []*url.URL) { rr.backends.Store(&b) }

// maxProxiedBody bounds the request bodies the proxy buffers.
const maxProxiedBody = 1 << 20

func newRoundRobin() *roundRobin {
	rr := &roundRobin{served: make(map[string]int)}
	rr.proxy = &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) {}, // the transport picks the backend
		Transport:     rr,
		FlushInterval: -1,
	}
	return rr
}

func (rr *roundRobin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rr.proxy.ServeHTTP(w, r)
}

// RoundTrip sends req to the next backend, or the one after it when a
// backend refuses the connection.
func (rr *roundRobin) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(io.LimitReader(req.Body, maxProxiedBody)); err != nil {
			return nil, err
		}
		req.Body.Close()
	}
	var lastErr error
	backends := *rr.backends.Load()
	for range backends {
		u := backends[(rr.next.Add(1)-1)%uint64(len(backends))]
		out := req.Clone(req.Context())
		out.URL.Scheme, out.URL.Host, out.Host = u.Scheme, u.Host, u.Host
		out.Body = io.NopCloser(bytes.NewReader(body))
		resp, err := http.DefaultTransport.RoundTrip(out)
		var op *net.OpError
		if err != nil && errors.As(err, &op) && op.Op == "dial" {
			lastErr = err
			continue
		}
		if err == nil {
			rr.mu.Lock()
			rr.served[u.Host]++
			rr.mu.Unlock()
		}
		return resp, err
	}
	return nil, lastErr
}

// replica is one "mcpgate serve" process of TestReplicasRoundRobin.
type replica struct {
	cmd  *exec.Cmd
	base string // http://127.0.0.1:port
	cfg  string // its configuration file
}

// startReplica starts a replica with the configuration yaml and waits
// until it is ready.
func startReplica(t *testing.T, yaml string) *replica {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "replica.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestReplicaProcess$")
	cmd.Env = append(os.Environ(), replicaEnv+"="+cfg)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return &replica{cmd: cmd, cfg: cfg}
}

// waitReady waits until the replica at base answers /readyz with 200.
func waitReady(t *testing.T, base string) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replica at %s did not become ready: %v", base, err)
		}
	}
}

// freeAddr returns a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// oauthSession opens an MCP session through base as a client-credentials
// client and returns it with the access token it uses.
func oauthSession(t *testing.T, base, id, secret string) (*mcp.ClientSession, func() string) {
	t.Helper()
	tr, err := oauthclient.NewTransport(nil, &oauthclient.Config{
		ServerURL: base + "/mcp", Flow: oauthclient.FlowClientCredentials,
		Client:   &oauthclient.ClientAuth{ClientID: id, ClientSecret: secret},
		SafeHTTP: &safehttp.Options{AllowLoopback: true, AllowInsecureLoopback: true, Timeout: 10 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: id, Version: "1"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: base + "/mcp", HTTPClient: &http.Client{Transport: tr}, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatalf("connect as %s: %v", id, err)
	}
	t.Cleanup(func() { cs.Close() })
	token := func() string {
		tok, err := tr.Authorizer().Token(context.Background())
		if err != nil || tok == nil {
			t.Fatalf("token of %s: %v", id, err)
		}
		return tok.AccessToken
	}
	return cs, token
}

// listStatus sends tools/list on session id with token straight to the
// replica at base and returns the HTTP status.
func listStatus(t *testing.T, base, token, id string) int {
	t.Helper()
	code, _ := listBody(t, base, token, id)
	return code
}

// listBody is listStatus with the body of the answer.
func listBody(t *testing.T, base, token, id string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Mcp-Session-Id", id)
	req.Header.Set("Mcp-Protocol-Version", mcp.LatestProtocolVersion)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp.StatusCode, string(body)
}

// replicaWorld is a set of "mcpgate serve" processes (auth on, one
// database, one data directory and one policy directory) behind a
// round-robin proxy whose address is their public URL, in front of a
// tasktest upstream, with two client-credentials clients.
type replicaWorld struct {
	base               string // the proxy
	rr                 *roundRobin
	replicas           []*replica
	up                 *tasktest.Server
	dataDir, policyDir string
	secrets            map[string]string // client id -> secret
}

// startReplicaWorld starts n replicas on the PostgreSQL database dbURL
// ("" for SQLite in the data directory, with n = 1).
func startReplicaWorld(t *testing.T, n int, dbURL string) *replicaWorld {
	t.Helper()
	t.Setenv(datadir.DatabaseURLEnv, "")
	w := &replicaWorld{up: tasktest.New(200 * time.Millisecond), dataDir: t.TempDir(), policyDir: t.TempDir(),
		secrets: map[string]string{"alice-agent": "alice-secret-0123456789", "bob-agent": "bob-secret-0123456789"}}
	upSrv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return w.up.MCP }, nil))
	t.Cleanup(upSrv.Close) // after the replicas end (cleanups run last first)
	writeFileAtomic(t, filepath.Join(w.policyDir, "allow.cedar"), "permit(principal, action, resource);\n")
	ctx := context.Background()
	db, err := datadir.OpenDB(ctx, w.dataDir, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	for id, secret := range w.secrets {
		if err := db.CreateClient(ctx, &store.Client{ID: id, Kind: store.ClientPreRegistered, Name: id,
			SecretHash: store.Digest(secret), GrantTypes: []string{meta.GrantTypeClientCredentials},
			TokenEndpointAuthMethod: meta.AuthMethodClientSecretBasic, Scope: gateway.ScopeTools, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	// The proxy's address is the public URL of every replica.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w.base = "http://" + ln.Addr().String()
	w.rr = newRoundRobin()
	dbLine := ""
	if dbURL != "" {
		dbLine = "database_url: '" + dbURL + "'\n"
	}
	var backends []*url.URL
	for range n {
		addr := freeAddr(t)
		yaml := fmt.Sprintf("listen: %s\npublic_url: %s\nauth: oauth\ndata_dir: %s\n%spolicy:\n  paths: [%s]\nupstreams:\n  - name: up\n    url: %s\n",
			addr, w.base, w.dataDir, dbLine, w.policyDir, upSrv.URL)
		r := startReplica(t, yaml)
		r.base = "http://" + addr
		// One at a time: the first creates the keys in the data
		// directory, the others find them.
		waitReady(t, r.base)
		w.replicas = append(w.replicas, r)
		u, _ := url.Parse(r.base)
		backends = append(backends, u)
	}
	w.rr.setBackends(backends)
	proxy := httptest.NewUnstartedServer(w.rr)
	proxy.Listener.Close()
	proxy.Listener = ln
	proxy.Start()
	t.Cleanup(proxy.Close)
	return w
}

// TestReplicasRoundRobin is issue 14's three-replica test: three
// "mcpgate serve" processes (auth on, one PostgreSQL database, one data
// directory for the keys) behind a proxy that sends every request to the
// next replica. A client initializes through one replica and lists and
// calls tools through the others (each continues the session from its
// record); a task started through one replica is read by its owner
// through the others, and not by another client; a session deleted
// through one replica is refused by all; a client revoked from the
// command line is refused by every replica, and the time until the last
// one refuses is measured (asserted under 5 s, a generous bound for a
// loaded 2-core machine; the issue wants under 1 s, and the figure is
// logged). Then one replica is killed with SIGKILL under a small load: the
// sessions continue on the other two, every acknowledged call is in the
// audit log, and "mcpgate audit verify" passes.
func TestReplicasRoundRobin(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three mcpgate processes and PostgreSQL")
	}
	_, dbURL := newPostgres(t)
	w := startReplicaWorld(t, 3, dbURL)
	ctx := context.Background()
	base, rr, replicas, secrets, up, dataDir, policyDir := w.base, w.rr, w.replicas, w.secrets, w.up, w.dataDir, w.policyDir

	// Every request goes to the next replica: the session continues.
	alice, aliceToken := oauthSession(t, base, "alice-agent", secrets["alice-agent"])
	for i := range 6 {
		if _, err := alice.ListTools(ctx, nil); err != nil {
			t.Fatalf("tools/list %d: %v", i, err)
		}
		res, err := alice.CallTool(ctx, &mcp.CallToolParams{Name: "up_steps", Arguments: []byte(`{"steps":1,"every_ms":1}`)})
		if err != nil || res.IsError {
			t.Fatalf("tools/call %d: %+v, %v", i, res, err)
		}
	}
	rr.mu.Lock()
	t.Logf("requests per replica so far: %v", rr.served)
	for _, u := range *rr.backends.Load() {
		if rr.served[u.Host] < 3 {
			t.Errorf("replica %s served %d requests, want every replica used", u.Host, rr.served[u.Host])
		}
	}
	rr.mu.Unlock()

	// A task started through one replica is read through the others by
	// its owner only.
	created, err := alice.CallToolAsTask(ctx, &mcp.CallToolParams{Name: "up_steps", Arguments: []byte(`{"steps":2,"every_ms":300}`)}, &mcp.TaskMetadata{TTL: 600000})
	if err != nil {
		t.Fatal(err)
	}
	taskID := created.Task.TaskID
	for i := 0; ; i++ {
		task, err := alice.GetTask(ctx, &mcp.GetTaskParams{TaskID: taskID})
		if err != nil {
			t.Fatalf("tasks/get %d: %v", i, err)
		}
		if task.Status == mcp.TaskStatusCompleted {
			break
		}
		if task.Status != mcp.TaskStatusWorking || i > 600 {
			t.Fatalf("task status after %d gets: %+v", i, task)
		}
		time.Sleep(50 * time.Millisecond) // polling, as a client does
	}
	for i := range 3 { // each of the three replicas answers one
		raw, err := alice.GetTaskPayload(ctx, &mcp.GetTaskPayloadParams{TaskID: taskID})
		if err != nil || !strings.Contains(string(raw), "done after 2 steps") {
			t.Fatalf("the owner's result, read %d: %s %v", i, raw, err)
		}
	}
	// A long task is listed through every replica as running, and
	// cancelled through any: it ends cancelled.
	long, err := alice.CallToolAsTask(ctx, &mcp.CallToolParams{Name: "up_steps", Arguments: []byte(`{"steps":100,"every_ms":200}`)}, &mcp.TaskMetadata{TTL: 600000})
	if err != nil {
		t.Fatal(err)
	}
	longID := long.Task.TaskID
	for i := range 3 {
		list, err := alice.ListTasks(ctx, nil)
		if err != nil {
			t.Fatalf("tasks/list %d: %v", i, err)
		}
		statuses := map[string]mcp.TaskStatus{}
		for _, tk := range list.Tasks {
			statuses[tk.TaskID] = tk.Status
		}
		if statuses[longID] != mcp.TaskStatusWorking || statuses[taskID] != mcp.TaskStatusCompleted {
			t.Fatalf("tasks/list %d: %v, want %s working and %s completed", i, statuses, longID, taskID)
		}
	}
	if _, err := alice.CancelTask(ctx, &mcp.CancelTaskParams{TaskID: longID}); err != nil {
		t.Fatalf("tasks/cancel: %v", err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		task, err := alice.GetTask(ctx, &mcp.GetTaskParams{TaskID: longID})
		if err == nil && task.Status == mcp.TaskStatusCancelled && task.StatusMessage != store.TaskCancelRequested {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cancelled task after 30 s: %+v, %v", task, err)
		}
	}
	if n := len(up.Changes()); n == 0 {
		t.Fatal("the upstream saw no task")
	}

	bob, bobToken := oauthSession(t, base, "bob-agent", secrets["bob-agent"])
	_, errUnknown := bob.GetTaskPayload(ctx, &mcp.GetTaskPayloadParams{TaskID: "no-such-task"})
	for range 3 {
		_, errOther := bob.GetTaskPayload(ctx, &mcp.GetTaskPayloadParams{TaskID: taskID})
		if errOther == nil || jsonrpc.ErrorCode(errOther) != jsonrpc.ErrorCode(errUnknown) || strings.Contains(errOther.Error(), "done") {
			t.Errorf("another client's result: %v (unknown task: %v)", errOther, errUnknown)
		}
	}

	// Another client's token does not continue alice's session on any
	// replica.
	for _, r := range replicas {
		if code := listStatus(t, r.base, bobToken(), alice.ID()); code != http.StatusNotFound {
			t.Errorf("bob on alice's session at %s: status %d, want 404", r.base, code)
		}
	}

	// A session deleted through one replica is refused by every one.
	other, _ := oauthSession(t, base, "alice-agent", secrets["alice-agent"])
	if _, err := other.ListTools(ctx, nil); err != nil {
		t.Fatal(err)
	}
	id := other.ID()
	other.Close() // DELETE through the proxy
	for _, r := range replicas {
		waitStatus(t, r.base, aliceToken(), id, http.StatusNotFound)
	}

	// A client revoked from the command line is refused by every replica.
	bobSession := bob.ID()
	start := time.Now()
	if code, out, errOut := execute(t, "revoke", "client", "bob-agent", "--reason", "test", "--config", replicas[0].cfg); code != 0 {
		t.Fatalf("revoke: %d %s %s", code, out, errOut)
	}
	revoked := time.Now()
	refusedAt := make([]time.Duration, len(replicas))
	for i, r := range replicas {
		waitStatus(t, r.base, bobToken(), bobSession, http.StatusUnauthorized)
		refusedAt[i] = time.Since(revoked)
	}
	last := refusedAt[len(refusedAt)-1]
	t.Logf("MEASURED: client revoked from the command line (which took %s) refused by the 3 replicas %v after it returned (last: %s)",
		revoked.Sub(start).Round(time.Millisecond), refusedAt, last.Round(time.Millisecond))
	if last > 5*time.Second {
		t.Errorf("the revocation took %s to reach every replica, want well under 5 s", last)
	} else if last > time.Second {
		t.Logf("NOTE: above the 1 s the issue asks for (machine under load?)")
	}
	// Alice is not affected.
	if _, err := alice.ListTools(ctx, nil); err != nil {
		t.Fatalf("alice after bob's revocation: %v", err)
	}

	// A policy change in the files every replica reads (one directory
	// here) reaches every replica by its own poll of the files.
	forbid := filepath.Join(policyDir, "forbid.cedar")
	writeFileAtomic(t, forbid, `forbid(principal, action, resource == Tool::"up/steps");`+"\n")
	changed := time.Now()
	hiddenAt := make([]time.Duration, len(replicas))
	for i, r := range replicas {
		waitListed(t, r.base, aliceToken(), alice.ID(), false)
		hiddenAt[i] = time.Since(changed)
	}
	t.Logf("MEASURED: a policy file change seen by the 3 replicas %v after it was written (each polls its files every second)", hiddenAt)
	if last := hiddenAt[len(hiddenAt)-1]; last > 5*time.Second {
		t.Errorf("the policy change took %s to reach every replica, want well under 5 s", last)
	}
	if err := os.Remove(forbid); err != nil {
		t.Fatal(err)
	}
	for _, r := range replicas {
		waitListed(t, r.base, aliceToken(), alice.ID(), true)
	}

	killOneUnderLoad(t, replicas, alice, dataDir, dbURL)
}

// writeFileAtomic writes a file that readers see whole or not at all.
func writeFileAtomic(t *testing.T, name, content string) {
	t.Helper()
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
}

// waitListed polls the replica at base with tools/list on session id
// until up_steps is listed (listed true) or not, for at most 30 s.
func waitListed(t *testing.T, base, token, id string, listed bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		code, body := listBody(t, base, token, id)
		if code == http.StatusOK && strings.Contains(body, "up_steps") == listed {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: tools/list after 30 s: %d %s (want up_steps listed: %v)", base, code, body, listed)
		}
	}
}

// killOneUnderLoad kills the last replica with SIGKILL while calls go
// through the proxy from alice's session, one after the other: calls
// keep succeeding on the other replicas (at most the call in flight at
// the kill fails), every call the client saw acknowledged is audited
// (decided and completed), and "mcpgate audit verify" passes.
func killOneUnderLoad(t *testing.T, replicas []*replica, alice *mcp.ClientSession, dataDir, dbURL string) {
	ctx := context.Background()
	const total, killAfter = 45, 15
	var (
		mu     sync.Mutex
		acked  []string
		failed []error
	)
	reached := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range total {
			args := fmt.Sprintf(`{"steps":1,"every_ms":1,"tag":"kill-load-%03d"}`, i)
			res, err := alice.CallTool(ctx, &mcp.CallToolParams{Name: "up_steps", Arguments: []byte(args)})
			mu.Lock()
			switch {
			case err != nil:
				failed = append(failed, err)
			case res.IsError:
				failed = append(failed, fmt.Errorf("%s: tool error", args))
			default:
				acked = append(acked, args)
			}
			mu.Unlock()
			if i == killAfter {
				close(reached)
			}
		}
	}()
	select {
	case <-reached:
	case <-done:
	}
	victim := replicas[len(replicas)-1]
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	victim.cmd.Wait()
	<-done
	t.Logf("MEASURED: replica killed under load: %d calls acknowledged of %d, %d failed (%v)", len(acked), total, len(failed), failed)
	if len(failed) > 1 {
		t.Errorf("%d calls failed, want at most the one in flight at the kill: %v", len(failed), failed)
	}

	// Every acknowledged call is in the one audit chain, which verifies.
	db, err := datadir.OpenDB(ctx, dataDir, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	phases := map[string]map[string]bool{} // args digest -> phases
	for r, err := range db.ReadAudit(ctx, 1) {
		if err != nil {
			t.Fatal(err)
		}
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
			t.Errorf("acknowledged call %s: records %v, want decided and completed", args, p)
		}
	}
	if code, out, errOut := execute(t, "audit", "verify", "--config", replicas[0].cfg); code != 0 {
		t.Errorf("audit verify: %d %s %s", code, out, errOut)
	}
}

// waitStatus polls the replica at base with a tools/list on session id
// until it answers want, for at most 30 s.
func waitStatus(t *testing.T, base, token, id string, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code := listStatus(t, base, token, id)
		if code == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: status %d after 30 s, want %d", base, code, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// replicaBenchEnv turns on TestReplicasThroughput, which loads the
// machine for tens of seconds.
const replicaBenchEnv = "MCPGATE_REPLICA_BENCH"

// TestReplicasThroughput measures, in one run, the throughput of one,
// two and three replicas on one PostgreSQL database behind the
// round-robin proxy (concurrent clients calling a tool), and the latency
// of sequential calls through one replica on PostgreSQL against one on
// SQLite (the default configuration otherwise: auth, audit). It asserts
// nothing about the figures, which depend on the machine: it logs them.
// Run it with MCPGATE_REPLICA_BENCH=1 (and CI=true where PostgreSQL
// would be skipped).
func TestReplicasThroughput(t *testing.T) {
	if os.Getenv(replicaBenchEnv) == "" {
		t.Skip("a measurement, not a test: set " + replicaBenchEnv + "=1 to run it")
	}
	_, dbURL := newPostgres(t)
	pg := startReplicaWorld(t, 3, dbURL)
	all := *pg.rr.backends.Load()
	const clients, callsEach, sequential = 6, 60, 200
	var sessions []*mcp.ClientSession
	for range clients {
		cs, _ := oauthSession(t, pg.base, "alice-agent", pg.secrets["alice-agent"])
		sessions = append(sessions, cs)
	}
	rates := make([]float64, len(all))
	for n := 1; n <= len(all); n++ {
		pg.rr.setBackends(all[:n])
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for _, cs := range sessions {
			wg.Go(func() {
				for range callsEach {
					if _, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "up_steps", Arguments: []byte(`{"steps":1,"every_ms":1}`)}); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("%d replicas: %v", n, err)
		}
		rates[n-1] = float64(clients*callsEach) / time.Since(start).Seconds()
		t.Logf("MEASURED: %d replica(s): %d calls by %d clients, %.0f calls/s (%.2f× one replica)", n, clients*callsEach, clients, rates[n-1], rates[n-1]/rates[0])
	}

	// Sequential latency through one replica: PostgreSQL against SQLite.
	pg.rr.setBackends(all[:1])
	lite := startReplicaWorld(t, 1, "")
	for _, w := range []struct {
		name string
		w    *replicaWorld
	}{{"PostgreSQL", pg}, {"SQLite", lite}} {
		cs, _ := oauthSession(t, w.w.base, "alice-agent", w.w.secrets["alice-agent"])
		lat := make([]time.Duration, sequential)
		for i := range lat {
			start := time.Now()
			if _, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "up_steps", Arguments: []byte(`{"steps":1,"every_ms":1}`)}); err != nil {
				t.Fatal(err)
			}
			lat[i] = time.Since(start)
		}
		slices.Sort(lat)
		t.Logf("MEASURED: one replica on %s: %d sequential calls, median %s, p90 %s", w.name, sequential, lat[len(lat)/2].Round(10*time.Microsecond), lat[len(lat)*9/10].Round(10*time.Microsecond))
	}
}
