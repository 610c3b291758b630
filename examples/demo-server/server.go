package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/mcp"
)

// newServer returns the demo server with its tools, resources and prompt.
// greeting is used by the greeting resources.
func newServer(greeting string) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{
		Name:        "mcpgate-demo",
		Title:       "mcpgate demo server",
		Version:     "0.1.0",
		Description: "A small MCP server to try mcpgate with.",
	}, &mcp.ServerOptions{
		Instructions: "Demo tools: echo, add, current_time and countdown (which reports progress).",
	})

	readOnly := true
	s.AddTool(&mcp.Tool{
		Name:        "echo",
		Title:       "Echo",
		Description: "Return the text it is given.",
		InputSchema: jsontext.Value(`{"type":"object","properties":{"text":{"type":"string","description":"Text to send back."}},"required":["text"],"additionalProperties":false}`),
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: &readOnly},
	}, echo)

	s.AddTool(&mcp.Tool{
		Name:         "add",
		Title:        "Add",
		Description:  "Add two numbers.",
		InputSchema:  jsontext.Value(`{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}},"required":["a","b"],"additionalProperties":false}`),
		OutputSchema: jsontext.Value(`{"type":"object","properties":{"sum":{"type":"number"}},"required":["sum"]}`),
		Annotations:  &mcp.ToolAnnotations{ReadOnlyHint: &readOnly},
	}, add)

	s.AddTool(&mcp.Tool{
		Name:        "current_time",
		Title:       "Current time",
		Description: "Tell the current time, in UTC or in an IANA time zone such as Europe/Paris.",
		InputSchema: jsontext.Value(`{"type":"object","properties":{"timezone":{"type":"string","description":"IANA time zone name; default UTC."}},"additionalProperties":false}`),
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: &readOnly},
	}, currentTime)

	s.AddTool(&mcp.Tool{
		Name:        "countdown",
		Title:       "Countdown",
		Description: "Count down from n to zero, one step per second, reporting progress. Stops early when cancelled.",
		InputSchema: jsontext.Value(`{"type":"object","properties":{"n":{"type":"integer","minimum":1,"maximum":30,"description":"Seconds to count down from."}},"required":["n"],"additionalProperties":false}`),
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: &readOnly},
	}, countdown(time.Second))

	s.AddResource(&mcp.Resource{
		URI:         "demo://readme",
		Name:        "readme",
		Title:       "About the demo server",
		Description: "What this server offers.",
		MIMEType:    "text/markdown",
	}, func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, MIMEType: "text/markdown", Text: readme}}}, nil
	})

	s.AddResourceTemplate(&mcp.ResourceTemplate{
		URITemplate: "demo://greeting/{name}",
		Name:        "greeting",
		Title:       "A greeting",
		Description: "A greeting for anyone, e.g. demo://greeting/Ada.",
		MIMEType:    "text/plain",
	}, func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		name := req.Vars["name"]
		if name == "" {
			return nil, fmt.Errorf("%w: %s", mcp.ErrResourceNotFound, req.Params.URI)
		}
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, MIMEType: "text/plain", Text: greeting + ", " + name + "!"}}}, nil
	})

	s.AddPrompt(&mcp.Prompt{
		Name:        "code_review",
		Title:       "Code review",
		Description: "Ask for a careful review of a piece of code.",
		Arguments: []*mcp.PromptArgument{
			{Name: "code", Description: "The code to review.", Required: true},
			{Name: "language", Description: "The programming language, if not obvious."},
		},
	}, codeReview)
	return s
}

const readme = `# mcpgate demo server

A small MCP server that ships with mcpgate for trying the gateway.

Tools: echo, add, current_time, countdown (reports progress, can be cancelled).
Resources: demo://readme (this text) and demo://greeting/{name}.
Prompt: code_review.
`

// decodeArgs decodes the arguments of a tool call into v.
func decodeArgs(req *mcp.CallToolRequest, v any) error {
	args := req.Params.Arguments
	if len(args) == 0 {
		args = jsontext.Value(`{}`)
	}
	if err := json.Unmarshal(args, v); err != nil {
		return fmt.Errorf("invalid arguments: %w", err)
	}
	return nil
}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

func echo(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	var in struct {
		Text string `json:"text"`
	}
	if err := decodeArgs(req, &in); err != nil {
		return nil, err
	}
	return text(in.Text), nil
}

func add(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	var in struct {
		A float64 `json:"a"`
		B float64 `json:"b"`
	}
	if err := decodeArgs(req, &in); err != nil {
		return nil, err
	}
	sum := in.A + in.B
	out, err := json.Marshal(struct {
		Sum float64 `json:"sum"`
	}{sum})
	if err != nil {
		return nil, err
	}
	res := text(fmt.Sprint(sum))
	res.StructuredContent = out
	return res, nil
}

func currentTime(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	var in struct {
		Timezone string `json:"timezone"`
	}
	if err := decodeArgs(req, &in); err != nil {
		return nil, err
	}
	loc := time.UTC
	if in.Timezone != "" {
		l, err := time.LoadLocation(in.Timezone)
		if err != nil {
			return nil, fmt.Errorf("unknown time zone %q", in.Timezone)
		}
		loc = l
	}
	return text(time.Now().In(loc).Format(time.RFC3339)), nil
}

// countdown returns the countdown tool's handler, counting one step per
// step.
func countdown(step time.Duration) mcp.ToolHandler {
	return func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var in struct {
			N int `json:"n"`
		}
		if err := decodeArgs(req, &in); err != nil {
			return nil, err
		}
		t := time.NewTicker(step)
		defer t.Stop()
		for i := in.N; i > 0; i-- {
			if err := req.Progress(ctx, float64(in.N-i), float64(in.N), fmt.Sprintf("%d…", i)); err != nil {
				return nil, err
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-t.C:
			}
		}
		if err := req.Progress(ctx, float64(in.N), float64(in.N), "liftoff"); err != nil {
			return nil, err
		}
		return text(fmt.Sprintf("Counted down from %d. Liftoff!", in.N)), nil
	}
}

func codeReview(ctx context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	code := req.Params.Arguments["code"]
	if strings.TrimSpace(code) == "" {
		return nil, fmt.Errorf("argument code is required")
	}
	lang := req.Params.Arguments["language"]
	intro := "Please review this code"
	if lang != "" {
		intro += " (" + lang + ")"
	}
	intro += ". Point out bugs, unclear names and missing tests, most important first.\n\n"
	return &mcp.GetPromptResult{
		Description: "Code review request",
		Messages: []*mcp.PromptMessage{{
			Role:    mcp.RoleUser,
			Content: &mcp.TextContent{Text: intro + "```" + lang + "\n" + code + "\n```"},
		}},
	}, nil
}

// greetingFromEnv returns $DEMO_GREETING, or "Hello".
func greetingFromEnv() string {
	if g := os.Getenv("DEMO_GREETING"); g != "" {
		return g
	}
	return "Hello"
}
