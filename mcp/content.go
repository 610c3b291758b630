// Copyright 2026 The mcpgate Authors. All rights reserved.

package mcp

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Content is a content block: one of *TextContent, *ImageContent,
// *AudioContent, *ResourceLink, *EmbeddedResource (the spec's ContentBlock),
// or *ToolUseContent, *ToolResultContent (only in sampling messages).
//
// A content block encodes with its "type" discriminator; slices of Content
// in the types of this package decode by that discriminator, and an unknown
// type is an error.
type Content interface {
	// ContentType returns the value of the block's "type" member.
	ContentType() string
	isContent()
}

// Content type discriminators.
const (
	ContentTypeText         = "text"
	ContentTypeImage        = "image"
	ContentTypeAudio        = "audio"
	ContentTypeResourceLink = "resource_link"
	ContentTypeResource     = "resource"
	ContentTypeToolUse      = "tool_use"
	ContentTypeToolResult   = "tool_result"
)

// TextContent is text provided to or from an LLM.
type TextContent struct {
	// Text is the text.
	Text string
	// Annotations are optional hints for the client.
	Annotations *Annotations
	// Meta is the _meta field.
	Meta Meta
}

// ImageContent is an image provided to or from an LLM.
type ImageContent struct {
	// Data is the image data (base64 on the wire).
	Data []byte
	// MIMEType is the image's MIME type.
	MIMEType string
	// Annotations are optional hints for the client.
	Annotations *Annotations
	// Meta is the _meta field.
	Meta Meta
}

// AudioContent is audio provided to or from an LLM.
type AudioContent struct {
	// Data is the audio data (base64 on the wire).
	Data []byte
	// MIMEType is the audio's MIME type.
	MIMEType string
	// Annotations are optional hints for the client.
	Annotations *Annotations
	// Meta is the _meta field.
	Meta Meta
}

// ResourceLink is a link to a resource that the server can read. It has the
// fields of a Resource.
type ResourceLink struct {
	// URI is the resource's URI.
	URI string
	// Name is the resource's programmatic name.
	Name string
	// Title is the human-readable display name.
	Title string
	// Description says what the resource represents.
	Description string
	// MIMEType is the resource's MIME type, if known.
	MIMEType string
	// Size is the raw size in bytes, if known.
	Size *int64
	// Icons lists icons for the resource.
	Icons []Icon
	// Annotations are optional hints for the client.
	Annotations *Annotations
	// Meta is the _meta field.
	Meta Meta
}

// EmbeddedResource is the contents of a resource embedded in a prompt or
// tool result.
type EmbeddedResource struct {
	// Resource is the resource's contents (text or blob). Required.
	Resource *ResourceContents
	// Annotations are optional hints for the client.
	Annotations *Annotations
	// Meta is the _meta field.
	Meta Meta
}

// ToolUseContent is a request from the assistant to call a tool (sampling
// with tools).
type ToolUseContent struct {
	// ID identifies this tool use; a ToolResultContent refers to it.
	ID string
	// Name is the name of the tool to call.
	Name string
	// Input is the JSON object of arguments, kept byte for byte. Required:
	// an empty value is encoded as {}.
	Input jsontext.Value
	// Meta is the _meta field.
	Meta Meta
}

// ToolResultContent is the result of a tool use, sent back to the model
// (sampling with tools).
type ToolResultContent struct {
	// ToolUseID is the ID of the ToolUseContent this is the result of.
	ToolUseID string
	// Content is the unstructured result: only the ContentBlock types
	// (text, image, audio, resource_link, resource).
	Content []Content
	// StructuredContent is the structured result, kept byte for byte.
	StructuredContent jsontext.Value
	// IsError reports that the tool use ended in an error.
	IsError bool
	// Meta is the _meta field.
	Meta Meta
}

// ContentType implements Content.
func (*TextContent) ContentType() string { return ContentTypeText }

// ContentType implements Content.
func (*ImageContent) ContentType() string { return ContentTypeImage }

// ContentType implements Content.
func (*AudioContent) ContentType() string { return ContentTypeAudio }

// ContentType implements Content.
func (*ResourceLink) ContentType() string { return ContentTypeResourceLink }

// ContentType implements Content.
func (*EmbeddedResource) ContentType() string { return ContentTypeResource }

// ContentType implements Content.
func (*ToolUseContent) ContentType() string { return ContentTypeToolUse }

