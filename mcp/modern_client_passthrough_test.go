package mcp

import (
	"context"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// TestRawInterimResults: with WithRawInterimResults the client hands back
// the server's input_required result (its keys and requestState) instead
// of answering it, and sends the caller's retry as given.
func TestRawInterimResults(t *testing.T) {
	srv := NewServer(&Implementation{Name: "s", Version: "1"}, nil)
	srv.AddTool(&Tool{Name: "two"}, func(ctx context.Context, req *CallToolRequest) (*CallToolResult, error) {
		got, err := req.Session.RequestInput(ctx, map[string]*InputRequest{
			"a": {Method: MethodElicitationCreate, Params: &ElicitParams{Message: "a?"}},
			"b": {Method: MethodElicitationCreate, Params: &ElicitParams{Message: "b?"}},
		})
		if err != nil {
			return nil, err
		}
		return &CallToolResult{Content: []Content{&TextContent{Text: string(got["a"]) + string(got["b"])}}}, nil
	})
	_, url := newRecordedServer(t, srv)
	called := false
	c := newModernTestClient(&ClientOptions{ElicitationHandler: func(context.Context, *ElicitRequest) (*ElicitResult, error) {
		called = true
		return &ElicitResult{Action: ElicitActionDecline}, nil
	}})
	ctx := testCtx(t)
	cs, err := c.Connect(ctx, &StreamableClientTransport{Endpoint: url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	raw, err := cs.CallRaw(WithRawInterimResults(ctx), MethodToolsCall, jsontext.Value(`{"name":"two"}`))
	if err != nil {
		t.Fatal(err)
	}
	var head struct {
		ResultType    string                    `json:"resultType"`
		InputRequests map[string]jsontext.Value `json:"inputRequests"`
		RequestState  string                    `json:"requestState"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		t.Fatal(err)
	}
	if head.ResultType != ResultTypeInputRequired || len(head.InputRequests) != 2 || head.RequestState == "" || called {
		t.Fatalf("raw interim result %s (handler called: %v)", raw, called)
	}
	retry, err := json.Marshal(map[string]any{"name": "two", "requestState": head.RequestState,
		"inputResponses": map[string]any{"a": map[string]any{"action": "cancel"}, "b": map[string]any{"action": "cancel"}}})
	if err != nil {
		t.Fatal(err)
	}
	raw, err = cs.CallRaw(WithRawInterimResults(ctx), MethodToolsCall, retry)
	if err != nil || !strings.Contains(string(raw), `cancel`) || called {
		t.Fatalf("retry: %s %v", raw, err)
	}
}

// TestClientListen: Listen delivers the acknowledgement and the list
// changes of a modern server to the notification handler, and returns
// when its context ends.
func TestClientListen(t *testing.T) {
	srv := NewServer(&Implementation{Name: "s", Version: "1"}, nil)
	srv.AddTool(&Tool{Name: "t"}, func(context.Context, *CallToolRequest) (*CallToolResult, error) { return &CallToolResult{}, nil })
	_, url := newRecordedServer(t, srv)
	got := make(chan string, 16)
	c := newModernTestClient(&ClientOptions{NotificationHandler: func(_ context.Context, _ *ClientSession, method string, params jsontext.Value) {
		got <- method + " " + string(params)
	}})
	ctx := testCtx(t)
	cs, err := c.Connect(ctx, &StreamableClientTransport{Endpoint: url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- cs.Listen(lctx, SubscriptionFilter{ToolsListChanged: true}) }()
	if m := <-got; !strings.HasPrefix(m, NotificationSubscriptionsAcknowledged) || !strings.Contains(m, MetaSubscriptionID) {
		t.Fatalf("first message %q", m)
	}
	srv.AddTool(&Tool{Name: "u"}, func(context.Context, *CallToolRequest) (*CallToolResult, error) { return &CallToolResult{}, nil })
	if m := <-got; !strings.HasPrefix(m, NotificationToolsListChanged) {
		t.Fatalf("second message %q", m)
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("Listen returned %v, want context.Canceled", err)
	}

	legacy, err := NewClient(&Implementation{Name: "l", Version: "1"}, nil).Connect(ctx, &StreamableClientTransport{Endpoint: url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer legacy.Close()
	if err := legacy.Listen(ctx, SubscriptionFilter{}); err == nil {
		t.Error("Listen on a legacy session succeeded")
	}
}
