// Copyright 2026 The mcpgate Authors. All rights reserved.

package mcp

import (
	"errors"
	"fmt"
	"math"

	"github.com/go-json-experiment/json"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/jsonrpc"
)

// This file holds the Go types for the definitions of the MCP schema,
// revision 2025-11-25 (schema.json), together with the method names and
// protocol versions. JSON-RPC envelopes (JSONRPCRequest, JSONRPCResponse, ...)
// live in package jsonrpc; here are the params and results they carry.
//
// Naming: a request's params type drops the "Request" of the spec name
// (CallToolRequestParams becomes CallToolParams); notification params keep
// the spec name unless noted. Fields that hold arbitrary JSON (JSON Schemas,
// tool arguments, structured content) are jsontext.Value so that they survive
// a decode/encode round trip byte for byte.

// Protocol versions.
const (
	// Version20251125 is the protocol revision 2025-11-25.
	Version20251125 = "2025-11-25"
	// Version20250618 is the protocol revision 2025-06-18.
	Version20250618 = "2025-06-18"
	// Version20250326 is the protocol revision 2025-03-26.
	Version20250326 = "2025-03-26"
	// Version20241105 is the protocol revision 2024-11-05.
	Version20241105 = "2024-11-05"

	// LatestProtocolVersion is the newest protocol revision this package
	// implements.
	LatestProtocolVersion = Version20251125
)

// SupportedProtocolVersions returns the protocol revisions this package
// implements, newest first. The caller owns the returned slice.
func SupportedProtocolVersions() []string {
	return []string{Version20251125, Version20250618, Version20250326, Version20241105}
}

// IsSupportedProtocolVersion reports whether v is one of
// SupportedProtocolVersions.
func IsSupportedProtocolVersion(v string) bool {
	switch v {
	case Version20251125, Version20250618, Version20250326, Version20241105:
		return true
	}
	return false
}

// Request methods.
const (
	MethodInitialize             = "initialize"
	MethodPing                   = "ping"
	MethodResourcesList          = "resources/list"
	MethodResourcesTemplatesList = "resources/templates/list"
	MethodResourcesRead          = "resources/read"
	MethodResourcesSubscribe     = "resources/subscribe"
	MethodResourcesUnsubscribe   = "resources/unsubscribe"
	MethodPromptsList            = "prompts/list"
	MethodPromptsGet             = "prompts/get"
	MethodToolsList              = "tools/list"
	MethodToolsCall              = "tools/call"
	MethodTasksGet               = "tasks/get"
	MethodTasksResult            = "tasks/result"
	MethodTasksList              = "tasks/list"
	MethodTasksCancel            = "tasks/cancel"
	MethodLoggingSetLevel        = "logging/setLevel"
	MethodCompletionComplete     = "completion/complete"
	MethodSamplingCreateMessage  = "sampling/createMessage"
	MethodRootsList              = "roots/list"
	MethodElicitationCreate      = "elicitation/create"
)

// Notification methods.
const (
	NotificationInitialized          = "notifications/initialized"
	NotificationCancelled            = "notifications/cancelled"
	NotificationProgress             = "notifications/progress"
	NotificationMessage              = "notifications/message"
	NotificationResourcesListChanged = "notifications/resources/list_changed"
	NotificationResourcesUpdated     = "notifications/resources/updated"
	NotificationPromptsListChanged   = "notifications/prompts/list_changed"
	NotificationToolsListChanged     = "notifications/tools/list_changed"
	NotificationRootsListChanged     = "notifications/roots/list_changed"
	NotificationTasksStatus          = "notifications/tasks/status"
	NotificationElicitationComplete  = "notifications/elicitation/complete"
)

// MCP-specific JSON-RPC error codes.
const (
	// CodeURLElicitationRequired is the error code of URLElicitationRequiredError:
	// the request needs the user to complete one or more URL-mode elicitations.
	CodeURLElicitationRequired = -32042
)

// MetaKeyRelatedTask is the _meta key that associates a message with a task
// (its value is a RelatedTaskMetadata).
const MetaKeyRelatedTask = "io.modelcontextprotocol/related-task"

