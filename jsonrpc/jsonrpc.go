// Package jsonrpc implements the JSON-RPC 2.0 envelopes that carry the Model
// Context Protocol.
//
// Decoding is strict: duplicate member names, invalid UTF-8, batches, a null
// request id and oversized messages are all rejected with an *Error carrying
// the JSON-RPC code the specification requires. Params and results are kept
// as raw JSON (jsontext.Value) until a handler needs them, so a message can be
// routed or relayed without decoding its payload.
package jsonrpc

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/go-json-experiment/json/jsontext"
)

// Version is the only JSON-RPC version this package speaks.
const Version = "2.0"

// Standard JSON-RPC 2.0 error codes, and the codes MCP defines on top of them.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603

	// CodeResourceNotFound is MCP's code for a resource URI the server does
	// not know.
	CodeResourceNotFound = -32002
	// CodeURLElicitationRequired is MCP's code for a request that cannot
	// proceed until the user completes one or more URL-mode elicitations.
	CodeURLElicitationRequired = -32042
	// CodeConnectionClosed is reported locally for calls whose connection
	// ended before a response arrived. It is never sent on the wire.
	CodeConnectionClosed = -32000
	// CodeRequestTimeout is reported locally for calls that timed out.
	CodeRequestTimeout = -32001
)

// ID is a JSON-RPC request id: a string or an integer. The zero ID means "no
// id" and marks a notification.
type ID struct {
	str  string
	num  int64
	kind idKind
}

type idKind uint8

const (
	idNone idKind = iota
	idInt
	idString
)

// Int64ID returns an integer id.
func Int64ID(n int64) ID { return ID{num: n, kind: idInt} }

// StringID returns a string id.
func StringID(s string) ID { return ID{str: s, kind: idString} }

// IsValid reports whether id is present (not the zero ID).
func (id ID) IsValid() bool { return id.kind != idNone }

// IsString reports whether id is a string id.
func (id ID) IsString() bool { return id.kind == idString }

// Int64 returns the integer value of an integer id, and false for other ids.
func (id ID) Int64() (int64, bool) { return id.num, id.kind == idInt }

// Raw returns the underlying value: an int64, a string, or nil.
func (id ID) Raw() any {
	switch id.kind {
	case idInt:
		return id.num
	case idString:
		return id.str
	}
	return nil
}

// String formats the id for logs: integers plainly, strings quoted.
func (id ID) String() string {
	switch id.kind {
	case idInt:
		return strconv.FormatInt(id.num, 10)
	case idString:
		return strconv.Quote(id.str)
	}
	return "<none>"
}

// AppendJSON appends the JSON form of id (null for the zero ID) to dst.
func (id ID) AppendJSON(dst []byte) []byte {
	switch id.kind {
	case idInt:
		return strconv.AppendInt(dst, id.num, 10)
	case idString:
		b, err := jsontext.AppendQuote(dst, id.str)
		if err != nil {
			// Invalid UTF-8 in a string id: quote it lossily rather than fail.
			return strconv.AppendQuote(dst, id.str)
		}
		return b
	}
	return append(dst, "null"...)
}

// MarshalJSON implements json.Marshaler.
func (id ID) MarshalJSON() ([]byte, error) { return id.AppendJSON(nil), nil }

// UnmarshalJSON implements json.Unmarshaler. It accepts a string or an
// integer; null decodes to the zero ID.
func (id *ID) UnmarshalJSON(b []byte) error {
	v, err := parseID(jsontext.Value(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// parseID parses one JSON value as an id.
func parseID(v jsontext.Value) (ID, error) {
	switch v.Kind() {
	case 'n':
		return ID{}, nil
	case '"':
		s, err := jsontext.AppendUnquote(nil, v)
		if err != nil {
			return ID{}, fmt.Errorf("invalid id string: %w", err)
		}
		return StringID(string(s)), nil
	case '0':
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return ID{}, fmt.Errorf("id %s is not an integer in the int64 range", v)
		}
		return Int64ID(n), nil
	}
	return ID{}, fmt.Errorf("id must be a string or an integer, not %s", kindName(v.Kind()))
}

// Message is a JSON-RPC message: a *Request (which includes notifications) or
// a *Response.
type Message interface {
	isMessage()
}

// Request is a JSON-RPC request, or a notification when ID is the zero ID.
type Request struct {
	// ID is the request id; the zero ID marks a notification.
	ID ID
	// Method is the method name.
	Method string
	// Params is the raw params value (an object), or nil when absent.
	Params jsontext.Value
}

// IsNotification reports whether r is a notification (it has no id).
func (r *Request) IsNotification() bool { return !r.ID.IsValid() }

func (*Request) isMessage() {}

// Response is a JSON-RPC response: exactly one of Result and Error is set.
type Response struct {
	// ID is the id of the request this answers. It is the zero ID only for
	// an error about a request whose id could not be read.
	ID ID
	// Result is the raw result value.
	Result jsontext.Value
	// Error is the error, for a failed request.
	Error *Error
}

func (*Response) isMessage() {}

// Error is a JSON-RPC error object. It implements error so that handlers can
// return it to choose the code that is sent.
type Error struct {
	Code    int64
	Message string
	Data    jsontext.Value
}

// Error implements error.
func (e *Error) Error() string {
	if len(e.Data) > 0 {
		return fmt.Sprintf("jsonrpc error %d: %s (data: %s)", e.Code, e.Message, e.Data)
	}
	return fmt.Sprintf("jsonrpc error %d: %s", e.Code, e.Message)
}

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, &jsonrpc.Error{Code: jsonrpc.CodeMethodNotFound}) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// NewError returns an *Error with the given code and a formatted message.
func NewError(code int64, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the JSON-RPC code of err if it is (or wraps) an *Error,
// and CodeInternalError otherwise.
func ErrorCode(err error) int64 {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternalError
}

func kindName(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 'f', 't':
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
