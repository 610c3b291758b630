package gateway

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/store"
)

// passthroughUpstream is a dual-era upstream whose tools ask for input
// under their own keys: "pair" asks for user_name (elicitation) and
// reply (sampling) in one round; "later" (task support optional) asks
// for user_name, then becomes a task; "grow" adds a tool (a list
// change); "hold" (a required task) waits until release is closed. It
// returns the server and its endpoint.
func passthroughUpstream(t *testing.T, wrap func(http.Handler) http.Handler) (*mcp.Server, string) {
	t.Helper()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	return passthroughUpstreamWith(t, wrap, release)
}

// passthroughUpstreamWith is passthroughUpstream whose "hold" tasks wait
// for release.
func passthroughUpstreamWith(t *testing.T, wrap func(http.Handler) http.Handler, release <-chan struct{}) (*mcp.Server, string) {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "modern-up", Version: "1"}, nil)
	elicit := &mcp.ElicitParams{Message: "name?", RequestedSchema: &mcp.ElicitationSchema{
		Properties: map[string]mcp.PrimitiveSchemaDefinition{"name": {Type: "string"}}}}
	s.AddTool(&mcp.Tool{Name: "pair"}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		got, err := req.Session.RequestInput(ctx, map[string]*mcp.InputRequest{
			"user_name": {Method: mcp.MethodElicitationCreate, Params: elicit},
			"reply": {Method: mcp.MethodSamplingCreateMessage, Params: &mcp.CreateMessageParams{MaxTokens: 5,
				Messages: []*mcp.SamplingMessage{{Role: mcp.RoleUser, Content: []mcp.Content{&mcp.TextContent{Text: "hi"}}}}}},
		})
		if err != nil {
			return nil, err
		}
		var e mcp.ElicitResult
		var m struct {
			Content struct {
				Text string `json:"text"`
			} `json:"content"`
		}
		if err := json.Unmarshal(got["user_name"], &e); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(got["reply"], &m); err != nil {
			return nil, err
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf("%v/%s", e.Content["name"], m.Content.Text)}}}, nil
	})
	s.AddTool(&mcp.Tool{Name: "later", Execution: &mcp.ToolExecution{TaskSupport: mcp.TaskSupportOptional}},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			r, err := req.Session.ElicitInput(ctx, "user_name", elicit)
			if err != nil {
				return nil, err
			}
			if err := req.Session.StartTask(ctx); err != nil {
				return nil, err
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf("hello %v", r.Content["name"])}}}, nil
		})
	s.AddTool(&mcp.Tool{Name: "hold", Execution: &mcp.ToolExecution{TaskSupport: mcp.TaskSupportRequired}},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if err := req.Session.StartTask(ctx); err != nil {
				return nil, err
			}
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "released"}}}, nil
		})
	s.AddTool(&mcp.Tool{Name: "confirm", Execution: &mcp.ToolExecution{TaskSupport: mcp.TaskSupportRequired}},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if err := req.Session.StartTask(ctx); err != nil {
				return nil, err
			}
			r, err := req.Session.ElicitInput(ctx, "confirm", elicit)
			if err != nil {
				return nil, err
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf("confirmed by %v", r.Content["name"])}}}, nil
		})
	s.AddTool(&mcp.Tool{Name: "grow"}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		s.AddTool(&mcp.Tool{Name: "grown"}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{}, nil
		})
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "grew"}}}, nil
	})
	var h http.Handler = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return s, srv.URL
}

// inputKeys returns the keys and methods of an input_required result's
// inputRequests, and its requestState.
func inputKeys(t *testing.T, r *modernReply) (map[string]string, string) {
	t.Helper()
	if r.err != nil || string(r.result["resultType"]) != `"input_required"` {
		t.Fatalf("want input_required, got %v %v", r.err, r.result)
	}
	var reqs map[string]struct {
		Method string `json:"method"`
	}
	if err := json.Unmarshal(r.result["inputRequests"], &reqs); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range reqs {
		out[k] = v.Method
	}
	var state string
	if err := json.Unmarshal(r.result["requestState"], &state); err != nil {
		t.Fatalf("requestState %s: %v", r.result["requestState"], err)
	}
	return out, state
}

