package gateway

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/jsonraw"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/policy"
	"github.com/mcpgate/mcpgate/store"
)

// obsGateway starts a gateway in front of one HTTP upstream "up" (the
// test upstream with an echo tool), with an allow-all policy, an audit log
// and opts, and returns it with its /mcp URL.
func obsGateway(t *testing.T, upstreamURL string, opts *Options) (*Gateway, string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.cedar"), []byte("permit(principal, action, resource);\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	eng, err := policy.NewEngine(&policy.Options{Paths: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	alog, err := audit.New(store.NewAuditMemory(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alog.Close() })
	opts.Policy, opts.Audit = eng, alog
	g, err := New(&config.Config{Upstreams: []config.Upstream{{Name: "up", URL: upstreamURL, Prefix: ptr("")}}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(func() { srv.Close(); g.Close() })
	return g, srv.URL + "/mcp"
}

// metricValue returns the value of the counter, gauge or histogram count
// name with labels (a subset of its labels), summed over matches.
func metricValue(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metric
				}
			}
			sum += sampleValue(m)
		}
	}
	return sum
}

func sampleValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	case m.Summary != nil:
		return float64(m.Summary.GetSampleCount())
	}
	return 0
}

func TestMetrics(t *testing.T) {
	reg := NewMetricsRegistry()
	g, url := obsGateway(t, controlledUpstream(t), &Options{Metrics: reg, MetricsOnHandler: true})
	cs := connect(t, url, nil)
	ctx := context.Background()
	for range 3 {
		if got := callText(t, cs, "whoami"); got != "up" {
			t.Fatalf("whoami = %q", got)
		}
	}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "no-such-tool"}); err == nil {
		t.Fatal("unknown tool: no error")
	}

	ok := map[string]string{"method": "tools/call", "upstream": "up", "decision": "allow", "outcome": "ok"}
	if v := metricValue(t, reg, "mcpgate_requests_total", ok); v != 3 {
		t.Errorf("requests %v = %v, want 3", ok, v)
	}
	unknown := map[string]string{"method": "tools/call", "decision": "deny", "outcome": outcomeUnknown}
	if v := metricValue(t, reg, "mcpgate_requests_total", unknown); v != 1 {
		t.Errorf("requests %v = %v, want 1", unknown, v)
	}
	if v := metricValue(t, reg, "mcpgate_upstream_request_seconds", map[string]string{"upstream": "up"}); v < 3 {
		t.Errorf("upstream latency observations = %v, want >= 3", v)
	}
	if v := metricValue(t, reg, "mcpgate_request_gateway_seconds", nil); v < 4 {
		t.Errorf("gateway time observations = %v, want >= 4", v)
	}
	if v := metricValue(t, reg, "mcpgate_sessions_open", nil); v != 1 {
		t.Errorf("sessions open = %v, want 1", v)
	}
	if v := metricValue(t, reg, "mcpgate_upstream_state", map[string]string{"upstream": "up", "state": UpstreamReady}); v != 1 {
		t.Errorf("upstream state ready = %v, want 1", v)
	}
	if v := metricValue(t, reg, "mcpgate_audit_records_total", nil); v < 8 {
		t.Errorf("audit records = %v, want >= 8 (decided and completed of each call)", v)
	}
	before := metricValue(t, reg, "mcpgate_audit_records_total", nil)
	callText(t, cs, "whoami")
	if after := metricValue(t, reg, "mcpgate_audit_records_total", nil); after <= before {
		t.Errorf("audit records did not move: %v then %v", before, after)
	}
	if v := metricValue(t, reg, "mcpgate_requests_total", ok); v != 4 {
		t.Errorf("requests %v = %v after one more call, want 4", ok, v)
	}

	// The scrape over HTTP, from loopback.
	resp, err := http.Get(strings.TrimSuffix(url, "/mcp") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `mcpgate_requests_total{decision="allow",method="tools/call",outcome="ok",upstream="up"} 4`) {
		t.Errorf("GET /metrics: %d\n%s", resp.StatusCode, body)
	}
	for _, family := range []string{"\nmcpgate_streams_open ", "\nmcpgate_task_records{"} {
		if !strings.Contains(string(body), family) {
			t.Errorf("GET /metrics has no %q", strings.TrimSpace(family))
		}
	}
	if strings.Contains(string(body), "caller-secret-token") || strings.Contains(string(body), "anonymous") {
		t.Error("/metrics names a token or a principal")
	}
	// A task: created working, and watched.
	_, err = cs.CallToolAsTask(ctx, &mcp.CallToolParams{Name: "slowtask"}, &mcp.TaskMetadata{})
	if err != nil {
		t.Fatal(err)
	}
	if v := metricValue(t, reg, "mcpgate_task_status_total", map[string]string{"status": "working"}); v != 1 {
		t.Errorf("tasks created working = %v, want 1", v)
	}
	if v := metricValue(t, reg, "mcpgate_tasks_watched", nil); v != 1 {
		t.Errorf("tasks watched = %v, want 1", v)
	}
	if v := metricValue(t, reg, "mcpgate_task_records", map[string]string{"status": "working"}); v != 1 {
		t.Errorf("task records working = %v, want 1", v)
	}
	if v := metricValue(t, reg, "mcpgate_task_records", map[string]string{"status": "completed"}); v != 0 {
		t.Errorf("task records completed = %v, want 0", v)
	}
	if v := metricValue(t, reg, "mcpgate_streams_open", nil); v < 0 || v > 1 {
		t.Errorf("streams open = %v with one client idle, want 0 or 1 (its GET stream)", v)
	}
	g.metrics.taskStatus("made-up-by-an-upstream")
	if v := metricValue(t, reg, "mcpgate_task_status_total", map[string]string{"status": "other"}); v != 1 {
		t.Errorf("tasks in an unknown status = %v, want 1 (other)", v)
	}

	// From another address: refused.
	rec := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/metrics", nil) // RemoteAddr 192.0.2.1
	g.Handler().ServeHTTP(rec, r)
	if rec.Code != http.StatusForbidden {
		t.Errorf("/metrics from %s: %d, want 403", r.RemoteAddr, rec.Code)
	}
}

