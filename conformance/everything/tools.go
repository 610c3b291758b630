package everything

import (
	"context"
	"fmt"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/mcp"
)

// Input schemas.
const (
	noArgsSchema = `{"type":"object","properties":{}}`

	samplingSchema = `{"type":"object","properties":{"prompt":{"type":"string","description":"The prompt to send to the client's LLM"}},"required":["prompt"]}`

	elicitationSchema = `{"type":"object","properties":{"message":{"type":"string","description":"The message to show the user"}},"required":["message"]}`

	// jsonSchema202012 is the inputSchema of json_schema_2020_12_tool. It
	// must reach clients verbatim: the suite checks that every 2020-12
	// keyword survives.
	jsonSchema202012 = `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","$defs":{"address":{"$anchor":"addressDef","type":"object","properties":{"street":{"type":"string"},"city":{"type":"string"}}}},"properties":{"name":{"type":"string"},"address":{"$ref":"#/$defs/address"},"contactMethod":{"type":"string","enum":["phone","email"]},"phone":{"type":"string"},"email":{"type":"string"}},"allOf":[{"anyOf":[{"required":["phone"]},{"required":["email"]}]}],"if":{"properties":{"contactMethod":{"const":"phone"}},"required":["contactMethod"]},"then":{"required":["phone"]},"else":{"required":["email"]},"additionalProperties":false}`
)

// Texts the suite checks in tool results.
const (
	// SimpleText is the text test_simple_text returns.
	SimpleText = "This is a simple text response for testing."
	// ReconnectionText is the text test_reconnection returns once the
	// client has resumed the stream the tool closed.
	ReconnectionText = "Reconnection test completed successfully"
)

// Other texts the suite (or the reference fixture) uses.
const (
	embeddedText      = "This is an embedded resource content."
	errorText         = "This tool intentionally returns an error for testing"
	mixedText         = "Multiple content types test:"
	mixedResourceJSON = `{"test":"data","value":123}`
)

// Pacing of the tools that take time.
const (
	logStepDelay        = 50 * time.Millisecond
	progressStepDelay   = 50 * time.Millisecond
	reconnectAfterClose = 100 * time.Millisecond
)

func (f *Server) addTools() {
	s := f.server
	tool := func(name, desc, schema string) *mcp.Tool {
		return &mcp.Tool{Name: name, Description: desc, InputSchema: jsontext.Value(schema)}
	}
	s.AddTool(tool("test_simple_text", "Returns a simple text response", noArgsSchema), f.simpleText)
	s.AddTool(tool("test_image_content", "Returns a PNG image", noArgsSchema), f.imageContent)
	s.AddTool(tool("test_audio_content", "Returns a WAV audio clip", noArgsSchema), f.audioContent)
	s.AddTool(tool("test_embedded_resource", "Returns an embedded text resource", noArgsSchema), f.embeddedResource)
	s.AddTool(tool("test_multiple_content_types", "Returns text, an image and an embedded resource", noArgsSchema), f.multipleContentTypes)
	s.AddTool(tool("test_tool_with_logging", "Sends log notifications while it runs", noArgsSchema), f.toolWithLogging)
	s.AddTool(tool("test_error_handling", "Always fails with a tool error", noArgsSchema), f.errorHandling)
	s.AddTool(tool("test_tool_with_progress", "Reports progress while it runs", noArgsSchema), f.toolWithProgress)
	s.AddTool(tool("test_sampling", "Asks the client's LLM to answer a prompt", samplingSchema), f.sampling)
	s.AddTool(tool("test_elicitation", "Asks the user for a username and an email address", elicitationSchema), f.elicitation)
	s.AddTool(tool("test_elicitation_sep1034_defaults", "Elicits a form whose fields have defaults (SEP-1034)", noArgsSchema), f.elicitationDefaults)
	s.AddTool(tool("test_elicitation_sep1330_enums", "Elicits a form with every enum variant (SEP-1330)", noArgsSchema), f.elicitationEnums)
	s.AddTool(tool("test_reconnection", "Closes its SSE stream mid-call; the result arrives after the client reconnects (SEP-1699)", noArgsSchema), f.reconnection)
	s.AddTool(tool("json_schema_2020_12_tool", "Has an input schema that uses JSON Schema 2020-12 keywords", jsonSchema202012), f.jsonSchema202012)
}

// addDynamicTool adds test_dynamic_tool (sessions get tools/list_changed).
func (f *Server) addDynamicTool() {
	f.server.AddTool(&mcp.Tool{
		Name:        "test_dynamic_tool",
		Description: "A tool added after start-up",
		InputSchema: jsontext.Value(noArgsSchema),
	}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return textResult("This tool was added dynamically"), nil
	})
}