// metaKeyProgressToken is the _meta key of a request's progress token.
const metaKeyProgressToken = "progressToken"

// Meta is the _meta object that params, results and many other objects may
// carry. Keys are free-form, with reserved prefixes as described in the spec.
type Meta map[string]any

// ProgressToken returns the progress token in m, or nil if there is none.
// A token is a string or an integer; an integer token is returned as int64
// whatever Go type holds it in m (a decoded number is a float64).
func (m Meta) ProgressToken() any {
	v, ok := m[metaKeyProgressToken]
	if !ok {
		return nil
	}
	return normalizeToken(v)
}

// SetProgressToken sets the progress token in *m (allocating the map if
// needed). token should be a string or an integer; nil removes the token.
func (m *Meta) SetProgressToken(token any) {
	if token == nil {
		delete(*m, metaKeyProgressToken)
		return
	}
	if *m == nil {
		*m = make(Meta, 1)
	}
	(*m)[metaKeyProgressToken] = token
}

// RelatedTask returns the id of the task that m associates its message with
// (the "io.modelcontextprotocol/related-task" key), if any.
func (m Meta) RelatedTask() (taskID string, ok bool) {
	switch v := m[MetaKeyRelatedTask].(type) {
	case map[string]any:
		id, ok := v["taskId"].(string)
		return id, ok
	case RelatedTaskMetadata:
		return v.TaskID, true
	case *RelatedTaskMetadata:
		if v != nil {
			return v.TaskID, true
		}
	}
	return "", false
}

// SetRelatedTask associates *m's message with the task taskID (allocating the
// map if needed).
func (m *Meta) SetRelatedTask(taskID string) {
	if *m == nil {
		*m = make(Meta, 1)
	}
	(*m)[MetaKeyRelatedTask] = map[string]any{"taskId": taskID}
}

// normalizeToken returns v as string or int64 when it is a string or an
// integral number, and v unchanged otherwise.
func normalizeToken(v any) any {
	switch t := v.(type) {
	case float64:
		if t == math.Trunc(t) && math.Abs(t) <= 1<<53 {
			return int64(t)
		}
	case int:
		return int64(t)
	case int32:
		return int64(t)
	case uint32:
		return int64(t)
	case jsontext.Value:
		// Left as is: callers that keep raw JSON interpret it themselves.
	}
	return v
}

// RelatedTaskMetadata is the value of the MetaKeyRelatedTask _meta entry.
type RelatedTaskMetadata struct {
	// TaskID is the id of the related task.
	TaskID string `json:"taskId"`
}

// Role is the sender or recipient of messages and data in a conversation.
type Role string

// Roles.
const (
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
)

// Cursor is an opaque pagination token.
type Cursor = string

// Icon is an icon that a client may display for a server, tool, resource or
// prompt.
type Icon struct {
	// Src is the URI of the icon: an HTTP(S) URL or a data: URI.
	Src string `json:"src"`
	// MIMEType optionally overrides the MIME type of the icon.
	MIMEType string `json:"mimeType,omitzero"`
	// Sizes lists the sizes the icon is available at, as "WxH" or "any".
	Sizes []string `json:"sizes,omitzero"`
	// Theme is the theme the icon is designed for: IconThemeLight or
	// IconThemeDark. Empty means any theme.
	Theme IconTheme `json:"theme,omitzero"`
}

// IconTheme is the UI theme an icon is designed for.
type IconTheme string

// Icon themes.
const (
	IconThemeLight IconTheme = "light"
	IconThemeDark  IconTheme = "dark"
)

// Icons is the spec's Icons mixin: a list of icons.
type Icons struct {
	// Icons lists the available icons.
	Icons []Icon `json:"icons,omitzero"`
}

// BaseMetadata is the spec's BaseMetadata mixin: a programmatic name and an
// optional display title.
type BaseMetadata struct {
	// Name is the programmatic identifier.
	Name string `json:"name"`
	// Title is the human-readable display name.
	Title string `json:"title,omitzero"`
}

