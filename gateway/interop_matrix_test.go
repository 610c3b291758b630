package gateway

// The interop matrix (issue 13, "What it must show", point 2): real MCP
// clients of both generations go through one gateway, with controls on
// (bearer-token authentication naming the principal, a Cedar policy, an
// audit log), to real upstreams of both generations.
//
// Clients: the TypeScript SDK 2.4.0 client (@modelcontextprotocol/client,
// 2026-07-28), the TypeScript SDK 1.32.2 (@modelcontextprotocol/sdk,
// 2025-11-25), mcp-go v1.6.0 (2026-07-28; mcp/testdata/mcpgo2026/client)
// and the official Go SDK v1.8.0 (in process; it negotiates 2026-07-28).
//
// Upstreams, behind the gateway with the prefixes leg_, ts_ and mgo_: a
// 2025-11-25 server made with package mcp (matrixLegacyUpstream), the
// TypeScript SDK 2.4.0 server with legacy: 'reject'
// (mcp/testdata/tsserver2026) and mcp-go v1.6.0 serving 2026-07-28 only
// (mcp/testdata/mcpgo2026).
//
// Each cell (client x upstream) shows: the upstream's tools listed; a call
// (add); a call the policy denies (add with a=666); the audit records of
// both calls, of the relayed elicitation and sampling requests, and of the
// task's creation; an elicitation and a sampling request of
// the upstream answered by the client (MRTR input requests for a modern
// client, server-to-client requests for a legacy one, whatever the
// upstream speaks); a task run to completion; a tool list change reaching
// the client (the legacy stream or subscriptions/listen). What a cell
// cannot show is in matrixGaps with its reason; those features are not
// asserted, and the test fails if one of them starts to work (so that
// the table is kept true).

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	gomcp "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/npmtest"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/policy"
	"github.com/mcpgate/mcpgate/store"
)

// matrixPolicies allow everything but an add with a=666.
const matrixPolicies = `
@id("base")
permit(principal, action, resource);

@id("no-666")
@reason("666 is not added here")
forbid(principal, action == Action::"tools/call", resource)
when { context has arguments && context.arguments has a && context.arguments.a == 666 };
`

// matrixSpec is one upstream as the client drivers see it (the JSON the
// external drivers take).
type matrixSpec struct {
	Prefix string `json:"prefix"`
	Task   bool   `json:"task"` // <prefix>slow is task-capable
	Poke   bool   `json:"poke"` // <prefix>poke changes the tool list
}

// matrixReport is what a client driver reports (printed as JSON by the
// external ones).
type matrixReport struct {
	Client          string       `json:"client"`
	ProtocolVersion string       `json:"protocolVersion"`
	Unauthorized    string       `json:"unauthorized"`
	Cells           []matrixCell `json:"cells"`
	Errors          []string     `json:"errors"`
}

