package ratelimit_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/policy/ratelimit"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const exampleLimits = `
limits:
  - name: per-user
    match: {user: "*"}
    rate: 10/s
    burst: 2
  - name: per-client
    match: {client: "*"}
    rate: 100/min
  - name: deletes
    match: {tool: "fs/delete_*"}
    per: [user]
    rate: 1/min
  - name: m2m-reports
    match: {client: "reporter", tool: "reports/*"}
    per: []
    rate: 3/h
`

func newLimiter(t *testing.T, cfg string, max int) (*ratelimit.Limiter, *clock) {
	t.Helper()
	c, err := ratelimit.ParseConfig([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l, err := ratelimit.NewLimiter(c, &ratelimit.Options{Now: clk.Now, MaxBuckets: max})
	if err != nil {
		t.Fatal(err)
	}
	return l, clk
}

func TestAllow(t *testing.T) {
	l, clk := newLimiter(t, exampleLimits, 0)
	alice := ratelimit.Key{User: "alice", Client: "app", Tool: "fs/read"}
	bob := ratelimit.Key{User: "bob", Client: "app", Tool: "fs/read"}

	// per-user: burst 2 at 10/s.
	for i := range 2 {
		if ok, _ := l.Allow(alice); !ok {
			t.Fatalf("alice request %d refused", i)
		}
	}
	ok, retry := l.Allow(alice)
	if ok || retry <= 0 || retry > 100*time.Millisecond {
		t.Fatalf("third alice request: ok %v retry %v, want refused with retry <= 100ms", ok, retry)
	}
	if ok, _ := l.Allow(bob); !ok {
		t.Fatal("bob limited by alice's bucket")
	}
	clk.Add(100 * time.Millisecond)
	if ok, _ := l.Allow(alice); !ok {
		t.Fatal("alice not refilled after 100ms")
	}

	// deletes: 1/min per user, on top of per-user.
	clk.Add(time.Second)
	del := ratelimit.Key{User: "alice", Client: "app", Tool: "fs/delete_file"}
	if ok, _ := l.Allow(del); !ok {
		t.Fatal("first delete refused")
	}
	ok, retry = l.Allow(del)
	if ok || retry < 59*time.Second || retry > time.Minute {
		t.Fatalf("second delete: ok %v retry %v, want refused ~1min", ok, retry)
	}
	if ok, _ := l.Allow(ratelimit.Key{User: "bob", Client: "app", Tool: "fs/delete_dir"}); !ok {
		t.Fatal("bob's delete refused by alice's bucket")
	}

	// m2m: shared bucket of 3 per hour, no user so per-user does not apply.
	rep := ratelimit.Key{Client: "reporter", Tool: "reports/weekly"}
	for i := range 3 {
		if ok, _ := l.Allow(rep); !ok {
			t.Fatalf("report %d refused", i)
		}
	}
	if ok, retry := l.Allow(ratelimit.Key{Client: "reporter", Tool: "reports/daily"}); ok || retry < 19*time.Minute {
		t.Fatalf("4th report: ok %v retry %v", ok, retry)
	}
	if ok, _ := l.Allow(ratelimit.Key{Client: "other", Tool: "reports/daily"}); !ok {
		t.Fatal("other client limited by reporter's rule")
	}
}

func TestDeniedRequestConsumesNothing(t *testing.T) {
	l, _ := newLimiter(t, `
limits:
  - {match: {user: "*"}, rate: 5/s, burst: 5}
  - {match: {tool: "x/*"}, rate: 1/min}
