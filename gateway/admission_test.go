package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/schematest"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/policy"
	"github.com/mcpgate/mcpgate/store"
)

// schemaMethods returns the method names of the members of one of the
// schema's union types (ClientRequest, ServerNotification, ...).
func schemaMethods(t *testing.T, union string) []string {
	t.Helper()
	type definition struct {
		AnyOf []struct {
			Ref string `json:"$ref"`
		} `json:"anyOf"`
		Properties struct {
			Method struct {
				Const string `json:"const"`
			} `json:"method"`
		} `json:"properties"`
	}
	var schema struct {
		Defs        map[string]definition `json:"$defs"`
		Definitions map[string]definition `json:"definitions"`
	}
	if err := json.Unmarshal(schematest.Schema(), &schema); err != nil {
		t.Fatal(err)
	}
	defs := schema.Defs
	if len(defs) == 0 {
		defs = schema.Definitions
	}
	u, ok := defs[union]
	if !ok || len(u.AnyOf) == 0 {
		t.Fatalf("schema has no union %s", union)
	}
	var out []string
	for _, r := range u.AnyOf {
		name := r.Ref[strings.LastIndex(r.Ref, "/")+1:]
		m := defs[name].Properties.Method.Const
		if m == "" {
			t.Fatalf("%s member %s has no method", union, name)
		}
		out = append(out, m)
	}
	return out
}

// TestMethodTables: every method of the 2025-11-25 schema (which contains
// every method of the earlier revisions) is in the admission stage's
// tables, governed or explicitly local or refused; every governed client
// request is an action the policy model knows.
func TestMethodTables(t *testing.T) {
	tables := []struct {
		union string
		table map[string]*methodSpec
	}{
		{"ClientRequest", clientRequests},
		{"ClientNotification", clientNotifications},
		{"ServerRequest", upstreamRequests},
		{"ServerNotification", upstreamNotifications},
	}
	local := map[string]bool{mcp.MethodInitialize: true, mcp.MethodPing: true, mcp.NotificationInitialized: true, notificationCancelled: true}
	for _, tb := range tables {
		methods := schemaMethods(t, tb.union)
		for _, m := range methods {
			spec := tb.table[m]
			if spec == nil {
				t.Errorf("%s %q is in no method table: it would be refused, but the table must say so", tb.union, m)
				continue
			}
			switch spec.rule {
			case ruleLocal:
				if !local[m] {
					t.Errorf("%s %q is local; only initialize, ping, initialized and cancelled may be", tb.union, m)
				}
			case ruleGovern:
				if tb.union == "ClientRequest" && !slices.Contains(policy.Actions(), m) {
					t.Errorf("governed request %q is not an action of the policy model", m)
				}
				if tb.union == "ClientRequest" && (spec.resolve == nil || spec.forward == nil) {
					t.Errorf("governed request %q lacks resolve or forward", m)
				}
			case ruleRefuse:
				if spec.why == "" {
					t.Errorf("%s %q is refused without a reason", tb.union, m)
				}
			}
			t.Logf("%-20s %-40s %s", tb.union, m, spec.rule)
		}
		for m := range tb.table {
			if !slices.Contains(methods, m) {
				t.Errorf("%s table has %q, which the schema does not have", tb.union, m)
			}
		}
	}
	for _, n := range []string{"notifications/roots/list_changed", "notifications/tasks/status"} {
		if !slices.Contains(policy.Actions(), n) {
			t.Errorf("governed notification %q is not an action of the policy model", n)
		}
	}
}

