package interop

import (
	"context"
	stdjson "encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	gosdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate/mcp"
)

// The test binary doubles as a stdio server: with this variable set it
// serves one session on stdin/stdout with the named implementation.
const roleEnv = "MCPGATE_INTEROP_ROLE"

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "":
		os.Exit(m.Run())
	case "mcpgate-server":
		if err := ourServer().Run(context.Background(), &mcp.StdioTransport{}); err != nil {
			fmt.Fprintln(os.Stderr, "mcpgate server:", err)
			os.Exit(1)
		}
	case "gosdk-server":
		if err := goSDKServer().Run(context.Background(), &gosdk.StdioTransport{}); err != nil {
			fmt.Fprintln(os.Stderr, "go-sdk server:", err)
			os.Exit(1)
		}
	}
	os.Exit(0)
}

// The scenario both servers implement:
//   - tool "echo" {text}: reports progress 1/2 and 2/2, answers "echo: <text>";
//   - tool "ask": samples a message, then elicits {name}, answers
//     "<sampled text>/<action>/<name>";
//   - resource "test://greeting" with text "hello";
//   - prompt "hi" with argument "who", one user message "hi <who>".

const echoSchema = `{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}`

func ourServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "mcpgate-interop", Version: "1"}, nil)
	s.AddTool(&mcp.Tool{Name: "echo", Description: "echo", InputSchema: jsontext.Value(echoSchema)}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var in struct {
			Text string `json:"text"`
		}
		if err := json.Unmarshal(req.Params.Arguments, &in); err != nil {
			return nil, err
		}
		req.Progress(ctx, 1, 2, "half")
		req.Progress(ctx, 2, 2, "done")
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "echo: " + in.Text}}}, nil
	})
	s.AddTool(&mcp.Tool{Name: "ask", Description: "ask"}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		msg, err := req.Session.CreateMessage(ctx, &mcp.CreateMessageParams{
			Messages:  []*mcp.SamplingMessage{{Role: mcp.RoleUser, Content: []mcp.Content{&mcp.TextContent{Text: "say something"}}}},
			MaxTokens: 20,
		})
		if err != nil {
			return nil, fmt.Errorf("sampling: %w", err)
		}
		el, err := req.Session.Elicit(ctx, &mcp.ElicitParams{Message: "your name?", RequestedSchema: &mcp.ElicitationSchema{
			Type:       "object",
			Properties: map[string]mcp.PrimitiveSchemaDefinition{"name": {Type: "string"}},
			Required:   []string{"name"},
		}})
		if err != nil {
			return nil, fmt.Errorf("elicitation: %w", err)
		}
		text := msg.Content[0].(*mcp.TextContent).Text
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf("%s/%s/%v", text, el.Action, el.Content["name"])}}}, nil
	})
	s.AddResource(&mcp.Resource{URI: "test://greeting", Name: "greeting", MIMEType: "text/plain"}, func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, MIMEType: "text/plain", Text: "hello"}}}, nil
	})
	s.AddPrompt(&mcp.Prompt{Name: "hi", Arguments: []*mcp.PromptArgument{{Name: "who", Required: true}}}, func(ctx context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: mcp.RoleUser, Content: &mcp.TextContent{Text: "hi " + req.Params.Arguments["who"]}}}}, nil
	})
	return s
}

type echoIn struct {
	Text string `json:"text"`
}

