// Package gateway benchmarks the latency mcpgate's gateway adds to a
// tools/call: the same upstream (an mcp server on loopback Streamable HTTP)
// is called directly and through the gateway, in one run, with 1 and 32
// concurrent client sessions. It reports the added p50 and p99 latency and
// the throughput ratio (gateway / direct).
//
// Run with:
//
//	go test ./bench/gateway -run '^$' -bench . -benchtime 20000x
package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/gateway"
	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/mcp"
)

func echoServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "upstream", Version: "1"}, nil)
	s.AddTool(&mcp.Tool{Name: "echo", InputSchema: jsontext.Value(`{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}`)},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ok"}}}, nil
		})
	return s
}

func BenchmarkGatewayAddedLatency(b *testing.B) {
	for _, sessions := range []int{1, 32} {
		b.Run(map[int]string{1: "sessions=1", 32: "sessions=32"}[sessions], func(b *testing.B) {
			up := echoServer()
			upSrv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up }, nil))
			defer upSrv.Close()
			prefix := ""
			g, err := gateway.New(&config.Config{Upstreams: []config.Upstream{{Name: "up", URL: upSrv.URL, Prefix: &prefix}}}, nil)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			if err := g.Start(ctx); err != nil {
				b.Fatal(err)
			}
			defer g.Close()
			gwSrv := httptest.NewServer(g.Handler())
			defer gwSrv.Close()

			calls := max(b.N/sessions, 1)
			direct := run(b, upSrv.URL, sessions, calls)
			through := run(b, gwSrv.URL+"/mcp", sessions, calls)
			b.ReportMetric(float64(direct.p50.Microseconds()), "direct-p50-µs")
			b.ReportMetric(float64(through.p50.Microseconds()), "gateway-p50-µs")
			b.ReportMetric(float64((through.p50 - direct.p50).Microseconds()), "added-p50-µs")
			b.ReportMetric(float64((through.p99 - direct.p99).Microseconds()), "added-p99-µs")
			b.ReportMetric(through.perSecond/direct.perSecond, "throughput-ratio")
			b.ReportMetric(0, "ns/op") // the metrics above are the result
		})
	}
}

type stats struct {
	p50, p99  time.Duration
	perSecond float64
}

// run makes calls tools/call requests on each of n sessions concurrently
// and returns the latency percentiles and the throughput.
func run(b *testing.B, url string, n, calls int) stats {
	ctx := context.Background()
	// The same client setup for both arms: a pool with room for every
	// session's connection.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	hc := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	sessions := make([]*mcp.ClientSession, n)
	for i := range sessions {
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil).
			Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: hc}, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer cs.Close()
		sessions[i] = cs
	}
	args := jsontext.Value(`{"text":"hello"}`)
	lat := make([][]time.Duration, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i, cs := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat[i] = make([]time.Duration, 0, calls)
			for range calls {
				t0 := time.Now()
				if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: args}); err != nil {
					b.Error(err)
					return
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		b.Fatal("no calls completed")
	}
	return stats{
		p50:       all[len(all)/2],
		p99:       all[len(all)*99/100],
		perSecond: float64(len(all)) / elapsed.Seconds(),
	}
}
