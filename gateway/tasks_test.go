package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/inventory"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
)

type userKey struct{}

// userHeaderGateway serves g with the caller named by the X-Test-User
// header, standing in for authentication.
func userHeaderGateway(t *testing.T, g *Gateway) string {
	t.Helper()
	h := g.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, r.Header.Get("X-Test-User"))))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/mcp"
}

type userTransport struct{ user string }

func (u userTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Test-User", u.user)
	return http.DefaultTransport.RoundTrip(r)
}

func connectAs(t *testing.T, url, user string) *mcp.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: user, Version: "1"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: url, HTTPClient: &http.Client{Transport: userTransport{user}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func newTaskGateway(t *testing.T, dataDir string) *Gateway {
	t.Helper()
	db := openDataDir(t, dataDir)
	rv, err := inventory.NewRevoker(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(&config.Config{DataDir: dataDir, Upstreams: []config.Upstream{stdioUpstream("worker")}}, &Options{
		Principal:  func(ctx context.Context) string { s, _ := ctx.Value(userKey{}).(string); return s },
		MaxTaskTTL: time.Minute,
		Tasks:      db,
		Revoker:    rv,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return g
}

// TestTaskGovernance: a task belongs to its creator (others get the answer
// for an unknown task), its ttl is capped, and a task that was running when
// the gateway restarted ends as failed with a clear message.
func TestTaskGovernance(t *testing.T) {
	dataDir := t.TempDir()
	ctx := context.Background()
	g := newTaskGateway(t, dataDir)
	url := userHeaderGateway(t, g)
	alice, bob := connectAs(t, url, "alice"), connectAs(t, url, "bob")

	created, err := alice.CallToolAsTask(ctx, &mcp.CallToolParams{Name: "worker_slowtask"}, &mcp.TaskMetadata{TTL: int64(time.Hour / time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	id := created.Task.TaskID
	if created.Task.TTL == nil || *created.Task.TTL > int64(time.Minute/time.Millisecond) {
		t.Errorf("ttl = %v, want at most one minute", created.Task.TTL)
	}
	if got, err := alice.GetTask(ctx, &mcp.GetTaskParams{TaskID: id}); err != nil || got.Status != mcp.TaskStatusWorking {
		t.Fatalf("alice get: %+v %v", got, err)
	}

	// Bob gets exactly what he gets for a task that does not exist.
	_, errUnknown := bob.GetTask(ctx, &mcp.GetTaskParams{TaskID: "no-such-task"})
	_, errOther := bob.GetTask(ctx, &mcp.GetTaskParams{TaskID: id})
	if errOther == nil || jsonrpc.ErrorCode(errOther) != jsonrpc.ErrorCode(errUnknown) {
		t.Errorf("bob get: %v (unknown task: %v)", errOther, errUnknown)
	}
	if _, err := bob.CancelTask(ctx, &mcp.CancelTaskParams{TaskID: id}); err == nil {
		t.Error("bob cancelled alice's task")
	}
	if l, err := bob.ListTasks(ctx, nil); err != nil || len(l.Tasks) != 0 {
		t.Errorf("bob list: %+v %v", l, err)
	}
	if l, err := alice.ListTasks(ctx, nil); err != nil || len(l.Tasks) != 1 || l.Tasks[0].TaskID != id {
		t.Errorf("alice list: %+v %v", l, err)
	}

	// Restart: the stdio upstream (and its task) is gone, the record is not.
	g.Close()
	g2 := newTaskGateway(t, dataDir)
	defer g2.Close()
	url2 := userHeaderGateway(t, g2)
	alice2, bob2 := connectAs(t, url2, "alice"), connectAs(t, url2, "bob")
	got, err := alice2.GetTask(ctx, &mcp.GetTaskParams{TaskID: id})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != mcp.TaskStatusFailed || !strings.Contains(got.StatusMessage, "lost") || !strings.Contains(got.StatusMessage, "stdio") {
		t.Errorf("after restart: status %s %q, want failed with a message", got.Status, got.StatusMessage)
	}
	if _, err := alice2.GetTaskPayload(ctx, &mcp.GetTaskPayloadParams{TaskID: id}); err == nil || !strings.Contains(err.Error(), "lost") {
		t.Errorf("result after restart: %v", err)
	}
	if l, err := alice2.ListTasks(ctx, nil); err != nil || len(l.Tasks) != 1 || l.Tasks[0].Status != mcp.TaskStatusFailed {
		t.Errorf("alice list after restart: %+v %v", l, err)
	}
	if _, err := bob2.GetTask(ctx, &mcp.GetTaskParams{TaskID: id}); err == nil {
		t.Error("bob sees alice's task after the restart")
	}
}

// TestRevokePrincipal: cancelling a principal's tasks and closing its
// sessions takes effect within a second and spares everyone else.
func TestRevokePrincipal(t *testing.T) {
	g := newTaskGateway(t, t.TempDir())
	defer g.Close()
	url := userHeaderGateway(t, g)
	alice, bob := connectAs(t, url, "alice"), connectAs(t, url, "bob")
	ctx := context.Background()
	created, err := alice.CallToolAsTask(ctx, &mcp.CallToolParams{Name: "worker_slowtask"}, &mcp.TaskMetadata{})
	if err != nil {
		t.Fatal(err)
	}
	bobs, err := bob.CallToolAsTask(ctx, &mcp.CallToolParams{Name: "worker_slowtask"}, &mcp.TaskMetadata{})
	if err != nil {
		t.Fatal(err)
	}

	oldID := alice.ID()
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	n, err := g.CancelTasks(cctx, "alice")
	cancel()
	closed := g.CloseSessions(func(s SessionInfo) bool { return s.Principal == "alice" })
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("revocation took %s", elapsed)
	}
	if err != nil || n != 1 || closed != 1 {
		t.Fatalf("cancelled %d (%v), closed %d; want 1 and 1", n, err, closed)
	}
	for _, s := range g.Sessions() {
		if s.ID == oldID {
			t.Error("alice's session is still open")
		}
	}
	// Without auth nothing stops alice from starting a new session (her
	// client does so by itself on the 404); with auth her revoked token
	// would be refused.
	if _, err := alice.ListTools(ctx, nil); err != nil || alice.ID() == oldID {
		t.Errorf("after the close: %v, session %q (was %q)", err, alice.ID(), oldID)
	}
	// A new session of alice sees the task cancelled.
	alice2 := connectAs(t, url, "alice")
	got, err := alice2.GetTask(ctx, &mcp.GetTaskParams{TaskID: created.Task.TaskID})
	if err != nil || got.Status != mcp.TaskStatusCancelled {
		t.Errorf("alice's task: %+v %v", got, err)
	}
	// Bob is untouched.
	if got, err := bob.GetTask(ctx, &mcp.GetTaskParams{TaskID: bobs.Task.TaskID}); err != nil || got.Status != mcp.TaskStatusWorking {
		t.Errorf("bob's task: %+v %v", got, err)
	}
}

// TestRevokeUpstreamCredential: revoking a principal's credential for an
// upstream ends the gateway's session with that upstream on its behalf.
func TestRevokeUpstreamCredential(t *testing.T) {
	g := newTaskGateway(t, t.TempDir())
	defer g.Close()
	url := userHeaderGateway(t, g)
	alice := connectAs(t, url, "alice")
	callText(t, alice, "worker_whoami")
	has := func() bool {
		for _, s := range g.UpstreamSessions() {
			if s.Principal == "alice" && s.Upstream == "worker" && s.Connected {
				return true
			}
		}
		return false
	}
	if !has() {
		t.Fatal("no upstream session for alice")
	}
	if _, err := g.Revoker().Revoke(context.Background(), "upstream-credential", "worker/alice", "admin"); err != nil {
		t.Fatal(err)
	}
	if has() {
		t.Error("alice's upstream session survived the revocation")
	}
	// The next call makes a new upstream session.
	callText(t, alice, "worker_whoami")
	if !has() {
		t.Error("no new upstream session for alice")
	}
}