func goSDKServer() *gosdk.Server {
	s := gosdk.NewServer(&gosdk.Implementation{Name: "gosdk-interop", Version: "1"}, nil)
	gosdk.AddTool(s, &gosdk.Tool{Name: "echo", Description: "echo"}, func(ctx context.Context, req *gosdk.CallToolRequest, in echoIn) (*gosdk.CallToolResult, any, error) {
		if tok := req.Params.GetProgressToken(); tok != nil {
			req.Session.NotifyProgress(ctx, &gosdk.ProgressNotificationParams{ProgressToken: tok, Progress: 1, Total: 2, Message: "half"})
			req.Session.NotifyProgress(ctx, &gosdk.ProgressNotificationParams{ProgressToken: tok, Progress: 2, Total: 2, Message: "done"})
		}
		return &gosdk.CallToolResult{Content: []gosdk.Content{&gosdk.TextContent{Text: "echo: " + in.Text}}}, nil, nil
	})
	s.AddTool(&gosdk.Tool{Name: "ask", Description: "ask", InputSchema: stdjson.RawMessage(`{"type":"object"}`)}, func(ctx context.Context, req *gosdk.CallToolRequest) (*gosdk.CallToolResult, error) {
		msg, err := req.Session.CreateMessage(ctx, &gosdk.CreateMessageParams{
			Messages:  []*gosdk.SamplingMessage{{Role: "user", Content: &gosdk.TextContent{Text: "say something"}}},
			MaxTokens: 20,
		})
		if err != nil {
			return nil, fmt.Errorf("sampling: %w", err)
		}
		el, err := req.Session.Elicit(ctx, &gosdk.ElicitParams{Message: "your name?", RequestedSchema: stdjson.RawMessage(
			`{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}`)})
		if err != nil {
			return nil, fmt.Errorf("elicitation: %w", err)
		}
		text := msg.Content.(*gosdk.TextContent).Text
		return &gosdk.CallToolResult{Content: []gosdk.Content{&gosdk.TextContent{Text: fmt.Sprintf("%s/%s/%v", text, el.Action, el.Content["name"])}}}, nil
	})
	s.AddResource(&gosdk.Resource{URI: "test://greeting", Name: "greeting", MIMEType: "text/plain"}, func(ctx context.Context, req *gosdk.ReadResourceRequest) (*gosdk.ReadResourceResult, error) {
		return &gosdk.ReadResourceResult{Contents: []*gosdk.ResourceContents{{URI: req.Params.URI, MIMEType: "text/plain", Text: "hello"}}}, nil
	})
	s.AddPrompt(&gosdk.Prompt{Name: "hi", Arguments: []*gosdk.PromptArgument{{Name: "who", Required: true}}}, func(ctx context.Context, req *gosdk.GetPromptRequest) (*gosdk.GetPromptResult, error) {
		return &gosdk.GetPromptResult{Messages: []*gosdk.PromptMessage{{Role: "user", Content: &gosdk.TextContent{Text: "hi " + req.Params.Arguments["who"]}}}}, nil
	})
	return s
}

func selfCommand(role string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), roleEnv+"="+role)
	cmd.Stderr = os.Stderr
	return cmd
}

// TestOurClientGoSDKServer runs mcpgate's client against a go-sdk server.
func TestOurClientGoSDKServer(t *testing.T) {
	transports := map[string]func(t *testing.T) mcp.Transport{
		"stdio": func(t *testing.T) mcp.Transport {
			return &mcp.CommandTransport{Command: selfCommand("gosdk-server")}
		},
		"streamable": func(t *testing.T) mcp.Transport {
			s := goSDKServer()
			srv := httptest.NewServer(gosdk.NewStreamableHTTPHandler(func(*http.Request) *gosdk.Server { return s }, nil))
			t.Cleanup(srv.Close)
			return &mcp.StreamableClientTransport{Endpoint: srv.URL}
		},
	}
	for name, mk := range transports {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c := mcp.NewClient(&mcp.Implementation{Name: "mcpgate-client", Version: "1"}, &mcp.ClientOptions{
				CreateMessageHandler: func(ctx context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
					return &mcp.CreateMessageResult{Role: mcp.RoleAssistant, Model: "test-model", Content: []mcp.Content{&mcp.TextContent{Text: "sampled"}}}, nil
				},
				ElicitationHandler: func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
					if _, ok := req.Params.RequestedSchema.Properties["name"]; !ok {
						return nil, fmt.Errorf("schema has no name property: %+v", req.Params.RequestedSchema)
					}
					return &mcp.ElicitResult{Action: mcp.ElicitActionAccept, Content: map[string]any{"name": "ada"}}, nil
				},
			})
			cs, err := c.Connect(ctx, mk(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			if got := cs.InitializeResult().ServerInfo.Name; got != "gosdk-interop" {
				t.Errorf("server name = %q", got)
			}
			lt, err := cs.ListTools(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, tool := range lt.Tools {
				names = append(names, tool.Name)
			}
			if strings.Join(names, ",") != "ask,echo" {
				t.Errorf("tools = %v", names)
			}
			var mu sync.Mutex
			var progress []float64
			pctx := mcp.WithProgress(ctx, func(p *mcp.ProgressNotificationParams) {
				mu.Lock()
				progress = append(progress, p.Progress)
				mu.Unlock()
			})
			res, err := cs.CallTool(pctx, &mcp.CallToolParams{Name: "echo", Arguments: jsontext.Value(`{"text":"hi"}`)})
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Content[0].(*mcp.TextContent).Text; got != "echo: hi" {
				t.Errorf("echo = %q", got)
			}
			waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(progress) == 2 })
			res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "ask"})
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Content[0].(*mcp.TextContent).Text; got != "sampled/accept/ada" || res.IsError {
				t.Errorf("ask = %q (isError %v)", got, res.IsError)
			}
			rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "test://greeting"})
			if err != nil || rr.Contents[0].Text != "hello" {
				t.Errorf("read: %v %+v", err, rr)
			}
			gp, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "hi", Arguments: map[string]string{"who": "bob"}})
			if err != nil || gp.Messages[0].Content.(*mcp.TextContent).Text != "hi bob" {
				t.Errorf("prompt: %v %+v", err, gp)
			}
		})
	}
}