// ContentType implements Content.
func (*ToolResultContent) ContentType() string { return ContentTypeToolResult }

func (*TextContent) isContent()       {}
func (*ImageContent) isContent()      {}
func (*AudioContent) isContent()      {}
func (*ResourceLink) isContent()      {}
func (*EmbeddedResource) isContent()  {}
func (*ToolUseContent) isContent()    {}
func (*ToolResultContent) isContent() {}

// ResourceContents is the contents of a resource: text (the spec's
// TextResourceContents) or binary (BlobResourceContents). It encodes as blob
// contents when Blob is non-nil and as text contents otherwise.
type ResourceContents struct {
	// URI is the resource's URI.
	URI string
	// MIMEType is the resource's MIME type, if known.
	MIMEType string
	// Text is the text of a text resource.
	Text string
	// Blob is the data of a binary resource (base64 on the wire).
	Blob []byte
	// Meta is the _meta field.
	Meta Meta
}

// ---------------------------------------------------------------------------
// Encoding

// encoder helpers; each writes one member. They are no-ops when the value
// is the zero value and omit is true.

func writeName(enc *jsontext.Encoder, name string) error {
	return enc.WriteToken(jsontext.String(name))
}

func writeString(enc *jsontext.Encoder, name, v string, omitEmpty bool) error {
	if omitEmpty && v == "" {
		return nil
	}
	if err := writeName(enc, name); err != nil {
		return err
	}
	return enc.WriteToken(jsontext.String(v))
}

func writeAny(enc *jsontext.Encoder, name string, v any) error {
	if err := writeName(enc, name); err != nil {
		return err
	}
	return json.MarshalEncode(enc, v)
}

func writeRaw(enc *jsontext.Encoder, name string, v jsontext.Value, def string) error {
	if len(v) == 0 {
		if def == "" {
			return nil
		}
		v = jsontext.Value(def)
	}
	if err := writeName(enc, name); err != nil {
		return err
	}
	return enc.WriteValue(v)
}

func writeCommon(enc *jsontext.Encoder, a *Annotations, m Meta) error {
	if a != nil {
		if err := writeAny(enc, "annotations", a); err != nil {
			return err
		}
	}
	if len(m) > 0 {
		if err := writeAny(enc, "_meta", m); err != nil {
			return err
		}
	}
	return nil
}

func beginBlock(enc *jsontext.Encoder, typ string) error {
	if err := enc.WriteToken(jsontext.BeginObject); err != nil {
		return err
	}
	return writeString(enc, "type", typ, false)
}

// MarshalJSONTo implements json.MarshalerTo.
func (c TextContent) MarshalJSONTo(enc *jsontext.Encoder) error {
	if err := beginBlock(enc, ContentTypeText); err != nil {
		return err
	}
	if err := writeString(enc, "text", c.Text, false); err != nil {
		return err
	}
	if err := writeCommon(enc, c.Annotations, c.Meta); err != nil {
		return err
	}
	return enc.WriteToken(jsontext.EndObject)
}

func marshalMedia(enc *jsontext.Encoder, typ string, data []byte, mimeType string, a *Annotations, m Meta) error {
	if err := beginBlock(enc, typ); err != nil {
		return err
	}
	if data == nil {
		data = []byte{}
	}
	if err := writeAny(enc, "data", data); err != nil {
		return err
	}
	if err := writeString(enc, "mimeType", mimeType, false); err != nil {
		return err
	}
	if err := writeCommon(enc, a, m); err != nil {
		return err
	}
	return enc.WriteToken(jsontext.EndObject)
}

// MarshalJSONTo implements json.MarshalerTo.
func (c ImageContent) MarshalJSONTo(enc *jsontext.Encoder) error {
	return marshalMedia(enc, ContentTypeImage, c.Data, c.MIMEType, c.Annotations, c.Meta)
}

// MarshalJSONTo implements json.MarshalerTo.
func (c AudioContent) MarshalJSONTo(enc *jsontext.Encoder) error {
	return marshalMedia(enc, ContentTypeAudio, c.Data, c.MIMEType, c.Annotations, c.Meta)
}

