package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/mcp"
)

// suiteClientScenarios are the client scenarios of
// @modelcontextprotocol/conformance 0.2.0-alpha.12
// (`conformance list --client`).
var suiteClientScenarios = []string{
	"initialize", "tools_call", "elicitation-sep1034-client-defaults", "sse-retry", "request-metadata",
	"auth/metadata-default", "auth/metadata-var1", "auth/metadata-var2", "auth/metadata-var3", "auth/basic-cimd",
	"auth/scope-from-www-authenticate", "auth/scope-from-scopes-supported", "auth/scope-omitted-when-undefined",
	"auth/scope-step-up", "auth/scope-retry-limit", "auth/token-endpoint-auth-basic", "auth/token-endpoint-auth-post",
	"auth/token-endpoint-auth-none", "auth/pre-registration", "auth/2025-03-26-oauth-metadata-backcompat",
	"auth/2025-03-26-oauth-endpoint-fallback", "auth/resource-mismatch", "auth/offline-access-scope",
	"auth/offline-access-not-supported", "auth/authorization-server-migration", "auth/iss-supported",
	"auth/iss-not-advertised", "auth/iss-supported-missing", "auth/iss-wrong-issuer", "auth/iss-unexpected",
	"auth/iss-normalized", "auth/metadata-issuer-mismatch", "auth/client-credentials-jwt",
	"auth/client-credentials-basic", "auth/enterprise-managed-authorization", "auth/dpop", "auth/dpop-nonce",
	"auth/wif-jwt-bearer", "sep-2322-client-request-state", "http-standard-headers", "http-custom-headers",
	"http-invalid-tool-headers", "json-schema-ref-no-deref", "json-schema-2020-12-preservation",
	"sep-2640-client-no-prefetch", "sep-2640-client-verify-digest", "sep-2640-client-verify-size",
	"sep-2640-client-verify-frontmatter",
}

func TestEveryScenarioHasAHandler(t *testing.T) {
	for _, name := range suiteClientScenarios {
		if _, ok := scenarioHandler(name); !ok {
			t.Errorf("no handler for scenario %q", name)
		}
	}
	for _, name := range []string{"", "nope", "Initialize", "tools-call"} {
		if _, ok := scenarioHandler(name); ok {
			t.Errorf("scenario %q has a handler", name)
		}
	}
}

func TestRunUsageErrors(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		scenario string
		want     string
	}{
		{"no url", nil, "initialize", "usage"},
		{"bad url", []string{"localhost:3000"}, "initialize", "http(s) URL"},
		{"no scenario", []string{"http://localhost:1/mcp"}, "", "MCP_CONFORMANCE_SCENARIO is not set"},
		{"unknown scenario", []string{"http://localhost:1/mcp"}, "no-such-scenario", `unknown scenario "no-such-scenario"`},
		{"bad flag", []string{"-bogus", "http://localhost:1/mcp"}, "initialize", "not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(tt.args, func(k string) string {
				if k == envScenario {
					return tt.scenario
				}
				return ""
			})
			var ue *usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run = %v, want a usage error containing %q", err, tt.want)
			}
		})
	}
}

// runScenario plays a scenario through run, as the suite would start it.
func runScenario(t *testing.T, scenario, url string) error {
	t.Helper()
	return run([]string{"-timeout", "10s", url}, func(k string) string {
		switch k {
		case envScenario:
			return scenario
		case envProtocolVersion:
			return mcp.LatestProtocolVersion
		}
		return ""
	})
}

// mockServer is an MCP server with the tools the suite's client scenarios
// offer, recording what the client sends.
type mockServer struct {
	mu        sync.Mutex
	calls     map[string]jsontext.Value // tool name -> arguments
	elicited  map[string]any            // content of the accepted elicitation
	reconnect bool                      // test_reconnection closed its stream
}

func (m *mockServer) record(name string, args jsontext.Value) {
	m.mu.Lock()
	m.calls[name] = args
	m.mu.Unlock()
}

