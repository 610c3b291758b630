package gateway_test

// Interop tests: real MCP clients other than our own talk to the gateway,
// which fronts an upstream built with package mcp. The official Go SDK
// (github.com/modelcontextprotocol/go-sdk) runs in process; the TypeScript
// SDK (npm @modelcontextprotocol/sdk, pinned in testdata/tsclient) runs
// under Node as testdata/tsclient/interop.mjs.
//
// Both clients list tools, call a tool with progress, answer the sampling
// and elicitation requests that the upstream's tool sends and the gateway
// relays, and run tools as tasks (SEP-1686): plain, and one that needs
// sampling and elicitation while it runs.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	gojsonrpc "github.com/modelcontextprotocol/go-sdk/jsonrpc"
	gomcp "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate/gateway"
	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/npmtest"
	"github.com/mcpgate/mcpgate/mcp"
)

// relatedTaskKey is the _meta key that ties a message to a task.
const relatedTaskKey = "io.modelcontextprotocol/related-task"

// interopUpstream is the upstream server behind the gateway. The gateway
// names its tools up_greet, up_ask and up_slow.
func interopUpstream() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "interop-upstream", Version: "1"}, nil)
	s.AddTool(&mcp.Tool{
		Name:        "greet",
		Description: "Greets someone, reporting progress on the way.",
		InputSchema: jsontext.Value(`{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}`),
	}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var args struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(req.Params.Arguments, &args); err != nil {
			return nil, fmt.Errorf("greet: %w", err)
		}
		if err := req.Progress(ctx, 1, 2, "halfway"); err != nil {
			return nil, err
		}
		if err := req.Progress(ctx, 2, 2, "done"); err != nil {
			return nil, err
		}
		return textResult("hello, " + args.Name), nil
	})
	optional := &mcp.ToolExecution{TaskSupport: mcp.TaskSupportOptional}
	s.AddTool(&mcp.Tool{
		Name:        "ask",
		Description: "Asks the client to sample a message and to elicit a name.",
		InputSchema: jsontext.Value(`{"type":"object","properties":{"q":{"type":"string"}},"required":["q"]}`),
		Execution:   optional,
	}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var args struct {
			Q string `json:"q"`
		}
		if err := json.Unmarshal(req.Params.Arguments, &args); err != nil {
			return nil, fmt.Errorf("ask: %w", err)
		}
		msg, err := req.Session.CreateMessage(ctx, &mcp.CreateMessageParams{
			Messages:  []*mcp.SamplingMessage{{Role: mcp.RoleUser, Content: []mcp.Content{&mcp.TextContent{Text: args.Q}}}},
			MaxTokens: 16,
		})
		if err != nil {
			return nil, fmt.Errorf("sampling: %w", err)
		}
		sampled := ""
		if len(msg.Content) > 0 {
			if tc, ok := msg.Content[0].(*mcp.TextContent); ok {
				sampled = tc.Text
			}
		}
		el, err := req.Session.Elicit(ctx, &mcp.ElicitParams{
			Message: "name for " + args.Q,
			RequestedSchema: &mcp.ElicitationSchema{
				Type:       "object",
				Properties: map[string]mcp.PrimitiveSchemaDefinition{"n": {Type: "string"}},
			},
		})
		if err != nil {
			return nil, fmt.Errorf("elicitation: %w", err)
		}
		return textResult(askAnswer(args.Q, sampled, msg.Model, string(el.Action), el.Content["n"])), nil
	})
	s.AddTool(&mcp.Tool{
		Name:        "slow",
		Description: "Answers after ms milliseconds (default 200, at most 10000).",
		InputSchema: jsontext.Value(`{"type":"object","properties":{"word":{"type":"string"},"ms":{"type":"integer"}},"required":["word"]}`),
		Execution:   optional,
	}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var args struct {
			Word string `json:"word"`
			MS   int    `json:"ms"`
		}
		if err := json.Unmarshal(req.Params.Arguments, &args); err != nil {
			return nil, fmt.Errorf("slow: %w", err)
		}
		d := 200 * time.Millisecond
		if args.MS > 0 {
			d = time.Duration(min(args.MS, 10000)) * time.Millisecond
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return textResult("slow:" + args.Word), nil
	})
	return s
}