// MarshalJSONTo implements json.MarshalerTo.
func (c ResourceLink) MarshalJSONTo(enc *jsontext.Encoder) error {
	if err := beginBlock(enc, ContentTypeResourceLink); err != nil {
		return err
	}
	if err := writeString(enc, "uri", c.URI, false); err != nil {
		return err
	}
	if err := writeString(enc, "name", c.Name, false); err != nil {
		return err
	}
	if err := writeString(enc, "title", c.Title, true); err != nil {
		return err
	}
	if err := writeString(enc, "description", c.Description, true); err != nil {
		return err
	}
	if err := writeString(enc, "mimeType", c.MIMEType, true); err != nil {
		return err
	}
	if c.Size != nil {
		if err := writeName(enc, "size"); err != nil {
			return err
		}
		if err := enc.WriteToken(jsontext.Int(*c.Size)); err != nil {
			return err
		}
	}
	if len(c.Icons) > 0 {
		if err := writeAny(enc, "icons", c.Icons); err != nil {
			return err
		}
	}
	if err := writeCommon(enc, c.Annotations, c.Meta); err != nil {
		return err
	}
	return enc.WriteToken(jsontext.EndObject)
}

// MarshalJSONTo implements json.MarshalerTo.
func (c EmbeddedResource) MarshalJSONTo(enc *jsontext.Encoder) error {
	if c.Resource == nil {
		return errors.New("mcp: EmbeddedResource.Resource is nil")
	}
	if err := beginBlock(enc, ContentTypeResource); err != nil {
		return err
	}
	if err := writeAny(enc, "resource", c.Resource); err != nil {
		return err
	}
	if err := writeCommon(enc, c.Annotations, c.Meta); err != nil {
		return err
	}
	return enc.WriteToken(jsontext.EndObject)
}

// MarshalJSONTo implements json.MarshalerTo.
func (c ToolUseContent) MarshalJSONTo(enc *jsontext.Encoder) error {
	if err := beginBlock(enc, ContentTypeToolUse); err != nil {
		return err
	}
	if err := writeString(enc, "id", c.ID, false); err != nil {
		return err
	}
	if err := writeString(enc, "name", c.Name, false); err != nil {
		return err
	}
	if err := writeRaw(enc, "input", c.Input, "{}"); err != nil {
		return err
	}
	if err := writeCommon(enc, nil, c.Meta); err != nil {
		return err
	}
	return enc.WriteToken(jsontext.EndObject)
}

// MarshalJSONTo implements json.MarshalerTo.
func (c ToolResultContent) MarshalJSONTo(enc *jsontext.Encoder) error {
	if err := beginBlock(enc, ContentTypeToolResult); err != nil {
		return err
	}
	if err := writeString(enc, "toolUseId", c.ToolUseID, false); err != nil {
		return err
	}
	if err := writeContentList(enc, "content", c.Content); err != nil {
		return err
	}
	if err := writeRaw(enc, "structuredContent", c.StructuredContent, ""); err != nil {
		return err
	}
	if c.IsError {
		if err := writeName(enc, "isError"); err != nil {
			return err
		}
		if err := enc.WriteToken(jsontext.True); err != nil {
			return err
		}
	}
	if err := writeCommon(enc, nil, c.Meta); err != nil {
		return err
	}
	return enc.WriteToken(jsontext.EndObject)
}

// writeContentList writes name and a JSON array of the blocks (never null).
func writeContentList(enc *jsontext.Encoder, name string, list []Content) error {
	if err := writeName(enc, name); err != nil {
		return err
	}
	if err := enc.WriteToken(jsontext.BeginArray); err != nil {
		return err
	}
	for i, c := range list {
		if err := marshalContent(enc, c); err != nil {
			return fmt.Errorf("%s[%d]: %w", name, i, err)
		}
	}
	return enc.WriteToken(jsontext.EndArray)
}

// marshalContent writes one content block; a nil block is an error.
func marshalContent(enc *jsontext.Encoder, c Content) error {
	switch c := c.(type) {
	case *TextContent:
		if c != nil {
			return c.MarshalJSONTo(enc)
		}
	case *ImageContent:
		if c != nil {
			return c.MarshalJSONTo(enc)
		}
	case *AudioContent:
		if c != nil {
			return c.MarshalJSONTo(enc)
		}
	case *ResourceLink:
		if c != nil {
			return c.MarshalJSONTo(enc)
		}
	case *EmbeddedResource:
		if c != nil {
			return c.MarshalJSONTo(enc)
		}
	case *ToolUseContent:
		if c != nil {
			return c.MarshalJSONTo(enc)
		}
	case *ToolResultContent:
		if c != nil {
			return c.MarshalJSONTo(enc)
		}
	}
	return errors.New("mcp: nil content block")
}

