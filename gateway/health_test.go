package gateway

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/mcp"
)

// progressEvent is one report of Options.Progress.
type progressEvent struct {
	upstream, state string
	err             error
}

// progressLog collects Options.Progress reports for tests to wait on.
type progressLog chan progressEvent

func (p progressLog) report(upstream, state string, err error) {
	select {
	case p <- progressEvent{upstream, state, err}:
	default: // a test that stopped listening must not block the gateway
	}
}

// waitFor waits (bounded) for a report of upstream whose state starts with
// state, and returns it.
func (p progressLog) waitFor(t *testing.T, upstream, state string) progressEvent {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case e := <-p:
			if e.upstream == upstream && strings.HasPrefix(e.state, state) {
				return e
			}
		case <-timeout:
			t.Fatalf("no %q report for %s", state, upstream)
		}
	}
}

// stalledUpstream is an MCP server over HTTP that accepts connections but
// answers nothing until release is closed, like a remote server that hangs
// or a first npx download.
func stalledUpstream(t *testing.T, name string) (url string, release func()) {
	t.Helper()
	ch := make(chan struct{})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return testUpstream(name, nil) }, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-ch:
		case <-r.Context().Done():
			return
		}
		h.ServeHTTP(w, r)
	}))
	var once bool
	release = func() {
		if !once {
			once = true
			close(ch)
		}
	}
	t.Cleanup(func() { release(); srv.Close() })
	return srv.URL, release
}

func getJSON(t *testing.T, url string, into any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if into != nil {
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatalf("%s: %v\n%s", url, err, b)
		}
	}
	return resp.StatusCode
}

