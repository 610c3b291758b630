package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/approval"
	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/policy"
	"github.com/mcpgate/mcpgate/policy/ratelimit"
	"github.com/mcpgate/mcpgate/store"
)

// modernReply is the answer to one raw modern POST.
type modernReply struct {
	status int
	result map[string]jsontext.Value
	err    *jsonrpc.Error
}

// modernCaps are the client capabilities modern test requests declare.
const modernCaps = `{"elicitation":{"form":{},"url":{}},"sampling":{}}`

// modernPost sends one 2026-07-28 request as user, with the envelope
// added to params, and returns the response for its id (JSON or SSE).
func modernPost(t *testing.T, url, user, method string, params map[string]any) *modernReply {
	t.Helper()
	if params == nil {
		params = map[string]any{}
	}
	meta, _ := params["_meta"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
	}
	meta[mcp.MetaProtocolVersion] = mcp.Version20260728
	if _, ok := meta[mcp.MetaClientCapabilities]; !ok {
		meta[mcp.MetaClientCapabilities] = jsontext.Value(modernCaps)
	}
	meta[mcp.MetaClientInfo] = map[string]string{"name": "modern-" + user, "version": "1"}
	params["_meta"] = meta
	extra, _ := params[extraHeaders].(map[string]string)
	delete(params, extraHeaders)
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 7, "method": method, "params": params})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", mcp.Version20260728)
	req.Header.Set("Mcp-Method", method)
	if name, ok := params["name"].(string); ok {
		req.Header.Set("Mcp-Name", name)
	} else if uri, ok := params["uri"].(string); ok {
		req.Header.Set("Mcp-Name", uri)
	} else if id, ok := params["taskId"].(string); ok {
		req.Header.Set("Mcp-Name", id)
	}
	req.Header.Set("X-Test-User", user)
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := readModernResponse(resp)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	var msg struct {
		Result map[string]jsontext.Value `json:"result"`
		Error  *struct {
			Code    int64          `json:"code"`
			Message string         `json:"message"`
			Data    jsontext.Value `json:"data"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &msg); err != nil {
		t.Fatalf("%s: %s: %v", method, raw, err)
	}
	r := &modernReply{status: resp.StatusCode, result: msg.Result}
	if e := msg.Error; e != nil {
		r.err = &jsonrpc.Error{Code: e.Code, Message: e.Message, Data: e.Data}
	}
	return r
}

// extraHeaders is the params key of modernPost's extra HTTP headers
// (taken out of the params).
const extraHeaders = "\x00headers"

// readModernResponse returns the response message with an id from a JSON
// or SSE body.
func readModernResponse(resp *http.Response) ([]byte, error) {
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data:")
		if !ok {
			continue
		}
		data = strings.TrimSpace(data)
		if strings.Contains(data, `"id"`) && (strings.Contains(data, `"result"`) || strings.Contains(data, `"error"`)) {
			return []byte(data), nil
		}
	}
	return nil, errors.New("no response on the stream")
}

// textOf returns the text of the first content item of a tools/call
// result.
func textOf(t *testing.T, r *modernReply) string {
	t.Helper()
	var content []struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal(r.result["content"], &content); err != nil || len(content) == 0 {
		t.Fatalf("content %s: %v", r.result["content"], err)
	}
	return content[0].Text
}

// paritySetup is a gateway in front of the controlled upstream, with the
// policies of TestGatewayControls, an audit log and approvals.
type paritySetup struct {
	g         *Gateway
	url       string
	audit     *store.AuditMemory
	approvals *approval.Service
}

func newParitySetup(t *testing.T) *paritySetup {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.cedar"), []byte(testPolicies), 0o600); err != nil {
		t.Fatal(err)
	}
	eng, err := policy.NewEngine(&policy.Options{Paths: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	st := store.NewAuditMemory()
	alog, err := audit.New(st, &audit.Options{KeyPath: filepath.Join(dir, "audit.key")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alog.Close() })
	var g *Gateway
	approvals := approval.New(store.NewApprovalsMemory(), &approval.Options{
		BaseURL:    "http://gateway.test/approvals",
		OnDecision: func(a *approval.Approval) { g.ApprovalDecided(a) },
	})
	g, err = New(&config.Config{Upstreams: []config.Upstream{{Name: "up", URL: controlledUpstream(t), Prefix: ptr("")}}}, &Options{
		Principal: func(ctx context.Context) string { s, _ := ctx.Value(userKey{}).(string); return s },
		Policy:    eng, Audit: alog, Approvals: approvals,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	g.WaitStartup(context.Background())
	return &paritySetup{g: g, url: userHeaderGateway(t, g), audit: st, approvals: approvals}
}

// auditSince returns the records after the first n, as comparable lines
// (the session id left out: a modern request has none).
func auditSince(t *testing.T, st *store.AuditMemory, n int) []string {
	t.Helper()
	var out []string
	i := 0
	for r, err := range st.ReadAudit(context.Background(), 1) {
		if err != nil {
			t.Fatal(err)
		}
		if i++; i <= n {
			continue
		}
		out = append(out, fmt.Sprintf("user=%s action=%s upstream=%s target=%s decision=%s outcome=%s phase=%s policies=%v",
			r.User, r.Action, r.Upstream, r.Target, r.Decision, r.Outcome, r.Phase, r.Policies))
	}
	return out
}

func auditCount(t *testing.T, st *store.AuditMemory) int {
	return len(auditSince(t, st, 0))
}

func TestModernDiscoverAndLists(t *testing.T) {
	ps := newParitySetup(t)
	d := modernPost(t, ps.url, "bob", mcp.MethodServerDiscover, nil)
	if d.err != nil {
		t.Fatalf("discover: %v", d.err)
	}
	var caps mcp.ServerCapabilities
	if err := json.Unmarshal(d.result["capabilities"], &caps); err != nil || caps.Tools == nil || caps.Tasks != nil {
		t.Errorf("discover capabilities %s: %v", d.result["capabilities"], err)
	}
	if !strings.Contains(string(d.result["supportedVersions"]), mcp.Version20260728) {
		t.Errorf("supportedVersions %s", d.result["supportedVersions"])
	}
	l := modernPost(t, ps.url, "bob", mcp.MethodToolsList, nil)
	if l.err != nil {
		t.Fatalf("tools/list: %v", l.err)
	}
	if string(l.result["cacheScope"]) != `"private"` || string(l.result["ttlMs"]) != "0" || string(l.result["resultType"]) != `"complete"` {
		t.Errorf("tools/list hints: cacheScope %s ttlMs %s resultType %s", l.result["cacheScope"], l.result["ttlMs"], l.result["resultType"])
	}
	var tools []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(l.result["tools"], &tools); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range tools {
		names = append(names, tl.Name)
	}
	if slices.Contains(names, "up-only") || !slices.Contains(names, "echo") {
		t.Errorf("modern bob sees %v", names)
	}
	// Resources and prompts go through the same stage.
	if r := modernPost(t, ps.url, "bob", mcp.MethodResourcesRead, map[string]any{"uri": "test://up/r"}); r.err != nil || string(r.result["cacheScope"]) != `"private"` {
		t.Errorf("resources/read: %v %v", r.err, r.result)
	}
	if r := modernPost(t, ps.url, "bob", mcp.MethodPromptsGet, map[string]any{"name": "greet"}); r.err != nil {
		t.Errorf("prompts/get: %v", r.err)
	}
	// Methods 2026-07-28 removed are refused by the library.
	for _, m := range []string{mcp.MethodPing, mcp.MethodLoggingSetLevel, mcp.MethodResourcesSubscribe, mcp.MethodTasksList} {
		if r := modernPost(t, ps.url, "bob", m, nil); r.err == nil || r.err.Code != jsonrpc.CodeMethodNotFound || r.status != http.StatusNotFound {
			t.Errorf("%s: status %d error %v, want -32601 and 404", m, r.status, r.err)
		}
	}
	// Task methods need the Tasks extension (-32021); tasks/update is
	// not served yet. Refused and recorded.
	withExt := map[string]any{mcp.MetaClientCapabilities: jsontext.Value(`{"extensions":{"` + mcp.ExtensionTasks + `":{}}}`)}
	for _, m := range []string{mcp.MethodTasksGet, mcp.MethodTasksUpdate, mcp.MethodTasksCancel} {
		if r := modernPost(t, ps.url, "bob", m, map[string]any{"taskId": "t1"}); r.err == nil || r.err.Code != mcp.CodeMissingRequiredClientCapability {
			t.Errorf("%s without the extension: %v", m, r.err)
		}
		if len(records(t, ps.audit, m)) == 0 {
			t.Errorf("%s refused without a record", m)
		}
	}
	if r := modernPost(t, ps.url, "bob", mcp.MethodTasksUpdate, map[string]any{"taskId": "t1", "_meta": withExt}); r.err == nil || r.err.Code != jsonrpc.CodeInvalidParams {
		t.Errorf("tasks/update of an unknown task: %v", r.err)
	}
	// The gateway keeps no session for modern requests.
	for r, err := range ps.audit.ReadAudit(context.Background(), 1) {
		if err == nil && r.Action == mcp.MethodToolsList && r.Session != "" {
			t.Errorf("tools/list record with session %q", r.Session)
		}
	}
}

// TestGovernanceParity runs the same scenarios from a legacy client
// (session) and a modern client (raw 2026-07-28 POSTs): the same answers
// and the same audit records (action, upstream, target, decision,
// outcome, phase, policies).
func TestGovernanceParity(t *testing.T) {
	ps := newParitySetup(t)
	ctx := context.Background()
	legacy := map[string]*mcp.ClientSession{"alice": connectAs(t, ps.url, "alice"), "bob": connectAs(t, ps.url, "bob")}

	// A call as each generation makes it: the error code, or the text.
	type outcome struct {
		code int64
		text string
	}
	legacyCall := func(user, tool string, args string) outcome {
		res, err := legacy[user].CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: jsontext.Value(args)})
		if err != nil {
			return outcome{code: jsonrpc.ErrorCode(err)}
		}
		return outcome{text: res.Content[0].(*mcp.TextContent).Text}
	}
	modernCall := func(user, tool string, args string) outcome {
		r := modernPost(t, ps.url, user, mcp.MethodToolsCall, map[string]any{"name": tool, "arguments": jsontext.Value(args)})
		if r.err != nil {
			return outcome{code: r.err.Code}
		}
		return outcome{text: textOf(t, r)}
	}
	for _, tc := range []struct {
		name, user, tool, args string
		want                   outcome
	}{
		{"forbidden tool", "bob", "up-only", `{}`, outcome{code: CodePolicyDenied}},
		{"arguments allowed", "bob", "echo", `{"path":"/srv/docs/a.txt"}`, outcome{text: `{"path":"/srv/docs/a.txt"}`}},
		{"arguments denied", "bob", "echo", `{"path":"/etc/passwd"}`, outcome{code: CodePolicyDenied}},
		{"path traversal denied", "bob", "echo", `{"path":"/srv/docs/../../etc/passwd"}`, outcome{code: CodePolicyDenied}},
		{"unknown tool", "bob", "nope", `{}`, outcome{code: jsonrpc.CodeInvalidParams}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := auditCount(t, ps.audit)
			if got := legacyCall(tc.user, tc.tool, tc.args); got != tc.want {
				t.Errorf("legacy: %+v, want %+v", got, tc.want)
			}
			legacyRecs := auditSince(t, ps.audit, n)
			n = auditCount(t, ps.audit)
			if got := modernCall(tc.user, tc.tool, tc.args); got != tc.want {
				t.Errorf("modern: %+v, want %+v", got, tc.want)
			}
			modernRecs := auditSince(t, ps.audit, n)
			if len(legacyRecs) == 0 || !slices.Equal(legacyRecs, modernRecs) {
				t.Errorf("audit records differ:\nlegacy:\n%s\nmodern:\n%s", strings.Join(legacyRecs, "\n"), strings.Join(modernRecs, "\n"))
			}
		})
	}

	// Approval: legacy gets -32042 with a URL, modern an input_required
	// result whose input request is the same URL-mode elicitation; once
	// approved, the retry goes through, once.
	t.Run("approval", func(t *testing.T) {
		n := auditCount(t, ps.audit)
		_, err := legacy["alice"].CallTool(ctx, &mcp.CallToolParams{Name: "whoami", Arguments: jsontext.Value(`{"x":1}`)})
		var we *jsonrpc.Error
		if !errors.As(err, &we) || we.Code != mcp.CodeURLElicitationRequired {
			t.Fatalf("legacy before approval: %v", err)
		}
		var data mcp.URLElicitationRequiredErrorData
		if err := json.Unmarshal(we.Data, &data); err != nil || len(data.Elicitations) != 1 {
			t.Fatalf("elicitation data %s: %v", we.Data, err)
		}
		if err := ps.approvals.Decide(ctx, data.Elicitations[0].ElicitationID, "carol", true, "fine"); err != nil {
			t.Fatal(err)
		}
		if got := legacyCall("alice", "whoami", `{"x":1}`); got.text != "up" {
			t.Errorf("legacy approved call: %+v", got)
		}
		legacyRecs := auditSince(t, ps.audit, n)

		n = auditCount(t, ps.audit)
		params := map[string]any{"name": "whoami", "arguments": jsontext.Value(`{"x":1}`)}
		r := modernPost(t, ps.url, "alice", mcp.MethodToolsCall, params)
		if r.err != nil || string(r.result["resultType"]) != `"input_required"` {
			t.Fatalf("modern before approval: %v %v", r.err, r.result)
		}
		var reqs map[string]struct {
			Method string           `json:"method"`
			Params mcp.ElicitParams `json:"params"`
		}
		if err := json.Unmarshal(r.result["inputRequests"], &reqs); err != nil || len(reqs) != 1 {
			t.Fatalf("inputRequests %s: %v", r.result["inputRequests"], err)
		}
		var e mcp.ElicitParams
		for _, ir := range reqs {
			if ir.Method != mcp.MethodElicitationCreate {
				t.Errorf("input request method %q", ir.Method)
			}
			e = ir.Params
		}
		if e.Mode != mcp.ElicitationModeURL || !strings.HasPrefix(e.URL, "http://gateway.test/approvals/") {
			t.Fatalf("input request %+v", e)
		}
		var state string
		if err := json.Unmarshal(r.result["requestState"], &state); err != nil || state == "" {
			t.Fatalf("requestState %s", r.result["requestState"])
		}
		// A retry before the decision is asked again.
		retry := map[string]any{"name": "whoami", "arguments": jsontext.Value(`{"x":1}`),
			"inputResponses": map[string]any{approvalInputKey: map[string]string{"action": "accept"}}, "requestState": state}
		if r := modernPost(t, ps.url, "alice", mcp.MethodToolsCall, retry); r.err != nil || string(r.result["resultType"]) != `"input_required"` {
			t.Errorf("retry before approval: %v %v", r.err, r.result)
		}
		if err := ps.approvals.Decide(ctx, e.ElicitationID, "carol", true, "fine"); err != nil {
			t.Fatal(err)
		}
		retry = map[string]any{"name": "whoami", "arguments": jsontext.Value(`{"x":1}`),
			"inputResponses": map[string]any{approvalInputKey: map[string]string{"action": "accept"}}, "requestState": state}
		r = modernPost(t, ps.url, "alice", mcp.MethodToolsCall, retry)
		if r.err != nil || string(r.result["resultType"]) != `"complete"` || textOf(t, r) != "up" {
			t.Fatalf("modern approved retry: %v %v", r.err, r.result)
		}
		// Consumed: a replay needs a new approval.
		if r := modernPost(t, ps.url, "alice", mcp.MethodToolsCall, retry); string(r.result["resultType"]) != `"input_required"` {
			t.Errorf("replayed approval: %v %v", r.err, r.result)
		}
		modernRecs := auditSince(t, ps.audit, n)
		// The modern run has one more round before the decision (the
		// early retry) and one replay after: drop them and compare.
		if len(modernRecs) != len(legacyRecs)+2 {
			t.Fatalf("audit records:\nlegacy:\n%s\nmodern:\n%s", strings.Join(legacyRecs, "\n"), strings.Join(modernRecs, "\n"))
		}
		trimmed := append(slices.Clone(modernRecs[:1]), modernRecs[2:len(modernRecs)-1]...)
		if !slices.Equal(legacyRecs, trimmed) {
			t.Errorf("audit records differ:\nlegacy:\n%s\nmodern:\n%s", strings.Join(legacyRecs, "\n"), strings.Join(modernRecs, "\n"))
		}
	})

	// Lists: the same items hidden, the same list record.
	t.Run("list", func(t *testing.T) {
		n := auditCount(t, ps.audit)
		for _, err := range legacy["bob"].Tools(ctx) {
			if err != nil {
				t.Fatal(err)
			}
		}
		legacyRecs := auditSince(t, ps.audit, n)
		n = auditCount(t, ps.audit)
		if r := modernPost(t, ps.url, "bob", mcp.MethodToolsList, nil); r.err != nil {
			t.Fatal(r.err)
		}
		modernRecs := auditSince(t, ps.audit, n)
		if len(legacyRecs) == 0 || !slices.Equal(legacyRecs, modernRecs) {
			t.Errorf("audit records differ:\nlegacy:\n%s\nmodern:\n%s", strings.Join(legacyRecs, "\n"), strings.Join(modernRecs, "\n"))
		}
	})
}

// relayedRecords returns the records of requests relayed from upstreams
// (sampling, elicitation) after the first n.
func relayedRecords(t *testing.T, st *store.AuditMemory, n int) []string {
	var out []string
	for _, r := range auditSince(t, st, n) {
		if strings.Contains(r, "action="+mcp.MethodSamplingCreateMessage) || strings.Contains(r, "action="+mcp.MethodElicitationCreate) {
			out = append(out, r)
		}
	}
	return out
}

// TestModernInputFromLegacyUpstream: a legacy upstream's sampling and
// elicitation during a modern client's call reach the client as MRTR
// input requests, pass admission as for a legacy client, and the
// answers of the retries reach the upstream.
func TestModernInputFromLegacyUpstream(t *testing.T) {
	ps := newParitySetup(t)
	ctx := context.Background()

	// The legacy run, for the records.
	c := mcp.NewClient(&mcp.Implementation{Name: "legacy", Version: "1"}, &mcp.ClientOptions{
		CreateMessageHandler: func(ctx context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Role: mcp.RoleAssistant, Model: "m", Content: []mcp.Content{&mcp.TextContent{Text: "a"}}}, nil
		},
		ElicitationHandler: func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"n": "x"}}, nil
		},
	})
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: ps.url, HTTPClient: &http.Client{Transport: userTransport{"bob"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	n := auditCount(t, ps.audit)
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "ask"})
	if err != nil || res.Content[0].(*mcp.TextContent).Text != "up:a:x" {
		t.Fatalf("legacy ask: %v %+v", err, res)
	}
	legacyRecs := relayedRecords(t, ps.audit, n)

	// The modern run.
	n = auditCount(t, ps.audit)
	r := modernPost(t, ps.url, "bob", mcp.MethodToolsCall, map[string]any{"name": "ask"})
	answers := map[string]jsontext.Value{
		mcp.MethodSamplingCreateMessage: jsontext.Value(`{"role":"assistant","model":"m","content":{"type":"text","text":"a"}}`),
		mcp.MethodElicitationCreate:     jsontext.Value(`{"action":"accept","content":{"n":"x"}}`),
	}
	var asked, states []string
	for round := 0; string(r.result["resultType"]) == `"input_required"`; round++ {
		if round > 3 {
			t.Fatal("too many rounds")
		}
		var reqs map[string]struct {
			Method string `json:"method"`
		}
		if err := json.Unmarshal(r.result["inputRequests"], &reqs); err != nil || len(reqs) != 1 {
			t.Fatalf("inputRequests %s: %v", r.result["inputRequests"], err)
		}
		var state string
		if err := json.Unmarshal(r.result["requestState"], &state); err != nil {
			t.Fatal(err)
		}
		if slices.Contains(states, state) {
			t.Errorf("round %d: the state of an earlier round again", round)
		}
		states = append(states, state)
		responses := map[string]jsontext.Value{}
		for k, ir := range reqs {
			asked = append(asked, ir.Method)
			responses[k] = answers[ir.Method]
		}
		// Another user cannot use the state.
		if o := modernPost(t, ps.url, "alice", mcp.MethodToolsCall, map[string]any{"name": "ask", "inputResponses": responses, "requestState": state}); o.err == nil || o.err.Code != jsonrpc.CodeInvalidParams {
			t.Errorf("alice with bob's state: %v %v", o.err, o.result)
		}
		r = modernPost(t, ps.url, "bob", mcp.MethodToolsCall, map[string]any{"name": "ask", "inputResponses": responses, "requestState": state})
	}
	if r.err != nil || textOf(t, r) != "up:a:x" {
		t.Fatalf("modern ask: %v %v", r.err, r.result)
	}
	// A used state is refused.
	if o := modernPost(t, ps.url, "bob", mcp.MethodToolsCall, map[string]any{"name": "ask", "inputResponses": map[string]any{}, "requestState": states[0]}); o.err == nil || o.err.Code != jsonrpc.CodeInvalidParams {
		t.Errorf("a used state: %v %v", o.err, o.result)
	}
	if !slices.Equal(asked, []string{mcp.MethodSamplingCreateMessage, mcp.MethodElicitationCreate}) {
		t.Errorf("asked %v", asked)
	}
	if modernRecs := relayedRecords(t, ps.audit, n); len(legacyRecs) != 4 || !slices.Equal(legacyRecs, modernRecs) {
		t.Errorf("relayed request records differ:\nlegacy:\n%s\nmodern:\n%s", strings.Join(legacyRecs, "\n"), strings.Join(modernRecs, "\n"))
	}
}

// TestModernParkedCallExpires: a call parked past its time is ended (its
// upstream request fails) and its state refused.
func TestModernParkedCallExpires(t *testing.T) {
	ps := newParitySetup(t)
	ps.g.parking.ttl = 10 * time.Millisecond
	r := modernPost(t, ps.url, "bob", mcp.MethodToolsCall, map[string]any{"name": "ask"})
	if string(r.result["resultType"]) != `"input_required"` {
		t.Fatalf("ask: %v %v", r.err, r.result)
	}
	var state string
	if err := json.Unmarshal(r.result["requestState"], &state); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		ps.g.parking.mu.Lock()
		left := len(ps.g.parking.byID)
		ps.g.parking.mu.Unlock()
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the parked call did not expire")
		}
	}
	o := modernPost(t, ps.url, "bob", mcp.MethodToolsCall, map[string]any{"name": "ask",
		"inputResponses": map[string]any{"sampling/createMessage#1": map[string]any{}}, "requestState": state})
	if o.err == nil || o.err.Code != jsonrpc.CodeInvalidParams {
		t.Errorf("expired state: %v %v", o.err, o.result)
	}
}

// TestModernTasks: a modern client that declares the Tasks extension gets
// a gateway task for a task-capable tool, reads its outcome with
// tasks/get; another user cannot read it, from either generation.
func TestModernTasks(t *testing.T) {
	up := config.Upstream{Name: "cov", URL: coverageUpstream(t)}
	_, url, st := governedGatewayG(t, up, `@id("all") permit(principal, action, resource);`)
	withExt := map[string]any{mcp.MetaClientCapabilities: jsontext.Value(`{"extensions":{"` + mcp.ExtensionTasks + `":{}}}`)}

	// Discover announces the extension.
	d := modernPost(t, url, "alice", mcp.MethodServerDiscover, nil)
	if !strings.Contains(string(d.result["capabilities"]), mcp.ExtensionTasks) {
		t.Errorf("discover capabilities %s: no tasks extension", d.result["capabilities"])
	}
	// Without the extension the call completes at once.
	if r := modernPost(t, url, "alice", mcp.MethodToolsCall, map[string]any{"name": "cov_echo"}); r.err != nil || string(r.result["resultType"]) != `"complete"` {
		t.Fatalf("call without the extension: %v %v", r.err, r.result)
	}
	r := modernPost(t, url, "alice", mcp.MethodToolsCall, map[string]any{"name": "cov_echo", "_meta": withExt})
	if r.err != nil || string(r.result["resultType"]) != `"task"` {
		t.Fatalf("call with the extension: %v %v", r.err, r.result)
	}
	var id string
	if err := json.Unmarshal(r.result["taskId"], &id); err != nil || id == "" {
		t.Fatalf("taskId %s", r.result["taskId"])
	}
	if _, ok := r.result["ttlMs"]; !ok {
		t.Errorf("created task without ttlMs: %v", r.result)
	}
	if len(records(t, st, "task.created")) != 1 {
		t.Errorf("task.created records: %d", len(records(t, st, "task.created")))
	}
	var status string
	for deadline := time.Now().Add(30 * time.Second); status != "completed"; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("task still %q", status)
		}
		g := modernPost(t, url, "alice", mcp.MethodTasksGet, map[string]any{"taskId": id, "_meta": withExt})
		if g.err != nil {
			t.Fatalf("tasks/get: %v", g.err)
		}
		if err := json.Unmarshal(g.result["status"], &status); err != nil {
			t.Fatal(err)
		}
		if status == "completed" && !strings.Contains(string(g.result["result"]), `"echo"`) {
			t.Errorf("completed task without its result: %v", g.result)
		}
	}
	// Cancelling an ended task is acknowledged.
	if c := modernPost(t, url, "alice", mcp.MethodTasksCancel, map[string]any{"taskId": id, "_meta": withExt}); c.err != nil || string(c.result["resultType"]) != `"complete"` {
		t.Errorf("tasks/cancel of an ended task: %v %v", c.err, c.result)
	}
	// Another user: unknown, as for a legacy client.
	o := modernPost(t, url, "bob", mcp.MethodTasksGet, map[string]any{"taskId": id, "_meta": withExt})
	_, lerr := connectAs(t, url, "bob").CallRaw(context.Background(), mcp.MethodTasksGet, jsontext.Value(`{"taskId":"`+id+`"}`))
	if o.err == nil || o.err.Code != jsonrpc.ErrorCode(lerr) || lerr == nil {
		t.Errorf("bob's tasks/get of alice's task: modern %v, legacy %v", o.err, lerr)
	}
	if strings.Contains(fmt.Sprint(o.result), "echo") {
		t.Errorf("bob read alice's result: %v", o.result)
	}
}

// sseMessage is one JSON-RPC message of an SSE stream.
type sseMessage struct {
	Method string         `json:"method"`
	Params jsontext.Value `json:"params"`
}

// modernListen opens a subscriptions/listen stream as user and returns
// its messages.
func modernListen(t *testing.T, url, user string, filter string) <-chan sseMessage {
	t.Helper()
	return modernListenCaps(t, url, user, filter, `{}`)
}

// modernListenCaps is modernListen with the client capabilities caps.
func modernListenCaps(t *testing.T, url, user, filter, caps string) <-chan sseMessage {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":"sub-` + user + `","method":"subscriptions/listen","params":{"notifications":` + filter +
		`,"_meta":{"` + mcp.MetaProtocolVersion + `":"` + mcp.Version20260728 + `","` + mcp.MetaClientCapabilities + `":` + caps + `}}}`
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", mcp.Version20260728)
	req.Header.Set("Mcp-Method", mcp.MethodSubscriptionsListen)
	req.Header.Set("X-Test-User", user)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("listen: %d %s", resp.StatusCode, b)
	}
	ch := make(chan sseMessage, 16)
	go func() {
		defer resp.Body.Close()
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data:")
			if !ok {
				continue
			}
			var m sseMessage
			if json.Unmarshal([]byte(strings.TrimSpace(data)), &m) == nil && m.Method != "" {
				ch <- m
			}
		}
	}()
	return ch
}

