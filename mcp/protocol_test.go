// Copyright 2026 The mcpgate Authors. All rights reserved.

package mcp

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/internal/schematest"
	"github.com/mcpgate/mcpgate/jsonrpc"
)

func ptr[T any](v T) *T { return &v }

// envelope says how a case's value is wrapped in a JSON-RPC message for the
// envelope definitions.
type envelope int

const (
	envNone envelope = iota
	envRequest
	envNotification
	envResult
)

type schemaCase struct {
	name    string
	v       any      // pointer to an example value
	defs    []string // definitions the encoded value must match
	partial bool     // the example need not set every top-level field
	method  string   // for envRequest and envNotification
	env     envelope
	envDefs []string // definitions the wrapped message must match
}

var (
	exMeta    = Meta{"com.example/trace": "abc", "n": 1.5}
	exReqMeta = Meta{"progressToken": "tok-1", "com.example/x": true}
	exIcons   = []Icon{{Src: "https://example.com/icon.png", MIMEType: "image/png", Sizes: []string{"48x48", "any"}, Theme: IconThemeDark}}
	exAnn     = &Annotations{Audience: []Role{RoleUser, RoleAssistant}, Priority: ptr(0.0), LastModified: "2025-01-12T15:00:58Z"}
	exTask    = Task{TaskID: "task-1", Status: TaskStatusWorking, StatusMessage: "running", CreatedAt: "2025-11-25T10:30:00Z", LastUpdatedAt: "2025-11-25T10:31:00Z", TTL: ptr(int64(60000)), PollInterval: 500}
	exImpl    = Implementation{Name: "mcpgate", Title: "MCP Gate", Version: "1.2.3", Description: "gateway", WebsiteURL: "https://example.com", Icons: exIcons}
	// A JSON Schema that uses 2020-12 keywords, with members in an unusual
	// order, to check that it is kept byte for byte (it is compact because
	// encoding normalizes insignificant whitespace).
	exInputSchema = jsontext.Value(`{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","$defs":{"pos":{"$anchor":"p","type":"integer","minimum":1}},` +
		`"properties":{"city":{"type":"string"},"n":{"$ref":"#/$defs/pos"}},"required":["city"],` +
		`"if":{"properties":{"city":{"const":"x"}}},"then":{"required":["n"]},"else":{},"additionalProperties":false}`)
	exOutputSchema = jsontext.Value(`{"type":"object","properties":{"temp":{"type":"number"}},"required":["temp"]}`)
	exTool         = Tool{
		Meta: exMeta, Name: "get_weather", Title: "Weather", Description: "Get the weather",
		InputSchema: exInputSchema, OutputSchema: exOutputSchema,
		Annotations: &ToolAnnotations{Title: "Weather", ReadOnlyHint: ptr(true), DestructiveHint: ptr(false), IdempotentHint: ptr(true), OpenWorldHint: ptr(false)},
		Execution:   &ToolExecution{TaskSupport: TaskSupportOptional},
		Icons:       exIcons,
	}
	exText       = &TextContent{Text: "hello", Annotations: exAnn, Meta: exMeta}
	exImage      = &ImageContent{Data: []byte{0x89, 'P', 'N', 'G'}, MIMEType: "image/png", Annotations: exAnn, Meta: exMeta}
	exAudio      = &AudioContent{Data: []byte("RIFF"), MIMEType: "audio/wav", Annotations: exAnn, Meta: exMeta}
	exLink       = &ResourceLink{URI: "file:///project/main.go", Name: "main.go", Title: "Main", Description: "entry point", MIMEType: "text/x-go", Size: ptr(int64(0)), Icons: exIcons, Annotations: exAnn, Meta: exMeta}
	exTextRes    = &ResourceContents{URI: "file:///a.txt", MIMEType: "text/plain", Text: "abc", Meta: exMeta}
	exBlobRes    = &ResourceContents{URI: "file:///a.bin", MIMEType: "application/octet-stream", Blob: []byte{0, 1, 2, 255}, Meta: exMeta}
	exEmbedded   = &EmbeddedResource{Resource: exTextRes, Annotations: exAnn, Meta: exMeta}
	exToolUse    = &ToolUseContent{ID: "tu-1", Name: "get_weather", Input: jsontext.Value(`{"city":"Paris"}`), Meta: exMeta}
	exToolRes    = &ToolResultContent{ToolUseID: "tu-1", Content: []Content{&TextContent{Text: "18C"}}, StructuredContent: jsontext.Value(`{"temp":18}`), IsError: true, Meta: exMeta}
	exFormElicit = ElicitParams{
		Meta: exReqMeta, Mode: ElicitationModeForm, Message: "Your details",
		RequestedSchema: &ElicitationSchema{
			Schema: "https://json-schema.org/draft/2020-12/schema", Type: "object",
			Properties: map[string]PrimitiveSchemaDefinition{
				"name":  {Type: "string", Title: "Name", Description: "Full name", MinLength: ptr(1), MaxLength: ptr(100), Default: jsontext.Value(`"Ada"`)},
				"email": {Type: "string", Format: "email"},
				"age":   {Type: "integer", Minimum: ptr(0.0), Maximum: ptr(150.0), Default: jsontext.Value(`30`)},
				"score": {Type: "number", Minimum: ptr(-1.5), Default: jsontext.Value(`0.5`)},
				"ok":    {Type: "boolean", Default: jsontext.Value(`true`)},
				"color": {Type: "string", Enum: []string{"red", "green"}, Default: jsontext.Value(`"red"`)},
				"size":  {Type: "string", OneOf: []EnumOption{{Const: "s", Title: "Small"}, {Const: "l", Title: "Large"}}, Default: jsontext.Value(`"s"`)},
				"plan":  {Type: "string", Enum: []string{"free", "pro"}, EnumNames: []string{"Free", "Pro"}, Default: jsontext.Value(`"free"`)},
				"tags":  {Type: "array", Title: "Tags", Items: &EnumItemsSchema{Type: "string", Enum: []string{"a", "b", "c"}}, MinItems: ptr(0), MaxItems: ptr(2), Default: jsontext.Value(`["a"]`)},
				"langs": {Type: "array", Items: &EnumItemsSchema{AnyOf: []EnumOption{{Const: "go", Title: "Go"}, {Const: "ts", Title: "TypeScript"}}}, MinItems: ptr(1), Default: jsontext.Value(`["go","ts"]`)},
			},
			Required: []string{"name", "email"},
		},
		Task: &TaskMetadata{TTL: 30000},
	}
	exURLElicit = ElicitParams{Meta: exReqMeta, Mode: ElicitationModeURL, Message: "Sign in", URL: "https://example.com/connect?x=1", ElicitationID: "el-1", Task: &TaskMetadata{TTL: 1000}}
)

