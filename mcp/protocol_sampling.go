// Copyright 2026 The mcpgate Authors. All rights reserved.

package mcp

import (
	"errors"
	"fmt"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Sampling and elicitation (server-to-client requests).

// Values of CreateMessageParams.IncludeContext. "thisServer" and
// "allServers" are soft-deprecated and need the client's sampling.context
// capability.
const (
	IncludeContextNone       = "none"
	IncludeContextThisServer = "thisServer"
	IncludeContextAllServers = "allServers"
)

// Common values of CreateMessageResult.StopReason (any string is allowed).
const (
	StopReasonEndTurn      = "endTurn"
	StopReasonStopSequence = "stopSequence"
	StopReasonMaxTokens    = "maxTokens"
	StopReasonToolUse      = "toolUse"
)

// ToolChoice modes.
const (
	ToolChoiceAuto     = "auto"
	ToolChoiceRequired = "required"
	ToolChoiceNone     = "none"
)

// ToolChoice controls how the model uses tools in sampling.
type ToolChoice struct {
	// Mode is ToolChoiceAuto (the default), ToolChoiceRequired or
	// ToolChoiceNone.
	Mode string `json:"mode,omitzero"`
}

// ModelHint is a hint for model selection.
type ModelHint struct {
	// Name is a full or partial model name, such as "claude-3-5-sonnet".
	Name string `json:"name,omitzero"`
}

// ModelPreferences are the server's preferences for model selection. The
// priorities range from 0 to 1; nil means unspecified.
type ModelPreferences struct {
	// Hints are model name hints, in order of preference.
	Hints []ModelHint `json:"hints,omitzero"`
	// CostPriority is how much to prioritize cost.
	CostPriority *float64 `json:"costPriority,omitzero"`
	// SpeedPriority is how much to prioritize low latency.
	SpeedPriority *float64 `json:"speedPriority,omitzero"`
	// IntelligencePriority is how much to prioritize capabilities.
	IntelligencePriority *float64 `json:"intelligencePriority,omitzero"`
}

// SamplingMessage is a message in a sampling conversation. On the wire its
// content is one block or an array of blocks (text, image, audio, tool_use,
// tool_result): Content decodes from either form, and encodes as a single
// block when it has exactly one element (the form every protocol version
// accepts) and as an array otherwise.
type SamplingMessage struct {
	// Meta is the _meta field.
	Meta Meta
	// Role is the sender.
	Role Role
	// Content is the message content.
	Content []Content
}

// MarshalJSONTo implements json.MarshalerTo.
func (m SamplingMessage) MarshalJSONTo(enc *jsontext.Encoder) error {
	if err := enc.WriteToken(jsontext.BeginObject); err != nil {
		return err
	}
	if err := writeString(enc, "role", string(m.Role), false); err != nil {
		return err
	}
	if err := writeContentOrList(enc, m.Content); err != nil {
		return err
	}
	if err := writeCommon(enc, nil, m.Meta); err != nil {
		return err
	}
	return enc.WriteToken(jsontext.EndObject)
}

func writeContentOrList(enc *jsontext.Encoder, list []Content) error {
	if len(list) != 1 {
		return writeContentList(enc, "content", list)
	}
	if err := writeName(enc, "content"); err != nil {
		return err
	}
	if err := marshalContent(enc, list[0]); err != nil {
		return fmt.Errorf("content: %w", err)
	}
	return nil
}

// UnmarshalJSONFrom implements json.UnmarshalerFrom.
func (m *SamplingMessage) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	var out SamplingMessage
	var hasContent bool
	err := readObject(dec, "sampling message", func(dec *jsontext.Decoder, name []byte) error {
		var err error
		switch string(name) {
		case "role":
			var s string
			s, err = readString(dec, "role")
			out.Role = Role(s)
		case "content":
			hasContent = true
			out.Content, err = readContentOrList(dec, "content", samplingContentSet)
		case "_meta":
			err = json.UnmarshalDecode(dec, &out.Meta)
		default:
			err = dec.SkipValue()
		}
		return err
	})
	if err != nil {
		return err
	}
	if !hasContent {
		return errors.New(`mcp: sampling message is missing "content"`)
	}
	*m = out
	return nil
}

// CreateMessageParams are the params of sampling/createMessage.
type CreateMessageParams struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// Messages is the conversation.
	Messages []*SamplingMessage `json:"messages"`
	// ModelPreferences are the server's model preferences.
	ModelPreferences *ModelPreferences `json:"modelPreferences,omitzero"`
	// SystemPrompt is the system prompt the server wants to use.
	SystemPrompt string `json:"systemPrompt,omitzero"`
	// IncludeContext asks to include context from MCP servers: one of the
	// IncludeContext constants.
	IncludeContext string `json:"includeContext,omitzero"`
	// Temperature is the sampling temperature; nil means the client's
	// choice.
	Temperature *float64 `json:"temperature,omitzero"`
	// MaxTokens is the maximum number of tokens to sample.
	MaxTokens int64 `json:"maxTokens"`
	// StopSequences are sequences that stop sampling.
	StopSequences []string `json:"stopSequences,omitzero"`
	// Metadata is provider-specific metadata (a JSON object), byte for byte.
	Metadata jsontext.Value `json:"metadata,omitzero"`
	// Tools are tools the model may use (needs the client's sampling.tools
	// capability).
	Tools []*Tool `json:"tools,omitzero"`
	// ToolChoice controls how the model uses Tools.
	ToolChoice *ToolChoice `json:"toolChoice,omitzero"`
	// Task, if set, asks for the request to run as a task.
	Task *TaskMetadata `json:"task,omitzero"`
}

