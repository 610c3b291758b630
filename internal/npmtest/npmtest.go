// Package npmtest installs pinned npm packages for tests that run real
// JavaScript MCP peers (the TypeScript SDK) under Node.js.
//
// A test folder (for example gateway/testdata/tsclient) holds a
// package.json whose dependencies are pinned to exact versions and the
// package-lock.json made from it. [Install] runs `npm ci` from those two
// files into a cache folder keyed by their SHA-256 hash, once: later runs,
// and other packages' tests with the same files, reuse it. Nothing is
// installed into the repository.
//
// [Require] finds node and npm. When they are missing, or node is older
// than [MinNodeMajor], the test is skipped with a message saying what to
// install, except when the environment variable CI is set: CI must run
// these tests, so the test fails instead.
//
// Environment:
//
//   - MCPGATE_NODE names the node binary (default: node on PATH); a node
//     named there that does not run, or is too old, fails the test.
//   - MCPGATE_TSCLIENT_CACHE is the cache root (default:
//     $XDG_CACHE_HOME/mcpgate-tsclient, see [os.UserCacheDir]).
//   - MCPGATE_SKIP_TSCLIENT, when set, skips every test that needs npm
//     (for machines where the npm registry is unreachable).
//
// Tests that use the package are skipped in -short mode.
package npmtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// MinNodeMajor is the oldest major version of Node.js the pinned packages
// run on.
const MinNodeMajor = 20

// InstallTimeout bounds one `npm ci`.
const InstallTimeout = 5 * time.Minute

// Environment variables the package reads.
const (
	EnvNode  = "MCPGATE_NODE"
	EnvCache = "MCPGATE_TSCLIENT_CACHE"
	EnvSkip  = "MCPGATE_SKIP_TSCLIENT"
)

const howTo = "install Node.js >= 20 with npm (CI has them; scripts/install-conformance.sh installs Node 22 and prints NODE_BIN, which MCPGATE_NODE may name)"

// Env is the Node.js toolchain a test runs with.
type Env struct {
	Node        string // the node binary
	NPM         string // the npm binary
	NodeVersion string // what node --version printed, for example v22.11.0
}

// Require returns the node and npm to use, or skips the test (fails it
// when CI is set) when they are missing or node is too old.
func Require(t testing.TB) *Env {
	t.Helper()
	if os.Getenv(EnvSkip) != "" {
		t.Skip(EnvSkip + " is set")
	}
	if testing.Short() {
		t.Skip("skipped in -short mode: it runs npm and Node")
	}
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("CI") != "" {
			t.Fatalf("%s; CI must run this test: %s", msg, howTo)
		}
		t.Skipf("%s: %s", msg, howTo)
	}
	named := os.Getenv(EnvNode)
	node := named
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
	major, version, err := nodeMajor(node)
	switch {
	case err != nil && named != "":
		t.Fatalf("%s=%s does not run: %v", EnvNode, node, err)
	case err != nil:
		missing("running %s --version: %v", node, err)
	case major < MinNodeMajor && named != "":
		t.Fatalf("%s=%s is node %s; the pinned packages need >= %d", EnvNode, node, version, MinNodeMajor)
	case major < MinNodeMajor:
		missing("node %s is too old (need >= %d)", version, MinNodeMajor)
	}
	return &Env{Node: node, NPM: npm, NodeVersion: version}
}

// nodeMajor returns the major version of the node binary and what
// node --version printed.
func nodeMajor(node string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, "--version").Output()
	if err != nil {
		return 0, "", err
	}
	v := strings.TrimSpace(string(out))
	major, _, _ := strings.Cut(strings.TrimPrefix(v, "v"), ".")
	n, err := strconv.Atoi(major)
	if err != nil {
		return 0, v, fmt.Errorf("node --version printed %q", v)
	}
	return n, v, nil
}

// CacheRoot returns the folder installations are kept in.
func CacheRoot() (string, error) {
	if root := os.Getenv(EnvCache); root != "" {
		return root, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache folder (set %s): %w", EnvCache, err)
	}
	return filepath.Join(cache, "mcpgate-tsclient"), nil
}

// packageJSON is what Install reads of a package.json.
type packageJSON struct {
	Version      string            `json:"version"`
	Dependencies map[string]string `json:"dependencies"`
}

