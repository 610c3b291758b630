// Package soak is a soak benchmark of `mcpgate serve` in the
// configuration users run (OAuth bearer tokens from its own authorization
// server, Cedar policies with deny by default, the audit log), every party
// in its own process on loopback: many well-behaved sessions make mixed
// calls for a while, alongside a hostile mix (clients sending bodies a
// byte at a time, a principal flooding sessions, a client calling a stdio
// upstream that crashes on every call, and an upstream whose tools/list
// never ends). It reports the throughput and p99 latency of the
// well-behaved calls, the errors they saw (the target is none), the
// gateway's peak RSS, and its goroutines at start and end.
//
// Then it kills the gateway with SIGKILL under load and checks that every
// call acknowledged before the kill has its audit records and that the
// chain verifies, restarts the gateway and measures how long it takes to
// answer again.
//
// It is a benchmark, run by hand (it takes minutes and runs once
// whatever -benchtime says):
//
//	go test ./bench/soak -run '^$' -bench Soak -benchtime 1x -timeout 20m
//
// MCPGATE_SOAK_DURATION (default 2m) and MCPGATE_SOAK_SESSIONS (default
// 256) change the load phase.
package soak

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/bench/internal/harness"
	"github.com/mcpgate/mcpgate/mcp"
)

// principals is how many machine clients share the well-behaved sessions
// (the default bound is 64 sessions per principal).
const principals = 8

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil && d > 0 {
		return d
	}
	return def
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func TestMain(m *testing.M) {
	harness.RunRole()
	os.Exit(m.Run())
}

// soakConfig is the gateway's configuration: OAuth, Cedar policies with
// deny by default, the audit log (a data directory), and three upstreams:
// a well-behaved one, one whose tools/list never ends, and a stdio one
// that crashes on every call.
const soakConfig = `listen: 127.0.0.1:%d
public_url: http://127.0.0.1:%[1]d
auth: oauth
data_dir: %s
server:
  debug_listen: 127.0.0.1:0
  startup_wait: 1ms
upstreams:
  - name: echo
    url: http://127.0.0.1:%d/mcp
  - name: endless
    url: http://127.0.0.1:%d/mcp
  - name: crashy
    command: [%q]
    env:
      %s: crash
policy:
  paths: [%s]
  deny_by_default: true
`

// soakPolicies are a small realistic policy set: everyone may list and
// call, nobody may call tools named like deletion, one tool is off
// limits.
var soakPolicies = map[string]string{
	"base.cedar":   "@id(\"base\")\npermit(principal, action, resource);\n",
	"delete.cedar": "@id(\"no-delete\")\nforbid(principal, action == Action::\"tools/call\", resource) when { resource.name like \"*delete*\" };\n",
	"secret.cedar": "@id(\"no-secret\")\nforbid(principal, action, resource) when { resource has name && resource.name == \"secret\" };\n",
}

// world is one run: the gateway's configuration and its clients.
type world struct {
	*harness.World
	config  string
	secrets map[string]string // client id → secret
}

func newWorld(b *testing.B) *world {
	w := &world{World: harness.NewWorld(b), secrets: map[string]string{}}
	harness.Progress("built mcpgate; starting upstreams")
	echoPort := w.StartRole(b, "echo")
	pagePort := w.StartRole(b, "paginate")
	for name, text := range soakPolicies {
		w.WriteFile(b, filepath.Join("policies", name), text)
	}
	w.config = w.WriteFile(b, "gateway.yaml", fmt.Sprintf(soakConfig, harness.FreePort(b), filepath.Join(w.Dir, "data"),
		echoPort, pagePort, harness.Self(b), harness.RoleEnv, filepath.Join(w.Dir, "policies")))
	ids := []string{"flooder"}
	for i := range principals {
		ids = append(ids, fmt.Sprintf("soak-%d", i))
	}
	for _, id := range ids {
		w.secrets[id] = w.AddClient(b, w.config, id)
	}
	return w
}