// MarshalJSONTo implements json.MarshalerTo.
func (r ResourceContents) MarshalJSONTo(enc *jsontext.Encoder) error {
	if err := enc.WriteToken(jsontext.BeginObject); err != nil {
		return err
	}
	if err := writeString(enc, "uri", r.URI, false); err != nil {
		return err
	}
	if err := writeString(enc, "mimeType", r.MIMEType, true); err != nil {
		return err
	}
	if r.Blob != nil {
		if r.Text != "" {
			return errors.New("mcp: ResourceContents has both Text and Blob")
		}
		if err := writeAny(enc, "blob", r.Blob); err != nil {
			return err
		}
	} else if err := writeString(enc, "text", r.Text, false); err != nil {
		return err
	}
	if err := writeCommon(enc, nil, r.Meta); err != nil {
		return err
	}
	return enc.WriteToken(jsontext.EndObject)
}

// ---------------------------------------------------------------------------
// Decoding

// beginObject reads the '{' that starts a JSON object.
func beginObject(dec *jsontext.Decoder, what string) error {
	tok, err := dec.ReadToken()
	if err != nil {
		return err
	}
	if tok.Kind() != '{' {
		return fmt.Errorf("mcp: %s must be a JSON object, not %s", what, kindString(tok.Kind()))
	}
	return nil
}

// nextMember reads the name of the next member of the object being read, or
// the '}' that ends it (ok false). The name is unquoted and is only valid
// until the next read from dec.
func nextMember(dec *jsontext.Decoder) (name []byte, ok bool, err error) {
	if dec.PeekKind() == '}' {
		_, err := dec.ReadToken()
		return nil, false, err
	}
	v, err := dec.ReadValue() // a name, or the syntax error
	if err != nil {
		return nil, false, err
	}
	name = []byte(v)
	if len(name) >= 2 {
		name = name[1 : len(name)-1]
	}
	if bytes.IndexByte(name, '\\') >= 0 {
		if name, err = jsontext.AppendUnquote(nil, v); err != nil {
			return nil, false, err
		}
	}
	return name, true, nil
}

// readObject reads a JSON object from dec and calls member for each member
// with its unquoted name; member must read exactly the member's value (or
// skip it). name is only valid until member reads from dec. Hot paths use
// beginObject and nextMember directly to avoid the closure's allocations.
func readObject(dec *jsontext.Decoder, what string, member func(dec *jsontext.Decoder, name []byte) error) error {
	if err := beginObject(dec, what); err != nil {
		return err
	}
	for {
		name, ok, err := nextMember(dec)
		if err != nil || !ok {
			return err
		}
		if err := member(dec, name); err != nil {
			return err
		}
	}
}

func kindString(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "invalid JSON"
}

// readString reads a JSON string.
func readString(dec *jsontext.Decoder, name string) (string, error) {
	tok, err := dec.ReadToken()
	if err != nil {
		return "", err
	}
	if tok.Kind() != '"' {
		return "", fmt.Errorf("mcp: %q must be a string, not %s", name, kindString(tok.Kind()))
	}
	return tok.String(), nil
}

// readBool reads a JSON boolean.
func readBool(dec *jsontext.Decoder, name string) (bool, error) {
	tok, err := dec.ReadToken()
	if err != nil {
		return false, err
	}
	switch tok.Kind() {
	case 't':
		return true, nil
	case 'f':
		return false, nil
	}
	return false, fmt.Errorf("mcp: %q must be a boolean, not %s", name, kindString(tok.Kind()))
}

// readRawObject reads a JSON object (or null, giving nil) and returns a copy
// of its bytes.
func readRawObject(dec *jsontext.Decoder, name string) (jsontext.Value, error) {
	v, err := dec.ReadValue()
	if err != nil {
		return nil, err
	}
	switch v.Kind() {
	case '{':
		return slices.Clone(v), nil
	case 'n':
		return nil, nil
	}
	return nil, fmt.Errorf("mcp: %q must be an object, not %s", name, kindString(v.Kind()))
}

// contentSet is a set of content types allowed in some position.
type contentSet uint8

const (
	allowBlock    contentSet = 1 << iota // ContentBlock types
	allowToolUses                        // tool_use and tool_result
)

const (
	contentBlockSet    = allowBlock
	samplingContentSet = allowBlock | allowToolUses
)

