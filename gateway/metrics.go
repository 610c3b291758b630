package gateway

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/store"
)

// Metrics.
//
// The gateway's Prometheus metrics are registered on Options.Metrics. Their
// labels take few values: MCP methods of the method tables (anything else
// is "other"), upstream names of the configuration, decisions and outcomes
// of the audit log. Principals, sessions, tool names and arguments are never
// labels. Counters of the request path are bound to their label values once
// and cached, so a request costs a map lookup under a read lock and atomic
// additions. Gauges (sessions, upstream states, the audit log, approvals)
// are read when Prometheus scrapes, and cost nothing per request.
// docs/observability.md lists every metric.

// approvalsScrapeTimeout bounds the query of pending approvals, and the
// count of task records, at a scrape.
const approvalsScrapeTimeout = 2 * time.Second

// latencyBuckets are the bounds (seconds) of the latency histograms: from
// 100µs, for the gateway's own time, to a minute, for long tool calls.
var latencyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// metrics holds the gateway's metrics. A nil *metrics records nothing.
type metrics struct {
	requests    *prometheus.CounterVec
	ownTime     prometheus.Histogram
	upstreamVec *prometheus.HistogramVec
	revocations prometheus.Counter
	tasks       *prometheus.CounterVec

	mu          sync.RWMutex
	reqs        map[requestLabels]prometheus.Counter
	upstreamObs map[string]prometheus.Observer
	taskObs     map[string]prometheus.Counter // by status: bound once
}

// The actions of the audit records of task statuses.
const (
	actionTaskCreated = "task.created"
	actionTaskStatus  = "task.status"
)

// requestLabels are the label values of mcpgate_requests_total.
type requestLabels struct{ method, upstream, decision, outcome string }

