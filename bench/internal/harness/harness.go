// Package harness runs mcpgate as users run it, for benchmarks: the
// gateway built with `go build` and started as `mcpgate serve` in its own
// process, upstreams in their own processes (the benchmark's test binary
// started again in a role), machine clients registered with the command
// line and tokens from the gateway's authorization server.
//
// A benchmark package calls [RunRole] first thing in its TestMain.
package harness

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/mcp"
)

// RoleEnv names the role a re-started test binary plays.
const RoleEnv = "MCPGATE_BENCH_ROLE"

// RunRole plays the role RoleEnv names, if any, and exits; it returns at
// once when RoleEnv is unset. The roles:
//
//   - echo: an HTTP upstream with a tool echo (answers its text)
//   - paginate: an HTTP upstream whose tools/list never ends
//   - crash: a stdio upstream whose tool crash kills the process
//
// HTTP roles print their port on standard output.
func RunRole() {
	switch os.Getenv(RoleEnv) {
	case "":
		return
	case "echo":
		serveHTTP(echoHandler())
	case "paginate":
		serveHTTP(http.HandlerFunc(paginateForever))
	case "crash":
		crashServer()
	default:
		fmt.Fprintln(os.Stderr, "unknown", RoleEnv, os.Getenv(RoleEnv))
		os.Exit(2)
	}
	os.Exit(0)
}

// serveHTTP serves h on a loopback port and prints the port on stdout.
func serveHTTP(h http.Handler) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	os.Stdout.Sync()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// echoHandler is the well-behaved upstream: a tool echo answering its
// text.
func echoHandler() http.Handler {
	s := mcp.NewServer(&mcp.Implementation{Name: "echo", Version: "1"}, nil)
	s.AddTool(&mcp.Tool{Name: "echo", InputSchema: jsontext.Value(`{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}`)},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var args struct{ Text string }
			_ = json.Unmarshal(req.Params.Arguments, &args)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: args.Text}}}, nil
		})
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
}

// paginateForever is an upstream whose tools/list never ends: every page
// has one tool and a next cursor.
func paginateForever(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	var req struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			Cursor string `json:"cursor"`
		} `json:"params"`
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if len(req.ID) == 0 {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	var result string
	switch req.Method {
	case "initialize":
		w.Header().Set("Mcp-Session-Id", "endless")
		result = `{"protocolVersion":"2025-11-25","capabilities":{"tools":{"listChanged":false}},"serverInfo":{"name":"endless","version":"1"}}`
	case "tools/list":
		n, _ := strconv.Atoi(req.Params.Cursor)
		result = fmt.Sprintf(`{"tools":[{"name":"t%d","inputSchema":{"type":"object"}}],"nextCursor":"%d"}`, n, n+1)
	case "ping":
		result = `{}`
	default:
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"method not found"}}`, req.ID)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":%s}`, req.ID, result)
}

// crashServer is a stdio upstream whose one tool kills the process.
func crashServer() {
	s := mcp.NewServer(&mcp.Implementation{Name: "crashy", Version: "1"}, nil)
	s.AddTool(&mcp.Tool{Name: "crash", InputSchema: jsontext.Value(`{"type":"object"}`)},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			os.Exit(3)
			return nil, nil
		})
	if err := s.Run(context.Background(), &mcp.StdioTransport{}); err != nil {
		os.Exit(1)
	}
}

// Progress tells the person running a benchmark where it is.
func Progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

// World holds the processes and files of one benchmark run.
type World struct {
	Dir string // a temporary directory
	Bin string // the mcpgate binary

	mu    sync.Mutex
	procs []*exec.Cmd
}

// NewWorld builds mcpgate into a temporary directory. The benchmark's
// cleanup kills every process the world started.
func NewWorld(tb testing.TB) *World {
	tb.Helper()
	w := &World{Dir: tb.TempDir()}
	w.Bin = filepath.Join(w.Dir, "mcpgate")
	build := exec.Command("go", "build", "-o", w.Bin, "github.com/mcpgate/mcpgate/cmd/mcpgate")
	if out, err := build.CombinedOutput(); err != nil {
		tb.Fatalf("building mcpgate: %v\n%s", err, out)
	}
	tb.Cleanup(w.stop)
	return w
}

func (w *World) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range w.procs {
		if p.Process != nil {
			_ = p.Process.Kill()
			_ = p.Wait()
		}
	}
}

func (w *World) started(cmd *exec.Cmd) {
	w.mu.Lock()
	w.procs = append(w.procs, cmd)
	w.mu.Unlock()
}

// Self is the path of the running test binary, for stdio roles.
func Self(tb testing.TB) string {
	self, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	return self
}