func next(t *testing.T, ch <-chan sseMessage) sseMessage {
	t.Helper()
	select {
	case m, ok := <-ch:
		if !ok {
			t.Fatal("the stream ended")
		}
		return m
	case <-time.After(30 * time.Second):
		t.Fatal("no message on the stream")
	}
	return sseMessage{}
}

// TestModernListen: subscriptions/listen hears of the principal's own
// upstream notifications, and of a resource only if subscribing to it
// was admitted.
func TestModernListen(t *testing.T) {
	up := mcp.NewServer(&mcp.Implementation{Name: "up", Version: "1"}, &mcp.ServerOptions{
		SubscribeHandler:   func(context.Context, *mcp.ServerSession, *mcp.SubscribeParams) error { return nil },
		UnsubscribeHandler: func(context.Context, *mcp.ServerSession, *mcp.UnsubscribeParams) error { return nil },
	})
	up.AddTool(&mcp.Tool{Name: "t1", InputSchema: jsontext.Value(`{"type":"object"}`)}, textTool("t1"))
	up.AddResource(&mcp.Resource{URI: "test://up/r", Name: "r"}, func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: "r"}}}, nil
	})
	upURL, _ := httpUpstreamServer(t, up)
	_, url, st := governedGatewayG(t, config.Upstream{Name: "up", URL: upURL, Prefix: ptr("")},
		`@id("all") permit(principal, action, resource);
@id("no-sub") forbid(principal == User::"bob", action == Action::"resources/subscribe", resource);`)
	filter := `{"toolsListChanged":true,"resourceSubscriptions":["test://up/r"]}`

	alice := modernListen(t, url, "alice", filter)
	ack := next(t, alice)
	if ack.Method != mcp.NotificationSubscriptionsAcknowledged || !strings.Contains(string(ack.Params), "test://up/r") || !strings.Contains(string(ack.Params), `"sub-alice"`) {
		t.Fatalf("alice's ack: %s %s", ack.Method, ack.Params)
	}
	// bob has an upstream session, but may not subscribe.
	if r := modernPost(t, url, "bob", mcp.MethodToolsCall, map[string]any{"name": "t1"}); r.err != nil {
		t.Fatal(r.err)
	}
	bob := modernListen(t, url, "bob", filter)
	ack = next(t, bob)
	if ack.Method != mcp.NotificationSubscriptionsAcknowledged || strings.Contains(string(ack.Params), "test://up/r") {
		t.Fatalf("bob's ack: %s %s", ack.Method, ack.Params)
	}
	if recs := records(t, st, mcp.MethodResourcesSubscribe); !slices.ContainsFunc(recs, func(r *store.AuditRecord) bool { return r.User == "bob" && r.Decision == audit.DecisionDeny }) ||
		!slices.ContainsFunc(recs, func(r *store.AuditRecord) bool { return r.User == "alice" && r.Decision == audit.DecisionAllow }) {
		t.Errorf("resources/subscribe records: %d", len(recs))
	}

	if err := up.ResourceUpdated(context.Background(), &mcp.ResourceUpdatedNotificationParams{URI: "test://up/r"}); err != nil {
		t.Fatal(err)
	}
	if m := next(t, alice); m.Method != mcp.NotificationResourcesUpdated || !strings.Contains(string(m.Params), `"sub-alice"`) {
		t.Errorf("alice: %s %s", m.Method, m.Params)
	}
	up.AddTool(&mcp.Tool{Name: "t2", InputSchema: jsontext.Value(`{"type":"object"}`)}, textTool("t2"))
	// bob's first notification is the list change: he never heard of
	// the resource.
	if m := next(t, bob); m.Method != mcp.NotificationToolsListChanged {
		t.Errorf("bob: %s %s", m.Method, m.Params)
	}
	if m := next(t, alice); m.Method != mcp.NotificationToolsListChanged {
		t.Errorf("alice: %s %s", m.Method, m.Params)
	}
}

