package config

import "net/url"

// Observability configures what the gateway tells its operators besides
// the audit log: Prometheus metrics and OpenTelemetry traces. Absent
// means metrics on the main listener (answered to loopback callers only)
// and no traces. See docs/observability.md.
type Observability struct {
	// Metrics turns the Prometheus metrics endpoint /metrics on or off
	// (default on).
	Metrics *bool `yaml:"metrics" json:"metrics,omitempty"`
	// MetricsListen, when set, is a separate address (host:port) where
	// /metrics is served to any caller that can reach it, and the main
	// listener then serves no /metrics. Unset: /metrics is on the main
	// listener and answers only callers from a loopback address.
	MetricsListen string `yaml:"metrics_listen" json:"metrics_listen,omitempty"`
	// OTLPTracesEndpoint, when set, exports a trace of every MCP request
	// over OTLP/HTTP to this URL (e.g. http://collector:4318; the path
	// /v1/traces is added unless the URL has a path). Unset: no traces.
	OTLPTracesEndpoint string `yaml:"otlp_traces_endpoint" json:"otlp_traces_endpoint,omitempty"`
	// TraceSampleRatio is the fraction of requests without a sampled
	// parent that are traced, from 0 to 1 (default 1: every request).
	// A request whose caller sent a trace context follows its sampling
	// decision.
	TraceSampleRatio *float64 `yaml:"trace_sample_ratio" json:"trace_sample_ratio,omitempty"`
}

// MetricsOn reports whether the metrics endpoint is on.
func (o *Observability) MetricsOn() bool {
	return o == nil || o.Metrics == nil || *o.Metrics
}

// SampleRatio returns TraceSampleRatio with its default.
func (o *Observability) SampleRatio() float64 {
	if o == nil || o.TraceSampleRatio == nil {
		return 1
	}
	return *o.TraceSampleRatio
}

// observability checks the observability section.
func (v *validator) observability(o *Observability) {
	if o == nil {
		return
	}
	if o.MetricsListen != "" {
		if err := checkListen(o.MetricsListen); err != nil {
			v.add("observability.metrics_listen: %v", err)
		}
		if !o.MetricsOn() {
			v.add("observability.metrics_listen: set while metrics is false")
		}
	}
	if e := o.OTLPTracesEndpoint; e != "" {
		if u, err := url.Parse(e); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add("observability.otlp_traces_endpoint: %q is not an http or https URL", e)
		}
	}
	if r := o.TraceSampleRatio; r != nil && !(*r >= 0 && *r <= 1) {
		v.add("observability.trace_sample_ratio: %v is not between 0 and 1", *r)
	}
}
