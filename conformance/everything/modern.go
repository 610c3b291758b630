package everything

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/mcp"
)

// The fixtures of the 2026-07-28 scenarios: multi round-trip requests
// (input-required-result-*), the stateless diagnostics (server-stateless)
// and a tool with an x-mcp-header parameter (http-custom-header-*). Every
// tool that asks for input uses ServerSession.RequestInput and friends, so
// that it also works in a legacy session, where the same calls become
// server-to-client requests.

// headerParamSchema is the input schema of test_header_param: its region is
// mirrored into the Mcp-Param-Region header.
const headerParamSchema = `{"type":"object","properties":{"region":{"type":"string","description":"Where to run","x-mcp-header":"Region"},"query":{"type":"string"}},"required":["region"]}`

// elicitForm returns form-mode elicitation params with one required field.
func elicitForm(message, field, typ string) *mcp.ElicitParams {
	return &mcp.ElicitParams{
		Message: message,
		RequestedSchema: &mcp.ElicitationSchema{
			Type:       "object",
			Properties: map[string]mcp.PrimitiveSchemaDefinition{field: {Type: typ}},
			Required:   []string{field},
		},
	}
}

// ask returns params for a one-message sampling request.
func ask(text string, maxTokens int64) *mcp.CreateMessageParams {
	return &mcp.CreateMessageParams{
		Messages:  []*mcp.SamplingMessage{{Role: mcp.RoleUser, Content: []mcp.Content{&mcp.TextContent{Text: text}}}},
		MaxTokens: maxTokens,
	}
}

// contentString returns field of an elicitation answer as text.
func contentString(r *mcp.ElicitResult, field string) string {
	if r == nil || r.Content == nil {
		return ""
	}
	return fmt.Sprint(r.Content[field])
}

// samplingText returns the text of a sampling answer.
func samplingText(r *mcp.CreateMessageResult) string {
	var b strings.Builder
	for _, c := range r.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			b.WriteString(t.Text)
		}
	}
	return b.String()
}

func (f *Server) addModernTools() {
	s := f.server
	tool := func(name, desc, schema string) *mcp.Tool {
		return &mcp.Tool{Name: name, Description: desc, InputSchema: jsontext.Value(schema)}
	}
	s.AddTool(tool("test_input_required_result_elicitation", "Asks the user for their name (MRTR)", noArgsSchema), f.mrtrElicitation)
	s.AddTool(tool("test_input_required_result_sampling", "Asks the client's LLM a question (MRTR)", noArgsSchema), f.mrtrSampling)
	s.AddTool(tool("test_input_required_result_list_roots", "Asks the client for its roots (MRTR)", noArgsSchema), f.mrtrListRoots)
	s.AddTool(tool("test_input_required_result_request_state", "Asks for a confirmation and checks the request state (MRTR)", noArgsSchema), f.mrtrRequestState)
	s.AddTool(tool("test_input_required_result_multiple_inputs", "Asks for an elicitation, a sampling and the roots at once (MRTR)", noArgsSchema), f.mrtrMultiple)
	s.AddTool(tool("test_input_required_result_multi_round", "Asks two questions, one round each (MRTR)", noArgsSchema), f.mrtrMultiRound)
	s.AddTool(tool("test_input_required_result_tampered_state", "Asks for a confirmation under an integrity-protected state (MRTR)", noArgsSchema), f.mrtrRequestState)
	s.AddTool(tool("test_input_required_result_capabilities", "Asks only for the input kinds the client declared (MRTR)", noArgsSchema), f.mrtrCapabilities)
	s.AddTool(tool("test_missing_capability", "Needs the client's sampling capability", noArgsSchema), f.missingCapability)
	s.AddTool(tool("test_streaming_elicitation", "Asks the user for input, on the request's own stream", noArgsSchema), f.mrtrElicitation)
	s.AddTool(tool("test_logging_tool", "Sends log messages (only to clients that asked for a log level)", noArgsSchema), f.toolWithLogging)
	s.AddTool(tool("test_trigger_tool_change", "Changes the tool list (list_changed on subscriptions/listen)", noArgsSchema), f.triggerToolChange)
	s.AddTool(tool("test_trigger_prompt_change", "Changes the prompt list (list_changed on subscriptions/listen)", noArgsSchema), f.triggerPromptChange)
	s.AddTool(tool("test_header_param", "Echoes its region, which travels in the Mcp-Param-Region header too", headerParamSchema), f.headerParam)

	s.AddPrompt(&mcp.Prompt{
		Name:        "test_input_required_result_prompt",
		Description: "A prompt that asks the user for context first (MRTR)",
	}, f.mrtrPrompt)
}