func schemaCases() []schemaCase {
	blocks := []string{"ContentBlock", "SamplingMessageContentBlock"}
	return []schemaCase{
		// Lifecycle.
		{name: "Implementation", v: ptr(exImpl), defs: []string{"Implementation", "BaseMetadata", "Icons"}},
		{name: "Icon", v: ptr(exIcons[0]), defs: []string{"Icon"}},
		{name: "Icons", v: &Icons{Icons: exIcons}, defs: []string{"Icons"}},
		{name: "BaseMetadata", v: &BaseMetadata{Name: "n", Title: "T"}, defs: []string{"BaseMetadata"}},
		{name: "Annotations", v: exAnn, defs: []string{"Annotations"}},
		{name: "ClientCapabilities", v: &ClientCapabilities{
			Experimental: map[string]jsontext.Value{"com.example/feature": jsontext.Value(`{"on":true}`)},
			Roots:        &RootsCapabilities{ListChanged: true},
			Sampling:     &SamplingCapabilities{Context: &SamplingContextCapabilities{}, Tools: &SamplingToolsCapabilities{}},
			Elicitation:  &ElicitationCapabilities{Form: &FormElicitationCapabilities{}, URL: &URLElicitationCapabilities{}},
			Tasks: &ClientTasksCapabilities{List: &TasksListCapabilities{}, Cancel: &TasksCancelCapabilities{}, Requests: &ClientTaskRequestsCapabilities{
				Sampling:    &SamplingTaskCapabilities{CreateMessage: &TaskRequestCapability{}},
				Elicitation: &ElicitationTaskCapabilities{Create: &TaskRequestCapability{}},
			}},
			Extensions: map[string]jsontext.Value{"io.modelcontextprotocol/ui": jsontext.Value(`{"mimeTypes":["text/html;profile=mcp-app"]}`)},
		}, defs: []string{"ClientCapabilities"}},
		{name: "ServerCapabilities", v: &ServerCapabilities{
			Experimental: map[string]jsontext.Value{"com.example/feature": jsontext.Value(`{}`)},
			Logging:      &LoggingCapabilities{}, Completions: &CompletionCapabilities{},
			Prompts:   &PromptCapabilities{ListChanged: true},
			Resources: &ResourceCapabilities{Subscribe: true, ListChanged: true},
			Tools:     &ToolCapabilities{ListChanged: true},
			Tasks: &ServerTasksCapabilities{List: &TasksListCapabilities{}, Cancel: &TasksCancelCapabilities{}, Requests: &ServerTaskRequestsCapabilities{
				Tools: &ToolsTaskCapabilities{Call: &TaskRequestCapability{}},
			}},
			Extensions: map[string]jsontext.Value{"io.modelcontextprotocol/tasks": jsontext.Value(`{}`)},
		}, defs: []string{"ServerCapabilities"}},
		{name: "InitializeParams", v: &InitializeParams{Meta: exReqMeta, ProtocolVersion: LatestProtocolVersion,
			Capabilities: ClientCapabilities{Roots: &RootsCapabilities{}}, ClientInfo: exImpl},
			defs: []string{"InitializeRequestParams"}, method: MethodInitialize, env: envRequest, envDefs: []string{"InitializeRequest", "ClientRequest"}},
		{name: "InitializeResult", v: &InitializeResult{Meta: exMeta, ProtocolVersion: Version20250618,
			Capabilities: ServerCapabilities{Tools: &ToolCapabilities{}}, ServerInfo: exImpl, Instructions: "Use tools."},
			defs: []string{"InitializeResult", "Result"}, env: envResult, envDefs: []string{"ServerResult"}},
		{name: "InitializedParams", v: &InitializedParams{Meta: exMeta}, defs: []string{"NotificationParams"},
			method: NotificationInitialized, env: envNotification, envDefs: []string{"InitializedNotification", "ClientNotification", "Notification"}},
		{name: "PingParams", v: &PingParams{Meta: exReqMeta}, defs: []string{"RequestParams"},
			method: MethodPing, env: envRequest, envDefs: []string{"PingRequest", "ClientRequest", "ServerRequest", "Request"}},
		{name: "EmptyResult", v: &EmptyResult{Meta: exMeta}, defs: []string{"EmptyResult", "Result"},
			env: envResult, envDefs: []string{"ServerResult", "ClientResult"}},
		{name: "PaginatedParams", v: &PaginatedParams{Meta: exReqMeta, Cursor: "c1"}, defs: []string{"PaginatedRequestParams"},
			method: MethodToolsList, env: envRequest, envDefs: []string{"PaginatedRequest"}},
		{name: "PaginatedResult", v: &PaginatedResult{Meta: exMeta, NextCursor: "c2"}, defs: []string{"PaginatedResult"}},
		{name: "CancelledNotificationParams", v: &CancelledNotificationParams{Meta: exMeta, RequestID: jsonrpc.StringID("r-7"), Reason: "user"},
			defs: []string{"CancelledNotificationParams"}, method: NotificationCancelled, env: envNotification,
			envDefs: []string{"CancelledNotification", "ClientNotification", "ServerNotification"}},
		{name: "CancelledNotificationParams/int", v: &CancelledNotificationParams{RequestID: jsonrpc.Int64ID(42)}, partial: true,
			defs: []string{"CancelledNotificationParams"}},
		{name: "ProgressNotificationParams", v: &ProgressNotificationParams{Meta: exMeta, ProgressToken: int64(7), Progress: 50, Total: 100, Message: "half"},
			defs: []string{"ProgressNotificationParams"}, method: NotificationProgress, env: envNotification,
			envDefs: []string{"ProgressNotification", "ClientNotification", "ServerNotification"}},
		{name: "RelatedTaskMetadata", v: &RelatedTaskMetadata{TaskID: "task-1"}, defs: []string{"RelatedTaskMetadata"}},

		// Tools.
		{name: "Tool", v: ptr(exTool), defs: []string{"Tool"}},
		{name: "ToolAnnotations", v: exTool.Annotations, defs: []string{"ToolAnnotations"}},
		{name: "ToolExecution", v: exTool.Execution, defs: []string{"ToolExecution"}},
		{name: "ListToolsParams", v: &ListToolsParams{Meta: exReqMeta, Cursor: "c"}, defs: []string{"PaginatedRequestParams"},
			method: MethodToolsList, env: envRequest, envDefs: []string{"ListToolsRequest", "ClientRequest"}},
		{name: "ListToolsResult", v: &ListToolsResult{Meta: exMeta, NextCursor: "n", Tools: []*Tool{ptr(exTool), {Name: "bare", InputSchema: jsontext.Value(`{"type":"object"}`)}}},
			defs: []string{"ListToolsResult", "PaginatedResult"}, env: envResult, envDefs: []string{"ServerResult"}},
		{name: "CallToolParams", v: &CallToolParams{Meta: exReqMeta, Name: "get_weather", Arguments: jsontext.Value(`{"city":"Paris","n":2}`), Task: &TaskMetadata{TTL: 60000}},
			defs: []string{"CallToolRequestParams", "TaskAugmentedRequestParams"}, method: MethodToolsCall, env: envRequest,
			envDefs: []string{"CallToolRequest", "ClientRequest"}},
		{name: "CallToolResult", v: &CallToolResult{Meta: exMeta, Content: []Content{exText, exImage, exAudio, exLink, exEmbedded},
			StructuredContent: jsontext.Value(`{"temp":18.5}`), IsError: true},
			defs: []string{"CallToolResult", "Result"}, env: envResult, envDefs: []string{"ServerResult"}},
		{name: "ToolListChangedParams", v: &ToolListChangedParams{Meta: exMeta}, defs: []string{"NotificationParams"},
			method: NotificationToolsListChanged, env: envNotification, envDefs: []string{"ToolListChangedNotification", "ServerNotification"}},

		// Content.
		{name: "TextContent", v: exText, defs: append([]string{"TextContent"}, blocks...)},
		{name: "ImageContent", v: exImage, defs: append([]string{"ImageContent"}, blocks...)},
		{name: "AudioContent", v: exAudio, defs: append([]string{"AudioContent"}, blocks...)},
		{name: "ResourceLink", v: exLink, defs: []string{"ResourceLink", "ContentBlock", "Resource"}},
		{name: "EmbeddedResource", v: exEmbedded, defs: []string{"EmbeddedResource", "ContentBlock"}},
		{name: "EmbeddedResource/blob", v: &EmbeddedResource{Resource: exBlobRes}, partial: true, defs: []string{"EmbeddedResource", "ContentBlock"}},
		{name: "ToolUseContent", v: exToolUse, defs: []string{"ToolUseContent", "SamplingMessageContentBlock"}},
		{name: "ToolResultContent", v: exToolRes, defs: []string{"ToolResultContent", "SamplingMessageContentBlock"}},
		{name: "ResourceContents/text", v: exTextRes, partial: true, defs: []string{"TextResourceContents", "ResourceContents"}},
		{name: "ResourceContents/blob", v: exBlobRes, partial: true, defs: []string{"BlobResourceContents", "ResourceContents"}},

		// Resources.
		{name: "Resource", v: &Resource{Meta: exMeta, URI: "file:///a.txt", Name: "a", Title: "A", Description: "d", MIMEType: "text/plain", Size: ptr(int64(12)), Annotations: exAnn, Icons: exIcons},
			defs: []string{"Resource"}},
		{name: "ResourceTemplate", v: &ResourceTemplate{Meta: exMeta, URITemplate: "file:///{path}", Name: "files", Title: "Files", Description: "d", MIMEType: "text/plain", Annotations: exAnn, Icons: exIcons},
			defs: []string{"ResourceTemplate"}},
		{name: "ListResourcesParams", v: &ListResourcesParams{Meta: exReqMeta, Cursor: "c"}, defs: []string{"PaginatedRequestParams"},
			method: MethodResourcesList, env: envRequest, envDefs: []string{"ListResourcesRequest", "ClientRequest"}},
		{name: "ListResourcesResult", v: &ListResourcesResult{Meta: exMeta, NextCursor: "n", Resources: []*Resource{{URI: "file:///b", Name: "b"}}},
			defs: []string{"ListResourcesResult"}, env: envResult, envDefs: []string{"ServerResult"}},
		{name: "ListResourceTemplatesParams", v: &ListResourceTemplatesParams{Meta: exReqMeta, Cursor: "c"}, defs: []string{"PaginatedRequestParams"},
			method: MethodResourcesTemplatesList, env: envRequest, envDefs: []string{"ListResourceTemplatesRequest", "ClientRequest"}},
		{name: "ListResourceTemplatesResult", v: &ListResourceTemplatesResult{Meta: exMeta, NextCursor: "n", ResourceTemplates: []*ResourceTemplate{{URITemplate: "file:///logs/{date}", Name: "t"}}},
			defs: []string{"ListResourceTemplatesResult"}, env: envResult, envDefs: []string{"ServerResult"}},
		{name: "ReadResourceParams", v: &ReadResourceParams{Meta: exReqMeta, URI: "file:///a.txt"}, defs: []string{"ReadResourceRequestParams", "ResourceRequestParams"},
			method: MethodResourcesRead, env: envRequest, envDefs: []string{"ReadResourceRequest", "ClientRequest"}},
		{name: "ReadResourceResult", v: &ReadResourceResult{Meta: exMeta, Contents: []*ResourceContents{exTextRes, exBlobRes}},
			defs: []string{"ReadResourceResult"}, env: envResult, envDefs: []string{"ServerResult"}},
		{name: "SubscribeParams", v: &SubscribeParams{Meta: exReqMeta, URI: "file:///a.txt"}, defs: []string{"SubscribeRequestParams"},
			method: MethodResourcesSubscribe, env: envRequest, envDefs: []string{"SubscribeRequest", "ClientRequest"}},
		{name: "UnsubscribeParams", v: &UnsubscribeParams{Meta: exReqMeta, URI: "file:///a.txt"}, defs: []string{"UnsubscribeRequestParams"},
			method: MethodResourcesUnsubscribe, env: envRequest, envDefs: []string{"UnsubscribeRequest", "ClientRequest"}},
		{name: "ResourceUpdatedNotificationParams", v: &ResourceUpdatedNotificationParams{Meta: exMeta, URI: "file:///a.txt"},
			defs: []string{"ResourceUpdatedNotificationParams"}, method: NotificationResourcesUpdated, env: envNotification,
			envDefs: []string{"ResourceUpdatedNotification", "ServerNotification"}},
		{name: "ResourceListChangedParams", v: &ResourceListChangedParams{Meta: exMeta}, defs: []string{"NotificationParams"},
			method: NotificationResourcesListChanged, env: envNotification, envDefs: []string{"ResourceListChangedNotification", "ServerNotification"}},

		// Prompts.
		{name: "Prompt", v: &Prompt{Meta: exMeta, Name: "review", Title: "Review", Description: "d",
			Arguments: []*PromptArgument{{Name: "code", Title: "Code", Description: "the code", Required: true}}, Icons: exIcons},
			defs: []string{"Prompt"}},
		{name: "PromptArgument", v: &PromptArgument{Name: "code", Title: "Code", Description: "the code", Required: true}, defs: []string{"PromptArgument"}},
		{name: "PromptMessage", v: &PromptMessage{Role: RoleUser, Content: exEmbedded}, defs: []string{"PromptMessage"}},
		{name: "ListPromptsParams", v: &ListPromptsParams{Meta: exReqMeta, Cursor: "c"}, defs: []string{"PaginatedRequestParams"},
			method: MethodPromptsList, env: envRequest, envDefs: []string{"ListPromptsRequest", "ClientRequest"}},
		{name: "ListPromptsResult", v: &ListPromptsResult{Meta: exMeta, NextCursor: "n", Prompts: []*Prompt{{Name: "p"}}},
			defs: []string{"ListPromptsResult"}, env: envResult, envDefs: []string{"ServerResult"}},
		{name: "GetPromptParams", v: &GetPromptParams{Meta: exReqMeta, Name: "review", Arguments: map[string]string{"code": "x := 1"}},
			defs: []string{"GetPromptRequestParams"}, method: MethodPromptsGet, env: envRequest, envDefs: []string{"GetPromptRequest", "ClientRequest"}},
		{name: "GetPromptResult", v: &GetPromptResult{Meta: exMeta, Description: "d", Messages: []*PromptMessage{{Role: RoleUser, Content: exText}, {Role: RoleAssistant, Content: exImage}}},
			defs: []string{"GetPromptResult"}, env: envResult, envDefs: []string{"ServerResult"}},
		{name: "PromptListChangedParams", v: &PromptListChangedParams{Meta: exMeta}, defs: []string{"NotificationParams"},
			method: NotificationPromptsListChanged, env: envNotification, envDefs: []string{"PromptListChangedNotification", "ServerNotification"}},

		// Completion.
		{name: "CompleteParams/prompt", v: &CompleteParams{Meta: exReqMeta, Ref: &CompleteReference{Type: RefTypePrompt, Name: "review", Title: "Review"},
			Argument: CompleteArgument{Name: "lang", Value: "g"}, Context: &CompleteContext{Arguments: map[string]string{"x": "y"}}},
			defs: []string{"CompleteRequestParams"}, method: MethodCompletionComplete, env: envRequest, envDefs: []string{"CompleteRequest", "ClientRequest"}},
		{name: "CompleteParams/resource", v: &CompleteParams{Ref: &CompleteReference{Type: RefTypeResource, URI: "file:///{path}"},
			Argument: CompleteArgument{Name: "path", Value: "/"}}, partial: true,
			defs: []string{"CompleteRequestParams"}},
		{name: "PromptReference", v: &CompleteReference{Type: RefTypePrompt, Name: "review", Title: "Review"}, partial: true, defs: []string{"PromptReference"}},
		{name: "ResourceTemplateReference", v: &CompleteReference{Type: RefTypeResource, URI: "file:///{path}"}, partial: true, defs: []string{"ResourceTemplateReference"}},
		{name: "CompleteResult", v: &CompleteResult{Meta: exMeta, Completion: CompletionResultDetails{Values: []string{"go", "gleam"}, Total: ptr(0), HasMore: true}},
			defs: []string{"CompleteResult"}, env: envResult, envDefs: []string{"ServerResult"}},

		// Logging.
		{name: "SetLevelParams", v: &SetLevelParams{Meta: exReqMeta, Level: LoggingLevelWarning}, defs: []string{"SetLevelRequestParams"},
			method: MethodLoggingSetLevel, env: envRequest, envDefs: []string{"SetLevelRequest", "ClientRequest"}},
		{name: "LoggingMessageParams", v: &LoggingMessageParams{Meta: exMeta, Level: LoggingLevelError, Logger: "db", Data: jsontext.Value(`{"error":"timeout","ms":[1,2]}`)},
			defs: []string{"LoggingMessageNotificationParams"}, method: NotificationMessage, env: envNotification,
			envDefs: []string{"LoggingMessageNotification", "ServerNotification"}},

		// Roots.
		{name: "Root", v: &Root{Meta: exMeta, URI: "file:///home/u/project", Name: "project"}, defs: []string{"Root"}},
		{name: "ListRootsParams", v: &ListRootsParams{Meta: exReqMeta}, defs: []string{"RequestParams"},
			method: MethodRootsList, env: envRequest, envDefs: []string{"ListRootsRequest", "ServerRequest"}},
		{name: "ListRootsResult", v: &ListRootsResult{Meta: exMeta, Roots: []*Root{{URI: "file:///a"}}}, defs: []string{"ListRootsResult"},
			env: envResult, envDefs: []string{"ClientResult"}},
		{name: "RootsListChangedParams", v: &RootsListChangedParams{Meta: exMeta}, defs: []string{"NotificationParams"},
			method: NotificationRootsListChanged, env: envNotification, envDefs: []string{"RootsListChangedNotification", "ClientNotification"}},

		// Sampling.
		{name: "ModelPreferences", v: &ModelPreferences{Hints: []ModelHint{{Name: "claude"}}, CostPriority: ptr(0.0), SpeedPriority: ptr(0.5), IntelligencePriority: ptr(1.0)},
			defs: []string{"ModelPreferences"}},
		{name: "ModelHint", v: &ModelHint{Name: "sonnet"}, defs: []string{"ModelHint"}},
		{name: "ToolChoice", v: &ToolChoice{Mode: ToolChoiceRequired}, defs: []string{"ToolChoice"}},
		{name: "SamplingMessage/single", v: &SamplingMessage{Meta: exMeta, Role: RoleUser, Content: []Content{exText}}, defs: []string{"SamplingMessage"}},
		{name: "SamplingMessage/array", v: &SamplingMessage{Meta: exMeta, Role: RoleAssistant, Content: []Content{exText, exToolUse}}, defs: []string{"SamplingMessage"}},
		{name: "CreateMessageParams", v: &CreateMessageParams{
			Meta: exReqMeta,
			Messages: []*SamplingMessage{
				{Role: RoleUser, Content: []Content{&TextContent{Text: "weather?"}}},
				{Role: RoleAssistant, Content: []Content{exToolUse}},
				{Role: RoleUser, Content: []Content{exToolRes}},
			},
			ModelPreferences: &ModelPreferences{Hints: []ModelHint{{Name: "x"}}},
			SystemPrompt:     "Be brief.", IncludeContext: IncludeContextThisServer, Temperature: ptr(0.0), MaxTokens: 100,
			StopSequences: []string{"\n\n"}, Metadata: jsontext.Value(`{"provider":{"k":1}}`),
			Tools: []*Tool{ptr(exTool)}, ToolChoice: &ToolChoice{Mode: ToolChoiceAuto}, Task: &TaskMetadata{TTL: 5000},
		}, defs: []string{"CreateMessageRequestParams"}, method: MethodSamplingCreateMessage, env: envRequest,
			envDefs: []string{"CreateMessageRequest", "ServerRequest"}},
		{name: "CreateMessageResult", v: &CreateMessageResult{Meta: exMeta, Role: RoleAssistant, Content: []Content{exToolUse, exText}, Model: "m-1", StopReason: StopReasonToolUse},
			defs: []string{"CreateMessageResult"}, env: envResult, envDefs: []string{"ClientResult"}},
		{name: "CreateMessageResult/single", v: &CreateMessageResult{Role: RoleAssistant, Content: []Content{exAudio}, Model: "m-1"}, partial: true,
			defs: []string{"CreateMessageResult"}},

		// Elicitation.
		{name: "ElicitParams/form", v: ptr(exFormElicit), partial: true, defs: []string{"ElicitRequestFormParams", "ElicitRequestParams"},
			method: MethodElicitationCreate, env: envRequest, envDefs: []string{"ElicitRequest", "ServerRequest"}},
		{name: "ElicitParams/form-nomode", v: &ElicitParams{Message: "m", RequestedSchema: &ElicitationSchema{Type: "object", Properties: map[string]PrimitiveSchemaDefinition{}}}, partial: true,
			defs: []string{"ElicitRequestFormParams", "ElicitRequestParams"}},
		{name: "ElicitParams/url", v: ptr(exURLElicit), partial: true, defs: []string{"ElicitRequestURLParams", "ElicitRequestParams"},
			method: MethodElicitationCreate, env: envRequest, envDefs: []string{"ElicitRequest", "ServerRequest"}},
		{name: "StringSchema", v: ptr(exFormElicit.RequestedSchema.Properties["name"]), partial: true, defs: []string{"StringSchema", "PrimitiveSchemaDefinition"}},
		{name: "StringSchema/format", v: ptr(exFormElicit.RequestedSchema.Properties["email"]), partial: true, defs: []string{"StringSchema", "PrimitiveSchemaDefinition"}},
		{name: "NumberSchema/integer", v: ptr(exFormElicit.RequestedSchema.Properties["age"]), partial: true, defs: []string{"NumberSchema", "PrimitiveSchemaDefinition"}},
		{name: "NumberSchema/number", v: ptr(exFormElicit.RequestedSchema.Properties["score"]), partial: true, defs: []string{"NumberSchema", "PrimitiveSchemaDefinition"}},
		{name: "BooleanSchema", v: ptr(exFormElicit.RequestedSchema.Properties["ok"]), partial: true, defs: []string{"BooleanSchema", "PrimitiveSchemaDefinition"}},
		{name: "UntitledSingleSelectEnumSchema", v: ptr(exFormElicit.RequestedSchema.Properties["color"]), partial: true,
			defs: []string{"UntitledSingleSelectEnumSchema", "SingleSelectEnumSchema", "EnumSchema", "PrimitiveSchemaDefinition"}},
		{name: "TitledSingleSelectEnumSchema", v: ptr(exFormElicit.RequestedSchema.Properties["size"]), partial: true,
			defs: []string{"TitledSingleSelectEnumSchema", "SingleSelectEnumSchema", "EnumSchema", "PrimitiveSchemaDefinition"}},
		{name: "LegacyTitledEnumSchema", v: ptr(exFormElicit.RequestedSchema.Properties["plan"]), partial: true,
			defs: []string{"LegacyTitledEnumSchema", "EnumSchema", "PrimitiveSchemaDefinition"}},
		{name: "UntitledMultiSelectEnumSchema", v: ptr(exFormElicit.RequestedSchema.Properties["tags"]), partial: true,
			defs: []string{"UntitledMultiSelectEnumSchema", "MultiSelectEnumSchema", "EnumSchema", "PrimitiveSchemaDefinition"}},
		{name: "TitledMultiSelectEnumSchema", v: ptr(exFormElicit.RequestedSchema.Properties["langs"]), partial: true,
			defs: []string{"TitledMultiSelectEnumSchema", "MultiSelectEnumSchema", "EnumSchema", "PrimitiveSchemaDefinition"}},
		{name: "ElicitResult", v: &ElicitResult{Meta: exMeta, Action: ElicitActionAccept, Content: map[string]any{"name": "Ada", "age": 30.0, "ok": true, "tags": []any{"a", "b"}}},
			defs: []string{"ElicitResult"}, env: envResult, envDefs: []string{"ClientResult"}},
		{name: "ElicitResult/decline", v: &ElicitResult{Action: ElicitActionDecline}, partial: true, defs: []string{"ElicitResult"}},
		{name: "ElicitationCompleteNotificationParams", v: &ElicitationCompleteNotificationParams{Meta: exMeta, ElicitationID: "el-1"},
			method: NotificationElicitationComplete, env: envNotification, envDefs: []string{"ElicitationCompleteNotification", "ServerNotification"}},

		// Tasks.
		{name: "Task", v: ptr(exTask), defs: []string{"Task"}},
		{name: "Task/nullttl", v: &Task{TaskID: "t", Status: TaskStatusCompleted, CreatedAt: "2025-11-25T10:30:00Z", LastUpdatedAt: "2025-11-25T10:30:00Z"}, partial: true, defs: []string{"Task"}},
		{name: "TaskMetadata", v: &TaskMetadata{TTL: 60000}, defs: []string{"TaskMetadata"}},
		{name: "CreateTaskResult", v: &CreateTaskResult{Meta: exMeta, Task: exTask}, defs: []string{"CreateTaskResult"},
			env: envResult, envDefs: []string{"ServerResult", "ClientResult"}},
		{name: "GetTaskParams", v: &GetTaskParams{Meta: exReqMeta, TaskID: "task-1"}, method: MethodTasksGet, env: envRequest,
			envDefs: []string{"GetTaskRequest", "ClientRequest", "ServerRequest"}},
		{name: "GetTaskResult", v: &GetTaskResult{Meta: exMeta, Task: exTask}, defs: []string{"GetTaskResult"},
			env: envResult, envDefs: []string{"ServerResult", "ClientResult"}},
		{name: "GetTaskPayloadParams", v: &GetTaskPayloadParams{Meta: exReqMeta, TaskID: "task-1"}, method: MethodTasksResult, env: envRequest,
			envDefs: []string{"GetTaskPayloadRequest", "ClientRequest", "ServerRequest"}},
		{name: "GetTaskPayloadResult", v: &GetTaskPayloadResult{Meta: Meta{MetaKeyRelatedTask: map[string]any{"taskId": "task-1"}}, Payload: jsontext.Value(`{"content":[{"type":"text","text":"done"}],"isError":false}`)},
			defs: []string{"GetTaskPayloadResult", "CallToolResult"}, env: envResult, envDefs: []string{"ServerResult", "ClientResult"}},
		{name: "ListTasksParams", v: &ListTasksParams{Meta: exReqMeta, Cursor: "c"}, defs: []string{"PaginatedRequestParams"},
			method: MethodTasksList, env: envRequest, envDefs: []string{"ListTasksRequest", "ClientRequest", "ServerRequest"}},
		{name: "ListTasksResult", v: &ListTasksResult{Meta: exMeta, NextCursor: "n", Tasks: []*Task{ptr(exTask)}}, defs: []string{"ListTasksResult"},
			env: envResult, envDefs: []string{"ServerResult", "ClientResult"}},
		{name: "CancelTaskParams", v: &CancelTaskParams{Meta: exReqMeta, TaskID: "task-1"}, method: MethodTasksCancel, env: envRequest,
			envDefs: []string{"CancelTaskRequest", "ClientRequest", "ServerRequest"}},
		{name: "CancelTaskResult", v: &CancelTaskResult{Meta: exMeta, Task: Task{TaskID: "task-1", Status: TaskStatusCancelled, CreatedAt: "2025-11-25T10:30:00Z", LastUpdatedAt: "2025-11-25T10:32:00Z", TTL: ptr(int64(1000)), PollInterval: 1, StatusMessage: "by user"}},
			defs: []string{"CancelTaskResult"}, env: envResult, envDefs: []string{"ServerResult", "ClientResult"}},
		{name: "TaskStatusNotificationParams", v: &TaskStatusNotificationParams{Meta: exMeta, Task: exTask}, defs: []string{"TaskStatusNotificationParams"},
			method: NotificationTasksStatus, env: envNotification, envDefs: []string{"TaskStatusNotification", "ClientNotification", "ServerNotification"}},
	}
}

