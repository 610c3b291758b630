package configs

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/bench/internal/harness"
)

// BenchmarkProfile takes a CPU profile of one gateway configuration
// (MCPGATE_BENCH_CONFIG: stripped, the default, or oauth+policies) under
// the Configurations workload at MCPGATE_BENCH_SESSIONS sessions (default
// 16), through server.debug_listen, and writes it to MCPGATE_BENCH_PROFILE
// (default cpu-<config>.pprof in the working directory):
//
//	MCPGATE_BENCH_CONFIG=oauth+policies go test ./bench/configs -run '^$' -bench Profile -benchtime 1x
//	go tool pprof -top -cum cpu-oauth+policies.pprof
//
// The profile covers MCPGATE_BENCH_ARM (default 10s) of load.
func BenchmarkProfile(b *testing.B) {
	name := os.Getenv("MCPGATE_BENCH_CONFIG")
	if name == "" {
		name = "stripped"
	}
	sessions := 16
	if n, err := fmt.Sscan(os.Getenv("MCPGATE_BENCH_SESSIONS"), &sessions); n != 1 || err != nil {
		sessions = 16
	}
	d := 10 * time.Second
	if v, err := time.ParseDuration(os.Getenv("MCPGATE_BENCH_ARM")); err == nil && v > 0 {
		d = v
	}
	out := os.Getenv("MCPGATE_BENCH_PROFILE")
	if out == "" {
		out = "cpu-" + name + ".pprof"
	}
	oauth, policy := name == "oauth+policies", name == "oauth+policies"
	if name != "stripped" && !oauth {
		b.Fatalf("MCPGATE_BENCH_CONFIG=%q: want stripped or oauth+policies", name)
	}

	w := harness.NewWorld(b)
	port := w.StartRole(b, "echo")
	upstream := fmt.Sprintf("http://127.0.0.1:%d/mcp", port)
	gwPort := harness.FreePort(b)
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "listen: 127.0.0.1:%d\npublic_url: http://127.0.0.1:%[1]d\ndata_dir: %s\n", gwPort, filepath.Join(w.Dir, "gw"))
	if oauth {
		cfg.WriteString("auth: oauth\n")
	} else {
		cfg.WriteString("auth: none\n")
	}
	cfg.WriteString("audit:\n  disabled: true\n")
	if policy {
		polDir := filepath.Dir(w.WriteFile(b, "policies/bench.cedar", policies()))
		fmt.Fprintf(&cfg, "policy:\n  paths: [%s]\n  deny_by_default: true\n", polDir)
	}
	fmt.Fprintf(&cfg, "server:\n  startup_wait: 1ms\n  debug_listen: 127.0.0.1:%d\nupstreams:\n  - name: up\n    url: %s\n    prefix: \"\"\n",
		harness.FreePort(b), upstream)
	path := w.WriteFile(b, "gw.yaml", cfg.String())
	var secret string
	if oauth {
		secret = w.AddClient(b, path, "bench-0")
	}
	g := w.StartGateway(b, path, true)
	g.WaitReady(b)
	a := &arm{name: name, endpoint: g.Base + "/mcp", tool: "echo"}
	if oauth {
		a.tokens = []string{g.Token(b, "bench-0", secret)}
	}
	run(b, a, sessions, time.Second) // warm up: sessions, connections, caches

	var wg sync.WaitGroup
	var perr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		perr = fetchProfile(g.Debug, d, out)
	}()
	st := run(b, a, sessions, d)
	wg.Wait()
	if perr != nil {
		b.Fatal(perr)
	}
	b.Logf("%s, %d sessions: %.0f calls/s, p50 %s; profile in %s", name, sessions, st.perSecond, st.p50, out)
	b.ReportMetric(st.perSecond, "calls/s")
	b.ReportMetric(0, "ns/op")
}

// fetchProfile writes a CPU profile of d taken through base's pprof
// handler to out.
func fetchProfile(base string, d time.Duration, out string) error {
	resp, err := http.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, int(d.Seconds())))
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