// StartRole starts the test binary as an HTTP upstream and returns its
// port.
func (w *World) StartRole(tb testing.TB, role string) int {
	tb.Helper()
	cmd := exec.Command(Self(tb))
	cmd.Env = append(os.Environ(), RoleEnv+"="+role)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	w.started(cmd)
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		tb.Fatalf("upstream %s: %v", role, err)
	}
	port, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		tb.Fatalf("upstream %s printed %q", role, line)
	}
	return port
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(tb testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// WriteFile writes a file under the world's directory and returns its
// path.
func (w *World) WriteFile(tb testing.TB, name, text string) string {
	tb.Helper()
	p := filepath.Join(w.Dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

// CLI runs an mcpgate command with a configuration and returns its
// output; a failing command fails the benchmark.
func (w *World) CLI(tb testing.TB, config string, args ...string) string {
	tb.Helper()
	cmd := exec.Command(w.Bin, append([]string{"--config", config}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("mcpgate %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// AddClient pre-registers a machine client (client credentials) and
// returns its secret.
func (w *World) AddClient(tb testing.TB, config, id string) string {
	tb.Helper()
	out := w.CLI(tb, config, "client", "add", id, "--grant", "client_credentials")
	_, secret, ok := strings.Cut(out, "client_secret: ")
	if !ok {
		tb.Fatalf("client add %s printed no secret:\n%s", id, out)
	}
	return strings.Fields(secret)[0]
}

// Gateway is one run of `mcpgate serve`.
type Gateway struct {
	Cmd   *exec.Cmd
	Base  string // http://127.0.0.1:port
	Debug string // the profiles' base URL, with server.debug_listen
}

// StartGateway runs `mcpgate serve` with a configuration and waits until
// it says where it serves (and, with server.debug_listen, its profiles).
func (w *World) StartGateway(tb testing.TB, config string, debug bool) *Gateway {
	tb.Helper()
	cmd := exec.Command(w.Bin, "serve", "--config", config)
	// The gateway says where it serves, and logs, on standard error.
	out, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	g := &Gateway{Cmd: cmd}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	w.started(cmd)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "mcpgate: serving MCP at "); ok {
			g.Base = strings.TrimSuffix(strings.Fields(rest)[0], "/mcp")
		}
		if rest, ok := strings.CutPrefix(line, "mcpgate: serving Go runtime profiles at "); ok {
			g.Debug = strings.TrimSuffix(strings.TrimSpace(rest), "/debug/pprof/")
		}
		if g.Base != "" && (g.Debug != "" || !debug) {
			break
		}
	}
	if g.Base == "" || (debug && g.Debug == "") {
		_ = cmd.Process.Kill()
		tb.Fatalf("mcpgate serve did not say where it serves (%v)", sc.Err())
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return g
}

// WaitReady waits for /readyz.
func (g *Gateway) WaitReady(tb testing.TB) {
	tb.Helper()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(g.Base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
	}
	tb.Fatal("the gateway never became ready")
}

// Token gets an access token with the client credentials grant.
func (g *Gateway) Token(tb testing.TB, id, secret string) string {
	tb.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "resource": {g.Base + "/mcp"}}
	req, _ := http.NewRequest(http.MethodPost, g.Base+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &body); err != nil || body.AccessToken == "" {
		tb.Fatalf("token for %s: HTTP %d %s", id, resp.StatusCode, raw)
	}
	return body.AccessToken
}

// Goroutines reads the gateway's goroutine count from its profiles.
func (g *Gateway) Goroutines(tb testing.TB) int {
	tb.Helper()
	resp, err := http.Get(g.Debug + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "goroutine profile: total ")))
	if err != nil {
		tb.Fatalf("goroutine profile: %q", line)
	}
	return n
}

// GoroutineStacks returns the most common goroutine stacks (up to n
// groups), headed by their counts.
func (g *Gateway) GoroutineStacks(n int) []string {
	resp, err := http.Get(g.Debug + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return []string{err.Error()}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	groups := strings.Split(string(raw), "\n\n")
	return groups[:min(len(groups), n)]
}

// RSS and PeakRSS read the gateway's resident set size and its peak.
func (g *Gateway) RSS() int64     { return procStatus(g.Cmd.Process.Pid, "VmRSS:") }
func (g *Gateway) PeakRSS() int64 { return procStatus(g.Cmd.Process.Pid, "VmHWM:") }

func procStatus(pid int, field string) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// bearer adds a token to every request.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (t bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+t.token)
	return t.next.RoundTrip(r)
}

// Connect opens an MCP session on endpoint (the /mcp URL), with a bearer
// token unless token is "".
func Connect(ctx context.Context, endpoint, token string, tr http.RoundTripper) (*mcp.ClientSession, error) {
	if token != "" {
		tr = bearer{token, tr}
	}
	return mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil).
		Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: &http.Client{Transport: tr}}, nil)
}