type matrixCell struct {
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

// matrixUpstreams are the upstreams by name; their prefix is name + "_".
var matrixUpstreams = []struct {
	name string
	spec matrixSpec
}{
	{"leg", matrixSpec{Prefix: "leg_", Task: true, Poke: true}},
	{"ts", matrixSpec{Prefix: "ts_", Poke: true}},
	{"mgo", matrixSpec{Prefix: "mgo_", Poke: true}},
	{"gos", matrixSpec{Prefix: "gos_", Poke: true}},
}

// Features of a cell.
const (
	fList       = "list"
	fCall       = "call"
	fDeny       = "policy denial"
	fAudit      = "audit record"
	fElicit     = "MRTR/relayed elicitation"
	fSample     = "MRTR/relayed sampling"
	fTask       = "task to completion"
	fListChange = "list change notification"
)

var matrixFeatures = []string{fList, fCall, fDeny, fAudit, fElicit, fSample, fTask, fListChange}

const (
	gapModernUpstreamTasks = "peer: neither the TS SDK 2.4.0 server nor the mcp-go v1.6.0 server of the matrix declares the Tasks extension or has a task-capable tool (the gateway's side, declared to every modern upstream, is tested against package mcp's server in modern_passthrough_test.go)"
	gapGoSDKTasks          = "peer: go-sdk v1.8.0 has no tasks API (no tasks/* method in its mcp package; ClientSession sends only the methods it knows)"
	gapGoSDKUpstreamTasks  = "peer: the go-sdk v1.8.0 server has no tasks (no tasks/* method in its mcp package), so its tools cannot run as tasks"
	gapTS2026Tasks         = "peer: @modelcontextprotocol/client 2.4.0 has no Tasks extension: a tools/call answered with resultType \"task\" fails in the SDK with \"Unsupported result type 'task' for tools/call\" (its result decoder accepts only complete and input_required, dist/src-CeKsbNLO.mjs), even through the generic request() with a loose schema; the string io.modelcontextprotocol/tasks appears nowhere in the package"
)

// matrixGaps are the features a cell cannot show, with the reason, keyed
// by "client/upstream".
var matrixGaps = map[string]map[string]string{}

func init() {
	for _, client := range []string{"ts2026", "ts1", "mcpgo", "gosdk"} {
		for _, up := range []string{"ts", "mgo"} {
			matrixGaps[client+"/"+up] = map[string]string{fTask: gapModernUpstreamTasks}
		}
	}
	for _, client := range []string{"ts2026", "ts1", "mcpgo", "gosdk"} {
		matrixGaps[client+"/gos"] = map[string]string{fTask: gapGoSDKUpstreamTasks}
	}
	matrixGaps["gosdk/leg"] = map[string]string{fTask: gapGoSDKTasks}
	matrixGaps["ts2026/leg"] = map[string]string{fTask: gapTS2026Tasks}
}

// matrixLegacyUpstream is the 2025-11-25 upstream: add, greet
// (elicitation), sample (sampling), slow (task-capable) and poke (adds
// the tool it names, so that the upstream announces a list change).
func matrixLegacyUpstream() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "matrix-legacy", Version: "1"}, nil)
	s.AddTool(&mcp.Tool{Name: "add", InputSchema: jsontext.Value(`{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}},"required":["a","b"]}`)},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var args struct {
				A float64 `json:"a"`
				B float64 `json:"b"`
			}
			if err := json.Unmarshal(req.Params.Arguments, &args); err != nil {
				return nil, err
			}
			return matrixText(fmt.Sprint(args.A + args.B)), nil
		})
	s.AddTool(&mcp.Tool{Name: "greet", InputSchema: jsontext.Value(`{"type":"object"}`)},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			r, err := req.Session.ElicitInput(ctx, "name", &mcp.ElicitParams{Message: "Name?", RequestedSchema: &mcp.ElicitationSchema{
				Type: "object", Properties: map[string]mcp.PrimitiveSchemaDefinition{"name": {Type: "string"}}, Required: []string{"name"}}})
			if err != nil {
				return nil, err
			}
			return matrixText(fmt.Sprintf("hello %v", r.Content["name"])), nil
		})
	s.AddTool(&mcp.Tool{Name: "sample", InputSchema: jsontext.Value(`{"type":"object"}`)},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			r, err := req.Session.SampleInput(ctx, "answer", &mcp.CreateMessageParams{
				Messages:  []*mcp.SamplingMessage{{Role: mcp.RoleUser, Content: []mcp.Content{&mcp.TextContent{Text: "sample-me"}}}},
				MaxTokens: 16,
			})
			if err != nil {
				return nil, err
			}
			text := ""
			if len(r.Content) > 0 {
				if tc, ok := r.Content[0].(*mcp.TextContent); ok {
					text = tc.Text
				}
			}
			return matrixText("sampled:" + text), nil
		})
	s.AddTool(&mcp.Tool{Name: "slow", InputSchema: jsontext.Value(`{"type":"object","properties":{"word":{"type":"string"}}}`),
		Execution: &mcp.ToolExecution{TaskSupport: mcp.TaskSupportOptional}},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var args struct {
				Word string `json:"word"`
			}
			if err := json.Unmarshal(req.Params.Arguments, &args); err != nil {
				return nil, err
			}
			t := time.NewTimer(50 * time.Millisecond)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return matrixText("slow:" + args.Word), nil
		})
	s.AddTool(&mcp.Tool{Name: "poke", InputSchema: jsontext.Value(`{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}`)},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var args struct {
				Name string `json:"name"`
			}
			if err := json.Unmarshal(req.Params.Arguments, &args); err != nil || args.Name == "" {
				return nil, fmt.Errorf("poke: a name is required")
			}
			s.AddTool(&mcp.Tool{Name: args.Name, InputSchema: jsontext.Value(`{"type":"object"}`)},
				func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
					return matrixText(args.Name), nil
				})
			return matrixText("poked"), nil
		})
	return s
}