// Implementation describes the name and version of an MCP implementation.
type Implementation struct {
	// Name is the programmatic name of the implementation.
	Name string `json:"name"`
	// Title is the human-readable display name.
	Title string `json:"title,omitzero"`
	// Version is the implementation's version.
	Version string `json:"version"`
	// Description says what the implementation does.
	Description string `json:"description,omitzero"`
	// WebsiteURL is the URL of the implementation's website.
	WebsiteURL string `json:"websiteUrl,omitzero"`
	// Icons lists icons for the implementation.
	Icons []Icon `json:"icons,omitzero"`
}

// Annotations are optional hints to the client about how to use or display
// an object.
type Annotations struct {
	// Audience says who the data is intended for.
	Audience []Role `json:"audience,omitzero"`
	// Priority says how important the data is, from 0 (least, optional) to 1
	// (most, effectively required). Nil means unspecified.
	Priority *float64 `json:"priority,omitzero"`
	// LastModified is the ISO 8601 time the data was last modified.
	LastModified string `json:"lastModified,omitzero"`
}

// ---------------------------------------------------------------------------
// Capabilities

// ClientCapabilities are the capabilities a client declares in initialize.
// A nil pointer means the capability is absent.
type ClientCapabilities struct {
	// Experimental holds non-standard capabilities, each a JSON object.
	Experimental map[string]jsontext.Value `json:"experimental,omitzero"`
	// Roots is present if the client can list roots.
	Roots *RootsCapabilities `json:"roots,omitzero"`
	// Sampling is present if the client supports sampling from an LLM.
	Sampling *SamplingCapabilities `json:"sampling,omitzero"`
	// Elicitation is present if the client supports elicitation. An empty
	// object means form mode only (for backwards compatibility).
	Elicitation *ElicitationCapabilities `json:"elicitation,omitzero"`
	// Tasks is present if the client supports task-augmented requests.
	Tasks *ClientTasksCapabilities `json:"tasks,omitzero"`
	// Extensions lists the optional extensions the client supports, by
	// identifier ("io.modelcontextprotocol/tasks"), each with its settings
	// object.
	Extensions map[string]jsontext.Value `json:"extensions,omitzero"`
}

// RootsCapabilities is the client's roots capability.
type RootsCapabilities struct {
	// ListChanged says whether the client sends
	// notifications/roots/list_changed.
	ListChanged bool `json:"listChanged,omitzero"`
}

// SamplingCapabilities is the client's sampling capability.
type SamplingCapabilities struct {
	// Context is present if the client supports includeContext values other
	// than "none".
	Context *SamplingContextCapabilities `json:"context,omitzero"`
	// Tools is present if the client supports tools and toolChoice.
	Tools *SamplingToolsCapabilities `json:"tools,omitzero"`
}

// SamplingContextCapabilities marks support for sampling context inclusion.
type SamplingContextCapabilities struct{}

// SamplingToolsCapabilities marks support for tool use in sampling.
type SamplingToolsCapabilities struct{}

// ElicitationCapabilities is the client's elicitation capability.
type ElicitationCapabilities struct {
	// Form is present if the client supports form-mode elicitation.
	Form *FormElicitationCapabilities `json:"form,omitzero"`
	// URL is present if the client supports URL-mode elicitation.
	URL *URLElicitationCapabilities `json:"url,omitzero"`
}

// FormElicitationCapabilities marks support for form-mode elicitation.
type FormElicitationCapabilities struct{}

// URLElicitationCapabilities marks support for URL-mode elicitation.
type URLElicitationCapabilities struct{}

// ClientTasksCapabilities is the client's tasks capability.
type ClientTasksCapabilities struct {
	// List is present if the client supports tasks/list.
	List *TasksListCapabilities `json:"list,omitzero"`
	// Cancel is present if the client supports tasks/cancel.
	Cancel *TasksCancelCapabilities `json:"cancel,omitzero"`
	// Requests says which requests the client can run as tasks.
	Requests *ClientTaskRequestsCapabilities `json:"requests,omitzero"`
}

// TasksListCapabilities marks support for tasks/list.
type TasksListCapabilities struct{}

// TasksCancelCapabilities marks support for tasks/cancel.
type TasksCancelCapabilities struct{}