const (
	answerName  = `{"action":"accept","content":{"name":"Ada"}}`
	answerReply = `{"role":"assistant","model":"m","content":{"type":"text","text":"yo"}}`
)

// TestModernPassthroughKeys: with the upstream pinned to 2026-07-28, a
// modern client gets the upstream's own input keys, several in one
// round; a partial answer is asked again for the rest only; a tampered
// state, another user's state and a state for another tool are refused
// before the upstream sees them; every round and every input request
// passes admission (decided and completed records).
func TestModernPassthroughKeys(t *testing.T) {
	_, upURL := passthroughUpstream(t, nil)
	up := config.Upstream{Name: "up", URL: upURL + "/mcp", Prefix: ptr(""), Protocol: config.ProtocolModern}
	_, url, st := governedGatewayG(t, up, `@id("all") permit(principal, action, resource);`)

	r := modernPost(t, url, "bob", mcp.MethodToolsCall, map[string]any{"name": "pair"})
	keys, state := inputKeys(t, r)
	if want := map[string]string{"user_name": mcp.MethodElicitationCreate, "reply": mcp.MethodSamplingCreateMessage}; fmt.Sprint(keys) != fmt.Sprint(want) {
		t.Fatalf("input keys %v, want %v", keys, want)
	}
	if !strings.HasPrefix(state, passStatePrefix) {
		t.Errorf("state %q is not the gateway's", state)
	}
	if n := len(records(t, st, mcp.MethodElicitationCreate)) + len(records(t, st, mcp.MethodSamplingCreateMessage)); n != 4 {
		t.Errorf("input request records after round 1: %d, want 4 (decided and completed of each)", n)
	}

	// Refused states.
	for name, params := range map[string]map[string]any{
		"tampered":   {"name": "pair", "requestState": state[:len(state)-2] + "xx", "inputResponses": map[string]any{}},
		"other tool": {"name": "later", "requestState": state, "inputResponses": map[string]any{}},
		"other args": {"name": "pair", "arguments": map[string]any{"x": 1}, "requestState": state, "inputResponses": map[string]any{}},
		"foreign":    {"name": "pair", "requestState": "upstream-state", "inputResponses": map[string]any{}},
	} {
		if o := modernPost(t, url, "bob", mcp.MethodToolsCall, params); o.err == nil || o.err.Code != jsonrpc.CodeInvalidParams {
			t.Errorf("%s state: %v %v, want -32602", name, o.err, o.result)
		}
	}
	answers := map[string]any{"user_name": jsontext.Value(answerName), "reply": jsontext.Value(answerReply)}
	if o := modernPost(t, url, "alice", mcp.MethodToolsCall, map[string]any{"name": "pair", "requestState": state, "inputResponses": answers}); o.err == nil || o.err.Code != jsonrpc.CodeInvalidParams {
		t.Errorf("alice with bob's state: %v %v, want -32602", o.err, o.result)
	}

	// A partial answer: asked again for the reply only.
	r = modernPost(t, url, "bob", mcp.MethodToolsCall, map[string]any{"name": "pair", "requestState": state,
		"inputResponses": map[string]any{"user_name": jsontext.Value(answerName)}})
	keys, state2 := inputKeys(t, r)
	if fmt.Sprint(keys) != fmt.Sprint(map[string]string{"reply": mcp.MethodSamplingCreateMessage}) {
		t.Fatalf("after a partial answer: keys %v", keys)
	}
	if state2 == state {
		t.Error("the second round has the first round's state")
	}
	r = modernPost(t, url, "bob", mcp.MethodToolsCall, map[string]any{"name": "pair", "requestState": state2,
		"inputResponses": map[string]any{"reply": jsontext.Value(answerReply)}})
	if r.err != nil || textOf(t, r) != "Ada/yo" {
		t.Fatalf("final round: %v %v", r.err, r.result)
	}

	// Every retry passed admission (decided, then completed): bob's three
	// good rounds, and the five whose state was refused (bob's four,
	// alice's one), which ended before anything reached the upstream.
	var decided, completed, refused int
	for _, rec := range records(t, st, mcp.MethodToolsCall) {
		switch {
		case rec.Phase == "decided":
			decided++
		case strings.Contains(rec.Error, "requestState"):
			refused++
		case rec.Phase == "completed":
			completed++
		}
	}
	if decided != 8 || completed != 3 || refused != 5 {
		t.Errorf("tools/call records: %d decided, %d completed, %d refused; want 8, 3, 5", decided, completed, refused)
	}
	// The input requests of round 1 (two) and round 2 (one), each decided
	// and completed, as relayed requests are.
	if n := len(records(t, st, mcp.MethodElicitationCreate)); n != 2 {
		t.Errorf("elicitation/create records: %d, want 2", n)
	}
	if n := len(records(t, st, mcp.MethodSamplingCreateMessage)); n != 4 {
		t.Errorf("sampling/createMessage records: %d, want 4", n)
	}
}

