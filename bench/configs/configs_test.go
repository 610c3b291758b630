// Package configs measures what mcpgate's controls cost, every party in
// its own process on loopback: the same workload (one tools/call of an
// echo tool, back to back on each session) direct to the upstream and
// through `mcpgate serve` in four configurations:
//
//   - stripped: auth none, audit off, no policy
//   - default: what `mcpgate serve` does with a data directory and no
//     other setting: auth none, audit on
//   - oauth+policies: OAuth bearer tokens from the gateway's own
//     authorization server, 20 Cedar policies (deny by default), audit off
//   - full: OAuth, 20 policies, audit on (the configuration users run)
//
// at 1, 16 and 64 sessions. Each round runs every arm once, in an order
// rotated from round to round; the ratios are per round (arm / direct of
// the same round) and the table prints their median.
//
//	go test ./bench/configs -run '^$' -bench Configurations -benchtime 1x -timeout 30m
//
// MCPGATE_BENCH_ROUNDS (default 3) and MCPGATE_BENCH_ARM (the time each
// arm runs in a round, default 3s) change the run; MCPGATE_BENCH_ONLY
// (configurations, comma-separated, e.g. "stripped,default"; direct always
// runs) and MCPGATE_BENCH_SESSIONS (e.g. "1,16") narrow it.
package configs

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/bench/internal/harness"
	"github.com/mcpgate/mcpgate/mcp"
)

func TestMain(m *testing.M) {
	harness.RunRole()
	os.Exit(m.Run())
}

// policies returns 20 Cedar policies: a broad permit and forbids of the
// kinds deployments write (tools by name, tools by upstream, arguments).
func policies() string {
	var sb strings.Builder
	sb.WriteString("@id(\"base\")\npermit(principal, action, resource);\n")
	for i := range 12 {
		fmt.Fprintf(&sb, "@id(\"no-tool-%d\")\nforbid(principal, action == Action::\"tools/call\", resource == Tool::\"ops/tool_%d\");\n", i, i)
	}
	for i := range 4 {
		fmt.Fprintf(&sb, "@id(\"no-upstream-%d\")\nforbid(principal, action, resource) when { resource has upstream && resource.upstream == \"legacy%d\" };\n", i, i)
	}
	for i := range 3 {
		fmt.Fprintf(&sb, "@id(\"no-arg-%d\")\nforbid(principal, action == Action::\"tools/call\", resource) when { context has arguments && context.arguments has text && context.arguments.text == \"forbidden-%d\" };\n", i, i)
	}
	return sb.String()
}

// arm is one way to reach the upstream.
type arm struct {
	name     string
	endpoint string
	tokens   []string // one per 32 sessions, so no principal meets its session bound
	tool     string
}