func (f *Server) mrtrElicitation(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	r, err := req.Session.ElicitInput(ctx, "user_name", elicitForm("What is your name?", "name", "string"))
	if err != nil {
		return nil, err
	}
	return textResult("Hello, " + contentString(r, "name") + "!"), nil
}

func (f *Server) mrtrSampling(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	r, err := req.Session.SampleInput(ctx, "capital_question", ask("What is the capital of France?", 100))
	if err != nil {
		return nil, err
	}
	return textResult("The model said: " + samplingText(r)), nil
}

func (f *Server) mrtrListRoots(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	r, err := req.Session.ListRootsInput(ctx, "client_roots")
	if err != nil {
		return nil, err
	}
	uris := make([]string, len(r.Roots))
	for i, root := range r.Roots {
		uris[i] = root.URI
	}
	return textResult(fmt.Sprintf("The client has %d root(s): %s", len(uris), strings.Join(uris, ", "))), nil
}

func (f *Server) mrtrRequestState(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	r, err := req.Session.ElicitInput(ctx, "confirm", elicitForm("Please confirm", "ok", "boolean"))
	if err != nil {
		return nil, err
	}
	if !mcp.HasVerifiedRequestState(ctx) && mcp.RequestMetaFromContext(ctx) != nil {
		return textResult("confirmed without a request state: " + string(r.Action)), nil
	}
	return textResult("state-ok: confirmation " + string(r.Action)), nil
}

func (f *Server) mrtrMultiple(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	got, err := req.Session.RequestInput(ctx, map[string]*mcp.InputRequest{
		"user_name":    {Method: mcp.MethodElicitationCreate, Params: elicitForm("What is your name?", "name", "string")},
		"greeting":     {Method: mcp.MethodSamplingCreateMessage, Params: ask("Generate a greeting", 50)},
		"client_roots": {Method: mcp.MethodRootsList, Params: &mcp.ListRootsParams{}},
	})
	if err != nil {
		return nil, err
	}
	return textResult(fmt.Sprintf("Received %d answers", len(got))), nil
}

func (f *Server) mrtrMultiRound(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	name, err := req.Session.ElicitInput(ctx, "step1", elicitForm("Step 1: What is your name?", "name", "string"))
	if err != nil {
		return nil, err
	}
	color, err := req.Session.ElicitInput(ctx, "step2", elicitForm("Step 2: What is your favorite color?", "color", "string"))
	if err != nil {
		return nil, err
	}
	return textResult(fmt.Sprintf("%s likes %s", contentString(name, "name"), contentString(color, "color"))), nil
}