// CreateMessageResult is the result of sampling/createMessage. Its content
// follows the same single-or-array rule as SamplingMessage.
type CreateMessageResult struct {
	// Meta is the _meta field.
	Meta Meta
	// Role is the sender (normally RoleAssistant).
	Role Role
	// Content is the sampled content.
	Content []Content
	// Model is the name of the model that generated the message.
	Model string
	// StopReason says why sampling stopped (see the StopReason constants).
	StopReason string
}

// MarshalJSONTo implements json.MarshalerTo.
func (r CreateMessageResult) MarshalJSONTo(enc *jsontext.Encoder) error {
	if err := enc.WriteToken(jsontext.BeginObject); err != nil {
		return err
	}
	if err := writeString(enc, "role", string(r.Role), false); err != nil {
		return err
	}
	if err := writeContentOrList(enc, r.Content); err != nil {
		return err
	}
	if err := writeString(enc, "model", r.Model, false); err != nil {
		return err
	}
	if err := writeString(enc, "stopReason", r.StopReason, true); err != nil {
		return err
	}
	if err := writeCommon(enc, nil, r.Meta); err != nil {
		return err
	}
	return enc.WriteToken(jsontext.EndObject)
}

// UnmarshalJSONFrom implements json.UnmarshalerFrom.
func (r *CreateMessageResult) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	var out CreateMessageResult
	var hasContent bool
	err := readObject(dec, "sampling/createMessage result", func(dec *jsontext.Decoder, name []byte) error {
		var err error
		switch string(name) {
		case "role":
			var s string
			s, err = readString(dec, "role")
			out.Role = Role(s)
		case "content":
			hasContent = true
			out.Content, err = readContentOrList(dec, "content", samplingContentSet)
		case "model":
			out.Model, err = readString(dec, "model")
		case "stopReason":
			out.StopReason, err = readString(dec, "stopReason")
		case "_meta":
			err = json.UnmarshalDecode(dec, &out.Meta)
		default:
			err = dec.SkipValue()
		}
		return err
	})
	if err != nil {
		return err
	}
	if !hasContent {
		return errors.New(`mcp: sampling/createMessage result is missing "content"`)
	}
	*r = out
	return nil
}

// ElicitationMode is the mode of an elicitation request.
type ElicitationMode string

// Elicitation modes.
const (
	// ElicitationModeForm collects structured data in the client's UI. It is
	// the default when the mode is omitted.
	ElicitationModeForm ElicitationMode = "form"
	// ElicitationModeURL sends the user to a URL, for interactions that must
	// not pass through the client (credentials, payments, OAuth).
	ElicitationModeURL ElicitationMode = "url"
)

// ElicitParams are the params of elicitation/create, in form mode (the
// spec's ElicitRequestFormParams: Message and RequestedSchema) or URL mode
// (ElicitRequestURLParams: Message, URL and ElicitationID).
type ElicitParams struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// Mode is the elicitation mode; empty means ElicitationModeForm.
	Mode ElicitationMode `json:"mode,omitzero"`
	// Message is shown to the user.
	Message string `json:"message"`
	// RequestedSchema is the form to fill (form mode; required there).
	RequestedSchema *ElicitationSchema `json:"requestedSchema,omitzero"`
	// URL is the URL the user should open (URL mode).
	URL string `json:"url,omitzero"`
	// ElicitationID identifies the elicitation (URL mode).
	ElicitationID string `json:"elicitationId,omitzero"`
	// Task, if set, asks for the request to run as a task.
	Task *TaskMetadata `json:"task,omitzero"`
}

// EffectiveMode returns p.Mode, or ElicitationModeForm when it is empty.
func (p *ElicitParams) EffectiveMode() ElicitationMode {
	if p.Mode == "" {
		return ElicitationModeForm
	}
	return p.Mode
}

// ElicitationSchema is the requestedSchema of a form elicitation: a flat
// object schema whose properties are primitive schemas.
type ElicitationSchema struct {
	// Schema is the optional "$schema" URI.
	Schema string `json:"$schema,omitzero"`
	// Type is always "object"; empty is encoded as "object".
	Type string `json:"type"`
	// Properties are the form fields.
	Properties map[string]PrimitiveSchemaDefinition `json:"properties"`
	// Required lists the required fields.
	Required []string `json:"required,omitzero"`
}

