package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/mcpgate/mcpgate/mcp"
)

// otlpCollector is an OTLP/HTTP traces endpoint that keeps the spans it
// receives.
type otlpCollector struct {
	mu    sync.Mutex
	spans []*tracepb.Span
	errs  []string
}

func (c *otlpCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	data, _ := io.ReadAll(io.LimitReader(body, 16<<20))
	var req coltracepb.ExportTraceServiceRequest
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.URL.Path != "/v1/traces" || proto.Unmarshal(data, &req) != nil {
		c.errs = append(c.errs, r.URL.Path+": not an OTLP traces export")
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			c.spans = append(c.spans, ss.Spans...)
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	b, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Write(b)
}

// TestServeOTLPTraceOfOneCall is issue 15's trace test end to end: one
// tools/call through "mcpgate serve" (observability.otlp_traces_endpoint
// set) reaches an OTLP/HTTP collector as a request span with its
// children, in the trace whose id the upstream received in the
// traceparent header and in _meta.
func TestServeOTLPTraceOfOneCall(t *testing.T) {
	col := &otlpCollector{}
	colSrv := httptest.NewServer(col)
	t.Cleanup(colSrv.Close)

	var mu sync.Mutex
	var headers, metas []string
	up := mcp.NewServer(&mcp.Implementation{Name: "up", Version: "1"}, nil)
	up.AddTool(&mcp.Tool{Name: "greet", InputSchema: jsontext.Value(`{"type":"object"}`)}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		if tp, ok := req.Params.Meta["traceparent"].(string); ok {
			mu.Lock()
			metas = append(metas, tp)
			mu.Unlock()
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "hello"}}}, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up }, nil)
	upSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			if bytes.Contains(body, []byte(`"tools/call"`)) {
				mu.Lock()
				headers = append(headers, r.Header.Get("traceparent"))
				mu.Unlock()
			}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(upSrv.Close)

	srv := serveYAML(t, "data_dir: "+t.TempDir()+"\nobservability:\n  otlp_traces_endpoint: "+colSrv.URL+
		"\nupstreams:\n  - name: up\n    url: "+upSrv.URL+"\n")
	waitForOutput(t, srv.stderr, srv.done, "catalogue:")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil).Connect(ctx, &mcp.StreamableClientTransport{Endpoint: srv.endpoint}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "up_greet"}); err != nil {
		t.Fatal(err)
	}
	cs.Close()
	// serve flushes the spans when it stops.
	srv.cancel()
	select {
	case code := <-srv.done:
		if code != 0 {
			t.Fatalf("serve exited with %d:\n%s", code, srv.stderr)
		}
	case <-ctx.Done():
		t.Fatal("serve did not stop")
	}

	mu.Lock()
	defer mu.Unlock()
	if len(headers) != 1 || len(metas) != 1 {
		t.Fatalf("traceparent at the upstream: headers %q, _meta %q; want one of each", headers, metas)
	}
	parts := strings.Split(headers[0], "-")
	if len(parts) != 4 || metas[0] != headers[0] {
		t.Fatalf("traceparent header %q, _meta %q", headers[0], metas[0])
	}
	trace := parts[1]
	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.errs) > 0 {
		t.Errorf("collector: %q", col.errs)
	}
	var call *tracepb.Span
	var inTrace []string
	for _, s := range col.spans {
		if hex.EncodeToString(s.TraceId) != trace {
			continue
		}
		inTrace = append(inTrace, s.Name)
		if len(s.ParentSpanId) == 0 {
			call = s
		}
	}
	t.Logf("trace %s at the upstream (header and _meta); spans of that trace at the collector: %q (%d spans received in all)", trace, inTrace, len(col.spans))
	if call == nil || !strings.Contains(call.Name, "tools/call") {
		t.Fatalf("no root tools/call span of trace %s at the collector; spans of the trace: %q", trace, inTrace)
	}
	children := 0
	for _, s := range col.spans {
		if bytes.Equal(s.ParentSpanId, call.SpanId) {
			children++
		}
	}
	if children == 0 {
		t.Errorf("the request span %q has no children at the collector (trace: %q)", call.Name, inTrace)
	}
}