// deterministic encodes v with sorted map keys, for comparisons.
func deterministic(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v, json.Deterministic(true))
	if err != nil {
		t.Fatalf("Marshal(%T): %v", v, err)
	}
	return b
}

// wrap builds the JSON-RPC message that carries data.
func wrap(c schemaCase, data []byte) []byte {
	switch c.env {
	case envRequest:
		return fmt.Appendf(nil, `{"jsonrpc":"2.0","id":1,"method":%q,"params":%s}`, c.method, data)
	case envNotification:
		return fmt.Appendf(nil, `{"jsonrpc":"2.0","method":%q,"params":%s}`, c.method, data)
	case envResult:
		return fmt.Appendf(nil, `{"jsonrpc":"2.0","id":"x","result":%s}`, data)
	}
	return nil
}

// checkAllFieldsSet reports top-level struct fields of v that are zero.
func checkAllFieldsSet(t *testing.T, v any) {
	t.Helper()
	rv := reflect.ValueOf(v).Elem()
	if rv.Kind() != reflect.Struct {
		return
	}
	for i := range rv.NumField() {
		f := rv.Type().Field(i)
		if f.IsExported() && rv.Field(i).IsZero() {
			t.Errorf("example %T leaves field %s unset; set every field to exercise it", v, f.Name)
		}
	}
}