// coverageUpstream serves one of everything a client can ask for.
func coverageUpstream(t *testing.T) string {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "cov", Version: "1"}, &mcp.ServerOptions{
		CompletionHandler: func(ctx context.Context, req *mcp.CompleteRequest) (*mcp.CompleteResult, error) {
			return &mcp.CompleteResult{Completion: mcp.CompletionResultDetails{Values: []string{"a"}}}, nil
		},
		SubscribeHandler:   func(context.Context, *mcp.ServerSession, *mcp.SubscribeParams) error { return nil },
		UnsubscribeHandler: func(context.Context, *mcp.ServerSession, *mcp.UnsubscribeParams) error { return nil },
	})
	s.AddTool(&mcp.Tool{Name: "echo", InputSchema: jsontext.Value(`{"type":"object"}`), Execution: &mcp.ToolExecution{TaskSupport: mcp.TaskSupportOptional}},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "echo"}}}, nil
		})
	s.AddTool(&mcp.Tool{Name: "ask", InputSchema: jsontext.Value(`{"type":"object"}`)}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var parts []string
		if _, err := req.Session.CreateMessage(ctx, &mcp.CreateMessageParams{
			Messages: []*mcp.SamplingMessage{{Role: mcp.RoleUser, Content: []mcp.Content{&mcp.TextContent{Text: "q"}}}}, MaxTokens: 5,
		}); err != nil {
			parts = append(parts, "sampling:"+err.Error())
		}
		if _, err := req.Session.Elicit(ctx, &mcp.ElicitParams{Message: "n?", RequestedSchema: &mcp.ElicitationSchema{Type: "object"}}); err != nil {
			parts = append(parts, "elicitation:"+err.Error())
		}
		if _, err := req.Session.ListRoots(ctx); err != nil {
			parts = append(parts, "roots:"+err.Error())
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: strings.Join(parts, "|")}}}, nil
	})
	s.AddResource(&mcp.Resource{URI: "test://cov/r", Name: "r"}, func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: "secret"}}}, nil
	})
	s.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: "test://cov/items/{id}", Name: "items"}, func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: "item"}}}, nil
	})
	s.AddPrompt(&mcp.Prompt{Name: "greet"}, func(ctx context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: mcp.RoleUser, Content: &mcp.TextContent{Text: "hi"}}}}, nil
	})
	url, _ := httpUpstreamServer(t, s)
	return url
}

// governedGateway starts a gateway in front of the coverage upstream
// with policy text pol and an audit log in memory.
func governedGateway(t *testing.T, up config.Upstream, pol string) (string, *store.AuditMemory) {
	_, url, st := governedGatewayG(t, up, pol)
	return url, st
}