// ClientTaskRequestsCapabilities lists the server-to-client requests a client
// can run as tasks.
type ClientTaskRequestsCapabilities struct {
	// Sampling is task support for sampling requests.
	Sampling *SamplingTaskCapabilities `json:"sampling,omitzero"`
	// Elicitation is task support for elicitation requests.
	Elicitation *ElicitationTaskCapabilities `json:"elicitation,omitzero"`
}

// SamplingTaskCapabilities is task support for sampling requests.
type SamplingTaskCapabilities struct {
	// CreateMessage is present if sampling/createMessage can run as a task.
	CreateMessage *TaskRequestCapability `json:"createMessage,omitzero"`
}

// ElicitationTaskCapabilities is task support for elicitation requests.
type ElicitationTaskCapabilities struct {
	// Create is present if elicitation/create can run as a task.
	Create *TaskRequestCapability `json:"create,omitzero"`
}

// TaskRequestCapability marks that one request method can run as a task.
type TaskRequestCapability struct{}

// ServerCapabilities are the capabilities a server declares in its
// initialize result. A nil pointer means the capability is absent.
type ServerCapabilities struct {
	// Experimental holds non-standard capabilities, each a JSON object.
	Experimental map[string]jsontext.Value `json:"experimental,omitzero"`
	// Logging is present if the server can send log messages.
	Logging *LoggingCapabilities `json:"logging,omitzero"`
	// Completions is present if the server supports argument completion.
	Completions *CompletionCapabilities `json:"completions,omitzero"`
	// Prompts is present if the server offers prompts.
	Prompts *PromptCapabilities `json:"prompts,omitzero"`
	// Resources is present if the server offers resources.
	Resources *ResourceCapabilities `json:"resources,omitzero"`
	// Tools is present if the server offers tools.
	Tools *ToolCapabilities `json:"tools,omitzero"`
	// Tasks is present if the server supports task-augmented requests.
	Tasks *ServerTasksCapabilities `json:"tasks,omitzero"`
	// Extensions lists the optional extensions the server supports, by
	// identifier, each with its settings object.
	Extensions map[string]jsontext.Value `json:"extensions,omitzero"`
}

// LoggingCapabilities marks support for logging.
type LoggingCapabilities struct{}

// CompletionCapabilities marks support for argument completion.
type CompletionCapabilities struct{}

// PromptCapabilities is the server's prompts capability.
type PromptCapabilities struct {
	// ListChanged says whether the server sends
	// notifications/prompts/list_changed.
	ListChanged bool `json:"listChanged,omitzero"`
}

// ResourceCapabilities is the server's resources capability.
type ResourceCapabilities struct {
	// Subscribe says whether the server supports resources/subscribe.
	Subscribe bool `json:"subscribe,omitzero"`
	// ListChanged says whether the server sends
	// notifications/resources/list_changed.
	ListChanged bool `json:"listChanged,omitzero"`
}

// ToolCapabilities is the server's tools capability.
type ToolCapabilities struct {
	// ListChanged says whether the server sends
	// notifications/tools/list_changed.
	ListChanged bool `json:"listChanged,omitzero"`
}

// ServerTasksCapabilities is the server's tasks capability.
type ServerTasksCapabilities struct {
	// List is present if the server supports tasks/list.
	List *TasksListCapabilities `json:"list,omitzero"`
	// Cancel is present if the server supports tasks/cancel.
	Cancel *TasksCancelCapabilities `json:"cancel,omitzero"`
	// Requests says which requests the server can run as tasks.
	Requests *ServerTaskRequestsCapabilities `json:"requests,omitzero"`
}

// ServerTaskRequestsCapabilities lists the client-to-server requests a server
// can run as tasks.
type ServerTaskRequestsCapabilities struct {
	// Tools is task support for tool requests.
	Tools *ToolsTaskCapabilities `json:"tools,omitzero"`
}

// ToolsTaskCapabilities is task support for tool requests.
type ToolsTaskCapabilities struct {
	// Call is present if tools/call can run as a task.
	Call *TaskRequestCapability `json:"call,omitzero"`
}