// matrixGoSDKUpstream is the official Go SDK v1.8.0 server with the same
// tools but slow. The gateway connects to it with initialize (a dual-era
// upstream stays legacy), so its elicitation and sampling are
// server-to-client requests.
func matrixGoSDKUpstream() *gomcp.Server {
	s := gomcp.NewServer(&gomcp.Implementation{Name: "matrix-go-sdk", Version: "1.8.0"}, nil)
	obj := map[string]any{"type": "object"}
	s.AddTool(&gomcp.Tool{Name: "add", InputSchema: obj}, func(ctx context.Context, req *gomcp.CallToolRequest) (*gomcp.CallToolResult, error) {
		var args struct {
			A float64 `json:"a"`
			B float64 `json:"b"`
		}
		if err := json.Unmarshal(req.Params.Arguments, &args); err != nil {
			return nil, err
		}
		return goSDKTextResult(fmt.Sprint(args.A + args.B)), nil
	})
	s.AddTool(&gomcp.Tool{Name: "greet", InputSchema: obj}, func(ctx context.Context, req *gomcp.CallToolRequest) (*gomcp.CallToolResult, error) {
		r, err := req.Session.Elicit(ctx, &gomcp.ElicitParams{Message: "Name?", RequestedSchema: map[string]any{
			"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}}, "required": []string{"name"}}})
		if err != nil {
			return nil, err
		}
		return goSDKTextResult(fmt.Sprintf("hello %v", r.Content["name"])), nil
	})
	s.AddTool(&gomcp.Tool{Name: "sample", InputSchema: obj}, func(ctx context.Context, req *gomcp.CallToolRequest) (*gomcp.CallToolResult, error) {
		r, err := req.Session.CreateMessage(ctx, &gomcp.CreateMessageParams{
			Messages:  []*gomcp.SamplingMessage{{Role: "user", Content: &gomcp.TextContent{Text: "sample-me"}}},
			MaxTokens: 16,
		})
		if err != nil {
			return nil, err
		}
		text := ""
		if tc, ok := r.Content.(*gomcp.TextContent); ok {
			text = tc.Text
		}
		return goSDKTextResult("sampled:" + text), nil
	})
	s.AddTool(&gomcp.Tool{Name: "poke", InputSchema: obj}, func(ctx context.Context, req *gomcp.CallToolRequest) (*gomcp.CallToolResult, error) {
		var args struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(req.Params.Arguments, &args); err != nil || args.Name == "" {
			return nil, fmt.Errorf("poke: a name is required")
		}
		s.AddTool(&gomcp.Tool{Name: args.Name, InputSchema: obj}, func(context.Context, *gomcp.CallToolRequest) (*gomcp.CallToolResult, error) {
			return goSDKTextResult(args.Name), nil
		})
		return goSDKTextResult("poked"), nil
	})
	return s
}

func goSDKTextResult(s string) *gomcp.CallToolResult {
	return &gomcp.CallToolResult{Content: []gomcp.Content{&gomcp.TextContent{Text: s}}}
}

func matrixText(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

// bearerAuth admits requests whose bearer token is in tokens, with the
// token's user as the principal; others get 401.
func bearerAuth(h http.Handler, tokens map[string]string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		user, known := tokens[tok]
		if !ok || !known {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mcpgate-interop"`)
			http.Error(w, "a bearer token is required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, user)))
	})
}

// matrixGateway is the gateway of the matrix and what the cells check.
type matrixGateway struct {
	g      *Gateway
	url    string
	audit  *store.AuditMemory
	tokens map[string]string // token -> user
}

func (m *matrixGateway) token(user string) string { return "tok-" + user }

// startMatrixGateway starts the three upstreams and the gateway in front
// of them, with bearer authentication, the policies and an audit log.
func startMatrixGateway(t *testing.T, users []string) *matrixGateway {
	t.Helper()
	legacyURL, _ := httpUpstreamServer(t, matrixLegacyUpstream())
	tsURL := startTSModernServer(t)
	mgoURL := startMCPGoModernServer(t)
	gosSDK := matrixGoSDKUpstream()
	gosSrv := httptest.NewServer(gomcp.NewStreamableHTTPHandler(func(*http.Request) *gomcp.Server { return gosSDK }, nil))
	t.Cleanup(gosSrv.Close)

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.cedar"), []byte(matrixPolicies), 0o600); err != nil {
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
	g, err := New(&config.Config{Upstreams: []config.Upstream{
		{Name: "leg", URL: legacyURL},
		{Name: "ts", URL: tsURL},
		{Name: "mgo", URL: mgoURL},
		{Name: "gos", URL: gosSrv.URL},
	}}, &Options{
		Principal: func(ctx context.Context) string { s, _ := ctx.Value(userKey{}).(string); return s },
		Policy:    eng, Audit: alog,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	g.WaitStartup(ctx)
	for _, s := range g.UpstreamStates() {
		t.Logf("upstream %+v", s)
	}
	m := &matrixGateway{g: g, audit: st, tokens: map[string]string{}}
	for _, u := range users {
		m.tokens[m.token(u)] = u
	}
	srv := httptest.NewServer(bearerAuth(g.Handler(), m.tokens))
	t.Cleanup(func() { srv.Close(); g.Close() })
	m.url = srv.URL + "/mcp"
	return m
}

// startMCPGoModernServer builds and runs mcp/testdata/mcpgo2026 (mcp-go
// v1.6.0 serving 2026-07-28 only) and returns its endpoint.
func startMCPGoModernServer(t *testing.T) string {
	t.Helper()
	bin := buildMCPGo(t, ".")
	cmd := exec.Command(bin)
	cmd.Stderr = &npmtest.LogWriter{T: t, Prefix: "mcp-go server"}
	return npmtest.StartServer(t, cmd, "mcp-go server")
}

const mcpGoDir = "../mcp/testdata/mcpgo2026"

// buildMCPGo builds the package pkg of the mcp-go module (its own
// module, so that the main module keeps its mcp-go version). It skips
// outside CI when the build fails (no module proxy), and fails in CI.
func buildMCPGo(t *testing.T, pkg string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("skipped in -short mode: it builds a separate module")
	}
	bin := filepath.Join(t.TempDir(), "mcpgo-"+filepath.Base(filepath.Clean(pkg)))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, pkg)
	build.Dir = mcpGoDir
	if out, err := build.CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("building %s in %s: %v\n%s", pkg, mcpGoDir, err, out)
		}
		t.Skipf("building %s in %s (mcp-go v1.6.0) failed, module proxy unreachable? %v\n%s", pkg, mcpGoDir, err, out)
	}
	return bin
}

// matrixDriver runs one client against the gateway for every upstream.
type matrixDriver struct {
	user    string // the principal, also the client's key in matrixGaps
	version string // the protocol version it must negotiate
	run     func(t *testing.T, m *matrixGateway, answer string, specs []matrixSpec) *matrixReport
}

func TestInteropMatrix(t *testing.T) {
	drivers := []matrixDriver{
		{"ts2026", mcp.Version20260728, runTS2026Client},
		{"ts1", "2025-11-25", runTS1Client},
		{"mcpgo", mcp.Version20260728, runMCPGoClient},
		{"gosdk", mcp.Version20260728, runGoSDKClient},
	}
	var users []string
	for _, d := range drivers {
		users = append(users, d.user)
	}
	// The peers are needed before the gateway exists: check node first so
	// that a machine without it skips before building anything.
	npmtest.Require(t)
	m := startMatrixGateway(t, users)
	var specs []matrixSpec
	for _, u := range matrixUpstreams {
		specs = append(specs, u.spec)
	}

	var table []string
	for _, d := range drivers {
		t.Run(d.user, func(t *testing.T) {
			answer := d.user + "-" + matrixNonce(t)
			rep := d.run(t, m, answer, specs)
			t.Logf("%s: protocol %s; without a token: %s", rep.Client, rep.ProtocolVersion, rep.Unauthorized)
			if rep.ProtocolVersion != d.version {
				t.Errorf("%s negotiated %q, want %q", rep.Client, rep.ProtocolVersion, d.version)
			}
			for _, e := range rep.Errors {
				t.Errorf("%s: %s", rep.Client, e)
			}
			if u := strings.ToLower(rep.Unauthorized); !strings.Contains(u, "401") && !strings.Contains(u, "unauthorized") && !strings.Contains(u, "authorization required") {
				t.Errorf("%s without a token: %q, want a 401 refusal", rep.Client, rep.Unauthorized)
			}
			for _, u := range matrixUpstreams {
				i := slices.IndexFunc(rep.Cells, func(c matrixCell) bool { return c.Prefix == u.spec.Prefix })
				if i < 0 {
					t.Errorf("%s: no cell for upstream %s", rep.Client, u.name)
					continue
				}
				row := checkMatrixCell(t, m, d.user, u.name, u.spec, answer, &rep.Cells[i])
				table = append(table, fmt.Sprintf("%-34s %-4s %s", rep.Client+" ("+rep.ProtocolVersion+")", u.name, row))
			}
		})
	}
	// The same governance whatever the generations: the records of the
	// denied and the allowed add are the same for every client.
	for _, u := range matrixUpstreams {
		sigs := map[string][]string{}
		for _, d := range drivers {
			sigs[d.user] = addRecords(t, m.audit, d.user, u.name)
		}
		for _, d := range drivers[1:] {
			if !slices.Equal(sigs[d.user], sigs[drivers[0].user]) || len(sigs[d.user]) == 0 {
				t.Errorf("upstream %s: the add records of %s differ from those of %s:\n%s\n%s", u.name, d.user, drivers[0].user,
					strings.Join(sigs[d.user], "\n"), strings.Join(sigs[drivers[0].user], "\n"))
			}
		}
	}
	t.Logf("interop matrix (client, upstream: feature=pass|FAIL|n/a):\n%s", strings.Join(table, "\n"))
}

// checkMatrixCell checks one cell and returns its row of the table.
func checkMatrixCell(t *testing.T, m *matrixGateway, user, up string, spec matrixSpec, answer string, c *matrixCell) string {
	t.Helper()
	key := user + "/" + up
	gaps := matrixGaps[key]
	got := map[string]string{}
	check := func(feature string, ok bool, detail string) {
		if reason := gaps[feature]; reason != "" {
			if ok {
				t.Errorf("%s %s: works now; take it out of matrixGaps (%s)", key, feature, reason)
			}
			got[feature] = "n/a"
			return
		}
		if !ok {
			t.Errorf("%s %s: %s", key, feature, detail)
			got[feature] = "FAIL"
			return
		}
		got[feature] = "pass"
	}
	for _, e := range c.Errors {
		// Steps of features with a gap may fail; they are judged below.
		t.Logf("%s step: %s", key, e)
	}
	p := spec.Prefix
	check(fList, slices.Contains(c.Tools, p+"add") && slices.Contains(c.Tools, p+"greet") && slices.Contains(c.Tools, p+"sample"),
		fmt.Sprintf("tools %v", c.Tools))
	check(fCall, c.Add == "5", fmt.Sprintf("add = %q", c.Add))
	check(fDeny, strings.Contains(c.Denied, "denied by policy no-666"), fmt.Sprintf("add a=666: %q", c.Denied))
	// The records of this principal on this upstream: the allowed and
	// the denied add, and the upstream's elicitation and sampling requests
	// relayed to the client (decided and completed, as for any request).
	allowed, denied, elicited, sampled, taskCreated := false, false, false, false, false
	for r, err := range m.audit.ReadAudit(context.Background(), 1) {
		if err != nil {
			t.Fatal(err)
		}
		if r.User != user || r.Upstream != up {
			continue
		}
		ok := r.Decision == audit.DecisionAllow && r.Outcome == audit.OutcomeOK
		switch r.Action {
		case mcp.MethodToolsCall:
			if strings.Contains(r.Target, "add") {
				allowed = allowed || ok
				denied = denied || r.Decision == audit.DecisionDeny && slices.Contains(r.Policies, "no-666")
			}
		case mcp.MethodElicitationCreate:
			elicited = elicited || ok
		case mcp.MethodSamplingCreateMessage:
			sampled = sampled || ok
		case "task.created":
			taskCreated = true
		}
	}
	check(fAudit, allowed && denied && elicited && sampled && (taskCreated || !spec.Task || gaps[fTask] != ""),
		fmt.Sprintf("records of %s on %s: tools/call allowed %v, denied %v; elicitation/create %v; sampling/createMessage %v; task.created %v",
			user, up, allowed, denied, elicited, sampled, taskCreated))
	check(fElicit, strings.HasPrefix(c.Greet, "hello "+answer), fmt.Sprintf("greet = %q", c.Greet))
	check(fSample, c.Sample == "sampled:"+answer, fmt.Sprintf("sample = %q", c.Sample))
	check(fTask, spec.Task && c.Task == "slow:"+answer, fmt.Sprintf("task result %q (%s)", c.Task, c.TaskHow))
	check(fListChange, spec.Poke && c.ListChanged && c.Listed, fmt.Sprintf("notified %v, new tool listed %v", c.ListChanged, c.Listed))
	var row []string
	for _, f := range matrixFeatures {
		row = append(row, f+"="+got[f])
	}
	return strings.Join(row, " ")
}

// addRecords returns the tools/call records of add by user on upstream
// up, without the user, session and times: what must not depend on the
// client's generation.
func addRecords(t *testing.T, st *store.AuditMemory, user, up string) []string {
	t.Helper()
	var out []string
	for r, err := range st.ReadAudit(context.Background(), 1) {
		if err != nil {
			t.Fatal(err)
		}
		if r.User == user && r.Upstream == up && r.Action == mcp.MethodToolsCall && strings.HasSuffix(r.Target, "add") {
			out = append(out, fmt.Sprintf("action=%s upstream=%s target=%s decision=%s outcome=%s phase=%s policies=%v",
				r.Action, r.Upstream, r.Target, r.Decision, r.Outcome, r.Phase, r.Policies))
		}
	}
	return out
}

// runExternal runs a driver program and decodes its report.
func runExternal(t *testing.T, cmd *exec.Cmd) *matrixReport {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if stderr.Len() > 0 {
		t.Logf("%s stderr:\n%s", filepath.Base(cmd.Path), stderr.Bytes())
	}
	if err != nil {
		t.Fatalf("%s: %v\nstdout:\n%s", cmd.Args, err, stdout.Bytes())
	}
	var rep matrixReport
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &rep); err != nil {
		t.Fatalf("decoding the report: %v\n%s", err, stdout.Bytes())
	}
	return &rep
}

func specJSON(t *testing.T, specs []matrixSpec) string {
	b, err := json.Marshal(specs)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func runMCPGoClient(t *testing.T, m *matrixGateway, answer string, specs []matrixSpec) *matrixReport {
	bin := buildMCPGo(t, "./client")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return runExternal(t, exec.CommandContext(ctx, bin, m.url, m.token("mcpgo"), answer, specJSON(t, specs)))
}

const (
	ts1ClientDir    = "testdata/tsclient"
	ts2026ClientDir = "testdata/tsclient2026"
)

func runTS1Client(t *testing.T, m *matrixGateway, answer string, specs []matrixSpec) *matrixReport {
	return runNodeDriver(t, ts1ClientDir, "matrix.mjs", m.url, m.token("ts1"), answer, specs)
}

func runTS2026Client(t *testing.T, m *matrixGateway, answer string, specs []matrixSpec) *matrixReport {
	return runNodeDriver(t, ts2026ClientDir, "matrix.mjs", m.url, m.token("ts2026"), answer, specs)
}

func runNodeDriver(t *testing.T, dir, script, url, token, answer string, specs []matrixSpec) *matrixReport {
	env := npmtest.Require(t)
	work := npmtest.Workdir(t, env.Install(t, dir), filepath.Join(dir, script))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, env.Node, script, url, token, answer, specJSON(t, specs))
	cmd.Dir = work
	return runExternal(t, cmd)
}

// runGoSDKClient drives the gateway with the official Go SDK v1.8.0 in
// process. Its default session probes server/discover, so it speaks
// 2026-07-28 through the gateway; its ToolListChangedHandler makes it open
// subscriptions/listen.
func runGoSDKClient(t *testing.T, m *matrixGateway, answer string, specs []matrixSpec) *matrixReport {
	rep := &matrixReport{Client: "go-sdk v1.8.0"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	changed := make(chan struct{}, 16)
	opts := &gomcp.ClientOptions{
		ElicitationHandler: func(ctx context.Context, req *gomcp.ElicitRequest) (*gomcp.ElicitResult, error) {
			return &gomcp.ElicitResult{Action: "accept", Content: map[string]any{"name": answer}}, nil
		},
		CreateMessageHandler: func(ctx context.Context, req *gomcp.CreateMessageRequest) (*gomcp.CreateMessageResult, error) {
			return &gomcp.CreateMessageResult{Role: "assistant", Model: "go-model", Content: &gomcp.TextContent{Text: answer}}, nil
		},
		ToolListChangedHandler: func(context.Context, *gomcp.ToolListChangedRequest) {
			select {
			case changed <- struct{}{}:
			default:
			}
		},
	}
	connect := func(token string) (*gomcp.ClientSession, error) {
		hc := &http.Client{Transport: matrixBearer{token}}
		return gomcp.NewClient(&gomcp.Implementation{Name: "go-sdk-matrix", Version: "1"}, opts).
			Connect(ctx, &gomcp.StreamableClientTransport{Endpoint: m.url, HTTPClient: hc}, nil)
	}
	if cs, err := connect(""); err == nil {
		cs.Close()
		rep.Unauthorized = "connected without a token"
	} else {
		rep.Unauthorized = err.Error()
	}
	cs, err := connect(m.token("gosdk"))
	if err != nil {
		rep.Errors = append(rep.Errors, "connect: "+err.Error())
		return rep
	}
	defer cs.Close()
	rep.ProtocolVersion = cs.InitializeResult().ProtocolVersion
	call := func(name string, args map[string]any) (string, error) {
		res, err := cs.CallTool(ctx, &gomcp.CallToolParams{Name: name, Arguments: args})
		if err != nil {
			return "", err
		}
		if res.IsError {
			return "", fmt.Errorf("tool error: %s", goSDKText(res))
		}
		return goSDKText(res), nil
	}
	list := func() ([]string, error) {
		var names []string
		for tool, err := range cs.Tools(ctx, nil) {
			if err != nil {
				return nil, err
			}
			names = append(names, tool.Name)
		}
		return names, nil
	}
	for _, s := range specs {
		c := matrixCell{Prefix: s.Prefix}
		step := func(name string, err error) {
			if err != nil {
				c.Errors = append(c.Errors, name+": "+err.Error())
			}
		}
		names, err := list()
		step("tools/list", err)
		for _, n := range names {
			if strings.HasPrefix(n, s.Prefix) {
				c.Tools = append(c.Tools, n)
			}
		}
		c.Add, err = call(s.Prefix+"add", map[string]any{"a": 2, "b": 3})
		step("add", err)
		if _, err := call(s.Prefix+"add", map[string]any{"a": 666, "b": 1}); err != nil {
			c.Denied = err.Error()
		} else {
			c.Denied = "not denied"
		}
		c.Greet, err = call(s.Prefix+"greet", map[string]any{})
		step("greet", err)
		c.Sample, err = call(s.Prefix+"sample", map[string]any{})
		step("sample", err)
		// No task: go-sdk v1.8.0 has no tasks API (matrixGaps).
		if s.Poke {
			// go-sdk opens subscriptions/listen without waiting for its
			// acknowledgement: wait until the gateway has the stream.
			if err := m.waitListener(ctx, "gosdk"); err != nil {
				step("listen", err)
			}
			for len(changed) > 0 {
				<-changed
			}
			name := "new_" + strings.ReplaceAll(answer, "-", "_")
			if _, err := call(s.Prefix+"poke", map[string]any{"name": name}); err != nil {
				step("poke", err)
			} else {
				select {
				case <-changed:
					c.ListChanged = true
				case <-time.After(20 * time.Second):
					step("listen", fmt.Errorf("no notifications/tools/list_changed within 20s"))
				}
				names, err := list()
				step("tools/list after the change", err)
				c.Listed = slices.Contains(names, s.Prefix+name)
			}
		}
		rep.Cells = append(rep.Cells, c)
	}
	return rep
}

// waitListener waits until user has a subscriptions/listen stream open
// on the gateway (at most 20 s).
func (m *matrixGateway) waitListener(ctx context.Context, user string) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		m.g.listeners.mu.Lock()
		n := len(m.g.listeners.by[user])
		m.g.listeners.mu.Unlock()
		if n > 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("no subscriptions/listen stream of %s on the gateway within 20s", user)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// matrixBearer sends a bearer token (none when empty).
type matrixBearer struct{ token string }

func (b matrixBearer) RoundTrip(r *http.Request) (*http.Response, error) {
	if b.token != "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+b.token)
	}
	return http.DefaultTransport.RoundTrip(r)
}

func goSDKText(res *gomcp.CallToolResult) string {
	var texts []string
	for _, c := range res.Content {
		if tc, ok := c.(*gomcp.TextContent); ok {
			texts = append(texts, tc.Text)
		}
	}
	return strings.Join(texts, " ")
}

// matrixNonce makes the answers of a run unique.
func matrixNonce(t *testing.T) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}