// TestStartDoesNotWaitForUpstreams: Start returns at once with an upstream
// that hangs; the ready upstream serves; the catalogue waits only
// startup_wait for the hanging one, which joins when it answers, and
// clients are told the list changed. Progress says "still connecting".
func TestStartDoesNotWaitForUpstreams(t *testing.T) {
	stalledURL, release := stalledUpstream(t, "slow")
	goodURL, _ := httpUpstream(t, "good")
	progress := make(progressLog, 100)
	cfg := &config.Config{
		Upstreams: []config.Upstream{{Name: "good", URL: goodURL}, {Name: "slow", URL: stalledURL}},
		Server:    &config.Server{StartupWait: 300 * time.Millisecond},
	}
	g, err := New(cfg, &Options{Progress: progress.report})
	if err != nil {
		t.Fatal(err)
	}
	g.progressEvery = 50 * time.Millisecond
	t.Cleanup(func() { g.Close() })
	started := time.Now()
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(started); d > 2*time.Second {
		t.Fatalf("Start took %s", d)
	}
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(srv.Close)

	progress.waitFor(t, "good", "ready")
	progress.waitFor(t, "slow", "still connecting (")

	var rd Readiness
	if code := getJSON(t, srv.URL+"/readyz", &rd); code != http.StatusOK || !rd.Ready || rd.ReadyUpstreams != 1 || rd.Required != 1 {
		t.Fatalf("/readyz = %d %+v", code, rd)
	}
	states := map[string]string{}
	for _, st := range rd.Upstreams {
		states[st.Name] = st.State
	}
	if states["good"] != UpstreamReady || states["slow"] != UpstreamConnecting {
		t.Fatalf("states = %v", states)
	}

	changed := make(chan struct{}, 10)
	cs := connect(t, srv.URL+"/mcp", &mcp.ClientOptions{ToolListChangedHandler: func(context.Context, *mcp.ClientSession) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	names := func() []string {
		res, err := cs.ListTools(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, tl := range res.Tools {
			out = append(out, tl.Name)
		}
		return out
	}
	if got := strings.Join(names(), ","); !strings.Contains(got, "good_whoami") || strings.Contains(got, "slow_") {
		t.Fatalf("tools before slow is ready: %s", got)
	}
	if got := callText(t, cs, "good_whoami"); got != "good" {
		t.Fatalf("good_whoami = %q", got)
	}

	release()
	progress.waitFor(t, "slow", "ready")
	select {
	case <-changed:
	case <-ctx.Done():
		t.Fatal("no tools/list_changed after slow became ready")
	}
	if got := strings.Join(names(), ","); !strings.Contains(got, "slow_whoami") {
		t.Fatalf("tools after slow is ready: %s", got)
	}
	if got := callText(t, cs, "slow_whoami"); got != "slow" {
		t.Fatalf("slow_whoami = %q", got)
	}
}

// TestNoUpstreamReachable: the gateway runs with no upstream reachable;
// /healthz is 200, /readyz 503 with each upstream's state and last error,
// and the retries back off until the circuit opens.
func TestNoUpstreamReachable(t *testing.T) {
	progress := make(progressLog, 100)
	cfg := &config.Config{
		Upstreams: []config.Upstream{{Name: "down", URL: "http://127.0.0.1:1/mcp"}},
		Server:    &config.Server{UpstreamCircuitFailures: 3, UpstreamCircuitOpen: time.Hour},
	}
	g, err := New(cfg, &Options{Progress: progress.report})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	if err := g.Start(context.Background()); err != nil {
		t.Fatalf("Start = %v, want nil with no upstream reachable", err)
	}
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(srv.Close)
	if code := getJSON(t, srv.URL+"/healthz", nil); code != http.StatusOK {
		t.Fatalf("/healthz = %d", code)
	}
	progress.waitFor(t, "down", "failed")
	var rd Readiness
	if code := getJSON(t, srv.URL+"/readyz", &rd); code != http.StatusServiceUnavailable || rd.Ready || rd.Checks["upstreams"] == "ok" {
		t.Fatalf("/readyz = %d %+v", code, rd)
	}
	if st := rd.Upstreams[0]; st.LastError == "" || st.Failures < 1 {
		t.Fatalf("state = %+v", st)
	}
	progress.waitFor(t, "down", "circuit open")
	st := g.UpstreamStates()[0]
	if st.State != UpstreamCircuitOpen || st.Failures != 3 || time.Until(st.RetryAt) < 30*time.Minute {
		t.Fatalf("state = %+v, want the circuit open for about an hour", st)
	}
	// A client is served, and told at once why the upstream is missing.
	cs := connect(t, srv.URL+"/mcp", nil)
	_, err = cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "down_whoami"})
	if err == nil || !strings.Contains(err.Error(), "unknown tool") {
		t.Fatalf("call = %v", err)
	}
	if code := getJSON(t, srv.URL+"/healthz", nil); code != http.StatusOK {
		t.Fatalf("/healthz = %d", code)
	}
}

// TestReadyzDatabase: a database that does not accept writes makes the
// gateway not ready.
func TestReadyzDatabase(t *testing.T) {
	url, _ := httpUpstream(t, "up")
	fail := true
	g, err := New(&config.Config{Upstreams: []config.Upstream{{Name: "up", URL: url}}}, &Options{ReadyCheck: func(context.Context) error {
		if fail {
			return io.ErrClosedPipe
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	g.Start(context.Background())
	g.WaitStartup(context.Background())
	rd := g.Readiness(context.Background())
	if rd.Ready || rd.Checks["database"] == "ok" || rd.Checks["upstreams"] != "ok" {
		t.Fatalf("readiness = %+v", rd)
	}
	fail = false
	if rd := g.Readiness(context.Background()); !rd.Ready {
		t.Fatalf("readiness = %+v", rd)
	}
}

// TestCrashLoopOpensCircuit: a stdio upstream that crashes on every call
// is restarted with back-off, and after upstream_circuit_failures
// consecutive crashes its circuit opens: calls fail at once with a clear
// error, and UpstreamStates shows it.
func TestCrashLoopOpensCircuit(t *testing.T) {
	progress := make(progressLog, 100)
	cfg := &config.Config{
		Upstreams: []config.Upstream{stdioUpstream("fragile")},
		Server:    &config.Server{UpstreamCircuitFailures: 3, UpstreamCircuitOpen: time.Hour},
	}
	g, err := New(cfg, &Options{Progress: progress.report})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	g.Start(context.Background())
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(srv.Close)
	progress.waitFor(t, "fragile", "ready")
	cs := connect(t, srv.URL+"/mcp", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for crash := 1; ; crash++ {
		if crash > 3 {
			t.Fatal("the circuit did not open after 3 crashes")
		}
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "fragile_crash"}); err == nil {
			t.Fatal("crash call succeeded")
		}
		e := progress.waitFor(t, "fragile", "lost")
		_ = e
		st := g.UpstreamStates()[0]
		if st.Failures != crash {
			t.Fatalf("after crash %d: failures = %d (%+v)", crash, st.Failures, st)
		}
		if crash == 3 {
			if st.State != UpstreamCircuitOpen {
				t.Fatalf("after 3 crashes: %+v", st)
			}
			break
		}
		progress.waitFor(t, "fragile", "ready") // restarted after its back-off
	}
	start := time.Now()
	_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "fragile_whoami"})
	if err == nil || !strings.Contains(err.Error(), "circuit is open after 3 consecutive failures") {
		t.Fatalf("call with the circuit open = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("refusal took %s", d)
	}
}

// TestSessionsPerPrincipal: one principal opening sessions until refused
// gets 429 with a clear message, and another principal can still open
// one: the gateway sets the transport's bounds from the configuration.
func TestSessionsPerPrincipal(t *testing.T) {
	url, _ := httpUpstream(t, "up")
	g, err := New(&config.Config{
		Upstreams: []config.Upstream{{Name: "up", URL: url}},
		Server:    &config.Server{MaxSessionsPerPrincipal: 2},
	}, &Options{StreamableHTTP: &mcp.StreamableHTTPOptions{SessionPrincipal: func(r *http.Request) string { return r.Header.Get("X-Who") }}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	g.Start(context.Background())
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(srv.Close)
	open := func(who string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil).Connect(ctx,
			&mcp.StreamableClientTransport{Endpoint: srv.URL + "/mcp", HTTPClient: &http.Client{Transport: headerRT{"X-Who", who}}}, nil)
		if err == nil {
			t.Cleanup(func() { cs.Close() })
		}
		return err
	}
	var err2 error
	for i := 0; i < 10; i++ {
		if err2 = open("flooder"); err2 != nil {
			if i != 2 {
				t.Fatalf("refused after %d sessions, want 2: %v", i, err2)
			}
			break
		}
	}
	if err2 == nil || !strings.Contains(err2.Error(), "429") || !strings.Contains(err2.Error(), "too many sessions: this principal already has 2") {
		t.Fatalf("flooder refusal = %v", err2)
	}
	if err := open("someone-else"); err != nil {
		t.Fatalf("another principal: %v", err)
	}
}

type headerRT struct{ name, value string }

func (h headerRT) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(h.name, h.value)
	return http.DefaultTransport.RoundTrip(r)
}

// TestOversizeStdioResponse: a stdio upstream's answer over the message
// size limit fails the call at once with a clear JSON-RPC error, instead
// of leaving the client waiting for the upstream timeout.
func TestOversizeStdioResponse(t *testing.T) {
	up := stdioUpstream("huge")
	up.Timeout = 10 * time.Minute
	_, url := startGateway(t, &config.Config{Upstreams: []config.Upstream{up}})
	cs := connect(t, url, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "huge_big"})
	if err == nil || !strings.Contains(err.Error(), "exceeds the message size limit") {
		t.Fatalf("call = %v, want the size limit error", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the call waited for the timeout")
	}
	// The session stays usable.
	if got := callText(t, cs, "huge_whoami"); got != "huge" {
		t.Fatalf("whoami = %q", got)
	}
}
