package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/internal/jsonraw"
	"github.com/mcpgate/mcpgate/policy"
)

// Traces and the request log.
//
// With Options.TracerProvider set, every client request the admission
// stage handles gets one span (kind server), with children for the policy
// decision, each audit append and each request sent to an upstream (kind
// client). A W3C trace context the client sent (the traceparent and
// tracestate HTTP headers, or the same keys in params._meta, which win)
// is the parent of the request's span. Requests to upstreams carry the
// upstream span's context in params._meta (traceparent, tracestate), as
// the 2026-07-28 revision reserves those keys, and in the HTTP headers
// of HTTP upstreams. Spans carry the method, upstream, tool or prompt
// name, decision and outcome: never arguments, results or tokens.
//
// At debug level, the log has one "request" record per client request
// with the same fields, its duration and the first 8 characters of the
// session id.

// instrumentationName names the gateway's tracer.
const instrumentationName = "github.com/mcpgate/mcpgate/gateway"

// traceProp reads and writes W3C trace context and baggage.
var traceProp = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// Span attribute keys. The names follow OpenTelemetry's semantic
// conventions for MCP where one exists.
const (
	attrMethod   = attribute.Key("mcp.method.name")
	attrTool     = attribute.Key("gen_ai.tool.name")
	attrTarget   = attribute.Key("mcpgate.target")
	attrUpstream = attribute.Key("mcpgate.upstream")
	attrDecision = attribute.Key("mcpgate.decision")
	attrOutcome  = attribute.Key("mcpgate.outcome")
)

// reqObs observes one client request: its metrics, span and request log
// record. It rides in the request's context (obsOf).
type reqObs struct {
	start time.Time
	span  trace.Span // nil without tracing
	// upstreamNanos is the time spent waiting for upstreams.
	upstreamNanos atomic.Int64
	// decision and outcome are those of the last audit record of the
	// request (noteRecord).
	mu                sync.Mutex
	decision, outcome string
}

type reqObsKey struct{}

func obsOf(ctx context.Context) *reqObs {
	o, _ := ctx.Value(reqObsKey{}).(*reqObs)
	return o
}

// observe starts observing a client request; finish ends it.
func (g *Gateway) observe(ctx context.Context, method string, params jsontext.Value) (context.Context, *reqObs) {
	o := &reqObs{start: time.Now()}
	if g.tracer != nil {
		ctx = traceParent(ctx, params)
		ctx, o.span = g.tracer.Start(ctx, method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attrMethod.String(method)))
	}
	return context.WithValue(ctx, reqObsKey{}, o), o
}

// finish records what became of a request: the request counter and
// histogram, the span's attributes and end, and the debug request log.
func (g *Gateway) finish(ctx context.Context, o *reqObs, c *call, err error) {
	total := time.Since(o.start)
	o.mu.Lock()
	decision, outcome := o.decision, o.outcome
	o.mu.Unlock()
	if decision == "" {
		decision = "none" // not decided by policy: no controls, or refused before
	}
	if outcome == "" {
		outcome = audit.OutcomeOK
		if err != nil {
			outcome = audit.OutcomeError
		}
	}
	upstream := c.res.Upstream
	if upstream == "" && c.up != nil {
		upstream = c.up.cfg.Name
	}
	method := metricMethod(c.method)
	own := total - time.Duration(o.upstreamNanos.Load())
	g.metrics.request(requestLabels{method, upstream, boundLabel(decision, metricDecisions), boundLabel(outcome, metricOutcomes)}, own)
	if s := o.span; s != nil {
		s.SetAttributes(attrUpstream.String(upstream), attrDecision.String(decision), attrOutcome.String(outcome))
		if t := c.target(); t != "" {
			key := attrTarget
			if c.res.Kind == policy.KindTool {
				key = attrTool
			}
			s.SetAttributes(key.String(t))
		}
		if err != nil {
			s.SetStatus(codes.Error, outcome)
		}
		s.End()
	}
	if g.logger.Enabled(ctx, slog.LevelDebug) {
		g.logger.LogAttrs(ctx, slog.LevelDebug, "request",
			slog.String("method", method), slog.String("upstream", upstream), slog.String("target", c.target()),
			slog.String("decision", decision), slog.String("outcome", outcome),
			slog.Duration("duration", total), slog.Duration("gateway_time", own),
			slog.String("session", sessionPrefix(c.ds.id())))
	}
}

