// Command mcpgo2026 serves MCP 2026-07-28 over Streamable HTTP with
// github.com/mark3labs/mcp-go v1.6.0, for mcp/modern_client_interop_test.go
// and the gateway's interop tests (poke adds a tool: a list change on
// subscriptions/listen).
// It is its own module (so that the main module keeps its mcp-go version),
// listens on 127.0.0.1 at a free port, prints "LISTENING <port>", and exits
// when its standard input closes.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

func main() {
	srv := server.NewMCPServer("mcp-go-modern", "1.6.0",
		server.WithToolCapabilities(true),
		server.WithElicitation(),
	)
	srv.AddTool(mcp.NewTool("add",
		mcp.WithDescription("adds two numbers"),
		mcp.WithNumber("a", mcp.Required()),
		mcp.WithNumber("b", mcp.Required()),
	), func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText(fmt.Sprint(req.GetFloat("a", 0) + req.GetFloat("b", 0))), nil
	})
	srv.AddTool(mcp.NewTool("greet", mcp.WithDescription("asks for a name (MRTR)")),
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if answer := server.ElicitationResponse(req.Params.InputResponses, "name"); answer != nil {
				content, _ := answer.Content.(map[string]any)
				return mcp.NewToolResultText(fmt.Sprintf("hello %v (state %s)", content["name"], req.Params.RequestState)), nil
			}
			return server.NewInputRequestBuilder("round-1").
				Elicit("name", mcp.ElicitationParams{
					Mode:    mcp.ElicitationModeForm,
					Message: "Name?",
					RequestedSchema: map[string]any{
						"type":       "object",
						"properties": map[string]any{"name": map[string]any{"type": "string"}},
						"required":   []string{"name"},
					},
				}).
				ToolResult(), nil
		})
	srv.AddTool(mcp.NewTool("sample", mcp.WithDescription("asks the client to sample a message (MRTR)")),
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if answer := server.SamplingResponse(req.Params.InputResponses, "answer"); answer != nil {
				return mcp.NewToolResultText("sampled:" + samplingText(answer.Content)), nil
			}
			return server.NewInputRequestBuilder("").
				Sample("answer", mcp.CreateMessageParams{
					Messages:  []mcp.SamplingMessage{{Role: mcp.RoleUser, Content: mcp.NewTextContent("sample-me")}},
					MaxTokens: 16,
				}).
				ToolResult(), nil
		})
	srv.AddTool(mcp.NewTool("poke", mcp.WithDescription("adds the tool it names (a list change on subscriptions/listen)"),
		mcp.WithString("name", mcp.Required())),
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			name := req.GetString("name", "")
			if name == "" {
				return mcp.NewToolResultError("poke: a name is required"), nil
			}
			srv.AddTool(mcp.NewTool(name, mcp.WithDescription("added by poke")),
				func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
					return mcp.NewToolResultText(name), nil
				})
			return mcp.NewToolResultText("poked"), nil
		})
	h := server.NewStreamableHTTPServer(srv, server.WithStreamableHTTPProtocolVersions("2026-07-28"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("LISTENING %d\n", ln.Addr().(*net.TCPAddr).Port)
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	mux := http.NewServeMux()
	mux.Handle("/mcp", h)
	log.Fatal(http.Serve(ln, mux))
}

// samplingText returns the text of a sampling result's content, decoded
// or not.
func samplingText(content any) string {
	switch c := content.(type) {
	case mcp.TextContent:
		return c.Text
	case *mcp.TextContent:
		return c.Text
	case map[string]any:
		text, _ := c["text"].(string)
		return text
	}
	return ""
}
