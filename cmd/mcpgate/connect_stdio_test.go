package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

// tsStdioDir holds the Node host of TestConnectTypeScriptStdioClient.
const tsStdioDir = "testdata/tsstdio"

// Environment of the test "browser" (TestConnectBrowserHelper): who signs
// in, and the file where it reports what it did.
const (
	browserUserEnv     = "MCPGATE_TEST_BROWSER_USER"
	browserPasswordEnv = "MCPGATE_TEST_BROWSER_PASSWORD"
	browserLogEnv      = "MCPGATE_TEST_BROWSER_LOG"
)

// tsStdioSummary is what stdio.mjs prints.
type tsStdioSummary struct {
	ServerName string   `json:"serverName"`
	Tools      []string `json:"tools"`
	Call       *struct {
		Text    string `json:"text"`
		IsError bool   `json:"isError"`
	} `json:"call"`
	Stderr          string   `json:"stderr"`
	TransportErrors []string `json:"transportErrors"`
	Errors          []string `json:"errors"`
}

// TestConnectTypeScriptStdioClient is point 3 of issue 15: a real stdio
// client, the TypeScript SDK's StdioClientTransport (npm
// @modelcontextprotocol/sdk, pinned in testdata/tsstdio), starts the
// built mcpgate binary as "mcpgate connect URL" and lists and calls tools
// through a separate "mcpgate serve" process with the built-in OAuth
// authorization server, policies and the audit log on. The sign-in
// happens in the "browser" that $BROWSER names: a test helper that posts
// the authorization server's login and consent forms as the user alice
// and follows the redirect to connect's loopback listener. The call is in
// the audit log as alice's. A second run, with a $BROWSER that fails and
// records that it was started, uses the token stored in the 0600 token
// file (there is no keyring support: the file is what is tested). The
// transport reports any line of connect's standard output that is not a
// JSON-RPC message; there are none, and connect's logs are on its
// standard error.
func TestConnectTypeScriptStdioClient(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: it builds mcpgate and runs npm and Node")
	}
	node, npm := nodeAndNPM(t)
	modules := installTSStdio(t, npm)
	bin := buildMcpgate(t)

	// The upstream, in this process: one tool that greets.
	up := mcp.NewServer(&mcp.Implementation{Name: "up", Version: "1"}, nil)
	up.AddTool(&mcp.Tool{Name: "greet", Description: "Greets someone.",
		InputSchema: jsontext.Value(`{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}`)},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var args struct {
				Name string `json:"name"`
			}
			if err := json.Unmarshal(req.Params.Arguments, &args); err != nil {
				return nil, err
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "hello, " + args.Name}}}, nil
		})
	upSrv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up }, nil))
	t.Cleanup(upSrv.Close)

	// The gateway: OAuth, a policy that lets staff call tools (and
	// nothing else allowed), the audit log on (the default).
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	policies := filepath.Join(dir, "policies")
	if err := os.MkdirAll(policies, 0o700); err != nil {
		t.Fatal(err)
	}
	writeAt(t, filepath.Join(policies, "staff.cedar"), `@id("staff-tools")
permit(principal, action in Action::"tools", resource in Upstream::"up")
when { principal.groups.contains("staff") };
`)
	addr := freeLoopbackAddr(t)
	base := "http://" + addr
	cfg := filepath.Join(dir, "gateway.yaml")
	writeAt(t, cfg, fmt.Sprintf(`listen: %s
public_url: %s
auth: oauth
data_dir: %s
policy:
  paths: [policies]
  deny_by_default: true
upstreams:
  - name: up
    url: %s
`, addr, base, dataDir, upSrv.URL))
	runBinary(t, bin, "alice-password-0123\n", "--config", cfg, "user", "add", "alice", "--group", "staff", "--password-stdin")
	gwLog := startGatewayProcess(t, bin, cfg, base)

	// The host's environment: the token file under XDG_CONFIG_HOME, the
	// browser a script that runs the test helper.
	config := filepath.Join(dir, "config")
	browserLog := filepath.Join(dir, "browser.log")
	signIn := filepath.Join(dir, "sign-in-browser")
	writeScript(t, signIn, fmt.Sprintf("#!/bin/sh\n%s=alice %s=alice-password-0123 %s=%s exec %s -test.run='^TestConnectBrowserHelper$' \"$1\"\n",
		browserUserEnv, browserPasswordEnv, browserLogEnv, shellQuote(browserLog), shellQuote(os.Args[0])))
	endpoint := base + "/mcp"
	const args = `{"name":"Ada"}`

	first := runStdioHost(t, node, modules, bin, endpoint, "up_greet", args, signIn, config)
	t.Logf("first run: tools %v, call %+v", first.Tools, first.Call)
	t.Logf("first run, connect's stderr:\n%s", first.Stderr)
	checkStdioRun(t, "first run", first, endpoint)
	log, _ := os.ReadFile(browserLog)
	t.Logf("the browser: %s", log)
	if !strings.Contains(string(log), "signed in as alice and allowed access; redirected to the loopback listener") {
		t.Errorf("the browser did not complete the sign-in: %s", log)
	}
	if !strings.Contains(first.Stderr, "sign in to "+endpoint) {
		t.Errorf("connect's stderr does not show the sign-in address:\n%s", first.Stderr)
	}

	// The token file: where the documentation says, 0600, in a 0700
	// folder.
	tokenFile := filepath.Join(config, "mcpgate", "tokens", strings.ReplaceAll(addr, ":", "_")+".json")
	fi, err := os.Stat(tokenFile)
	if err != nil {
		t.Fatalf("token file: %v", err)
	}
	di, err := os.Stat(filepath.Dir(tokenFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("token file %s: mode %v, folder mode %v", tokenFile, fi.Mode().Perm(), di.Mode().Perm())
	if fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
		t.Errorf("token file mode %v in a folder of mode %v, want 0600 and 0700", fi.Mode().Perm(), di.Mode().Perm())
	}

	// The call is alice's in the audit log, decided by the policy.
	decided, completed := waitForAuditedCall(t, dataDir, "up", "greet")
	for _, r := range []*store.AuditRecord{decided, completed} {
		t.Logf("audit record #%d: user %s, client %s, %s %s/%s, %s, decision %q by %v (policy version %.12s), outcome %q",
			r.Seq, r.User, r.Client, r.Action, r.Upstream, r.Target, r.Phase, r.Decision, r.Policies, r.PolicyVersion, r.Outcome)
		if r.User != "alice" || !strings.HasPrefix(r.Client, "dyn-") {
			t.Errorf("audit record #%d of the call: user %q, client %q; want alice and her dynamically registered client", r.Seq, r.User, r.Client)
		}
	}
	if decided.Decision != audit.DecisionAllow || !slices.Contains(decided.Policies, "staff-tools") || decided.PolicyVersion == "" {
		t.Errorf("the call's decision: %q by %v (version %q); want allow by staff-tools", decided.Decision, decided.Policies, decided.PolicyVersion)
	}
	if completed.Outcome != audit.OutcomeOK || completed.ResultDigest == "" {
		t.Errorf("the call's completion: outcome %q, result digest %q", completed.Outcome, completed.ResultDigest)
	}

	// The second run: a browser that fails, and is never needed.
	started := filepath.Join(dir, "failing-browser-started")
	failing := filepath.Join(dir, "failing-browser")
	writeScript(t, failing, fmt.Sprintf("#!/bin/sh\necho \"$1\" >> %s\nexit 1\n", shellQuote(started)))
	second := runStdioHost(t, node, modules, bin, endpoint, "up_greet", args, failing, config)
	t.Logf("second run: tools %v, call %+v", second.Tools, second.Call)
	t.Logf("second run, connect's stderr:\n%s", second.Stderr)
	checkStdioRun(t, "second run", second, endpoint)
	if _, err := os.Stat(started); err == nil {
		t.Errorf("the second run started the browser: a sign-in although a token was stored")
	}
	if strings.Contains(second.Stderr, "sign in to") {
		t.Errorf("the second run asked for a sign-in:\n%s", second.Stderr)
	}
	if t.Failed() {
		t.Logf("gateway log:\n%s", gwLog)
	}
}

