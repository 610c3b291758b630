// Package roundtrip benchmarks one tools/call round trip over Streamable HTTP
// (client and server in one process, on loopback) for mcpgate's mcp package,
// the official Go SDK and mark3labs/mcp-go, with the same workload: a tool
// "echo" whose input schema requires a string "text", called with
// {"text":"hello world"}, answering one text block with that text.
//
// Run with:
//
//	go test ./bench/roundtrip -run '^$' -bench . -benchmem -count 6
package roundtrip

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	mcpgo "github.com/mark3labs/mcp-go/client"
	mcpgotransport "github.com/mark3labs/mcp-go/client/transport"
	mcpgomcp "github.com/mark3labs/mcp-go/mcp"
	mcpgoserver "github.com/mark3labs/mcp-go/server"
	gosdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate/mcp"
)

const echoSchema = `{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}`

func BenchmarkToolCallRoundTrip(b *testing.B) {
	b.Run("mcpgate", benchMcpgate)
	b.Run("go-sdk", func(b *testing.B) { benchGoSDK(b, false) })
	b.Run("go-sdk-json", func(b *testing.B) { benchGoSDK(b, true) })
	b.Run("mcp-go", benchMcpGo)
}

func benchMcpgate(b *testing.B) {
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
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	defer srv.Close()
	ctx := context.Background()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "bench-client", Version: "1"}, nil).
		Connect(ctx, &mcp.StreamableClientTransport{Endpoint: srv.URL}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer cs.Close()
	args := jsontext.Value(`{"text":"hello world"}`)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: args})
		if err != nil {
			b.Fatal(err)
		}
		if res.Content[0].(*mcp.TextContent).Text != "hello world" {
			b.Fatal("wrong result")
		}
	}
}

type echoIn struct {
	Text string `json:"text"`
}

func benchGoSDK(b *testing.B, jsonResponse bool) {
	s := gosdk.NewServer(&gosdk.Implementation{Name: "bench", Version: "1"}, nil)
	gosdk.AddTool(s, &gosdk.Tool{Name: "echo"}, func(ctx context.Context, req *gosdk.CallToolRequest, in echoIn) (*gosdk.CallToolResult, any, error) {
		return &gosdk.CallToolResult{Content: []gosdk.Content{&gosdk.TextContent{Text: in.Text}}}, nil, nil
	})
	srv := httptest.NewServer(gosdk.NewStreamableHTTPHandler(func(*http.Request) *gosdk.Server { return s }, &gosdk.StreamableHTTPOptions{JSONResponse: jsonResponse}))
	defer srv.Close()
	ctx := context.Background()
	cs, err := gosdk.NewClient(&gosdk.Implementation{Name: "bench-client", Version: "1"}, nil).
		Connect(ctx, &gosdk.StreamableClientTransport{Endpoint: srv.URL}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer cs.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, err := cs.CallTool(ctx, &gosdk.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hello world"}})
		if err != nil {
			b.Fatal(err)
		}
		if res.Content[0].(*gosdk.TextContent).Text != "hello world" {
			b.Fatal("wrong result")
		}
	}
}

func benchMcpGo(b *testing.B) {
	s := mcpgoserver.NewMCPServer("bench", "1")
	s.AddTool(mcpgomcp.NewTool("echo", mcpgomcp.WithString("text", mcpgomcp.Required())), func(ctx context.Context, req mcpgomcp.CallToolRequest) (*mcpgomcp.CallToolResult, error) {
		text, err := req.RequireString("text")
		if err != nil {
			return mcpgomcp.NewToolResultError(err.Error()), nil
		}
		return mcpgomcp.NewToolResultText(text), nil
	})
	srv := httptest.NewServer(mcpgoserver.NewStreamableHTTPServer(s))
	defer srv.Close()
	ctx := context.Background()
	c, err := mcpgo.NewStreamableHttpClient(srv.URL+"/mcp", mcpgotransport.WithHTTPBasicClient(srv.Client()))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.Start(ctx); err != nil {
		b.Fatal(err)
	}
	init := mcpgomcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcpgomcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcpgomcp.Implementation{Name: "bench-client", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
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
}
