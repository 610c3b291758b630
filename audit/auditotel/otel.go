// Package auditotel exports audit records as OpenTelemetry log records
// over OTLP/HTTP. It is a package of its own so that the OpenTelemetry SDK
// is linked only into programs that configure it (internal/app), not into
// everything that imports package audit.
package auditotel

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/mcpgate/mcpgate/audit"
)

// exportTimeout bounds one export request and Close, as audit's own
// exporters do.
const exportTimeout = 10 * time.Second

// Options configure New.
type Options struct {
	// Endpoint is the OTLP/HTTP logs URL, for example
	// "https://collector.example:4318/v1/logs". Empty uses the standard
	// OTEL_EXPORTER_OTLP_LOGS_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT
	// environment variables (default https://localhost:4318/v1/logs).
	Endpoint string
	// Headers are sent with every request (for example an API key).
	Headers map[string]string
	// ServiceName is the resource's service.name (default "mcpgate").
	ServiceName string
	// Timeout bounds one export request (default 10s).
	Timeout time.Duration
}

// Exporter sends records as OpenTelemetry log records over OTLP/HTTP
// (protobuf). Each log record's body is the audit record's JSON; its
// attributes repeat the main fields under "mcpgate.audit.*"; its event
// name is "mcpgate.audit"; its timestamp is the record's time.
type Exporter struct {
	mu       sync.Mutex
	provider *sdklog.LoggerProvider
	logger   otellog.Logger
	proc     *collector
	exp      sdklog.Exporter
}

// collector is a Processor that keeps what the logger emits, so that
// Export can hand a whole batch to the OTLP exporter and see its error.
type collector struct {
	recs []sdklog.Record
}

func (c *collector) OnEmit(_ context.Context, r *sdklog.Record) error {
	c.recs = append(c.recs, r.Clone())
	return nil
}
func (c *collector) Enabled(context.Context, sdklog.EnabledParameters) bool { return true }
func (c *collector) Shutdown(context.Context) error                         { return nil }
func (c *collector) ForceFlush(context.Context) error                       { return nil }

// New returns an exporter to an OTLP/HTTP logs endpoint, for
// audit.Options.Exporters. opts may be nil. Retries are the Log's (bounded); the OTLP client's own
// retry is off.
func New(ctx context.Context, opts *Options) (audit.Exporter, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.ServiceName == "" {
		o.ServiceName = "mcpgate"
	}
	if o.Timeout <= 0 {
		o.Timeout = exportTimeout
	}
	hopts := []otlploghttp.Option{
		otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: false}),
		otlploghttp.WithTimeout(o.Timeout),
	}
	if o.Endpoint != "" {
		hopts = append(hopts, otlploghttp.WithEndpointURL(o.Endpoint))
	}
	if len(o.Headers) > 0 {
		hopts = append(hopts, otlploghttp.WithHeaders(o.Headers))
	}
	exp, err := otlploghttp.New(ctx, hopts...)
	if err != nil {
		return nil, fmt.Errorf("audit: otel: %w", err)
	}
	proc := &collector{}
	res := resource.NewSchemaless(attribute.String("service.name", o.ServiceName))
	provider := sdklog.NewLoggerProvider(sdklog.WithResource(res), sdklog.WithProcessor(proc))
	return &Exporter{
		provider: provider,
		logger:   provider.Logger("github.com/mcpgate/mcpgate/audit"),
		proc:     proc,
		exp:      exp,
	}, nil
}

// Export implements audit.Exporter.
func (e *Exporter) Export(ctx context.Context, recs []*audit.Record) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.exp == nil {
		return errors.New("audit: otel: closed")
	}
	e.proc.recs = e.proc.recs[:0]
	now := time.Now()
	for _, r := range recs {
		body, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("audit: otel: record %d: %w", r.Seq, err)
		}
		var lr otellog.Record
		lr.SetEventName("mcpgate.audit")
		lr.SetTimestamp(r.Time)
		lr.SetObservedTimestamp(now)
		if r.Decision == audit.DecisionDeny || r.Outcome == audit.OutcomeError || r.Outcome == audit.OutcomeDenied {
			lr.SetSeverity(otellog.SeverityWarn)
			lr.SetSeverityText("WARN")
		} else {
			lr.SetSeverity(otellog.SeverityInfo)
			lr.SetSeverityText("INFO")
		}
		lr.SetBody(attribute.StringValue(string(body)))
		lr.AddAttributes(
			attribute.Int64("mcpgate.audit.seq", int64(r.Seq)),
			attribute.String("mcpgate.audit.action", r.Action),
			attribute.String("mcpgate.audit.user", r.User),
			attribute.String("mcpgate.audit.client", r.Client),
			attribute.String("mcpgate.audit.session", r.Session),
			attribute.String("mcpgate.audit.upstream", r.Upstream),
			attribute.String("mcpgate.audit.target", r.Target),
			attribute.String("mcpgate.audit.decision", r.Decision),
			attribute.String("mcpgate.audit.outcome", r.Outcome),
			attribute.String("mcpgate.audit.phase", r.Phase),
			attribute.String("mcpgate.audit.hash", r.Hash),
		)
		e.logger.Emit(ctx, lr)
	}
	if len(e.proc.recs) != len(recs) {
		return fmt.Errorf("audit: otel: %d of %d records emitted", len(e.proc.recs), len(recs))
	}
	if err := e.exp.Export(ctx, e.proc.recs); err != nil {
		return fmt.Errorf("audit: otel: %w", err)
	}
	return nil
}

// ExportCheckpoint implements audit.CheckpointSink: the checkpoint is a log
// record with event name "mcpgate.audit.checkpoint", its JSON line as
// body, and attributes mcpgate.audit.seq, mcpgate.audit.hash and
// mcpgate.audit.key_id.
func (e *Exporter) ExportCheckpoint(ctx context.Context, c *audit.Checkpoint) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.exp == nil {
		return errors.New("audit: otel: closed")
	}
	body, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("audit: otel: checkpoint %d: %w", c.Seq, err)
	}
	e.proc.recs = e.proc.recs[:0]
	var lr otellog.Record
	lr.SetEventName("mcpgate.audit.checkpoint")
	lr.SetTimestamp(c.Time)
	lr.SetObservedTimestamp(time.Now())
	lr.SetSeverity(otellog.SeverityInfo)
	lr.SetSeverityText("INFO")
	lr.SetBody(attribute.StringValue(string(body)))
	lr.AddAttributes(
		attribute.Int64("mcpgate.audit.seq", int64(c.Seq)),
		attribute.String("mcpgate.audit.hash", c.Hash),
		attribute.String("mcpgate.audit.key_id", c.KeyID),
	)
	e.logger.Emit(ctx, lr)
	if len(e.proc.recs) != 1 {
		return errors.New("audit: otel: checkpoint not emitted")
	}
	if err := e.exp.Export(ctx, e.proc.recs); err != nil {
		return fmt.Errorf("audit: otel: %w", err)
	}
	return nil
}

// Close implements audit.Exporter.
func (e *Exporter) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.exp == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), exportTimeout)
	defer cancel()
	err := errors.Join(e.provider.Shutdown(ctx), e.exp.Shutdown(ctx))
	e.exp = nil
	return err
}
