// Package roundtrip benchmarks one tools/call round trip over Streamable HTTP
// (client and server in one process, on loopback TCP through
// net/http/httptest) for mcpgate's mcp package, the official Go SDK
// (go-sdk v1.8.0) and mark3labs/mcp-go v1.6.0, in both protocol
// generations: legacy (2025-11-25: an initialized session, Mcp-Session-Id)
// and modern (2026-07-28: stateless, the per-request _meta envelope and the
// Mcp-Method/Mcp-Name headers, server/discover done once at connection as a
// real client does).
//
// The workload is the same everywhere: a tool "echo" whose input schema
// requires a string "text", called with {"text":"hello world"}, answering
// one text block with that text. Every client lists the tools once before
// the timed loop, as a real client does before calling.
//
// This directory is its own module, so that the peers' versions (mcp-go
// v1.6.0 speaks 2026-07-28; the main module keeps v1.2.1 for its own tests)
// do not touch the main module. On a shared machine, run every
// configuration in turn, several times, and compare medians:
//
//	cd bench/roundtrip && go test -c -o /tmp/roundtrip.test .
//	for i in 1 2 3 4 5 6; do /tmp/roundtrip.test -test.run '^$' -test.bench . -test.benchmem -test.benchtime 3000x; done
//
// (go test -count N runs each configuration N times in a row instead.)
// Besides ns/op the benchmark reports cpu-ns/op, the process's CPU time
// per round trip.
package roundtrip

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	mcpgo "github.com/mark3labs/mcp-go/client"
	mcpgotransport "github.com/mark3labs/mcp-go/client/transport"
	mcpgomcp "github.com/mark3labs/mcp-go/mcp"
	mcpgoserver "github.com/mark3labs/mcp-go/server"
	gosdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate/mcp"
)

const (
	echoSchema = `{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}`
	legacy     = "2025-11-25"
	modern     = "2026-07-28"
)

// BenchmarkToolCallRoundTrip runs every implementation in both
// generations. With -count N the whole set runs N times in turn, so the
// configurations are interleaved and share the machine's load alike.
func BenchmarkToolCallRoundTrip(b *testing.B) {
	for _, era := range []string{legacy, modern} {
		name := map[string]string{legacy: "legacy", modern: "modern"}[era]
		b.Run("mcpgate/"+name, func(b *testing.B) { benchMcpgate(b, era) })
		b.Run("go-sdk/"+name, func(b *testing.B) { benchGoSDK(b, era, false) })
		b.Run("go-sdk-json/"+name, func(b *testing.B) { benchGoSDK(b, era, true) })
		b.Run("mcp-go/"+name, func(b *testing.B) { benchMcpGo(b, era) })
	}
}

// eraCheck wraps a server's handler and counts the tools/call POSTs made
// in each generation, so that a benchmark fails if a client did not speak
// the generation it is reported under.
type eraCheck struct {
	h              http.Handler
	modern, legacy atomic.Int64
}

func (e *eraCheck) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && r.Header.Get("Mcp-Method") == "tools/call" {
		e.modern.Add(1)
	} else if r.Method == http.MethodPost && r.Header.Get("Mcp-Session-Id") != "" {
		e.legacy.Add(1)
	}
	e.h.ServeHTTP(w, r)
}

// verify fails b unless at least n requests were made in era (and none in
// the other).
func (e *eraCheck) verify(b *testing.B, era string, n int) {
	b.Helper()
	got, other := e.legacy.Load(), e.modern.Load()
	if era == modern {
		got, other = other, got
	}
	if got < int64(n) || other != 0 {
		b.Fatalf("%s: %d requests in that generation, %d in the other (want ≥ %d and 0)", era, got, other, n)
	}
}

// cpuTimer measures the CPU time the process spends in the timed loop
// (client and server together, user and system), reported as cpu-ns/op:
// on a machine shared with other work it varies much less than the wall
// time.
type cpuTimer struct{ start time.Duration }

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU(b *testing.B) *cpuTimer {
	b.ReportAllocs()
	b.ResetTimer()
	return &cpuTimer{start: processCPU()}
}

func (c *cpuTimer) stop(b *testing.B) {
	b.StopTimer()
	b.ReportMetric(float64(processCPU()-c.start)/float64(b.N), "cpu-ns/op")
}

// serve starts an httptest server (loopback TCP) in front of h.
func serve(b *testing.B, h http.Handler) (*httptest.Server, *eraCheck) {
	e := &eraCheck{h: h}
	srv := httptest.NewServer(e)
	b.Cleanup(srv.Close)
	return srv, e
}

