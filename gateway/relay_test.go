package gateway

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/mcp"
)

// TestListChangedAndResourceUpdatesRelayed: an upstream that adds a tool and
// updates a subscribed resource is seen to do so by the gateway's client.
func TestListChangedAndResourceUpdatesRelayed(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "dyn", Version: "1"}, &mcp.ServerOptions{
		SubscribeHandler: func(context.Context, *mcp.ServerSession, *mcp.SubscribeParams) error { return nil },
	})
	s.AddTool(&mcp.Tool{Name: "first"}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "1"}}}, nil
	})
	s.AddResource(&mcp.Resource{URI: "test://watched", Name: "watched"}, func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: "v"}}}, nil
	})
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(srv.Close)
	_, gw := startGateway(t, &config.Config{Upstreams: []config.Upstream{{Name: "dyn", URL: srv.URL}}})

	changed := make(chan struct{}, 4)
	updated := make(chan string, 4)
	cs := connect(t, gw, &mcp.ClientOptions{
		ToolListChangedHandler: func(context.Context, *mcp.ClientSession) { changed <- struct{}{} },
		ResourceUpdatedHandler: func(_ context.Context, _ *mcp.ClientSession, p *mcp.ResourceUpdatedNotificationParams) {
			updated <- p.URI
		},
	})
	ctx := context.Background()
	if caps := cs.InitializeResult().Capabilities; caps.Resources == nil || !caps.Resources.Subscribe {
		t.Fatalf("resource subscriptions not advertised: %+v", caps.Resources)
	}
	if err := cs.Subscribe(ctx, &mcp.SubscribeParams{URI: "test://watched"}); err != nil {
		t.Fatal(err)
	}
	s.AddTool(&mcp.Tool{Name: "second"}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "2"}}}, nil
	})
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("tools/list_changed was not relayed")
	}
	// The catalogue was refreshed: the new tool is listed and callable.
	if got := callText(t, cs, "dyn_second"); got != "2" {
		t.Errorf("dyn_second = %q", got)
	}
	if err := s.ResourceUpdated(ctx, &mcp.ResourceUpdatedNotificationParams{URI: "test://watched"}); err != nil {
		t.Fatal(err)
	}
	select {
	case uri := <-updated:
		if uri != "test://watched" {
			t.Errorf("updated %q", uri)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("resources/updated was not relayed")
	}
}

// TestUpstreamCancelsRelayedRequest: when an upstream gives up on a
// sampling request it sent, the gateway cancels the request it relayed to
// the client.
func TestUpstreamCancelsRelayedRequest(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "impatient", Version: "1"}, nil)
	s.AddTool(&mcp.Tool{Name: "ask"}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		sctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		_, err := req.Session.CreateMessage(sctx, &mcp.CreateMessageParams{
			Messages:  []*mcp.SamplingMessage{{Role: mcp.RoleUser, Content: []mcp.Content{&mcp.TextContent{Text: "q"}}}},
			MaxTokens: 5,
		})
		if err == nil {
			return nil, errors.New("sampling should have timed out")
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "gave up"}}}, nil
	})
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(srv.Close)
	_, gw := startGateway(t, &config.Config{Upstreams: []config.Upstream{{Name: "i", URL: srv.URL, Prefix: ptr("")}}})
	var mu sync.Mutex
	cancelled := false
	cs := connect(t, gw, &mcp.ClientOptions{
		CreateMessageHandler: func(ctx context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			<-ctx.Done() // the model "thinks" until told to stop
			mu.Lock()
			cancelled = true
			mu.Unlock()
			return nil, ctx.Err()
		},
	})
	if got := callText(t, cs, "ask"); got != "gave up" {
		t.Errorf("ask = %q", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		c := cancelled
		mu.Unlock()
		if c {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the relayed sampling request was not cancelled")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