// askAnswer is what the ask tool answers; the tests compute the same from
// what their handlers returned.
func askAnswer(q, sampled, model, action string, n any) string {
	return fmt.Sprintf("q=%s sampled=%s model=%s action=%s n=%v", q, sampled, model, action, n)
}

func textResult(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

// startInteropGateway serves interopUpstream over Streamable HTTP, puts a
// gateway (upstream "up", default prefix "up_") in front of it, and returns
// the gateway's /mcp URL. Everything listens on loopback.
func startInteropGateway(t *testing.T) string {
	t.Helper()
	up := interopUpstream()
	upSrv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up }, nil))
	t.Cleanup(upSrv.Close)
	g, err := gateway.New(&config.Config{Upstreams: []config.Upstream{{Name: "up", URL: upSrv.URL}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(func() {
		srv.Close()
		g.Close()
	})
	return srv.URL + "/mcp"
}

func nonce(t *testing.T) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// ---- Go SDK client -------------------------------------------------------

// goSDKRecorder answers sampling and elicitation for a go-sdk client and
// records what it was asked.
type goSDKRecorder struct {
	nonce string

	mu          sync.Mutex
	sampling    []recordedRequest
	elicitation []recordedRequest
	progress    []*gomcp.ProgressNotificationParams
}

type recordedRequest struct {
	text        string // the sampling prompt or the elicitation message
	relatedTask string // the related-task _meta's taskId, if any
}

func relatedTaskOf(meta map[string]any) string {
	rel, _ := meta[relatedTaskKey].(map[string]any)
	id, _ := rel["taskId"].(string)
	return id
}

func (r *goSDKRecorder) options() *gomcp.ClientOptions {
	return &gomcp.ClientOptions{
		CreateMessageHandler: func(ctx context.Context, req *gomcp.CreateMessageRequest) (*gomcp.CreateMessageResult, error) {
			q := ""
			if len(req.Params.Messages) > 0 {
				if tc, ok := req.Params.Messages[0].Content.(*gomcp.TextContent); ok {
					q = tc.Text
				}
			}
			r.mu.Lock()
			r.sampling = append(r.sampling, recordedRequest{q, relatedTaskOf(req.Params.Meta)})
			r.mu.Unlock()
			return &gomcp.CreateMessageResult{Role: "assistant", Model: "go-model", Content: &gomcp.TextContent{Text: "go-answer(" + q + ")"}}, nil
		},
		ElicitationHandler: func(ctx context.Context, req *gomcp.ElicitRequest) (*gomcp.ElicitResult, error) {
			r.mu.Lock()
			r.elicitation = append(r.elicitation, recordedRequest{req.Params.Message, relatedTaskOf(req.Params.Meta)})
			r.mu.Unlock()
			return &gomcp.ElicitResult{Action: "accept", Content: map[string]any{"n": "go-name-" + r.nonce}}, nil
		},
		ProgressNotificationHandler: func(ctx context.Context, req *gomcp.ProgressNotificationClientRequest) {
			r.mu.Lock()
			r.progress = append(r.progress, req.Params)
			r.mu.Unlock()
		},
	}
}

// rawConn wraps the go-sdk client's own connection so that the test can
// send requests the go-sdk has no API for (task-augmented tools/call and
// tasks/*: go-sdk v1.8.0 implements protocol 2026-07-28 and 2025-11-25 but
// not tasks, and its ClientSession only sends methods it knows). The
// requests go out on the same connection, hence the same MCP session, with
// string ids of their own; their responses are taken out of the stream
// before the go-sdk session sees it. Everything else, including the
// sampling and elicitation requests that arrive on a tasks/result stream,
// is handled by the go-sdk session as usual.
//
// Wrapping hides the connection's unexported sessionUpdated hook, so on
// this connection the go-sdk sends no MCP-Protocol-Version header after
// initialization and opens no standalone GET stream; the gateway takes the
// version negotiated at initialization, as the spec allows.
type rawConn struct {
	gomcp.Connection

	mu      sync.Mutex
	next    int
	pending map[string]chan *gojsonrpc.Response
	caps    jsontext.Value // capabilities of the initialize result
}

// initCaps returns the capabilities the server's initialize result held.
func (c *rawConn) initCaps() jsontext.Value {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.caps
}

const rawIDPrefix = "interop-raw-"

type rawTransport struct {
	gomcp.Transport
	conn *rawConn
}

func (t *rawTransport) Connect(ctx context.Context) (gomcp.Connection, error) {
	c, err := t.Transport.Connect(ctx)
	if err != nil {
		return nil, err
	}
	t.conn = &rawConn{Connection: c, pending: make(map[string]chan *gojsonrpc.Response)}
	return t.conn, nil
}

func (c *rawConn) Read(ctx context.Context) (gojsonrpc.Message, error) {
	for {
		msg, err := c.Connection.Read(ctx)
		if err != nil {
			return nil, err
		}
		if resp, ok := msg.(*gojsonrpc.Response); ok {
			if id, ok := resp.ID.Raw().(string); ok && strings.HasPrefix(id, rawIDPrefix) {
				c.mu.Lock()
				ch := c.pending[id]
				delete(c.pending, id)
				c.mu.Unlock()
				if ch != nil {
					ch <- resp
				}
				continue
			}
			var init struct {
				ProtocolVersion string         `json:"protocolVersion"`
				Capabilities    jsontext.Value `json:"capabilities"`
			}
			if resp.Error == nil && json.Unmarshal(resp.Result, &init) == nil && init.ProtocolVersion != "" && init.Capabilities != nil {
				c.mu.Lock()
				c.caps = init.Capabilities
				c.mu.Unlock()
			}
		}
		return msg, nil
	}
}

// call sends a request and decodes its result into result.
func (c *rawConn) call(ctx context.Context, method string, params, result any) error {
	raw, err := json.Marshal(params)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.next++
	id := rawIDPrefix + strconv.Itoa(c.next)
	ch := make(chan *gojsonrpc.Response, 1)
	c.pending[id] = ch
	c.mu.Unlock()
	jid, err := gojsonrpc.MakeID(id)
	if err != nil {
		return err
	}
	if err := c.Connection.Write(ctx, &gojsonrpc.Request{ID: jid, Method: method, Params: raw}); err != nil {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case resp := <-ch:
		if resp.Error != nil {
			return fmt.Errorf("%s: %w", method, resp.Error)
		}
		if result == nil {
			return nil
		}
		if err := json.Unmarshal(resp.Result, result); err != nil {
			return fmt.Errorf("%s: decoding %s: %w", method, resp.Result, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// wireTask is a task as it travels.
type wireTask struct {
	TaskID        string `json:"taskId"`
	Status        string `json:"status"`
	StatusMessage string `json:"statusMessage"`
	PollInterval  int64  `json:"pollInterval"`
}

type wireToolResult struct {
	Meta    map[string]any `json:"_meta"`
	Content []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"content"`
	IsError bool `json:"isError"`
}

func (r *wireToolResult) text() string {
	for _, c := range r.Content {
		if c.Type == "text" {
			return c.Text
		}
	}
	return ""
}

// createTask calls a tool as a task.
func (c *rawConn) createTask(ctx context.Context, name string, args map[string]any) (wireTask, error) {
	var res struct {
		Task *wireTask `json:"task"`
	}
	err := c.call(ctx, "tools/call", map[string]any{"name": name, "arguments": args, "task": map[string]any{"ttl": 60000}}, &res)
	if err != nil {
		return wireTask{}, err
	}
	if res.Task == nil || res.Task.TaskID == "" {
		return wireTask{}, fmt.Errorf("tools/call %s with task: the result has no task", name)
	}
	return *res.Task, nil
}

// pollTask polls tasks/get until stop says so, at the task's poll
// interval (bounded to [10ms, 250ms] to keep the test quick), and returns
// the statuses seen.
func (c *rawConn) pollTask(ctx context.Context, id string, stop func(wireTask) bool) ([]string, error) {
	var seen []string
	for {
		var task wireTask
		if err := c.call(ctx, "tasks/get", map[string]any{"taskId": id}, &task); err != nil {
			return seen, err
		}
		if task.TaskID != id {
			return seen, fmt.Errorf("tasks/get %s answered for task %q", id, task.TaskID)
		}
		seen = append(seen, task.Status)
		if stop(task) {
			return seen, nil
		}
		wait := min(max(time.Duration(task.PollInterval)*time.Millisecond, 10*time.Millisecond), 250*time.Millisecond)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return seen, ctx.Err()
		}
	}
}

func terminal(t wireTask) bool {
	switch t.Status {
	case "completed", "failed", "cancelled":
		return true
	}
	return false
}

func TestInteropGoSDKClient(t *testing.T) {
	gw := startInteropGateway(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	t.Run("tools", func(t *testing.T) {
		rec := &goSDKRecorder{nonce: nonce(t)}
		// Default session options: the go-sdk first tries server/discover
		// (protocol 2026-07-28), which the gateway serves: the whole run
		// is modern (sampling and elicitation as MRTR input requests).
		wire := &wireLog{}
		cs, err := gomcp.NewClient(&gomcp.Implementation{Name: "go-sdk-interop", Version: "1"}, rec.options()).
			Connect(ctx, &gomcp.StreamableClientTransport{Endpoint: gw, HTTPClient: &http.Client{Transport: wire}}, nil)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		defer cs.Close()
		ir := cs.InitializeResult()
		if ir.ProtocolVersion != "2026-07-28" {
			t.Errorf("negotiated protocol %q, want 2026-07-28", ir.ProtocolVersion)
		}
		if ir.ServerInfo == nil || ir.ServerInfo.Name != "mcpgate" {
			t.Errorf("server info %+v, want mcpgate", ir.ServerInfo)
		}
		t.Logf("go-sdk connection handshake: %s", wire.String())

		var names []string
		for tool, err := range cs.Tools(ctx, nil) {
			if err != nil {
				t.Fatalf("tools/list: %v", err)
			}
			names = append(names, tool.Name)
		}
		for _, want := range []string{"up_greet", "up_ask", "up_slow"} {
			if !slices.Contains(names, want) {
				t.Errorf("tools/list: %q missing from %v", want, names)
			}
		}

		// A call with a progress token: progress comes back with the
		// client's own token, though the gateway used its own upstream.
		params := &gomcp.CallToolParams{Name: "up_greet", Arguments: map[string]any{"name": "go-" + rec.nonce}}
		params.SetProgressToken("go-progress-" + rec.nonce)
		res, err := cs.CallTool(ctx, params)
		if err != nil {
			t.Fatalf("call up_greet: %v", err)
		}
		if got := toolText(res); res.IsError || got != "hello, go-"+rec.nonce {
			t.Errorf("up_greet = %q (isError %v), want %q", got, res.IsError, "hello, go-"+rec.nonce)
		}
		// The go-sdk runs notification handlers concurrently with the
		// response, so give the two notifications a moment to land.
		waitFor(t, ctx, "2 progress notifications", func() bool {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			return len(rec.progress) >= 2
		})
		rec.mu.Lock()
		var got []string
		for _, p := range rec.progress {
			got = append(got, fmt.Sprintf("%v:%v/%v:%s", p.ProgressToken, p.Progress, p.Total, p.Message))
		}
		rec.mu.Unlock()
		tok := "go-progress-" + rec.nonce
		want := []string{tok + ":1/2:halfway", tok + ":2/2:done"}
		if !slices.Equal(got, want) {
			t.Errorf("progress = %q, want %q", got, want)
		}

		// Sampling and elicitation from the upstream reach this client.
		q := "sync-" + rec.nonce
		res, err = cs.CallTool(ctx, &gomcp.CallToolParams{Name: "up_ask", Arguments: map[string]any{"q": q}})
		if err != nil {
			t.Fatalf("call up_ask: %v", err)
		}
		if got, want := toolText(res), askAnswer(q, "go-answer("+q+")", "go-model", "accept", "go-name-"+rec.nonce); res.IsError || got != want {
			t.Errorf("up_ask = %q (isError %v), want %q", got, res.IsError, want)
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if len(rec.sampling) != 1 || rec.sampling[0].text != q {
			t.Errorf("sampling requests = %+v, want one for %q", rec.sampling, q)
		}
		if len(rec.elicitation) != 1 || rec.elicitation[0].text != "name for "+q {
			t.Errorf("elicitation requests = %+v, want one for %q", rec.elicitation, "name for "+q)
		}
	})

	t.Run("tasks", func(t *testing.T) {
		rec := &goSDKRecorder{nonce: nonce(t)}
		rt := &rawTransport{Transport: &gomcp.StreamableClientTransport{Endpoint: gw}}
		// 2025-11-25 core tasks: the session is asked for that revision.
		cs, err := gomcp.NewClient(&gomcp.Implementation{Name: "go-sdk-interop-tasks", Version: "1"}, rec.options()).Connect(ctx, rt, &gomcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		defer cs.Close()
		ir := cs.InitializeResult()
		if ir.ProtocolVersion != "2025-11-25" {
			t.Fatalf("negotiated protocol %q, want 2025-11-25 (tasks need it)", ir.ProtocolVersion)
		}
		// The go-sdk's ServerCapabilities has no tasks member: read the
		// gateway's initialize answer as it came over the wire.
		var caps struct {
			Tasks *struct {
				List     *struct{} `json:"list"`
				Cancel   *struct{} `json:"cancel"`
				Requests *struct {
					Tools *struct {
						Call *struct{} `json:"call"`
					} `json:"tools"`
				} `json:"requests"`
			} `json:"tasks"`
		}
		if err := json.Unmarshal(rt.conn.initCaps(), &caps); err != nil {
			t.Fatalf("initialize capabilities %s: %v", rt.conn.initCaps(), err)
		}
		if tc := caps.Tasks; tc == nil || tc.List == nil || tc.Cancel == nil || tc.Requests == nil || tc.Requests.Tools == nil || tc.Requests.Tools.Call == nil {
			t.Errorf("the gateway's tasks capability is incomplete: %s", rt.conn.initCaps())
		}

		// A plain task: created, polled to completion, result fetched.
		word := "go-" + rec.nonce
		task, err := rt.conn.createTask(ctx, "up_slow", map[string]any{"word": word})
		if err != nil {
			t.Fatal(err)
		}
		if task.Status != "working" {
			t.Errorf("created task status %q, want working", task.Status)
		}
		seen, err := rt.conn.pollTask(ctx, task.TaskID, terminal)
		if err != nil {
			t.Fatalf("polling %s: %v (seen %v)", task.TaskID, err, seen)
		}
		if last := seen[len(seen)-1]; last != "completed" {
			t.Fatalf("task ended %q, want completed (seen %v)", last, seen)
		}
		var res wireToolResult
		if err := rt.conn.call(ctx, "tasks/result", map[string]any{"taskId": task.TaskID}, &res); err != nil {
			t.Fatal(err)
		}
		if res.IsError || res.text() != "slow:"+word {
			t.Errorf("tasks/result = %+v, want text %q", res, "slow:"+word)
		}
		if got := relatedTaskOf(res.Meta); got != task.TaskID {
			t.Errorf("tasks/result related-task id %q, want the gateway's task id %q", got, task.TaskID)
		}
		var list struct {
			Tasks []wireTask `json:"tasks"`
		}
		if err := rt.conn.call(ctx, "tasks/list", map[string]any{}, &list); err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(list.Tasks, func(x wireTask) bool { return x.TaskID == task.TaskID && x.Status == "completed" }) {
			t.Errorf("tasks/list = %+v, want %s completed", list.Tasks, task.TaskID)
		}

		// Cancelling a running task.
		long, err := rt.conn.createTask(ctx, "up_slow", map[string]any{"word": word, "ms": 10000})
		if err != nil {
			t.Fatal(err)
		}
		var cancelled wireTask
		if err := rt.conn.call(ctx, "tasks/cancel", map[string]any{"taskId": long.TaskID}, &cancelled); err != nil {
			t.Fatal(err)
		}
		if cancelled.TaskID != long.TaskID || cancelled.Status != "cancelled" {
			t.Errorf("tasks/cancel = %+v, want %s cancelled", cancelled, long.TaskID)
		}
		var after wireTask
		if err := rt.conn.call(ctx, "tasks/get", map[string]any{"taskId": long.TaskID}, &after); err != nil || after.Status != "cancelled" {
			t.Errorf("tasks/get after cancel = %+v, %v; want cancelled", after, err)
		}

		// A task that needs input: it goes input_required, and tasks/result
		// carries the upstream's sampling and elicitation requests to the
		// go-sdk handlers, tied to the task the client knows.
		q := "task-" + rec.nonce
		ask, err := rt.conn.createTask(ctx, "up_ask", map[string]any{"q": q})
		if err != nil {
			t.Fatal(err)
		}
		seen, err = rt.conn.pollTask(ctx, ask.TaskID, func(x wireTask) bool { return x.Status == "input_required" || terminal(x) })
		if err != nil {
			t.Fatalf("polling %s: %v (seen %v)", ask.TaskID, err, seen)
		}
		if last := seen[len(seen)-1]; last != "input_required" {
			t.Errorf("ask task reached %q, want input_required (seen %v)", last, seen)
		}
		res = wireToolResult{}
		if err := rt.conn.call(ctx, "tasks/result", map[string]any{"taskId": ask.TaskID}, &res); err != nil {
			t.Fatal(err)
		}
		if got, want := res.text(), askAnswer(q, "go-answer("+q+")", "go-model", "accept", "go-name-"+rec.nonce); res.IsError || got != want {
			t.Errorf("ask task result = %q (isError %v), want %q", got, res.IsError, want)
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if len(rec.sampling) != 1 || rec.sampling[0].text != q {
			t.Errorf("sampling requests = %+v, want one for %q", rec.sampling, q)
		} else if rec.sampling[0].relatedTask != ask.TaskID {
			t.Errorf("sampling request related-task id %q, want the gateway's task id %q", rec.sampling[0].relatedTask, ask.TaskID)
		}
		if len(rec.elicitation) != 1 || rec.elicitation[0].text != "name for "+q {
			t.Errorf("elicitation requests = %+v, want one for %q", rec.elicitation, "name for "+q)
		} else if rec.elicitation[0].relatedTask != ask.TaskID {
			t.Errorf("elicitation request related-task id %q, want the gateway's task id %q", rec.elicitation[0].relatedTask, ask.TaskID)
		}
	})
}

// wireLog records the HTTP exchanges of a client, as "METHOD jsonrpc-method
// -> status", to show how the go-sdk's handshake went.
type wireLog struct {
	mu  sync.Mutex
	log []string
}

func (w *wireLog) RoundTrip(r *http.Request) (*http.Response, error) {
	what := r.Method
	if r.Body != nil && r.Method == http.MethodPost {
		body, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		var msg struct {
			Method string `json:"method"`
		}
		if json.Unmarshal(body, &msg) == nil && msg.Method != "" {
			what += " " + msg.Method
		}
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.log = append(w.log, what+" -> "+err.Error())
	} else {
		w.log = append(w.log, fmt.Sprintf("%s -> %d", what, resp.StatusCode))
	}
	return resp, err
}

func (w *wireLog) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.log, "; ")
}

func toolText(res *gomcp.CallToolResult) string {
	for _, c := range res.Content {
		if tc, ok := c.(*gomcp.TextContent); ok {
			return tc.Text
		}
	}
	return ""
}

// waitFor polls cond every 10ms for up to 5 seconds.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ---- TypeScript SDK client -----------------------------------------------

// tsSummary is what testdata/tsclient/interop.mjs prints.
type tsSummary struct {
	ProtocolVersion string `json:"protocolVersion"`
	ServerName      string `json:"serverName"`
	TaskCapable     bool   `json:"taskCapable"`
	Tools           []struct {
		Name        string `json:"name"`
		TaskSupport string `json:"taskSupport"`
	} `json:"tools"`
	Greet *struct {
		Text     string `json:"text"`
		IsError  bool   `json:"isError"`
		Progress []struct {
			Progress float64 `json:"progress"`
			Total    float64 `json:"total"`
			Message  string  `json:"message"`
		} `json:"progress"`
	} `json:"greet"`
	Ask *struct {
		Text    string `json:"text"`
		IsError bool   `json:"isError"`
	} `json:"ask"`
	Sampling []struct {
		Text        string `json:"text"`
		RelatedTask string `json:"relatedTask"`
	} `json:"sampling"`
	Elicitation []struct {
		Message     string `json:"message"`
		Mode        string `json:"mode"`
		RelatedTask string `json:"relatedTask"`
	} `json:"elicitation"`
	Task    *tsTask  `json:"task"`
	AskTask *tsTask  `json:"askTask"`
	Errors  []string `json:"errors"`
}

type tsTask struct {
	TaskID        string         `json:"taskId"`
	CreatedStatus string         `json:"createdStatus"`
	Statuses      []string       `json:"statuses"`
	Result        string         `json:"result"`
	ResultMeta    map[string]any `json:"resultMeta"`
	Error         string         `json:"error"`
	Get           *struct {
		TaskID string `json:"taskId"`
		Status string `json:"status"`
	} `json:"get"`
	Listed []string `json:"listed"`
}

const tsClientDir = "testdata/tsclient"

func TestInteropTypeScriptSDKClient(t *testing.T) {
	env := npmtest.Require(t)
	dir := env.Install(t, tsClientDir) // checks the installed version against the pin
	version, pin := env.NodeVersion, npmtest.Version(t, dir, "@modelcontextprotocol/sdk")
	work := npmtest.Workdir(t, dir, filepath.Join(tsClientDir, "interop.mjs"))

	gw := startInteropGateway(t)
	n := nonce(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, env.Node, "interop.mjs", gw, n)
	cmd.Dir = work
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("the TypeScript client timed out (killed)\nstderr:\n%s", stderr.Bytes())
	}
	if runErr != nil {
		t.Fatalf("node interop.mjs (node %s, sdk %s): %v\nstdout:\n%s\nstderr:\n%s", version, pin, runErr, stdout.Bytes(), stderr.Bytes())
	}
	t.Logf("node %s, @modelcontextprotocol/sdk %s", version, pin)
	var s tsSummary
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &s); err != nil {
		t.Fatalf("decoding the summary: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.Bytes(), stderr.Bytes())
	}
	t.Logf("summary: %s", bytes.TrimSpace(stdout.Bytes()))
	for _, e := range s.Errors {
		t.Errorf("TypeScript client step failed: %s", e)
	}

	if s.ProtocolVersion != "2025-11-25" {
		t.Errorf("negotiated protocol %q, want 2025-11-25", s.ProtocolVersion)
	}
	if s.ServerName != "mcpgate" {
		t.Errorf("server name %q, want mcpgate", s.ServerName)
	}
	if !s.TaskCapable {
		t.Error("the gateway did not advertise tasks.requests.tools.call")
	}
	support := map[string]string{}
	for _, tool := range s.Tools {
		support[tool.Name] = tool.TaskSupport
	}
	for name, want := range map[string]string{"up_greet": "", "up_ask": "optional", "up_slow": "optional"} {
		got, ok := support[name]
		if !ok {
			t.Errorf("tools/list: %q missing (got %v)", name, support)
		} else if got != want {
			t.Errorf("tools/list: %s taskSupport %q, want %q", name, got, want)
		}
	}

	if g := s.Greet; g == nil {
		t.Error("no up_greet result")
	} else {
		if g.IsError || g.Text != "hello, ts-"+n {
			t.Errorf("up_greet = %q (isError %v), want %q", g.Text, g.IsError, "hello, ts-"+n)
		}
		var got []string
		for _, p := range g.Progress {
			got = append(got, fmt.Sprintf("%v/%v:%s", p.Progress, p.Total, p.Message))
		}
		if want := []string{"1/2:halfway", "2/2:done"}; !slices.Equal(got, want) {
			t.Errorf("progress = %q, want %q", got, want)
		}
	}

	syncQ, taskQ := "sync-"+n, "task-"+n
	if a := s.Ask; a == nil {
		t.Error("no up_ask result")
	} else if want := askAnswer(syncQ, "ts-answer("+syncQ+")", "ts-model", "accept", "ts-name-"+n); a.IsError || a.Text != want {
		t.Errorf("up_ask = %q (isError %v), want %q", a.Text, a.IsError, want)
	}

	if tk := s.Task; tk == nil {
		t.Error("no up_slow task")
	} else {
		if tk.TaskID == "" || tk.CreatedStatus != "working" {
			t.Errorf("task created as %q status %q, want an id and working", tk.TaskID, tk.CreatedStatus)
		}
		if len(tk.Statuses) == 0 || tk.Statuses[len(tk.Statuses)-1] != "completed" {
			t.Errorf("task statuses %v, want ending in completed", tk.Statuses)
		}
		if tk.Error != "" || tk.Result != "slow:ts-"+n {
			t.Errorf("task result %q (error %q), want %q", tk.Result, tk.Error, "slow:ts-"+n)
		}
		if got := relatedTaskOf(tk.ResultMeta); got != tk.TaskID {
			t.Errorf("task result related-task id %q, want %q", got, tk.TaskID)
		}
		if tk.Get == nil || tk.Get.TaskID != tk.TaskID || tk.Get.Status != "completed" {
			t.Errorf("tasks/get = %+v, want %s completed", tk.Get, tk.TaskID)
		}
		if !slices.Contains(tk.Listed, tk.TaskID) {
			t.Errorf("tasks/list = %v, want it to hold %s", tk.Listed, tk.TaskID)
		}
	}

	if tk := s.AskTask; tk == nil {
		t.Error("no up_ask task")
	} else {
		if want := askAnswer(taskQ, "ts-answer("+taskQ+")", "ts-model", "accept", "ts-name-"+n); tk.Error != "" || tk.Result != want {
			t.Errorf("ask task result %q (error %q), want %q", tk.Result, tk.Error, want)
		}
		if !slices.Contains(tk.Statuses, "input_required") {
			t.Errorf("ask task statuses %v, want input_required among them", tk.Statuses)
		}
	}

	// One sampling and one elicitation per up_ask call; those of the task
	// name the task the client knows (the gateway's id).
	askTaskID := ""
	if s.AskTask != nil {
		askTaskID = s.AskTask.TaskID
	}
	var sampled, elicited []string
	for _, r := range s.Sampling {
		sampled = append(sampled, r.Text+"@"+r.RelatedTask)
	}
	for _, r := range s.Elicitation {
		elicited = append(elicited, r.Message+"@"+r.RelatedTask)
	}
	if want := []string{syncQ + "@", taskQ + "@" + askTaskID}; !slices.Equal(sampled, want) {
		t.Errorf("sampling requests (prompt@related task) = %q, want %q", sampled, want)
	}
	if want := []string{"name for " + syncQ + "@", "name for " + taskQ + "@" + askTaskID}; !slices.Equal(elicited, want) {
		t.Errorf("elicitation requests (message@related task) = %q, want %q", elicited, want)
	}
}