// governedGatewayG is governedGateway that also returns the gateway.
func governedGatewayG(t *testing.T, up config.Upstream, pol string) (*Gateway, string, *store.AuditMemory) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "p.cedar")
	if err := os.WriteFile(path, []byte(pol), 0o600); err != nil {
		t.Fatal(err)
	}
	eng, err := policy.NewEngine(&policy.Options{Paths: []string{path}})
	if err != nil {
		t.Fatal(err)
	}
	st := store.NewAuditMemory()
	alog, err := audit.New(st, &audit.Options{KeyPath: filepath.Join(dir, "audit.key")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alog.Close() })
	g, err := New(&config.Config{Upstreams: []config.Upstream{up}}, &Options{
		Principal: func(ctx context.Context) string { s, _ := ctx.Value(userKey{}).(string); return s },
		Policy:    eng, Audit: alog,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g, userHeaderGateway(t, g), st
}

// records returns the audit records of action.
func records(t *testing.T, st *store.AuditMemory, action string) []*store.AuditRecord {
	t.Helper()
	var out []*store.AuditRecord
	for r, err := range st.ReadAudit(context.Background(), 1) {
		if err != nil {
			t.Fatal(err)
		}
		if r.Action == action {
			out = append(out, r)
		}
	}
	return out
}

// fullClient connects as user with every client capability declared.
func fullClient(t *testing.T, url, user string) *mcp.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := mcp.NewClient(&mcp.Implementation{Name: user, Version: "1"}, &mcp.ClientOptions{
		CreateMessageHandler: func(ctx context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Role: mcp.RoleAssistant, Model: "m", Content: []mcp.Content{&mcp.TextContent{Text: "a"}}}, nil
		},
		ElicitationHandler: func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "decline"}, nil
		},
	})
	c.AddRoots(&mcp.Root{URI: "file:///etc", Name: "etc"})
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: &http.Client{Transport: userTransport{user}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// covRequests are valid params of every governed client request, against
// the coverage upstream (prefix "cov_").
func covRequests(t *testing.T, cs *mcp.ClientSession) map[string]string {
	// A task to get, fetch and cancel.
	ctx := context.Background()
	res, err := cs.CallRaw(ctx, mcp.MethodToolsCall, jsontext.Value(`{"name":"cov_echo","arguments":{},"task":{"ttl":60000}}`))
	taskID := "none"
	if err == nil {
		var r struct {
			Task struct {
				TaskID string `json:"taskId"`
			} `json:"task"`
		}
		if json.Unmarshal(res, &r) == nil && r.Task.TaskID != "" {
			taskID = r.Task.TaskID
		}
	}
	return map[string]string{
		mcp.MethodToolsList:              `{}`,
		mcp.MethodPromptsList:            `{}`,
		mcp.MethodResourcesList:          `{}`,
		mcp.MethodResourcesTemplatesList: `{}`,
		mcp.MethodTasksList:              `{}`,
		mcp.MethodToolsCall:              `{"name":"cov_echo","arguments":{}}`,
		mcp.MethodPromptsGet:             `{"name":"cov_greet"}`,
		mcp.MethodResourcesRead:          `{"uri":"test://cov/r"}`,
		mcp.MethodResourcesSubscribe:     `{"uri":"test://cov/r"}`,
		mcp.MethodResourcesUnsubscribe:   `{"uri":"test://cov/r"}`,
		mcp.MethodCompletionComplete:     `{"ref":{"type":"ref/prompt","name":"cov_greet"},"argument":{"name":"a","value":""}}`,
		mcp.MethodLoggingSetLevel:        `{"level":"info"}`,
		mcp.MethodTasksGet:               fmt.Sprintf(`{"taskId":%q}`, taskID),
		mcp.MethodTasksResult:            fmt.Sprintf(`{"taskId":%q}`, taskID),
		mcp.MethodTasksCancel:            fmt.Sprintf(`{"taskId":%q}`, taskID),
	}
}

// TestMethodCoverage: for every governed client request, a policy that
// forbids that one action refuses it (lists come back empty), and the
// audit log records the denial; with the action permitted it succeeds and
// the record says allow. Refused methods get -32601 and are recorded.
func TestMethodCoverage(t *testing.T) {
	up := config.Upstream{Name: "cov", URL: coverageUpstream(t), Roots: config.RootsRelay}
	for method, spec := range clientRequests {
		if spec.rule != ruleGovern {
			continue
		}
		t.Run(strings.ReplaceAll(method, "/", "_"), func(t *testing.T) {
			pol := fmt.Sprintf("@id(\"all\") permit(principal, action, resource);\n@id(\"no-it\") forbid(principal, action == Action::%q, resource);\n", method)
			url, st := governedGateway(t, up, pol)
			cs := fullClient(t, url, "alice")
			params := covRequests(t, cs)[method]
			if params == "" {
				t.Fatalf("no params for %s", method)
			}
			res, err := cs.CallRaw(context.Background(), method, jsontext.Value(params))
			if spec.list {
				if err != nil {
					t.Fatalf("%s: %v", method, err)
				}
				if strings.Contains(string(res), `"name"`) || strings.Contains(string(res), `"uri`) || strings.Contains(string(res), `"taskId"`) {
					t.Errorf("%s with the action forbidden listed items: %s", method, res)
				}
			} else if code := jsonrpc.ErrorCode(err); code != CodePolicyDenied {
				t.Errorf("%s with the action forbidden: got %v (%s), want error %d", method, err, res, CodePolicyDenied)
			}
			recs := records(t, st, method)
			denied := slices.ContainsFunc(recs, func(r *store.AuditRecord) bool { return r.Decision == audit.DecisionDeny })
			if !denied && !(spec.list && method == mcp.MethodTasksList) {
				t.Errorf("%s: no audit record of the denial (records: %d)", method, len(recs))
			}
		})
	}
	t.Run("allowed", func(t *testing.T) {
		url, st := governedGateway(t, up, `@id("all") permit(principal, action, resource);`)
		cs := fullClient(t, url, "alice")
		reqs := covRequests(t, cs)
		for _, m := range []string{mcp.MethodTasksGet, mcp.MethodTasksResult, mcp.MethodTasksCancel, mcp.MethodToolsList, mcp.MethodToolsCall, mcp.MethodPromptsList, mcp.MethodPromptsGet, mcp.MethodResourcesList, mcp.MethodResourcesTemplatesList,
			mcp.MethodResourcesRead, mcp.MethodResourcesSubscribe, mcp.MethodResourcesUnsubscribe, mcp.MethodCompletionComplete, mcp.MethodLoggingSetLevel, mcp.MethodTasksList} {
			if _, err := cs.CallRaw(context.Background(), m, jsontext.Value(reqs[m])); err != nil && m != mcp.MethodTasksResult && m != mcp.MethodTasksCancel {
				t.Errorf("%s allowed: %v", m, err)
			}
			if !slices.ContainsFunc(records(t, st, m), func(r *store.AuditRecord) bool { return r.Decision == audit.DecisionAllow }) {
				t.Errorf("%s: no allow record", m)
			}
		}
	})
	t.Run("refused", func(t *testing.T) {
		url, st := governedGateway(t, up, `@id("all") permit(principal, action, resource);`)
		cs := fullClient(t, url, "alice")
		// server/discover is not refused: the library serves it as a
		// 2026-07-28 request (modern_test.go), even on a session.
		for _, m := range []string{"tools/frobnicate", "sampling/createMessage", "roots/list", "tasks/update"} {
			_, err := cs.CallRaw(context.Background(), m, jsontext.Value(`{}`))
			if jsonrpc.ErrorCode(err) != jsonrpc.CodeMethodNotFound {
				t.Errorf("%s: got %v, want method not found", m, err)
			}
			if len(records(t, st, m)) == 0 {
				t.Errorf("%s refused without a record", m)
			}
		}
		// A notification the gateway does not relay is dropped and recorded.
		if err := cs.Notify(context.Background(), mcp.NotificationProgress, jsontext.Value(`{"progressToken":"x","progress":1}`)); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); len(records(t, st, mcp.NotificationProgress)) == 0; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the refused notification was not recorded")
			}
		}
	})
}

