package gateway

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

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

const testPolicies = `
@id("base")
permit(principal, action, resource);

@id("no-up-only")
@reason("this tool is retired")
forbid(principal, action in Action::"tools", resource == Tool::"up/up-only");

@id("docs-only")
@reason("files may only be read under /srv/docs")
forbid(principal, action == Action::"tools/call", resource == Tool::"up/echo")
when { context has arguments && !(context.arguments has path && context.arguments.path like "/srv/docs/*" && !context.path_traversal) };

@id("approve-whoami")
@approval("required")
permit(principal == User::"alice", action == Action::"tools/call", resource == Tool::"up/whoami");
`

// controlledUpstream adds an echo tool with a path argument.
func controlledUpstream(t *testing.T) string {
	s := testUpstream("up", nil)
	s.AddTool(&mcp.Tool{Name: "echo", InputSchema: jsontext.Value(`{"type":"object","properties":{"path":{"type":"string"}}}`)},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: string(req.Params.Arguments)}}}, nil
		})
	url, _ := httpUpstreamServer(t, s)
	return url
}

func TestGatewayControls(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.cedar"), []byte(testPolicies), 0o600); err != nil {
		t.Fatal(err)
	}
	eng, err := policy.NewEngine(&policy.Options{Paths: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	auditStore := store.NewAuditMemory()
	alog, err := audit.New(auditStore, &audit.Options{KeyPath: filepath.Join(dir, "audit.key")})
	if err != nil {
		t.Fatal(err)
	}
	defer alog.Close()
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
	ctx := context.Background()
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	url := userHeaderGateway(t, g)
	alice, bob := connectAs(t, url, "alice"), connectAs(t, url, "bob")

	// A forbidden tool is not listed and cannot be called; the error names the policy.
	var names []string
	for tool, err := range alice.Tools(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tool.Name)
	}
	if slices.Contains(names, "up-only") || !slices.Contains(names, "echo") {
		t.Errorf("alice sees %v", names)
	}
	_, err = alice.CallTool(ctx, &mcp.CallToolParams{Name: "up-only"})
	if jsonrpc.ErrorCode(err) != CodePolicyDenied || !strings.Contains(err.Error(), "no-up-only") {
		t.Errorf("up-only: %v", err)
	}

	// Arguments restricted to a folder.
	call := func(cs *mcp.ClientSession, path string) error {
		args, _ := json.Marshal(map[string]string{"path": path})
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: args})
		return err
	}
	if err := call(bob, "/srv/docs/a.txt"); err != nil {
		t.Errorf("allowed path refused: %v", err)
	}
	for _, p := range []string{"/etc/passwd", "/srv/docs/../../etc/passwd", "/srv/docs/%2e%2e/x"} {
		if err := call(bob, p); jsonrpc.ErrorCode(err) != CodePolicyDenied || !strings.Contains(err.Error(), "docs-only") {
			t.Errorf("path %s: %v", p, err)
		}
	}

	// Approval: the first call is sent to an approval page.
	_, err = alice.CallTool(ctx, &mcp.CallToolParams{Name: "whoami", Arguments: jsontext.Value(`{"x":1}`)})
	var we *jsonrpc.Error
	if !errors.As(err, &we) || we.Code != mcp.CodeURLElicitationRequired {
		t.Fatalf("whoami before approval: %v", err)
	}
	var data mcp.URLElicitationRequiredErrorData
	if err := json.Unmarshal(we.Data, &data); err != nil || len(data.Elicitations) != 1 || !strings.HasPrefix(data.Elicitations[0].URL, "http://gateway.test/approvals/") {
		t.Fatalf("elicitation data %s: %v", we.Data, err)
	}
	id := data.Elicitations[0].ElicitationID
	if err := approvals.Decide(ctx, id, "carol", true, "fine"); err != nil {
		t.Fatal(err)
	}
	// An altered call is not covered by the approval.
	if _, err := alice.CallTool(ctx, &mcp.CallToolParams{Name: "whoami", Arguments: jsontext.Value(`{"x":2}`)}); jsonrpc.ErrorCode(err) != mcp.CodeURLElicitationRequired {
		t.Errorf("altered call: %v", err)
	}
	// The approved call goes through once (argument order does not matter)...
	if res, err := alice.CallTool(ctx, &mcp.CallToolParams{Name: "whoami", Arguments: jsontext.Value(`{ "x" : 1 }`)}); err != nil || res.IsError {
		t.Errorf("approved call: %v %+v", err, res)
	}
	// ...and only once.
	if _, err := alice.CallTool(ctx, &mcp.CallToolParams{Name: "whoami", Arguments: jsontext.Value(`{"x":1}`)}); jsonrpc.ErrorCode(err) != mcp.CodeURLElicitationRequired {
		t.Errorf("replayed approval: %v", err)
	}

	// Everything was audited, and the chain verifies.
	if err := alog.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(ctx, auditStore, alog.PublicKey())
	if err != nil || !rep.OK {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	var decisions []string
	for r, err := range auditStore.ReadAudit(ctx, 1) {
		if err != nil {
			t.Fatal(err)
		}
		decisions = append(decisions, r.Action+":"+r.Target+":"+r.Decision+":"+r.Phase)
	}
	joined := strings.Join(decisions, "\n")
	for _, want := range []string{
		"tools/call:up-only:deny:decided",
		"tools/call:echo:allow:decided", "tools/call:echo:allow:completed", "tools/call:echo:deny:decided",
		"tools/call:whoami:approval_required:decided", "tools/call:whoami:approval_required:completed",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("no audit record %s in:\n%s", want, joined)
		}
	}
}

func TestRateLimit(t *testing.T) {
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
	alice, bob := connectAs(t, gw, "alice"), connectAs(t, gw, "bob")
	for range 2 {
		callText(t, alice, "whoami")
	}
	_, err = alice.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami"})
	if jsonrpc.ErrorCode(err) != CodeRateLimited {
		t.Errorf("third call: %v, want rate limited", err)
	}
	callText(t, alice, "up-only") // other tools are not limited
	callText(t, bob, "whoami")    // other users have their own bucket
}
