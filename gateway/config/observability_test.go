package config

import (
	"strings"
	"testing"
)

func TestObservabilityValidate(t *testing.T) {
	off, ratio, bad := false, 0.5, 1.5
	tests := []struct {
		o    *Observability
		want string // "" when valid
	}{
		{nil, ""},
		{&Observability{}, ""},
		{&Observability{MetricsListen: "127.0.0.1:9464", OTLPTracesEndpoint: "http://collector:4318", TraceSampleRatio: &ratio}, ""},
		{&Observability{MetricsListen: "nowhere"}, "observability.metrics_listen"},
		{&Observability{Metrics: &off, MetricsListen: "127.0.0.1:9464"}, "metrics is false"},
		{&Observability{OTLPTracesEndpoint: "collector:4318"}, "observability.otlp_traces_endpoint"},
		{&Observability{OTLPTracesEndpoint: "ftp://collector"}, "observability.otlp_traces_endpoint"},
		{&Observability{TraceSampleRatio: &bad}, "observability.trace_sample_ratio"},
	}
	for _, tt := range tests {
		c := &Config{Listen: DefaultListen, Auth: AuthNone, Upstreams: []Upstream{{Name: "a", URL: "http://127.0.0.1:1/mcp"}}, Observability: tt.o}
		err := c.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v: %v", tt.o, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%+v: error %v, want %q", tt.o, err, tt.want)
		}
	}
}

func TestObservabilityDefaults(t *testing.T) {
	var o *Observability
	if !o.MetricsOn() || o.SampleRatio() != 1 {
		t.Errorf("nil section: metrics %v, ratio %v", o.MetricsOn(), o.SampleRatio())
	}
	off := false
	if (&Observability{Metrics: &off}).MetricsOn() {
		t.Error("metrics: false is on")
	}
}

func TestObservabilityYAML(t *testing.T) {
	c, err := parseYAML("t", []byte("observability:\n  metrics: false\n  otlp_traces_endpoint: http://c:4318\n  trace_sample_ratio: 0.1\n"))
	if err != nil {
		t.Fatal(err)
	}
	o := c.Observability
	if o == nil || o.MetricsOn() || o.OTLPTracesEndpoint != "http://c:4318" || o.SampleRatio() != 0.1 {
		t.Errorf("decoded %+v", o)
	}
	if _, err := parseYAML("t", []byte("observability:\n  metric: true\n")); err == nil {
		t.Error("unknown key accepted")
	}
}
