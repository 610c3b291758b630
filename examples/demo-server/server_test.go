package main

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/mcp"
)

// connect serves s over in-memory transports and returns a client session.
func connect(t *testing.T, s *mcp.Server, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ct, st := mcp.NewInMemoryTransports()
	ss, err := s.Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ss.Close() })
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, opts).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func resultText(t *testing.T, r *mcp.CallToolResult) string {
	t.Helper()
	if len(r.Content) != 1 {
		t.Fatalf("got %d content blocks", len(r.Content))
	}
	tc, ok := r.Content[0].(*mcp.TextContent)
	if !ok {
		t.Fatalf("content is %T", r.Content[0])
	}
	return tc.Text
}

func TestTools(t *testing.T) {
	cs := connect(t, newServer("Hi"), nil)
	ctx := context.Background()
	list, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range list.Tools {
		names = append(names, tool.Name)
	}
	if got := strings.Join(names, ","); got != "add,countdown,current_time,echo" && got != "echo,add,current_time,countdown" {
		t.Errorf("tools = %s", got)
	}
	tests := []struct {
		tool, args string
		want       string // text, or a prefix for current_time
		isError    bool
	}{
		{"echo", `{"text":"héllo"}`, "héllo", false},
		{"add", `{"a":2,"b":0.5}`, "2.5", false},
		{"add", `{"a":"x","b":1}`, "", true},
		{"current_time", `{}`, time.Now().UTC().Format("2006-"), false},
		{"current_time", `{"timezone":"Mars/Olympus"}`, `unknown time zone "Mars/Olympus"`, true},
	}
	for _, tt := range tests {
		r, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tt.tool, Arguments: jsontext.Value(tt.args)})
		if err != nil {
			t.Fatalf("%s %s: %v", tt.tool, tt.args, err)
		}
		if r.IsError != tt.isError {
			t.Errorf("%s %s: isError = %v", tt.tool, tt.args, r.IsError)
		}
		if got := resultText(t, r); !strings.HasPrefix(got, tt.want) {
			t.Errorf("%s %s = %q, want %q", tt.tool, tt.args, got, tt.want)
		}
		if tt.tool == "add" && !tt.isError && string(r.StructuredContent) != `{"sum":2.5}` {
			t.Errorf("add structured content = %s", r.StructuredContent)
		}
	}
}

func TestCountdownProgressAndCancel(t *testing.T) {
	s := newServer("Hi")
	s.AddTool(&mcp.Tool{Name: "fast_countdown", InputSchema: jsontext.Value(`{"type":"object"}`)}, countdown(time.Millisecond))
	var mu sync.Mutex
	var progress []float64
	cs := connect(t, s, nil)
	ctx := mcp.WithProgress(context.Background(), func(p *mcp.ProgressNotificationParams) {
		mu.Lock()
		progress = append(progress, p.Progress)
		mu.Unlock()
	})
	r, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "fast_countdown", Arguments: jsontext.Value(`{"n":3}`)})
	if err != nil {
		t.Fatal(err)
	}
	if got := resultText(t, r); got != "Counted down from 3. Liftoff!" {
		t.Errorf("result = %q", got)
	}
	mu.Lock()
	n := len(progress)
	mu.Unlock()
	if n == 0 {
		t.Error("no progress notifications")
	}

	// The real countdown (one step per second) stops when cancelled.
	cctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = cs.CallTool(cctx, &mcp.CallToolParams{Name: "countdown", Arguments: jsontext.Value(`{"n":30}`)})
	if err == nil {
		t.Error("cancelled countdown returned no error")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancelled countdown took %v", d)
	}
}

func TestResourcesAndPrompt(t *testing.T) {
	cs := connect(t, newServer("Howdy"), nil)
	ctx := context.Background()
	r, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "demo://readme"})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Contents) != 1 || !strings.Contains(r.Contents[0].Text, "demo server") {
		t.Errorf("readme = %+v", r.Contents)
	}
	r, err = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "demo://greeting/Ada"})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Contents) != 1 || r.Contents[0].Text != "Howdy, Ada!" {
		t.Errorf("greeting = %+v", r.Contents)
	}
	if _, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "demo://nothing"}); err == nil {
		t.Error("reading an unknown resource: no error")
	}
	p, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "code_review", Arguments: map[string]string{"code": "x := 1", "language": "go"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Messages) != 1 {
		t.Fatalf("got %d messages", len(p.Messages))
	}
	if tc, ok := p.Messages[0].Content.(*mcp.TextContent); !ok || !strings.Contains(tc.Text, "```go\nx := 1\n```") {
		t.Errorf("prompt message = %+v", p.Messages[0].Content)
	}
	if _, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "code_review", Arguments: map[string]string{}}); err == nil {
		t.Error("prompt without code: no error")
	}
}