func TestSchemaRoundTrip(t *testing.T) {
	for _, c := range schemaCases() {
		t.Run(c.name, func(t *testing.T) {
			if !c.partial {
				checkAllFieldsSet(t, c.v)
			}
			data, err := json.Marshal(c.v)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			for _, def := range c.defs {
				schematest.Validate(t, def, data)
			}
			if c.env != envNone {
				msg := wrap(c, data)
				schematest.Validate(t, "JSONRPCMessage", msg)
				switch c.env {
				case envRequest:
					schematest.Validate(t, "JSONRPCRequest", msg)
				case envNotification:
					schematest.Validate(t, "JSONRPCNotification", msg)
				case envResult:
					schematest.Validate(t, "JSONRPCResultResponse", msg)
					schematest.Validate(t, "JSONRPCResponse", msg)
				}
				for _, def := range c.envDefs {
					schematest.Validate(t, def, msg)
				}
			}

			got := reflect.New(reflect.TypeOf(c.v).Elem()).Interface()
			if err := json.Unmarshal(data, got); err != nil {
				t.Fatalf("Unmarshal(%s): %v", data, err)
			}
			if !reflect.DeepEqual(got, c.v) {
				t.Errorf("round trip changed the value:\n got %#v\nwant %#v\njson %s", got, c.v, data)
			}
			if a, b := deterministic(t, c.v), deterministic(t, got); !bytes.Equal(a, b) {
				t.Errorf("re-encoding differs:\n got %s\nwant %s", b, a)
			}
		})
	}
}