// contentFields holds the members of any content block while it is decoded.
type contentFields struct {
	typ               string
	text              string
	data              []byte
	mimeType          string
	uri               string
	name              string
	title             string
	description       string
	size              *int64
	icons             []Icon
	resource          *ResourceContents
	id                string
	input             jsontext.Value
	toolUseID         string
	content           []Content
	structuredContent jsontext.Value
	isError           bool
	annotations       *Annotations
	meta              Meta
	has               uint32
}

const (
	hasType uint32 = 1 << iota
	hasText
	hasData
	hasMIMEType
	hasURI
	hasName
	hasResource
	hasID
	hasInput
	hasToolUseID
	hasContent
)

// member decodes one member of a content block.
func (f *contentFields) member(dec *jsontext.Decoder, name []byte) error {
	var err error
	switch string(name) {
	case "type":
		f.typ, err = readContentType(dec)
		f.has |= hasType
	case "text":
		f.text, err = readString(dec, "text")
		f.has |= hasText
	case "data":
		var data []byte
		err = json.UnmarshalDecode(dec, &data)
		f.data = data
		f.has |= hasData
	case "mimeType":
		f.mimeType, err = readString(dec, "mimeType")
		f.has |= hasMIMEType
	case "uri":
		f.uri, err = readString(dec, "uri")
		f.has |= hasURI
	case "name":
		f.name, err = readString(dec, "name")
		f.has |= hasName
	case "title":
		f.title, err = readString(dec, "title")
	case "description":
		f.description, err = readString(dec, "description")
	case "size":
		var size *int64
		err = json.UnmarshalDecode(dec, &size)
		f.size = size
	case "icons":
		var icons []Icon
		err = json.UnmarshalDecode(dec, &icons)
		f.icons = icons
	case "resource":
		rc := new(ResourceContents)
		err = rc.UnmarshalJSONFrom(dec)
		f.resource = rc
		f.has |= hasResource
	case "id":
		f.id, err = readString(dec, "id")
		f.has |= hasID
	case "input":
		f.input, err = readRawObject(dec, "input")
		f.has |= hasInput
	case "toolUseId":
		f.toolUseID, err = readString(dec, "toolUseId")
		f.has |= hasToolUseID
	case "content":
		f.content, err = readContentList(dec, "content", contentBlockSet)
		f.has |= hasContent
	case "structuredContent":
		f.structuredContent, err = readRawObject(dec, "structuredContent")
	case "isError":
		f.isError, err = readBool(dec, "isError")
	case "annotations":
		var a *Annotations
		err = json.UnmarshalDecode(dec, &a)
		f.annotations = a
	case "_meta":
		var m Meta
		err = json.UnmarshalDecode(dec, &m)
		f.meta = m
	default:
		err = dec.SkipValue()
	}
	return err
}

// readContentType reads the "type" of a content block, returning the
// package's constant for known types without allocating.
func readContentType(dec *jsontext.Decoder) (string, error) {
	v, err := dec.ReadValue()
	if err != nil {
		return "", err
	}
	if v.Kind() != '"' {
		return "", fmt.Errorf(`mcp: "type" must be a string, not %s`, kindString(v.Kind()))
	}
	switch string(v) {
	case `"text"`:
		return ContentTypeText, nil
	case `"image"`:
		return ContentTypeImage, nil
	case `"audio"`:
		return ContentTypeAudio, nil
	case `"resource_link"`:
		return ContentTypeResourceLink, nil
	case `"resource"`:
		return ContentTypeResource, nil
	case `"tool_use"`:
		return ContentTypeToolUse, nil
	case `"tool_result"`:
		return ContentTypeToolResult, nil
	}
	b, err := jsontext.AppendUnquote(nil, v)
	return string(b), err
}

// require returns an error naming the first of the required members (bits
// and names in the same order) that is missing.
func (f *contentFields) require(bits []uint32, names ...string) error {
	for i, bit := range bits {
		if f.has&bit == 0 {
			return fmt.Errorf("mcp: %s content block is missing %q", f.typ, names[i])
		}
	}
	return nil
}