// TestUpstreamRequestsGoverned: sampling, elicitation and roots an
// upstream asks for pass policy and the audit log; roots are not relayed
// unless the upstream's roots setting says relay.
func TestUpstreamRequestsGoverned(t *testing.T) {
	for _, tc := range []struct {
		roots, pol string
		want       []string // substrings of the ask tool's report
		wantNot    []string
	}{
		{config.RootsNone, `@id("all") permit(principal, action, resource);`, []string{"roots:"}, []string{"sampling:", "elicitation:"}},
		{config.RootsRelay, `@id("all") permit(principal, action, resource);`, nil, []string{"sampling:", "elicitation:", "roots:"}},
		{config.RootsRelay, "@id(\"all\") permit(principal, action, resource);\n@id(\"no-sampling\") forbid(principal, action == Action::\"sampling/createMessage\", resource);", []string{"sampling:"}, []string{"elicitation:", "roots:"}},
		{config.RootsRelay, "@id(\"all\") permit(principal, action, resource);\n@id(\"no-cr\") forbid(principal, action in Action::\"client-requests\", resource);", []string{"sampling:", "elicitation:", "roots:"}, nil},
	} {
		t.Run(tc.roots+"/"+fmt.Sprint(len(tc.want)), func(t *testing.T) {
			up := config.Upstream{Name: "cov", URL: coverageUpstream(t), Roots: tc.roots}
			url, st := governedGateway(t, up, tc.pol)
			cs := fullClient(t, url, "alice")
			got := callText(t, cs, "cov_ask")
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("report %q lacks %q", got, w)
				}
			}
			for _, w := range tc.wantNot {
				if strings.Contains(got, w) {
					t.Errorf("report %q has %q", got, w)
				}
			}
			for _, m := range []string{mcp.MethodSamplingCreateMessage, mcp.MethodElicitationCreate, mcp.MethodRootsList} {
				if m == mcp.MethodRootsList && tc.roots == config.RootsNone {
					continue // not declared to the upstream, so never asked
				}
				if len(records(t, st, m)) == 0 {
					t.Errorf("%s: not recorded", m)
				}
			}
		})
	}
}

