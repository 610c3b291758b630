package jsonrpc

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
)

// DefaultMaxMessageSize is the size limit Decode applies when a Decoder has
// no limit of its own: 4 MiB.
const DefaultMaxMessageSize = 4 << 20

var decoderPool = sync.Pool{New: func() any { return new(jsontext.Decoder) }}

// DecodeMessage decodes one JSON-RPC message with the default size limit.
// See DecodeMessageLimit.
func DecodeMessage(data []byte) (Message, error) {
	return DecodeMessageLimit(data, DefaultMaxMessageSize)
}

// DecodeMessageLimit decodes one JSON-RPC message strictly. maxSize <= 0
// means no limit.
//
// On failure the error is an *Error whose code is CodeParseError for text
// that is not JSON (including duplicate member names and invalid UTF-8) and
// CodeInvalidRequest for JSON that is not a valid message (batches, a null or
// non-integer request id, a wrong "jsonrpc" member, a message that is both a
// request and a response, or an oversized message). When the id of an invalid
// request could be read, the returned message is a *Request carrying it, so
// that the error response can name it; otherwise it is nil.
//
// The Params, Result and Error.Data of the returned message alias data: data
// must not be modified while the message is in use.
func DecodeMessageLimit(data []byte, maxSize int) (Message, error) {
	if maxSize > 0 && len(data) > maxSize {
		return nil, NewError(CodeInvalidRequest, "message of %d bytes exceeds the limit of %d bytes", len(data), maxSize)
	}
	d := decoderPool.Get().(*jsontext.Decoder)
	d.Reset(bytes.NewBuffer(data))
	msg, err := decode(d, data)
	d.Reset(emptyReader{})
	decoderPool.Put(d)
	return msg, err
}

type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, io.EOF }

// field presence bits.
const (
	hasVersion = 1 << iota
	hasID
	hasMethod
	hasParams
	hasResult
	hasError
)

func decode(d *jsontext.Decoder, data []byte) (Message, error) {
	if k := d.PeekKind(); k != '{' {
		if k == '[' {
			return nil, NewError(CodeInvalidRequest, "batches are not supported: send one JSON-RPC message per request")
		}
		if _, err := d.ReadValue(); err != nil {
			return nil, parseError(err)
		}
		return nil, NewError(CodeInvalidRequest, "a JSON-RPC message must be an object, not %s", kindName(k))
	}
	// Validate the whole value first, so that syntax errors anywhere
	// (duplicate names, bad UTF-8, truncation) are parse errors.
	if _, err := d.ReadValue(); err != nil {
		return nil, parseError(err)
	}
	if _, err := d.ReadToken(); err != io.EOF {
		return nil, NewError(CodeParseError, "unexpected data after the JSON-RPC message")
	}
	// Walk the now-validated object a second time for its members.
	d.Reset(bytes.NewBuffer(data))
	if _, err := d.ReadToken(); err != nil { // '{'
		return nil, parseError(err)
	}
	var (
		seen                   int
		id                     ID
		idNull                 bool
		idErr                  error
		method                 string
		params, result, errVal jsontext.Value
		version                jsontext.Value
	)
	for d.PeekKind() != '}' {
		name, err := d.ReadValue()
		if err != nil {
			return nil, parseError(err)
		}
		v, err := d.ReadValue()
		if err != nil {
			return nil, parseError(err)
		}
		end := int(d.InputOffset())
		v = jsontext.Value(data[end-len(v) : end : end])
		switch string(name) {
		case `"jsonrpc"`:
			seen |= hasVersion
			version = v
		case `"id"`:
			seen |= hasID
			if v.Kind() == 'n' {
				idNull = true
			} else {
				id, idErr = parseID(v)
			}
		case `"method"`:
			seen |= hasMethod
			if v.Kind() != '"' {
				return nil, NewError(CodeInvalidRequest, "method must be a string, not %s", kindName(v.Kind()))
			}
			method = unquote(v)
		case `"params"`:
			seen |= hasParams
			params = v
		case `"result"`:
			seen |= hasResult
			result = v
		case `"error"`:
			seen |= hasError
			errVal = v
		default:
			// Unknown members are ignored, as JSON-RPC extensions may add some.
			if bytes.IndexByte(name, '\\') >= 0 {
				// An escaped spelling of a known member ("\u0069d") would
				// let two parsers disagree on the message: refuse it.
				if known(unquote(name)) {
					return nil, NewError(CodeInvalidRequest, "escaped member name %s is not allowed", name)
				}
			}
		}
	}
	if seen&hasVersion == 0 || string(version) != `"2.0"` {
		return nil, invalidWithID(id, idErr, `"jsonrpc" must be "2.0"`)
	}
	if idErr != nil {
		return nil, NewError(CodeInvalidRequest, "%v", idErr)
	}
	if seen&hasMethod != 0 {
		if seen&(hasResult|hasError) != 0 {
			return nil, invalidWithID(id, nil, "a message cannot carry both a method and a result or error")
		}
		if idNull {
			return nil, NewError(CodeInvalidRequest, "request id must not be null")
		}
		if method == "" {
			return nil, invalidWithID(id, nil, "method must not be empty")
		}
		if seen&hasParams != 0 {
			if k := params.Kind(); k != '{' && k != '[' {
				return nil, invalidWithID(id, nil, "params must be an object or an array, not "+kindName(k))
			}
		}
		return &Request{ID: id, Method: method, Params: params}, nil
	}
	switch seen & (hasResult | hasError) {
	case hasResult:
		if !id.IsValid() {
			return nil, NewError(CodeInvalidRequest, "a result must carry the id of its request")
		}
		return &Response{ID: id, Result: result}, nil
	case hasError:
		e, err := decodeError(errVal)
		if err != nil {
			return nil, err
		}
		// An error about a request whose id could not be read has no id
		// (MCP 2025-11-25) or a null one (JSON-RPC 2.0): both decode to
		// the zero ID.
		return &Response{ID: id, Error: e}, nil
	case hasResult | hasError:
		return nil, NewError(CodeInvalidRequest, "a response cannot carry both result and error")
	}
	return nil, invalidWithID(id, nil, "message has neither a method nor a result or error")
}

