package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/mcp"
)

// A scenarioFunc plays one client scenario against the server at e.serverURL.
type scenarioFunc func(ctx context.Context, e *env) error

// scenarioHandler returns the function that plays the named scenario. Every
// client scenario of the suite (0.2.0-alpha.12) has an entry; the auth/*
// ones go to runAuth (auth.go).
func scenarioHandler(name string) (scenarioFunc, bool) {
	if strings.HasPrefix(name, "auth/") {
		return runAuth, true
	}
	switch name {
	case "initialize":
		return runInitialize, true
	case "tools_call":
		return runToolsCall, true
	case "elicitation-sep1034-client-defaults":
		return runElicitationDefaults, true
	case "sse-retry":
		return runSSERetry, true
	case "json-schema-2020-12-preservation":
		return runJSONSchemaPreservation, true
	case "json-schema-ref-no-deref":
		return runListToolsOnly, true
	case "http-standard-headers", "http-custom-headers", "http-invalid-tool-headers":
		// SEP-2243 (revision 2026-07-28): the checks look at the Mcp-Method,
		// Mcp-Name and Mcp-Param-* headers the transport sends; the client
		// just has to use every feature the mock offers.
		return runExerciseAll, true
	case "request-metadata":
		return runRequestMetadata, true
	case "sep-2322-client-request-state":
		return runRequestState, true
	case "sep-2640-client-no-prefetch", "sep-2640-client-verify-digest", "sep-2640-client-verify-size", "sep-2640-client-verify-frontmatter":
		return unsupported("the skills extension (SEP-2640) is not implemented"), true
	}
	return nil, false
}

// errUnsupported marks scenarios this client knows but cannot play.
var errUnsupported = errors.New("scenario not supported")

func unsupported(why string) scenarioFunc {
	return func(context.Context, *env) error { return fmt.Errorf("%w: %s", errUnsupported, why) }
}

// connectOptions tune connect.
type connectOptions struct {
	// client holds the handlers and capabilities. Nil means a client with
	// no handlers.
	client *mcp.ClientOptions
	// httpClient sends the HTTP requests (auth scenarios wrap its
	// transport). Nil means a plain client.
	httpClient *http.Client
}

// connect opens a session with the scenario's server over Streamable HTTP.
func connect(ctx context.Context, e *env, o *connectOptions) (*mcp.ClientSession, error) {
	if o == nil {
		o = &connectOptions{}
	}
	var copts mcp.ClientOptions
	if o.client != nil {
		copts = *o.client
	}
	if copts.Logger == nil {
		copts.Logger = e.logger
	}
	if copts.ProtocolVersion == "" && e.protocolVersion != "" {
		if mcp.IsSupportedProtocolVersion(e.protocolVersion) || mcp.IsModernProtocolVersion(e.protocolVersion) {
			// A modern version makes the client dual-era: server/discover
			// first, initialize only if the server turns out legacy.
			copts.ProtocolVersion = e.protocolVersion
		} else {
			// Offer our newest version and let the server negotiate, as
			// any client does.
			e.logger.Warn("the suite asks for a protocol version this client does not speak; offering the latest it does",
				"asked", e.protocolVersion, "offered", mcp.LatestProtocolVersion)
		}
	}
	hc := o.httpClient
	if hc == nil {
		hc = &http.Client{}
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "mcpgate-everything-client", Version: "1.0.0"}, &copts)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:   e.serverURL,
		HTTPClient: hc,
		Logger:     copts.Logger,
	}, nil)
	if err != nil {
		return nil, err
	}
	e.logger.Info("connected", "protocolVersion", cs.ProtocolVersion(), "session", cs.ID(),
		"server", cs.InitializeResult().ServerInfo.Name)
	return cs, nil
}

// closeSession ends the session, logging (not failing on) errors: the
// scenario has already done its work.
func closeSession(e *env, cs *mcp.ClientSession) {
	if err := cs.Close(); err != nil {
		e.logger.Warn("closing the session", "error", err)
	}
}

// listAllTools returns every tool, following pagination.
func listAllTools(ctx context.Context, cs *mcp.ClientSession) ([]*mcp.Tool, error) {
	var tools []*mcp.Tool
	for t, err := range cs.Tools(ctx) {
		if err != nil {
			return nil, fmt.Errorf("tools/list: %w", err)
		}
		tools = append(tools, t)
	}
	return tools, nil
}