// TestModernParamHeaders: the Mcp-Param-* headers of a modern tools/call
// are checked against the x-mcp-header annotations of the upstream's
// tool, as listed in the caller's catalogue.
func TestModernParamHeaders(t *testing.T) {
	up := mcp.NewServer(&mcp.Implementation{Name: "up", Version: "1"}, nil)
	up.AddTool(&mcp.Tool{Name: "geo", InputSchema: jsontext.Value(`{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"}}}`)}, textTool("geo"))
	upURL, _ := httpUpstreamServer(t, up)
	_, url, _ := governedGatewayG(t, config.Upstream{Name: "up", URL: upURL, Prefix: ptr("")}, `@id("all") permit(principal, action, resource);`)
	call := func(header string) *modernReply {
		p := map[string]any{"name": "geo", "arguments": map[string]string{"region": "eu"}}
		if header != "" {
			p[extraHeaders] = map[string]string{"Mcp-Param-Region": header}
		}
		return modernPost(t, url, "alice", mcp.MethodToolsCall, p)
	}
	if r := call("eu"); r.err != nil || textOf(t, r) != "geo" {
		t.Errorf("matching header: %v %v", r.err, r.result)
	}
	for _, h := range []string{"", "us"} {
		if r := call(h); r.err == nil || r.err.Code != mcp.CodeHeaderMismatch || r.status != http.StatusBadRequest {
			t.Errorf("header %q: status %d %v", h, r.status, r.err)
		}
	}
}