// mrtrCapabilities asks only for what the request's client declared.
func (f *Server) mrtrCapabilities(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	caps := req.Session.ClientCapabilitiesFor(ctx)
	reqs := map[string]*mcp.InputRequest{}
	if caps.Elicitation != nil {
		reqs["user_name"] = &mcp.InputRequest{Method: mcp.MethodElicitationCreate, Params: elicitForm("What is your name?", "name", "string")}
	}
	if caps.Sampling != nil {
		reqs["greeting"] = &mcp.InputRequest{Method: mcp.MethodSamplingCreateMessage, Params: ask("Generate a greeting", 50)}
	}
	if caps.Roots != nil {
		reqs["client_roots"] = &mcp.InputRequest{Method: mcp.MethodRootsList, Params: &mcp.ListRootsParams{}}
	}
	if len(reqs) == 0 {
		return textResult("The client declared no input capability"), nil
	}
	got, err := req.Session.RequestInput(ctx, reqs)
	if err != nil {
		return nil, err
	}
	return textResult(fmt.Sprintf("Received %d answers", len(got))), nil
}

// missingCapability needs sampling: without the capability the request
// fails with MissingRequiredClientCapability.
func (f *Server) missingCapability(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	r, err := req.Session.SampleInput(ctx, "sample", ask("Say hello", 20))
	if err != nil {
		return nil, err
	}
	return textResult("The model said: " + samplingText(r)), nil
}

func (f *Server) triggerToolChange(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	n := f.changes.Add(1)
	name := fmt.Sprintf("test_triggered_tool_%d", n)
	f.server.AddTool(&mcp.Tool{Name: name, Description: "Added by test_trigger_tool_change", InputSchema: jsontext.Value(noArgsSchema)},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return textResult("triggered"), nil
		})
	f.server.RemoveTools(name)
	return textResult("The tool list changed"), nil
}

func (f *Server) triggerPromptChange(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	n := f.changes.Add(1)
	name := fmt.Sprintf("test_triggered_prompt_%d", n)
	f.server.AddPrompt(&mcp.Prompt{Name: name, Description: "Added by test_trigger_prompt_change"},
		func(context.Context, *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return messages(userText("triggered")), nil
		})
	f.server.RemovePrompts(name)
	return textResult("The prompt list changed"), nil
}

func (f *Server) headerParam(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	var args struct {
		Region string `json:"region"`
	}
	if err := json.Unmarshal(req.Params.Arguments, &args); err != nil {
		return nil, errors.New("arguments must carry a string region")
	}
	return textResult("region: " + args.Region), nil
}

func (f *Server) mrtrPrompt(ctx context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	r, err := req.Session.ElicitInput(ctx, "user_context", elicitForm("What context should the prompt use?", "context", "string"))
	if err != nil {
		return nil, err
	}
	return messages(userText("Use this context: " + contentString(r, "context"))), nil
}

// The fixtures of the tasks-* scenarios (the io.modelcontextprotocol/tasks
// extension). A task-supporting tool calls StartTask when it becomes long
// running; in a legacy session (or for a client without the extension)
// StartTask does nothing and the call completes synchronously.

// Schemas of the task fixtures.
const (
	greetSchema       = `{"type":"object","properties":{"name":{"type":"string"}}}`
	slowComputeSchema = `{"type":"object","properties":{"seconds":{"type":"number","minimum":0,"maximum":300},"label":{"type":"string"}}}`
	confirmSchema     = `{"type":"object","properties":{"filename":{"type":"string"}}}`
)

// failingJobDelay is how long failing_job runs before it fails.
const failingJobDelay = 500 * time.Millisecond

