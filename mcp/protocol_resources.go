// Copyright 2026 The mcpgate Authors. All rights reserved.

package mcp

import (
	"fmt"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Resources, prompts, completion, logging and roots.

// Resource is a resource the server can read.
type Resource struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// URI is the resource's URI.
	URI string `json:"uri"`
	// Name is the resource's programmatic name.
	Name string `json:"name"`
	// Title is the human-readable display name.
	Title string `json:"title,omitzero"`
	// Description says what the resource represents.
	Description string `json:"description,omitzero"`
	// MIMEType is the resource's MIME type, if known.
	MIMEType string `json:"mimeType,omitzero"`
	// Size is the raw size in bytes, if known.
	Size *int64 `json:"size,omitzero"`
	// Annotations are optional hints for the client.
	Annotations *Annotations `json:"annotations,omitzero"`
	// Icons lists icons for the resource.
	Icons []Icon `json:"icons,omitzero"`
}

// ResourceTemplate describes a family of resources by a URI template.
type ResourceTemplate struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// URITemplate is an RFC 6570 URI template.
	URITemplate string `json:"uriTemplate"`
	// Name is the template's programmatic name.
	Name string `json:"name"`
	// Title is the human-readable display name.
	Title string `json:"title,omitzero"`
	// Description says what the template is for.
	Description string `json:"description,omitzero"`
	// MIMEType is the MIME type of all matching resources, if they share one.
	MIMEType string `json:"mimeType,omitzero"`
	// Annotations are optional hints for the client.
	Annotations *Annotations `json:"annotations,omitzero"`
	// Icons lists icons for the template.
	Icons []Icon `json:"icons,omitzero"`
}

// ListResourcesParams are the params of resources/list.
type ListResourcesParams struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// Cursor is the opaque position to continue listing from.
	Cursor string `json:"cursor,omitzero"`
}

// ListResourcesResult is the result of resources/list.
type ListResourcesResult struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// NextCursor is the position after the last returned item, if any.
	NextCursor string `json:"nextCursor,omitzero"`
	// Resources are the resources.
	Resources []*Resource `json:"resources"`
}

// ListResourceTemplatesParams are the params of resources/templates/list.
type ListResourceTemplatesParams struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// Cursor is the opaque position to continue listing from.
	Cursor string `json:"cursor,omitzero"`
}

// ListResourceTemplatesResult is the result of resources/templates/list.
type ListResourceTemplatesResult struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// NextCursor is the position after the last returned item, if any.
	NextCursor string `json:"nextCursor,omitzero"`
	// ResourceTemplates are the templates.
	ResourceTemplates []*ResourceTemplate `json:"resourceTemplates"`
}

// ReadResourceParams are the params of resources/read.
type ReadResourceParams struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// URI is the resource to read.
	URI string `json:"uri"`
}

// ReadResourceResult is the result of resources/read.
type ReadResourceResult struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// Contents are the resource's contents (several for a directory-like
	// resource).
	Contents []*ResourceContents `json:"contents"`
}

// SubscribeParams are the params of resources/subscribe.
type SubscribeParams struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// URI is the resource to subscribe to.
	URI string `json:"uri"`
}

// UnsubscribeParams are the params of resources/unsubscribe.
type UnsubscribeParams struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// URI is the resource to unsubscribe from.
	URI string `json:"uri"`
}

// ResourceUpdatedNotificationParams are the params of
// notifications/resources/updated.
type ResourceUpdatedNotificationParams struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// URI is the resource that changed (possibly a sub-resource of the one
	// subscribed to).
	URI string `json:"uri"`
}

// ResourceListChangedParams are the params of
// notifications/resources/list_changed.
type ResourceListChangedParams struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
}

// Prompt is a prompt or prompt template the server offers.
type Prompt struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// Name is the prompt's programmatic name.
	Name string `json:"name"`
	// Title is the human-readable display name.
	Title string `json:"title,omitzero"`
	// Description says what the prompt provides.
	Description string `json:"description,omitzero"`
	// Arguments are the arguments the prompt template takes.
	Arguments []*PromptArgument `json:"arguments,omitzero"`
	// Icons lists icons for the prompt.
	Icons []Icon `json:"icons,omitzero"`
}

// PromptArgument describes an argument of a prompt template.
type PromptArgument struct {
	// Name is the argument's programmatic name.
	Name string `json:"name"`
	// Title is the human-readable display name.
	Title string `json:"title,omitzero"`
	// Description says what the argument is.
	Description string `json:"description,omitzero"`
	// Required says whether the argument must be provided.
	Required bool `json:"required,omitzero"`
}