// ---------------------------------------------------------------------------
// Lifecycle

// InitializeParams are the params of an initialize request.
type InitializeParams struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// ProtocolVersion is the latest protocol version the client supports.
	ProtocolVersion string `json:"protocolVersion"`
	// Capabilities are the client's capabilities.
	Capabilities ClientCapabilities `json:"capabilities"`
	// ClientInfo describes the client.
	ClientInfo Implementation `json:"clientInfo"`
}

// InitializeResult is the result of an initialize request.
type InitializeResult struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// ProtocolVersion is the protocol version the server wants to use.
	ProtocolVersion string `json:"protocolVersion"`
	// Capabilities are the server's capabilities.
	Capabilities ServerCapabilities `json:"capabilities"`
	// ServerInfo describes the server.
	ServerInfo Implementation `json:"serverInfo"`
	// Instructions tell the client how to use the server.
	Instructions string `json:"instructions,omitzero"`
}

// InitializedParams are the params of notifications/initialized (the
// spec's NotificationParams).
type InitializedParams struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
}

// PingParams are the params of a ping request (the spec's RequestParams).
type PingParams struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
}

// EmptyResult is a result with no content other than _meta (the spec's
// Result and EmptyResult).
type EmptyResult struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
}

// PaginatedParams are the params of a paginated list request.
type PaginatedParams struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// Cursor is the opaque position to continue listing from.
	Cursor string `json:"cursor,omitzero"`
}

// PaginatedResult is the common part of paginated list results.
type PaginatedResult struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// NextCursor is the position after the last returned item, if there
	// may be more.
	NextCursor string `json:"nextCursor,omitzero"`
}

// CancelledNotificationParams are the params of notifications/cancelled.
type CancelledNotificationParams struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// RequestID is the id of the request to cancel. It is required to cancel
	// a request that is not a task (tasks are cancelled with tasks/cancel).
	RequestID jsonrpc.ID `json:"requestId,omitzero"`
	// Reason optionally says why.
	Reason string `json:"reason,omitzero"`
}

// ProgressNotificationParams are the params of notifications/progress.
type ProgressNotificationParams struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// ProgressToken is the token from the request's _meta: a string or an
	// integer (int64 after decoding).
	ProgressToken any `json:"progressToken"`
	// Progress is the progress so far; it increases with every notification.
	Progress float64 `json:"progress"`
	// Total is the total amount of work, if known (0 means unknown).
	Total float64 `json:"total,omitzero"`
	// Message describes the current progress.
	Message string `json:"message,omitzero"`
}

// UnmarshalJSONFrom implements json.UnmarshalerFrom. It requires the progress
// token to be a string or an integer and decodes an integer token as int64.
func (p *ProgressNotificationParams) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	type plain ProgressNotificationParams
	var out struct {
		plain
		ProgressToken jsontext.Value `json:"progressToken"`
	}
	if err := json.UnmarshalDecode(dec, &out); err != nil {
		return err
	}
	tok, err := parseProgressToken(out.ProgressToken)
	if err != nil {
		return err
	}
	*p = ProgressNotificationParams(out.plain)
	p.ProgressToken = tok
	return nil
}

// parseProgressToken parses a progress token: a string or an integer.
func parseProgressToken(v jsontext.Value) (any, error) {
	switch v.Kind() {
	case '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, err
		}
		return s, nil
	case '0':
		var n int64
		if err := json.Unmarshal(v, &n); err != nil {
			return nil, fmt.Errorf("mcp: progress token %s is not an integer: %w", v, err)
		}
		return n, nil
	case 0:
		return nil, errors.New(`mcp: progress notification is missing "progressToken"`)
	}
	return nil, fmt.Errorf("mcp: progress token must be a string or an integer, not %s", kindString(v.Kind()))
}

// ---------------------------------------------------------------------------
// Tools

