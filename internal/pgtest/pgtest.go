// Package pgtest starts a throwaway PostgreSQL server for tests, from the
// machine's own PostgreSQL binaries, and gives each test a fresh database
// on it.
//
// The server is made by initdb in a temporary directory and listens only
// on a Unix socket in that directory (listen_addresses is empty: nothing
// is exposed on the network). When the tests run as root the server runs
// as the "postgres" user, which owns the directory. One server is shared
// by every test of a package: the first call to URL starts it, and Main
// stops it and removes its directory when the package's tests end. Each
// call to URL creates a new, empty database with a unique name.
//
// The binaries are looked up on PATH and in /usr/lib/postgresql/*/bin
// (where Debian installs them). When none is found URL skips the test with
// a message saying how to get them, except when the environment variable
// CI is set: CI must run these tests, so the test fails instead.
//
// The server is for tests only: it trusts every local connection and runs
// with fsync off.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// StartTimeout bounds how long Start waits for initdb and for the server
// to accept connections.
const StartTimeout = 90 * time.Second

// stopTimeout bounds how long Stop waits for a fast shutdown before it
// kills the server.
const stopTimeout = 30 * time.Second

// ErrNoPostgres reports that no PostgreSQL server binaries were found.
var ErrNoPostgres = errors.New("pgtest: no PostgreSQL server binaries (initdb, postgres) on PATH or in /usr/lib/postgresql/*/bin; install them (Debian: apt-get install postgresql)")

// Server is a running throwaway PostgreSQL server.
type Server struct {
	dir  string // temporary directory: data/ and the socket
	bin  string // directory of the binaries
	cred *syscall.Credential
	user string // database superuser name

	mu     sync.Mutex // guards what follows; serialises CREATE DATABASE
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
	admin  *pgx.Conn
	next   atomic.Int64
}

// binDir returns the directory holding initdb and postgres.
func binDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Highest major version first.
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, dir := range dirs {
		_, e1 := os.Stat(filepath.Join(dir, "initdb"))
		_, e2 := os.Stat(filepath.Join(dir, "postgres"))
		if e1 == nil && e2 == nil {
			return dir, nil
		}
	}
	return "", ErrNoPostgres
}

// runAs is the credential the server runs with: nil to run as the
// current user, the "postgres" user when the current user is root
// (PostgreSQL refuses to run as root).
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root and there is no postgres user to run the server as: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("pgtest: postgres user has ids %q:%q", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

// Start initialises a cluster in a new temporary directory and starts a
// server on a Unix socket in it. It returns ErrNoPostgres when there are
// no binaries. The caller must Stop the server.
func Start(ctx context.Context) (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	cred, err := runAs()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	s := &Server{dir: dir, bin: bin, cred: cred, user: "postgres"}
	if err := s.initdb(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	s.mu.Lock()
	err = s.run(ctx)
	s.mu.Unlock()
	if err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// initdb makes the cluster in s.dir/data.
func (s *Server) initdb(ctx context.Context) error {
	if s.cred != nil {
		if err := os.Chown(s.dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return fmt.Errorf("pgtest: giving %s to the postgres user: %w", s.dir, err)
		}
	}
	initdb := exec.CommandContext(ctx, filepath.Join(s.bin, "initdb"), "-D", filepath.Join(s.dir, "data"), "-U", s.user,
		"--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	initdb.Env = append(os.Environ(), "LC_ALL=C")
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	return nil
}

// run starts the server process and waits until it accepts connections.
// s.mu is held.
func (s *Server) run(ctx context.Context) error {
	logPath := filepath.Join(s.dir, "server.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer logFile.Close()
	// The server is a child of the test process; if the test process dies
	// without stopping it, the kernel sends it SIGQUIT (immediate
	// shutdown), so no server outlives the tests.
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), "-D", filepath.Join(s.dir, "data"),
		"-k", s.dir, "-c", "listen_addresses=",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200", "-c", "shared_buffers=32MB")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: starting postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		conn, err := pgx.Connect(ctx, s.url("postgres"))
		if err == nil {
			s.admin = conn
			return nil
		}
		lastErr = err
		select {
		case <-exited:
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("pgtest: postgres exited during start-up: %v\n%s", cmd.ProcessState, log)
		case <-ctx.Done():
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("pgtest: postgres did not accept connections within %s: %v\n%s", StartTimeout, lastErr, log)
		case <-tick.C:
		}
	}
}

// halt shuts the server process down (fast shutdown, then a kill after
// 30 s). s.mu is held.
func (s *Server) halt() {
	if s.admin != nil {
		s.admin.Close(context.Background())
		s.admin = nil
	}
	if s.cmd == nil {
		return
	}
	select {
	case <-s.exited:
	default:
		s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.exited:
		case <-time.After(stopTimeout):
			syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.exited
		}
	}
	s.cmd = nil
}

// Restart shuts the server down (fast shutdown: every connection is
// cut) and starts it again on the same data; down, if not nil, runs
// while it is down. Clients see the server go away and come back, as
// after a crash or a restart of the service.
func (s *Server) Restart(ctx context.Context, down func()) error {
	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.halt()
	if down != nil {
		down()
	}
	return s.run(ctx)
}

// url returns the connection URL of database name.
func (s *Server) url(name string) string {
	q := url.Values{"host": {s.dir}, "user": {s.user}, "sslmode": {"disable"}}
	return (&url.URL{Scheme: "postgres", Path: "/" + name, RawQuery: q.Encode()}).String()
}

// NewDatabase creates an empty database with a unique name and returns
// its URL.
func (s *Server) NewDatabase(ctx context.Context) (string, error) {
	name := fmt.Sprintf("t%d_%d", os.Getpid(), s.next.Add(1))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.admin == nil {
		return "", errors.New("pgtest: server stopped")
	}
	if _, err := s.admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("pgtest: create database: %w", err)
	}
	return s.url(name), nil
}

// Dir returns the server's temporary directory (its data directory is
// Dir()/data, its log Dir()/server.log).
func (s *Server) Dir() string { return s.dir }

// Stop shuts the server down (fast shutdown, then a kill after 30 s) and
// removes its directory.
func (s *Server) Stop() error {
	s.mu.Lock()
	s.halt()
	s.mu.Unlock()
	return os.RemoveAll(s.dir)
}

// The server shared by the tests of a package.
var shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// URL returns the URL of a new, empty database on the package's shared
// server, starting the server on first use. Without PostgreSQL binaries
// it skips t, or fails it when the environment variable CI is set.
func URL(t testing.TB) string {
	t.Helper()
	shared.once.Do(func() {
		shared.srv, shared.err = Start(context.Background())
	})
	if shared.err != nil {
		if errors.Is(shared.err, ErrNoPostgres) && os.Getenv("CI") == "" {
			t.Skip(shared.err)
		}
		t.Fatal(shared.err)
	}
	u, err := shared.srv.NewDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// Main runs the package's tests (m.Run) and then stops the shared server
// if one was started. Call it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if shared.srv != nil {
		if err := shared.srv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
		}
	}
	os.Exit(code)
}