// TestModernRateLimitShared: a user's rate limit is one bucket whichever
// generation the calls come in.
func TestModernRateLimitShared(t *testing.T) {
	lc, err := ratelimit.ParseConfig([]byte("limits:\n  - match: {tool: \"up/whoami\"}\n    per: [user]\n    rate: 2/min\n"))
	if err != nil {
		t.Fatal(err)
	}
	lim, err := ratelimit.NewLimiter(lc, nil)
	if err != nil {
		t.Fatal(err)
	}
	url, _ := httpUpstream(t, "up")
	g, err := New(&config.Config{Upstreams: []config.Upstream{{Name: "up", URL: url, Prefix: ptr("")}}}, &Options{
		Principal: func(ctx context.Context) string { s, _ := ctx.Value(userKey{}).(string); return s },
		Limiter:   lim,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	gw := userHeaderGateway(t, g)
	callText(t, connectAs(t, gw, "alice"), "whoami")
	if r := modernPost(t, gw, "alice", mcp.MethodToolsCall, map[string]any{"name": "whoami"}); r.err != nil {
		t.Fatalf("second call (modern): %v", r.err)
	}
	if r := modernPost(t, gw, "alice", mcp.MethodToolsCall, map[string]any{"name": "whoami"}); r.err == nil || r.err.Code != CodeRateLimited {
		t.Errorf("third call (modern): %v, want rate limited", r.err)
	}
}

// TestModernRelayedRequestDenied: policy over requests upstreams send
// toward clients applies to modern clients as to legacy ones: a denied
// sampling never reaches the client, and the same denial is recorded.
func TestModernRelayedRequestDenied(t *testing.T) {
	url, st := governedGateway(t, config.Upstream{Name: "up", URL: controlledUpstream(t), Prefix: ptr("")},
		`@id("all") permit(principal, action, resource);
@id("no-sampling") forbid(principal, action == Action::"sampling/createMessage", resource);`)
	ctx := context.Background()
	c := mcp.NewClient(&mcp.Implementation{Name: "legacy", Version: "1"}, &mcp.ClientOptions{
		CreateMessageHandler: func(ctx context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			t.Error("the legacy client was asked for sampling")
			return nil, errors.New("no")
		},
	})
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: &http.Client{Transport: userTransport{"bob"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	n := auditCount(t, st)
	_, lerr := cs.CallTool(ctx, &mcp.CallToolParams{Name: "ask"})
	legacyRecs := relayedRecords(t, st, n)

	n = auditCount(t, st)
	r := modernPost(t, url, "bob", mcp.MethodToolsCall, map[string]any{"name": "ask"})
	if string(r.result["resultType"]) == `"input_required"` {
		t.Errorf("the modern client was asked: %v", r.result)
	}
	modernRecs := relayedRecords(t, st, n)
	if lerr == nil || r.err == nil || jsonrpc.ErrorCode(lerr) != r.err.Code {
		t.Errorf("legacy %v, modern %v: want the same error", lerr, r.err)
	}
	if len(legacyRecs) == 0 || !slices.Equal(legacyRecs, modernRecs) || !strings.Contains(strings.Join(modernRecs, "\n"), "decision=deny") {
		t.Errorf("relayed records:\nlegacy:\n%s\nmodern:\n%s", strings.Join(legacyRecs, "\n"), strings.Join(modernRecs, "\n"))
	}
}

// TestModernTaskInput: a legacy upstream task that needs input, owned by
// a modern client: tasks/get shows the request, tasks/update answers it,
// and the task completes; another user cannot answer it.
func TestModernTaskInput(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "asker", Version: "1"}, &mcp.ServerOptions{
		TaskStore: mcp.NewMemoryTaskStore(&mcp.MemoryTaskStoreOptions{PollInterval: 50 * time.Millisecond}),
	})
	s.AddTool(&mcp.Tool{Name: "ask", InputSchema: jsontext.Value(`{"type":"object"}`), Execution: &mcp.ToolExecution{TaskSupport: mcp.TaskSupportOptional}},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			res, err := req.Session.Elicit(ctx, &mcp.ElicitParams{Message: "name?", RequestedSchema: &mcp.ElicitationSchema{
				Type: "object", Properties: map[string]mcp.PrimitiveSchemaDefinition{"name": {Type: "string"}}}})
			if err != nil {
				return nil, err
			}
			name, _ := res.Content["name"].(string)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "hello " + name}}}, nil
		})
	upURL, _ := httpUpstreamServer(t, s)
	_, url, st := governedGatewayG(t, config.Upstream{Name: "a", URL: upURL}, `@id("all") permit(principal, action, resource);`)
	withExt := map[string]any{mcp.MetaClientCapabilities: jsontext.Value(`{"elicitation":{"form":{}},"extensions":{"` + mcp.ExtensionTasks + `":{}}}`)}

	r := modernPost(t, url, "alice", mcp.MethodToolsCall, map[string]any{"name": "a_ask", "_meta": withExt})
	if r.err != nil || string(r.result["resultType"]) != `"task"` {
		t.Fatalf("call: %v %v", r.err, r.result)
	}
	var id string
	if err := json.Unmarshal(r.result["taskId"], &id); err != nil {
		t.Fatal(err)
	}
	get := func() (string, map[string]jsontext.Value) {
		g := modernPost(t, url, "alice", mcp.MethodTasksGet, map[string]any{"taskId": id, "_meta": withExt})
		if g.err != nil {
			t.Fatalf("tasks/get: %v", g.err)
		}
		var status string
		if err := json.Unmarshal(g.result["status"], &status); err != nil {
			t.Fatal(err)
		}
		return status, g.result
	}
	var key string
	for deadline := time.Now().Add(30 * time.Second); key == ""; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no input request shown")
		}
		status, res := get()
		if status != "input_required" || res["inputRequests"] == nil {
			continue
		}
		var reqs map[string]struct {
			Method string `json:"method"`
		}
		if err := json.Unmarshal(res["inputRequests"], &reqs); err != nil {
			t.Fatal(err)
		}
		for k, ir := range reqs {
			if ir.Method != mcp.MethodElicitationCreate {
				t.Errorf("input request %s", ir.Method)
			}
			key = k
		}
	}
	answer := map[string]any{key: map[string]any{"action": "accept", "content": map[string]string{"name": "Ada"}}}
	if o := modernPost(t, url, "bob", mcp.MethodTasksUpdate, map[string]any{"taskId": id, "inputResponses": answer, "_meta": withExt}); o.err == nil || o.err.Code != jsonrpc.CodeInvalidParams {
		t.Errorf("bob's tasks/update: %v", o.err)
	}
	if u := modernPost(t, url, "alice", mcp.MethodTasksUpdate, map[string]any{"taskId": id, "inputResponses": answer, "_meta": withExt}); u.err != nil {
		t.Fatalf("tasks/update: %v", u.err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the task did not complete")
		}
		if status, res := get(); status == "completed" {
			if !strings.Contains(string(res["result"]), "hello Ada") {
				t.Errorf("result %s", res["result"])
			}
			break
		}
	}
	if !slices.ContainsFunc(records(t, st, mcp.MethodElicitationCreate), func(r *store.AuditRecord) bool { return r.Decision == audit.DecisionAllow && r.User == "alice" }) {
		t.Error("no allowed elicitation/create record")
	}
	if !slices.ContainsFunc(records(t, st, mcp.MethodTasksUpdate), func(r *store.AuditRecord) bool { return r.Outcome == audit.OutcomeOK && r.User == "alice" }) {
		t.Error("no tasks/update record")
	}
}