// notGoTypes are the schema definitions that deliberately have no Go type
// in package mcp, with where they are covered instead.
var notGoTypes = map[string]string{
	"JSONRPCRequest":              "package jsonrpc (envelopes); validated for every request case",
	"JSONRPCNotification":         "package jsonrpc; validated for every notification case",
	"JSONRPCResultResponse":       "package jsonrpc; validated for every result case",
	"JSONRPCResponse":             "package jsonrpc; validated for every result case",
	"JSONRPCErrorResponse":        "package jsonrpc; TestURLElicitationRequiredError",
	"JSONRPCMessage":              "package jsonrpc; validated for every enveloped case",
	"Error":                       "jsonrpc.Error; TestURLElicitationRequiredError",
	"RequestId":                   "jsonrpc.ID; TestScalarDefinitions",
	"ProgressToken":               "any (string or int64); TestScalarDefinitions",
	"Cursor":                      "alias of string; TestScalarDefinitions",
	"Role":                        "TestScalarDefinitions",
	"LoggingLevel":                "TestScalarDefinitions",
	"TaskStatus":                  "TestScalarDefinitions",
	"URLElicitationRequiredError": "URLElicitationRequiredErrorData; TestURLElicitationRequiredError",
}

// TestEveryDefinitionCovered checks that every definition of the schema is
// exercised by TestSchemaRoundTrip or named in notGoTypes.
func TestEveryDefinitionCovered(t *testing.T) {
	covered := map[string]bool{}
	for _, c := range schemaCases() {
		for _, d := range slices.Concat(c.defs, c.envDefs) {
			covered[d] = true
		}
	}
	for d := range notGoTypes {
		covered[d] = true
	}
	defs := schematest.Definitions()
	if len(defs) == 0 {
		t.Fatal("schematest.Definitions() is empty")
	}
	for _, d := range defs {
		if !covered[d] {
			t.Errorf("schema definition %s is not covered by any test case", d)
		}
	}
	for d := range covered {
		if !slices.Contains(defs, d) {
			t.Errorf("test names definition %s, which the schema does not have", d)
		}
	}
}

