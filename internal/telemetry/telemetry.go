// Package telemetry builds what mcpgate sends to observability systems
// besides its audit log: the OpenTelemetry trace pipeline (OTLP/HTTP), and
// the routing of other libraries' log output into the program's one
// slog handler.
package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/go-logr/logr"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// DefaultTracesPath is added to a traces endpoint URL that has no path.
const DefaultTracesPath = "/v1/traces"

// exportTimeout bounds one export request to the collector.
const exportTimeout = 10 * time.Second

// TracesURL returns the OTLP/HTTP URL spans are sent to for endpoint: the
// endpoint itself, with DefaultTracesPath when it has no path.
func TracesURL(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("traces endpoint %q is not an http or https URL", endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = DefaultTracesPath
	}
	return u.String(), nil
}

// NewTracerProvider returns a tracer provider that exports spans in
// batches over OTLP/HTTP to endpoint (see TracesURL), sampling ratio of
// the traces that start at mcpgate (a caller's sampled flag is followed).
// The resource names the service "mcpgate" with version. Shut it down to
// flush the last spans. No connection is made before the first export.
func NewTracerProvider(ctx context.Context, endpoint, version string, ratio float64) (*sdktrace.TracerProvider, error) {
	u, err := TracesURL(endpoint)
	if err != nil {
		return nil, err
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(u), otlptracehttp.WithTimeout(exportTimeout))
	if err != nil {
		return nil, fmt.Errorf("traces: %w", err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", "mcpgate"), attribute.String("service.version", version))
	return sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
	), nil
}

// RouteLogs sends the log output of the standard library's log package
// and of OpenTelemetry (its internal logger and its error handler)
// through logger's handler, so that a program writes one log format. It
// changes process-wide state: call it once, from main.
func RouteLogs(logger *slog.Logger) {
	// This also sends the log package's output to the handler, at info
	// level.
	slog.SetDefault(logger)
	otel.SetLogger(logr.FromSlogHandler(logger.Handler()))
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("opentelemetry", "error", err)
	}))
}
