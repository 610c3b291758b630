package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/gateway"
	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/mcp"
)

// counting counts the requests that reach the console's place on the
// mux.
type counting struct {
	n atomic.Int64
	h http.Handler
}

func (c *counting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.n.Add(1)
	if c.h != nil {
		c.h.ServeHTTP(w, r)
		return
	}
	http.NotFound(w, r)
}

// tb is what mcpCaller needs of a test or benchmark.
type tb interface {
	Helper()
	Fatal(...any)
	Cleanup(func())
}

// mcpCaller starts a gateway in front of one upstream, with console (nil
// for none) mounted, and returns a client session to it.
func mcpCaller(t tb, console http.Handler) *mcp.ClientSession {
	t.Helper()
	up := mcp.NewServer(&mcp.Implementation{Name: "up", Version: "1"}, nil)
	up.AddTool(&mcp.Tool{Name: "echo", InputSchema: jsontext.Value(`{"type":"object"}`)}, func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: string(req.Params.Arguments)}}}, nil
	})
	upSrv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up }, nil))
	t.Cleanup(upSrv.Close)
	prefix := ""
	g, err := gateway.New(&config.Config{Upstreams: []config.Upstream{{Name: "up", URL: upSrv.URL, Prefix: &prefix}}}, &gateway.Options{Console: console})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(func() { srv.Close(); g.Close() })
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: srv.URL + "/mcp"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func call(ctx context.Context, cs *mcp.ClientSession) error {
	_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: jsontext.Value(`{"x":1}`)})
	return err
}

// TestConsoleNotOnMCPPath: the console is only mounted beside /mcp;
// nothing of an MCP session (initialize, lists, calls, the session's
// end) reaches it.
func TestConsoleNotOnMCPPath(t *testing.T) {
	c := &counting{}
	cs := mcpCaller(t, c)
	ctx := context.Background()
	for range 20 {
		if err := call(ctx, cs); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cs.ListTools(ctx, nil); err != nil {
		t.Fatal(err)
	}
	cs.Close()
	if n := c.n.Load(); n != 0 {
		t.Errorf("%d MCP requests reached the console", n)
	}
}

// BenchmarkMCPCall measures a tools/call through the gateway without and
// with the console mounted, in the same run (issue 15: the console adds
// nothing to the latency of /mcp calls).
func BenchmarkMCPCall(b *testing.B) {
	for _, bc := range []struct {
		name    string
		console http.Handler
	}{{"console=off", nil}, {"console=on", &counting{}}} {
		b.Run(bc.name, func(b *testing.B) {
			cs := mcpCaller(b, bc.console)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := call(ctx, cs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