func TestScalarDefinitions(t *testing.T) {
	tests := []struct {
		def string
		v   any
	}{
		{"Role", RoleUser}, {"Role", RoleAssistant},
		{"TaskStatus", TaskStatusWorking}, {"TaskStatus", TaskStatusInputRequired}, {"TaskStatus", TaskStatusCompleted},
		{"TaskStatus", TaskStatusFailed}, {"TaskStatus", TaskStatusCancelled},
		{"RequestId", jsonrpc.Int64ID(1)}, {"RequestId", jsonrpc.StringID("a")},
		{"ProgressToken", "tok"}, {"ProgressToken", int64(5)},
		{"Cursor", Cursor("c")},
	}
	for _, l := range allLevels {
		tests = append(tests, struct {
			def string
			v   any
		}{"LoggingLevel", l})
	}
	for _, tt := range tests {
		data, err := json.Marshal(tt.v)
		if err != nil {
			t.Fatal(err)
		}
		schematest.Validate(t, tt.def, data)
	}
	// Method and version constants are checked against the schema's consts
	// by the envelope validation in TestSchemaRoundTrip; here the negative
	// case: an unknown level must not validate.
	if schematest.Check("LoggingLevel", []byte(`"verbose"`)) == nil {
		t.Error(`"verbose" validated as a LoggingLevel`)
	}
}

