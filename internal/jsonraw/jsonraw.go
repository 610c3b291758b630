// Package jsonraw reads and edits JSON objects in their raw form.
//
// The gateway relays params and results as raw JSON and edits only the
// members it must (a tool's name, a progress token, a task id), so that
// members it does not know pass through byte for byte. An [Object] is
// parsed once with [Parse], read with [Object.Get] and [Object.String],
// edited with [Object.Set], [Object.SetString] and [Object.Delete], and
// encoded once with [Object.Bytes]. [GetPath] and [SetPath] reach into
// nested objects such as _meta, and [Elements] and [JoinArray] split and
// build arrays.
//
// # Validity
//
// Input is validated as [jsontext] does by default (RFC 7493): it must be
// valid UTF-8 and no object, at any depth, may have two members with the
// same name. Member names and values are kept verbatim, so the output of
// [Object.Bytes] is valid JSON that differs from the input only in the
// whitespace between members and in the edits made.
//
// # Aliasing
//
// [Parse], [Object.Get], [GetPath] and [Elements] do not copy: the values
// they return alias their input, which must not be modified while those
// values are in use. [Object.Set] copies the value it is given, and
// [Object.Bytes], [SetPath] and [JoinArray] return new buffers.
//
// # Bounds
//
// The work and memory of every function are linear in its input. Beyond
// what [jsontext] needs to validate the input (its decoders are pooled),
// Parse allocates the [Object] and, exactly once, a 32-byte record per
// member (every member takes at least six bytes of input); values are
// never copied. Elements likewise allocates one slice of len(arr)
// elements. Nesting is limited by [jsontext] to 10000 levels. Bytes and
// JoinArray allocate their output once. GetPath reads its input once;
// SetPath parses and re-encodes each object on the path, so it costs
// about len(path) times the size of its result.
package jsonraw

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
)

// An Object is a JSON object held as its members' raw names and values,
// in their original order. The zero value is an empty object, ready to
// use. An Object is not safe for concurrent use if any goroutine edits it.
type Object struct {
	members []member
}

// A member is one `"name":value` pair. For a parsed member, raw is the
// input from the opening quote of the name to the end of the value, and
// may hold whitespace around the colon.
type member struct {
	raw     []byte
	nameLen int32 // length of the quoted name at the start of raw
	valOff  int32 // offset of the value in raw
}

// maxSize is the largest input accepted, so that offsets fit a member.
const maxSize = math.MaxInt32

func (m *member) quotedName() []byte    { return m.raw[:m.nameLen] }
func (m *member) value() jsontext.Value { return jsontext.Value(m.raw[m.valOff:]) }

// hasName reports whether m is named name.
func (m *member) hasName(name string) bool {
	return unquotedEqual(m.quotedName(), name)
}

// unquotedEqual reports whether the JSON string q, known to be valid,
// has the value s.
func unquotedEqual(q []byte, s string) bool {
	if b := q[1 : len(q)-1]; bytes.IndexByte(b, '\\') < 0 {
		return string(b) == s
	} else if len(s) > len(b) { // escapes only ever lengthen a string
		return false
	}
	u, err := jsontext.AppendUnquote(nil, q)
	return err == nil && string(u) == s
}

// Parse parses v, which must be a single JSON object, keeping its
// members in order. An empty v (or only whitespace) or a JSON null is an
// empty object. Any other kind of value, invalid JSON, trailing data or a
// duplicate member name is an error.
//
// The Object aliases v, which must not be modified while the Object is in
// use.
func Parse(v jsontext.Value) (*Object, error) {
	o, err := parse(v)
	if err != nil {
		return nil, fmt.Errorf("jsonraw: %w", err)
	}
	return o, nil
}