func BenchmarkSoak(b *testing.B) {
	duration := envDuration("MCPGATE_SOAK_DURATION", 2*time.Minute)
	sessions := envInt("MCPGATE_SOAK_SESSIONS", 256)
	w := newWorld(b)
	harness.Progress("starting the gateway")
	gw := w.StartGateway(b, w.config, true)
	harness.Progress("waiting for /readyz at %s", gw.Base)
	gw.WaitReady(b)
	tokens := make([]string, principals)
	for i := range tokens {
		id := fmt.Sprintf("soak-%d", i)
		tokens[i] = gw.Token(b, id, w.secrets[id])
	}
	flooder := gw.Token(b, "flooder", w.secrets["flooder"])
	echo, crash := toolNames(b, gw, tokens[0])
	startG := gw.Goroutines(b)
	b.Logf("gateway up: goroutines %d, RSS %d MiB", startG, gw.RSS()>>20)

	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var hostile hostileStats
	var hwg sync.WaitGroup
	hwg.Add(3)
	go func() { defer hwg.Done(); slowBodies(ctx, gw.Base, tokens[0], 16, &hostile) }()
	go func() { defer hwg.Done(); floodSessions(ctx, gw.Base, flooder, &hostile) }()
	go func() { defer hwg.Done(); callCrashing(ctx, gw.Base, tokens[1], crash, &hostile) }()

	var peakRSS atomic.Int64
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			if r := gw.RSS(); r > peakRSS.Load() {
				peakRSS.Store(r)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()

	harness.Progress("load phase: %d sessions for %s", sessions, duration)
	start := time.Now()
	res := wellBehaved(ctx, b, gw.Base, tokens, sessions, echo, "")
	elapsed := time.Since(start)
	hwg.Wait()
	<-sampled

	// Let closed sessions and connections wind down before counting.
	endG := settledGoroutines(b, gw, startG)
	if endG > startG+startG/10+5 {
		for _, s := range gw.GoroutineStacks(12) {
			lines := strings.Split(s, "\n")
			b.Logf("goroutines: %s", strings.Join(lines[:min(len(lines), 8)], "\n\t"))
		}
	}
	report(b, res, elapsed, &hostile, peakRSS.Load(), gw.PeakRSS(), startG, endG, sessions)

	w.killAndRestart(b, gw, tokens, echo)
}

// toolNames finds the catalogue names of the echo and crash tools.
func toolNames(b *testing.B, g *harness.Gateway, token string) (echo, crash string) {
	b.Helper()
	ctx := context.Background()
	cs, err := harness.Connect(ctx, g.Base+"/mcp", token, http.DefaultTransport)
	if err != nil {
		b.Fatal(err)
	}
	defer cs.Close()
	for deadline := time.Now().Add(time.Minute); echo == "" || crash == ""; time.Sleep(100 * time.Millisecond) {
		res, err := cs.ListTools(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, t := range res.Tools {
			switch {
			case strings.HasSuffix(t.Name, "echo"):
				echo = t.Name
			case strings.HasSuffix(t.Name, "crash"):
				crash = t.Name
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("tools echo and crash not in the catalogue: %d tools", len(res.Tools))
		}
	}
	return echo, crash
}

// settledGoroutines waits (up to two minutes: idle keep-alive
// connections to upstreams close after 90 s) for the gateway's goroutine
// count to come back near where it started, and returns the last count.
func settledGoroutines(b *testing.B, g *harness.Gateway, start int) int {
	n := g.Goroutines(b)
	for deadline := time.Now().Add(2 * time.Minute); n > start+start/10+5 && time.Now().Before(deadline); {
		time.Sleep(time.Second)
		n = g.Goroutines(b)
	}
	return n
}

// results are the well-behaved sessions' outcomes.
type results struct {
	mu        sync.Mutex
	latencies []time.Duration
	errors    map[string]int
	acked     []string // texts of acknowledged echo calls
}

func (r *results) ok(d time.Duration, text string) {
	r.mu.Lock()
	r.latencies = append(r.latencies, d)
	if text != "" {
		r.acked = append(r.acked, text)
	}
	r.mu.Unlock()
}

func (r *results) fail(err error) {
	msg := err.Error()
	if len(msg) > 120 {
		msg = msg[:120]
	}
	r.mu.Lock()
	r.errors[msg]++
	r.mu.Unlock()
}

// wellBehaved runs n sessions (spread over the principals' tokens) until
// ctx ends: each makes echo calls (8 in 10), tools/list and ping. With a
// tag, every echo call carries a unique text starting with it and the
// acknowledged ones are kept.
func wellBehaved(ctx context.Context, b *testing.B, base string, tokens []string, n int, echo, tag string) *results {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = n + 16
	defer tr.CloseIdleConnections()
	r := &results{errors: map[string]int{}}
	var wg sync.WaitGroup
	var seq atomic.Int64
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cs, err := harness.Connect(context.WithoutCancel(ctx), base+"/mcp", tokens[i%len(tokens)], tr)
			if err != nil {
				r.fail(fmt.Errorf("connect: %w", err))
				return
			}
			defer cs.Close()
			for k := 0; ctx.Err() == nil; k++ {
				t0 := time.Now()
				var err error
				text := ""
				switch k % 10 {
				case 8:
					_, err = cs.ListTools(ctx, nil)
				case 9:
					err = cs.Ping(ctx)
				default:
					text = fmt.Sprintf("%s%d", tag, seq.Add(1))
					args, _ := json.Marshal(map[string]string{"text": text})
					var res *mcp.CallToolResult
					res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: echo, Arguments: jsontext.Value(args)})
					if err == nil && res.IsError {
						err = fmt.Errorf("tool error: %v", res.Content)
					}
				}
				if ctx.Err() != nil {
					return // cut by the end of the phase, not a failure
				}
				if err != nil {
					r.fail(err)
					continue
				}
				if tag == "" {
					text = ""
				}
				r.ok(time.Since(t0), text)
			}
		}()
	}
	wg.Wait()
	return r
}

