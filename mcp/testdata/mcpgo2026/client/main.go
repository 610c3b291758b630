// Command client drives mcpgate with the mcp-go v1.6.0 client, for the
// gateway's interop matrix (gateway/interop_matrix_test.go).
//
// Usage: client <gateway /mcp URL> <bearer token> <answer> <spec JSON>
//
// The spec lists the upstreams behind the gateway by tool prefix, and
// whether each has a task-capable tool (<prefix>slow) and a tool that
// changes the tool list (<prefix>poke). For each upstream the client
// lists tools, calls <prefix>add, calls <prefix>add with a=666 (which the
// gateway's policy denies), calls <prefix>greet and <prefix>sample (the
// upstream asks this client for elicitation and sampling, answered with
// <answer>), runs <prefix>slow as a task, and waits for the tool list
// change that <prefix>poke causes. It prints one JSON report on stdout;
// the Go test makes the assertions. A failed step is recorded in the
// report, not fatal.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// spec is one upstream of the run.
type spec struct {
	Prefix string `json:"prefix"`
	Task   bool   `json:"task"`
	Poke   bool   `json:"poke"`
}

// report is what the program prints; gateway/interop_matrix_test.go
// decodes it (matrixReport).
type report struct {
	Client          string   `json:"client"`
	ProtocolVersion string   `json:"protocolVersion"`
	Unauthorized    string   `json:"unauthorized"`
	Cells           []cell   `json:"cells"`
	Errors          []string `json:"errors"`
}

type cell struct {
	Prefix      string   `json:"prefix"`
	Tools       []string `json:"tools"`
	Add         string   `json:"add"`
	Denied      string   `json:"denied"`
	Greet       string   `json:"greet"`
	Sample      string   `json:"sample"`
	Task        string   `json:"task"`
	TaskHow     string   `json:"taskHow"`
	ListChanged bool     `json:"listChanged"`
	Listed      bool     `json:"listedAfterChange"`
	Errors      []string `json:"errors"`
}

type handlers struct{ answer string }

func (h handlers) Elicit(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{
		Action: mcp.ElicitationResponseActionAccept, Content: map[string]any{"name": h.answer}}}, nil
}

func (h handlers) CreateMessage(ctx context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	return &mcp.CreateMessageResult{
		SamplingMessage: mcp.SamplingMessage{Role: mcp.RoleAssistant, Content: mcp.NewTextContent(h.answer)},
		Model:           "mcp-go-model",
	}, nil
}

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: client <url> <token> <answer> <spec JSON>")
		os.Exit(2)
	}
	url, token, answer := os.Args[1], os.Args[2], os.Args[3]
	var specs []spec
	if err := json.Unmarshal([]byte(os.Args[4]), &specs); err != nil {
		fmt.Fprintln(os.Stderr, "spec:", err)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	rep := &report{Client: "mcp-go v1.6.0"}
	run(ctx, rep, url, token, answer, specs)
	out, _ := json.Marshal(rep)
	fmt.Println(string(out))
}

// connect starts a client with the bearer token; a version pins the
// protocol (2025-11-25 for the core tasks).
func connect(ctx context.Context, url, token, answer, version string) (*client.Client, *mcp.InitializeResult, error) {
	h := handlers{answer}
	opts := []client.ClientOption{client.WithElicitationHandler(h), client.WithSamplingHandler(h)}
	if version != "" {
		opts = append(opts, client.WithProtocolVersion(version))
	}
	var topts []transport.StreamableHTTPCOption
	if token != "" {
		topts = append(topts, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	}
	tr, err := transport.NewStreamableHTTP(url, topts...)
	if err != nil {
		return nil, nil, err
	}
	c := client.NewClient(tr, opts...)
	if err := c.Start(ctx); err != nil {
		return nil, nil, err
	}
	init := mcp.InitializeRequest{}
	init.Params.ClientInfo = mcp.Implementation{Name: "mcp-go-interop", Version: "1.6.0"}
	init.Params.Capabilities = mcp.ClientCapabilities{
		Sampling:    &mcp.SamplingCapability{},
		Elicitation: &mcp.ElicitationCapability{},
	}
	res, err := c.Initialize(ctx, init)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, res, nil
}

func run(ctx context.Context, rep *report, url, token, answer string, specs []spec) {
	// Without a token the gateway refuses the connection.
	if c, _, err := connect(ctx, url, "", answer, ""); err == nil {
		c.Close()
		rep.Unauthorized = "connected without a token"
	} else {
		rep.Unauthorized = err.Error()
	}
	c, init, err := connect(ctx, url, token, answer, "")
	if err != nil {
		rep.Errors = append(rep.Errors, "connect: "+err.Error())
		return
	}
	defer c.Close()
	rep.ProtocolVersion = init.ProtocolVersion

	// One subscriptions/listen stream for the whole run (modern
	// connection); tool list changes reach the notification handler.
	changed := make(chan struct{}, 16)
	acked := make(chan struct{}, 1)
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		var ch chan struct{}
		switch n.Method {
		case string(mcp.MethodNotificationToolsListChanged):
			ch = changed
		case mcp.MethodNotificationSubscriptionsAcknowledged:
			ch = acked
		default:
			return
		}
		select {
		case ch <- struct{}{}:
		default:
		}
	})
	listenCtx, stopListen := context.WithCancel(ctx)
	defer stopListen()
	listenErr := make(chan error, 1)
	go func() { listenErr <- c.Listen(listenCtx, mcp.SubscriptionFilter{ToolsListChanged: true}) }()
	// Listen blocks for the stream's life: wait for the server's
	// acknowledgement, so that the stream is open before any change.
	select {
	case <-acked:
	case err := <-listenErr:
		rep.Errors = append(rep.Errors, fmt.Sprintf("subscriptions/listen ended: %v", err))
	case <-time.After(20 * time.Second):
		rep.Errors = append(rep.Errors, "subscriptions/listen: no acknowledgement within 20s")
	}

	for _, s := range specs {
		cl := cell{Prefix: s.Prefix}
		step := func(name string, err error) {
			if err != nil {
				cl.Errors = append(cl.Errors, name+": "+err.Error())
			}
		}
		tools, err := c.ListTools(ctx, mcp.ListToolsRequest{})
		step("tools/list", err)
		if err == nil {
			for _, t := range tools.Tools {
				if strings.HasPrefix(t.Name, s.Prefix) {
					cl.Tools = append(cl.Tools, t.Name)
				}
			}
		}
		cl.Add, err = callText(ctx, c, s.Prefix+"add", map[string]any{"a": 2, "b": 3})
		step("add", err)
		_, err = callText(ctx, c, s.Prefix+"add", map[string]any{"a": 666, "b": 1})
		if err == nil {
			cl.Denied = "not denied"
		} else {
			cl.Denied = err.Error()
		}
		cl.Greet, err = callText(ctx, c, s.Prefix+"greet", map[string]any{})
		step("greet", err)
		cl.Sample, err = callText(ctx, c, s.Prefix+"sample", map[string]any{})
		step("sample", err)
		if s.Task {
			cl.Task, cl.TaskHow, err = runTask(ctx, url, token, answer, s.Prefix+"slow")
			step("task", err)
		}
		if s.Poke {
			for len(changed) > 0 {
				<-changed
			}
			name := "new_" + strings.ReplaceAll(answer, "-", "_")
			_, err := callText(ctx, c, s.Prefix+"poke", map[string]any{"name": name})
			step("poke", err)
			if err == nil {
				select {
				case <-changed:
					cl.ListChanged = true
				case err := <-listenErr:
					step("listen", fmt.Errorf("the stream ended: %v", err))
				case <-time.After(20 * time.Second):
					step("listen", errors.New("no notifications/tools/list_changed within 20s"))
				}
				tools, err := c.ListTools(ctx, mcp.ListToolsRequest{})
				step("tools/list after the change", err)
				if err == nil {
					cl.Listed = slices.ContainsFunc(tools.Tools, func(t mcp.Tool) bool { return t.Name == s.Prefix+name })
				}
			}
		}
		rep.Cells = append(rep.Cells, cl)
	}
}