// parse is Parse, with errors that do not name the package.
func parse(v jsontext.Value) (*Object, error) {
	o := new(Object)
	if len(trimSpace(v)) == 0 {
		return o, nil
	}
	if len(v) > maxSize {
		return nil, errTooLarge
	}
	d := getDecoder(v)
	defer putDecoder(d)
	switch k := d.PeekKind(); k {
	case jsontext.KindBeginObject:
	case jsontext.KindNull:
		if _, err := d.ReadToken(); err != nil {
			return nil, err
		}
		return o, atEOF(&d.Decoder)
	case jsontext.KindInvalid:
		_, err := d.ReadToken()
		return nil, err
	default:
		return nil, fmt.Errorf("got a JSON %s, want an object", KindName(k))
	}
	if _, err := d.ReadToken(); err != nil {
		return nil, err
	}
	if n := topLevelCommas(v); n > 0 {
		o.members = make([]member, 0, n+1)
	}
	for d.PeekKind() != jsontext.KindEndObject {
		name, err := d.ReadValue()
		if err != nil {
			return nil, err
		}
		nameLen := len(name)
		start := int(d.InputOffset()) - nameLen
		val, err := d.ReadValue()
		if err != nil {
			return nil, err
		}
		end := int(d.InputOffset())
		o.members = append(o.members, member{
			raw:     v[start:end:end],
			nameLen: int32(nameLen),
			valOff:  int32(end - len(val) - start),
		})
	}
	if _, err := d.ReadToken(); err != nil {
		return nil, err
	}
	return o, atEOF(&d.Decoder)
}

var errTooLarge = errors.New("JSON value larger than 2 GiB")

// A pooledDecoder reads from its own buffer, which aliases the input.
type pooledDecoder struct {
	jsontext.Decoder
	buf bytes.Buffer
}

var decoders = sync.Pool{New: func() any { return new(pooledDecoder) }}

// getDecoder returns a decoder reading v directly, without a copy.
func getDecoder(v []byte) *pooledDecoder {
	p := decoders.Get().(*pooledDecoder)
	p.buf = *bytes.NewBuffer(v)
	p.Reset(&p.buf)
	return p
}

// putDecoder returns d to the pool, dropping its reference to the input.
func putDecoder(p *pooledDecoder) {
	p.buf = bytes.Buffer{}
	p.Reset(&p.buf)
	decoders.Put(p)
}

// topLevelCommas counts the commas in v outside strings and nested
// values: one less than the members or elements of a valid object or
// array. Sizing to it makes Parse and Elements allocate exactly once.
func topLevelCommas(v []byte) int {
	n, depth, inString := 0, 0, false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case inString:
			if c == '\\' {
				i++
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
		case c == ',' && depth == 1:
			n++
		}
	}
	return n
}

// atEOF reports an error unless d has nothing left but whitespace.
func atEOF(d *jsontext.Decoder) error {
	switch _, err := d.ReadToken(); err {
	case io.EOF:
		return nil
	case nil:
		return errors.New("data after the top-level value")
	default:
		return err
	}
}

// Len returns the number of members of o.
func (o *Object) Len() int { return len(o.members) }

func (o *Object) index(name string) int {
	for i := range o.members {
		if o.members[i].hasName(name) {
			return i
		}
	}
	return -1
}

// Get returns the raw value of the member named name, without surrounding
// whitespace, and whether there is one.
func (o *Object) Get(name string) (jsontext.Value, bool) {
	if i := o.index(name); i >= 0 {
		return o.members[i].value(), true
	}
	return nil, false
}

// String returns the value of the member named name as a Go string, and
// whether there is such a member. It is an error if the member is there
// but is not a JSON string (a JSON null included).
func (o *Object) String(name string) (string, bool, error) {
	v, ok := o.Get(name)
	if !ok {
		return "", false, nil
	}
	if k := v.Kind(); k != jsontext.KindString {
		return "", true, fmt.Errorf("jsonraw: member %q is a JSON %s, not a string", name, KindName(k))
	}
	if q := v[1 : len(v)-1]; bytes.IndexByte(q, '\\') < 0 {
		return string(q), true, nil
	}
	s, err := jsontext.AppendUnquote(nil, v)
	if err != nil {
		return "", true, fmt.Errorf("jsonraw: member %q: %w", name, err)
	}
	return string(s), true, nil
}