func findTool(tools []*mcp.Tool, name string) *mcp.Tool {
	for _, t := range tools {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// callTool calls a tool and turns a tool error result into an error.
func callTool(ctx context.Context, e *env, cs *mcp.ClientSession, name string, args jsontext.Value) (*mcp.CallToolResult, error) {
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		return nil, fmt.Errorf("tools/call %s: %w", name, err)
	}
	e.logger.Info("tool result", "tool", name, "text", resultText(res), "isError", res.IsError)
	if res.IsError {
		return res, fmt.Errorf("tools/call %s: the tool failed: %s", name, resultText(res))
	}
	return res, nil
}

// resultText joins the text blocks of a tool result.
func resultText(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// runInitialize connects (initialize + initialized), lists the tools and
// disconnects.
func runInitialize(ctx context.Context, e *env) error {
	cs, err := connect(ctx, e, nil)
	if err != nil {
		return err
	}
	defer closeSession(e, cs)
	tools, err := listAllTools(ctx, cs)
	if err != nil {
		return err
	}
	e.logger.Info("listed tools", "count", len(tools))
	return nil
}

// runToolsCall lists the tools and calls add_numbers with two numbers.
func runToolsCall(ctx context.Context, e *env) error {
	cs, err := connect(ctx, e, nil)
	if err != nil {
		return err
	}
	defer closeSession(e, cs)
	tools, err := listAllTools(ctx, cs)
	if err != nil {
		return err
	}
	const name = "add_numbers"
	if findTool(tools, name) == nil {
		return fmt.Errorf("the server does not offer tool %s (tools: %s)", name, toolNames(tools))
	}
	_, err = callTool(ctx, e, cs, name, jsontext.Value(`{"a":5,"b":3}`))
	return err
}

func toolNames(tools []*mcp.Tool) string {
	names := make([]string, len(tools))
	for i, t := range tools {
		names[i] = t.Name
	}
	return strings.Join(names, ", ")
}

// runElicitationDefaults calls test_client_elicitation_defaults. The
// elicitation handler accepts with no content at all: the mcp package must
// fill every field from the schema's defaults (SEP-1034).
func runElicitationDefaults(ctx context.Context, e *env) error {
	cs, err := connect(ctx, e, &connectOptions{client: &mcp.ClientOptions{
		ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			e.logger.Info("elicitation request", "message", req.Params.Message, "fields", len(requestedFields(req.Params)))
			return &mcp.ElicitResult{Action: mcp.ElicitActionAccept}, nil
		},
	}})
	if err != nil {
		return err
	}
	defer closeSession(e, cs)
	tools, err := listAllTools(ctx, cs)
	if err != nil {
		return err
	}
	const name = "test_client_elicitation_defaults"
	if findTool(tools, name) == nil {
		return fmt.Errorf("the server does not offer tool %s (tools: %s)", name, toolNames(tools))
	}
	_, err = callTool(ctx, e, cs, name, jsontext.Value(`{}`))
	return err
}

func requestedFields(p *mcp.ElicitParams) []string {
	if p.RequestedSchema == nil {
		return nil
	}
	names := make([]string, 0, len(p.RequestedSchema.Properties))
	for n := range p.RequestedSchema.Properties {
		names = append(names, n)
	}
	return names
}

// runSSERetry calls test_reconnection, whose response stream the server
// closes after a priming event; the transport must reconnect with GET and
// Last-Event-ID after the retry delay and get the result there.
func runSSERetry(ctx context.Context, e *env) error {
	cs, err := connect(ctx, e, nil)
	if err != nil {
		return err
	}
	defer closeSession(e, cs)
	tools, err := listAllTools(ctx, cs)
	if err != nil {
		return err
	}
	const name = "test_reconnection"
	if findTool(tools, name) == nil {
		return fmt.Errorf("the server does not offer tool %s (tools: %s)", name, toolNames(tools))
	}
	_, err = callTool(ctx, e, cs, name, jsontext.Value(`{}`))
	return err
}

// runJSONSchemaPreservation lists the tools and sends the inputSchema of
// json_schema_2020_12_tool, as the mcp package holds it, back through
// json_schema_echo: every JSON Schema 2020-12 keyword must survive.
func runJSONSchemaPreservation(ctx context.Context, e *env) error {
	cs, err := connect(ctx, e, nil)
	if err != nil {
		return err
	}
	defer closeSession(e, cs)
	tools, err := listAllTools(ctx, cs)
	if err != nil {
		return err
	}
	focal := findTool(tools, "json_schema_2020_12_tool")
	if focal == nil {
		return fmt.Errorf("the server does not offer tool json_schema_2020_12_tool (tools: %s)", toolNames(tools))
	}
	args, err := json.Marshal(struct {
		Schema jsontext.Value `json:"schema"`
	}{focal.InputSchema})
	if err != nil {
		return fmt.Errorf("encoding the echo arguments: %w", err)
	}
	_, err = callTool(ctx, e, cs, "json_schema_echo", args)
	return err
}

// runListToolsOnly connects and lists the tools (json-schema-ref-no-deref:
// the client must not fetch the network $ref in a tool's schema).
func runListToolsOnly(ctx context.Context, e *env) error {
	cs, err := connect(ctx, e, nil)
	if err != nil {
		return err
	}
	defer closeSession(e, cs)
	tools, err := listAllTools(ctx, cs)
	if err != nil {
		return err
	}
	e.logger.Info("listed tools", "tools", toolNames(tools))
	return nil
}

// runExerciseAll uses every tool, resource and prompt the server offers
// once. Tools are called with arguments made from their schema's required
// string properties. Failures of individual items are logged, not fatal:
// the scenarios that use it check the requests, not the answers.
func runExerciseAll(ctx context.Context, e *env) error {
	cs, err := connect(ctx, e, nil)
	if err != nil {
		return err
	}
	defer closeSession(e, cs)
	caps := cs.InitializeResult().Capabilities
	if caps.Tools != nil {
		tools, err := listAllTools(ctx, cs)
		if err != nil {
			return err
		}
		calls := contextToolCalls(e)
		if len(calls) == 0 {
			for _, t := range tools {
				calls = append(calls, toolCall{Name: t.Name, Arguments: sampleArguments(t.InputSchema)})
			}
		}
		for _, c := range calls {
			if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: c.Name, Arguments: c.Arguments}); err != nil {
				e.logger.Warn("tools/call failed", "tool", c.Name, "error", err)
			}
		}
	}
	if caps.Resources != nil {
		for r, err := range cs.Resources(ctx) {
			if err != nil {
				return fmt.Errorf("resources/list: %w", err)
			}
			if _, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: r.URI}); err != nil {
				e.logger.Warn("resources/read failed", "uri", r.URI, "error", err)
			}
		}
	}
	if caps.Prompts != nil {
		for p, err := range cs.Prompts(ctx) {
			if err != nil {
				return fmt.Errorf("prompts/list: %w", err)
			}
			args := map[string]string{}
			for _, a := range p.Arguments {
				args[a.Name] = "test"
			}
			if _, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: p.Name, Arguments: args}); err != nil {
				e.logger.Warn("prompts/get failed", "prompt", p.Name, "error", err)
			}
		}
	}
	return nil
}

