package e2e

import (
	"bufio"
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/gateway"
	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/oauth/oauthclient"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

// oneDoorPolicies hide a resource and a resource template from bob, and
// the tasks/list of every task from carol.
const oneDoorPolicies = `
@id("base")
permit(principal, action, resource);

@id("bob-no-secret")
forbid(principal == User::"bob", action in Action::"resources", resource == Resource::"file:///srv/secret/plan.txt");

@id("bob-no-readme-listed")
forbid(principal == User::"bob", action == Action::"resources/list", resource == Resource::"file:///srv/public/readme.txt");

@id("bob-no-items")
forbid(principal == User::"bob", action == Action::"resources/templates/list", resource == Resource::"file:///srv/items/{id}");

@id("carol-no-task-list")
forbid(principal == User::"carol", action == Action::"tasks/list", resource);
`

// oneDoorUpstream offers resources, a template, subscriptions, a task
// tool and a tool that asks for the client's roots.
func oneDoorUpstream() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "files", Version: "1"}, &mcp.ServerOptions{
		SubscribeHandler:   func(context.Context, *mcp.ServerSession, *mcp.SubscribeParams) error { return nil },
		UnsubscribeHandler: func(context.Context, *mcp.ServerSession, *mcp.UnsubscribeParams) error { return nil },
	})
	text := func(t string) *mcp.CallToolResult {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: t}}}
	}
	read := func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: "contents of " + req.Params.URI}}}, nil
	}
	s.AddResource(&mcp.Resource{URI: "file:///srv/secret/plan.txt", Name: "plan"}, read)
	s.AddResource(&mcp.Resource{URI: "file:///srv/public/readme.txt", Name: "readme"}, read)
	s.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: "file:///srv/items/{id}", Name: "items"}, read)
	s.AddTool(&mcp.Tool{Name: "long_job", Execution: &mcp.ToolExecution{TaskSupport: mcp.TaskSupportOptional}},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		})
	s.AddTool(&mcp.Tool{Name: "roots"}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		caps, _ := json.Marshal(req.Session.InitializeParams().Capabilities)
		res, err := req.Session.ListRoots(ctx)
		if err != nil {
			return text("caps " + string(caps) + " error " + err.Error()), nil
		}
		var uris []string
		for _, r := range res.Roots {
			uris = append(uris, r.URI)
		}
		return text("caps " + string(caps) + " roots " + strings.Join(uris, ",")), nil
	})
	return s
}

// auditRecords reads the gateway's audit log from its database, as the
// command line does (through the store: the records the gateway wrote
// last may still be in its audit segment file, not yet in the table).
func auditRecords(t *testing.T, dataDir string) []map[string]string {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, datadir.Database(dataDir))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var out []map[string]string
	for r, err := range st.ReadAudit(ctx, 1) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, map[string]string{"user": r.User, "action": r.Action, "target": r.Target, "decision": r.Decision, "outcome": r.Outcome})
	}
	return out
}

// hasRecord reports whether a record has every field of want.
func hasRecord(recs []map[string]string, want map[string]string) bool {
	return slices.ContainsFunc(recs, func(r map[string]string) bool {
		for k, v := range want {
			if r[k] != v {
				return false
			}
		}
		return true
	})
}