func textResult(text string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}
}

func (f *Server) simpleText(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return textResult(SimpleText), nil
}

func (f *Server) imageContent(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.ImageContent{Data: f.png, MIMEType: "image/png"}}}, nil
}

func (f *Server) audioContent(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.AudioContent{Data: f.wav, MIMEType: "audio/wav"}}}, nil
}

func (f *Server) embeddedResource(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.EmbeddedResource{Resource: &mcp.ResourceContents{
		URI:      "test://embedded-resource",
		MIMEType: "text/plain",
		Text:     embeddedText,
	}}}}, nil
}

func (f *Server) multipleContentTypes(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return &mcp.CallToolResult{Content: []mcp.Content{
		&mcp.TextContent{Text: mixedText},
		&mcp.ImageContent{Data: f.png, MIMEType: "image/png"},
		&mcp.EmbeddedResource{Resource: &mcp.ResourceContents{
			URI:      "test://mixed-content-resource",
			MIMEType: "application/json",
			Text:     mixedResourceJSON,
		}},
	}}, nil
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// toolWithLogging sends three info messages, 50 ms apart, on the request's
// stream (it logs with the request's context), before its result.
func (f *Server) toolWithLogging(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	steps := []string{"Tool execution started", "Tool processing data", "Tool execution completed"}
	for i, msg := range steps {
		if i > 0 {
			if err := sleep(ctx, logStepDelay); err != nil {
				return nil, err
			}
		}
		data, err := json.Marshal(msg)
		if err != nil {
			return nil, err
		}
		if err := req.Session.Log(ctx, &mcp.LoggingMessageParams{
			Level:  mcp.LoggingLevelInfo,
			Logger: "test_tool_with_logging",
			Data:   data,
		}); err != nil {
			return nil, fmt.Errorf("sending log message: %w", err)
		}
	}
	return textResult("Tool with logging executed successfully"), nil
}

func (f *Server) errorHandling(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	r := textResult(errorText)
	r.IsError = true
	return r, nil
}

// toolWithProgress reports 0, 50 and 100 of 100, 50 ms apart, echoing the
// caller's progress token; the notifications precede the result on the
// request's stream.
func (f *Server) toolWithProgress(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	const total = 100
	for i, p := range []float64{0, 50, 100} {
		if i > 0 {
			if err := sleep(ctx, progressStepDelay); err != nil {
				return nil, err
			}
		}
		if err := req.Progress(ctx, p, total, fmt.Sprintf("Completed step %d of 3", i+1)); err != nil {
			return nil, fmt.Errorf("sending progress: %w", err)
		}
	}
	return textResult("Tool with progress executed successfully"), nil
}

// decodeArgs decodes a tool's arguments (already validated against its
// input schema) into v.
func decodeArgs(req *mcp.CallToolRequest, v any) error {
	if len(req.Params.Arguments) == 0 {
		return nil
	}
	if err := json.Unmarshal(req.Params.Arguments, v); err != nil {
		return fmt.Errorf("decoding arguments: %w", err)
	}
	return nil
}

// sampling asks the client to sample a reply to the "prompt" argument.
func (f *Server) sampling(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	var args struct {
		Prompt string `json:"prompt"`
	}
	if err := decodeArgs(req, &args); err != nil {
		return nil, err
	}
	res, err := req.Session.CreateMessage(ctx, &mcp.CreateMessageParams{
		Messages: []*mcp.SamplingMessage{{
			Role:    mcp.RoleUser,
			Content: []mcp.Content{&mcp.TextContent{Text: args.Prompt}},
		}},
		MaxTokens: 100,
	})
	if err != nil {
		return nil, fmt.Errorf("sampling failed: %w", err)
	}
	text := ""
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			text = tc.Text
			break
		}
	}
	if text == "" {
		return nil, fmt.Errorf("sampling returned no text content (%d blocks)", len(res.Content))
	}
	return textResult("LLM response: " + text), nil
}

// describeElicitResult renders an elicitation result as
// "action=<action>, content=<json>".
func describeElicitResult(res *mcp.ElicitResult) (string, error) {
	content := "{}"
	if res.Content != nil {
		b, err := json.Marshal(res.Content, json.Deterministic(true))
		if err != nil {
			return "", fmt.Errorf("encoding elicitation content: %w", err)
		}
		content = string(b)
	}
	return fmt.Sprintf("action=%s, content=%s", res.Action, content), nil
}