// Install installs the packages of srcDir's package.json and
// package-lock.json (`npm ci`, no scripts run) into the cache folder
// <root>/<base name of srcDir>-<hash of the two files>, unless it is
// there already, and returns that folder; its node_modules holds the
// packages. Every dependency must be pinned to an exact version, and
// Install checks that the installed packages have those versions.
// Concurrent installs (two test binaries at once) each work in a
// staging folder; the first rename wins and the others use its copy.
func (e *Env) Install(t testing.TB, srcDir string) string {
	t.Helper()
	pkgData, err := os.ReadFile(filepath.Join(srcDir, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	lock, err := os.ReadFile(filepath.Join(srcDir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pkg packageJSON
	if err := json.Unmarshal(pkgData, &pkg); err != nil {
		t.Fatalf("%s/package.json: %v", srcDir, err)
	}
	if len(pkg.Dependencies) == 0 {
		t.Fatalf("%s/package.json has no dependencies", srcDir)
	}
	for name, v := range pkg.Dependencies {
		if v == "" || strings.ContainsAny(v, "^~<>=* |") {
			t.Fatalf("%s/package.json must pin %s to an exact version, has %q", srcDir, name, v)
		}
	}
	h := sha256.New()
	h.Write(pkgData)
	h.Write([]byte{0})
	h.Write(lock)
	root, err := CacheRoot()
	if err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(srcDir)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, filepath.Base(abs)+"-"+hex.EncodeToString(h.Sum(nil))[:16])
	if installedVersions(dir, pkg.Dependencies) == nil {
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
	for name, data := range map[string][]byte{"package.json": pkgData, "package-lock.json": lock} {
		if err := os.WriteFile(filepath.Join(stage, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), InstallTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.NPM, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error")
	cmd.Dir = stage
	cmd.WaitDelay = 5 * time.Second
	t.Logf("npm ci %s into %s", srcDir, dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s\n(set %s=1 to skip the npm tests where the npm registry is unreachable)", stage, err, out, EnvSkip)
	}
	if err := installedVersions(stage, pkg.Dependencies); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(stage, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(stage, dir); err != nil {
		if installedVersions(dir, pkg.Dependencies) != nil {
			t.Fatalf("installing into %s: %v", dir, err)
		}
		// Another run finished first; use its copy.
	}
	return dir
}

// installedVersions reports whether dir's node_modules holds every
// dependency at its pinned version.
func installedVersions(dir string, deps map[string]string) error {
	for name, want := range deps {
		data, err := os.ReadFile(filepath.Join(dir, "node_modules", filepath.FromSlash(name), "package.json"))
		if err != nil {
			return err
		}
		var pkg packageJSON
		if err := json.Unmarshal(data, &pkg); err != nil {
			return fmt.Errorf("%s's package.json: %w", name, err)
		}
		if pkg.Version != want {
			return fmt.Errorf("installed %s %s, pinned %s", name, pkg.Version, want)
		}
	}
	return nil
}

// Workdir makes a scratch folder for running scripts against an
// installation made by Install: an ES-module package.json, a symbolic
// link to installDir's node_modules, and a copy of each named file (so
// that concurrent tests never write into the shared cache). It returns
// the folder, removed when the test ends.
func Workdir(t testing.TB, installDir string, files ...string) string {
	t.Helper()
	work := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, "package.json"), []byte(`{"type":"module","private":true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(installDir, "node_modules"), filepath.Join(work, "node_modules")); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, filepath.Base(f)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return work
}

// Version returns the version of the installed package name.
func Version(t testing.TB, installDir, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(installDir, "node_modules", filepath.FromSlash(name), "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pkg packageJSON
	if err := json.Unmarshal(bytes.TrimSpace(data), &pkg); err != nil {
		t.Fatal(err)
	}
	return pkg.Version
}

// StartTimeout bounds how long StartServer waits for a server to print
// its port.
const StartTimeout = 60 * time.Second

// StartServer starts cmd, a test server that listens on 127.0.0.1, prints
// "LISTENING <port>" on its standard output and exits when its standard
// input closes, and returns its http://127.0.0.1:<port>/mcp endpoint.
// The server is stopped when the test ends (killed if it has not exited
// 10 s after its input closed). what names it in failures. It is not
// specific to Node: the mcp-go test servers follow the same protocol.
func StartServer(t testing.TB, cmd *exec.Cmd, what string) string {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the %s: %v", what, err)
	}
	t.Cleanup(func() {
		stdin.Close() // the server exits when its input closes
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	port := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), "LISTENING "); ok && !sent {
				port <- p
				sent = true
			}
		}
		if !sent {
			close(port)
		}
	}()
	select {
	case p, ok := <-port:
		if !ok {
			t.Fatalf("the %s exited before listening", what)
		}
		return "http://127.0.0.1:" + strings.TrimSpace(p) + "/mcp"
	case <-time.After(StartTimeout):
		t.Fatalf("the %s did not start within %v", what, StartTimeout)
	}
	return ""
}

// LogWriter is an io.Writer that logs each write through t.Logf with a
// prefix, for a peer's standard error.
type LogWriter struct {
	T      testing.TB
	Prefix string
}

func (w *LogWriter) Write(p []byte) (int, error) {
	w.T.Logf("%s: %s", w.Prefix, strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