// TestModernPassthroughDenied: policy that forbids the upstream's
// elicitation refuses the round whose input requests ask for it.
func TestModernPassthroughDenied(t *testing.T) {
	_, upURL := passthroughUpstream(t, nil)
	up := config.Upstream{Name: "up", URL: upURL + "/mcp", Prefix: ptr(""), Protocol: config.ProtocolModern}
	_, url, st := governedGatewayG(t, up, `@id("all") permit(principal, action, resource);
@id("no-elicit") forbid(principal, action == Action::"elicitation/create", resource);`)
	r := modernPost(t, url, "bob", mcp.MethodToolsCall, map[string]any{"name": "pair"})
	if r.err == nil || r.err.Code != CodePolicyDenied {
		t.Fatalf("pair with elicitation forbidden: %v %v", r.err, r.result)
	}
	recs := records(t, st, mcp.MethodElicitationCreate)
	if len(recs) != 1 || recs[0].Decision != "deny" {
		t.Errorf("elicitation/create records: %+v", recs)
	}
}

// TestModernPassthroughTask: MRTR before a task (composition): the first
// round asks for user_name, the retry becomes a task with the gateway's
// id, owned by the caller, whose result carries the answer.
func TestModernPassthroughTask(t *testing.T) {
	_, upURL := passthroughUpstream(t, nil)
	up := config.Upstream{Name: "up", URL: upURL + "/mcp", Prefix: ptr(""), Protocol: config.ProtocolModern}
	_, url, st := governedGatewayG(t, up, `@id("all") permit(principal, action, resource);`)
	withExt := map[string]any{mcp.MetaClientCapabilities: jsontext.Value(`{"elicitation":{},"extensions":{"` + mcp.ExtensionTasks + `":{}}}`)}

	d := modernPost(t, url, "bob", mcp.MethodServerDiscover, nil)
	if !strings.Contains(string(d.result["capabilities"]), mcp.ExtensionTasks) {
		t.Errorf("discover capabilities %s: no tasks extension", d.result["capabilities"])
	}
	r := modernPost(t, url, "bob", mcp.MethodToolsCall, map[string]any{"name": "later", "_meta": withExt})
	keys, state := inputKeys(t, r)
	if _, ok := r.result["taskId"]; ok || keys["user_name"] != mcp.MethodElicitationCreate {
		t.Fatalf("round 1: %v", r.result)
	}
	r = modernPost(t, url, "bob", mcp.MethodToolsCall, map[string]any{"name": "later", "_meta": withExt, "requestState": state,
		"inputResponses": map[string]any{"user_name": jsontext.Value(answerName)}})
	if r.err != nil || string(r.result["resultType"]) != `"task"` {
		t.Fatalf("round 2: %v %v", r.err, r.result)
	}
	if _, ok := r.result["requestState"]; ok {
		t.Errorf("the task carries a requestState: %v", r.result)
	}
	var id string
	if err := json.Unmarshal(r.result["taskId"], &id); err != nil || id == "" {
		t.Fatalf("taskId %s", r.result["taskId"])
	}
	if len(records(t, st, "task.created")) != 1 {
		t.Errorf("task.created records: %d", len(records(t, st, "task.created")))
	}
	var status string
	for deadline := time.Now().Add(30 * time.Second); status != "completed"; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("task still %q", status)
		}
		g := modernPost(t, url, "bob", mcp.MethodTasksGet, map[string]any{"taskId": id, "_meta": withExt})
		if g.err != nil {
			t.Fatalf("tasks/get: %v", g.err)
		}
		var gid string
		if err := json.Unmarshal(g.result["taskId"], &gid); err != nil || gid != id {
			t.Errorf("tasks/get answers task %q, want the gateway's %q", gid, id)
		}
		if err := json.Unmarshal(g.result["status"], &status); err != nil {
			t.Fatal(err)
		}
		if status == "completed" && !strings.Contains(string(g.result["result"]), "hello Ada") {
			t.Errorf("completed task without its result: %v", g.result)
		}
	}
	if o := modernPost(t, url, "alice", mcp.MethodTasksGet, map[string]any{"taskId": id, "_meta": withExt}); o.err == nil || o.err.Code != jsonrpc.CodeInvalidParams {
		t.Errorf("alice's tasks/get of bob's task: %v %v", o.err, o.result)
	}
}