// readContent decodes one content block whose type is in allow.
func readContent(dec *jsontext.Decoder, allow contentSet) (Content, error) {
	var f contentFields
	if err := beginObject(dec, "content block"); err != nil {
		return nil, err
	}
	for {
		name, ok, err := nextMember(dec)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		if err := f.member(dec, name); err != nil {
			return nil, err
		}
	}
	if f.has&hasType == 0 {
		return nil, errors.New(`mcp: content block has no "type"`)
	}
	switch f.typ {
	case ContentTypeText:
		if err := f.require([]uint32{hasText}, "text"); err != nil {
			return nil, err
		}
		return &TextContent{Text: f.text, Annotations: f.annotations, Meta: f.meta}, nil
	case ContentTypeImage, ContentTypeAudio:
		if err := f.require([]uint32{hasData, hasMIMEType}, "data", "mimeType"); err != nil {
			return nil, err
		}
		if f.typ == ContentTypeImage {
			return &ImageContent{Data: f.data, MIMEType: f.mimeType, Annotations: f.annotations, Meta: f.meta}, nil
		}
		return &AudioContent{Data: f.data, MIMEType: f.mimeType, Annotations: f.annotations, Meta: f.meta}, nil
	case ContentTypeResourceLink:
		if err := f.require([]uint32{hasURI, hasName}, "uri", "name"); err != nil {
			return nil, err
		}
		return &ResourceLink{
			URI: f.uri, Name: f.name, Title: f.title, Description: f.description,
			MIMEType: f.mimeType, Size: f.size, Icons: f.icons,
			Annotations: f.annotations, Meta: f.meta,
		}, nil
	case ContentTypeResource:
		if err := f.require([]uint32{hasResource}, "resource"); err != nil {
			return nil, err
		}
		return &EmbeddedResource{Resource: f.resource, Annotations: f.annotations, Meta: f.meta}, nil
	case ContentTypeToolUse, ContentTypeToolResult:
		if allow&allowToolUses == 0 {
			return nil, fmt.Errorf("mcp: content type %q is only allowed in sampling messages", f.typ)
		}
		if f.typ == ContentTypeToolUse {
			if err := f.require([]uint32{hasID, hasName, hasInput}, "id", "name", "input"); err != nil {
				return nil, err
			}
			return &ToolUseContent{ID: f.id, Name: f.name, Input: f.input, Meta: f.meta}, nil
		}
		if err := f.require([]uint32{hasToolUseID, hasContent}, "toolUseId", "content"); err != nil {
			return nil, err
		}
		return &ToolResultContent{
			ToolUseID: f.toolUseID, Content: f.content, StructuredContent: f.structuredContent,
			IsError: f.isError, Meta: f.meta,
		}, nil
	}
	return nil, fmt.Errorf("mcp: unknown content type %q", f.typ)
}

// readContentList decodes a JSON array of content blocks (null gives nil).
func readContentList(dec *jsontext.Decoder, name string, allow contentSet) ([]Content, error) {
	switch k := dec.PeekKind(); k {
	case 'n':
		_, err := dec.ReadToken()
		return nil, err
	case '[':
	case 0:
		_, err := dec.ReadToken() // reports the syntax or I/O error
		return nil, err
	default:
		return nil, fmt.Errorf("mcp: %q must be an array of content blocks, not %s", name, kindString(k))
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, err
	}
	// Collect into a small array on the stack, then allocate the result
	// once with the exact size.
	var buf [8]Content
	list := buf[:0]
	for i := 0; dec.PeekKind() != ']'; i++ {
		c, err := readContent(dec, allow)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", name, i, err)
		}
		list = append(list, c)
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, err
	}
	out := make([]Content, len(list))
	copy(out, list)
	return out, nil
}

// readContentOrList decodes a single content block or an array of them.
func readContentOrList(dec *jsontext.Decoder, name string, allow contentSet) ([]Content, error) {
	if dec.PeekKind() == '{' {
		c, err := readContent(dec, allow)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return []Content{c}, nil
	}
	return readContentList(dec, name, allow)
}

// unmarshalContentAs decodes one block and checks that it has type typ.
func unmarshalContentAs[T Content](dec *jsontext.Decoder, dst *T) error {
	c, err := readContent(dec, samplingContentSet)
	if err != nil {
		return err
	}
	t, ok := c.(T)
	if !ok {
		var zero T
		return fmt.Errorf("mcp: content type %q, want %q", c.ContentType(), zero.ContentType())
	}
	*dst = t
	return nil
}

// UnmarshalJSONFrom implements json.UnmarshalerFrom.
func (c *TextContent) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	var t *TextContent
	if err := unmarshalContentAs(dec, &t); err != nil {
		return err
	}
	*c = *t
	return nil
}