// TestMetricMethodBounded checks that methods outside the tables share one
// label value.
func TestMetricMethodBounded(t *testing.T) {
	if got := metricMethod("x/" + strings.Repeat("a", 100)); got != "other" {
		t.Errorf("metricMethod(unknown) = %q", got)
	}
	if got := metricMethod(mcp.MethodToolsCall); got != mcp.MethodToolsCall {
		t.Errorf("metricMethod(tools/call) = %q", got)
	}
	if got := boundLabel("upstream-chosen-status", metricOutcomes); got != "other" {
		t.Errorf("boundLabel(unknown outcome) = %q", got)
	}
	if got := boundLabel(outcomeLimited, metricOutcomes); got != outcomeLimited {
		t.Errorf("boundLabel(%s) = %q", outcomeLimited, got)
	}
}

// traceUpstream is the test upstream behind a recorder of the traceparent
// it receives, in HTTP headers and in the _meta of tools/call.
type traceUpstream struct {
	mu             sync.Mutex
	header, inMeta []string
}

func (tu *traceUpstream) start(t *testing.T) string {
	s := testUpstream("up", nil)
	s.AddTool(&mcp.Tool{Name: "echo", InputSchema: jsontext.Value(`{"type":"object"}`)},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			tp, _ := req.Params.Meta["traceparent"].(string)
			tu.mu.Lock()
			tu.inMeta = append(tu.inMeta, tp)
			tu.mu.Unlock()
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ok"}}}, nil
		})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			if m, _, _ := jsonraw.GetPath(body, "method"); string(m) == `"tools/call"` {
				tu.mu.Lock()
				tu.header = append(tu.header, r.Header.Get("traceparent"))
				tu.mu.Unlock()
			}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestTracing(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	tu := &traceUpstream{}
	_, url := obsGateway(t, tu.start(t), &Options{TracerProvider: tp})
	cs := connect(t, url, nil)

	const clientTrace = "0af7651916cd43dd8448eb211c80319c"
	const clientParent = "00-" + clientTrace + "-b7ad6b7169203331-01"
	_, err := cs.CallTool(context.Background(), &mcp.CallToolParams{
		Name: "echo", Arguments: jsontext.Value(`{"password":"hunter2-secret"}`),
		Meta: mcp.Meta{"traceparent": clientParent},
	})
	if err != nil {
		t.Fatal(err)
	}

	var req sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "tools/call" && s.SpanKind() == trace.SpanKindServer {
			req = s
		}
	}
	if req == nil {
		t.Fatalf("no server span for tools/call among %d spans", len(rec.Ended()))
	}
	if got := req.SpanContext().TraceID().String(); got != clientTrace {
		t.Errorf("request span trace %s, want the client's %s", got, clientTrace)
	}
	if got := req.Parent().SpanID().String(); got != "b7ad6b7169203331" {
		t.Errorf("request span parent %s, want the client's span", got)
	}
	attrs := map[string]string{}
	for _, a := range req.Attributes() {
		attrs[string(a.Key)] = a.Value.Emit()
	}
	for k, want := range map[string]string{"mcp.method.name": "tools/call", "gen_ai.tool.name": "echo",
		"mcpgate.upstream": "up", "mcpgate.decision": "allow", "mcpgate.outcome": "ok"} {
		if attrs[k] != want {
			t.Errorf("attribute %s = %q, want %q (all: %v)", k, attrs[k], want, attrs)
		}
	}

	children := map[string]int{}
	var upstreamSpan sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		for _, a := range s.Attributes() {
			if strings.Contains(a.Value.Emit(), "hunter2") {
				t.Errorf("span %s has the arguments: %s=%s", s.Name(), a.Key, a.Value.Emit())
			}
		}
		if s.Parent().SpanID() != req.SpanContext().SpanID() {
			continue
		}
		children[s.Name()]++
		if s.SpanKind() == trace.SpanKindClient {
			upstreamSpan = s
		}
	}
	if children["policy decision"] != 1 || children["audit append"] != 2 || upstreamSpan == nil {
		t.Errorf("children of the request span: %v", children)
	}
	if upstreamSpan == nil {
		return
	}
	want := "00-" + clientTrace + "-" + upstreamSpan.SpanContext().SpanID().String() + "-01"
	tu.mu.Lock()
	defer tu.mu.Unlock()
	if len(tu.header) != 1 || tu.header[0] != want {
		t.Errorf("traceparent header at the upstream %q, want %q", tu.header, want)
	}
	if len(tu.inMeta) != 1 || tu.inMeta[0] != want {
		t.Errorf("traceparent in _meta at the upstream %q, want %q", tu.inMeta, want)
	}
}