func newMockServer(t *testing.T) (*mockServer, string) {
	t.Helper()
	m := &mockServer{calls: map[string]jsontext.Value{}}
	s := mcp.NewServer(&mcp.Implementation{Name: "mock", Version: "1.0.0"}, nil)
	add := func(name, schema string, h mcp.ToolHandler) {
		s.AddTool(&mcp.Tool{Name: name, Description: name, InputSchema: jsontext.Value(schema)}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			m.record(name, req.Params.Arguments)
			return h(ctx, req)
		})
	}
	text := func(s string) *mcp.CallToolResult {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
	}
	add("add_numbers", `{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}},"required":["a","b"]}`,
		func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var args struct{ A, B float64 }
			if err := json.Unmarshal(req.Params.Arguments, &args); err != nil {
				return nil, err
			}
			return text(fmt.Sprint(args.A + args.B)), nil
		})
	add("test_client_elicitation_defaults", `{"type":"object","properties":{},"required":[]}`,
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			def := func(v string) jsontext.Value { return jsontext.Value(v) }
			res, err := req.Session.Elicit(ctx, &mcp.ElicitParams{
				Message: "Test client default value handling - please accept with defaults",
				RequestedSchema: &mcp.ElicitationSchema{Properties: map[string]mcp.PrimitiveSchemaDefinition{
					"name":     {Type: "string", Default: def(`"John Doe"`)},
					"age":      {Type: "integer", Default: def(`30`)},
					"score":    {Type: "number", Default: def(`95.5`)},
					"status":   {Type: "string", Enum: []string{"active", "inactive", "pending"}, Default: def(`"active"`)},
					"verified": {Type: "boolean", Default: def(`true`)},
				}},
			})
			if err != nil {
				return nil, err
			}
			m.mu.Lock()
			m.elicited = res.Content
			m.mu.Unlock()
			return text(string(res.Action)), nil
		})
	add("test_reconnection", `{"type":"object","properties":{},"required":[]}`,
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			closed := mcp.CloseRequestStream(ctx)
			m.mu.Lock()
			m.reconnect = closed
			m.mu.Unlock()
			time.Sleep(50 * time.Millisecond)
			return text("Reconnection test completed successfully"), nil
		})
	add("json_schema_2020_12_tool", preservedSchema, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return text("ok"), nil
	})
	add("json_schema_echo", `{"type":"object","properties":{"schema":{"type":"object"}},"required":["schema"]}`,
		func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return text(string(req.Params.Arguments)), nil
		})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{
		RetryInterval: 50 * time.Millisecond,
		Logger:        slog.New(slog.DiscardHandler),
	})
	srv := httptest.NewServer(h)
	t.Cleanup(func() { h.Close(); srv.Close() })
	return m, srv.URL
}

const preservedSchema = `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","$defs":{"address":{"$anchor":"addressDef","type":"object","properties":{"street":{"type":"string"},"city":{"type":"string"}}}},"properties":{"name":{"type":"string"},"address":{"$ref":"#/$defs/address"},"contactMethod":{"type":"string","enum":["phone","email"]},"phone":{"type":"string"},"email":{"type":"string"}},"allOf":[{"anyOf":[{"required":["phone"]},{"required":["email"]}]}],"if":{"properties":{"contactMethod":{"const":"phone"}},"required":["contactMethod"]},"then":{"required":["phone"]},"else":{"required":["email"]},"additionalProperties":false}`

func TestScenariosAgainstMockServer(t *testing.T) {
	m, url := newMockServer(t)
	tests := []struct {
		scenario string
		check    func(t *testing.T)
	}{
		{"initialize", func(*testing.T) {}},
		{"tools_call", func(t *testing.T) {
			if got := string(m.calls["add_numbers"]); got != `{"a":5,"b":3}` {
				t.Errorf("add_numbers arguments = %s", got)
			}
		}},
		{"elicitation-sep1034-client-defaults", func(t *testing.T) {
			want := map[string]any{"name": "John Doe", "age": 30.0, "score": 95.5, "status": "active", "verified": true}
			if len(m.elicited) != len(want) {
				t.Fatalf("elicited content = %v, want %v", m.elicited, want)
			}
			for k, v := range want {
				if m.elicited[k] != v {
					t.Errorf("elicited %s = %v, want %v", k, m.elicited[k], v)
				}
			}
		}},
		{"sse-retry", func(t *testing.T) {
			if !m.reconnect {
				t.Error("test_reconnection did not close its stream")
			}
		}},
		{"json-schema-2020-12-preservation", func(t *testing.T) {
			var got struct {
				Schema jsontext.Value `json:"schema"`
			}
			if err := json.Unmarshal(m.calls["json_schema_echo"], &got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Schema, []byte(preservedSchema)) {
				t.Errorf("echoed schema = %s, want %s", got.Schema, preservedSchema)
			}
		}},
		{"json-schema-ref-no-deref", func(*testing.T) {}},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			if err := runScenario(t, tt.scenario, url+"/mcp"); err != nil {
				t.Fatalf("scenario failed: %v", err)
			}
			m.mu.Lock()
			defer m.mu.Unlock()
			tt.check(t)
		})
	}
}