// UnmarshalJSONFrom implements json.UnmarshalerFrom.
func (c *ImageContent) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	var t *ImageContent
	if err := unmarshalContentAs(dec, &t); err != nil {
		return err
	}
	*c = *t
	return nil
}

// UnmarshalJSONFrom implements json.UnmarshalerFrom.
func (c *AudioContent) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	var t *AudioContent
	if err := unmarshalContentAs(dec, &t); err != nil {
		return err
	}
	*c = *t
	return nil
}

// UnmarshalJSONFrom implements json.UnmarshalerFrom.
func (c *ResourceLink) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	var t *ResourceLink
	if err := unmarshalContentAs(dec, &t); err != nil {
		return err
	}
	*c = *t
	return nil
}

// UnmarshalJSONFrom implements json.UnmarshalerFrom.
func (c *EmbeddedResource) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	var t *EmbeddedResource
	if err := unmarshalContentAs(dec, &t); err != nil {
		return err
	}
	*c = *t
	return nil
}

// UnmarshalJSONFrom implements json.UnmarshalerFrom.
func (c *ToolUseContent) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	var t *ToolUseContent
	if err := unmarshalContentAs(dec, &t); err != nil {
		return err
	}
	*c = *t
	return nil
}

// UnmarshalJSONFrom implements json.UnmarshalerFrom.
func (c *ToolResultContent) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	var t *ToolResultContent
	if err := unmarshalContentAs(dec, &t); err != nil {
		return err
	}
	*c = *t
	return nil
}

// UnmarshalJSONFrom implements json.UnmarshalerFrom. Exactly one of "text"
// and "blob" must be present.
func (r *ResourceContents) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	var out ResourceContents
	var hasText, hasBlob, hasURI bool
	err := readObject(dec, "resource contents", func(dec *jsontext.Decoder, name []byte) error {
		var err error
		switch string(name) {
		case "uri":
			out.URI, err = readString(dec, "uri")
			hasURI = true
		case "mimeType":
			out.MIMEType, err = readString(dec, "mimeType")
		case "text":
			out.Text, err = readString(dec, "text")
			hasText = true
		case "blob":
			err = json.UnmarshalDecode(dec, &out.Blob)
			if out.Blob == nil {
				out.Blob = []byte{}
			}
			hasBlob = true
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
	switch {
	case !hasURI:
		return errors.New(`mcp: resource contents is missing "uri"`)
	case hasText && hasBlob:
		return errors.New(`mcp: resource contents has both "text" and "blob"`)
	case !hasText && !hasBlob:
		return errors.New(`mcp: resource contents has neither "text" nor "blob"`)
	}
	*r = out
	return nil
}

// ---------------------------------------------------------------------------
// Structs that hold content

// UnmarshalJSONFrom implements json.UnmarshalerFrom.
func (r *CallToolResult) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	var out CallToolResult
	if err := beginObject(dec, "tools/call result"); err != nil {
		return err
	}
	for {
		name, ok, err := nextMember(dec)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		switch string(name) {
		case "content":
			out.Content, err = readContentList(dec, "content", contentBlockSet)
		case "structuredContent":
			out.StructuredContent, err = readRawObject(dec, "structuredContent")
		case "isError":
			out.IsError, err = readBool(dec, "isError")
		case "_meta":
			var m Meta
			err = json.UnmarshalDecode(dec, &m)
			out.Meta = m
		default:
			err = dec.SkipValue()
		}
		if err != nil {
			return err
		}
	}
	*r = out
	return nil
}

// MarshalJSONTo implements json.MarshalerTo.
func (r CallToolResult) MarshalJSONTo(enc *jsontext.Encoder) error {
	if err := enc.WriteToken(jsontext.BeginObject); err != nil {
		return err
	}
	if err := writeContentList(enc, "content", r.Content); err != nil {
		return err
	}
	if err := writeRaw(enc, "structuredContent", r.StructuredContent, ""); err != nil {
		return err
	}
	if r.IsError {
		if err := writeName(enc, "isError"); err != nil {
			return err
		}
		if err := enc.WriteToken(jsontext.True); err != nil {
			return err
		}
	}
	if err := writeCommon(enc, nil, r.Meta); err != nil {
		return err
	}
	return enc.WriteToken(jsontext.EndObject)
}
