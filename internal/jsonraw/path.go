package jsonraw

import (
	"errors"
	"fmt"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// GetPath returns the raw value found in raw by following path, a list of
// member names, through nested objects, and whether there is one. An
// empty or null object on the way has no members. It is an error if raw is
// not a single valid JSON value, or if raw or a value on the way is
// something other than an object or null.
//
// For example, GetPath(params, "_meta", "progressToken") returns the
// progress token of a request's params. With no path, GetPath returns
// raw itself, and reports whether it is not empty. GetPath reads raw once
// and, like [Parse], validates all of it; the value it returns aliases
// raw.
func GetPath(raw jsontext.Value, path ...string) (jsontext.Value, bool, error) {
	if len(path) == 0 {
		return raw, len(raw) > 0, nil
	}
	if len(trimSpace(raw)) == 0 {
		return nil, false, nil
	}
	d := getDecoder(raw)
	defer putDecoder(d)
	var (
		found jsontext.Value
		i     int // path[:i] has been followed into the current object
	)
search:
	for {
		// Open the object for path[i], if there is one.
		switch k := d.PeekKind(); k {
		case jsontext.KindBeginObject:
			if _, err := d.ReadToken(); err != nil {
				return nil, false, pathError(path[:i], err)
			}
		case jsontext.KindNull:
			if _, err := d.ReadToken(); err != nil {
				return nil, false, pathError(path[:i], err)
			}
			break search
		case jsontext.KindInvalid:
			_, err := d.ReadToken()
			return nil, false, pathError(path[:i], err)
		default:
			return nil, false, pathError(path[:i], fmt.Errorf("got a JSON %s, want an object", KindName(k)))
		}
		// Look for the member named path[i].
		for {
			if d.PeekKind() == jsontext.KindEndObject {
				break search
			}
			name, err := d.ReadValue()
			if err != nil {
				return nil, false, pathError(path[:i], err)
			}
			if unquotedEqual(name, path[i]) {
				break
			}
			if err := d.SkipValue(); err != nil {
				return nil, false, pathError(path[:i], err)
			}
		}
		if i++; i == len(path) {
			v, err := d.ReadValue()
			if err != nil {
				return nil, false, pathError(path[:i], err)
			}
			end := int(d.InputOffset())
			found = raw[end-len(v) : end : end]
			break
		}
	}
	// Validate the rest.
	for d.StackDepth() > 0 {
		var err error
		switch d.PeekKind() {
		case jsontext.KindEndObject, jsontext.KindEndArray, jsontext.KindInvalid:
			_, err = d.ReadToken()
		default:
			err = d.SkipValue()
		}
		if err != nil {
			return nil, false, pathError(nil, err)
		}
	}
	if err := atEOF(&d.Decoder); err != nil {
		return nil, false, pathError(nil, err)
	}
	return found, found != nil, nil
}

// SetPath returns a copy of raw with the member at path, a list of
// member names, set to v as [Object.Set] does. Objects missing on the way,
// or null, are created. It is an error if path is empty, or if raw, or a
// value on the way, is not a JSON object (or empty, or null).
//
// For example, SetPath(params, gid, "_meta", key, "taskId") sets the task
// id that a notification's _meta relates to.
func SetPath(raw, v jsontext.Value, path ...string) (jsontext.Value, error) {
	if len(path) == 0 {
		return nil, errors.New("jsonraw: SetPath: empty path")
	}
	v = trimSpace(v)
	if !v.IsValid() {
		return nil, fmt.Errorf("jsonraw: SetPath %s: invalid JSON value", joinPath(path))
	}
	return setPath(raw, v, path, 0)
}

// setPath sets path[i:] in raw to v, which is valid.
func setPath(raw, v jsontext.Value, path []string, i int) (jsontext.Value, error) {
	o, err := parse(raw)
	if err != nil {
		return nil, pathError(path[:i], err)
	}
	if i+1 < len(path) {
		child, _ := o.Get(path[i])
		if v, err = setPath(child, v, path, i+1); err != nil {
			return nil, err
		}
	}
	if err := o.set(path[i], v); err != nil {
		return nil, err
	}
	return o.Bytes(), nil
}

// pathError wraps an error met at path (the members followed so far).
func pathError(path []string, err error) error {
	if len(path) == 0 {
		return fmt.Errorf("jsonraw: %w", err)
	}
	return fmt.Errorf("jsonraw: at %s: %w", joinPath(path), err)
}

// joinPath renders a path for an error message.
func joinPath(path []string) string {
	var b strings.Builder
	for i, name := range path {
		if i > 0 {
			b.WriteByte('.')
		}
		fmt.Fprintf(&b, "%q", name)
	}
	return b.String()
}

// Elements splits a raw JSON array into its elements, each without
// surrounding whitespace. An empty arr (or only whitespace) or a JSON
// null has no elements. It
// is an error if arr is not a single valid JSON array. The elements alias
// arr, which must not be modified while they are in use.
func Elements(arr jsontext.Value) ([]jsontext.Value, error) {
	out, err := elements(arr)
	if err != nil {
		return nil, fmt.Errorf("jsonraw: %w", err)
	}
	return out, nil
}

func elements(arr jsontext.Value) ([]jsontext.Value, error) {
	if len(trimSpace(arr)) == 0 {
		return nil, nil
	}
	d := getDecoder(arr)
	defer putDecoder(d)
	switch k := d.PeekKind(); k {
	case jsontext.KindBeginArray:
	case jsontext.KindNull:
		if _, err := d.ReadToken(); err != nil {
			return nil, err
		}
		return nil, atEOF(&d.Decoder)
	case jsontext.KindInvalid:
		_, err := d.ReadToken()
		return nil, err
	default:
		return nil, fmt.Errorf("got a JSON %s, want an array", KindName(k))
	}
	if _, err := d.ReadToken(); err != nil {
		return nil, err
	}
	var out []jsontext.Value
	if n := topLevelCommas(arr); n > 0 {
		out = make([]jsontext.Value, 0, n+1)
	}
	for d.PeekKind() != jsontext.KindEndArray {
		v, err := d.ReadValue()
		if err != nil {
			return nil, err
		}
		end := int(d.InputOffset())
		out = append(out, arr[end-len(v):end:end])
	}
	if _, err := d.ReadToken(); err != nil {
		return nil, err
	}
	if err := atEOF(&d.Decoder); err != nil {
		return nil, err
	}
	return out, nil
}

// JoinArray returns a new JSON array of elems, which must each be a single
// valid JSON value (as those from [Elements] and [Object.Bytes] are);
// JoinArray does not check them. No elements make an empty array.
func JoinArray(elems []jsontext.Value) jsontext.Value {
	n := 2 + max(len(elems)-1, 0)
	for _, e := range elems {
		n += len(e)
	}
	out := make([]byte, 0, n)
	out = append(out, '[')
	for i, e := range elems {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, e...)
	}
	return append(out, ']')
}