// Tool is a tool the client can call.
type Tool struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// Name is the tool's programmatic name.
	Name string `json:"name"`
	// Title is the human-readable display name.
	Title string `json:"title,omitzero"`
	// Description says what the tool does.
	Description string `json:"description,omitzero"`
	// InputSchema is the JSON Schema (an object schema) of the tool's
	// arguments, kept byte for byte. It is required: an empty value is
	// encoded as {"type":"object"}.
	InputSchema jsontext.Value `json:"inputSchema"`
	// OutputSchema is the JSON Schema of the tool's structured content, if
	// any, kept byte for byte.
	OutputSchema jsontext.Value `json:"outputSchema,omitzero"`
	// Annotations are hints about the tool's behaviour.
	Annotations *ToolAnnotations `json:"annotations,omitzero"`
	// Execution says how the tool may be executed (task support).
	Execution *ToolExecution `json:"execution,omitzero"`
	// Icons lists icons for the tool.
	Icons []Icon `json:"icons,omitzero"`
}

// ToolAnnotations are untrusted hints about a tool's behaviour. Nil pointers
// mean "not specified" (each hint has a default in the spec).
type ToolAnnotations struct {
	// Title is a human-readable title for the tool.
	Title string `json:"title,omitzero"`
	// ReadOnlyHint: the tool does not modify its environment (default false).
	ReadOnlyHint *bool `json:"readOnlyHint,omitzero"`
	// DestructiveHint: the tool may perform destructive updates (default
	// true; meaningful only when not read-only).
	DestructiveHint *bool `json:"destructiveHint,omitzero"`
	// IdempotentHint: repeated calls with the same arguments have no
	// additional effect (default false).
	IdempotentHint *bool `json:"idempotentHint,omitzero"`
	// OpenWorldHint: the tool interacts with an open world of external
	// entities (default true).
	OpenWorldHint *bool `json:"openWorldHint,omitzero"`
}

// ToolExecution describes how a tool may be executed.
type ToolExecution struct {
	// TaskSupport says whether the tool may or must be called as a task.
	// Empty means TaskSupportForbidden.
	TaskSupport TaskSupport `json:"taskSupport,omitzero"`
}

// TaskSupport says whether a tool supports task-augmented execution.
type TaskSupport string

// Task support levels.
const (
	TaskSupportForbidden TaskSupport = "forbidden"
	TaskSupportOptional  TaskSupport = "optional"
	TaskSupportRequired  TaskSupport = "required"
)

// ListToolsParams are the params of tools/list.
type ListToolsParams struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// Cursor is the opaque position to continue listing from.
	Cursor string `json:"cursor,omitzero"`
}

// ListToolsResult is the result of tools/list.
type ListToolsResult struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// NextCursor is the position after the last returned tool, if any.
	NextCursor string `json:"nextCursor,omitzero"`
	// Tools are the tools.
	Tools []*Tool `json:"tools"`
}

// CallToolParams are the params of tools/call.
type CallToolParams struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// Name is the name of the tool to call.
	Name string `json:"name"`
	// Arguments is the JSON object of arguments, kept byte for byte.
	Arguments jsontext.Value `json:"arguments,omitzero"`
	// Task, if set, asks for the call to run as a task.
	Task *TaskMetadata `json:"task,omitzero"`
}

// CallToolResult is the result of tools/call. Decoding and encoding it is on
// the hot path; Content is decoded by its "type" discriminator without
// intermediate maps.
type CallToolResult struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// Content is the unstructured result.
	Content []Content `json:"content"`
	// StructuredContent is the structured result (a JSON object), kept byte
	// for byte.
	StructuredContent jsontext.Value `json:"structuredContent,omitzero"`
	// IsError reports that the tool call ended in an error.
	IsError bool `json:"isError,omitzero"`
}

// ToolListChangedParams are the params of notifications/tools/list_changed.
type ToolListChangedParams struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
}

// MarshalJSONTo implements json.MarshalerTo; it writes {"type":"object"} for
// an empty InputSchema.
func (t Tool) MarshalJSONTo(enc *jsontext.Encoder) error {
	type plain Tool
	if len(t.InputSchema) == 0 {
		t.InputSchema = jsontext.Value(`{"type":"object"}`)
	}
	return json.MarshalEncode(enc, (*plain)(&t))
}