func TestURLElicitationRequiredError(t *testing.T) {
	data, err := json.Marshal(&URLElicitationRequiredErrorData{Elicitations: []*ElicitParams{ptr(exURLElicit)}})
	if err != nil {
		t.Fatal(err)
	}
	errObj := fmt.Appendf(nil, `{"code":%d,"message":"This request requires more information.","data":%s}`, CodeURLElicitationRequired, data)
	schematest.Validate(t, "Error", errObj)
	msg := fmt.Appendf(nil, `{"jsonrpc":"2.0","id":2,"error":%s}`, errObj)
	for _, def := range []string{"URLElicitationRequiredError", "JSONRPCErrorResponse", "JSONRPCResponse", "JSONRPCMessage"} {
		schematest.Validate(t, def, msg)
	}
	var back URLElicitationRequiredErrorData
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Elicitations) != 1 || !reflect.DeepEqual(*back.Elicitations[0], exURLElicit) {
		t.Errorf("round trip: got %+v", back.Elicitations)
	}
}

func TestProtocolVersions(t *testing.T) {
	v := SupportedProtocolVersions()
	want := []string{"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}
	if !slices.Equal(v, want) {
		t.Errorf("SupportedProtocolVersions() = %v, want %v", v, want)
	}
	if LatestProtocolVersion != v[0] {
		t.Errorf("LatestProtocolVersion = %q, want %q", LatestProtocolVersion, v[0])
	}
	if !slices.IsSortedFunc(v, func(a, b string) int { return strings.Compare(b, a) }) {
		t.Error("versions are not newest first")
	}
	v[0] = "mutated"
	if SupportedProtocolVersions()[0] != Version20251125 {
		t.Error("SupportedProtocolVersions returned shared storage")
	}
	for _, s := range want {
		if !IsSupportedProtocolVersion(s) {
			t.Errorf("IsSupportedProtocolVersion(%q) = false", s)
		}
	}
	if IsSupportedProtocolVersion("2026-07-28") || IsSupportedProtocolVersion("") {
		t.Error("IsSupportedProtocolVersion accepts unknown versions")
	}
}

// allLevels lists the logging levels from least to most severe.
var allLevels = []LoggingLevel{
	LoggingLevelDebug, LoggingLevelInfo, LoggingLevelNotice, LoggingLevelWarning,
	LoggingLevelError, LoggingLevelCritical, LoggingLevelAlert, LoggingLevelEmergency,
}
