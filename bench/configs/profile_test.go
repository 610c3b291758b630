package configs

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/bench/internal/harness"
)

// BenchmarkProfile takes a CPU profile of one gateway configuration
// (MCPGATE_BENCH_CONFIG: stripped, the default, or default,
// oauth+policies, full) under the Configurations workload at
// MCPGATE_BENCH_SESSIONS sessions (default 16; the first number of the
// list), through server.debug_listen, and writes it to
// MCPGATE_BENCH_PROFILE (default cpu-<config>.pprof in the working
// directory):
//
//	MCPGATE_BENCH_CONFIG=oauth+policies go test ./bench/configs -run '^$' -bench Profile -benchtime 1x
//	go tool pprof -top -cum cpu-oauth+policies.pprof
//	go tool pprof -sample_index alloc_space -top cpu-oauth+policies.pprof.allocs
//
// The profile covers MCPGATE_BENCH_ARM (default 10s) of load.
func BenchmarkProfile(b *testing.B) {
	name := os.Getenv("MCPGATE_BENCH_CONFIG")
	if name == "" {
		name = "stripped"
	}
	sessions := 16 // the first of MCPGATE_BENCH_SESSIONS, if set
	if v := os.Getenv("MCPGATE_BENCH_SESSIONS"); v != "" {
		first, _, _ := strings.Cut(v, ",")
		n, err := strconv.Atoi(strings.TrimSpace(first))
		if err != nil || n <= 0 {
			b.Fatalf("MCPGATE_BENCH_SESSIONS=%q", v)
		}
		sessions = n
	}
	d := 10 * time.Second
	if v, err := time.ParseDuration(os.Getenv("MCPGATE_BENCH_ARM")); err == nil && v > 0 {
		d = v
	}
	out := os.Getenv("MCPGATE_BENCH_PROFILE")
	if out == "" {
		out = "cpu-" + name + ".pprof"
	}
	w := harness.NewWorld(b)
	port := w.StartRole(b, "echo")
	a, g := gatewayArm(b, w, w.Bin, name, name, fmt.Sprintf("http://127.0.0.1:%d/mcp", port), true)
	run(b, a, sessions, time.Second) // warm up: sessions, connections, caches

	var wg sync.WaitGroup
	var perr, aerr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		perr = fetchProfile(g.Debug+"/debug/pprof/profile", d, out)
	}()
	go func() {
		defer wg.Done()
		aerr = fetchProfile(g.Debug+"/debug/pprof/allocs", d, out+".allocs")
	}()
	st := run(b, a, sessions, d)
	wg.Wait()
	if perr != nil || aerr != nil {
		b.Fatal(perr, aerr)
	}
	b.Logf("%s, %d sessions: %.0f calls/s, p50 %s, gateway peak RSS %d MiB; profile in %s",
		name, sessions, st.perSecond, st.p50, g.PeakRSS()>>20, out)
	b.ReportMetric(st.perSecond, "calls/s")
	b.ReportMetric(0, "ns/op")
}

// fetchProfile writes the profile of d that a pprof handler (url) takes
// to out.
func fetchProfile(url string, d time.Duration, out string) error {
	resp, err := http.Get(fmt.Sprintf("%s?seconds=%d", url, int(d.Seconds())))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile: HTTP %d", resp.StatusCode)
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