// MarshalJSONTo implements json.MarshalerTo; it writes "type":"object" when
// Type is empty.
func (s ElicitationSchema) MarshalJSONTo(enc *jsontext.Encoder) error {
	type plain ElicitationSchema
	if s.Type == "" {
		s.Type = "object"
	}
	return json.MarshalEncode(enc, (*plain)(&s))
}

// PrimitiveSchemaDefinition is the schema of one elicitation form field. It
// is flat: one struct covers every variant of the spec.
//
//   - StringSchema: Type "string", Title, Description, MinLength, MaxLength,
//     Format ("email", "uri", "date", "date-time"), Default.
//   - NumberSchema: Type "number" or "integer", Minimum, Maximum, Default.
//   - BooleanSchema: Type "boolean", Default.
//   - UntitledSingleSelectEnumSchema: Type "string", Enum, Default.
//   - TitledSingleSelectEnumSchema: Type "string", OneOf (const and title),
//     Default.
//   - LegacyTitledEnumSchema: Type "string", Enum, EnumNames, Default.
//   - UntitledMultiSelectEnumSchema: Type "array", Items with Type "string"
//     and Enum, MinItems, MaxItems, Default (an array of strings).
//   - TitledMultiSelectEnumSchema: Type "array", Items with AnyOf, MinItems,
//     MaxItems, Default.
type PrimitiveSchemaDefinition struct {
	// Type is "string", "number", "integer", "boolean" or "array".
	Type string `json:"type"`
	// Title is the field's label.
	Title string `json:"title,omitzero"`
	// Description describes the field.
	Description string `json:"description,omitzero"`
	// Format is the string format.
	Format string `json:"format,omitzero"`
	// MinLength is the minimum string length.
	MinLength *int `json:"minLength,omitzero"`
	// MaxLength is the maximum string length.
	MaxLength *int `json:"maxLength,omitzero"`
	// Minimum is the minimum number.
	Minimum *float64 `json:"minimum,omitzero"`
	// Maximum is the maximum number.
	Maximum *float64 `json:"maximum,omitzero"`
	// Enum lists the allowed values of a single-select enum.
	Enum []string `json:"enum,omitzero"`
	// EnumNames are display names for Enum (legacy, deprecated).
	EnumNames []string `json:"enumNames,omitzero"`
	// OneOf lists the allowed values of a titled single-select enum.
	OneOf []EnumOption `json:"oneOf,omitzero"`
	// Items is the item schema of a multi-select enum.
	Items *EnumItemsSchema `json:"items,omitzero"`
	// MinItems is the minimum number of selected items.
	MinItems *int `json:"minItems,omitzero"`
	// MaxItems is the maximum number of selected items.
	MaxItems *int `json:"maxItems,omitzero"`
	// Default is the default value, any JSON value, byte for byte.
	Default jsontext.Value `json:"default,omitzero"`
}

// EnumOption is one value of a titled enum: a const and its display title.
type EnumOption struct {
	// Const is the value.
	Const string `json:"const"`
	// Title is the display name.
	Title string `json:"title"`
}

// EnumItemsSchema is the item schema of a multi-select enum: untitled (Type
// "string" and Enum) or titled (AnyOf).
type EnumItemsSchema struct {
	// Type is "string" for untitled items.
	Type string `json:"type,omitzero"`
	// Enum lists the allowed values (untitled).
	Enum []string `json:"enum,omitzero"`
	// AnyOf lists the allowed values with titles (titled).
	AnyOf []EnumOption `json:"anyOf,omitzero"`
}

// ElicitAction is the user's response to an elicitation.
type ElicitAction string

// Elicitation actions.
const (
	// ElicitActionAccept: the user submitted the form or confirmed.
	ElicitActionAccept ElicitAction = "accept"
	// ElicitActionDecline: the user explicitly declined.
	ElicitActionDecline ElicitAction = "decline"
	// ElicitActionCancel: the user dismissed without choosing.
	ElicitActionCancel ElicitAction = "cancel"
)

// ElicitResult is the result of elicitation/create.
type ElicitResult struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// Action is the user's action.
	Action ElicitAction `json:"action"`
	// Content is the submitted form data (form mode, action accept). Values
	// are strings, numbers (float64 after decoding), booleans, or arrays of
	// strings.
	Content map[string]any `json:"content,omitzero"`
}

// ElicitationCompleteNotificationParams are the params of
// notifications/elicitation/complete.
type ElicitationCompleteNotificationParams struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// ElicitationID is the id of the completed URL-mode elicitation.
	ElicitationID string `json:"elicitationId"`
}

// URLElicitationRequiredErrorData is the data of a JSON-RPC error with code
// CodeURLElicitationRequired (the spec's URLElicitationRequiredError).
type URLElicitationRequiredErrorData struct {
	// Elicitations are the URL-mode elicitations the user must complete.
	Elicitations []*ElicitParams `json:"elicitations"`
}