func known(name string) bool {
	switch name {
	case "jsonrpc", "id", "method", "params", "result", "error":
		return true
	}
	return false
}

// invalidWithID reports an invalid request, mentioning the id when known.
func invalidWithID(id ID, idErr error, msg string) error {
	if idErr == nil && id.IsValid() {
		return &Error{Code: CodeInvalidRequest, Message: msg + " (request " + id.String() + ")"}
	}
	return &Error{Code: CodeInvalidRequest, Message: msg}
}

func decodeError(v jsontext.Value) (*Error, error) {
	if v.Kind() != '{' {
		return nil, NewError(CodeInvalidRequest, "error must be an object, not %s", kindName(v.Kind()))
	}
	d := decoderPool.Get().(*jsontext.Decoder)
	defer func() { d.Reset(emptyReader{}); decoderPool.Put(d) }()
	d.Reset(bytes.NewBuffer(v))
	d.ReadToken()
	e := new(Error)
	var haveCode bool
	for d.PeekKind() != '}' {
		name, _ := d.ReadValue()
		val, err := d.ReadValue()
		if err != nil {
			return nil, parseError(err)
		}
		end := int(d.InputOffset())
		val = jsontext.Value(v[end-len(val) : end : end])
		switch string(name) {
		case `"code"`:
			if val.Kind() != '0' {
				return nil, NewError(CodeInvalidRequest, "error code must be a number")
			}
			n, err := strconv.ParseInt(string(val), 10, 64)
			if err != nil {
				return nil, NewError(CodeInvalidRequest, "error code %s is not an integer", val)
			}
			e.Code, haveCode = n, true
		case `"message"`:
			if val.Kind() != '"' {
				return nil, NewError(CodeInvalidRequest, "error message must be a string")
			}
			e.Message = unquote(val)
		case `"data"`:
			e.Data = val
		}
	}
	if !haveCode {
		return nil, NewError(CodeInvalidRequest, "error object has no code")
	}
	return e, nil
}

func unquote(v jsontext.Value) string {
	if len(v) >= 2 && bytes.IndexByte(v[1:len(v)-1], '\\') < 0 {
		return string(v[1 : len(v)-1])
	}
	b, err := jsontext.AppendUnquote(nil, v)
	if err != nil {
		return ""
	}
	return string(b)
}

func parseError(err error) error {
	var se *jsontext.SyntacticError
	if errors.As(err, &se) {
		return &Error{Code: CodeParseError, Message: "parse error: " + se.Error()}
	}
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return &Error{Code: CodeParseError, Message: "parse error: unexpected end of JSON input"}
	}
	return &Error{Code: CodeParseError, Message: "parse error: " + err.Error()}
}

// EncodeMessage returns the JSON encoding of msg.
func EncodeMessage(msg Message) ([]byte, error) {
	return AppendMessage(nil, msg)
}

// AppendMessage appends the JSON encoding of msg to dst. Raw params, results
// and error data must be valid JSON; they are copied as they are.
func AppendMessage(dst []byte, msg Message) ([]byte, error) {
	switch m := msg.(type) {
	case *Request:
		dst = append(dst, `{"jsonrpc":"2.0"`...)
		if m.ID.IsValid() {
			dst = append(dst, `,"id":`...)
			dst = m.ID.AppendJSON(dst)
		}
		dst = append(dst, `,"method":`...)
		var err error
		if dst, err = jsontext.AppendQuote(dst, m.Method); err != nil {
			return nil, err
		}
		if len(m.Params) > 0 {
			dst = append(dst, `,"params":`...)
			dst = append(dst, m.Params...)
		}
		return append(dst, '}'), nil
	case *Response:
		dst = append(dst, `{"jsonrpc":"2.0"`...)
		if m.ID.IsValid() || m.Error == nil {
			dst = append(dst, `,"id":`...)
			dst = m.ID.AppendJSON(dst)
		}
		if m.Error != nil {
			dst = append(dst, `,"error":{"code":`...)
			dst = strconv.AppendInt(dst, m.Error.Code, 10)
			dst = append(dst, `,"message":`...)
			var err error
			if dst, err = jsontext.AppendQuote(dst, m.Error.Message); err != nil {
				dst = strconv.AppendQuote(dst, m.Error.Message)
			}
			if len(m.Error.Data) > 0 {
				dst = append(dst, `,"data":`...)
				dst = append(dst, m.Error.Data...)
			}
			return append(dst, "}}"...), nil
		}
		dst = append(dst, `,"result":`...)
		if len(m.Result) == 0 {
			dst = append(dst, "{}"...)
		} else {
			dst = append(dst, m.Result...)
		}
		return append(dst, '}'), nil
	case nil:
		return nil, errors.New("jsonrpc: cannot encode a nil message")
	}
	return nil, errors.New("jsonrpc: unknown message type")
}