// TestGoSDKClientOurServer runs a go-sdk client against mcpgate's server.
func TestGoSDKClientOurServer(t *testing.T) {
	transports := map[string]func(t *testing.T) gosdk.Transport{
		"stdio": func(t *testing.T) gosdk.Transport {
			return &gosdk.CommandTransport{Command: selfCommand("mcpgate-server")}
		},
		"streamable": func(t *testing.T) gosdk.Transport {
			s := ourServer()
			srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
			t.Cleanup(srv.Close)
			return &gosdk.StreamableClientTransport{Endpoint: srv.URL}
		},
	}
	for name, mk := range transports {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var mu sync.Mutex
			var progress []float64
			c := gosdk.NewClient(&gosdk.Implementation{Name: "gosdk-client", Version: "1"}, &gosdk.ClientOptions{
				CreateMessageHandler: func(ctx context.Context, req *gosdk.CreateMessageRequest) (*gosdk.CreateMessageResult, error) {
					return &gosdk.CreateMessageResult{Role: "assistant", Model: "test-model", Content: &gosdk.TextContent{Text: "sampled"}}, nil
				},
				ElicitationHandler: func(ctx context.Context, req *gosdk.ElicitRequest) (*gosdk.ElicitResult, error) {
					return &gosdk.ElicitResult{Action: "accept", Content: map[string]any{"name": "ada"}}, nil
				},
				ProgressNotificationHandler: func(ctx context.Context, req *gosdk.ProgressNotificationClientRequest) {
					mu.Lock()
					progress = append(progress, req.Params.Progress)
					mu.Unlock()
				},
			})
			cs, err := c.Connect(ctx, mk(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			if got := cs.InitializeResult().ServerInfo.Name; got != "mcpgate-interop" {
				t.Errorf("server name = %q", got)
			}
			lt, err := cs.ListTools(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(lt.Tools) != 2 || lt.Tools[0].Name != "ask" || lt.Tools[1].Name != "echo" {
				t.Errorf("tools = %+v", lt.Tools)
			}
			params := &gosdk.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hi"}}
			params.SetProgressToken("tok-1")
			res, err := cs.CallTool(ctx, params)
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Content[0].(*gosdk.TextContent).Text; got != "echo: hi" {
				t.Errorf("echo = %q", got)
			}
			waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(progress) == 2 })
			// Invalid arguments come back as a tool error.
			res, err = cs.CallTool(ctx, &gosdk.CallToolParams{Name: "echo", Arguments: map[string]any{"text": 5}})
			if err != nil || !res.IsError {
				t.Errorf("bad args: err=%v isError=%v", err, res != nil && res.IsError)
			}
			res, err = cs.CallTool(ctx, &gosdk.CallToolParams{Name: "ask", Arguments: map[string]any{}})
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Content[0].(*gosdk.TextContent).Text; got != "sampled/accept/ada" || res.IsError {
				t.Errorf("ask = %q (isError %v)", got, res.IsError)
			}
			rr, err := cs.ReadResource(ctx, &gosdk.ReadResourceParams{URI: "test://greeting"})
			if err != nil || rr.Contents[0].Text != "hello" {
				t.Errorf("read: %v %+v", err, rr)
			}
			gp, err := cs.GetPrompt(ctx, &gosdk.GetPromptParams{Name: "hi", Arguments: map[string]string{"who": "bob"}})
			if err != nil || gp.Messages[0].Content.(*gosdk.TextContent).Text != "hi bob" {
				t.Errorf("prompt: %v %+v", err, gp)
			}
		})
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}