// TestModernClientBothUpstreams: this package's client speaking
// 2026-07-28 (ClientOptions.ProtocolVersion) through the gateway, to a
// 2026-07-28-only upstream and to a legacy one: list, call, and the
// upstream's elicitation (MRTR upstream, a server-to-client request from
// the legacy one) answered by the client's handler through MRTR.
func TestModernClientBothUpstreams(t *testing.T) {
	modernUp := mcp.NewServer(&mcp.Implementation{Name: "modern-up", Version: "1"}, nil)
	modernUp.AddTool(&mcp.Tool{Name: "ask"}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		r, err := req.Session.ElicitInput(ctx, "n", &mcp.ElicitParams{Message: "n?", RequestedSchema: &mcp.ElicitationSchema{
			Properties: map[string]mcp.PrimitiveSchemaDefinition{"n": {Type: "string"}}}})
		if err != nil {
			return nil, err
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "got " + r.Content["n"].(string)}}}, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return modernUp }, nil)
	srv := httptest.NewServer(modernOnly{h})
	t.Cleanup(func() { srv.Close(); h.Close() })
	legacyURL, _ := httpUpstream(t, "legacy")

	_, gw := startGateway(t, &config.Config{Upstreams: []config.Upstream{
		{Name: "modern", URL: srv.URL},
		{Name: "legacy", URL: legacyURL},
	}})
	cs := connect(t, gw, &mcp.ClientOptions{
		ProtocolVersion: mcp.Version20260728,
		ElicitationHandler: func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: mcp.ElicitActionAccept, Content: map[string]any{"n": "zed"}}, nil
		},
		CreateMessageHandler: func(ctx context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Role: mcp.RoleAssistant, Model: "m", Content: []mcp.Content{&mcp.TextContent{Text: "a"}}}, nil
		},
	})
	if v := cs.InitializeResult().ProtocolVersion; v != mcp.Version20260728 {
		t.Fatalf("the session is %s, want 2026-07-28", v)
	}
	checkModernUpstream(t, cs, map[string]string{"modern_ask": "got zed", "legacy_whoami": "legacy", "legacy_ask": "legacy:a:zed"})
}