// checkStdioRun checks one run of stdio.mjs: the tool list, the call's
// result, and nothing but JSON-RPC on connect's standard output.
func checkStdioRun(t *testing.T, what string, s *tsStdioSummary, endpoint string) {
	t.Helper()
	if len(s.Errors) > 0 {
		t.Errorf("%s: the TypeScript client failed: %s", what, strings.Join(s.Errors, "\n"))
	}
	if len(s.TransportErrors) > 0 {
		t.Errorf("%s: the stdio transport reported errors (a line of connect's stdout that is not JSON-RPC?): %q", what, s.TransportErrors)
	}
	if !slices.Equal(s.Tools, []string{"up_greet"}) {
		t.Errorf("%s: tools/list = %v, want [up_greet]", what, s.Tools)
	}
	if s.Call == nil || s.Call.IsError || s.Call.Text != "hello, Ada" {
		t.Errorf("%s: tools/call up_greet = %+v, want the text %q", what, s.Call, "hello, Ada")
	}
}

// TestConnectBrowserHelper is not a test: it is the browser of
// TestConnectTypeScriptStdioClient ($BROWSER runs the test binary with
// the authorization URL as its argument). It signs in on the
// authorization server's login page, allows access on the consent page,
// and follows the redirect to the loopback listener of mcpgate connect;
// it writes what it did, or what went wrong, to the log file.
func TestConnectBrowserHelper(t *testing.T) {
	logFile := os.Getenv(browserLogEnv)
	if logFile == "" {
		t.Skip("the browser of TestConnectTypeScriptStdioClient")
	}
	msg := "signed in as " + os.Getenv(browserUserEnv) + " and allowed access; redirected to the loopback listener"
	code := 0
	if err := followSignIn(flag.Arg(0), os.Getenv(browserUserEnv), os.Getenv(browserPasswordEnv)); err != nil {
		msg, code = "sign-in failed: "+err.Error(), 1
	}
	f, err := os.OpenFile(logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err == nil {
		fmt.Fprintln(f, msg)
		f.Close()
	}
	os.Exit(code)
}

var (
	postFormRe = regexp.MustCompile(`<form method="post" action="([^"]*)"`)
	hiddenRe   = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)
)

