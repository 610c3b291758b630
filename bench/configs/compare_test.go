package configs

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/bench/internal/harness"
)

// gatewayArm starts `mcpgate serve` (the binary bin) in one of the
// configurations of BenchmarkConfigurations (stripped, default,
// oauth+policies, full) in front of upstream, and returns its arm named
// name. debug adds server.debug_listen; the gateway's profiles are then
// at the returned Gateway's Debug URL.
func gatewayArm(b *testing.B, w *harness.World, bin, name, config, upstream string, debug bool) (*arm, *harness.Gateway) {
	b.Helper()
	oauth := config == "oauth+policies" || config == "full"
	audit := config == "default" || config == "full"
	if !oauth && !audit && config != "stripped" {
		b.Fatalf("unknown configuration %q", config)
	}
	saved := w.Bin
	w.Bin = bin
	defer func() { w.Bin = saved }()
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "listen: 127.0.0.1:%d\npublic_url: http://127.0.0.1:%[1]d\ndata_dir: %s\n", harness.FreePort(b), filepath.Join(w.Dir, name))
	if oauth {
		polDir := filepath.Dir(w.WriteFile(b, "policies-"+name+"/bench.cedar", policies()))
		fmt.Fprintf(&cfg, "auth: oauth\npolicy:\n  paths: [%s]\n  deny_by_default: true\n", polDir)
	} else {
		cfg.WriteString("auth: none\n")
	}
	if !audit {
		cfg.WriteString("audit:\n  disabled: true\n")
	}
	cfg.WriteString("server:\n  startup_wait: 1ms\n")
	if debug {
		fmt.Fprintf(&cfg, "  debug_listen: 127.0.0.1:%d\n", harness.FreePort(b))
	}
	fmt.Fprintf(&cfg, "upstreams:\n  - name: up\n    url: %s\n    prefix: \"\"\n", upstream)
	path := w.WriteFile(b, name+".yaml", cfg.String())
	var secrets []string
	if oauth {
		for i := range 2 {
			secrets = append(secrets, w.AddClient(b, path, fmt.Sprintf("bench-%d", i)))
		}
	}
	g := w.StartGateway(b, path, debug)
	g.WaitReady(b)
	a := &arm{name: name, endpoint: g.Base + "/mcp", tool: "echo"}
	for i, s := range secrets {
		a.tokens = append(a.tokens, g.Token(b, fmt.Sprintf("bench-%d", i), s))
	}
	return a, g
}

// BenchmarkCompare measures two builds of mcpgate side by side: the
// binary MCPGATE_BENCH_BASELINE (built from an earlier commit) and this
// tree, in the stripped and oauth+policies configurations (or those
// MCPGATE_BENCH_CONFIGS lists, comma-separated), with the Configurations
// workload, arms rotated from round to round, so that a busy machine
// slows both alike. It prints each arm against direct and each build
// against the baseline, per round (medians):
//
//	go build -o /tmp/mcpgate-base ./cmd/mcpgate   # at the earlier commit
//	MCPGATE_BENCH_BASELINE=/tmp/mcpgate-base go test ./bench/configs -run '^$' -bench Compare -benchtime 1x -timeout 30m -v
//
// MCPGATE_BENCH_ROUNDS (default 3), MCPGATE_BENCH_ARM (default 3s) and
// MCPGATE_BENCH_SESSIONS (default 1,16,64) change the run;
// MCPGATE_BENCH_NEW_ENV (NAME=value pairs, comma-separated) is set in the
// environment of the new build's gateways only (GOMAXPROCS=1, say).
func BenchmarkCompare(b *testing.B) {
	base := os.Getenv("MCPGATE_BENCH_BASELINE")
	if base == "" {
		b.Skip("MCPGATE_BENCH_BASELINE names no baseline mcpgate binary")
	}
	rounds := 3
	if n, err := strconv.Atoi(os.Getenv("MCPGATE_BENCH_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	armTime := 3 * time.Second
	if d, err := time.ParseDuration(os.Getenv("MCPGATE_BENCH_ARM")); err == nil && d > 0 {
		armTime = d
	}
	sessionCounts := []int{1, 16, 64}
	if v := os.Getenv("MCPGATE_BENCH_SESSIONS"); v != "" {
		sessionCounts = nil
		for f := range strings.SplitSeq(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				b.Fatalf("MCPGATE_BENCH_SESSIONS=%q", v)
			}
			sessionCounts = append(sessionCounts, n)
		}
	}
	configs := []string{"stripped", "oauth+policies"}
	if v := os.Getenv("MCPGATE_BENCH_CONFIGS"); v != "" {
		configs = strings.Split(v, ",")
	}

	w := harness.NewWorld(b)
	port := w.StartRole(b, "echo")
	upstream := fmt.Sprintf("http://127.0.0.1:%d/mcp", port)
	arms := []*arm{{name: "direct", endpoint: upstream, tool: "echo"}}
	for _, c := range configs {
		a, _ := gatewayArm(b, w, base, c+"@base", c, upstream, false)
		arms = append(arms, a)
		newEnv(b, func() { a, _ = gatewayArm(b, w, w.Bin, c+"@new", c, upstream, false) })
		arms = append(arms, a)
	}

	for _, sessions := range sessionCounts {
		rps := map[string][]float64{}
		p50 := map[string][]time.Duration{}
		for r := range rounds {
			harness.Progress("%d sessions, round %d of %d", sessions, r+1, rounds)
			order := append(arms[r%len(arms):], arms[:r%len(arms)]...)
			for _, a := range order {
				st := run(b, a, sessions, armTime)
				rps[a.name] = append(rps[a.name], st.perSecond)
				p50[a.name] = append(p50[a.name], st.p50)
			}
		}
		b.Logf("%d sessions, %d rounds of %s per arm:", sessions, rounds, armTime)
		b.Logf("| arm | calls/s (rounds) | vs direct (median) | p50 (median) | added p50 (median) | vs base (median) |")
		for _, a := range arms {
			var ratios, vsBase []float64
			var added []time.Duration
			baseName := strings.Replace(a.name, "@new", "@base", 1)
			for r := range rounds {
				ratios = append(ratios, rps[a.name][r]/rps["direct"][r])
				added = append(added, p50[a.name][r]-p50["direct"][r])
				vsBase = append(vsBase, rps[a.name][r]/rps[baseName][r])
			}
			var each []string
			for _, v := range rps[a.name] {
				each = append(each, strconv.Itoa(int(v)))
			}
			b.Logf("| %s | %s | %.2f× | %s | %s | %.2f× |", a.name, strings.Join(each, " / "), median(ratios),
				medianDur(p50[a.name]).Round(time.Microsecond), medianDur(added).Round(time.Microsecond), median(vsBase))
		}
	}
	b.ReportMetric(0, "ns/op")
}

// newEnv runs start with MCPGATE_BENCH_NEW_ENV's variables set in the
// environment (which the processes it starts inherit), then restores it.
func newEnv(b *testing.B, start func()) {
	v := os.Getenv("MCPGATE_BENCH_NEW_ENV")
	if v == "" {
		start()
		return
	}
	for kv := range strings.SplitSeq(v, ",") {
		k, val, ok := strings.Cut(kv, "=")
		if !ok {
			b.Fatalf("MCPGATE_BENCH_NEW_ENV=%q: want NAME=value pairs", v)
		}
		old, had := os.LookupEnv(k)
		os.Setenv(k, val)
		defer func() {
			if had {
				os.Setenv(k, old)
			} else {
				os.Unsetenv(k)
			}
		}()
	}
	start()
}