// TestModernPassthroughTaskInput: a modern upstream's task that needs
// input shows the upstream's input request (its key) on tasks/get, and
// tasks/update carries the answer to it; the task ends with it.
func TestModernPassthroughTaskInput(t *testing.T) {
	_, upURL := passthroughUpstream(t, nil)
	up := config.Upstream{Name: "up", URL: upURL + "/mcp", Prefix: ptr(""), Protocol: config.ProtocolModern}
	_, url, st := governedGatewayG(t, up, `@id("all") permit(principal, action, resource);`)
	withExt := map[string]any{mcp.MetaClientCapabilities: jsontext.Value(`{"elicitation":{},"extensions":{"` + mcp.ExtensionTasks + `":{}}}`)}
	r := modernPost(t, url, "bob", mcp.MethodToolsCall, map[string]any{"name": "confirm", "_meta": withExt})
	if r.err != nil || string(r.result["resultType"]) != `"task"` {
		t.Fatalf("confirm: %v %v", r.err, r.result)
	}
	var id string
	if err := json.Unmarshal(r.result["taskId"], &id); err != nil {
		t.Fatal(err)
	}
	get := func() (string, map[string]jsontext.Value) {
		t.Helper()
		g := modernPost(t, url, "bob", mcp.MethodTasksGet, map[string]any{"taskId": id, "_meta": withExt})
		if g.err != nil {
			t.Fatalf("tasks/get: %v", g.err)
		}
		var status string
		if err := json.Unmarshal(g.result["status"], &status); err != nil {
			t.Fatal(err)
		}
		return status, g.result
	}
	status, res := get()
	for deadline := time.Now().Add(30 * time.Second); status == "working"; status, res = get() {
		if time.Now().After(deadline) {
			t.Fatal("the task never asked for input")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if status != "input_required" || !strings.Contains(string(res["inputRequests"]), `"confirm"`) {
		t.Fatalf("task %s: %v", status, res)
	}
	if n := len(records(t, st, mcp.MethodElicitationCreate)); n < 2 {
		t.Errorf("the task's input request was not admitted: %d records", n)
	}
	// Another user cannot answer it.
	if o := modernPost(t, url, "alice", mcp.MethodTasksUpdate, map[string]any{"taskId": id, "_meta": withExt,
		"inputResponses": map[string]any{"confirm": jsontext.Value(answerName)}}); o.err == nil || o.err.Code != jsonrpc.CodeInvalidParams {
		t.Errorf("alice's tasks/update of bob's task: %v %v", o.err, o.result)
	}
	u := modernPost(t, url, "bob", mcp.MethodTasksUpdate, map[string]any{"taskId": id, "_meta": withExt,
		"inputResponses": map[string]any{"confirm": jsontext.Value(answerName)}})
	if u.err != nil || string(u.result["resultType"]) != `"complete"` {
		t.Fatalf("tasks/update: %v %v", u.err, u.result)
	}
	for deadline := time.Now().Add(30 * time.Second); status != "completed"; status, res = get() {
		if time.Now().After(deadline) {
			t.Fatalf("task still %q", status)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(string(res["result"]), "confirmed by Ada") {
		t.Errorf("result %s", res["result"])
	}
}

// TestUpstreamProtocolPin: without a pin the gateway speaks 2025-11-25 to
// a dual-era upstream (a modern client gets the gateway's keys for the
// relayed requests); pinned to 2026-07-28 it speaks 2026-07-28 (the
// upstream's keys); pinned to 2025-11-25, a modern-only upstream is not
// reached (no fallback).
func TestUpstreamProtocolPin(t *testing.T) {
	_, upURL := passthroughUpstream(t, nil)
	for _, tt := range []struct {
		protocol string
		key      string
	}{{"", "elicitation/create#"}, {config.ProtocolModern, "user_name"}} {
		up := config.Upstream{Name: "up", URL: upURL + "/mcp", Prefix: ptr(""), Protocol: tt.protocol}
		g, url, _ := governedGatewayG(t, up, `@id("all") permit(principal, action, resource);`)
		r := modernPost(t, url, "bob", mcp.MethodToolsCall, map[string]any{"name": "later"})
		keys, _ := inputKeys(t, r)
		var names []string
		for k := range keys {
			names = append(names, k)
		}
		if len(names) != 1 || !strings.HasPrefix(names[0], tt.key) {
			t.Errorf("protocol %q: input keys %v, want one starting %q", tt.protocol, names, tt.key)
		}
		want := cmp.Or(tt.protocol, mcp.Version20251125)
		if s := g.UpstreamStates(); len(s) != 1 || s[0].State != UpstreamReady || s[0].Protocol != want {
			t.Errorf("protocol %q: states %+v, want ready with protocol %s", tt.protocol, s, want)
		}
	}

	_, modernURL := passthroughUpstream(t, func(h http.Handler) http.Handler { return modernOnly{h} })
	g, err := New(&config.Config{Upstreams: []config.Upstream{{Name: "m", URL: modernURL + "/mcp", Protocol: "2025-11-25"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	g.WaitStartup(context.Background())
	states := g.UpstreamStates()
	if len(states) != 1 || states[0].State == "ready" || !strings.Contains(states[0].LastError, "nsupported protocol version") {
		t.Errorf("a modern-only upstream pinned to 2025-11-25: %+v", states)
	}
}

// TestLegacyClientModernUpstream: a legacy client behind a pinned modern
// upstream gets the upstream's input requests of one round as
// elicitation/create and sampling/createMessage requests, each admitted
// and recorded, and the answers go back as inputResponses.
func TestLegacyClientModernUpstream(t *testing.T) {
	_, upURL := passthroughUpstream(t, nil)
	up := config.Upstream{Name: "up", URL: upURL + "/mcp", Prefix: ptr(""), Protocol: config.ProtocolModern}
	_, url, st := governedGatewayG(t, up, `@id("all") permit(principal, action, resource);`)
	var mu sync.Mutex
	var asked []string
	c := mcp.NewClient(&mcp.Implementation{Name: "legacy", Version: "1"}, &mcp.ClientOptions{
		CreateMessageHandler: func(ctx context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			mu.Lock()
			asked = append(asked, mcp.MethodSamplingCreateMessage)
			mu.Unlock()
			return &mcp.CreateMessageResult{Role: mcp.RoleAssistant, Model: "m", Content: []mcp.Content{&mcp.TextContent{Text: "yo"}}}, nil
		},
		ElicitationHandler: func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			mu.Lock()
			asked = append(asked, mcp.MethodElicitationCreate)
			mu.Unlock()
			return &mcp.ElicitResult{Action: mcp.ElicitActionAccept, Content: map[string]any{"name": "Ada"}}, nil
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: &http.Client{Transport: userTransport{"bob"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "pair"})
	if err != nil || res.IsError || res.Content[0].(*mcp.TextContent).Text != "Ada/yo" {
		t.Fatalf("pair: %v %+v", err, res)
	}
	slices.Sort(asked)
	if !slices.Equal(asked, []string{mcp.MethodElicitationCreate, mcp.MethodSamplingCreateMessage}) {
		t.Errorf("asked %v", asked)
	}
	for _, m := range []string{mcp.MethodElicitationCreate, mcp.MethodSamplingCreateMessage} {
		if recs := records(t, st, m); len(recs) != 2 || recs[0].User != "bob" || recs[0].Upstream != "up" {
			t.Errorf("%s records: %s", m, recordLines(recs))
		}
	}
}

// TestModernUpstreamListChanged: a modern upstream's list change reaches
// the gateway on its subscriptions/listen stream, and from there a legacy
// client's session and a modern client's listen stream.
func TestModernUpstreamListChanged(t *testing.T) {
	_, upURL := passthroughUpstream(t, nil)
	up := config.Upstream{Name: "up", URL: upURL + "/mcp", Prefix: ptr(""), Protocol: config.ProtocolModern}
	_, url, _ := governedGatewayG(t, up, `@id("all") permit(principal, action, resource);`)
	changed := make(chan struct{}, 4)
	c := mcp.NewClient(&mcp.Implementation{Name: "legacy", Version: "1"}, &mcp.ClientOptions{
		ToolListChangedHandler: func(context.Context, *mcp.ClientSession) { changed <- struct{}{} },
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: &http.Client{Transport: userTransport{"bob"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	// The legacy session's first call makes bob's upstream session,
	// which opens its listen stream.
	if _, err := cs.ListTools(ctx, nil); err != nil {
		t.Fatal(err)
	}
	msgs := modernListen(t, url, "bob", `{"toolsListChanged":true}`)
	// The upstream's stream opens in the background: grow until the
	// change arrives (generous deadline).
	poke := func(what string, got func(time.Duration) bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !got(500 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no tools/list_changed on %s", what)
			}
			if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "grow"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	poke("the legacy session", func(d time.Duration) bool {
		select {
		case <-changed:
			return true
		case <-time.After(d):
			return false
		}
	})
	poke("the modern listen stream", func(d time.Duration) bool {
		timer := time.NewTimer(d)
		defer timer.Stop()
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					t.Fatal("the listen stream ended")
				}
				if m.Method == mcp.NotificationToolsListChanged {
					return true
				}
			case <-timer.C:
				return false
			}
		}
	})
}

// TestModernListenTasks: a modern client that names its task in
// subscriptions/listen gets notifications/tasks when the gateway notes the
// task's end, with the gateway's id and the result inlined; another
// user's task id is left out of the acknowledgement; task ids without the
// Tasks extension are refused.
func TestModernListenTasks(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	_, upURL := passthroughUpstreamWith(t, nil, release)
	up := config.Upstream{Name: "up", URL: upURL + "/mcp", Prefix: ptr(""), Protocol: config.ProtocolModern}
	_, url, _ := governedGatewayG(t, up, `@id("all") permit(principal, action, resource);`)
	extCaps := `{"extensions":{"` + mcp.ExtensionTasks + `":{}}}`
	withExt := map[string]any{mcp.MetaClientCapabilities: jsontext.Value(extCaps)}

	r := modernPost(t, url, "bob", mcp.MethodToolsCall, map[string]any{"name": "hold", "_meta": withExt})
	if r.err != nil || string(r.result["resultType"]) != `"task"` {
		t.Fatalf("hold: %v %v", r.err, r.result)
	}
	var id string
	if err := json.Unmarshal(r.result["taskId"], &id); err != nil {
		t.Fatal(err)
	}
	// Without the extension: refused.
	if o := modernPost(t, url, "bob", mcp.MethodSubscriptionsListen, map[string]any{"notifications": map[string]any{"taskIds": []string{id}}}); o.err == nil || o.err.Code != mcp.CodeMissingRequiredClientCapability {
		t.Errorf("listen with taskIds without the extension: %v %v", o.err, o.result)
	}
	// Alice names bob's task: left out.
	alice := modernListenCaps(t, url, "alice", `{"taskIds":["`+id+`"]}`, extCaps)
	if ack := next(t, alice); ack.Method != mcp.NotificationSubscriptionsAcknowledged || strings.Contains(string(ack.Params), id) {
		t.Errorf("alice's ack: %s %s", ack.Method, ack.Params)
	}
	msgs := modernListenCaps(t, url, "bob", `{"taskIds":["`+id+`"]}`, extCaps)
	if ack := next(t, msgs); ack.Method != mcp.NotificationSubscriptionsAcknowledged || !strings.Contains(string(ack.Params), id) {
		t.Fatalf("bob's ack: %s %s", ack.Method, ack.Params)
	}
	free()
	for {
		m := next(t, msgs)
		if m.Method != notificationTasks {
			continue
		}
		var p struct {
			TaskID string         `json:"taskId"`
			Status string         `json:"status"`
			Result jsontext.Value `json:"result"`
			Meta   map[string]any `json:"_meta"`
		}
		if err := json.Unmarshal(m.Params, &p); err != nil {
			t.Fatal(err)
		}
		if p.TaskID != id || p.Meta[mcp.MetaSubscriptionID] != "sub-bob" {
			t.Errorf("notification %s", m.Params)
		}
		if p.Status == "completed" {
			if !strings.Contains(string(p.Result), "released") {
				t.Errorf("completed without the result: %s", m.Params)
			}
			break
		}
	}
	select {
	case m, ok := <-alice:
		if ok {
			t.Errorf("alice heard of bob's task: %s %s", m.Method, m.Params)
		}
	default:
	}
}

// TestModernListenGatewayChanges: a list change the gateway itself makes
// (a reload removes an upstream) reaches modern listeners.
func TestModernListenGatewayChanges(t *testing.T) {
	_, upURL := passthroughUpstream(t, nil)
	_, otherURL := passthroughUpstream(t, nil)
	up := config.Upstream{Name: "up", URL: upURL + "/mcp", Prefix: ptr(""), Protocol: config.ProtocolModern}
	other := config.Upstream{Name: "other", URL: otherURL + "/mcp", Protocol: config.ProtocolModern}
	g, url, _ := governedGatewayG(t, up, `@id("all") permit(principal, action, resource);`)
	ctx := context.Background()
	if _, err := g.ApplyUpstreams(ctx, []config.Upstream{up, other}); err != nil {
		t.Fatal(err)
	}
	msgs := modernListen(t, url, "bob", `{"toolsListChanged":true}`)
	if ack := next(t, msgs); ack.Method != mcp.NotificationSubscriptionsAcknowledged {
		t.Fatalf("ack: %s", ack.Method)
	}
	if _, err := g.ApplyUpstreams(ctx, []config.Upstream{up}); err != nil {
		t.Fatal(err)
	}
	for {
		if m := next(t, msgs); m.Method == mcp.NotificationToolsListChanged {
			break
		}
	}
}

// recordLines formats audit records for a failure message.
func recordLines(recs []*store.AuditRecord) string {
	var b strings.Builder
	for _, r := range recs {
		fmt.Fprintf(&b, "\n  %s %s %s %s %s", r.User, r.Action, r.Upstream, r.Decision, r.Phase)
	}
	return b.String()
}