// TestOneDoor is issue 9's end-to-end check: each hole found from outside
// (a real gateway, its authorization server, SQLite, users signing in on
// the real pages) is refused or contained, and recorded.
func TestOneDoor(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	w := newGovernedWorld(t, oneDoorUpstream(), oneDoorPolicies, nil)
	recv := map[string]*oauthclient.LoopbackReceiver{}
	var redirects []string
	for _, u := range []string{"alice", "bob", "carol"} {
		recv[u] = newReceiver(t, newBrowser(u, u+"-password"))
		redirects = append(redirects, recv[u].RedirectURL())
	}
	w.publicClient(redirects...)
	tr := map[string]http.RoundTripper{}
	bearer := map[string]*bearerRecorder{}
	cs := map[string]*mcp.ClientSession{}
	for _, u := range []string{"alice", "bob", "carol"} {
		bearer[u] = &bearerRecorder{}
		tr[u] = w.userTransportOver(t, recv[u], bearer[u])
		cs[u] = w.connect(ctx, t, tr[u])
	}
	alice, bob, carol := cs["alice"], cs["bob"], cs["carol"]

	t.Run("a resource hidden from a user's list is not served by URI", func(t *testing.T) {
		if _, err := alice.ReadResource(ctx, &mcp.ReadResourceParams{URI: "file:///srv/secret/plan.txt"}); err != nil {
			t.Errorf("alice reads the plan: %v", err)
		}
		list, err := bob.ListResources(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range list.Resources {
			if strings.Contains(r.URI, "secret") || strings.Contains(r.URI, "readme") {
				t.Errorf("bob lists %s", r.URI)
			}
		}
		for _, m := range []string{mcp.MethodResourcesRead, mcp.MethodResourcesSubscribe} {
			// Hidden by a policy on every resource action, and by one on
			// resources/list alone: what bob may not see he may not read.
			for _, uri := range []string{"file:///srv/secret/plan.txt", "file:///srv/public/readme.txt"} {
				_, err := bob.CallRaw(ctx, m, jsontext.Value(`{"uri":"`+uri+`"}`))
				if jsonrpc.ErrorCode(err) != gateway.CodePolicyDenied {
					t.Errorf("bob %s of hidden %s: %v, want a denial", m, uri, err)
				}
			}
		}
		// A URI served through a template hidden from bob.
		tl, err := bob.ListResourceTemplates(ctx, nil)
		if err != nil || len(tl.ResourceTemplates) != 0 {
			t.Errorf("bob lists templates %+v %v", tl, err)
		}
		if _, err := bob.ReadResource(ctx, &mcp.ReadResourceParams{URI: "file:///srv/items/7"}); jsonrpc.ErrorCode(err) != gateway.CodePolicyDenied {
			t.Errorf("bob reads through the hidden template: %v", err)
		}
		if _, err := alice.ReadResource(ctx, &mcp.ReadResourceParams{URI: "file:///srv/items/7"}); err != nil {
			t.Errorf("alice reads through the template: %v", err)
		}
		recs := auditRecords(t, w.dataDir)
		for _, want := range []map[string]string{
			{"user": "bob", "action": mcp.MethodResourcesRead, "target": "file:///srv/secret/plan.txt", "decision": "deny"},
			{"user": "bob", "action": mcp.MethodResourcesSubscribe, "target": "file:///srv/secret/plan.txt", "decision": "deny"},
			{"user": "alice", "action": mcp.MethodResourcesRead, "target": "file:///srv/secret/plan.txt", "decision": "allow"},
			{"user": "bob", "action": mcp.MethodResourcesList, "outcome": "filtered"},
		} {
			if !hasRecord(recs, want) {
				t.Errorf("no audit record %v", want)
			}
		}
	})

	t.Run("tasks/list is decided by policy; foreign task ids are refused and recorded", func(t *testing.T) {
		created, err := carol.CallToolAsTask(ctx, &mcp.CallToolParams{Name: "long_job"}, &mcp.TaskMetadata{})
		if err != nil {
			t.Fatal(err)
		}
		id := created.Task.TaskID
		if l, err := carol.ListTasks(ctx, nil); err != nil || len(l.Tasks) != 0 {
			t.Errorf("carol, forbidden tasks/list, lists %+v %v", l, err)
		}
		if _, err := bob.GetTask(ctx, &mcp.GetTaskParams{TaskID: id}); err == nil {
			t.Error("bob got carol's task")
		}
		if _, err := bob.CancelTask(ctx, &mcp.CancelTaskParams{TaskID: id}); err == nil {
			t.Error("bob cancelled carol's task")
		}
		recs := auditRecords(t, w.dataDir)
		for _, want := range []map[string]string{
			{"user": "bob", "action": mcp.MethodTasksGet, "target": id, "decision": "deny", "outcome": "unknown"},
			{"user": "bob", "action": mcp.MethodTasksCancel, "target": id, "decision": "deny", "outcome": "unknown"},
			{"user": "carol", "action": mcp.MethodTasksList, "decision": "deny", "outcome": "filtered"},
		} {
			if !hasRecord(recs, want) {
				t.Errorf("no audit record %v", want)
			}
		}
	})

	t.Run("unknown tools and methods are refused and recorded", func(t *testing.T) {
		if _, err := callTool(ctx, alice, "no_such_tool", `{}`); jsonrpc.ErrorCode(err) != jsonrpc.CodeInvalidParams {
			t.Errorf("unknown tool: %v", err)
		}
		if _, err := alice.CallRaw(ctx, "tools/frobnicate", jsontext.Value(`{}`)); jsonrpc.ErrorCode(err) != jsonrpc.CodeMethodNotFound {
			t.Errorf("unknown method: %v", err)
		}
		recs := auditRecords(t, w.dataDir)
		for _, want := range []map[string]string{
			{"user": "alice", "action": mcp.MethodToolsCall, "target": "no_such_tool", "decision": "deny", "outcome": "unknown"},
			{"user": "alice", "action": "tools/frobnicate", "decision": "deny", "outcome": "refused"},
		} {
			if !hasRecord(recs, want) {
				t.Errorf("no audit record %v", want)
			}
		}
	})

	t.Run("a legacy /sse session is bound to its principal", func(t *testing.T) {
		// The users' tokens (issued for /mcp, accepted at /sse too).
		hcA := &http.Client{Transport: bearer["alice"].fixed()}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, w.base+"/sse", nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := hcA.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /sse: %s", resp.Status)
		}
		sc := bufio.NewScanner(resp.Body)
		endpoint := ""
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				endpoint = d
				break
			}
		}
		if !strings.Contains(endpoint, "sessionId=") {
			t.Fatalf("no endpoint event (got %q)", endpoint)
		}
		if !strings.HasPrefix(endpoint, "http") {
			endpoint = w.base + endpoint
		}
		init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`
		post := func(hc *http.Client, body string) int {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if code := post(&http.Client{Transport: bearer["bob"].fixed()}, init); code != http.StatusNotFound {
			t.Errorf("bob posting into alice's /sse session: HTTP %d, want 404 (as for an unknown session)", code)
		}
		if code := post(hcA, init); code != http.StatusAccepted {
			t.Errorf("alice posting into her own session: HTTP %d", code)
		}
	})

	t.Run("the legacy /sse transport goes through the same door", func(t *testing.T) {
		sse, err := mcp.NewClient(&mcp.Implementation{Name: "legacy", Version: "1"}, nil).Connect(ctx,
			&mcp.SSEClientTransport{Endpoint: w.base + "/sse", HTTPClient: &http.Client{Transport: bearer["bob"].fixed()}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer sse.Close()
		list, err := sse.ListResources(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Resources) != 0 {
			t.Errorf("bob over /sse lists %d resources, want 0 (both hidden from him)", len(list.Resources))
		}
		if _, err := sse.ReadResource(ctx, &mcp.ReadResourceParams{URI: "file:///srv/secret/plan.txt"}); jsonrpc.ErrorCode(err) != gateway.CodePolicyDenied {
			t.Errorf("bob over /sse reads the hidden resource: %v", err)
		}
		if _, err := sse.CallRaw(ctx, "tools/frobnicate", jsontext.Value(`{}`)); jsonrpc.ErrorCode(err) != jsonrpc.CodeMethodNotFound {
			t.Errorf("unknown method over /sse: %v", err)
		}
		n := 0
		for _, r := range auditRecords(t, w.dataDir) {
			if r["user"] == "bob" && r["action"] == mcp.MethodResourcesRead && r["decision"] == "deny" {
				n++
			}
		}
		if n < 2 {
			t.Errorf("bob's denied reads over both transports: %d records, want at least 2", n)
		}
	})

	t.Run("a client's roots do not reach an upstream by default", func(t *testing.T) {
		c := mcp.NewClient(&mcp.Implementation{Name: "roots", Version: "1"}, nil)
		c.AddRoots(&mcp.Root{URI: "file:///etc", Name: "etc"})
		rc, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: w.base + "/mcp", HTTPClient: &http.Client{Transport: tr["alice"]}, MaxRetries: -1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		got, err := callTool(ctx, rc, "roots", `{}`)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(got, "file:///etc") || !strings.Contains(got, "error") || strings.Contains(got, `"roots"`) {
			t.Errorf("upstream saw %q: roots must be neither declared nor relayed", got)
		}
	})
}

// TestOneDoorFixedRoots: an upstream whose roots are set by the operator
// sees those, whatever the client declares.
func TestOneDoorFixedRoots(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w := newGovernedWorld(t, oneDoorUpstream(), oneDoorPolicies, func(c *config.Config) {
		c.Upstreams[0].Roots = config.RootsFixed
		c.Upstreams[0].FixedRoots = []config.Root{{URI: "file:///srv/docs", Name: "docs"}}
	})
	recv := newReceiver(t, newBrowser("alice", "alice-password"))
	w.publicClient(recv.RedirectURL())
	c := mcp.NewClient(&mcp.Implementation{Name: "roots", Version: "1"}, nil)
	c.AddRoots(&mcp.Root{URI: "file:///etc", Name: "etc"})
	rc, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: w.base + "/mcp", HTTPClient: &http.Client{Transport: w.userTransport(t, recv)}, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := callTool(ctx, rc, "roots", `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(got, "roots file:///srv/docs") {
		t.Errorf("upstream saw %q, want the fixed root only", got)
	}
	if !hasRecord(auditRecords(t, w.dataDir), map[string]string{"user": "alice", "action": mcp.MethodRootsList, "decision": "allow"}) {
		t.Error("roots/list not recorded")
	}
}

// bearerRecorder is a base transport that remembers the last
// Authorization header sent through it.
type bearerRecorder struct {
	mu   sync.Mutex
	last string
}

func (b *bearerRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		b.mu.Lock()
		b.last = h
		b.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(r)
}

// fixed returns a transport that sends the recorded header on every
// request.
func (b *bearerRecorder) fixed() http.RoundTripper {
	b.mu.Lock()
	h := b.last
	b.mu.Unlock()
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", h)
		return http.DefaultTransport.RoundTrip(r)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// publicClient serves the world's CIMD document: a public client with
// these redirect URIs.
func (w *controlsWorld) publicClient(redirects ...string) {
	doc, _ := json.Marshal(map[string]any{
		"client_id":                  w.cimd.URL + "/client.json",
		"client_name":                "E2E Desktop Agent",
		"redirect_uris":              redirects,
		"grant_types":                []string{meta.GrantTypeAuthorizationCode, meta.GrantTypeRefreshToken},
		"response_types":             []string{meta.ResponseTypeCode},
		"token_endpoint_auth_method": meta.AuthMethodNone,
	})
	w.cimdMu.Lock()
	w.cimdDoc = doc
	w.cimdMu.Unlock()
}