func BenchmarkConfigurations(b *testing.B) {
	rounds := 3
	if n, err := strconv.Atoi(os.Getenv("MCPGATE_BENCH_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	armTime := 3 * time.Second
	if d, err := time.ParseDuration(os.Getenv("MCPGATE_BENCH_ARM")); err == nil && d > 0 {
		armTime = d
	}
	w := harness.NewWorld(b)
	port := w.StartRole(b, "echo")
	upstream := fmt.Sprintf("http://127.0.0.1:%d/mcp", port)
	polDir := filepath.Dir(w.WriteFile(b, "policies/bench.cedar", policies()))

	arms := []*arm{{name: "direct", endpoint: upstream, tool: "echo"}}
	for _, c := range []struct {
		name         string
		oauth, audit bool
		policy       bool
	}{
		{name: "stripped"},
		{name: "default", audit: true},
		{name: "oauth+policies", oauth: true, policy: true},
		{name: "full", oauth: true, policy: true, audit: true},
	} {
		if only := os.Getenv("MCPGATE_BENCH_ONLY"); only != "" && !slices.Contains(strings.Split(only, ","), c.name) {
			continue
		}
		gwPort := harness.FreePort(b)
		var cfg strings.Builder
		fmt.Fprintf(&cfg, "listen: 127.0.0.1:%d\npublic_url: http://127.0.0.1:%[1]d\ndata_dir: %s\n", gwPort, filepath.Join(w.Dir, c.name))
		if c.oauth {
			cfg.WriteString("auth: oauth\n")
		} else {
			cfg.WriteString("auth: none\n")
		}
		if !c.audit {
			cfg.WriteString("audit:\n  disabled: true\n")
		}
		if c.policy {
			fmt.Fprintf(&cfg, "policy:\n  paths: [%s]\n  deny_by_default: true\n", polDir)
		}
		fmt.Fprintf(&cfg, "server:\n  startup_wait: 1ms\nupstreams:\n  - name: up\n    url: %s\n    prefix: \"\"\n", upstream)
		path := w.WriteFile(b, c.name+".yaml", cfg.String())
		var secrets []string
		if c.oauth {
			for i := range 2 {
				secrets = append(secrets, w.AddClient(b, path, fmt.Sprintf("bench-%d", i)))
			}
		}
		g := w.StartGateway(b, path, false)
		g.WaitReady(b)
		a := &arm{name: c.name, endpoint: g.Base + "/mcp", tool: "echo"}
		for i, s := range secrets {
			a.tokens = append(a.tokens, g.Token(b, fmt.Sprintf("bench-%d", i), s))
		}
		arms = append(arms, a)
	}

	sessionCounts := []int{1, 16, 64}
	if v := os.Getenv("MCPGATE_BENCH_SESSIONS"); v != "" {
		sessionCounts = nil
		for _, f := range strings.Split(v, ",") {
			if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
				sessionCounts = append(sessionCounts, n)
			}
		}
	}
	for _, sessions := range sessionCounts {
		// Per arm: throughput and p50 of each round.
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
		b.Logf("| arm | calls/s (rounds) | vs direct (median) | p50 (median) | added p50 (median) |")
		for _, a := range arms {
			var ratios []float64
			var added []time.Duration
			for r := range rounds {
				ratios = append(ratios, rps[a.name][r]/rps["direct"][r])
				added = append(added, p50[a.name][r]-p50["direct"][r])
			}
			var each []string
			for _, v := range rps[a.name] {
				each = append(each, strconv.Itoa(int(v)))
			}
			b.Logf("| %s | %s | %.2f× | %s | %s |", a.name, strings.Join(each, " / "), median(ratios),
				medianDur(p50[a.name]).Round(time.Microsecond), medianDur(added).Round(time.Microsecond))
			if a.name != "direct" {
				b.ReportMetric(median(ratios), fmt.Sprintf("%s-s%d-ratio", a.name, sessions))
				b.ReportMetric(float64(medianDur(added).Microseconds()), fmt.Sprintf("%s-s%d-added-p50-µs", a.name, sessions))
			}
		}
		if rps["full"] != nil && rps["stripped"] != nil {
			var fullVsStripped []float64
			for r := range rounds {
				fullVsStripped = append(fullVsStripped, rps["full"][r]/rps["stripped"][r])
			}
			b.Logf("full controls vs stripped at %d sessions: %.2f× (median)", sessions, median(fullVsStripped))
		}
		if rps["default"] != nil && rps["stripped"] != nil {
			var defaultVsStripped []float64
			for r := range rounds {
				defaultVsStripped = append(defaultVsStripped, rps["default"][r]/rps["stripped"][r])
			}
			b.Logf("default vs stripped at %d sessions: %.2f× (median)", sessions, median(defaultVsStripped))
		}
	}
	b.ReportMetric(0, "ns/op")
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func medianDur(v []time.Duration) time.Duration {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

type stats struct {
	p50       time.Duration
	perSecond float64
}

// run calls a's echo tool back to back on n sessions for d.
func run(b *testing.B, a *arm, n int, d time.Duration) stats {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = n + 8
	defer tr.CloseIdleConnections()
	ctx := context.Background()
	sessions := make([]*mcp.ClientSession, n)
	for i := range sessions {
		token := ""
		if len(a.tokens) > 0 {
			token = a.tokens[i/32%len(a.tokens)]
		}
		cs, err := harness.Connect(ctx, a.endpoint, token, tr)
		if err != nil {
			b.Fatalf("%s: %v", a.name, err)
		}
		defer cs.Close()
		sessions[i] = cs
	}
	args := jsontext.Value(`{"text":"hello"}`)
	lat := make([][]time.Duration, n)
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	start := time.Now()
	for i, cs := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				t0 := time.Now()
				if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: a.tool, Arguments: args}); err != nil {
					b.Errorf("%s: %v", a.name, err)
					return
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := slices.Concat(lat...)
	if len(all) == 0 {
		b.Fatalf("%s: no calls completed", a.name)
	}
	slices.Sort(all)
	return stats{p50: all[len(all)/2], perSecond: float64(len(all)) / elapsed.Seconds()}
}