// TestUpstreamSeesClientCapabilities: an upstream is told only what the
// client declared; a client without sampling gets no sampling request.
func TestUpstreamSeesClientCapabilities(t *testing.T) {
	var mu sync.Mutex
	var seen []mcp.ClientCapabilities
	s := mcp.NewServer(&mcp.Implementation{Name: "caps", Version: "1"}, nil)
	s.AddTool(&mcp.Tool{Name: "caps", InputSchema: jsontext.Value(`{"type":"object"}`)}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		mu.Lock()
		seen = append(seen, req.Session.InitializeParams().Capabilities)
		mu.Unlock()
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ok"}}}, nil
	})
	u, _ := httpUpstreamServer(t, s)
	url, _ := governedGateway(t, config.Upstream{Name: "caps", URL: u}, `@id("all") permit(principal, action, resource);`)
	bare := connectAs(t, url, "bob")
	callText(t, bare, "caps_caps")
	full := fullClient(t, url, "alice")
	callText(t, full, "caps_caps")
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 {
		t.Fatalf("seen %d sessions", len(seen))
	}
	if c := seen[0]; c.Sampling != nil || c.Elicitation != nil || c.Roots != nil || c.Tasks != nil {
		t.Errorf("bare client's upstream session declared %+v", c)
	}
	if c := seen[1]; c.Sampling == nil || c.Sampling.Tools != nil || c.Elicitation == nil || c.Roots != nil {
		t.Errorf("full client's upstream session declared %+v (want sampling without tools, elicitation, no roots: roots setting none)", c)
	}
}

// TestUpstreamRequestOutsideCall: a request an upstream sends outside any
// call goes to a session of the principal its upstream session belongs to,
// never to another principal's; with no such client connected, the
// upstream gets a clear error.
func TestUpstreamRequestOutsideCall(t *testing.T) {
	type ask struct {
		release chan struct{}
		result  chan string
	}
	asks := make(chan ask, 4)
	s := mcp.NewServer(&mcp.Implementation{Name: "later", Version: "1"}, nil)
	s.AddTool(&mcp.Tool{Name: "later", InputSchema: jsontext.Value(`{"type":"object"}`)}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		a := ask{release: make(chan struct{}), result: make(chan string, 1)}
		go func() {
			<-a.release
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := req.Session.ListRoots(ctx)
			if err != nil {
				a.result <- "error: " + err.Error()
				return
			}
			var uris []string
			for _, r := range res.Roots {
				uris = append(uris, r.URI)
			}
			a.result <- strings.Join(uris, ",")
		}()
		asks <- a
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "scheduled"}}}, nil
	})
	u, _ := httpUpstreamServer(t, s)
	g, url, _ := governedGatewayG(t, config.Upstream{Name: "up", URL: u, Roots: config.RootsRelay}, `@id("all") permit(principal, action, resource);`)

	rootsClient := func(user, root string) *mcp.ClientSession {
		c := mcp.NewClient(&mcp.Implementation{Name: user, Version: "1"}, nil)
		c.AddRoots(&mcp.Root{URI: root})
		cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: &http.Client{Transport: userTransport{user}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cs.Close() })
		return cs
	}
	alice := rootsClient("alice", "file:///home/alice")
	bob := rootsClient("bob", "file:///home/bob")
	_ = bob

	callText(t, alice, "up_later")
	a := <-asks
	close(a.release)
	if got := <-a.result; got != "file:///home/alice" {
		t.Errorf("alice's upstream session asked outside a call and got %q, want alice's roots only", got)
	}

	callText(t, alice, "up_later")
	a = <-asks
	alice.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if !slices.ContainsFunc(g.Sessions(), func(s SessionInfo) bool { return s.Principal == "alice" }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("alice's session did not end")
		}
	}
	close(a.release)
	if got := <-a.result; !strings.Contains(got, "no client session of alice") {
		t.Errorf("with alice gone, the upstream got %q, want a clear error (and never bob's roots)", got)
	}
}