func TestScenarioFailsWithoutTool(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "empty", Version: "1.0.0"}, nil)
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Close()
	for _, sc := range []string{"tools_call", "sse-retry", "json-schema-2020-12-preservation", "elicitation-sep1034-client-defaults"} {
		if err := runScenario(t, sc, srv.URL); err == nil || !strings.Contains(err.Error(), "does not offer tool") {
			t.Errorf("%s against a server without tools: err = %v", sc, err)
		}
	}
}

func TestScenarioFailsWhenServerIsDown(t *testing.T) {
	srv := httptest.NewServer(nil)
	url := srv.URL
	srv.Close()
	if err := runScenario(t, "initialize", url); err == nil {
		t.Error("initialize against a closed port succeeded")
	}
}

func TestSampleArguments(t *testing.T) {
	tests := []struct{ schema, want string }{
		{`{"type":"object"}`, `{}`},
		{`not json`, `{}`},
		{`{"type":"object","properties":{"s":{"type":"string"},"n":{"type":"number"},"i":{"type":"integer"},"b":{"type":"boolean"},"a":{"type":"array"},"o":{"type":"object"}}}`,
			`{"a":[],"b":true,"i":1,"n":1,"o":{},"s":"test"}`},
	}
	for _, tt := range tests {
		if got := string(sampleArguments(jsontext.Value(tt.schema))); got != tt.want {
			t.Errorf("sampleArguments(%s) = %s, want %s", tt.schema, got, tt.want)
		}
	}
}

// FuzzSampleArguments feeds arbitrary (server-supplied) schemas to
// sampleArguments: it must never panic and always return a JSON object.
func FuzzSampleArguments(f *testing.F) {
	f.Add(`{"type":"object","properties":{"a":{"type":"number"}}}`)
	f.Add(`{"properties":{"x":{"type":["string","null"]}}}`)
	f.Add(`{"properties":null}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, schema string) {
		got := sampleArguments(jsontext.Value(schema))
		if !got.IsValid() || got.Kind() != '{' {
			t.Errorf("sampleArguments(%q) = %s, not a JSON object", schema, got)
		}
	})
}

// TestModernScenarios plays the 2026-07-28 scenarios at the 2026-07-28
// wire against an mcp.Server (which serves modern requests): the MRTR
// scenario's tool asks for a confirmation by input_required.
func TestModernScenarios(t *testing.T) {
	srv := mcp.NewServer(&mcp.Implementation{Name: "modern", Version: "1"}, nil)
	confirmed := make(chan any, 1)
	srv.AddTool(&mcp.Tool{Name: "test_mrtr_echo_state"}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		r, err := req.Session.ElicitInput(ctx, "confirm", &mcp.ElicitParams{Message: "Confirm?", RequestedSchema: &mcp.ElicitationSchema{
			Properties: map[string]mcp.PrimitiveSchemaDefinition{"confirmed": {Type: "boolean"}}}})
		if err != nil {
			return nil, err
		}
		confirmed <- r.Content["confirmed"]
		return &mcp.CallToolResult{}, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	ts := httptest.NewServer(h)
	defer func() { h.Close(); ts.Close() }()
	for _, scenario := range []string{"request-metadata", "sep-2322-client-request-state"} {
		err := run([]string{"-timeout", "10s", ts.URL}, func(k string) string {
			switch k {
			case envScenario:
				return scenario
			case envProtocolVersion:
				return mcp.Version20260728
			}
			return ""
		})
		if err != nil {
			t.Fatalf("%s: %v", scenario, err)
		}
	}
	if got := <-confirmed; got != true {
		t.Errorf("confirmed = %v, want true", got)
	}
}