// followSignIn is what a person does in the browser: open the
// authorization URL, sign in, allow, land on the loopback listener.
func followSignIn(authURL, user, password string) error {
	if authURL == "" {
		return errors.New("no URL argument")
	}
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, page, err := browse(hc, http.MethodGet, authURL, nil)
	if err != nil {
		return err
	}
	if !strings.Contains(page, `name="password"`) {
		return fmt.Errorf("no login form at %s (HTTP %d): %.300s", resp.Request.URL.Redacted(), resp.StatusCode, page)
	}
	if resp, page, err = submit(hc, resp, page, url.Values{"username": {user}, "password": {password}}); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	if !strings.Contains(page, "Allow access?") {
		return fmt.Errorf("no consent page after the login (HTTP %d): %.300s", resp.StatusCode, page)
	}
	if resp, page, err = submit(hc, resp, page, url.Values{"action": {"approve"}}); err != nil {
		return fmt.Errorf("consent: %w", err)
	}
	if h := resp.Request.URL.Hostname(); resp.StatusCode != http.StatusOK || h != "127.0.0.1" || !strings.Contains(page, "Authorization complete") {
		return fmt.Errorf("after the consent: HTTP %d at %s: %.300s", resp.StatusCode, resp.Request.URL.Redacted(), page)
	}
	return nil
}

// submit posts the page's post form with its hidden fields and extra.
func submit(hc *http.Client, resp *http.Response, page string, extra url.Values) (*http.Response, string, error) {
	m := postFormRe.FindStringSubmatch(page)
	if m == nil {
		return nil, "", fmt.Errorf("no post form at %s", resp.Request.URL.Redacted())
	}
	action, err := resp.Request.URL.Parse(html.UnescapeString(m[1]))
	if err != nil {
		return nil, "", err
	}
	form := url.Values{}
	for _, h := range hiddenRe.FindAllStringSubmatch(page, -1) {
		form.Set(h[1], html.UnescapeString(h[2]))
	}
	for k, v := range extra {
		form[k] = v
	}
	return browse(hc, http.MethodPost, action.String(), form)
}

// browse makes one request (following redirects) and reads the page.
func browse(hc *http.Client, method, u string, form url.Values) (*http.Response, string, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return nil, "", err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	page, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, string(page), err
}

// runStdioHost runs stdio.mjs once with BROWSER=browser and
// XDG_CONFIG_HOME=config and returns its summary.
func runStdioHost(t *testing.T, node, modules, bin, endpoint, tool, args, browser, config string) *tsStdioSummary {
	t.Helper()
	work := t.TempDir()
	script, err := os.ReadFile(filepath.Join(tsStdioDir, "stdio.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	writeAt(t, filepath.Join(work, "stdio.mjs"), string(script))
	if err := os.Symlink(filepath.Join(modules, "node_modules"), filepath.Join(work, "node_modules")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "stdio.mjs", bin, endpoint, tool, args)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "BROWSER="+browser, "XDG_CONFIG_HOME="+config)
	cmd.WaitDelay = 5 * time.Second
	var stderr syncBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node stdio.mjs: %v\nstdout: %s\nstderr: %s", err, out, stderr.String())
	}
	var s tsStdioSummary
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatalf("stdio.mjs summary: %v\n%s\nstderr: %s", err, out, stderr.String())
	}
	return &s
}