// PromptMessage is a message of a prompt. Content is a ContentBlock (text,
// image, audio, resource_link or resource).
type PromptMessage struct {
	// Role is the sender.
	Role Role `json:"role"`
	// Content is the message content.
	Content Content `json:"content"`
}

// UnmarshalJSONFrom implements json.UnmarshalerFrom.
func (m *PromptMessage) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	var out PromptMessage
	var hasContent bool
	err := readObject(dec, "prompt message", func(dec *jsontext.Decoder, name []byte) error {
		var err error
		switch string(name) {
		case "role":
			var s string
			s, err = readString(dec, "role")
			out.Role = Role(s)
		case "content":
			hasContent = true
			out.Content, err = readContent(dec, contentBlockSet)
			if err != nil {
				err = fmt.Errorf("content: %w", err)
			}
		default:
			err = dec.SkipValue()
		}
		return err
	})
	if err != nil {
		return err
	}
	if !hasContent {
		return fmt.Errorf(`mcp: prompt message is missing "content"`)
	}
	*m = out
	return nil
}

// MarshalJSONTo implements json.MarshalerTo.
func (m PromptMessage) MarshalJSONTo(enc *jsontext.Encoder) error {
	if err := enc.WriteToken(jsontext.BeginObject); err != nil {
		return err
	}
	if err := writeString(enc, "role", string(m.Role), false); err != nil {
		return err
	}
	if err := writeName(enc, "content"); err != nil {
		return err
	}
	if err := marshalContent(enc, m.Content); err != nil {
		return fmt.Errorf("content: %w", err)
	}
	return enc.WriteToken(jsontext.EndObject)
}

// ListPromptsParams are the params of prompts/list.
type ListPromptsParams struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// Cursor is the opaque position to continue listing from.
	Cursor string `json:"cursor,omitzero"`
}

// ListPromptsResult is the result of prompts/list.
type ListPromptsResult struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// NextCursor is the position after the last returned item, if any.
	NextCursor string `json:"nextCursor,omitzero"`
	// Prompts are the prompts.
	Prompts []*Prompt `json:"prompts"`
}

// GetPromptParams are the params of prompts/get.
type GetPromptParams struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// Name is the prompt's name.
	Name string `json:"name"`
	// Arguments are the values for the prompt template's arguments.
	Arguments map[string]string `json:"arguments,omitzero"`
}

// GetPromptResult is the result of prompts/get.
type GetPromptResult struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// Description describes the prompt.
	Description string `json:"description,omitzero"`
	// Messages are the prompt's messages.
	Messages []*PromptMessage `json:"messages"`
}

// PromptListChangedParams are the params of
// notifications/prompts/list_changed.
type PromptListChangedParams struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
}

// Reference types for completion/complete.
const (
	RefTypePrompt   = "ref/prompt"
	RefTypeResource = "ref/resource"
)

// CompleteReference is the "ref" of completion/complete: a prompt reference
// (Type RefTypePrompt, Name and optional Title; the spec's PromptReference)
// or a resource template reference (Type RefTypeResource and URI; the spec's
// ResourceTemplateReference).
type CompleteReference struct {
	// Type is RefTypePrompt or RefTypeResource.
	Type string `json:"type"`
	// Name is the prompt's name (prompt references).
	Name string `json:"name,omitzero"`
	// Title is the prompt's display title (prompt references).
	Title string `json:"title,omitzero"`
	// URI is the resource template's URI or URI template (resource
	// template references).
	URI string `json:"uri,omitzero"`
}

// UnmarshalJSONFrom implements json.UnmarshalerFrom. It checks the
// reference's type and required members.
func (r *CompleteReference) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	type plain CompleteReference
	var out plain
	if err := json.UnmarshalDecode(dec, &out); err != nil {
		return err
	}
	switch out.Type {
	case RefTypePrompt:
		if out.Name == "" {
			return fmt.Errorf(`mcp: %s reference is missing "name"`, out.Type)
		}
	case RefTypeResource:
		if out.URI == "" {
			return fmt.Errorf(`mcp: %s reference is missing "uri"`, out.Type)
		}
	default:
		return fmt.Errorf("mcp: unknown completion reference type %q", out.Type)
	}
	*r = CompleteReference(out)
	return nil
}

// CompleteArgument is the argument being completed.
type CompleteArgument struct {
	// Name is the argument's name.
	Name string `json:"name"`
	// Value is the value typed so far.
	Value string `json:"value"`
}