// hostileStats counts what the hostile parties got.
type hostileStats struct {
	slowCut, slowOther              atomic.Int64
	floodOK, floodRefused, floodErr atomic.Int64
	crashCalls, crashErrors         atomic.Int64
	crashMessages                   sync.Map
}

// slowBodies keeps n connections sending a request body a byte every
// 2 s, reconnecting when the gateway cuts one.
func slowBodies(ctx context.Context, base, token string, n int, st *hostileStats) {
	host := strings.TrimPrefix(base, "http://")
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				var d net.Dialer
				conn, err := d.DialContext(ctx, "tcp", host)
				if err != nil {
					st.slowOther.Add(1)
					return
				}
				stop := context.AfterFunc(ctx, func() { conn.Close() })
				fmt.Fprintf(conn, "POST /mcp HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 1000\r\n\r\n", host, token)
				for ctx.Err() == nil {
					if _, err := conn.Write([]byte{' '}); err != nil {
						break
					}
					_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
					var buf [512]byte
					if n, err := conn.Read(buf[:]); n > 0 || (err != nil && !errors.Is(err, os.ErrDeadlineExceeded)) {
						break // an answer or a close: the gateway cut the request
					}
				}
				stop()
				conn.Close()
				if ctx.Err() == nil {
					st.slowCut.Add(1)
				}
			}
		}()
	}
	wg.Wait()
}