func (f *Server) addTaskTools() {
	s := f.server
	taskTool := func(name, desc, schema string, support mcp.TaskSupport) *mcp.Tool {
		return &mcp.Tool{Name: name, Description: desc, InputSchema: jsontext.Value(schema), Execution: &mcp.ToolExecution{TaskSupport: support}}
	}
	s.AddTool(&mcp.Tool{Name: "greet", Description: "Greets someone (never a task)", InputSchema: jsontext.Value(greetSchema)}, f.greet)
	s.AddTool(taskTool("slow_compute", "Sleeps for the given seconds, as a task unless seconds is 0", slowComputeSchema, mcp.TaskSupportOptional), f.slowCompute)
	s.AddTool(taskTool("failing_job", "Runs as a task and fails with a tool error", noArgsSchema, mcp.TaskSupportRequired), f.failingJob)
	s.AddTool(taskTool("protocol_error_job", "Runs as a task and fails with a protocol error", noArgsSchema, mcp.TaskSupportOptional), f.protocolErrorJob)
	s.AddTool(taskTool("confirm_delete", "Runs as a task that asks the user to confirm", confirmSchema, mcp.TaskSupportOptional), f.confirmDelete)
	s.AddTool(taskTool("multi_input", "Runs as a task that asks two questions at once", noArgsSchema, mcp.TaskSupportOptional), f.multiInput)
	s.AddTool(taskTool("test_tool_with_task", "Asks for a name (MRTR), then continues as a task", noArgsSchema, mcp.TaskSupportRequired), f.toolWithTask)
}

func (f *Server) greet(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	var args struct {
		Name string `json:"name"`
	}
	if len(req.Params.Arguments) > 0 {
		if err := json.Unmarshal(req.Params.Arguments, &args); err != nil {
			return nil, err
		}
	}
	if args.Name == "" {
		args.Name = "World"
	}
	return textResult("Hello, " + args.Name + "!"), nil
}

func (f *Server) slowCompute(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	var args struct {
		Seconds float64 `json:"seconds"`
		Label   string  `json:"label"`
	}
	if len(req.Params.Arguments) > 0 {
		if err := json.Unmarshal(req.Params.Arguments, &args); err != nil {
			return nil, err
		}
	}
	if args.Seconds > 0 {
		if err := req.Session.StartTask(ctx); err != nil {
			return nil, err
		}
		if err := sleep(ctx, time.Duration(args.Seconds*float64(time.Second))); err != nil {
			return nil, err
		}
	}
	return textResult(fmt.Sprintf("computed %s after %gs", args.Label, args.Seconds)), nil
}

func (f *Server) failingJob(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if err := req.Session.StartTask(ctx); err != nil {
		return nil, err
	}
	if err := sleep(ctx, failingJobDelay); err != nil {
		return nil, err
	}
	r := textResult("the job failed, as it always does")
	r.IsError = true
	return r, nil
}

func (f *Server) protocolErrorJob(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if err := req.Session.StartTask(ctx); err != nil {
		return nil, err
	}
	panic("protocol_error_job fails on purpose")
}

func (f *Server) confirmDelete(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	var args struct {
		Filename string `json:"filename"`
	}
	if len(req.Params.Arguments) > 0 {
		if err := json.Unmarshal(req.Params.Arguments, &args); err != nil {
			return nil, err
		}
	}
	if err := req.Session.StartTask(ctx); err != nil {
		return nil, err
	}
	r, err := req.Session.ElicitInput(ctx, "confirm", elicitForm("Delete "+args.Filename+"?", "confirm", "boolean"))
	if err != nil {
		return nil, err
	}
	return textResult(fmt.Sprintf("delete %s: %s", args.Filename, r.Action)), nil
}

func (f *Server) multiInput(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if err := req.Session.StartTask(ctx); err != nil {
		return nil, err
	}
	got, err := req.Session.RequestInput(ctx, map[string]*mcp.InputRequest{
		"first":  {Method: mcp.MethodElicitationCreate, Params: elicitForm("First name?", "name", "string")},
		"second": {Method: mcp.MethodElicitationCreate, Params: elicitForm("Confirm?", "confirm", "boolean")},
	})
	if err != nil {
		return nil, err
	}
	return textResult(fmt.Sprintf("received %d answers", len(got))), nil
}

func (f *Server) toolWithTask(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	r, err := req.Session.ElicitInput(ctx, "user_name", elicitForm("What is your name?", "name", "string"))
	if err != nil {
		return nil, err
	}
	if err := req.Session.StartTask(ctx); err != nil {
		return nil, err
	}
	return textResult("Task done for " + contentString(r, "name")), nil
}