// TestTracingHeader checks that a traceparent HTTP header continues the
// client's trace when _meta has none.
func TestTracingHeader(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	_, url := obsGateway(t, controlledUpstream(t), &Options{TracerProvider: tp})
	const clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hc := &http.Client{Transport: headerRT{"traceparent", "00-" + clientTrace + "-00f067aa0ba902b7-01"}}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil).Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: hc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	callText(t, cs, "whoami")
	for _, s := range rec.Ended() {
		if s.Name() == "tools/call" && s.SpanKind() == trace.SpanKindServer {
			if got := s.SpanContext().TraceID().String(); got != clientTrace {
				t.Errorf("trace %s, want %s", got, clientTrace)
			}
			return
		}
	}
	t.Error("no request span")
}

// syncBuffer is a bytes.Buffer safe for the log's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestRequestLog checks the debug request log: one record per request,
// and neither the caller's bearer token nor the arguments in the log.
func TestRequestLog(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	_, url := obsGateway(t, controlledUpstream(t), &Options{Logger: logger})
	cs := connect(t, url, nil) // sends "Bearer caller-secret-token"
	_, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: jsontext.Value(`{"path":"s3cr3t-argument-value"}`)})
	if err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, `"msg":"request","method":"tools/call","upstream":"up","target":"echo","decision":"allow","outcome":"ok"`) {
		t.Errorf("no request record for the call in the log:\n%s", out)
	}
	for _, secret := range []string{"caller-secret-token", "s3cr3t-argument-value"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log has %q:\n%s", secret, out)
		}
	}
}

// TestDocsMetrics checks that docs/observability.md lists every metric the
// gateway registers, and no other mcpgate_ metric.
func TestDocsMetrics(t *testing.T) {
	doc, err := os.ReadFile("../docs/observability.md")
	if err != nil {
		t.Fatalf("docs/observability.md: %v", err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(mcpgate_\\w+)` \\|").FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = true
	}
	g, err := New(&config.Config{}, &Options{Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	m := g.metrics
	ch := make(chan *prometheus.Desc, 64)
	for _, c := range []prometheus.Collector{m.requests, m.ownTime, m.upstreamVec, m.revocations, m.tasks, &stateCollector{g: g}} {
		c.Describe(ch)
	}
	close(ch)
	registered := map[string]bool{}
	name := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range ch {
		if n := name.FindStringSubmatch(d.String()); n != nil {
			registered[n[1]] = true
		}
	}
	if len(registered) != 16 || len(documented) == 0 {
		t.Fatalf("found %d registered metrics (want 16) and %d documented", len(registered), len(documented))
	}
	for n := range registered {
		if !documented[n] {
			t.Errorf("%s is not in docs/observability.md", n)
		}
	}
	for n := range documented {
		if !registered[n] {
			t.Errorf("docs/observability.md lists %s, which the gateway does not register", n)
		}
	}
}

// BenchmarkObserve measures what observing one request adds to it with
// metrics on and tracing off: observe, one upstream call, two audit
// records and finish.
func BenchmarkObserve(b *testing.B) {
	g, err := New(&config.Config{}, &Options{Metrics: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	c := &call{ds: &downstreamSession{}, method: mcp.MethodToolsCall, res: policy.Resource{Kind: policy.KindTool, Upstream: "up", Name: "t"}}
	params := jsontext.Value(`{"name":"t"}`)
	rec := &audit.Record{Decision: audit.DecisionAllow, Outcome: audit.OutcomeOK}
	b.ReportAllocs()
	for b.Loop() {
		ctx, o := g.observe(context.Background(), c.method, params)
		_, appended := g.noteRecord(ctx, rec)
		appended(nil)
		_, _, done := g.upstreamCall(ctx, "up", c.method, params)
		done(nil)
		_, appended = g.noteRecord(ctx, rec)
		appended(nil)
		g.finish(ctx, o, c, nil)
	}
}