// floodSessions opens sessions as one principal, never closing them, 20
// a second.
func floodSessions(ctx context.Context, base, token string, st *hostileStats) {
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"flood","version":"1"}}}`
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	var opened []string
	// At the end the flooder closes what it opened, so that the goroutine
	// count at the end shows leaks, not its sessions.
	defer func() {
		for _, id := range opened {
			req, _ := http.NewRequest(http.MethodDelete, base+"/mcp", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Mcp-Session-Id", id)
			req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/mcp", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				st.floodErr.Add(1)
			}
			continue
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			st.floodOK.Add(1)
			opened = append(opened, resp.Header.Get("Mcp-Session-Id"))
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			st.floodRefused.Add(1)
		default:
			st.floodErr.Add(1)
		}
	}
}

// callCrashing calls the tool that crashes its stdio upstream, over and
// over, on one session.
func callCrashing(ctx context.Context, base, token, tool string, st *hostileStats) {
	cs, err := harness.Connect(ctx, base+"/mcp", token, http.DefaultTransport)
	if err != nil {
		return
	}
	defer cs.Close()
	for ctx.Err() == nil {
		st.crashCalls.Add(1)
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: jsontext.Value(`{}`)})
		if err != nil || res.IsError {
			st.crashErrors.Add(1)
			if err != nil {
				msg, _, _ := strings.Cut(err.Error(), " (next attempt in")
				msg, _, _ = strings.Cut(msg, ": its circuit is open")
				st.crashMessages.Store(msg, true)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

func report(b *testing.B, r *results, elapsed time.Duration, h *hostileStats, peakSampled, hwm int64, startG, endG, sessions int) {
	slices.Sort(r.latencies)
	errs := 0
	for msg, n := range r.errors {
		errs += n
		b.Logf("well-behaved error ×%d: %s", n, msg)
	}
	rps := float64(len(r.latencies)) / elapsed.Seconds()
	b.Logf("%d sessions for %s: %d calls ok (%.0f/s), p50 %s, p99 %s, max %s, errors %d",
		sessions, elapsed.Round(time.Second), len(r.latencies), rps,
		percentile(r.latencies, 0.50), percentile(r.latencies, 0.99), percentile(r.latencies, 1), errs)
	b.Logf("gateway: peak RSS %d MiB (sampled) / %d MiB (VmHWM); goroutines %d at start, %d at end",
		peakSampled>>20, hwm>>20, startG, endG)
	b.Logf("hostile: slow-body connections cut %d; session flood %d opened, %d refused (429/503), %d other; crashing tool %d calls, %d errors",
		h.slowCut.Load(), h.floodOK.Load(), h.floodRefused.Load(), h.floodErr.Load(), h.crashCalls.Load(), h.crashErrors.Load())
	h.crashMessages.Range(func(k, _ any) bool { b.Logf("crashing tool error: %s", k); return true })
	b.ReportMetric(rps, "calls/s")
	b.ReportMetric(float64(percentile(r.latencies, 0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(errs), "errors")
	b.ReportMetric(float64(hwm>>20), "peak-RSS-MiB")
	b.ReportMetric(float64(startG), "goroutines-start")
	b.ReportMetric(float64(endG), "goroutines-end")
	b.ReportMetric(0, "ns/op")
}

// killAndRestart kills the gateway with SIGKILL under load, checks that
// every acknowledged call has its audit records and that the chain
// verifies, then restarts it and measures how long it takes to answer.
func (w *world) killAndRestart(b *testing.B, g *harness.Gateway, tokens []string, echo string) {
	since := time.Now().UTC().Add(-time.Second).Format(time.RFC3339)
	harness.Progress("SIGKILL phase")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *results, 1)
	go func() { done <- wellBehaved(ctx, b, g.Base, tokens, 32, echo, "kill-") }()
	time.Sleep(5 * time.Second)
	if err := g.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		b.Fatal(err)
	}
	_ = g.Cmd.Wait()
	cancel()
	r := <-done
	b.Logf("SIGKILL under load: %d calls acknowledged before the kill", len(r.acked))

	out := w.CLI(b, w.config, "audit", "export", "--since", since)
	seen := map[string]int{} // args digest → records
	for line := range strings.SplitSeq(out, "\n") {
		var rec struct {
			Action     string `json:"action"`
			ArgsDigest string `json:"args_digest"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Action == "tools/call" {
			seen[rec.ArgsDigest]++
		}
	}
	missing := 0
	for _, text := range r.acked {
		args, _ := json.Marshal(map[string]string{"text": text})
		d, err := audit.Digest(jsontext.Value(args))
		if err != nil {
			b.Fatal(err)
		}
		if seen[d] < 2 {
			missing++
		}
	}
	b.Logf("audit after SIGKILL: %d of %d acknowledged calls have both records (decided, completed)", len(r.acked)-missing, len(r.acked))
	if missing > 0 {
		b.Errorf("%d acknowledged calls lost audit records", missing)
	}
	// cli fails the benchmark if verification fails.
	b.Logf("audit verify: %s", strings.TrimSpace(w.CLI(b, w.config, "audit", "verify")))

	t0 := time.Now()
	g2 := w.StartGateway(b, w.config, false)
	var healthy, served time.Duration
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if healthy == 0 {
			if resp, err := http.Get(g2.Base + "/healthz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					healthy = time.Since(t0)
				}
			}
		}
		if healthy != 0 {
			cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
			cs, err := harness.Connect(cctx, g2.Base+"/mcp", tokens[0], http.DefaultTransport)
			if err == nil {
				err = cs.Ping(cctx)
				cs.Close()
			}
			ccancel()
			if err == nil {
				served = time.Since(t0)
				break
			}
		}
	}
	b.Logf("restart after SIGKILL: /healthz after %s, an authenticated session (initialize + ping) after %s", healthy.Round(time.Millisecond), served.Round(time.Millisecond))
	if served == 0 || served > 2*time.Second {
		b.Errorf("the gateway did not serve within 2 s of restart (%s)", served)
	}
	b.ReportMetric(float64(served.Milliseconds()), "restart-serve-ms")
}