// CompleteContext is additional context for completion.
type CompleteContext struct {
	// Arguments are values of arguments already resolved.
	Arguments map[string]string `json:"arguments,omitzero"`
}

// CompleteParams are the params of completion/complete.
type CompleteParams struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// Ref is the prompt or resource template whose argument is completed.
	Ref *CompleteReference `json:"ref"`
	// Argument is the argument being completed.
	Argument CompleteArgument `json:"argument"`
	// Context is additional context, if any.
	Context *CompleteContext `json:"context,omitzero"`
}

// CompletionResultDetails is the "completion" member of CompleteResult.
type CompletionResultDetails struct {
	// Values are the completion values (at most 100).
	Values []string `json:"values"`
	// Total is the total number of available values, if known.
	Total *int `json:"total,omitzero"`
	// HasMore says whether there are more values than returned.
	HasMore bool `json:"hasMore,omitzero"`
}

// CompleteResult is the result of completion/complete.
type CompleteResult struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// Completion holds the completion values.
	Completion CompletionResultDetails `json:"completion"`
}

// LoggingLevel is the severity of a log message (RFC 5424 levels).
type LoggingLevel string

// Logging levels, from least to most severe.
const (
	LoggingLevelDebug     LoggingLevel = "debug"
	LoggingLevelInfo      LoggingLevel = "info"
	LoggingLevelNotice    LoggingLevel = "notice"
	LoggingLevelWarning   LoggingLevel = "warning"
	LoggingLevelError     LoggingLevel = "error"
	LoggingLevelCritical  LoggingLevel = "critical"
	LoggingLevelAlert     LoggingLevel = "alert"
	LoggingLevelEmergency LoggingLevel = "emergency"
)

// Severity returns the level's rank from 0 (debug) to 7 (emergency), or -1
// for an unknown level.
func (l LoggingLevel) Severity() int {
	switch l {
	case LoggingLevelDebug:
		return 0
	case LoggingLevelInfo:
		return 1
	case LoggingLevelNotice:
		return 2
	case LoggingLevelWarning:
		return 3
	case LoggingLevelError:
		return 4
	case LoggingLevelCritical:
		return 5
	case LoggingLevelAlert:
		return 6
	case LoggingLevelEmergency:
		return 7
	}
	return -1
}

// IsValid reports whether l is one of the eight levels.
func (l LoggingLevel) IsValid() bool { return l.Severity() >= 0 }

// Compare returns -1, 0 or +1 as l is less severe than, as severe as, or
// more severe than m. Unknown levels sort below debug.
func (l LoggingLevel) Compare(m LoggingLevel) int {
	a, b := l.Severity(), m.Severity()
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Enabled reports whether a message at level l passes the threshold min
// (the level set with logging/setLevel): l is at least as severe as min.
func (l LoggingLevel) Enabled(min LoggingLevel) bool { return l.IsValid() && l.Compare(min) >= 0 }

// SetLevelParams are the params of logging/setLevel.
type SetLevelParams struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// Level is the minimum level of messages the client wants.
	Level LoggingLevel `json:"level"`
}

// LoggingMessageParams are the params of notifications/message (the spec's
// LoggingMessageNotificationParams).
type LoggingMessageParams struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// Level is the message's severity.
	Level LoggingLevel `json:"level"`
	// Logger names the logger that emitted the message.
	Logger string `json:"logger,omitzero"`
	// Data is the message: any JSON value, kept byte for byte. Required: an
	// empty value is encoded as null.
	Data jsontext.Value `json:"data"`
}

// MarshalJSONTo implements json.MarshalerTo, writing null for empty Data.
func (p LoggingMessageParams) MarshalJSONTo(enc *jsontext.Encoder) error {
	type plain LoggingMessageParams
	if len(p.Data) == 0 {
		p.Data = jsontext.Value("null")
	}
	return json.MarshalEncode(enc, (*plain)(&p))
}

// Root is a directory or file the client makes available to servers.
type Root struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// URI identifies the root; it must start with file://.
	URI string `json:"uri"`
	// Name is a human-readable name for the root.
	Name string `json:"name,omitzero"`
}

// ListRootsParams are the params of roots/list (the spec's RequestParams).
type ListRootsParams struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
}

// ListRootsResult is the result of roots/list.
type ListRootsResult struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// Roots are the roots.
	Roots []*Root `json:"roots"`
}

// RootsListChangedParams are the params of notifications/roots/list_changed.
type RootsListChangedParams struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
}