// waitForAuditedCall returns the audit records of the tools/call of
// upstream's tool, decided and completed (read from the database while
// the gateway runs; the completed record may come a moment later).
func waitForAuditedCall(t *testing.T, dataDir, upstream, tool string) (decided, completed *store.AuditRecord) {
	t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		db, err := sqlite.Open(ctx, datadir.Database(dataDir))
		if err != nil {
			t.Fatal(err)
		}
		var calls []string
		for r, err := range db.ReadAudit(ctx, 1) {
			if err != nil {
				db.Close()
				t.Fatal(err)
			}
			if r.Action != "tools/call" {
				continue
			}
			calls = append(calls, fmt.Sprintf("%s/%s %s %s", r.Upstream, r.Target, r.Phase, r.Outcome))
			if r.Upstream == upstream && r.Target == tool {
				switch r.Phase {
				case "decided":
					decided = r
				case "completed":
					completed = r
				}
			}
		}
		db.Close()
		if decided != nil && completed != nil {
			return decided, completed
		}
		if time.Now().After(deadline) {
			t.Fatalf("no decided and completed tools/call of %s/%s in the audit log within 60 s; tools/call records: %q", upstream, tool, calls)
		}
	}
}

// nodeAndNPM returns node (>= 20) and npm, or skips the test where they
// are missing, except in CI (env CI set), where that fails it.
func nodeAndNPM(t *testing.T) (node, npm string) {
	t.Helper()
	const howTo = "install Node.js >= 20 with npm (CI has them; MCPGATE_NODE may name another node binary)"
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...) + ": " + howTo
		if os.Getenv("CI") != "" {
			t.Fatal(msg + " (CI is set: this test must run)")
		}
		t.Skip(msg)
	}
	node = os.Getenv("MCPGATE_NODE")
	if node == "" {
		var err error
		if node, err = exec.LookPath("node"); err != nil {
			missing("node not found")
		}
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		missing("npm not found")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, "--version").Output()
	if err != nil {
		missing("running %s --version: %v", node, err)
	}
	v := strings.TrimSpace(string(out))
	major, _, _ := strings.Cut(strings.TrimPrefix(v, "v"), ".")
	if n, err := strconv.Atoi(major); err != nil || n < 20 {
		missing("node %s is too old for the TypeScript SDK", v)
	}
	return node, npm
}

// installTSStdio installs the pinned TypeScript SDK (npm ci from the
// committed lock of testdata/tsstdio) into a cache folder keyed by the
// hash of package.json and package-lock.json, once, and returns that
// folder ($MCPGATE_TSCLIENT_CACHE, default <user cache dir>/mcpgate-tsclient,
// shared with the gateway's interop tests). Concurrent runs each install
// into a staging folder and the first rename wins.
func installTSStdio(t *testing.T, npm string) string {
	t.Helper()
	pkg, err := os.ReadFile(filepath.Join(tsStdioDir, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	lock, err := os.ReadFile(filepath.Join(tsStdioDir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	h.Write(pkg)
	h.Write([]byte{0})
	h.Write(lock)
	key := hex.EncodeToString(h.Sum(nil))[:16]
	root := os.Getenv("MCPGATE_TSCLIENT_CACHE")
	if root == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			t.Fatalf("no cache folder for the TypeScript SDK (set MCPGATE_TSCLIENT_CACHE): %v", err)
		}
		root = filepath.Join(cache, "mcpgate-tsclient")
	}
	dir := filepath.Join(root, key)
	marker := filepath.Join(dir, "node_modules", "@modelcontextprotocol", "sdk", "package.json")
	if _, err := os.Stat(marker); err == nil {
		return dir
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	stage, err := os.MkdirTemp(root, ".stage-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(stage) // a no-op once renamed
	writeAt(t, filepath.Join(stage, "package.json"), string(pkg))
	writeAt(t, filepath.Join(stage, "package-lock.json"), string(lock))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error")
	cmd.Dir = stage
	cmd.WaitDelay = 5 * time.Second
	t.Logf("installing the TypeScript SDK into %s", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", stage, err, out)
	}
	if err := os.Chmod(stage, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(stage, dir); err != nil {
		if _, statErr := os.Stat(marker); statErr != nil {
			t.Fatalf("installing into %s: %v", dir, err)
		}
	}
	return dir
}

// buildMcpgate builds this program into a temporary folder.
func buildMcpgate(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mcpgate")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runBinary runs the built mcpgate with stdin and fails the test unless
// it succeeds.
func runBinary(t *testing.T, bin, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mcpgate %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// startGatewayProcess runs "mcpgate serve --config cfg" as a separate
// process until the test ends and waits until base/readyz answers 200.
// It returns the process's log.
func startGatewayProcess(t *testing.T, bin, cfg, base string) *syncBuffer {
	t.Helper()
	log := &syncBuffer{}
	cmd := exec.Command(bin, "serve", "--config", cfg)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return log
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway did not become ready within 60 s: %v\n%s", err, log)
		}
	}
}

// freeLoopbackAddr returns a loopback address with a port that was free.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// writeAt writes the file name (mode 0600).
func writeAt(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeScript writes an executable shell script.
func writeScript(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o700); err != nil {
		t.Fatal(err)
	}
}