// sampleArguments returns an arguments object with a placeholder value for
// each property of an object schema, chosen by the property's type.
func sampleArguments(schema jsontext.Value) jsontext.Value {
	var s struct {
		Properties map[string]struct {
			Type any `json:"type"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(schema, &s, json.RejectUnknownMembers(false)); err != nil || len(s.Properties) == 0 {
		return jsontext.Value(`{}`)
	}
	args := make(map[string]any, len(s.Properties))
	for name, p := range s.Properties {
		switch p.Type {
		case "number", "integer":
			args[name] = 1
		case "boolean":
			args[name] = true
		case "array":
			args[name] = []any{}
		case "object":
			args[name] = map[string]any{}
		default:
			args[name] = "test"
		}
	}
	b, err := json.Marshal(args, json.Deterministic(true))
	if err != nil {
		return jsontext.Value(`{}`)
	}
	return b
}

// runRequestMetadata connects with every client capability declared
// (roots, sampling, elicitation), so that the per-request _meta envelope
// carries them, and lists the tools. The mock refuses the first request
// with -32022: the client retries with a version from data.supported.
func runRequestMetadata(ctx context.Context, e *env) error {
	cs, err := connect(ctx, e, &connectOptions{client: &mcp.ClientOptions{
		CreateMessageHandler: func(context.Context, *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return nil, errors.New("no model here")
		},
		ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: mcp.ElicitActionDecline}, nil
		},
	}})
	if err != nil {
		return err
	}
	defer closeSession(e, cs)
	tools, err := listAllTools(ctx, cs)
	if err != nil {
		return err
	}
	e.logger.Info("listed tools", "tools", toolNames(tools))
	return nil
}

// runRequestState calls every tool of the MRTR mock once, one after the
// other. Its tools answer input_required (with or without requestState)
// with an elicitation, which the handler accepts with confirmed=true; the
// mcp package retries with inputResponses and the state echoed.
func runRequestState(ctx context.Context, e *env) error {
	cs, err := connect(ctx, e, &connectOptions{client: &mcp.ClientOptions{
		ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			e.logger.Info("elicitation request", "message", req.Params.Message)
			return &mcp.ElicitResult{Action: mcp.ElicitActionAccept, Content: map[string]any{"confirmed": true}}, nil
		},
	}})
	if err != nil {
		return err
	}
	defer closeSession(e, cs)
	tools, err := listAllTools(ctx, cs)
	if err != nil {
		return err
	}
	for _, t := range tools {
		if _, err := callTool(ctx, e, cs, t.Name, jsontext.Value(`{}`)); err != nil {
			return err
		}
	}
	return nil
}

// toolCall is one call the scenario's context asks for.
type toolCall struct {
	Name      string         `json:"name"`
	Arguments jsontext.Value `json:"arguments"`
}

// contextToolCalls returns the tool calls MCP_CONFORMANCE_CONTEXT lists
// under toolCalls (http-custom-headers gives the exact arguments to send),
// or nil.
func contextToolCalls(e *env) []toolCall {
	if e.context == "" {
		return nil
	}
	var c struct {
		ToolCalls []toolCall `json:"toolCalls"`
	}
	if err := json.Unmarshal([]byte(e.context), &c, json.RejectUnknownMembers(false)); err != nil {
		e.logger.Warn("ignoring a malformed scenario context", "error", err)
		return nil
	}
	return c.ToolCalls
}