// Set sets the member named name to v, in its place if there is one and
// at the end otherwise. v must be a single valid JSON value; surrounding
// whitespace is dropped. Set copies v.
func (o *Object) Set(name string, v jsontext.Value) error {
	v = trimSpace(v)
	if !v.IsValid() {
		if len(v) == 0 {
			return fmt.Errorf("jsonraw: member %q: empty value", name)
		}
		return fmt.Errorf("jsonraw: member %q: invalid JSON value", name)
	}
	return o.set(name, v)
}

// SetString sets the member named name to the JSON string s, as [Object.Set]
// does. It is an error if s is not valid UTF-8.
func (o *Object) SetString(name, s string) error {
	// Quoting can only lengthen s: quote into the member's own buffer.
	i := o.index(name)
	var buf []byte
	if i >= 0 {
		q := o.members[i].quotedName()
		buf = append(make([]byte, 0, len(q)+1+len(s)+2), q...)
	} else {
		var err error
		if buf, err = quoteName(make([]byte, 0, len(name)+len(s)+5), name); err != nil {
			return err
		}
	}
	buf = append(buf, ':')
	off := len(buf)
	buf, err := jsontext.AppendQuote(buf, s)
	if err != nil {
		return fmt.Errorf("jsonraw: member %q: %w", name, err)
	}
	if len(buf) > maxSize {
		return fmt.Errorf("jsonraw: member %q: %w", name, errTooLarge)
	}
	o.put(i, member{raw: buf, nameLen: int32(off - 1), valOff: int32(off)})
	return nil
}

// set is Set for a value known to be valid and trimmed.
func (o *Object) set(name string, v jsontext.Value) error {
	i := o.index(name)
	var buf []byte
	if i >= 0 {
		q := o.members[i].quotedName()
		buf = append(make([]byte, 0, len(q)+1+len(v)), q...)
	} else {
		var err error
		if buf, err = quoteName(make([]byte, 0, len(name)+3+len(v)), name); err != nil {
			return err
		}
	}
	buf = append(buf, ':')
	off := len(buf)
	buf = append(buf, v...)
	if len(buf) > maxSize {
		return fmt.Errorf("jsonraw: member %q: %w", name, errTooLarge)
	}
	o.put(i, member{raw: buf, nameLen: int32(off - 1), valOff: int32(off)})
	return nil
}

// put replaces member i, or appends m if i < 0.
func (o *Object) put(i int, m member) {
	if i >= 0 {
		o.members[i] = m
	} else {
		o.members = append(o.members, m)
	}
}

func quoteName(dst []byte, name string) ([]byte, error) {
	b, err := jsontext.AppendQuote(dst, name)
	if err != nil {
		return nil, fmt.Errorf("jsonraw: member name %q: %w", name, err)
	}
	return b, nil
}

// Delete removes the member named name, if there is one.
func (o *Object) Delete(name string) {
	if i := o.index(name); i >= 0 {
		o.members = slices.Delete(o.members, i, i+1)
	}
}

// Bytes encodes o as a new JSON object: its members in order, separated
// by commas, each with its name and value as parsed or set.
func (o *Object) Bytes() jsontext.Value {
	n := 2 + max(len(o.members)-1, 0)
	for i := range o.members {
		n += len(o.members[i].raw)
	}
	out := make([]byte, 0, n)
	out = append(out, '{')
	for i := range o.members {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, o.members[i].raw...)
	}
	return append(out, '}')
}

// trimSpace drops JSON whitespace around v.
func trimSpace(v jsontext.Value) jsontext.Value {
	return bytes.Trim(v, " \t\r\n")
}

// KindName returns a readable name for a kind of JSON value: "object",
// "array", "string", "number", "boolean" (for both [jsontext.KindTrue] and
// [jsontext.KindFalse]) or "null"; for anything else, "invalid".
func KindName(k jsontext.Kind) string {
	switch k {
	case jsontext.KindBeginObject:
		return "object"
	case jsontext.KindBeginArray:
		return "array"
	case jsontext.KindString:
		return "string"
	case jsontext.KindNumber:
		return "number"
	case jsontext.KindTrue, jsontext.KindFalse:
		return "boolean"
	case jsontext.KindNull:
		return "null"
	default:
		return "invalid"
	}
}