// newMetrics registers the gateway's metrics on reg, or returns nil when
// reg is nil.
func newMetrics(g *Gateway, reg *prometheus.Registry) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpgate_requests_total",
			Help: "MCP requests clients sent, by method, upstream, policy decision and outcome.",
		}, []string{"method", "upstream", "decision", "outcome"}),
		ownTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mcpgate_request_gateway_seconds",
			Help:    "Time the gateway itself spent on an MCP request: the whole request less the time waiting for upstreams.",
			Buckets: latencyBuckets,
		}),
		upstreamVec: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mcpgate_upstream_request_seconds",
			Help:    "Time from sending a request to an upstream to its answer, by upstream.",
			Buckets: latencyBuckets,
		}, []string{"upstream"}),
		revocations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcpgate_revocations_applied_total",
			Help: "Revocations of users, clients, grants and identity providers this gateway applied (closed their sessions).",
		}),
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpgate_task_status_total",
			Help: "Tasks started through the gateway by the status they were created in (working, or input_required) and each status they changed to, as the gateway recorded them.",
		}, []string{"status"}),
		reqs:        make(map[requestLabels]prometheus.Counter),
		upstreamObs: make(map[string]prometheus.Observer),
		taskObs:     make(map[string]prometheus.Counter),
	}
	for _, st := range taskStatuses {
		m.taskObs[st] = m.tasks.WithLabelValues(st)
	}
	for _, c := range []prometheus.Collector{m.requests, m.ownTime, m.upstreamVec, m.revocations, m.tasks, &stateCollector{g: g}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// NewMetricsRegistry returns a registry for Options.Metrics with the Go
// runtime's and the process's collectors already registered.
func NewMetricsRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// metricMethod bounds the method label to the methods of the client
// request table.
func metricMethod(method string) string {
	if _, ok := clientRequests[method]; ok {
		return method
	}
	return "other"
}

// metricOutcomes are the outcome label values: the outcomes the admission
// stage records. Anything else (an upstream's task status, say) is "other".
var metricOutcomes = map[string]bool{
	audit.OutcomeOK: true, audit.OutcomeError: true, audit.OutcomeDenied: true,
	audit.OutcomeCancelled: true, audit.OutcomePending: true, "tool_error": true,
	"approval_requested": true, "approved": true,
	outcomeRefused: true, outcomeUnknown: true, outcomeBlocked: true, outcomeRevoked: true,
	outcomeInvalid: true, outcomeLimited: true, outcomeFiltered: true,
}

// metricDecisions are the decision label values.
var metricDecisions = map[string]bool{
	audit.DecisionAllow: true, audit.DecisionDeny: true, audit.DecisionApprovalRequired: true, "none": true,
}

// boundLabel returns v if it is in known, else "other".
func boundLabel(v string, known map[string]bool) string {
	if known[v] {
		return v
	}
	return "other"
}

// request counts one request and observes the gateway's own time.
func (m *metrics) request(l requestLabels, own time.Duration) {
	if m == nil {
		return
	}
	m.mu.RLock()
	c := m.reqs[l]
	m.mu.RUnlock()
	if c == nil {
		c = m.requests.WithLabelValues(l.method, l.upstream, l.decision, l.outcome)
		m.mu.Lock()
		m.reqs[l] = c
		m.mu.Unlock()
	}
	c.Inc()
	m.ownTime.Observe(own.Seconds())
}

// upstreamTime observes the time of one request to upstream.
func (m *metrics) upstreamTime(upstream string, d time.Duration) {
	if m == nil {
		return
	}
	m.mu.RLock()
	o := m.upstreamObs[upstream]
	m.mu.RUnlock()
	if o == nil {
		o = m.upstreamVec.WithLabelValues(upstream)
		m.mu.Lock()
		m.upstreamObs[upstream] = o
		m.mu.Unlock()
	}
	o.Observe(d.Seconds())
}

// taskStatuses are the status label values of mcpgate_task_status_total.
var taskStatuses = []string{"working", "input_required", "completed", "failed", "cancelled", "other"}

// knownTaskStatuses are the task statuses of the specification (the label
// values of taskStatuses but "other").
var knownTaskStatuses = map[string]bool{"working": true, "input_required": true, "completed": true, "failed": true, "cancelled": true}

// taskStatus counts a task created in, or changed to, status.
func (m *metrics) taskStatus(status string) {
	if m == nil {
		return
	}
	c := m.taskObs[status] // written only by newMetrics
	if c == nil {
		c = m.taskObs["other"]
	}
	c.Inc()
}

// revocation counts one revocation applied.
func (m *metrics) revocation() {
	if m != nil {
		m.revocations.Inc()
	}
}

// stateCollector reads the gateway's state when Prometheus scrapes.
type stateCollector struct{ g *Gateway }

var (
	descSessions = prometheus.NewDesc("mcpgate_sessions_open",
		"Client sessions open with the gateway.", nil, nil)
	descTasks = prometheus.NewDesc("mcpgate_tasks_watched",
		"Tasks started through the gateway that are still running (followed by the task watcher).", nil, nil)
	descUpstreamState = prometheus.NewDesc("mcpgate_upstream_state",
		"1 for the state each upstream is in (connecting, ready, backoff, circuit_open, per_user, ...).", []string{"upstream", "state"}, nil)
	descOverload = prometheus.NewDesc("mcpgate_overload_refusals_total",
		"MCP requests refused at once because too many were in progress (server.max_inflight, max_inflight_per_principal).", nil, nil)
	descAuditRecords = prometheus.NewDesc("mcpgate_audit_records_total",
		"Audit records stored since start.", nil, nil)
	descAuditCommits = prometheus.NewDesc("mcpgate_audit_commits_total",
		"Store transactions that stored audit records.", nil, nil)
	descAuditPending = prometheus.NewDesc("mcpgate_audit_pending_appends",
		"Audit appends in progress: waiting for the writer or being stored.", nil, nil)
	descAuditSync = prometheus.NewDesc("mcpgate_audit_sync_seconds",
		"Explicit syncs of the audit store to disk and the time they took.", nil, nil)
	descApprovals = prometheus.NewDesc("mcpgate_approvals_pending",
		"Approvals waiting for a decision.", nil, nil)
	descStreams = prometheus.NewDesc("mcpgate_streams_open",
		"Streams open on the Streamable HTTP endpoint: GET streams (standalone, resumptions, subscriptions/listen) and POST requests being answered.", nil, nil)
	descTaskRecords = prometheus.NewDesc("mcpgate_task_records",
		"Task records the gateway keeps (not expired), by status (working, input_required, completed, failed, cancelled, other).", []string{"status"}, nil)
)

// Describe implements prometheus.Collector.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSessions, descTasks, descUpstreamState, descOverload,
		descAuditRecords, descAuditCommits, descAuditPending, descAuditSync, descApprovals,
		descStreams, descTaskRecords} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	g := c.g
	ch <- prometheus.MustNewConstMetric(descSessions, prometheus.GaugeValue, float64(g.sessions.count()))
	g.watcher.mu.Lock()
	watched := g.watcher.n
	g.watcher.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descTasks, prometheus.GaugeValue, float64(watched))
	if h := g.streamable.Load(); h != nil {
		ch <- prometheus.MustNewConstMetric(descStreams, prometheus.GaugeValue, float64(h.OpenStreams()))
	}
	if tc, ok := g.taskStore.(store.GatewayTaskCounter); ok {
		ctx, cancel := context.WithTimeout(g.life, approvalsScrapeTimeout)
		counts, err := tc.CountGatewayTasks(ctx, time.Now())
		cancel()
		if err != nil {
			ch <- prometheus.NewInvalidMetric(descTaskRecords, err)
		} else {
			byLabel := make(map[string]int, len(taskStatuses))
			for _, st := range taskStatuses {
				byLabel[st] = 0 // every status present, at 0 when none
			}
			for st, n := range counts {
				byLabel[boundLabel(st, knownTaskStatuses)] += n
			}
			for st, n := range byLabel {
				ch <- prometheus.MustNewConstMetric(descTaskRecords, prometheus.GaugeValue, float64(n), st)
			}
		}
	}
	for _, st := range g.UpstreamStates() {
		ch <- prometheus.MustNewConstMetric(descUpstreamState, prometheus.GaugeValue, 1, st.Name, st.State)
	}
	ch <- prometheus.MustNewConstMetric(descOverload, prometheus.CounterValue, float64(g.Shed()))
	if a := g.opts.Audit; a != nil {
		s := a.Stats()
		ch <- prometheus.MustNewConstMetric(descAuditRecords, prometheus.CounterValue, float64(s.Records))
		ch <- prometheus.MustNewConstMetric(descAuditCommits, prometheus.CounterValue, float64(s.Commits))
		ch <- prometheus.MustNewConstMetric(descAuditPending, prometheus.GaugeValue, float64(s.Pending))
		ch <- prometheus.MustNewConstSummary(descAuditSync, s.Syncs, s.SyncTime.Seconds(), nil)
	}
	if ap := g.opts.Approvals; ap != nil {
		ctx, cancel := context.WithTimeout(g.life, approvalsScrapeTimeout)
		defer cancel()
		if p, err := ap.Pending(ctx); err == nil {
			ch <- prometheus.MustNewConstMetric(descApprovals, prometheus.GaugeValue, float64(len(p)))
		} else {
			ch <- prometheus.NewInvalidMetric(descApprovals, err)
		}
	}
}

// MetricsHandler returns the handler of /metrics: the metrics of
// Options.Metrics in the Prometheus text format, to any caller. It is nil
// when the gateway has no metrics. Handler serves it at /metrics to
// loopback callers only when Options.MetricsOnHandler is set; serve it on
// a separate listener otherwise.
func (g *Gateway) MetricsHandler() http.Handler {
	if g.opts.Metrics == nil {
		return nil
	}
	return promhttp.HandlerFor(g.opts.Metrics, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// loopbackOnly answers 403 to callers whose address is not a loopback
// address. Behind a reverse proxy on the same host every caller is
// loopback: put /metrics on its own listener (metrics_listen) there.
func loopbackOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			http.Error(w, "metrics are served to loopback callers only (or set observability.metrics_listen)", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// count returns the number of sessions registered.
func (r *sessionRegistry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byServer)
}