// elicitation asks the user for a username and an email address.
func (f *Server) elicitation(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	var args struct {
		Message string `json:"message"`
	}
	if err := decodeArgs(req, &args); err != nil {
		return nil, err
	}
	res, err := req.Session.Elicit(ctx, &mcp.ElicitParams{
		Message: args.Message,
		RequestedSchema: &mcp.ElicitationSchema{
			Type: "object",
			Properties: map[string]mcp.PrimitiveSchemaDefinition{
				"username": {Type: "string", Description: "User's response"},
				"email":    {Type: "string", Description: "User's email address"},
			},
			Required: []string{"username", "email"},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("elicitation failed: %w", err)
	}
	desc, err := describeElicitResult(res)
	if err != nil {
		return nil, err
	}
	return textResult("User response: " + desc), nil
}

// raw returns v as a JSON value; v is a constant in this file, so
// marshalling cannot fail.
func raw(v any) jsontext.Value {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// elicitationDefaults elicits a form whose fields all carry defaults, one of
// each primitive type (SEP-1034).
func (f *Server) elicitationDefaults(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	res, err := req.Session.Elicit(ctx, &mcp.ElicitParams{
		Message: "Test client default value handling - please accept with defaults",
		RequestedSchema: &mcp.ElicitationSchema{
			Type: "object",
			Properties: map[string]mcp.PrimitiveSchemaDefinition{
				"name":     {Type: "string", Description: "User name", Default: raw("John Doe")},
				"age":      {Type: "integer", Description: "User age", Default: raw(30)},
				"score":    {Type: "number", Description: "User score", Default: raw(95.5)},
				"status":   {Type: "string", Description: "User status", Enum: []string{"active", "inactive", "pending"}, Default: raw("active")},
				"verified": {Type: "boolean", Description: "Verification status", Default: raw(true)},
			},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("elicitation failed: %w", err)
	}
	desc, err := describeElicitResult(res)
	if err != nil {
		return nil, err
	}
	return textResult("Elicitation completed: " + desc), nil
}

// elicitationEnums elicits a form with the five enum variants of SEP-1330.
func (f *Server) elicitationEnums(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	one, three := 1, 3
	res, err := req.Session.Elicit(ctx, &mcp.ElicitParams{
		Message: "Test all enum schema variants",
		RequestedSchema: &mcp.ElicitationSchema{
			Type: "object",
			Properties: map[string]mcp.PrimitiveSchemaDefinition{
				"untitledSingle": {
					Type:        "string",
					Description: "Untitled single-select enum",
					Enum:        []string{"option1", "option2", "option3"},
				},
				"titledSingle": {
					Type:        "string",
					Description: "Titled single-select enum",
					OneOf: []mcp.EnumOption{
						{Const: "value1", Title: "First Option"},
						{Const: "value2", Title: "Second Option"},
						{Const: "value3", Title: "Third Option"},
					},
				},
				"legacyEnum": {
					Type:        "string",
					Description: "Legacy titled enum (enumNames)",
					Enum:        []string{"opt1", "opt2", "opt3"},
					EnumNames:   []string{"Option One", "Option Two", "Option Three"},
				},
				"untitledMulti": {
					Type:        "array",
					Description: "Untitled multi-select enum",
					MinItems:    &one,
					MaxItems:    &three,
					Items:       &mcp.EnumItemsSchema{Type: "string", Enum: []string{"option1", "option2", "option3"}},
				},
				"titledMulti": {
					Type:        "array",
					Description: "Titled multi-select enum",
					MinItems:    &one,
					MaxItems:    &three,
					Items: &mcp.EnumItemsSchema{AnyOf: []mcp.EnumOption{
						{Const: "value1", Title: "First Choice"},
						{Const: "value2", Title: "Second Choice"},
						{Const: "value3", Title: "Third Choice"},
					}},
				},
			},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("elicitation failed: %w", err)
	}
	desc, err := describeElicitResult(res)
	if err != nil {
		return nil, err
	}
	return textResult("Elicitation completed: " + desc), nil
}

// reconnection closes the SSE stream of its request (the client then
// reconnects with Last-Event-ID) and answers a moment later, so the result
// reaches the client through the resumed stream (SEP-1699).
func (f *Server) reconnection(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if !mcp.CloseRequestStream(ctx) {
		f.logger.Debug("test_reconnection: the request has no SSE stream to close")
	}
	if err := sleep(ctx, reconnectAfterClose); err != nil {
		return nil, err
	}
	return textResult(ReconnectionText), nil
}

// jsonSchema202012 is json_schema_2020_12_tool's handler: it echoes the
// arguments, which the server has validated against the 2020-12 schema.
func (f *Server) jsonSchema202012(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	args := "{}"
	if len(req.Params.Arguments) > 0 {
		args = string(req.Params.Arguments)
	}
	return textResult("Received valid arguments: " + args), nil
}