func benchMcpgate(b *testing.B, era string) {
	s := mcp.NewServer(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
	s.AddTool(&mcp.Tool{Name: "echo", InputSchema: jsontext.Value(echoSchema)}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var in struct {
			Text string `json:"text"`
		}
		if err := json.Unmarshal(req.Params.Arguments, &in); err != nil {
			return nil, err
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	b.Cleanup(func() { h.Close() })
	srv, check := serve(b, h)
	ctx := context.Background()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "bench-client", Version: "1"}, &mcp.ClientOptions{ProtocolVersion: era, ModernOnly: era == modern}).
		Connect(ctx, &mcp.StreamableClientTransport{Endpoint: srv.URL, HTTPClient: srv.Client()}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer cs.Close()
	if _, err := cs.ListTools(ctx, nil); err != nil {
		b.Fatal(err)
	}
	args := jsontext.Value(`{"text":"hello world"}`)
	cpu := startCPU(b)
	for b.Loop() {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: args})
		if err != nil {
			b.Fatal(err)
		}
		if res.Content[0].(*mcp.TextContent).Text != "hello world" {
			b.Fatal("wrong result")
		}
	}
	cpu.stop(b)
	check.verify(b, era, b.N)
}

type echoIn struct {
	Text string `json:"text"`
}

// benchGoSDK serves go-sdk statelessly in the modern generation: its
// handler serves 2026-07-28 only with StreamableHTTPOptions.Stateless.
func benchGoSDK(b *testing.B, era string, jsonResponse bool) {
	s := gosdk.NewServer(&gosdk.Implementation{Name: "bench", Version: "1"}, nil)
	gosdk.AddTool(s, &gosdk.Tool{Name: "echo"}, func(ctx context.Context, req *gosdk.CallToolRequest, in echoIn) (*gosdk.CallToolResult, any, error) {
		return &gosdk.CallToolResult{Content: []gosdk.Content{&gosdk.TextContent{Text: in.Text}}}, nil, nil
	})
	srv, check := serve(b, gosdk.NewStreamableHTTPHandler(func(*http.Request) *gosdk.Server { return s }, &gosdk.StreamableHTTPOptions{JSONResponse: jsonResponse, Stateless: era == modern}))
	ctx := context.Background()
	cs, err := gosdk.NewClient(&gosdk.Implementation{Name: "bench-client", Version: "1"}, nil).
		Connect(ctx, &gosdk.StreamableClientTransport{Endpoint: srv.URL, HTTPClient: srv.Client()}, &gosdk.ClientSessionOptions{ProtocolVersion: era})
	if err != nil {
		b.Fatal(err)
	}
	defer cs.Close()
	if v := cs.InitializeResult().ProtocolVersion; v != era {
		b.Fatalf("go-sdk negotiated %s, want %s", v, era)
	}
	if _, err := cs.ListTools(ctx, nil); err != nil {
		b.Fatal(err)
	}
	cpu := startCPU(b)
	for b.Loop() {
		res, err := cs.CallTool(ctx, &gosdk.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hello world"}})
		if err != nil {
			b.Fatal(err)
		}
		if res.Content[0].(*gosdk.TextContent).Text != "hello world" {
			b.Fatal("wrong result")
		}
	}
	cpu.stop(b)
	check.verify(b, era, b.N)
}

func benchMcpGo(b *testing.B, era string) {
	s := mcpgoserver.NewMCPServer("bench", "1")
	s.AddTool(mcpgomcp.NewTool("echo", mcpgomcp.WithString("text", mcpgomcp.Required())), func(ctx context.Context, req mcpgomcp.CallToolRequest) (*mcpgomcp.CallToolResult, error) {
		text, err := req.RequireString("text")
		if err != nil {
			return mcpgomcp.NewToolResultError(err.Error()), nil
		}
		return mcpgomcp.NewToolResultText(text), nil
	})
	srv, check := serve(b, mcpgoserver.NewStreamableHTTPServer(s))
	ctx := context.Background()
	tr, err := mcpgotransport.NewStreamableHTTP(srv.URL+"/mcp", mcpgotransport.WithHTTPBasicClient(srv.Client()))
	if err != nil {
		b.Fatal(err)
	}
	c := mcpgo.NewClient(tr, mcpgo.WithProtocolVersion(era))
	defer c.Close()
	if err := c.Start(ctx); err != nil {
		b.Fatal(err)
	}
	init := mcpgomcp.InitializeRequest{}
	init.Params.ProtocolVersion = era
	init.Params.ClientInfo = mcpgomcp.Implementation{Name: "bench-client", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		b.Fatal(err)
	}
	if v := c.ProtocolVersion(); v != era {
		b.Fatalf("mcp-go negotiated %s, want %s", v, era)
	}
	if _, err := c.ListTools(ctx, mcpgomcp.ListToolsRequest{}); err != nil {
		b.Fatal(err)
	}
	cpu := startCPU(b)
	for b.Loop() {
		req := mcpgomcp.CallToolRequest{}
		req.Params.Name = "echo"
		req.Params.Arguments = map[string]any{"text": "hello world"}
		res, err := c.CallTool(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		if tc, ok := res.Content[0].(mcpgomcp.TextContent); !ok || tc.Text != "hello world" {
			b.Fatalf("wrong result %#v", res.Content)
		}
	}
	cpu.stop(b)
	check.verify(b, era, b.N)
}