func callText(ctx context.Context, c *client.Client, name string, args map[string]any) (string, error) {
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := c.CallTool(ctx, req)
	if err != nil {
		return "", err
	}
	var texts []string
	for _, content := range res.Content {
		if tc, ok := content.(mcp.TextContent); ok {
			texts = append(texts, tc.Text)
		}
	}
	if res.IsError {
		return "", fmt.Errorf("tool error: %s", strings.Join(texts, " "))
	}
	return strings.Join(texts, " "), nil
}

// runTask runs tool as a 2025-11-25 core task on a connection of its
// own: mcp-go v1.6.0 has no Tasks extension (io.modelcontextprotocol/tasks)
// on the client, and its CallTool cannot return a CreateTaskResult
// (mcp.ParseCallToolResult fails with "content is missing"), so the
// task-augmented tools/call goes through the client's transport; the task
// is then followed with the client's WaitForTask (tasks/get) and read with
// TaskResult (tasks/result).
func runTask(ctx context.Context, url, token, answer, tool string) (text, how string, err error) {
	how = "2025-11-25 core tasks: tools/call with task through the mcp-go transport, WaitForTask, TaskResult"
	c, init, err := connect(ctx, url, token, answer, mcp.ProtocolVersion20251125)
	if err != nil {
		return "", how, err
	}
	defer c.Close()
	how += " (negotiated " + init.ProtocolVersion + ")"
	ttl := int64(60000)
	resp, err := c.GetTransport().SendRequest(ctx, transport.JSONRPCRequest{
		JSONRPC: mcp.JSONRPC_VERSION,
		ID:      mcp.NewRequestId("task-1"),
		Method:  string(mcp.MethodToolsCall),
		Params: map[string]any{
			"name":      tool,
			"arguments": map[string]any{"word": answer},
			"task":      mcp.TaskParams{TTL: &ttl},
		},
	})
	if err != nil {
		return "", how, err
	}
	if resp.Error != nil {
		return "", how, fmt.Errorf("tools/call: %d %s", resp.Error.Code, resp.Error.Message)
	}
	var created mcp.CreateTaskResult
	if err := json.Unmarshal(resp.Result, &created); err != nil || created.Task.TaskId == "" {
		return "", how, fmt.Errorf("tools/call with task: %s (%v)", resp.Result, err)
	}
	get := mcp.GetTaskRequest{}
	get.Params.TaskId = created.Task.TaskId
	final, err := c.WaitForTask(ctx, get, 20*time.Millisecond)
	if err != nil {
		return "", how, err
	}
	if final.Status != mcp.TaskStatusCompleted {
		return "", how, fmt.Errorf("task ended %s", final.Status)
	}
	tr := mcp.TaskResultRequest{}
	tr.Params.TaskId = created.Task.TaskId
	res, err := c.TaskResult(ctx, tr)
	if err != nil {
		return "", how, err
	}
	for _, content := range res.Content {
		if tc, ok := content.(mcp.TextContent); ok {
			text += tc.Text
		}
	}
	return text, how, nil
}