// TestEndlessPagination: an upstream that paginates tools/list forever
// (new cursors each time) is left out of the catalogue after the page
// bound, and the other upstream is still served.
func TestEndlessPagination(t *testing.T) {
	var mu sync.Mutex
	pages := 0
	endless := mcp.NewServer(&mcp.Implementation{Name: "endless", Version: "1"}, &mcp.ServerOptions{
		Handler: func(ctx context.Context, ss *mcp.ServerSession, method string, params jsontext.Value) (any, error) {
			if method != mcp.MethodToolsList {
				return nil, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "no")
			}
			mu.Lock()
			pages++
			n := pages
			mu.Unlock()
			return jsontext.Value(fmt.Sprintf(`{"tools":[{"name":"t%d","inputSchema":{"type":"object"}}],"nextCursor":"c%d"}`, n, n)), nil
		},
		CapabilitiesFunc: func(context.Context, *mcp.ServerSession, *mcp.InitializeParams) mcp.ServerCapabilities {
			return mcp.ServerCapabilities{Tools: &mcp.ToolCapabilities{}}
		},
	})
	eu, _ := httpUpstreamServer(t, endless)
	good, _ := httpUpstream(t, "good")
	g, err := New(&config.Config{Upstreams: []config.Upstream{{Name: "endless", URL: eu}, {Name: "good", URL: good}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	cs := connect(t, userHeaderGateway(t, g), nil)
	names := []string{}
	for tool, err := range cs.Tools(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tool.Name)
	}
	if !slices.Contains(names, "good_whoami") || slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "endless_") }) {
		t.Errorf("tools %v: want good's tools and none of endless's", names)
	}
	mu.Lock()
	defer mu.Unlock()
	if pages > 2*maxListPages+2 {
		t.Errorf("the gateway read %d pages of an endless listing (bound %d per listing)", pages, maxListPages)
	}
}

// TestTaskAugmentedSamplingRelayed: an upstream asks a client for sampling
// as a task; the gateway declares task support only for a client that
// declared it, relays the upstream's polling (tasks/get, tasks/result,
// tasks/list) to that client session alone, and records each request.
func TestTaskAugmentedSamplingRelayed(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "tasker", Version: "1"}, nil)
	s.AddTool(&mcp.Tool{Name: "sample_task", InputSchema: jsontext.Value(`{"type":"object"}`)}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		created, err := req.Session.CreateMessageAsTask(ctx, &mcp.CreateMessageParams{
			Messages: []*mcp.SamplingMessage{{Role: mcp.RoleUser, Content: []mcp.Content{&mcp.TextContent{Text: "q"}}}}, MaxTokens: 5,
		}, &mcp.TaskMetadata{})
		if err != nil {
			return nil, err
		}
		listed := 0
		for task, err := range req.Session.ClientTasks(ctx) {
			if err != nil {
				return nil, err
			}
			if task.TaskID == created.Task.TaskID {
				listed++
			}
		}
		var res mcp.CreateMessageResult
		if err := req.Session.WaitClientTask(ctx, created.Task.TaskID, &res); err != nil {
			return nil, err
		}
		_, unknown := req.Session.GetClientTask(ctx, &mcp.GetTaskParams{TaskID: "not-a-task-of-mine"})
		text := res.Content[0].(*mcp.TextContent).Text
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf("%s listed=%d unknown=%v", text, listed, unknown != nil)}}}, nil
	})
	u, _ := httpUpstreamServer(t, s)
	url, st := governedGateway(t, config.Upstream{Name: "t", URL: u}, `@id("all") permit(principal, action, resource);`)
	cs := fullClient(t, url, "alice")
	if got := callText(t, cs, "t_sample_task"); got != "a listed=1 unknown=true" {
		t.Errorf("tool said %q", got)
	}
	for _, m := range []string{mcp.MethodSamplingCreateMessage, mcp.MethodTasksGet, mcp.MethodTasksResult, mcp.MethodTasksList} {
		if !slices.ContainsFunc(records(t, st, m), func(r *store.AuditRecord) bool { return r.Decision == audit.DecisionAllow && r.Upstream == "t" }) {
			t.Errorf("%s of the upstream not recorded", m)
		}
	}
	if !slices.ContainsFunc(records(t, st, mcp.MethodTasksGet), func(r *store.AuditRecord) bool { return r.Decision == audit.DecisionDeny }) {
		t.Error("the upstream's probe of an unknown task was not recorded as refused")
	}
}