`, 0)
	k := ratelimit.Key{User: "u", Tool: "x/y"}
	if ok, _ := l.Allow(k); !ok {
		t.Fatal("first refused")
	}
	for range 3 {
		if ok, _ := l.Allow(k); ok {
			t.Fatal("tool bucket should be empty")
		}
	}
	// The user bucket lost only one token: four more non-tool requests pass.
	for i := range 4 {
		if ok, _ := l.Allow(ratelimit.Key{User: "u"}); !ok {
			t.Fatalf("user request %d refused: refused requests consumed tokens", i)
		}
	}
	if ok, _ := l.Allow(ratelimit.Key{User: "u"}); ok {
		t.Fatal("user bucket not empty after 5")
	}
}

func TestBoundedMemory(t *testing.T) {
	l, clk := newLimiter(t, `limits: [{match: {user: "*"}, rate: 1/s, burst: 1}]`, 100)
	for i := range 1000 {
		l.Allow(ratelimit.Key{User: fmt.Sprint("u", i)})
	}
	if n := l.Len(); n > 100 {
		t.Fatalf("%d buckets, bound 100", n)
	}
	// Idle buckets that are full again are dropped as traffic goes on.
	clk.Add(2 * time.Second)
	for range 100 {
		l.Allow(ratelimit.Key{User: "steady"})
		clk.Add(time.Second)
	}
	if n := l.Len(); n > 5 {
		t.Fatalf("%d buckets after idle period, want idle ones evicted", n)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ cfg, want string }{
		{`limits: [{match: {}, rate: "10"}]`, "want <count>/<unit>"},
		{`limits: [{match: {}, rate: "10/week"}]`, "unknown unit"},
		{`limits: [{match: {}, rate: "-1/s"}]`, "count must be"},
		{`limits: [{match: {}, rate: "NaN/s"}]`, "count must be"},
		{`limits: [{match: {}, rate: "1/s", burst: -1}]`, "burst"},
		{`limits: [{match: {}, rate: "1/s", per: [session]}]`, "unknown per dimension"},
		{`limits: [{match: {users: "*"}, rate: "1/s"}]`, "unknown field"},
		{`limits: [{match: {}, rate: "1/s", rate: "2/s"}]`, "already defined"},
		{`limits: {}`, ""},
	} {
		_, err := ratelimit.ParseConfig([]byte(tc.cfg))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseConfig(%s) = %v, want error containing %q", tc.cfg, err, tc.want)
		}
	}
	for _, tc := range []struct {
		rate string
		want float64
	}{{"10/s", 10}, {"120/min", 2}, {"3600/h", 1}, {"0.5/second", 0.5}, {"86400/day", 1}} {
		if got, err := ratelimit.ParseRate(tc.rate); err != nil || got != tc.want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", tc.rate, got, err, tc.want)
		}
	}
	// JSON is accepted too.
	if _, err := ratelimit.ParseConfig([]byte(`{"limits":[{"match":{"tool":"*"},"rate":"1/s"}]}`)); err != nil {
		t.Errorf("JSON config: %v", err)
	}
}

func TestConcurrent(t *testing.T) {
	c, _ := ratelimit.ParseConfig([]byte(`limits: [{match: {}, per: [], rate: 1/h, burst: 50}]`))
	l, _ := ratelimit.NewLimiter(c, nil)
	var mu sync.Mutex
	allowed := 0
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				if ok, _ := l.Allow(ratelimit.Key{User: fmt.Sprint(g, i)}); ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if allowed != 50 {
		t.Fatalf("allowed %d of 160 against a shared burst of 50", allowed)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(exampleLimits))
	f.Add([]byte(`{"limits":[{"match":{"tool":"*"},"rate":"1/s"}]}`))
	f.Add([]byte(`limits: [{match: {user: "a*b*c"}, rate: 0.1/s}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := ratelimit.ParseConfig(b)
		if err != nil {
			return
		}
		l, err := ratelimit.NewLimiter(cfg, &ratelimit.Options{MaxBuckets: 10})
		if err != nil {
			t.Fatalf("parsed config rejected by NewLimiter: %v", err)
		}
		l.Allow(ratelimit.Key{User: "u", Client: "c", Tool: "a/b"})
	})
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"10/s", "1e3/min", "0.0001/day", "/", "1/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ratelimit.ParseRate(s)
		if err == nil && (r <= 0 || r != r) {
			t.Fatalf("ParseRate(%q) = %v without error", s, r)
		}
	})
}

func BenchmarkAllow(b *testing.B) {
	c, _ := ratelimit.ParseConfig([]byte(exampleLimits))
	l, _ := ratelimit.NewLimiter(c, nil)
	k := ratelimit.Key{User: "alice", Client: "app", Tool: "fs/read"}
	b.ReportAllocs()
	for b.Loop() {
		l.Allow(k)
	}
}

func TestExampleFile(t *testing.T) {
	cfg, err := ratelimit.LoadConfig("../testdata/example/limits.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Limits) != 4 || cfg.Limits[2].Name != "deletes" {
		t.Fatalf("%+v", cfg)
	}
	if _, err := ratelimit.LoadConfig("../testdata/example/missing.yaml"); err == nil {
		t.Fatal("missing file accepted")
	}
}