// sessionPrefix shortens a session id for the log: enough to tell
// sessions apart, too little to use one.
func sessionPrefix(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// noteRecord counts task statuses (task.created, task.status records),
// notes the decision and outcome of an audit record of the request in
// ctx, and starts the audit append's span; call the returned
// function when the append is done.
func (g *Gateway) noteRecord(ctx context.Context, r *audit.Record) (context.Context, func(error)) {
	if r.Action == actionTaskCreated || r.Action == actionTaskStatus {
		g.metrics.taskStatus(r.Outcome)
	}
	o := obsOf(ctx)
	if o == nil {
		return ctx, func(error) {}
	}
	o.mu.Lock()
	if r.Decision != "" {
		o.decision = r.Decision
	}
	if r.Outcome != "" {
		o.outcome = r.Outcome
	}
	o.mu.Unlock()
	if o.span == nil || g.opts.Audit == nil {
		return ctx, func(error) {}
	}
	ctx, s := g.tracer.Start(ctx, "audit append", trace.WithAttributes(attribute.String("mcpgate.audit.phase", r.Phase)))
	return ctx, func(err error) { endSpan(s, err) }
}

// policySpan starts the span of a policy decision; call the returned
// function with the decision.
func (g *Gateway) policySpan(ctx context.Context) func(policy.Decision) {
	if g.tracer == nil || obsOf(ctx) == nil || obsOf(ctx).span == nil {
		return func(policy.Decision) {}
	}
	_, s := g.tracer.Start(ctx, "policy decision")
	return func(d policy.Decision) {
		s.SetAttributes(attribute.Bool("mcpgate.policy.allow", d.Allow),
			attribute.Bool("mcpgate.policy.approval_required", d.RequireApproval),
			attribute.String("mcpgate.policy.version", d.PolicyVersion))
		s.End()
	}
}

// upstreamCall observes a request sent to upstream: the upstream
// latency histogram, the request's upstream time and, with tracing, a
// client span whose context is put in params._meta and in ctx (for the
// HTTP headers). Call the returned function with the outcome.
func (g *Gateway) upstreamCall(ctx context.Context, upstream, method string, params jsontext.Value) (context.Context, jsontext.Value, func(error)) {
	start := time.Now()
	o := obsOf(ctx)
	var s trace.Span
	if g.tracer != nil && trace.SpanContextFromContext(ctx).IsValid() {
		ctx, s = g.tracer.Start(ctx, method, trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attrMethod.String(method), attrUpstream.String(upstream)))
		params = injectMeta(ctx, params)
	}
	return ctx, params, func(err error) {
		d := time.Since(start)
		g.metrics.upstreamTime(upstream, d)
		if o != nil {
			o.upstreamNanos.Add(int64(d))
		}
		if s != nil {
			endSpan(s, err)
		}
	}
}

func endSpan(s trace.Span, err error) {
	if err != nil {
		s.SetStatus(codes.Error, err.Error())
	}
	s.End()
}

// metaCarrier is params._meta as a propagation carrier, for the keys of
// trace context and baggage.
type metaCarrier map[string]string

func (m metaCarrier) Get(key string) string { return m[key] }
func (m metaCarrier) Set(key, value string) { m[key] = value }
func (m metaCarrier) Keys() []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// traceKeys are the _meta keys the 2026-07-28 revision reserves for trace
// context.
var traceKeys = [...]string{"traceparent", "tracestate", "baggage"}

// traceParent returns ctx with the trace context of params._meta, when
// the client sent one; else ctx, which may hold the context of the HTTP
// headers (extractTrace).
func traceParent(ctx context.Context, params jsontext.Value) context.Context {
	tp, ok, _ := jsonraw.GetPath(params, "_meta", "traceparent")
	if !ok || tp.Kind() != '"' {
		return ctx
	}
	m := metaCarrier{}
	for _, k := range traceKeys {
		if v, ok, _ := jsonraw.GetPath(params, "_meta", k); ok && v.Kind() == '"' {
			if s, err := strconv.Unquote(string(v)); err == nil {
				m[k] = s
			}
		}
	}
	return traceProp.Extract(ctx, m)
}

// injectMeta returns params with the trace context of ctx in _meta. The
// params are returned unchanged if they cannot carry it.
func injectMeta(ctx context.Context, params jsontext.Value) jsontext.Value {
	m := metaCarrier{}
	traceProp.Inject(ctx, m)
	if len(params) == 0 || string(params) == "null" {
		params = jsontext.Value("{}")
	}
	for _, k := range traceKeys {
		v, ok := m[k]
		if !ok {
			continue
		}
		out, err := jsonraw.SetPath(params, jsontext.Value(strconv.Quote(v)), "_meta", k)
		if err != nil {
			return params
		}
		params = out
	}
	return params
}

// extractTrace puts the trace context of a request's HTTP headers in its
// context, for the spans of the MCP requests it carries.
func extractTrace(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("traceparent") != "" {
			r = r.WithContext(traceProp.Extract(r.Context(), propagation.HeaderCarrier(r.Header)))
		}
		h.ServeHTTP(w, r)
	})
}

// traceTransport writes the trace context of each request's context in
// its HTTP headers: HTTP upstreams continue the gateway's trace.
type traceTransport struct{ base http.RoundTripper }

func (t *traceTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !trace.SpanContextFromContext(r.Context()).IsValid() {
		return t.base.RoundTrip(r)
	}
	r = r.Clone(r.Context())
	traceProp.Inject(r.Context(), propagation.HeaderCarrier(r.Header))
	return t.base.RoundTrip(r)
}

// CloseIdleConnections closes the base transport's idle connections.
func (t *traceTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// withTraceTransport returns a copy of c whose transport propagates the
// trace context.
func withTraceTransport(c *http.Client) *http.Client {
	out := *c
	out.Transport = &traceTransport{base: transportOf(c)}
	return &out
}
